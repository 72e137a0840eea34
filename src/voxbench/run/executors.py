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

Faults of the process itself end the case with a :class:`WorkerFault` whose ``kind`` says which
(the scenario records it; the next case gets a fresh worker): ``timeout`` (a call past
``timeout_s``, or the case past ``case_timeout_s``), ``crash`` (the worker died: its signal,
SIGSEGV, SIGABRT, SIGKILL "out of memory?" when the kernel's OOM killer struck or the sampled
peak neared the limit, or its exit code, with the fatal error and innermost frame that
:mod:`faulthandler` wrote to its log) and ``memory`` (``max_memory``: a :class:`MemoryWatch`
thread samples the worker's resident memory every 20 ms and SIGKILLs it past the limit).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
from voxbench.run.settings import parse_size

RssScope = Literal["worker", "process"]
FaultKind = Literal["timeout", "crash", "memory"]


class WorkerFault(EngineFailed):
    """The process under a case failed (``kind``: timeout, crash or memory): the case ends."""

    def __init__(self, kind: FaultKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _CaseClock:
    """The whole case's deadline (``case_timeout_s`` from the executor's creation; None: none)."""

    def __init__(self, created_ns: int, case_timeout_s: float | None) -> None:
        self.case_timeout_s = case_timeout_s or None
        self.deadline_ns = (
            None if self.case_timeout_s is None else created_ns + int(self.case_timeout_s * 1e9)
        )

    def remaining_s(self) -> float | None:
        if self.deadline_ns is None:
            return None
        return max(0.0, (self.deadline_ns - time.perf_counter_ns()) / 1e9)

    def fault(self, what: str, extra: str = "") -> WorkerFault:
        return WorkerFault(
            "timeout",
            f"case timed out after {self.case_timeout_s:g} s (--case-timeout) during {what}{extra}",
        )


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

    def __init__(
        self,
        timeout_s: float | None = None,
        *,
        case_timeout_s: float | None = None,
        max_memory: str | None = None,
    ) -> None:
        # timeout_s is accepted for a uniform constructor, and ignored: nothing can stop a call
        # here; case_timeout_s is checked before each call.
        if max_memory:
            raise ConfigError(
                "--max-memory needs worker mode: an engine in this process cannot be limited "
                "apart from voxbench (drop --in-process)"
            )
        self.created_ns = time.perf_counter_ns()
        self._clock = _CaseClock(self.created_ns, case_timeout_s)
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
        """Time one call, in this thread; WorkerFault when the case is past its deadline."""
        if self._clock.remaining_s() == 0:
            raise self._clock.fault("the calls", " (checked between calls in-process)")
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

    def __init__(
        self,
        timeout_s: float | None = 120.0,
        load_timeout_s: float = 600.0,
        *,
        case_timeout_s: float | None = None,
        max_memory: str | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.load_timeout_s = max(load_timeout_s, timeout_s or 0)
        self.max_memory = max_memory
        limit = parse_size(max_memory) if max_memory else None
        self._oom_kills = _oom_kills()
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
        self._clock = _CaseClock(self.created_ns, case_timeout_s)
        self._watch = None if limit is None else MemoryWatch(self._proc.pid, limit)
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
            if self._watch is not None:
                self._watch.stop()
            self._kill()
            self._conn.close()
            self._log.unlink(missing_ok=True)

    def _send(self, message: ToWorker, what: str) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, ConnectionError, OSError):
            raise self._death(_reap(self._proc, 5), f"before {what}") from None

    def _receive(self, expected: type[Reply], timeout: float | None, what: str) -> Reply:
        """The worker's answer, which must be ``expected``; a Failed one is raised as its error.

        Waits ``timeout`` (None: for ever) or until the case's deadline, whichever comes first.
        """
        left = self._clock.remaining_s()
        by_case = left is not None and (timeout is None or left < timeout)
        wait = left if by_case else timeout
        if not self._conn.poll(wait):
            self._kill()
            if by_case:
                raise self._clock.fault(what, "; the worker was stopped")
            raise WorkerFault(
                "timeout", f"{what} timed out after {timeout:g} s; the worker was stopped"
            )
        try:
            reply: FromWorker = self._conn.recv()
        except (EOFError, ConnectionError):
            raise self._death(_reap(self._proc, 5), f"during {what}") from None
        if isinstance(reply, expected):
            return reply
        if isinstance(reply, Failed):
            raise reply.error()
        self._kill()
        raise EngineFailed(f"the worker answered {type(reply).__name__} to {what}; it was stopped")

    def _death(self, code: int | None, when: str) -> WorkerFault:
        """Why the worker is gone, in one line: the memory limit, its signal or its exit code."""
        watch = self._watch
        if watch is not None and watch.exceeded:
            return WorkerFault(
                "memory",
                f"worker exceeded --max-memory {self.max_memory} (peak {watch.peak_mb:.0f} MB) "
                f"{when}; it was killed",
            )
        if code is None:
            self._kill()
            return WorkerFault("crash", f"worker stopped answering {when}; it was killed")
        if code >= 0:
            return WorkerFault("crash", f"worker died {when} (exit code {code}){self._log_tail()}")
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = _SIGNALS.get(name, f"killed by {name}")
        if name == "SIGKILL" and (
            (watch is not None and watch.peak >= 0.9 * watch.limit)
            or _oom_kills() > self._oom_kills
        ):
            why = "killed by SIGKILL (out of memory?)"
        return WorkerFault("crash", f"worker died {when}: {why}{self._log_tail()}")

    def _log_tail(self) -> str:
        """The fatal error and innermost frame faulthandler logged, else the last log line."""
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        fatal = [i for i, line in enumerate(lines) if line.startswith("Fatal Python error")]
        if fatal:
            frames = [x.strip() for x in lines[fatal[-1] + 1 :] if x.strip().startswith("File ")]
            own = [f for f in frames if _STDLIB not in f] or frames
            where = f"; innermost frame: {own[0]}" if own else ""
            return f" ({lines[fatal[-1]].strip()}{where})"[:400]
        return f" (last log line: {lines[-1][:200]})" if lines else ""

    def _kill(self) -> None:
        _kill(self._proc)


_SIGNALS = {
    "SIGSEGV": "killed by SIGSEGV (segmentation fault)",
    "SIGABRT": "killed by SIGABRT (aborted)",
    "SIGBUS": "killed by SIGBUS (bus error)",
    "SIGFPE": "killed by SIGFPE (arithmetic fault)",
    "SIGILL": "killed by SIGILL (illegal instruction)",
}
_STDLIB = os.path.dirname(os.__file__)


def _oom_kills() -> int:
    """The kernel's count of OOM kills since boot (``oom_kill`` in /proc/vmstat), 0 if unknown."""
    try:
        with open("/proc/vmstat", encoding="ascii") as vmstat:
            for line in vmstat:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class MemoryWatch:
    """Samples process ``pid``'s resident memory every :attr:`INTERVAL_S` in a daemon thread
    and SIGKILLs it when it passes ``limit`` bytes (``exceeded`` then says so); ``peak`` is the
    largest sample. The worker's own memory: not its children's, nor what it maps unread."""

    INTERVAL_S = 0.02

    def __init__(self, pid: int, limit: int) -> None:
        import psutil

        self.limit = limit
        self.peak = 0
        self.exceeded = False
        self._process = psutil.Process(pid)
        self._error = psutil.Error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voxbench-memory", daemon=True)
        self._thread.start()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            try:
                rss = self._process.memory_info().rss
            except self._error:  # gone: nothing left to watch
                return
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                self.exceeded = True
                with contextlib.suppress(self._error):
                    self._process.kill()  # psutil checks the pid still names this process
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


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


EXECUTORS: dict[str, Callable[..., Executor]] = {
    WorkerExecutor.mode: WorkerExecutor,
    InProcessExecutor.mode: InProcessExecutor,
}
"""Executor mode → factory called with the per-call timeout (``None``: no limit), and the
keywords ``case_timeout_s`` and ``max_memory``."""


def make_executor(
    mode: str,
    timeout_s: float | None,
    *,
    case_timeout_s: float | None = None,
    max_memory: str | None = None,
) -> Executor:
    """A fresh executor for one case; ConfigError for an unknown mode, or ``max_memory``
    in-process."""
    factory = EXECUTORS.get(mode)
    if factory is None:
        known = " or ".join(EXECUTORS)
        raise ConfigError(f"unknown executor mode {mode!r} (use {known})")
    return factory(timeout_s, case_timeout_s=case_timeout_s, max_memory=max_memory)
