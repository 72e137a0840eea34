"""False-alarm rate of ``voxbench compare`` on identical configurations, and the speed of the store.

Makes ``--runs`` back-to-back runs of one engine configuration (nothing changes between them),
compares run i with run i+1 on latency at ``--threshold``, and counts the comparisons where any
case came out other than *unchanged* — twice: with the within-run bootstrap interval alone, and
with the between-run noise that ``voxbench compare`` adds from a store holding the runs made
before each comparison (what a CI job with its main-branch history sees). Then times the store:
``add``, ``get`` and ``case_series`` on SQLite (and PostgreSQL with ``--postgres URL``).

Usage:
  python benchmarks/compare_noise.py -e espeak -w short -n 30                 # worker mode
  python benchmarks/compare_noise.py -e voxbench.engines.calibration:SleepEngine -a call_ms=20 \\
      -w short -n 10 --in-process
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from voxbench.analysis.compare import compare, noise_from_store
from voxbench.results import ResultDocument
from voxbench.results.store import open_store
from voxbench.run import EngineChoice, RunRequest, execute, plan
from voxbench.run.params import parse_args
from voxbench.run.scenario import Settings


def make_runs(args: argparse.Namespace, out: Path) -> list[ResultDocument]:
    docs = []
    for _ in range(args.runs):
        request = RunRequest(
            engines=[EngineChoice(args.engine, dict(parse_args(args.engine_arg)))],
            workloads=[args.workload],
            settings=Settings(
                iterations=args.iterations,
                warmup=args.warmup,
                mode="in-process" if args.in_process else "worker",
                save_audio=False,
            ),
            output=out,
            machine_id="bench",
        )
        doc, _ = execute(request, plan(request))
        if any(c.error_count or not c.samples.latency_ms for c in doc.cases):
            raise SystemExit(f"run {doc.run_id} has errors: fix the engine first")
        docs.append(doc)
    return docs


def alarms(docs: list[ResultDocument], threshold: float, store_url: str) -> tuple[int, int, list]:
    """(comparisons alarmed without run noise, with run noise, the alarms with run noise)."""
    plain = widened = 0
    details = []
    metrics = ("latency_ms",)
    with open_store(store_url) as store:
        store.add(docs[0])
        for a, b in pairwise(docs):
            noise = noise_from_store(store, a, {b.run_id}, metrics)
            for use_noise in (False, True):
                result = compare(
                    a, b, threshold=threshold, metrics=metrics, noise=noise if use_noise else None
                )
                bad = [
                    (c.key, m.verdict, f"{m.change:+.1%}", m.run_noise_runs)
                    for c in result.cases
                    for m in c.metrics
                    if m.verdict in ("regressed", "improved")
                ]
                if bad and use_noise:
                    widened += 1
                    details.append((b.run_id, bad))
                elif bad:
                    plain += 1
            store.add(b)
    return plain, widened, details


def store_speed(docs: list[ResultDocument], url: str, n: int = 200) -> str:
    with open_store(url) as store:
        t = time.perf_counter()
        for i in range(n):
            store.add(docs[i % len(docs)].model_copy(update={"run_id": f"speed-{i:05d}"}))
        add = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(0, n, 10):
            store.get(f"speed-{i:05d}")
        get = (time.perf_counter() - t) / (n // 10)
        t = time.perf_counter()
        points = store.case_series(docs[0].cases[0].engine, case_id=docs[0].cases[0].id)
        series = time.perf_counter() - t
        return (
            f"{store.backend}: add {add * 1000:.1f} ms/run, get {get * 1000:.1f} ms, "
            f"case_series of {len(points)} points {series * 1000:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-e", "--engine", required=True)
    parser.add_argument("-a", "--engine-arg", action="append", default=[])
    parser.add_argument("-w", "--workload", default="short")
    parser.add_argument("-n", "--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--postgres", help="also time a PostgreSQL store at this URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        docs = make_runs(args, Path(tmp) / "results")
        made = time.perf_counter() - started
        plain, widened, details = alarms(docs, args.threshold, str(Path(tmp) / "replay.sqlite"))
        n = len(docs) - 1
        medians = [[round(c.latency_ms.median, 2) for c in d.cases if c.latency_ms] for d in docs]
        print(f"{args.runs} runs of {args.engine} in {made:.0f} s; per-run medians (ms): {medians}")
        print(f"false alarms, within-run interval only: {plain}/{n}")
        print(f"false alarms, with between-run noise from the store: {widened}/{n}")
        for run_id, bad in details:
            print(f"  {run_id}: {bad}")
        print(store_speed(docs, str(Path(tmp) / "speed.sqlite")))
        if args.postgres:
            print(store_speed(docs, args.postgres))


if __name__ == "__main__":
    main()
