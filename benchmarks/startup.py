"""How fast voxbench starts: ``voxbench --help``, and a worker's start inside ``voxbench run``.

Side by side in one run: ``python -c pass`` (the interpreter's own start), ``voxbench --help``,
and the median ``cold_start.process_ms`` (spawn → worker ready) of one-iteration runs of a 1 ms
calibration engine started from the ``voxbench`` console script, as a user starts it: the worker
must not re-run that launcher (which imports the CLI and typer). Set ``PYTHONPATH`` to another
checkout's ``src`` to measure that code with this interpreter.
Usage: python benchmarks/startup.py [--repeats 15] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHER = Path(sys.executable).parent / "voxbench"


def timed(cmd: list[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def worker_start_ms(runs: int) -> list[float]:
    """``cold_start.process_ms`` of ``runs`` one-case runs started from the console script."""
    cmd = [
        str(LAUNCHER),
        "run",
        "-e",
        "voxbench.engines.calibration:SleepEngine",
        "-a",
        "call_ms=1",
        "-w",
        "short",
        "-n",
        "1",
        "--warmup",
        "0",
        "--no-audio",
        "--no-store",
        "--json",
        "-",
    ]
    found = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            proc = subprocess.run([*cmd, "-o", out], check=True, capture_output=True, text=True)
            doc = json.loads(proc.stdout)
            found.extend(c["cold_start"]["process_ms"] for c in doc["cases"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--runs", type=int, default=7, help="voxbench runs for the worker start")
    args = parser.parse_args()
    timed([sys.executable, "-m", "voxbench", "--help"], 2)  # warm the page cache
    python = timed([sys.executable, "-c", "pass"], args.repeats)
    helptext = timed([sys.executable, "-m", "voxbench", "--help"], args.repeats)
    print(f"python -c pass      {python * 1000:7.1f} ms")
    print(
        f"voxbench --help     {helptext * 1000:7.1f} ms  ({helptext / python:.1f}x the bare "
        f"interpreter; goal < 500 ms: {'met' if helptext < 0.5 else 'MISSED'})"
    )
    if LAUNCHER.is_file():
        starts = worker_start_ms(args.runs)
        print(
            f"worker process_ms   {statistics.median(starts):7.1f} ms  (median of {len(starts)} "
            f"runs from {LAUNCHER.name}; min {min(starts):.1f}, max {max(starts):.1f})"
        )
    else:
        print(f"worker process_ms   skipped: no console script at {LAUNCHER}")


if __name__ == "__main__":
    main()
