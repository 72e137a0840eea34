"""``voxbench load --executor ray``: N Ray actors sharing one schedule against a server of known
capacity give the figures one generator gives, from every raw record merged.

The server is tests/support/queue_server.QueueServer (a real HTTP server on 127.0.0.1 whose
timing is known: 2 slots × 50 ms = 40 requests/s). One local Ray for the module
(``ray.init(num_cpus=2)``: one CPU per load worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support.queue_server import QueueServer
from voxbench.load.schedule import Level, intended_offsets

pytestmark = pytest.mark.slow

SLOTS, SERVICE_S = 2, 0.05  # capacity 40 requests/s
DURATION_S, WARMUP_S, SEED = 5.0, 1.0, 7
MAX_LAG_MS = 50.0  # a 2-core test machine, shared with Ray's own processes (15-20 ms seen)
URL = "http://127.0.0.1:9/v1/audio/speech"  # never contacted: the options are refused first


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def simulate(offsets: list[float], workers: int, service: float) -> list[float]:
    """Latency of each request through ``workers`` FIFO slots of fixed service time."""
    free = [0.0] * workers
    out = []
    for t in offsets:
        i = min(range(workers), key=free.__getitem__)
        start = max(t, free[i])
        free[i] = start + service
        out.append(free[i] - t)
    return out


def load(url: str, tmp_path, rates: list[float], **options):
    from voxbench.load.run import LoadRequest, run_load

    req = LoadRequest(
        target=url,
        levels=[Level("rate", r) for r in rates],
        duration_s=DURATION_S,
        warmup_s=WARMUP_S,
        arrivals="poisson",
        seed=SEED,
        min_duration_s=1.0,
        max_lag_ms=MAX_LAG_MS,
        pause_s=0.5,
        output=tmp_path,
        **options,
    )
    doc, path = run_load(req)
    return doc.load, path


def test_two_ray_workers_give_one_generators_figures(ray_cluster, tmp_path):
    """Below capacity (20/s) and at 1.5× it (60/s: the server completes exactly 40/s), 2 Ray
    workers at the total rate give one generator's achieved rate (within 5%) and latency
    percentiles (p50 within 20%), both as the queue predicts; the merged level holds every
    raw record of the schedule, each worker's share, and each worker's lag and rate."""
    rates = [20.0, 60.0]
    with QueueServer(workers=SLOTS, service_ms=SERVICE_S * 1000) as srv:
        one, _ = load(srv.url, tmp_path / "local", rates)
        many, path = load(srv.url, tmp_path / "ray", rates, executor="ray", workers=2)
    saved = json.loads((path / "results.json").read_text())["load"]["levels"]
    for i, (rate, a, b) in enumerate(zip(rates, one.levels, many.levels, strict=True)):
        offsets = intended_offsets(
            rate, duration_s=DURATION_S + WARMUP_S, requests=None, arrivals="poisson", seed=SEED + i
        )
        measured = [o for o in offsets if o >= WARMUP_S]
        assert a.errors == {} and b.errors == {}
        assert not a.saturated and not b.saturated, (a.validity, b.validity)
        # the same schedule: every measured request, once, its raw samples kept
        assert b.requests == a.requests == len(measured)
        assert b.workers is not None and [w.worker for w in b.workers] == [0, 1]
        shares = [[o for o in offsets[w::2] if o >= WARMUP_S] for w in (0, 1)]
        assert [w.requests for w in b.workers] == [len(s) for s in shares]
        assert sum(w.requests for w in b.workers) == len(b.samples.latency_all_ms) == b.requests
        assert len(saved[i]["samples"]["latency_all_ms"]) == len(measured)
        assert [w["requests"] for w in saved[i]["workers"]] == [w.requests for w in b.workers]
        for w in b.workers:
            assert w.sent_rate == pytest.approx(rate / 2, rel=0.25)
            assert w.lag_ms is not None and w.lag_ms.p99 is not None and w.lag_ms.p99 < MAX_LAG_MS
            assert w.start_margin_ms is not None and w.start_margin_ms > 0  # none started late
        # the server's known capacity, and one generator's figures
        drawn = (len(measured) - 1) / (measured[-1] - measured[0])  # the seeded draw's rate
        want_rate = min(drawn, SLOTS / SERVICE_S)
        assert a.achieved_rate == pytest.approx(want_rate, rel=0.1)
        assert b.achieved_rate == pytest.approx(a.achieved_rate, rel=0.05)
        expected = [
            lat * 1000
            for off, lat in zip(offsets, simulate(offsets, SLOTS, SERVICE_S), strict=True)
            if off >= WARMUP_S
        ]
        assert a.latency_ms is not None and b.latency_ms is not None
        assert b.latency_ms.p50 == pytest.approx(a.latency_ms.p50, rel=0.2)
        assert b.latency_ms.p50 == pytest.approx(
            float(np.percentile(expected, 50)), rel=0.15, abs=8
        )
        assert b.latency_ms.p95 == pytest.approx(
            float(np.percentile(expected, 95)), rel=0.15, abs=8
        )


@pytest.mark.parametrize(("bodies", "workers"), [(4, 6), (3, 2), (5, 5), (1, 3)])
def test_each_worker_sends_the_body_one_generator_would(bodies, workers):
    """Request i carries body i mod K from one generator; dealt to worker i mod N, whose j-th
    request is i = w + jN, it must carry the same body, and its record must name it."""
    from voxbench.load.client import Target
    from voxbench.load.ray_workers import global_item, share, worker_target

    target = Target(url=URL, bodies=tuple({"input": str(k)} for k in range(bodies)))
    offsets = [i * 0.1 for i in range(37)]
    sent = {}
    for w in range(workers):
        mine = worker_target(target, w, workers)
        for j, due in enumerate(share(offsets, w, workers)):
            local = j % len(mine.bodies)  # as run_open picks a body
            assert global_item(local, w, workers, bodies) == int(mine.bodies[local]["input"])
            sent[round(due * 10)] = mine.bodies[local]["input"]
    assert sent == {i: str(i % bodies) for i in range(37)}


def test_a_worker_that_falls_behind_saturates_the_level():
    """Workers are judged one by one: worker 1 sent 4 of its 250 measured requests 50 ms late
    (1.6%: its lag p99 is 50 ms), worker 0 none. Merged, those are 0.8% of 500 and the lag p99
    is worker 0's 0.5 ms, so the merged records pass; the level is still saturated, naming
    worker 1 and not worker 0."""
    from voxbench.load.client import RequestRecord
    from voxbench.load.metrics import summarize_level
    from voxbench.load.ray_workers import WorkerRun, judge_workers, merge

    offsets = [i * 0.01 for i in range(600)]  # 100/s for 6 s; the first second is warm-up
    late = set(offsets[1::2][-4:])

    def rec(o: float) -> RequestRecord:
        lag = 0.05 if o in late else 0.0005
        return RequestRecord(due=o, sent=o + lag, first_byte=o + 0.06, done=o + 0.07, status=200)

    runs = [WorkerRun(w, "127.0.0.1", [rec(o) for o in offsets[w::2]], 6.1, 1.0) for w in (0, 1)]
    kw = {"max_lag_ms": 10.0, "max_error_rate": 0.01, "min_duration_s": 1.0}
    level = summarize_level(
        Level("rate", 100.0), merge(runs), warmup_s=1.0, wall_s=6.1, buffer_ms=0, **kw
    )
    assert level.lag_ms is not None and level.lag_ms.p99 == pytest.approx(0.5)
    assert not level.saturated and level.validity is not None and level.validity.valid
    judge_workers(level, runs, warmup_s=1.0, **kw)
    assert level.workers is not None
    assert [w.requests for w in level.workers] == [250, 250]
    assert [w.saturated for w in level.workers] == [False, True]
    assert level.workers[1].lag_ms is not None
    assert level.workers[1].lag_ms.p99 == pytest.approx(50.0)
    assert level.workers[0].sent_rate == pytest.approx(50.0)
    assert level.saturated and not level.validity.valid
    assert level.validity.reasons == ["worker 1: schedule lag p99 50 ms over the 10 ms limit"]


def test_cli_load_on_a_ray_cluster(ray_cluster, tmp_path):
    """``voxbench load --executor ray --workers 2 --ray-address ADDR`` from a shell, joining the
    module's cluster: the document lists both workers and every measured request's sample."""
    address = ray_cluster.get_runtime_context().gcs_address
    with QueueServer(workers=SLOTS, service_ms=SERVICE_S * 1000) as srv:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "voxbench",
                "load",
                "--target",
                srv.url,
                "--rate",
                "16",  # a gap of 1/16 s: the due times are exact, none lands a hair early
                "--requests",
                "48",
                "--warmup",
                "1s",
                "--arrivals",
                "constant",
                "--min-duration",
                "1s",
                "--max-lag-ms",
                str(MAX_LAG_MS),
                "--executor",
                "ray",
                "--workers",
                "2",
                "--ray-address",
                address,
                "-o",
                str(tmp_path),
                "--no-store",
                "--json",
                "-",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        )
    assert proc.returncode == 0, proc.stderr
    level = json.loads(proc.stdout)["load"]["levels"][0]
    assert level["requests"] == 48 and level["warmup_requests"] == 16
    assert [w["requests"] for w in level["workers"]] == [24, 24]
    assert [w["warmup_requests"] for w in level["workers"]] == [8, 8]
    assert len(level["samples"]["latency_all_ms"]) == 48
    assert level["achieved_rate"] == pytest.approx(16.0, rel=0.05)
    assert level["latency_ms"]["p50"] == pytest.approx(50.0, rel=0.2)  # no queue at 16/s


def test_without_ray_the_error_is_one_line_saying_how_to_install(tmp_path):
    from support.cli import assert_one_line_error

    blocked = (
        "import sys; sys.modules['ray'] = None; sys.argv[0] = 'voxbench'; "
        "from voxbench.cli.app import main; main()"
    )
    ray_2 = ["--executor", "ray", "--workers", "2", "-o", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-c", blocked, "load", "--target", URL, "--rate", "1", *ray_2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(proc, "--executor ray needs Ray: pip install 'voxbench[ray]'")
    assert not list(tmp_path.iterdir())  # refused before a run folder was made


def test_ray_options_are_checked(tmp_path):
    from support.cli import assert_one_line_error, voxbench

    url = URL
    assert_one_line_error(
        voxbench("load", "--target", url, "--rate", "1", "--workers", "2", "-o", str(tmp_path)),
        "--workers and --ray-address need --executor ray",
    )
    assert_one_line_error(
        voxbench(
            "load", "--target", url, "--concurrency", "2", "--executor", "ray", "-o", str(tmp_path)
        ),
        "--executor ray runs open-loop --rate levels",
    )
    assert_one_line_error(
        voxbench("load", "--target", url, "--rate", "1", "--executor", "dask", "-o", str(tmp_path)),
        "--executor must be local or ray",
    )
