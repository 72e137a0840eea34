"""The worker process: builds one engine and answers timing requests over a pipe.

The conversation is typed (:mod:`voxbench.run.messages`). Kept free of heavy imports so that
start-up time is the engine's own, not voxbench's: the registry, and the engine, load when the
first :class:`~voxbench.run.messages.Start` arrives.
"""

from __future__ import annotations

import os
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


def _redirect_output(log_path: str) -> None:
    # Engines print (warnings, progress); keep that out of the parent's terminal and progress bar.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _start(message: Start) -> tuple[Adapted | None, Started | Failed]:
    try:
        engine, start = start_engine(message.spec)
    except VoxbenchError as exc:
        return None, Failed.of(exc)
    return engine, Started(start)


def main(conn: Connection, log_path: str) -> None:
    """The worker's life: answer messages until Close (or the parent's end of the pipe closes)."""
    # Ctrl-C reaches the whole process group; the parent decides what stops, and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect_output(log_path)
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
