"""The Ray path's own cost per case: ``--executor ray`` against the same matrix run locally.

Both sides measure the same planned cases with the same :func:`voxbench.run.runner.execute` (the
engine in its own worker process, timed there); one is local, the other submits each case as a
Ray task to a local Ray started here. Each case on Ray asks for every CPU of the node, so cases
run one at a time, as locally, and the difference is the Ray path alone: task submission,
scheduling, the Ray worker, the node's machine facts, and the outcome coming back.

Per case: the wall time from the previous case's end (or the run's start) to this case's end,
read with ``perf_counter`` when the case reaches the run document. Printed: each case's wall
time on both sides and the difference, the medians of the engine's latency on both sides (which
Ray must not change), Ray's start-up, and the median difference per case. A first, discarded
Ray run starts the Ray worker processes, so the figure is the steady state.

Usage: python benchmarks/ray_overhead.py [--engine espeak] [--workload short,medium] [-n 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from voxbench.results.document import ResultDocument
from voxbench.run.planner import plan
from voxbench.run.request import RunOptions, RunRequest
from voxbench.run.runner import execute


def timed_run(options: RunOptions) -> tuple[ResultDocument, list[float]]:
    """The run's document and each case's wall seconds (since the one before it ended)."""
    request = RunRequest.from_sources(None, options)
    the_plan = plan(request)
    ends: list[float] = []
    start = time.perf_counter()
    doc, _ = execute(request, the_plan, on_case=lambda o: ends.append(time.perf_counter()))
    walls = [b - a for a, b in zip([start, *ends[:-1]], ends, strict=True)]
    return doc, walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="espeak")
    parser.add_argument("--workload", default="short,medium")
    parser.add_argument("-n", "--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternated")
    args = parser.parse_args()

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(prefix="vxray-")
    out = Path(temp) / "results"
    cpus = os.cpu_count() or 1

    def options(**extra: object) -> RunOptions:
        opts = RunOptions(
            engines=[args.engine],
            workloads=args.workload.split(","),
            iterations=args.iterations,
            warmup=args.warmup,
            save_audio=False,
            output=out,
        )
        for key, value in extra.items():
            setattr(opts, key, value)
        return opts

    t0 = time.perf_counter()
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        _temp_dir=temp,
        log_to_driver=False,
    )
    ray_start = time.perf_counter() - t0
    try:
        serial = {"executor": "ray", "ray_resources": f'{{"CPU": {cpus}}}'}
        timed_run(options(**serial))  # discarded: starts the Ray worker processes
        sides: dict[str, list[tuple[ResultDocument, list[float]]]] = {"local": [], "ray": []}
        for _ in range(args.repeats):  # alternated, so a drift in the machine's load hits both
            sides["local"].append(timed_run(options()))
            sides["ray"].append(timed_run(options(**serial)))
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)

    print(f"Ray start-up (ray.init, local, {cpus} CPUs): {ray_start * 1000:.0f} ms")
    print(f"per case, medians of {args.repeats} runs each side (wall ms; engine latency ms)")
    print(f"{'case':34} {'local':>7} {'ray':>7} {'ray-local':>9} {'lat local':>9} {'lat ray':>8}")
    ids = [c.id for c in sides["local"][0][0].cases]
    diffs, locals_, rays = [], [], []
    for i, case in enumerate(ids):
        wall = {k: statistics.median(w[i] for _, w in runs) * 1000 for k, runs in sides.items()}
        lat = {
            k: statistics.median(_latency(d, case) for d, _ in runs) for k, runs in sides.items()
        }
        diffs.append(wall["ray"] - wall["local"])
        locals_.append(wall["local"])
        rays.append(wall["ray"])
        print(
            f"{case:34} {wall['local']:7.0f} {wall['ray']:7.0f} {diffs[-1]:9.0f} "
            f"{lat['local']:9.2f} {lat['ray']:8.2f}"
        )
    print(
        f"Ray overhead per case: median {statistics.median(diffs):+.0f} ms "
        f"(case wall time: local {statistics.median(locals_):.0f} ms, "
        f"ray {statistics.median(rays):.0f} ms; {len(ids)} cases x {args.repeats} runs)"
    )


def _latency(doc: ResultDocument, case_id: str) -> float:
    [case] = [c for c in doc.cases if c.id == case_id]
    return case.latency_ms.median if case.latency_ms else float("nan")


if __name__ == "__main__":
    main()
