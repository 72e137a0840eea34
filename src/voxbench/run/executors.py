"""Where an engine runs: in this process, or in an isolated worker process (the default).

A worker is started with ``spawn`` (engines start native thread pools that must not be forked),
builds the engine from its :class:`EngineSpec`, and times each call itself with
:func:`voxbench.run.measure.measure_call`, so the pipe never enters a latency. A call that outlives its
timeout kills the worker; a crash is reported with the worker's exit code and last log lines.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxbench.engine import can_stream
from voxbench.engines.registry import EngineSpec
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable, VoxbenchError
from voxbench.run.measure import CallRecord, error_dict, measure_call, memory_report


@dataclass
class StartInfo:
    """How long it took to get an engine ready, and what it says about itself."""

    process_ms: float | None
    import_ms: float
    load_ms: float
    streams: bool
    info: dict[str, Any] = field(default_factory=dict)


def build_and_load(spec: EngineSpec) -> tuple[Any, dict[str, Any]]:
    """Import, build and load the engine; time the import and the load apart."""
    t0 = time.perf_counter_ns()
    spec.factory()
    t1 = time.perf_counter_ns()
    engine = spec.create()
    engine.load()
    t2 = time.perf_counter_ns()
    info_fn = getattr(engine, "info", None)
    info = info_fn() if callable(info_fn) else {}
    return engine, {
        "import_ms": (t1 - t0) / 1e6,
        "load_ms": (t2 - t1) / 1e6,
        "streams": can_stream(engine),
        "info": info,
    }


class InProcessExecutor:
    """Runs the engine in this process: least overhead, but a hang cannot be cut and memory is shared."""

    mode = "in-process"
    rss_scope = "process"

    def __init__(self, timeout_s: float | None = None) -> None:
        self.created_ns = time.perf_counter_ns()
        self._engine: Any = None

    def start(self, spec: EngineSpec) -> StartInfo:
        try:
            self._engine, facts = build_and_load(spec)
        except VoxbenchError:
            raise
        except Exception as exc:
            err = error_dict(exc)
            raise EngineFailed(
                f"engine {spec.ref!r} failed to load: {err['type']}: {err['message']}"
            ) from exc
        return StartInfo(process_ms=None, **facts)

    def call(
        self, payload: Any, *, use_stream: bool, keep_audio: bool, batch: int = 1
    ) -> CallRecord:
        return measure_call(
            self._engine, payload, use_stream=use_stream, keep_audio=keep_audio, batch=batch
        )

    def memory(self) -> dict[str, Any]:
        return memory_report()

    def close(self) -> None:
        if self._engine is not None:
            close = getattr(self._engine, "close", None)
            if callable(close):
                close()
            self._engine = None


_ERROR_TYPES: dict[str, type[VoxbenchError]] = {
    "unavailable": EngineUnavailable,
    "config": ConfigError,
    "failed": EngineFailed,
}


class WorkerExecutor:
    """Runs the engine in a fresh ``spawn``-ed process: per-engine memory, crashes and hangs contained."""

    mode = "worker"
    rss_scope = "worker"

    def __init__(self, timeout_s: float | None = 120.0, load_timeout_s: float = 600.0) -> None:
        from voxbench.run import worker as _worker

        self.timeout_s = timeout_s
        self.load_timeout_s = max(load_timeout_s, timeout_s or 0)
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        fd, log = tempfile.mkstemp(prefix="voxbench-worker-", suffix=".log")
        os.close(fd)
        self._log = Path(log)
        self.created_ns = time.perf_counter_ns()
        self._proc = ctx.Process(target=_worker.main, args=(child, str(self._log)), daemon=True)
        self._proc.start()
        child.close()
        self._ready_ns: int | None = None

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" (last log line: {lines[-1][:200]})" if lines else ""

    def _receive(self, timeout: float | None, what: str) -> Any:
        if not self._conn.poll(timeout):
            self._kill()
            raise EngineFailed(f"{what} timed out after {timeout:g} s; the worker was stopped")
        try:
            return self._conn.recv()
        except (EOFError, ConnectionError):
            self._proc.join(5)
            code = self._proc.exitcode
            raise EngineFailed(
                f"worker died during {what} (exit code {code}){self._log_tail()}"
            ) from None

    def _send(self, message: tuple[Any, ...], what: str) -> None:
        try:
            self._conn.send(message)
        except (BrokenPipeError, ConnectionError, OSError):
            raise EngineFailed(f"worker is gone before {what}{self._log_tail()}") from None

    def start(self, spec: EngineSpec) -> StartInfo:
        ready = self._receive(self.load_timeout_s, "worker start-up")
        assert ready == ("ready",)
        process_ms = (time.perf_counter_ns() - self.created_ns) / 1e6
        self._send(("load", spec), "load")
        status, body = self._receive(self.load_timeout_s, "engine load")
        if status != "ok":
            kind, message = body
            raise _ERROR_TYPES[kind](message)
        return StartInfo(process_ms=process_ms, **body)

    def call(
        self, payload: Any, *, use_stream: bool, keep_audio: bool, batch: int = 1
    ) -> CallRecord:
        self._send(("call", payload, use_stream, keep_audio, batch), "a call")
        return self._receive(self.timeout_s, "engine call")

    def memory(self) -> dict[str, Any]:
        self._send(("memory",), "reading memory")
        return self._receive(30, "reading memory")

    def _kill(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join(5)

    def close(self) -> None:
        try:
            if self._proc.is_alive():
                self._conn.send(("close",))
                self._proc.join(10)
        except (BrokenPipeError, ConnectionError, OSError):
            pass
        finally:
            self._kill()
            self._conn.close()
            self._log.unlink(missing_ok=True)


def make_executor(mode: str, timeout_s: float | None) -> InProcessExecutor | WorkerExecutor:
    if mode == "worker":
        return WorkerExecutor(timeout_s=timeout_s)
    if mode == "in-process":
        return InProcessExecutor(timeout_s=timeout_s)
    raise ConfigError(f"unknown executor mode {mode!r} (use worker or in-process)")
