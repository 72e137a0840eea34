"""The worker process: builds one engine and answers timing requests over a pipe.

The conversation is typed (:mod:`voxbench.run.messages`). Kept free of heavy imports so that
start-up time is the engine's own, not voxbench's: the registry, and the engine, load when the
first :class:`~voxbench.run.messages.Start` arrives.

:class:`~voxbench.run.executors.WorkerExecutor` starts it as ``python -c BOOTSTRAP FD PATH...``
(:data:`BOOTSTRAP`): the interpreter, this module and nothing else. Not ``multiprocessing``'s
spawn, which re-runs the parent's main script in the child: from the ``voxbench`` console script
that is the CLI with typer, ~70 ms of every worker's start and memory that is not the engine's.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
from multiprocessing.connection import Connection

from voxbench.engine import Adapted
from voxbench.errors import VoxbenchError
from voxbench.run.measure import measure_call, memory_report, start_engine
from voxbench.run.messages import (
    Call,
    Close,
    Failed,
    MemoryReport,
    ReadMemory,
    Ready,
    Result,
    Start,
    Started,
)


def _start(message: Start) -> tuple[Adapted | None, Started | Failed]:
    try:
        engine, start = start_engine(message.spec)
    except VoxbenchError as exc:
        return None, Failed.of(exc)
    return engine, Started(start)


BOOTSTRAP = "import sys; sys.path[:] = sys.argv[2:]; from voxbench.run.worker import serve; serve()"
"""The worker's ``python -c`` program. Its arguments: the pipe's file descriptor, then the parent's
``sys.path``, one entry per argument, taken first: voxbench, and an engine importable in the parent
(a test's module, a script's folder), must be importable here too."""


def serve() -> None:
    """The worker's entry point (see :data:`BOOTSTRAP`): serve the pipe ``sys.argv[1]``."""
    main(Connection(int(sys.argv[1])))


def main(conn: Connection) -> None:
    """The worker's life: answer messages until Close (or the parent's end of the pipe closes).

    Its stdout and stderr are the log the executor gave it: engines print, and a fatal signal
    (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) writes the Python frames there
    (:mod:`faulthandler`), which the executor quotes in the case's error.
    """
    # Ctrl-C reaches the whole process group; the parent decides what stops, and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable(all_threads=False)
    engine: Adapted | None = None
    conn.send(Ready())
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                break
            # Call first: it is the message that comes thousands of times.
            if isinstance(message, Call):
                record = measure_call(
                    engine,
                    message.payload,
                    use_stream=message.use_stream,
                    keep_audio=message.keep_audio,
                    batch=message.batch,
                )
                conn.send(Result(record))
            elif isinstance(message, Start):
                engine, reply = _start(message)
                conn.send(reply)
            elif isinstance(message, ReadMemory):
                conn.send(MemoryReport(memory_report()))
            elif isinstance(message, Close):
                break
            else:  # cannot happen with a parent of this version; die loudly, the log tells why
                raise TypeError(f"unknown message {message!r}")
    finally:
        if engine is not None:
            engine.close()
