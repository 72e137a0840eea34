"""``voxbench load`` against a chat server of KNOWN speed (tests/support/chat_server.py): the
figures it reports must be the ones the server was set to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.chat_server import ChatServer
from voxbench.load.run import LoadRequest, measure_load, start_load
from voxbench.load.schedule import Level
from voxbench.results.document import LoadLevel
from voxbench.workloads import resolve_workload

pytestmark = pytest.mark.slow

FIRST_MS, RATE, TOKENS = 200.0, 50.0, 21
LOAD_RATE = 4.0  # req/s: ~0.6 s each, under 3 in flight, so nothing queues


def _level(tmp_path: Path, base: str, **options: object) -> LoadLevel:
    req = LoadRequest(
        target=f"llm:{base}",
        levels=[Level("rate", LOAD_RATE)],
        duration_s=5.0,
        warmup_s=1.0,  # longer than one request: the window's completions are the steady state
        arrivals="constant",
        output=tmp_path,
        machine_id="m",
        **options,  # type: ignore[arg-type]
    )
    doc = measure_load(start_load(req), req, lambda *_: None)
    assert doc.load is not None
    return doc.load.levels[0]


def _near(value: float | None, expected: float, rel: float = 0.05) -> bool:
    return value is not None and abs(value - expected) <= rel * expected


def test_known_speed_with_usage_in_the_stream(tmp_path):
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as base:
        lv = _level(tmp_path, base)
    assert lv.requests == 20 and lv.ok == 20 and lv.errors == {}
    assert lv.ttft_ms is not None and _near(lv.ttft_ms.p50, FIRST_MS), lv.ttft_ms
    assert lv.itl_ms is not None and _near(lv.itl_ms.p50, 1000 / RATE), lv.itl_ms
    assert lv.itl_ms.n == lv.ok * (TOKENS - 1)
    assert lv.tokens_per_second is not None and _near(lv.tokens_per_second.p50, RATE)
    assert _near(lv.output_tokens_per_second, LOAD_RATE * TOKENS), lv.output_tokens_per_second
    assert lv.tokens_source == "usage"
    assert len(lv.samples.ttft_ms) == 20 and len(lv.samples.tokens_per_second) == 20
    assert lv.validity is not None and lv.validity.valid, lv.validity


def test_the_requests_sent(tmp_path):
    server = ChatServer(first_token_ms=10, tokens_per_second=1000, tokens=3)
    with server as base:
        _level(tmp_path, base, max_tokens=2)
    prompts = {item.text for item in resolve_workload("prompts").items}
    first = server.requests[0]
    assert first["model"] == "known-speed"  # GET /v1/models' first id
    assert first["max_tokens"] == 2 and first["stream"] is True and first["temperature"] == 0
    assert first["stream_options"] == {"include_usage": True}
    sent = {m["content"] for body in server.requests for m in body["messages"]}
    assert sent == prompts  # every prompt, as plain strings


def test_known_speed_without_usage_counts_the_deltas(tmp_path):
    with ChatServer(
        first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS, usage_in_stream=False
    ) as base:
        lv = _level(tmp_path, base)
    assert lv.tokens_source == "counted"
    assert lv.tokens_per_second is not None and _near(lv.tokens_per_second.p50, RATE)
    assert _near(lv.output_tokens_per_second, LOAD_RATE * TOKENS), lv.output_tokens_per_second


def test_max_tokens_shortens_the_answers(tmp_path):
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as base:
        lv = _level(tmp_path, base, max_tokens=6)
    assert _near(lv.output_tokens_per_second, LOAD_RATE * 6), lv.output_tokens_per_second
    assert lv.tokens_per_second is not None and _near(lv.tokens_per_second.p50, RATE)


def test_http_errors_have_no_token_figures(tmp_path):
    with ChatServer(fail_status=503) as base:
        lv = _level(tmp_path, base, model="x")
    assert lv.ok == 0 and lv.errors == {"http_503": lv.requests}
    assert lv.ttft_ms is None and lv.tokens_source is None
    assert lv.validity is not None and not lv.validity.valid


def _cli(base: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "voxbench", "load", "--target", f"{base}/chat/completions"),
            *("--rate", "4", "--duration", "5s", "--warmup", "1s", "--arrivals", "constant"),
            *("--no-store", "-o", str(tmp_path), "--machine-id", "m", *extra),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_end_to_end(tmp_path):
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as base:
        proc = _cli(base, tmp_path, "--slo", "ttft_p95<=400ms,tokens_per_second_p50>=40")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(next(tmp_path.glob("m/*/results.json")).read_text())
    assert doc["load"]["settings"]["chat"] is True
    assert doc["load"]["settings"]["model"] == "known-speed"
    lv = doc["load"]["levels"][0]
    assert _near(lv["ttft_ms"]["p50"], FIRST_MS) and _near(lv["tokens_per_second"]["p50"], RATE)
    assert _near(lv["itl_ms"]["p50"], 1000 / RATE)
    assert _near(lv["output_tokens_per_second"], LOAD_RATE * TOKENS)
    assert lv["tokens_source"] == "usage" and lv["meets_slo"] is True
    assert len(lv["samples"]["ttft_ms"]) == 20
    report = next(tmp_path.glob("m/*/report.md")).read_text()
    assert "ttft p95" in report and "output tok/s" in report and "audio s/s" not in report
    assert "output tokens/s" in proc.stderr  # the capacity line


def test_cli_exits_1_when_no_level_meets_a_ttft_slo(tmp_path):
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as base:
        proc = _cli(base, tmp_path, "--slo", "ttft_p50<100ms", "--model", "mine")
    assert proc.returncode == 1, proc.stderr
    assert "no level meets the SLO ttft_p50<100ms" in proc.stderr
    doc = json.loads(next(tmp_path.glob("m/*/results.json")).read_text())
    assert doc["load"]["settings"]["model"] == "mine"
