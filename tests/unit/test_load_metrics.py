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
            "ttfa_ms": {"p95": ttfa95},
            "latency_ms": {"p99_9": 500.0},
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


@pytest.mark.parametrize("bad", ["ttfa<300ms", "speed_p95<3", "ttfa_p95 ~ 3"])
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
