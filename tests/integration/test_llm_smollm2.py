"""SmolLM2-135M-Instruct on llama-cpp-python's server, for real: voxbench starts the server, times
its start-up as the cold start, and measures time to first token, tokens/s and inter-token latency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import voxbench
from voxbench.engines.smollm2 import SmolLM2Engine
from voxbench.results import Case
from voxbench.workloads import resolve_workload

MAX_TOKENS = 24

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SmolLM2Engine.check() is not None, reason=str(SmolLM2Engine.check())),
]


def test_voxbench_run_smollm2_end_to_end(tmp_path: Path) -> None:
    proc = voxbench(
        "run", "-e", "smollm2", "-w", "prompts", "-n", "3", "--warmup", "0",
        "-a", f"max_tokens={MAX_TOKENS}", "-o", str(tmp_path), "--json", "-", "--no-store",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cases = [Case.model_validate(c) for c in json.loads(proc.stdout)["cases"]]
    assert [c.input_id for c in cases] == ["prompt-1", "prompt-2", "prompt-3", "prompt-4"]
    for case in cases:
        assert case.error_count == 0, case.errors
        assert case.output_kind == "text" and case.streamed and case.output_text
        info = case.engine_info
        assert info["model"] == "smollm2" and info["gguf_bytes"] > 50_000_000
        assert info["llama_cpp_version"] and info["n_threads"] == 2
        # The cold start holds the server's whole start-up (process, model load, first answer).
        assert case.cold_start is not None and case.cold_start_ms is not None
        assert case.cold_start.load_ms >= info["server_ready_ms"] > 0
        assert case.ttft_ms is not None and case.itl_ms is not None
        assert case.latency_ms is not None and 0 < case.ttft_ms.median < case.latency_ms.median
        assert case.tokens_per_second is not None and case.tokens_per_second > 0
        assert case.output_tokens is not None and 1 < case.output_tokens <= MAX_TOKENS
        assert case.tokens_source in ("usage", "counted")
    # Greedy decoding (temperature 0): the known answer.
    assert "Paris" in (cases[0].output_text or "")
    report = next(tmp_path.rglob("report.md")).read_text()
    assert (
        "Text generation" in report
        and f"smollm2/prompts/prompt-1/max_tokens={MAX_TOKENS}/cpu" in report
    )


def test_streamed_pieces_are_the_servers_tokens() -> None:
    """What voxbench counts when the stream carries no usage is the server's own token count."""
    prompt = resolve_workload("prompts").items[1].text
    engine = SmolLM2Engine(max_tokens=MAX_TOKENS)
    engine.load()
    try:
        pieces = [c for c in engine.stream(prompt or "") if c.text]
        whole = engine.synthesize(prompt or "")
    finally:
        engine.close()
    assert whole.tokens_source == "usage" and whole.input_tokens and whole.input_tokens > 5
    assert whole.text == "".join(c.text for c in pieces)
    assert whole.tokens == len(pieces)
    assert engine._process is None  # close() stopped the server
