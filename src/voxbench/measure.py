"""Time one engine call. The same code runs in-process and inside a worker process.

Wall time comes from ``time.perf_counter_ns`` (monotonic, nanoseconds) read around the engine call
and nothing else; CPU time from ``time.process_time`` (all of this process's threads) plus waited-for children.
Streaming engines are timed chunk by chunk: time to first audio (``ttfa``) and the gaps between
chunks as the consumer sees them.
"""

from __future__ import annotations

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


def measure_call(engine: Any, payload: Any, *, use_stream: bool, keep_audio: bool) -> CallRecord:
    """Call the engine once on ``payload`` and return what was measured; never raises."""
    rec = CallRecord()
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
                rec.wall_ns = time.perf_counter_ns() - t0
            else:
                out = engine.synthesize(payload)
                rec.wall_ns = time.perf_counter_ns() - t0
                if out.audio is not None:
                    rec.samples = len(out.audio)
                    rec.sample_rate = out.sample_rate
                    if keep_audio:
                        kept.append(out.audio)
                rec.text = out.text
                stages.update({k: stages.get(k, 0.0) + v for k, v in out.stages.items()})
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
