"""Per-iteration overhead of voxbench against a bare loop calling the same engine.

Both sides run in this one process, interleaved, on the same engine objects:
- bare: ``for _ in range(n): t0 = perf_counter_ns(); engine.synthesize(x); t1 = ...`` — what a
  hand-written script does;
- voxbench: ``scenario.measure_iterations`` — the very loop ``voxbench run`` uses — with the
  in-process executor and with a spawned worker.

Overhead per iteration = (voxbench wall time - bare wall time) / n, median over repeats. A null
engine (returns a ready 0.1 s buffer) shows the harness alone; espeak shows it beside a real engine.
Usage: python benchmarks/overhead.py [--iterations 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from voxbench.engines.registry import EngineSpec
from voxbench.run.executors import InProcessExecutor, WorkerExecutor
from voxbench.run.scenario import measure_iterations

NULL = EngineSpec("voxbench.engines.calibration:SleepEngine", {"call_ms": 0, "audio_seconds": 0.1})
TEXT = "Good morning, everyone."


def bare_loop(engine: Any, n: int) -> float:
    """Seconds for n timed calls, the way a hand-written script does it."""
    samples = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter_ns()
        engine.synthesize(TEXT)
        samples.append(time.perf_counter_ns() - t0)
    return time.perf_counter() - start


def harness_loop(executor: Any, n: int) -> float:
    start = time.perf_counter()
    measure_iterations(
        executor, TEXT, n, use_stream=False, keep_last_audio=True, tick=lambda k: None
    )
    return time.perf_counter() - start


def compare(spec: EngineSpec, mode: str, n: int, repeats: int) -> dict[str, float]:
    bare_engine = spec.create()
    bare_engine.load()
    executor = InProcessExecutor() if mode == "in-process" else WorkerExecutor(timeout_s=60)
    executor.start(spec)
    try:
        bare_loop(bare_engine, min(n, 50))  # warm both sides up
        harness_loop(executor, min(n, 50))
        bare, harness = [], []
        for _ in range(repeats):  # interleaved, so drift hits both sides alike
            bare.append(bare_loop(bare_engine, n) / n)
            harness.append(harness_loop(executor, n) / n)
    finally:
        executor.close()
        bare_engine.close()
    b, h = statistics.median(bare), statistics.median(harness)
    return {
        "bare_us": b * 1e6,
        "voxbench_us": h * 1e6,
        "overhead_us": (h - b) * 1e6,
        "ratio": h / b,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    engines = [("null", NULL), ("espeak", EngineSpec("espeak"))]
    goals = {"in-process": 50.0, "worker": 1000.0}
    print(
        f"{'engine':8} {'mode':11} {'bare µs/it':>11} {'voxbench µs/it':>15} "
        f"{'overhead µs/it':>15} {'ratio':>7} {'goal':>9}"
    )
    for name, spec in engines:
        reason = spec.unavailable_reason()
        if reason:
            print(f"{name:8} skipped: {reason}")
            continue
        n = args.iterations if name == "null" else max(args.iterations // 50, 20)
        for mode in ("in-process", "worker"):
            r = compare(spec, mode, n, args.repeats)
            verdict = "met" if r["overhead_us"] < goals[mode] else "MISSED"
            print(
                f"{name:8} {mode:11} {r['bare_us']:11.1f} {r['voxbench_us']:15.1f} "
                f"{r['overhead_us']:15.1f} {r['ratio']:7.2f} "
                f"{'<' + format(goals[mode], 'g') + ' ' + verdict:>9}"
            )


if __name__ == "__main__":
    main()
