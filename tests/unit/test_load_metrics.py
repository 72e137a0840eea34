import pytest

from voxbench.load.client import RequestRecord
from voxbench.load.metrics import dist, stalls, summarize_level
from voxbench.load.schedule import Level, intended_offsets, parse_duration


def test_poisson_schedule_is_seeded_and_has_the_rate():
    a = intended_offsets(50, duration_s=100, requests=None, arrivals="poisson", seed=1)
    b = intended_offsets(50, duration_s=100, requests=None, arrivals="poisson", seed=1)
    assert a == b and abs(len(a) / 100 - 50) < 2.5
    c = intended_offsets(4, duration_s=None, requests=5, arrivals="constant", seed=1)
    assert c == [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("text,s", [("20s", 20), ("2m", 120), ("500ms", 0.5), ("3", 3)])
def test_durations(text, s):
    assert parse_duration(text) == s


def test_stalls_real_time_stream_never_stalls():
    # 10 chunks of 0.1 s audio, one every 0.1 s from t=0.1: exactly real time
    arrivals = [(0.1 * (i + 1), 0.1 * (i + 1)) for i in range(10)]
    assert stalls(arrivals, 0.0, buffer_s=0.0) == (0, 0.0, pytest.approx(0.1))


def test_stalls_slow_stream_and_what_a_buffer_buys():
    # 4 chunks of 0.1 s audio arriving every 0.2 s: half real time
    arrivals = [(0.2 * (i + 1), 0.1 * (i + 1)) for i in range(4)]
    count, stalled, startup = stalls(arrivals, 0.0, buffer_s=0.0)
    assert count == 3 and stalled == pytest.approx(0.3) and startup == pytest.approx(0.2)
    # a buffer of the whole stream: one long start-up wait, no stall
    assert stalls(arrivals, 0.0, buffer_s=0.4) == (0, 0.0, pytest.approx(0.8))


def test_level_summary_counts_from_intended_time_and_excludes_warmup():
    recs = []
    for i in range(10):
        r = RequestRecord(
            due=float(i),
            sent=i + 0.001,
            first_byte=i + 0.05,
            first_audio=i + 0.06,
            done=i + 0.2,
            status=200,
            audio_seconds=1.0,
        )
        recs.append(r)
    recs[9].error, recs[9].status = "http_500", 500
    out = summarize_level(
        Level("rate", 1.0), recs, warmup_s=2.0, wall_s=10.0, buffer_ms=0, max_lag_ms=5
    )
    assert out["requests"] == 8 and out["warmup_requests"] == 2 and out["ok"] == 7
    assert out["errors"] == {"http_500": 1} and out["error_rate"] == pytest.approx(1 / 8)
    assert out["latency_ms"]["p50"] == pytest.approx(200)
    assert out["ttfa_ms"]["p99"] == pytest.approx(60)
    assert out["lag_ms"]["max"] == pytest.approx(1) and not out["saturated"]
    assert out["rtf"]["p50"] == pytest.approx(0.2)


def test_dist_keys():
    d = dist([1.0, 2.0, 3.0, 4.0])
    assert set(d) == {"n", "mean", "p50", "p90", "p95", "p99", "p99_9", "max"}


def test_slo_parsing_and_capacity():
    from voxbench.load.capacity import evaluate, parse_slo

    clauses = parse_slo("ttfa_p95<300ms, error_rate<0.1%, latency_p99.9<=2s")
    assert [(c.metric, c.pct, c.op, c.bound) for c in clauses] == [
        ("ttfa", "95", "<", 300.0),
        ("error_rate", None, "<", 0.001),
        ("latency", "99.9", "<=", 2000.0),
    ]

    def level(v, ttfa95, err, saturated=False):
        return {
            "label": f"{v} req/s",
            "kind": "rate",
            "value": v,
            "achieved_rate": v,
            "audio_seconds_per_second": 2 * v,
            "in_flight_mean": v / 10,
            "saturated": saturated,
            "errors": {},
            "error_rate": err,
            "ttfa_all_ms": {"p95": ttfa95, "n": 1000},
            "latency_all_ms": {"p99_9": 500.0, "n": 10000},
        }

    levels = [
        level(1, 100, 0),
        level(2, 250, 0),
        level(4, 900, 0),
        level(8, 100, 0, saturated=True),
    ]
    cap = evaluate(levels, clauses)
    assert cap["level"] == "2 req/s" and cap["rate"] == 2
    assert [lv["meets_slo"] for lv in levels] == [True, True, False, False]


@pytest.mark.parametrize(
    "bad", ["ttfa<300ms", "speed_p95<3", "ttfa_p95 ~ 3", "ttfa_p75<300ms", "error_rate_p95<1%"]
)
def test_bad_slo(bad):
    from voxbench.errors import ConfigError
    from voxbench.load.capacity import parse_slo

    with pytest.raises(ConfigError):
        parse_slo(bad)


def test_cost():
    from voxbench.load.capacity import cost

    c = cost(
        {"rate": 2.0, "audio_seconds_per_second": 10.0},
        per_hour=0.526,
        hardware_price=3000.0,
        running_per_month=50.0,
    )
    assert c["per_request"] == pytest.approx(0.526 / 3600 / 2)
    assert c["per_audio_hour"] == pytest.approx(0.0526)
    assert c["monthly_at_full_use"] == pytest.approx(0.526 * 730)
    assert c["break_even_month"] == pytest.approx(3000 / (0.526 * 730 - 50))


# --- the figures of issue 15 ------------------------------------------------------------------


def fifo(dues: list[float], service: float, workers: int = 1) -> list[RequestRecord]:
    """Records of requests through ``workers`` FIFO servers of fixed ``service`` seconds: a server
    of known capacity (workers / service requests per second)."""
    free = [0.0] * workers
    out = []
    for t in dues:
        i = min(range(workers), key=free.__getitem__)
        start = max(t, free[i])
        free[i] = start + service
        out.append(
            RequestRecord(
                due=t,
                sent=t,
                first_byte=free[i],
                first_audio=free[i],
                done=free[i],
                status=200,
                audio_seconds=1.0,
                arrivals=[(free[i], 1.0)],
            )
        )
    return out


def summarize(records, rate=40.0, warmup=0.5, **kw):
    kw = {"buffer_ms": 0, "max_lag_ms": 5, "min_duration_s": 1.0, **kw}
    return summarize_level(Level("rate", rate), records, warmup_s=warmup, wall_s=10.0, **kw)


def test_achieved_rate_at_2x_overload_is_the_servers_capacity():
    """40 req/s offered to a server that completes exactly 20/s. Counting from the first due time
    to the last completion took the queue's tail as idle time: 180 / 9.5 s = 18.9 req/s."""
    records = fifo([k / 40 for k in range(200)], service=0.05)
    level = summarize(records)
    assert level.window_s == pytest.approx(4.5)
    assert level.achieved_rate == pytest.approx(20.0, rel=0.01)
    assert level.audio_seconds_per_second == pytest.approx(20.0, rel=0.01)


def test_in_flight_is_littles_law_over_the_window():
    """10 req/s, 50 ms each: 0.5 in flight exactly (the old span, to the last completion, made
    it 0.495)."""
    level = summarize(fifo([k / 10 for k in range(50)], service=0.05), rate=10.0, warmup=0.0)
    assert level.window_s == pytest.approx(5.0)
    assert level.achieved_rate == pytest.approx(10.0, rel=1e-9)
    assert level.in_flight_mean == pytest.approx(0.5, rel=1e-9)


def test_latency_over_all_requests_counts_failures_at_their_time():
    """5% timeouts at 60 s: the success-only p99 stays 0.5 s, the all-request p99 is 60 s, and
    the SLO reads the all-request figure unless the clause says ``_ok``."""
    from voxbench.load.capacity import evaluate, parse_slo

    records = [
        RequestRecord(due=k / 10, sent=k / 10, done=k / 10 + 0.5, first_audio=k / 10 + 0.1)
        for k in range(100)
    ]
    for r in records[::20]:
        r.done, r.first_audio, r.error = r.due + 60.0, -1.0, "timeout"
    level = summarize(records, rate=10.0, warmup=0.0, max_error_rate=0.1)
    assert level.latency_ms.p99 == pytest.approx(500) and level.latency_ms.n == 95
    assert level.latency_all_ms.p99 == pytest.approx(60000) and level.latency_all_ms.n == 100
    assert level.ttfa_all_ms.max == pytest.approx(60000) and level.ttfa_ms.max == pytest.approx(100)
    assert level.samples.latency_all_ms[0] == pytest.approx(60000)
    evaluate([level], parse_slo("latency_p95<2s,latency_ok_p95<2s,ttfa_ok_p95<200ms"))
    assert level.slo == {
        "latency_p95<2s": False,
        "latency_ok_p95<2s": True,
        "ttfa_ok_p95<200ms": True,
    }


def test_jitter_below_the_threshold_is_not_a_stall():
    # 0.1 s chunks every 0.105 s: 5 ms underruns between chunks
    arrivals = [(0.105 * (i + 1), 0.1 * (i + 1)) for i in range(10)]
    rec = RequestRecord(due=0.0, sent=0.0, first_audio=0.105, done=1.05, audio_seconds=1.0)
    rec.arrivals = arrivals
    level = summarize([rec], rate=1.0, warmup=0.0, stall_threshold_ms=10.0)
    assert level.stalls.streams_with_stalls == 0 and level.stalls.realtime_streams == 1
    assert level.stalls.worst_underrun_ms.max == pytest.approx(5.0)
    level = summarize([rec], rate=1.0, warmup=0.0, stall_threshold_ms=1.0)
    assert level.stalls.streams_with_stalls == 1 and level.stalls.realtime_streams == 0
    assert level.stalls.count.max == 9


def test_continuity_rates_and_the_startup_bound():
    """Streams whose worst underrun is 50, 150 and 300 ms; one starts after 1.5 s."""
    recs = []
    for k, gap in enumerate((0.05, 0.15, 0.3)):
        t = float(k)
        r = RequestRecord(due=t, sent=t, first_audio=t + 0.1, done=t + 0.2 + gap, audio_seconds=0.2)
        r.arrivals = [(t + 0.1, 0.1), (t + 0.2 + gap, 0.2)]
        recs.append(r)
    late = RequestRecord(due=3.0, sent=3.0, first_audio=4.5, done=4.5, audio_seconds=0.2)
    late.arrivals = [(4.5, 0.2)]
    st = summarize([*recs, late], rate=1.0, warmup=0.0).stalls
    assert st.worst_underrun_ms.max == pytest.approx(300)
    assert st.continuity_100ms == pytest.approx(2 / 4) and st.continuity_200ms == pytest.approx(
        3 / 4
    )
    # not real time: the three that stall over 10 ms, and the one that starts after 1 s
    assert st.startup_bound_ms == 1000 and st.realtime_streams == 0
    st = summarize([*recs, late], rate=1.0, warmup=0.0, startup_bound_ms=2000.0).stalls
    assert st.realtime_streams == 1


def test_realtime_streams_never_exceed_the_audio_made_per_second():
    """A server making 20 audio-seconds per second (1 s of audio in 50 ms), offered 40 req/s: the
    queue grows, so most streams start late; mean in-flight (the old figure) is ~50."""
    from voxbench.load.capacity import evaluate

    under = summarize(fifo([k / 10 for k in range(100)], 0.05), rate=10.0, warmup=0.0)
    over = summarize(fifo([k / 40 for k in range(400)], 0.05), rate=40.0, warmup=0.0)
    assert under.stalls.realtime_concurrent == pytest.approx(10.0, rel=1e-9)
    assert over.stalls.realtime_concurrent <= over.audio_seconds_per_second <= 20.0 + 1e-9
    assert over.in_flight_mean > 40  # what was claimed as concurrent real-time streams
    cap = evaluate([under, over], [])
    assert cap["realtime_streams"] == pytest.approx(10.0) and cap["realtime_level"] == "10 req/s"


def test_capacity_without_slo_is_the_highest_valid_level():
    from voxbench.load.capacity import evaluate

    good = summarize(fifo([k / 10 for k in range(100)], 0.05), rate=10.0, warmup=0.0)
    records = fifo([k / 20 for k in range(200)], 0.01)
    for r in records[::20]:  # 5% errors
        r.error = "http_503"
    bad = summarize(records, rate=20.0, warmup=0.0)
    assert (
        not bad.validity.valid and "error rate 5.00% over the 1.00% limit" in bad.validity.reasons
    )
    cap = evaluate([good, bad], [])
    assert cap["level"] == "10 req/s" and "no SLO" in cap["rule"] and "1.00%" in cap["rule"]


def test_stall_rate_without_streams_is_not_measured():
    from voxbench.load.capacity import evaluate, parse_slo

    records = fifo([k / 10 for k in range(100)], 0.05)
    for r in records:
        r.arrivals = []
    level = summarize(records, rate=10.0, warmup=0.0)
    assert level.stalls is None
    evaluate([level], parse_slo("stall_rate<1%"))
    assert level.slo == {"stall_rate<1%": None} and level.meets_slo is False
    assert level.slo_notes == {"stall_rate<1%": "not measured"}


def test_level_validity_reasons():
    ok = summarize(fifo([k / 10 for k in range(100)], 0.05), rate=10.0, warmup=0.0)
    assert ok.validity.valid and ok.validity.reasons == []
    few = summarize(fifo([k / 10 for k in range(9)], 0.05), rate=10.0, warmup=0.0)
    assert few.validity.reasons == [
        "too few samples: 9 measured requests (fewer than 10)",
        "duration 0.9 s under the 1 s minimum",
    ]
    late = fifo([k / 10 for k in range(100)], 0.05)
    for k, r in enumerate(late):  # the generator falls behind: 20 ms later every request
        r.sent = r.due + 0.02 * k
    lagged = summarize(late, rate=10.0, warmup=0.0)
    assert lagged.saturated and not lagged.validity.valid
    assert lagged.validity.reasons[0].startswith("load generator saturated: sent 8.")
    assert lagged.validity.reasons[1].startswith("schedule lag p99 1.9")
    short = summarize(
        fifo([k / 10 for k in range(100)], 0.05), rate=10.0, warmup=0.0, min_duration_s=20
    )
    assert short.validity.reasons == ["duration 10 s under the 20 s minimum"]


def test_failures_decide_the_exit_status():
    from voxbench.load.capacity import evaluate, parse_slo
    from voxbench.load.run import failures
    from voxbench.results.document import LoadResult

    ok = summarize(fifo([k / 10 for k in range(100)], 0.05), rate=10.0, warmup=0.0)
    load = LoadResult(target="http://127.0.0.1:9/", settings={}, levels=[ok])
    load.capacity = evaluate(load.levels, parse_slo("latency_p50<100ms"))
    assert failures(load) == []
    load.capacity = evaluate(load.levels, parse_slo("latency_p50<10ms"))
    assert failures(load) == ["no level meets the SLO latency_p50<10ms"]
    dead = [
        RequestRecord(due=k / 10, sent=k / 10, done=k / 10, error="connect") for k in range(100)
    ]
    load.levels = [summarize(dead, rate=10.0, warmup=0.0)]
    load.capacity = evaluate(load.levels, [])
    assert failures(load) == [
        "every request failed (100 of 100)",
        "level 10 req/s is invalid: error rate 100.00% over the 1.00% limit",
    ]


def test_unsupported_percentiles_are_marked_and_said_so():
    """100 samples support p95 (5 beyond it) but not p99 (which needs 500)."""
    from voxbench.load.capacity import evaluate, parse_slo
    from voxbench.report.load import levels_section
    from voxbench.results.document import LoadResult

    level = summarize(fifo([k / 10 for k in range(100)], 0.05), rate=10.0, warmup=0.0)
    evaluate([level], parse_slo("latency_p99<1s,latency_p95<1s"))
    assert level.slo_notes == {
        "latency_p99<1s": "p99 from 100 samples is not supported (needs 500)"
    }
    section = levels_section(LoadResult(target="t", settings={}, levels=[level]))
    row = dict(zip(section.headers, section.rows[0], strict=True))
    assert row["p95"] == "50.0" and row["p99"] == "50.0*" and row["p99.9"] == "50.0*"
    assert "fewer samples than the percentile needs (p95 100, p99 500, p99.9 5,000)" in section.note


def test_cost_per_request_has_significant_digits_and_its_level():
    from voxbench.load.capacity import cost
    from voxbench.report.load import capacity_lines
    from voxbench.results.document import LoadResult

    cap = {
        "slo": [],
        "rule": "highest valid level",
        "level": "20 req/s",
        "rate": 20.0,
        "audio_seconds_per_second": 100.0,
    }
    load = LoadResult(target="t", settings={}, capacity=cap, cost=cost(cap, per_hour=0.526))
    text = "\n".join(capacity_lines(load))
    assert "0.00000731 per request" in text and "0.00526 per audio hour" in text
    assert "cost at 20 req/s" in text and "capacity: 20 req/s, the highest valid level" in text


def test_achieved_rate_of_a_10s_overloaded_level_is_the_servers_capacity():
    """Offered 40 req/s for 2 s of warm-up and 10 s measured to a server completing exactly
    20/s. The old denominator (first measured due time to the last completion) read
    400 / 22 s = 18.2 req/s; completions inside the 10 s sending window give 20."""
    records = fifo([k / 40 for k in range(480)], service=0.05)
    level = summarize(records, warmup=2.0)
    assert level.window_s == pytest.approx(10.0)
    assert level.achieved_rate == pytest.approx(20.0, rel=0.05)
    assert level.achieved_rate == pytest.approx(20.0, rel=1e-9)
    assert level.audio_seconds_per_second == pytest.approx(20.0, rel=1e-9)
    # 40t sent and 20t done by time t: 20t in flight, whose mean over [2, 12) s is 140
    assert level.in_flight_mean == pytest.approx(140, rel=0.01)


def test_an_unloaded_level_achieves_its_offered_rate():
    """20 req/s to a server ten times faster: the achieved rate is the offered 20 exactly (the
    old span, ending at the last completion rather than one mean gap after the last send, read
    200 / 9.96 s = 20.08)."""
    level = summarize(fifo([k / 20 for k in range(240)], service=0.01), rate=20.0, warmup=2.0)
    assert level.window_s == pytest.approx(10.0)
    assert level.achieved_rate == pytest.approx(20.0, rel=1e-9)
    assert level.in_flight_mean == pytest.approx(20 * 0.01, rel=1e-9)
    assert level.validity.valid


def test_a_request_with_no_end_counts_at_the_client_timeout():
    """95 requests at 0.5 s and 5 with no end recorded: with the client's 60 s timeout they
    count at 60 s in the all-request figures; the success-only p99 stays 500 ms."""
    records = [
        RequestRecord(due=k / 10, sent=k / 10, done=k / 10 + 0.5, first_audio=k / 10 + 0.1)
        for k in range(100)
    ]
    for r in records[::20]:
        r.done, r.first_audio, r.error = -1.0, -1.0, "timeout"
    level = summarize(records, rate=10.0, warmup=0.0, max_error_rate=0.1, timeout_s=60.0)
    assert level.latency_ms.p99 == pytest.approx(500) and level.latency_ms.n == 95
    assert level.latency_all_ms.n == 100 and level.latency_all_ms.p99 == pytest.approx(60000)
    assert level.ttfa_all_ms.n == 100 and level.ttfa_all_ms.max == pytest.approx(60000)
    # without the timeout such requests cannot be placed, and are left out
    assert summarize(records, rate=10.0, warmup=0.0).latency_all_ms.n == 95


def test_error_rate_reason_and_its_limit():
    records = fifo([k / 10 for k in range(100)], 0.05)
    for r in records[:35]:
        r.error = "http_503"
    level = summarize(records, rate=10.0, warmup=0.0)
    assert level.validity.reasons == ["error rate 35.00% over the 1.00% limit"]
    assert summarize(records, rate=10.0, warmup=0.0, max_error_rate=0.5).validity.valid


def test_the_all_request_tails_are_in_the_catalogue():
    from voxbench.results.metrics import BY_NAME

    records = fifo([k / 10 for k in range(100)], 0.05)
    records[0].done, records[0].error = records[0].due + 60.0, "timeout"
    level = summarize(records, rate=10.0, warmup=0.0)
    assert BY_NAME["latency_all_p99_ms"].of_level(level) == level.latency_all_ms.p99
    assert BY_NAME["ttfa_all_p99_ms"].of_level(level) == level.ttfa_all_ms.p99
    assert BY_NAME["latency_all_p99_ms"].of_level(level) > BY_NAME["latency_p99_ms"].of_level(level)
