"""The chat engine against a chat server of KNOWN speed (tests/support/chat_server.py): what voxbench
reports — time to first token, tokens/s, inter-token latency, token counts — must be what the
server was set to send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.chat_server import PROMPT_TOKENS, ChatServer
from support.cli import voxbench
from support.timing import assert_took
from voxbench.engines.registry import EngineSpec
from voxbench.results import Case
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import resolve_workload

FIRST_MS = 200.0
RATE = 50.0  # tokens per second after the first: one every 20 ms
TOKENS = 31
KEY = "sekret-llm-456"

pytestmark = pytest.mark.usefixtures("no_default_keys")


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as url:
        yield url


def run(
    ref: str, params: dict[str, object] | None = None, mode: str = "worker", n: int = 3
) -> Case:
    item = resolve_workload("prompts").items[0]
    settings = Settings(mode=mode, iterations=n, warmup=0, save_audio=False)
    return run_case(EngineSpec(ref, params or {}), "llm", "prompts", item, settings).case


def assert_known_speed(case: Case, source: str) -> None:
    assert case.error_count == 0, case.errors
    assert case.output_kind == "text" and case.streamed
    assert case.ttft_ms is not None and case.itl_ms is not None
    assert_took(case.ttft_ms.median, FIRST_MS)  # never earlier than the server sent it
    assert case.tokens_per_second == pytest.approx(RATE, rel=0.05)
    assert case.itl_ms.median == pytest.approx(1000 / RATE, rel=0.05)
    assert case.output_tokens == TOKENS and case.tokens_source == source
    assert case.latency_ms is not None
    assert_took(case.latency_ms.median, FIRST_MS + (TOKENS - 1) * 1000 / RATE)
    assert case.chunks == TOKENS  # the role header and the usage chunk are no tokens


def test_streamed_with_usage(base: str) -> None:
    case = run(f"llm:{base}")
    assert_known_speed(case, "usage")
    assert case.input_tokens == PROMPT_TOKENS
    assert case.engine_info["model"] == "known-speed"  # the first id GET /v1/models listed
    assert case.engine_info["streaming"] is True


def test_streamed_without_usage_counts_the_pieces() -> None:
    with ChatServer(
        first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS, usage_in_stream=False
    ) as url:
        case = run(f"llm:{url}", mode="in-process")
    assert_known_speed(case, "counted")
    assert case.input_tokens is None


def test_full_url_and_request_body() -> None:
    server = ChatServer(first_token_ms=10, tokens_per_second=1000, tokens=TOKENS)
    with server as url:
        case = run(f"{url}/chat/completions", {"model": "mine", "max_tokens": 5}, n=1)
    assert case.error_count == 0, case.errors
    assert case.output_tokens == 5  # max_tokens reached the server
    prompt = resolve_workload("prompts").items[0].text
    assert server.requests[-1] == {
        "model": "mine",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 5,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_not_streamed_uses_the_servers_usage(base: str) -> None:
    case = run(f"llm:{base}", {"stream": False}, mode="in-process")
    assert case.error_count == 0, case.errors
    assert not case.streamed and case.ttft_ms is None and case.itl_ms is None
    whole_s = (FIRST_MS + (TOKENS - 1) * 1000 / RATE) / 1000
    assert case.latency_ms is not None
    assert_took(case.latency_ms.median, whole_s * 1000)
    assert case.output_tokens == TOKENS and case.tokens_source == "usage"
    assert case.tokens_per_second == pytest.approx(TOKENS / whole_s, rel=0.05)
    assert case.input_tokens == PROMPT_TOKENS


def test_api_key_is_sent_but_never_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer(first_token_ms=5, tokens_per_second=1000, tokens=3, api_key=KEY) as url:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        case = run(f"llm:{url}", n=1)
        assert case.error_count == 0, case.errors
        assert case.engine_info["api_key_env"] == "OPENAI_API_KEY"
        assert KEY not in case.model_dump_json()
        monkeypatch.delenv("OPENAI_API_KEY")
        case = run(f"llm:{url}", n=1, mode="in-process")
    assert case.errors and case.errors[0].phase == "load"
    assert case.errors[0].message.startswith(f"HTTP 401 from {url}/models: ")
    assert "no API key was sent: set $OPENAI_API_KEY" in case.errors[0].message


def test_named_key_variable_must_be_set(base: str) -> None:
    case = run(f"llm:{base}", {"api_key_env": "MY_LLM_KEY"}, mode="in-process", n=1)
    assert case.errors[0].phase == "load"
    assert "MY_LLM_KEY" in case.errors[0].message and "not set" in case.errors[0].message


def test_server_error_is_one_line_with_status_and_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ChatServer(fail_status=503) as url:
        case = run(f"llm:{url}", {"model": "m"}, mode="in-process", n=2)
    assert len(case.errors) == 3 and case.latency_ms is None  # the cold call and both measured
    for error in case.errors:
        assert error.type == "EngineFailed" and "\n" not in error.message
        assert error.message.startswith(f"HTTP 503 from {url}/chat/completions: ")
        assert "injected failure" in error.message
    # The server echoed the key into its error body; it is masked.
    assert (
        KEY not in case.model_dump_json()
        and "injected failure (Bearer ***)" in case.errors[0].message
    )


def test_connection_refused_fails_at_load_in_one_line() -> None:
    with ChatServer() as gone:
        pass  # the port is free again, and nothing listens on it
    case = run(f"llm:{gone}", mode="in-process", n=1)
    error = case.errors[0]
    assert error.phase == "load" and error.type == "EngineFailed" and "\n" not in error.message
    assert error.message.startswith(f"request to {gone} failed: ConnectError")


@pytest.mark.slow
@pytest.mark.parametrize("usage", [True, False])
def test_cli_run_reports_the_known_speed(tmp_path: Path, usage: bool) -> None:
    with ChatServer(
        first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS, usage_in_stream=usage
    ) as url:
        proc = voxbench(
            "run", "-e", f"llm:{url}", "-w", "prompts", "-n", "3", "--warmup", "0",
            "-o", str(tmp_path), "--json", "-", "--no-store",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cases = [Case.model_validate(c) for c in json.loads(proc.stdout)["cases"]]
    assert [c.input_id for c in cases] == ["prompt-1", "prompt-2", "prompt-3", "prompt-4"]
    for case in cases:
        assert_known_speed(case, "usage" if usage else "counted")
        assert case.cold_start_ms is not None and case.cold_start_ms > FIRST_MS
    report = next(tmp_path.rglob("report.md")).read_text()
    assert "Text generation" in report
