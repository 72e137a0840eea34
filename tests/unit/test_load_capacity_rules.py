"""Known answers for the real-time stream capacity, continuity rates and capacity basis."""

import pytest

from voxbench.errors import ConfigError
from voxbench.load.capacity import evaluate, parse_slo
from voxbench.load.client import RequestRecord
from voxbench.load.metrics import summarize_level
from voxbench.load.schedule import Level
from voxbench.report.load import capacity_lines
from voxbench.results.document import LoadLevel, LoadResult, Percentiles, Stalls


def _summarize(records, kind="rate", value=1.0, **kw):
    kw = {"buffer_ms": 0, "max_lag_ms": 50, "min_duration_s": 1.0, **kw}
    return summarize_level(Level(kind, value), records, warmup_s=0.0, wall_s=10.0, **kw)


def _stream(due, chunks):
    """A stream asked at ``due`` whose chunks (arrival offset, audio seconds) arrive in turn."""
    got, arrivals = 0.0, []
    for offset, audio in chunks:
        got += audio
        arrivals.append((due + offset, got))
    return RequestRecord(
        due=due,
        sent=due,
        first_byte=arrivals[0][0],
        first_audio=arrivals[0][0],
        done=arrivals[-1][0],
        status=200,
        audio_seconds=got,
        arrivals=arrivals,
    )


def _smooth(due, start=0.1, n=5):
    """0.1 s chunks arriving in real time after ``start``: never stalls."""
    return _stream(due, [(start + 0.1 * k, 0.1) for k in range(n)])


def test_a_queued_stream_that_starts_after_5s_is_not_real_time():
    on_time = [_smooth(float(k)) for k in range(3)]
    queued = _smooth(3.0, start=5.0)
    st = _summarize([*on_time, queued]).stalls
    assert st.streams == 4 and st.streams_with_stalls == 0
    assert st.startup_bound_ms == 1000 and st.realtime_streams == 3
    # an SLO's ttfa bound is the start-up bound: 300 ms leaves the 100 ms starters in
    bound = 300.0
    assert _summarize([*on_time, queued], startup_bound_ms=bound).stalls.realtime_streams == 3
    assert _summarize([*on_time, queued], startup_bound_ms=6000.0).stalls.realtime_streams == 4


def test_one_millisecond_jitter_is_not_a_stall():
    # 0.1 s chunks every 0.101 s: 1 ms underruns, under the 10 ms default threshold
    rec = _stream(0.0, [(0.1 + 0.101 * k, 0.1) for k in range(10)])
    st = _summarize([rec]).stalls
    assert st.stall_threshold_ms == 10.0
    assert st.worst_underrun_ms.max == pytest.approx(1.0, abs=1e-6)
    assert st.streams_with_stalls == 0 and st.stall_rate == 0 and st.realtime_streams == 1
    st = _summarize([rec], stall_threshold_ms=0.5).stalls
    assert st.streams_with_stalls == 1 and st.realtime_streams == 0


def test_a_150ms_underrun_counts_in_continuity_200_not_100():
    smooth = _smooth(0.0)
    gap = _stream(1.0, [(0.1, 0.1), (0.1 + 0.1 + 0.15, 0.1)])  # runs out 150 ms before more
    st = _summarize([smooth, gap]).stalls
    assert st.worst_underrun_ms.max == pytest.approx(150.0)
    assert st.continuity_100ms == pytest.approx(0.5)
    assert st.continuity_200ms == pytest.approx(1.0)
    assert st.realtime_streams == 1


def _level(concurrent, audio_rate, label="104 clients"):
    one = Percentiles(n=200, mean=0, p50=0, p90=0, p95=0, p99=0, p99_9=0, max=0)
    return LoadLevel(
        label=label,
        kind="concurrency",
        value=104,
        requests=200,
        ok=200,
        audio_seconds_per_second=audio_rate,
        achieved_rate=audio_rate,
        error_rate=0.0,
        stalls=Stalls(
            buffer_ms=0,
            streams=200,
            streams_with_stalls=0,
            stall_rate=0.0,
            count=one,
            stall_ms=one,
            startup_ms=one,
            realtime_streams=200,
            realtime_concurrent=concurrent,
        ),
    )


def test_realtime_streams_are_capped_by_the_audio_made_per_second():
    cap = evaluate([_level(104.0, 20.0)], [])
    assert cap["realtime_streams"] == pytest.approx(20.0) and cap["realtime_capped"] is True
    load = LoadResult(target="t", settings={}, levels=[_level(104.0, 20.0)], capacity=cap)
    assert any("capped at the audio seconds" in line for line in capacity_lines(load))
    cap = evaluate([_level(12.0, 20.0)], [])
    assert cap["realtime_streams"] == pytest.approx(12.0) and cap["realtime_capped"] is False


def test_capacity_says_which_level_and_why():
    good = _level(5.0, 10.0, label="low")
    errs = _level(5.0, 30.0, label="high")
    errs.value, errs.error_rate = 208, 0.05
    cap = evaluate([good, errs], [])
    assert cap["level"] == "low"
    assert cap["basis"] == "low: highest level with errors at most 1%, valid, no SLO given"
    errs.error_rate = 0.0
    errs.validity = None  # not judged: valid
    assert evaluate([good, errs], [])["level"] == "high"
    from voxbench.results.validity import verdict

    errs.validity = verdict(["too few samples"])
    assert evaluate([good, errs], [])["level"] == "low"
    cap = evaluate([good], parse_slo("error_rate<0.1%"))
    assert cap["basis"] == "low: highest valid level meeting error_rate<0.1%"
    assert evaluate([], [])["basis"].startswith("no level qualifies")


def test_unknown_percentile_is_one_line_naming_the_known_ones():
    with pytest.raises(ConfigError) as err:
        parse_slo("ttfa_p75<300ms")
    message = str(err.value)
    assert "\n" not in message and "p75" in message
    assert all(p in message for p in ("p50", "p90", "p95", "p99", "p99.9"))
