"""Where an engine runs: in this process, or in an isolated worker process (the default).

Every executor satisfies :class:`Executor`, the one thing :mod:`voxbench.run.scenario` knows of
them; ``EXECUTORS`` maps a mode name to its class. Another placement (a Ray actor, a remote host)
is one more class with the same five members and one more entry there.

A worker is a fresh interpreter running :mod:`voxbench.run.worker` alone (not a fork: engines
start native thread pools that must not be forked; not ``multiprocessing``'s spawn, which re-runs
the parent's main script, the ``voxbench`` launcher with its CLI, in every worker). It builds the
engine from its :class:`EngineSpec` and times each call itself with
:func:`voxbench.run.measure.measure_call`, so the pipe never enters a latency. A call that outlives its
timeout kills the worker; a crash is reported with the worker's exit code and last log lines.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from voxbench.engine import Adapted
from voxbench.engines.registry import EngineSpec
from voxbench.errors import ConfigError, EngineFailed
from voxbench.run import worker
from voxbench.run.measure import (
    CallRecord,
    MemoryUsage,
    StartInfo,
    measure_call,
    memory_report,
    start_engine,
)
from voxbench.run.messages import (
    Call,
    Close,
    Failed,
    FromWorker,
    MemoryReport,
    ReadMemory,
    Ready,
    Result,
    Start,
    Started,
    ToWorker,
)

RssScope = Literal["worker", "process"]


class Executor(Protocol):
    """What runs one case's engine: started once, called many times, closed once.

    ``call`` must time the engine where it runs (with :func:`measure_call`) and return the raw
    record, so that transport never enters a latency; engine errors come back in the record, and
    only a failure of the executor itself (a timeout, a dead process) raises VoxbenchError.
    """

    @property
    def mode(self) -> str:
        """The name recorded as the case's ``mode`` (a key of ``EXECUTORS``)."""
        ...

    @property
    def rss_scope(self) -> RssScope:
        """Whose memory :meth:`memory` reads: the engine's own process, or one shared with voxbench."""
        ...

    @property
    def created_ns(self) -> int:
        """``perf_counter_ns()`` when the executor was made: the cold start is timed from here."""
        ...

    def start(self, spec: EngineSpec) -> StartInfo:
        """Build and load the engine; raises VoxbenchError (one line) when it cannot."""
        ...

    def call(
        self, payload: Any, *, use_stream: bool, keep_audio: bool, batch: int = 1
    ) -> CallRecord:
        """Time one engine call on ``payload``."""
        ...

    def memory(self) -> MemoryUsage:
        """Peak memory of the process the engine runs in, read at the end of a case."""
        ...

    def close(self) -> None:
        """Close the engine and free what the executor holds; safe to call after a failure."""
        ...


class InProcessExecutor:
    """Runs the engine in this process: least overhead, but a hang cannot be cut and memory is shared."""

    mode = "in-process"
    rss_scope: RssScope = "process"

    def __init__(self, timeout_s: float | None = None) -> None:
        # timeout_s is accepted for a uniform constructor, and ignored: nothing can stop a call here.
        self.created_ns = time.perf_counter_ns()
        self._engine: Adapted | None = None
        # This process's children's high-water mark so far (earlier cases, git at capture...).
        self._children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    def start(self, spec: EngineSpec) -> StartInfo:
        """Build and load the engine here."""
        self._engine, start = start_engine(spec)
        return start

    def call(
        self, payload: Any, *, use_stream: bool, keep_audio: bool, batch: int = 1
    ) -> CallRecord:
        """Time one call, in this thread."""
        return measure_call(
            self._engine, payload, use_stream=use_stream, keep_audio=keep_audio, batch=batch
        )

    def memory(self) -> MemoryUsage:
        """This process's peak memory (voxbench's own included).

        The children's figure only when a child of this case raised this process's lifelong
        children's high-water mark: otherwise it would be an earlier case's (or git's).
        """
        usage = memory_report()
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if after <= self._children_before:
            usage = dataclasses.replace(usage, child_rss_mb=None)
        return usage

    def close(self) -> None:
        """Close the engine (once)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


Reply = TypeVar("Reply", Ready, Started, Result, MemoryReport)


class WorkerExecutor:
    """Runs the engine in a fresh worker process: per-engine memory, crashes and hangs contained."""

    mode = "worker"
    rss_scope: RssScope = "worker"

    def __init__(self, timeout_s: float | None = 120.0, load_timeout_s: float = 600.0) -> None:
        self.timeout_s = timeout_s
        self.load_timeout_s = max(load_timeout_s, timeout_s or 0)
        ours, theirs = socket.socketpair()
        self._conn = Connection(ours.detach())
        fd, log = tempfile.mkstemp(prefix="voxbench-worker-", suffix=".log")
        self._log = Path(log)
        self.created_ns = time.perf_counter_ns()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", worker.BOOTSTRAP, str(theirs.fileno()), *sys.path],
                stdin=subprocess.DEVNULL,
                stdout=fd,  # engines print: keep it off the terminal and the progress bar
                stderr=fd,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
            os.close(fd)
        # As multiprocessing's daemon processes: a worker this process forgot dies when it exits.
        weakref.finalize(self, _kill, self._proc)

    def start(self, spec: EngineSpec) -> StartInfo:
        """Wait for the worker, then have it build and load the engine."""
        self._receive(Ready, self.load_timeout_s, "worker start-up")
        process_ms = (time.perf_counter_ns() - self.created_ns) / 1e6
        self._send(Start(spec), "load")
        started = self._receive(Started, self.load_timeout_s, "engine load")
        return dataclasses.replace(started.start, process_ms=process_ms)

    def call(
        self, payload: Any, *, use_stream: bool, keep_audio: bool, batch: int = 1
    ) -> CallRecord:
        """Have the worker time one call; raises EngineFailed past the timeout (the worker is killed)."""
        self._send(Call(payload, use_stream, keep_audio, batch), "a call")
        return self._receive(Result, self.timeout_s, "engine call").record

    def memory(self) -> MemoryUsage:
        """The worker's peak memory: the engine's alone."""
        self._send(ReadMemory(), "reading memory")
        return self._receive(MemoryReport, 30, "reading memory").usage

    def close(self) -> None:
        """Ask the worker to close its engine and exit; kill it if it does not."""
        try:
            if self._proc.poll() is None:
                self._conn.send(Close())
                self._proc.wait(10)
        except (BrokenPipeError, ConnectionError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self._kill()
            self._conn.close()
            self._log.unlink(missing_ok=True)

    def _send(self, message: ToWorker, what: str) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, ConnectionError, OSError):
            raise EngineFailed(f"worker is gone before {what}{self._log_tail()}") from None

    def _receive(self, expected: type[Reply], timeout: float | None, what: str) -> Reply:
        """The worker's answer, which must be ``expected``; a Failed one is raised as its error."""
        if not self._conn.poll(timeout):
            self._kill()
            raise EngineFailed(f"{what} timed out after {timeout:g} s; the worker was stopped")
        try:
            reply: FromWorker = self._conn.recv()
        except (EOFError, ConnectionError):
            code = _reap(self._proc, 5)
            raise EngineFailed(
                f"worker died during {what} (exit code {code}){self._log_tail()}"
            ) from None
        if isinstance(reply, expected):
            return reply
        if isinstance(reply, Failed):
            raise reply.error()
        self._kill()
        raise EngineFailed(f"the worker answered {type(reply).__name__} to {what}; it was stopped")

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" (last log line: {lines[-1][:200]})" if lines else ""

    def _kill(self) -> None:
        _kill(self._proc)


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit status once the process has ended (negative: the signal), None if it still runs."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the worker if it still runs, and reap it."""
    if proc.poll() is None:
        proc.kill()
    _reap(proc, 5)


EXECUTORS: dict[str, Callable[[float | None], Executor]] = {
    WorkerExecutor.mode: WorkerExecutor,
    InProcessExecutor.mode: InProcessExecutor,
}
"""Executor mode → factory called with the per-call timeout (``None``: no limit)."""


def make_executor(mode: str, timeout_s: float | None) -> Executor:
    """A fresh executor for one case; ConfigError for an unknown mode."""
    factory = EXECUTORS.get(mode)
    if factory is None:
        known = " or ".join(EXECUTORS)
        raise ConfigError(f"unknown executor mode {mode!r} (use {known})")
    return factory(timeout_s)
