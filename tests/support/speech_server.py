"""A real OpenAI-compatible speech server for tests: starlette + uvicorn on 127.0.0.1, espeak voice.

``POST /v1/audio/speech`` synthesizes ``input`` with voxbench's espeak engine and answers WAV (int16)
or raw ``pcm``, whole or streamed (``"stream": true``: a WAV header of unknown size, then the audio
in ``chunk_ms`` pieces). ``GET /health`` answers ``{"status": "ok"}``. Knobs add a delay before the
first byte, gaps between chunks, injected failures and a required bearer token::

    with SpeechServer(first_chunk_delay_ms=30) as url:
        ...  # url is http://127.0.0.1:PORT/v1/audio/speech

FAULT INJECTION (a server of known misbehaviour, for tests/integration/test_faults.py):
``fail_status=500`` answers every speech request with that status; ``fault`` picks one of
:data:`FAULTS` for every speech request: ``stall`` sends the header and the first chunk, then
nothing for ``stall_s``; ``drop`` sends the header and the first chunk, then closes the connection
mid-body; ``garbage`` answers 200 ``audio/wav`` with random bytes, not a WAV. :class:`ResetServer`
resets (TCP RST) every POST's connection.
"""

from __future__ import annotations

import asyncio
import re
import struct
import threading
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from voxbench.engines.espeak import EspeakEngine

SPEECH_PATH = "/v1/audio/speech"
FAULTS = ("stall", "drop", "garbage")
UNKNOWN_SIZE = 0xFFFFFFFF
_START_TIMEOUT_S = 10.0


def wav_header(
    sample_rate: int, data_bytes: int | None, channels: int = 1, bits: int = 16
) -> bytes:
    """A 44-byte integer-PCM WAV header; ``data_bytes=None`` writes the streaming "unknown" size."""
    frame = channels * bits // 8
    data_size = UNKNOWN_SIZE if data_bytes is None else data_bytes
    riff_size = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * frame, frame, bits)
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", data_size)
    )  # fmt: skip


def _error(status: int, message: str, **more: Any) -> JSONResponse:
    return JSONResponse({"error": {"message": message, **more}}, status_code=status)


class SpeechServer:
    """The server in a background thread; ``with`` starts it and gives the endpoint's URL.

    ``requests`` collects the JSON body of every speech request, for tests to inspect.
    """

    def __init__(
        self,
        *,
        first_chunk_delay_ms: float = 30.0,
        chunk_ms: float = 100.0,
        chunk_gap_ms: float = 0.0,
        fail_status: int | None = None,
        api_key: str | None = None,
        announce_rate: bool = False,
        fault: str | None = None,
        stall_s: float = 30.0,
    ) -> None:
        """``announce_rate`` sends the sample rate in ``X-Sample-Rate``, as ``voxbench serve``
        does (OpenAI's endpoint does not); ``fault``: one of :data:`FAULTS` (None: none)."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault {fault!r} is not one of {FAULTS}")
        self.fault = fault
        self.stall_s = stall_s
        self.first_chunk_delay_ms = first_chunk_delay_ms
        self.chunk_ms = chunk_ms
        self.chunk_gap_ms = chunk_gap_ms
        self.fail_status = fail_status
        self.api_key = api_key
        self.announce_rate = announce_rate
        self.requests: list[dict[str, Any]] = []
        self._engine: EspeakEngine | None = None
        # The espeak library is process-global; one synthesis at a time, whatever uvicorn does.
        self._synth_lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> str:
        engine = EspeakEngine()
        engine.load()
        self._engine = engine
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=0,
            log_level="critical" if self.fault else "warning",  # an injected fault logs no trace
            lifespan="off",
            ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="speech-server", daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._wait_for_port()}{SPEECH_PATH}"

    def _wait_for_port(self) -> int:
        """The ephemeral port, read back from the listening socket once uvicorn has bound it."""
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("the speech server did not start")
            time.sleep(0.01)
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=_START_TIMEOUT_S)
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    # --- the application -------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI application."""
        return Starlette(
            routes=[
                Route(SPEECH_PATH, self._speech, methods=["POST"]),
                Route("/health", self._health, methods=["GET"]),
            ]
        )

    async def _health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _speech(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return _error(401, "missing or wrong API key")
        if self.fail_status is not None:
            # Echoes the Authorization header as some careless proxies do, to test key redaction.
            return _error(self.fail_status, "injected failure", authorization=auth)
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        self.requests.append(body)
        text, fmt = body.get("input"), body.get("response_format", "wav")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "input must be a non-empty string")
        if fmt not in ("wav", "pcm"):
            return _error(400, f"response_format {fmt!r} is not supported (wav, pcm)")
        if self.fault == "garbage":
            import os

            return Response(os.urandom(8000), media_type="audio/wav")
        pcm, rate, synth_ms = await run_in_threadpool(self._synthesize, text)
        if self.fault in ("stall", "drop"):
            body = self._broken(wav_header(rate, None), pcm)
            return StreamingResponse(body, media_type="audio/wav")
        # A comma inside the quoted desc and an entry without dur, as real servers send them.
        headers = {"Server-Timing": f'synth;dur={synth_ms:.3f};desc="espeak-ng, in-process", cache'}
        if self.announce_rate:
            headers["X-Sample-Rate"] = str(rate)
        media = "audio/wav" if fmt == "wav" else "audio/pcm"
        if not body.get("stream"):
            header = wav_header(rate, len(pcm)) if fmt == "wav" else b""
            return Response(header + pcm, media_type=media, headers=headers)
        header = wav_header(rate, None) if fmt == "wav" else b""
        return StreamingResponse(self._paced(header, pcm, rate), media_type=media, headers=headers)

    def _synthesize(self, text: str) -> tuple[bytes, int, float]:
        """``(int16 little-endian samples, sample rate, milliseconds taken)``."""
        import numpy as np

        assert self._engine is not None
        with self._synth_lock:
            start = time.perf_counter()
            out = self._engine.synthesize(text)
            ms = (time.perf_counter() - start) * 1000
        assert out.audio is not None and out.sample_rate is not None
        # espeak's floats are int16 / 32768: this gives back its very samples.
        ints = np.clip(np.round(out.audio * 32768.0), -32768, 32767).astype("<i2")
        return ints.tobytes(), out.sample_rate, ms

    async def _broken(self, header: bytes, pcm: bytes) -> AsyncIterator[bytes]:
        """A streamed body that stalls (``stall``) or breaks off (``drop``) after one piece."""
        yield header + pcm[:3200]
        if self.fault == "stall":
            await asyncio.sleep(self.stall_s)
        raise ConnectionAbortedError("injected: the connection breaks off mid-body")

    async def _paced(self, header: bytes, pcm: bytes, rate: int) -> AsyncIterator[bytes]:
        """The streamed body: a pause, the header, then the audio in ``chunk_ms`` pieces."""
        await asyncio.sleep(self.first_chunk_delay_ms / 1000)
        if header:
            yield header
        step = max(1, round(rate * self.chunk_ms / 1000)) * 2
        for offset in range(0, len(pcm), step):
            if offset and self.chunk_gap_ms:
                await asyncio.sleep(self.chunk_gap_ms / 1000)
            yield pcm[offset : offset + step]


class ResetServer:
    """FAULT INJECTION: a TCP server on 127.0.0.1 that answers a GET (the HTTP engine's probe at
    load) with an empty 405, and resets the connection (SO_LINGER 0, then close: a TCP RST) on
    every other request; ``with`` gives the speech URL. ``resets`` counts them."""

    def __init__(self) -> None:
        import socket

        self.resets = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="reset-server", daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}{SPEECH_PATH}"

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=_START_TIMEOUT_S)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Any) -> None:
        import socket

        conn.settimeout(_START_TIMEOUT_S)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                if not head.startswith(b"GET "):
                    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    while length and len(buf) < int(length.group(1)):
                        data = conn.recv(65536)  # the whole request first: then nothing is sent
                        if not data:
                            return
                        buf += data
                    self.resets += 1
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            return
        finally:
            conn.close()
