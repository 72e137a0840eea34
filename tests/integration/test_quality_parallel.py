"""Parallel quality evaluation: the metric families in spawned worker processes give exactly the
scores the serial path gives, every model is loaded once per evaluation, and a metric that cannot
be sent to a worker (a lambda) or whose worker dies is still scored or explained."""

from __future__ import annotations

import os

import numpy as np
import pytest

from voxbench.engines.espeak import EspeakEngine
from voxbench.quality import scoring
from voxbench.quality.base import Clip, Item, Metric, Value
from voxbench.quality.registry import all_metrics
from voxbench.quality.scoring import Entry, score_entries
from voxbench.quality.targets import DEFAULT_TARGETS

TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs.",
    "How vexingly quick daft zebras jump!",
)


def _altered(clip: Clip, seed: int) -> Clip:
    """A slightly different copy: gain 0.8 and white noise 30 dB down."""
    x = 0.8 * clip.audio.astype(np.float64)
    noise = np.random.default_rng(seed).standard_normal(len(x))
    x += noise * np.sqrt(np.mean(x**2)) * 10 ** (-30 / 20)
    return Clip(x.astype(np.float32), clip.sample_rate)


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    if reason := EspeakEngine.check():
        pytest.skip(reason)
    engine = EspeakEngine()
    engine.load()
    try:
        engine.synthesize("warm up")
        clips = [engine.synthesize(t) for t in TEXTS]
    finally:
        engine.close()
    found = []
    for k, (text, out) in enumerate(zip(TEXTS, clips, strict=True)):
        assert out.audio is not None and out.sample_rate
        clip = Clip(out.audio, out.sample_rate)
        found.append(
            Entry(f"c{k}", "text", Item(audio=clip, text=text, reference=_altered(clip, k)))
        )
    found.append(Entry("none", "text", None, "no audio saved for this case"))
    return found


def _comparable(scores: list[dict]) -> tuple[list[dict], list[float]]:
    """Everything but the wall time a metric took, and the values apart: numpy's SIMD sums can
    differ in the last bit with the alignment of an array (pickled to a worker or not)."""
    fields = [
        {name: s.model_dump(exclude={"compute_s", "value"}) for name, s in case.items()}
        for case in scores
    ]
    values = [s.value for case in scores for s in case.values() if s.value is not None]
    return fields, values


def test_parallel_scores_equal_serial_scores_for_every_metric(entries: list[Entry]):
    metrics = [m for m in all_metrics() if not m.unavailable()]
    if len(metrics) < 2:
        pytest.skip("fewer than two quality metrics can run here")
    serial = score_entries(entries, metrics, DEFAULT_TARGETS, jobs=1)
    parallel = score_entries(entries, metrics, DEFAULT_TARGETS, jobs=2)
    fields, values = _comparable(parallel)
    serial_fields, serial_values = _comparable(serial)
    assert fields == serial_fields  # availability, reasons, verdicts, transcripts: exactly
    assert values == pytest.approx(serial_values, rel=1e-12, abs=1e-15)
    # a real comparison: values were computed (not all unavailable) and the empty case explained
    judged = serial[0]
    assert sum(s.available for s in judged.values()) >= len(metrics)
    assert list(judged) == [v.name for m in metrics for v in m.values]  # serial order kept
    assert all(
        not s.available and s.reason == "no audio saved for this case" for s in serial[-1].values()
    )


def _pid(item: Item) -> dict:
    return {"pid": float(os.getpid())}


PID = Metric("pid", "test", (), (Value("pid", "", True),), _pid)


def test_each_metric_runs_in_one_worker_and_a_lambda_runs_here(entries: list[Entry]):
    here = Metric("here", "test", (), (Value("here", "", True),), lambda item: {"here": 1.0})
    other = Metric("pid2", "test", (), (Value("pid", "", True),), _pid)
    done: list[tuple[int, int]] = []
    scores = score_entries(
        entries, [PID, here, other], {}, jobs=2, progress=lambda d, n, what: done.append((d, n))
    )
    pids = {s["pid"].value for s in scores[:-1]}
    assert len(pids) == 1 and pids != {float(os.getpid())}  # one worker for all cases, not this
    assert all(s["here"].value == 1.0 for s in scores[:-1])  # not picklable: computed here
    assert done[-1] == (len(entries) * 3, len(entries) * 3)


def _die(item: Item) -> dict:
    os._exit(3)


def test_a_worker_that_dies_is_a_reason_not_a_hang(entries: list[Entry]):
    dying = Metric("dying", "test", (), (Value("dying", "", True),), _die)
    scores = score_entries(entries[:1], [dying, PID], {}, jobs=2)
    assert not scores[0]["dying"].available
    assert "worker process" in (scores[0]["dying"].reason or "")


def test_workers_get_their_share_of_the_cores(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(scoring.THREADS_ENV, raising=False)
    assert scoring.library_threads() is None  # this process: the libraries' defaults
    monkeypatch.setenv(scoring.THREADS_ENV, "1")
    assert scoring.library_threads() == 1
