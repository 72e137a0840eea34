"""Time an engine's start and its calls. The same code runs in-process and inside a worker process.

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
from typing import TYPE_CHECKING, Any

from voxbench.engine import (
    Adapted,
    Output,
    adapt,
    as_chunk,
    as_output,
    can_stream,
    collect_stages,
)
from voxbench.errors import EngineFailed, VoxbenchError

if TYPE_CHECKING:
    # Only a type here: a worker imports the registry when the spec it is sent is unpickled.
    from voxbench.engines.registry import EngineSpec


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
        """Length of the audio answered, or None without audio or sample rate."""
        if self.sample_rate and self.samples:
            return self.samples / self.sample_rate
        return None


@dataclass(frozen=True)
class StartInfo:
    """How long it took to get an engine ready, and what it says about itself.

    ``process_ms`` is the worker's start-up (``None`` in-process), filled in by the executor.
    """

    process_ms: float | None
    import_ms: float
    load_ms: float
    streams: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemoryUsage:
    """Peak resident memory and GPU memory of the process the engine ran in, and how GPU was read."""

    rss_mb: float
    gpu_mb: float | None = None
    gpu_scope: str | None = None


def start_engine(spec: EngineSpec) -> tuple[Adapted, StartInfo]:
    """Import, build and load the engine, timing the import and the load apart.

    Raises only :class:`VoxbenchError`: anything else the engine raises becomes a one-line
    EngineFailed naming the engine.
    """
    try:
        t0 = time.perf_counter_ns()
        spec.factory()
        t1 = time.perf_counter_ns()
        engine = adapt(spec.create())
        engine.load()
        t2 = time.perf_counter_ns()
        info = engine.info()
    except VoxbenchError:
        raise
    except Exception as exc:
        err = error_dict(exc)
        raise EngineFailed(
            f"engine {spec.ref!r} failed to load: {err['type']}: {err['message']}"
        ) from exc
    start = StartInfo(
        process_ms=None,
        import_ms=(t1 - t0) / 1e6,
        load_ms=(t2 - t1) / 1e6,
        streams=can_stream(engine),
        info=info,
    )
    return engine, start


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
    ``synchronize()`` (a GPU engine waiting for its device) runs before the clock stops. Answers in
    the friendly forms (tuples, bare arrays) become Output/Chunk through :func:`as_output` and
    :func:`as_chunk` after the clock is read; a wrong one is this call's error.
    """
    # The engine's own methods, not Adapted's: no extra frames, and no normalising, on the clock.
    raw = engine.engine if isinstance(engine, Adapted) else engine
    rec = CallRecord()
    sync = getattr(raw, "synchronize", None)
    sync = sync if callable(sync) else None
    kept: list[Any] | None = [] if keep_audio else None
    with collect_stages() as stages:
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter_ns()
        try:
            if use_stream:
                _stream_into(rec, raw, payload, t0, kept)
                if sync is not None:
                    sync()
                rec.wall_ns = time.perf_counter_ns() - t0
            else:
                method = "synthesize_batch" if batch > 1 else "synthesize"
                if batch > 1:
                    answers = raw.synthesize_batch([payload] * batch)
                else:
                    answers = [raw.synthesize(payload)]
                if sync is not None:
                    sync()
                rec.wall_ns = time.perf_counter_ns() - t0
                outs = [as_output(answer, raw, method) for answer in answers]
                _add_outputs(rec, outs, stages, kept)
        except Exception as exc:
            rec.wall_ns = rec.wall_ns or time.perf_counter_ns() - t0
            rec.error = error_dict(exc)
        rec.cpu_s = _cpu_seconds() - cpu0
    rec.stages = dict(stages)
    if kept:
        rec.audio = _concat(kept)
    return rec


def _stream_into(
    rec: CallRecord, engine: Any, payload: Any, t0: int, kept: list[Any] | None
) -> None:
    """Iterate one stream, noting time to first audio and the gaps between chunks."""
    stream = getattr(engine, "stream", None)
    if not callable(stream):
        raise EngineFailed("the engine has no stream() to call")
    last = t0
    for item in stream(payload):
        now = time.perf_counter_ns()
        chunk = as_chunk(item, engine)
        if rec.chunks == 0:
            rec.ttfa_ns = now - t0
        else:
            rec.chunk_gaps_ns.append(now - last)
        last = now
        rec.chunks += 1
        rec.samples += len(chunk.audio)
        rec.sample_rate = chunk.sample_rate
        if kept is not None:
            kept.append(chunk.audio)


def _add_outputs(
    rec: CallRecord, outs: list[Output], stages: dict[str, float], kept: list[Any] | None
) -> None:
    """Samples, text and engine-reported stages of whole answers (after the clock stopped)."""
    for out in outs:
        if out.audio is not None:
            rec.samples += len(out.audio)
            rec.sample_rate = out.sample_rate
            if kept is not None:
                kept.append(out.audio)
        rec.text = out.text
        for k, v in out.stages.items():
            stages[k] = stages.get(k, 0.0) + v


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


def memory_report() -> MemoryUsage:
    """Peak RSS and GPU memory of this process, read at the end of a case."""
    gpu, scope = gpu_memory_mb()
    return MemoryUsage(rss_mb=max_rss_mb(), gpu_mb=gpu, gpu_scope=scope)
