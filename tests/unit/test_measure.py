"""measure_call on calibration engines in this process (sleeps of a few ms)."""

from voxbench.engines.calibration import (
    FailingEngine,
    SleepEngine,
    StagedSleepEngine,
    StreamingSleepEngine,
)
from voxbench.run.measure import measure_call


def _loaded(engine):
    engine.load()
    return engine


def test_whole_call_timing_and_audio_length():
    rec = measure_call(
        _loaded(SleepEngine(call_ms=5, audio_seconds=0.5)), "x", use_stream=False, keep_audio=True
    )
    assert rec.error is None
    assert 5.0 <= rec.wall_ns / 1e6 < 15.0
    assert rec.audio_seconds == 0.5 and len(rec.audio) == 8000
    assert rec.ttfa_ns is None and rec.chunks == 0


def test_stream_records_ttfa_and_gaps():
    eng = _loaded(StreamingSleepEngine(first_chunk_ms=6, gap_ms=3, chunks=3, audio_seconds=0.3))
    rec = measure_call(eng, "x", use_stream=True, keep_audio=False)
    assert rec.chunks == 3 and len(rec.chunk_gaps_ns) == 2
    assert 6.0 <= rec.ttfa_ns / 1e6 < rec.wall_ns / 1e6
    assert all(g / 1e6 >= 3.0 for g in rec.chunk_gaps_ns)
    assert rec.audio is None and abs(rec.audio_seconds - 0.3) < 1e-3


def test_stages_from_context_manager_and_from_output_are_merged():
    rec = measure_call(
        _loaded(StagedSleepEngine(call_ms=10)), "x", use_stream=False, keep_audio=False
    )
    assert set(rec.stages) == {"prefill", "decode", "vocoder"}
    assert rec.stages["decode"] > rec.stages["prefill"]
    assert sum(rec.stages.values()) <= rec.wall_ns / 1e6


def test_engine_exception_is_recorded_not_raised():
    rec = measure_call(_loaded(FailingEngine()), "x", use_stream=False, keep_audio=False)
    assert rec.error["type"] == "RuntimeError"
    assert "calibration failure" in rec.error["message"]
