"""Timing of small in-process calls: calibration, warm-up, repeated samples.

A kernel may take a microsecond, below what one clock read can resolve honestly, so each sample
times a loop of ``loops`` back-to-back calls and reports the time per call, ``loops`` chosen as
``timeit.Timer.autorange`` does (1, 2, 5, 10, 20, 50, ...) until one sample lasts at least
``min_sample_ns``. Then ``warmup`` samples are run and dropped, and measured samples follow until
``samples`` are taken or ``max_seconds`` has passed (never fewer than ``min_samples``).

Clock: ``time.perf_counter_ns`` read before and after the loop. With a device (CUDA), ``sync``
(``torch.cuda.synchronize``) runs before the first read and before the second, so queued work is
inside the sample and nothing earlier is. The garbage collector is paused while a case is timed,
as ``timeit`` does (no ``gc.collect()`` first: with torch and librosa loaded one full collection
costs longer than most kernels take to measure).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_SAMPLE_NS = 2_000_000  # 2 ms


@dataclass
class Timing:
    """What :func:`measure` found: per-call milliseconds of each measured sample, and how."""

    per_call_ms: list[float] = field(default_factory=list)
    cpu_per_call_s: list[float] = field(default_factory=list)
    loops: int = 1
    warmup_calls: int = 0
    calibration_calls: int = 0
    result: Any = None


def _sample(
    fn: Callable[[], Any], loops: int, sync: Callable[[], None] | None
) -> tuple[int, float, Any]:
    """One sample: wall nanoseconds and CPU seconds of ``loops`` calls, and the last result."""
    result = None
    if sync is not None:
        sync()
    cpu0 = time.process_time()
    t0 = time.perf_counter_ns()
    for _ in range(loops):
        result = fn()
    if sync is not None:
        sync()
    wall = time.perf_counter_ns() - t0
    return wall, time.process_time() - cpu0, result


def autorange(
    fn: Callable[[], Any],
    min_sample_ns: int = MIN_SAMPLE_NS,
    sync: Callable[[], None] | None = None,
) -> tuple[int, int, Any]:
    """Calls per sample so that a sample lasts at least ``min_sample_ns``; also returns how many
    calls calibration took and the last result. 1, 2, 5, 10, 20, 50... like ``timeit``."""
    calls, result = 0, None
    base = 1
    while True:
        for mult in (1, 2, 5):
            loops = base * mult
            wall, _, result = _sample(fn, loops, sync)
            calls += loops
            if wall >= min_sample_ns:
                return loops, calls, result
        base *= 10


def measure(
    fn: Callable[[], Any],
    *,
    samples: int = 20,
    warmup: int = 2,
    min_sample_ns: int = MIN_SAMPLE_NS,
    max_seconds: float | None = None,
    min_samples: int = 5,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Time ``fn()``: calibrate the loop count, run ``warmup`` samples, then up to ``samples``
    measured samples (stopping early after ``max_seconds`` once ``min_samples`` are in).

    Exceptions from ``fn`` propagate: a kernel that fails has no timing.
    """
    if samples < 1:
        raise ValueError("samples must be at least 1")
    timing = Timing()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        timing.loops, timing.calibration_calls, timing.result = autorange(fn, min_sample_ns, sync)
        for _ in range(warmup):
            _, _, timing.result = _sample(fn, timing.loops, sync)
            timing.warmup_calls += timing.loops
        started = time.perf_counter()
        for i in range(samples):
            wall, cpu, timing.result = _sample(fn, timing.loops, sync)
            timing.per_call_ms.append(wall / timing.loops / 1e6)
            timing.cpu_per_call_s.append(cpu / timing.loops)
            if (
                max_seconds is not None
                and i + 1 >= min_samples
                and time.perf_counter() - started > max_seconds
            ):
                break
    finally:
        if was_enabled:
            gc.enable()
    return timing
