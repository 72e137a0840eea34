"""How fast ``voxbench --help`` answers: wall time of the whole command, median of repeats.

Side by side in one run: ``python -c pass`` (the interpreter's own start) and ``voxbench --help``.
Usage: python benchmarks/startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    timed([sys.executable, "-m", "voxbench", "--help"], 2)  # warm the page cache
    python = timed([sys.executable, "-c", "pass"], args.repeats)
    helptext = timed([sys.executable, "-m", "voxbench", "--help"], args.repeats)
    print(f"python -c pass      {python * 1000:7.1f} ms")
    print(
        f"voxbench --help     {helptext * 1000:7.1f} ms  ({helptext / python:.1f}x the bare "
        f"interpreter; goal < 500 ms: {'met' if helptext < 0.5 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
