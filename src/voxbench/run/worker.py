"""The worker process: builds one engine and answers timing requests over a pipe.

Kept free of heavy imports so that start-up time is the engine's own, not voxbench's.
"""

from __future__ import annotations

import os
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any


def _redirect_output(log_path: str) -> None:
    # Engines print (warnings, progress); keep that out of the parent's terminal and progress bar.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _load(spec: Any) -> tuple[Any, tuple[str, Any]]:
    from voxbench.errors import ConfigError, EngineUnavailable, VoxbenchError
    from voxbench.run.executors import build_and_load
    from voxbench.run.measure import error_dict

    try:
        engine, facts = build_and_load(spec)
        return engine, ("ok", facts)
    except EngineUnavailable as exc:
        return None, ("error", ("unavailable", str(exc)))
    except ConfigError as exc:
        return None, ("error", ("config", str(exc)))
    except VoxbenchError as exc:
        return None, ("error", ("failed", str(exc)))
    except Exception as exc:
        err = error_dict(exc)
        msg = f"engine {spec.ref!r} failed to load: {err['type']}: {err['message']}"
        return None, ("error", ("failed", msg))


def main(conn: Connection, log_path: str) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what stops, and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect_output(log_path)
    from voxbench.run.measure import measure_call, memory_report

    engine: Any = None
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            break
        op = message[0]
        if op == "call":
            _, payload, use_stream, keep_audio, batch = message
            conn.send(
                measure_call(
                    engine, payload, use_stream=use_stream, keep_audio=keep_audio, batch=batch
                )
            )
        elif op == "load":
            engine, reply = _load(message[1])
            conn.send(reply)
        elif op == "memory":
            conn.send(memory_report())
        elif op == "close":
            break
    if engine is not None and callable(getattr(engine, "close", None)):
        engine.close()
