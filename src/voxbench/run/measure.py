"""Time an engine's start and its calls. The same code runs in-process and inside a worker process.

Wall time comes from ``time.perf_counter_ns`` (monotonic, nanoseconds) read around the engine call
and nothing else; CPU time from ``time.process_time`` (all of this process's threads) plus waited-for children.
Streaming engines are timed chunk by chunk: time to first audio (``ttfa``) and the gaps between
chunks as the consumer sees them.
"""

from __future__ import annotations

import contextlib
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
    TextChunk,
    adapt,
    as_chunk,
    as_output,
    can_stream,
    collect_stages,
)
from voxbench.errors import EngineFailed, VoxbenchError
from voxbench.run.output_checks import as_float, judge

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
    tokens: int | None = None  # output tokens of a text-generating engine
    input_tokens: int | None = None
    tokens_source: str | None = None  # "usage" (the engine's count) or "counted" (stream pieces)

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
    ``warm_process`` is True when this process had started an engine before, or already held the
    engine's module: then the start is not a cold one (docs/methodology.md, cold start).
    """

    process_ms: float | None
    import_ms: float
    load_ms: float
    streams: bool
    info: dict[str, Any] = field(default_factory=dict)
    warm_process: bool = False


@dataclass(frozen=True)
class MemoryUsage:
    """Memory of the process the engine ran in, read at the end of a case (MiB; None: not read).

    - ``rss_mb``: this process's own peak resident memory (:func:`max_rss_mb`);
    - ``child_rss_mb``: the largest peak of the child processes it waited for
      (:func:`max_child_rss_mb`), None when it waited for none;
    - ``gpu_allocated_mb``: torch's CUDA allocator peak (:func:`gpu_allocated_mb`);
    - ``gpu_nvml_mb``: the GPU memory NVML sees this process hold (:func:`gpu_nvml_mb`).
    """

    rss_mb: float
    child_rss_mb: float | None = None
    gpu_allocated_mb: float | None = None
    gpu_nvml_mb: float | None = None


_engines_started = 0  # engines this process has started: a second start is not a cold one


def start_engine(spec: EngineSpec) -> tuple[Adapted, StartInfo]:
    """Import, build and load the engine, timing the import and the load apart.

    Raises only :class:`VoxbenchError`: anything else the engine raises becomes a one-line
    EngineFailed naming the engine.
    """
    global _engines_started
    try:
        module = spec.target.partition(":")[0]
        warm = _engines_started > 0 or module in sys.modules
        _engines_started += 1
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
        warm_process=warm,
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

    return np.concatenate([as_float(p) for p in parts]) if parts else np.zeros(0, dtype=np.float32)


def measure_call(
    engine: Any, payload: Any, *, use_stream: bool, keep_audio: bool, batch: int = 1
) -> CallRecord:
    """Call the engine once on ``payload`` and return what was measured; never raises.

    ``batch`` > 1 sends ``batch`` copies of the input in one ``synthesize_batch`` call. An engine's
    ``synchronize()`` (a GPU engine waiting for its device) runs before the clock stops. Answers in
    the friendly forms (tuples, bare arrays) become Output/Chunk through :func:`as_output` and
    :func:`as_chunk` after the clock is read; a wrong one is this call's error. So is an answer
    that breaks an output rule (:mod:`voxbench.run.output_checks`: empty, NaN, clipped, silent,
    wrong rate or dtype, absurd length), judged after the clock too: its audio is not kept.
    """
    # The engine's own methods, not Adapted's: no extra frames, and no normalising, on the clock.
    raw = engine.engine if isinstance(engine, Adapted) else engine
    rec = CallRecord()
    sync = getattr(raw, "synchronize", None)
    sync = sync if callable(sync) else None
    kept: list[Any] | None = [] if keep_audio else None
    answers: list[list[tuple[Any, Any]]] = []  # each answer's (audio, rate) pieces, for judge()
    with collect_stages() as stages:
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter_ns()
        try:
            if use_stream:
                answers.append([])
                _stream_into(rec, raw, payload, t0, kept, answers[0])
                if sync is not None:
                    sync()
                rec.wall_ns = time.perf_counter_ns() - t0
            else:
                method = "synthesize_batch" if batch > 1 else "synthesize"
                if batch > 1:
                    answered = raw.synthesize_batch([payload] * batch)
                else:
                    answered = [raw.synthesize(payload)]
                if sync is not None:
                    sync()
                rec.wall_ns = time.perf_counter_ns() - t0
                outs = [as_output(answer, raw, method) for answer in answered]
                _add_outputs(rec, outs, stages, kept)
                answers = [[] if o.audio is None else [(o.audio, o.sample_rate)] for o in outs]
        except Exception as exc:
            rec.wall_ns = rec.wall_ns or time.perf_counter_ns() - t0
            rec.error = error_dict(exc)
        rec.cpu_s = _cpu_seconds() - cpu0
    rec.stages = dict(stages)
    if rec.error is None:
        rec.error = judge(raw, payload, answers, has_text=rec.text is not None)
    if kept and rec.error is None:
        rec.audio = _concat(kept)
    return rec


def _stream_into(
    rec: CallRecord,
    engine: Any,
    payload: Any,
    t0: int,
    kept: list[Any] | None,
    pieces: list[tuple[Any, Any]],
) -> None:
    """Iterate one stream, noting time to first audio (or text) and the gaps between chunks;
    each audio chunk goes into ``pieces`` (a list append: judged after the clock)."""
    stream = getattr(engine, "stream", None)
    if not callable(stream):
        raise EngineFailed("the engine has no stream() to call")
    last = t0
    text = TextStream()
    for item in stream(payload):
        now = time.perf_counter_ns()
        chunk = as_chunk(item, engine)
        if isinstance(chunk, TextChunk):
            if not chunk.text and chunk.usage_tokens is None:
                if not chunk.partial:
                    text.clear_partial()  # an empty final: the recogniser heard nothing
                continue  # an empty piece (a role header, a keep-alive) is no output yet
            if chunk.text:
                if rec.chunks == 0:
                    rec.ttfa_ns = now - t0
                else:
                    rec.chunk_gaps_ns.append(now - last)
                last = now
                rec.chunks += 1
            text.add(chunk)
            continue
        if rec.chunks == 0:
            rec.ttfa_ns = now - t0
        else:
            rec.chunk_gaps_ns.append(now - last)
        last = now
        rec.chunks += 1
        rec.samples += len(chunk.audio)
        rec.sample_rate = chunk.sample_rate
        pieces.append((chunk.audio, chunk.sample_rate))
        if kept is not None:
            kept.append(chunk.audio)
    if text.seen:
        rec.text = text.text()
        rec.tokens, rec.tokens_source = text.tokens()
        rec.input_tokens = text.input_tokens


class TextStream:
    """The text of one streamed answer: deltas appended, a recogniser's partials replaced.

    Output tokens: the engine's own total (``usage_tokens``) when it sends one, else the sum of the
    pieces' ``tokens`` (one per piece that says nothing): "usage" or "counted".
    """

    def __init__(self) -> None:
        self.seen = False
        self.parts: list[str] = []
        self.partial = ""
        self.counted = 0
        self.usage: int | None = None
        self.input_tokens: int | None = None

    def add(self, chunk: TextChunk) -> None:
        self.seen = True
        if chunk.usage_tokens is not None:
            self.usage = chunk.usage_tokens
        if chunk.input_tokens is not None:
            self.input_tokens = chunk.input_tokens
        if not chunk.text:
            return
        if chunk.partial:
            self.partial = chunk.text
            return
        self.partial = ""
        self.parts.append(chunk.text)
        self.counted += chunk.tokens if chunk.tokens is not None else 1

    def clear_partial(self) -> None:
        if self.partial:
            self.seen, self.partial = True, ""

    def text(self) -> str:
        return "".join(self.parts) or self.partial

    def tokens(self) -> tuple[int | None, str | None]:
        if self.usage is not None:
            return self.usage, "usage"
        return (self.counted, "counted") if self.counted else (None, None)


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
        if out.tokens is not None:
            rec.tokens = (rec.tokens or 0) + out.tokens
            rec.tokens_source = out.tokens_source or "usage"
        if out.input_tokens is not None:
            rec.input_tokens = (rec.input_tokens or 0) + out.input_tokens
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


def max_child_rss_mb() -> float | None:
    """The largest peak resident memory of a child process this one waited for, in MiB.

    ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the maximum over waited-for descendants, not a sum;
    None when none was waited for. Linux charges a child with the memory it ran in before its
    ``execve``, and Python's ``subprocess`` starts children with ``vfork``, in this process's
    memory: each child's figure is at least this process's peak at the moment it was started. A
    figure above :func:`max_rss_mb` is therefore a child's own peak; one at or below it says only
    that no child used more.
    """
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= 0:
        return None
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def gpu_allocated_mb(torch: Any) -> float | None:
    """torch's CUDA allocator peak, summed over devices (``torch.cuda.max_memory_allocated``).

    The tensors the engine allocated at their peak, without the allocator's cache and the CUDA
    context; None when ``torch`` is None or has not initialised CUDA in this process.
    """
    try:
        if torch is None or not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return None
        peak = sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))
    except Exception:
        return None
    return peak / 2**20


def gpu_nvml_mb(nvml: Any, pid: int) -> float | None:
    """The GPU memory NVML sees process ``pid`` hold now, summed over devices; None without it.

    ``nvmlDeviceGetComputeRunningProcesses(...).usedGpuMemory``: everything the driver gives the
    process (CUDA context, allocator cache, other libraries' memory), read once at the end of a
    case; NVML keeps no per-process peak, so this is not one. ``nvml`` is the ``pynvml`` module.
    """
    try:
        nvml.nvmlInit()
    except Exception:
        return None
    try:
        used = 0
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == pid and proc.usedGpuMemory:
                    used += proc.usedGpuMemory
        return used / 2**20 if used else None
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def _pynvml() -> Any:
    try:
        import pynvml
    except Exception:
        return None
    return pynvml


def memory_report() -> MemoryUsage:
    """This process's memory figures, read at the end of a case (torch only if already loaded)."""
    nvml = _pynvml()
    return MemoryUsage(
        rss_mb=max_rss_mb(),
        child_rss_mb=max_child_rss_mb(),
        gpu_allocated_mb=gpu_allocated_mb(sys.modules.get("torch")),
        gpu_nvml_mb=None if nvml is None else gpu_nvml_mb(nvml, os.getpid()),
    )
