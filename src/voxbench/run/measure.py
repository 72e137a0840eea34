"""Time one engine call. The same code runs in-process and inside a worker process.

Wall time comes from ``time.perf_counter_ns`` (monotonic, nanoseconds) read around the engine call
and nothing else; CPU time from ``time.process_time`` (all of this process's threads) plus waited-for children.
Streaming engines are timed chunk by chunk: time to first audio (``ttfa``) and the gaps between
chunks as the consumer sees them.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from voxbench.engine import collect_stages


@dataclass
class CallRecord:
    """Raw figures of one engine call; ``audio`` is kept only when asked for."""

    wall_ns: int = 0
    cpu_s: float = 0.0
    ttfa_ns: int | None = None
    chunk_gaps_ns: list[int] = field(default_factory=list)
    chunks: int = 0
    samples: int = 0
    sample_rate: int | None = None
    text: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    audio: Any = None
    error: dict[str, str] | None = None

    @property
    def audio_seconds(self) -> float | None:
        if self.sample_rate and self.samples:
            return self.samples / self.sample_rate
        return None


def _cpu_seconds() -> float:
    # process_time has nanosecond resolution (os.times() counts 10 ms clock ticks, too coarse for
    # a 2 ms call); children that the engine ran and waited for are added from getrusage.
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def error_dict(exc: BaseException) -> dict[str, str]:
    """A one-line, picklable description of an exception (type, message, last frame)."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {"type": type(exc).__name__, "message": message[:500], "where": where}


def _concat(parts: list[Any]) -> Any:
    import numpy as np

    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def measure_call(
    engine: Any, payload: Any, *, use_stream: bool, keep_audio: bool, batch: int = 1
) -> CallRecord:
    """Call the engine once on ``payload`` and return what was measured; never raises.

    ``batch`` > 1 sends ``batch`` copies of the input in one ``synthesize_batch`` call. An engine's
    ``synchronize()`` (a GPU engine waiting for its device) runs before the clock stops.
    """
    rec = CallRecord()
    sync = getattr(engine, "synchronize", None)
    sync = sync if callable(sync) else None
    kept: list[Any] = []
    with collect_stages() as stages:
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter_ns()
        try:
            if use_stream:
                last = t0
                for chunk in engine.stream(payload):
                    now = time.perf_counter_ns()
                    if rec.chunks == 0:
                        rec.ttfa_ns = now - t0
                    else:
                        rec.chunk_gaps_ns.append(now - last)
                    last = now
                    rec.chunks += 1
                    rec.samples += len(chunk.audio)
                    rec.sample_rate = chunk.sample_rate
                    if keep_audio:
                        kept.append(chunk.audio)
                if sync is not None:
                    sync()
                rec.wall_ns = time.perf_counter_ns() - t0
            else:
                if batch > 1:
                    outs = engine.synthesize_batch([payload] * batch)
                else:
                    outs = [engine.synthesize(payload)]
                if sync is not None:
                    sync()
                rec.wall_ns = time.perf_counter_ns() - t0
                for out in outs:
                    if out.audio is not None:
                        rec.samples += len(out.audio)
                        rec.sample_rate = out.sample_rate
                        if keep_audio:
                            kept.append(out.audio)
                    rec.text = out.text
                    for k, v in out.stages.items():
                        stages[k] = stages.get(k, 0.0) + v
        except Exception as exc:
            rec.wall_ns = time.perf_counter_ns() - t0
            rec.error = error_dict(exc)
        rec.cpu_s = _cpu_seconds() - cpu0
    rec.stages = dict(stages)
    if keep_audio and kept:
        rec.audio = _concat(kept)
    return rec


def max_rss_mb() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` from /proc/self/status on Linux.

    Not ``getrusage().ru_maxrss``: Linux carries that high-water mark across ``execve``, so a
    spawned worker (fork, then exec) would report the parent's size at fork time as its own peak.
    VmHWM belongs to the address space the process runs in now. Elsewhere, ru_maxrss is the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def gpu_memory_mb() -> tuple[float | None, str | None]:
    """This process's GPU memory and how it was read, or (None, None) without a GPU.

    torch's allocator peak (``max_memory_allocated``) when the engine uses torch on CUDA; else the
    memory NVML sees this process holding at the time of the call (NVML keeps no per-process peak).
    """
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            peak = sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
            return peak / 2**20, "torch max_memory_allocated"
    except Exception:
        pass
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None, None
    try:
        pid, used = os.getpid(), 0
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == pid and proc.usedGpuMemory:
                    used += proc.usedGpuMemory
        return (used / 2**20, "nvml process memory at end of case") if used else (None, None)
    except Exception:
        return None, None
    finally:
        pynvml.nvmlShutdown()


def memory_report() -> dict[str, float | str | None]:
    """Peak RSS and GPU memory of this process, read at the end of a case."""
    gpu, scope = gpu_memory_mb()
    return {"rss_mb": max_rss_mb(), "gpu_mb": gpu, "gpu_scope": scope}
