"""voxbench load against servers whose behaviour is known: queueing, faults, stalls."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.queue_server import QueueServer
from voxbench.load.client import Target, run_level
from voxbench.load.metrics import summarize_level
from voxbench.load.schedule import Level, intended_offsets

BODY = ({"input": "hello", "stream": True},)


def simulate(offsets: list[float], workers: int, service: float) -> list[float]:
    """Latency of each request through `workers` FIFO servers of fixed service time."""
    free = [0.0] * workers
    out = []
    for t in offsets:
        i = min(range(workers), key=free.__getitem__)
        start = max(t, free[i])
        free[i] = start + service
        out.append(free[i] - t)
    return out


def run(url: str, rate: float, seconds: float, timeout: float = 30.0, warmup: float = 0.5):
    offsets = intended_offsets(rate, duration_s=seconds, requests=None, arrivals="constant", seed=1)
    target = Target(url=url, bodies=BODY, timeout_s=timeout)
    records, wall = run_level(
        target, Level("rate", rate), offsets, duration_s=seconds, requests=None
    )
    return offsets, summarize_level(
        Level("rate", rate),
        records,
        warmup_s=warmup,
        wall_s=wall,
        buffer_ms=0,
        max_lag_ms=5,
        min_duration_s=1.0,
    )


def test_achieved_rate_at_2x_overload_is_the_servers_capacity():
    """One worker × 50 ms completes exactly 20 req/s; offered 40/s it is 2× overloaded. The
    achieved rate, audio seconds per second (1 s of audio each) and the real-time streams (none
    qualify: the queue makes them start late) must say 20, not ~18.3 (the old span to the last
    completion counted the queue's tail as idle time)."""
    from voxbench.load.capacity import evaluate

    with QueueServer(workers=1, service_ms=50, audio_ms=1000) as srv:
        _, level = run(srv.url, rate=40.0, seconds=4.5)
    assert level.errors == {} and not level.saturated
    assert level.achieved_rate == pytest.approx(20.0, rel=0.05)
    assert level.audio_seconds_per_second == pytest.approx(20.0, rel=0.05)
    assert level.stalls is not None and level.stalls.realtime_concurrent is not None
    assert level.stalls.realtime_concurrent <= level.audio_seconds_per_second
    assert evaluate([level], [])["realtime_streams"] is None


def test_realtime_streams_are_bounded_by_the_audio_the_server_makes():
    """The server makes 20 audio-seconds per second. At 10 req/s (1 s of audio each) it feeds
    10 real-time listeners; at 40 req/s the queue grows and most streams start late. The old
    figure (mean in-flight of the highest stall-free level) claimed the overloaded level's ~50."""
    from voxbench.load.capacity import evaluate

    with QueueServer(workers=1, service_ms=50, audio_ms=1000) as srv:
        _, under = run(srv.url, rate=10.0, seconds=2.5)
        _, over = run(srv.url, rate=40.0, seconds=2.5)
    cap = evaluate([under, over], [])
    assert cap["realtime_level"] == "10 req/s"
    assert cap["realtime_streams"] == pytest.approx(10.0, rel=0.05)
    assert over.stalls is not None and over.stalls.realtime_concurrent is not None
    assert over.stalls.realtime_concurrent <= 20.0 * 1.05


@pytest.mark.parametrize("rate", [10.0, 60.0])
def test_throughput_and_latency_follow_the_queue(rate):
    """2 workers × 50 ms = 40 req/s. Below it latency is the service time; above it the
    achieved rate caps at 40/s and latency grows as the queue does."""
    workers, service = 2, 0.05
    with QueueServer(workers=workers, service_ms=service * 1000) as srv:
        offsets, level = run(srv.url, rate, seconds=4.0)
    assert level["errors"] == {} and not level["saturated"]
    expected = [
        lat * 1000
        for off, lat in zip(offsets, simulate(offsets, workers, service), strict=True)
        if off >= 0.5
    ]
    import numpy as np

    for key, q in (("p50", 50), ("p95", 95)):
        want = float(np.percentile(expected, q))
        assert level["latency_ms"][key] == pytest.approx(want, rel=0.15, abs=8), key
    if rate < workers / service:
        assert level["achieved_rate"] == pytest.approx(rate, rel=0.1)
        assert level["latency_ms"]["p50"] < 60
    else:
        assert level["achieved_rate"] == pytest.approx(workers / service, rel=0.1)
        assert level["latency_ms"]["p95"] > 500  # queueing, counted from the intended send time


def test_error_kinds_are_counted():
    kinds = {0: "ok", 1: "500", 2: "reset", 3: "bad_audio", 4: "slow"}
    with QueueServer(
        workers=4, service_ms=5, chunks=3, slow_s=3.0, fault=lambda i: kinds[i % 5]
    ) as srv:
        _, level = run(srv.url, rate=10.0, seconds=3.0, timeout=1.0, warmup=0.0)
    errors = level["errors"]
    assert set(errors) == {"http_500", "reset", "bad_audio", "timeout"}, level["error_examples"]
    assert level["ok"] == pytest.approx(level["requests"] / 5, abs=1)
    assert all(abs(n - level["requests"] / 5) <= 1 for n in errors.values())
    assert level["error_rate"] == pytest.approx(0.8, abs=0.05)


def test_slow_streams_stall_and_a_buffer_hides_them():
    """0.5 s of audio in 5 chunks spread over the service time … then a stalling stream."""
    from voxbench.load.metrics import stalls

    with QueueServer(workers=2, service_ms=5, audio_ms=500, chunks=5, slow_s=0.2) as srv:
        target = Target(url=srv.url, bodies=BODY, timeout_s=10)
        offsets = intended_offsets(2, duration_s=2, requests=None, arrivals="constant", seed=1)
        srv.fault = lambda i: "slow"  # 0.1 s of audio every 0.2 s: half real time
        records, _ = run_level(target, Level("rate", 2), offsets, duration_s=2, requests=None)
    rec = records[0]
    assert rec.error is None and len(rec.arrivals) == 5
    count, stalled, _ = stalls(rec.arrivals, rec.due, buffer_s=0.0)
    assert count == 4 and stalled == pytest.approx(0.4, abs=0.08)
    assert stalls(rec.arrivals, rec.due, buffer_s=0.5)[0] == 0


@pytest.mark.slow
def test_cli_load_prints_levels_and_capacity(tmp_path):
    with QueueServer(workers=2, service_ms=50) as srv:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "voxbench",
                "load",
                "--target",
                srv.url,
                "--rate",
                "5,20,80",
                "--duration",
                "3s",
                "--warmup",
                "1s",  # the first level's first sends pay the process's first-use costs
                "--slo",
                "latency_p95<200ms,error_rate<1%",
                "--arrivals",
                "constant",
                "--cost-per-hour",
                "0.526",
                "--min-duration",
                "2s",
                "-o",
                str(tmp_path),
                "--json",
                "-",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    levels = doc["load"]["levels"]
    assert [lv["meets_slo"] for lv in levels] == [True, True, False]
    assert doc["load"]["capacity"]["level"] == "20 req/s"
    assert "capacity: 20 req/s meets" in proc.stderr and "Load levels" in proc.stderr
    assert doc["load"]["cost"]["per_request"] > 0
    report = next(tmp_path.glob("*/*/report.md")).read_text()
    assert "## Load levels" in report and "## Throughput and latency" in report


def test_exit_status_when_every_request_failed(tmp_path):
    """A closed port: 100% errors is a measured result that fails (exit 1), written first."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "voxbench", "load"),
            *("--target", f"http://127.0.0.1:{port}/v1/audio/speech"),
            *("--rate", "20", "--duration", "1s", "--warmup", "0s", "--arrivals", "constant"),
            "--min-duration=0s",
            *("--slo", "latency_p50<1s", "--no-store", "-o", str(tmp_path), "--machine-id", "m"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "every request failed (20 of 20)" in proc.stderr
    assert "no level meets the SLO latency_p50<1s" in proc.stderr
    doc = json.loads(next(tmp_path.glob("m/*/results.json")).read_text())
    level = doc["load"]["levels"][0]
    assert level["errors"] == {"connect": 20} and level["validity"]["valid"] is False
    assert "error rate 100.00% over the 1.00% limit" in level["validity"]["reasons"]
    report = next(tmp_path.glob("m/*/report.md")).read_text()
    assert "## Invalid levels" in report and "INVALID" in report


@pytest.mark.slow
def test_ctrl_c_keeps_the_levels_already_measured(tmp_path):
    """Like ``voxbench run``: SIGINT mid-run writes the finished levels (no finished_at), the
    report, one line on stderr and exit status 130."""
    import signal
    import time

    from support.cli import terminal_like_sigint

    with QueueServer(workers=2, service_ms=10) as srv:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "voxbench", "load", "--target", srv.url),
                *("--rate", "5,5,5", "--duration", "1s", "--warmup", "0s"),
                *("--no-store", "-o", str(tmp_path), "--machine-id", "m"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=terminal_like_sigint,
        )
        deadline = time.monotonic() + 60
        results = None
        while time.monotonic() < deadline and results is None:
            found = list(tmp_path.glob("m/*/results.json"))
            if found and json.loads(found[0].read_text())["load"]["levels"]:
                results = found[0]
            time.sleep(0.02)
        assert results is not None, "no level finished in time"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted after 1 of 3 levels" in err
    doc = json.loads(results.read_text())
    assert len(doc["load"]["levels"]) == 1 and doc["finished_at"] is None
    assert "## Load levels" in (results.parent / "report.md").read_text()


def test_bad_load_options_are_one_line(tmp_path):
    from support.cli import assert_one_line_error, voxbench

    assert_one_line_error(voxbench("load", "--target", "ftp://x", "--rate", "1"), "http(s)://")
    assert_one_line_error(
        voxbench("load", "--target", "http://127.0.0.1:9/v1/audio/speech"),
        "exactly one of --rate or --concurrency",
    )
    assert_one_line_error(
        voxbench("load", "--target", "http://127.0.0.1:9/x", "--rate", "1", "--slo", "ttfa<3"),
        "SLO clause",
    )
