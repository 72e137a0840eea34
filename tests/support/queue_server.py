"""A real HTTP/1.1 server on 127.0.0.1 whose queueing is known exactly, with injectable faults.

``workers`` requests are served at a time, each taking ``service_ms``; the rest wait in an
unbounded FIFO. Answers are short WAV files (16 kHz, ``audio_ms`` of silence), streamed in
``chunks`` pieces when asked. ``fault(i)`` picks what request ``i`` (0-based, in arrival order)
gets: "ok", "500", "reset" (connection dropped), "slow" (a stream that stalls for ``slow_s``),
"bad_audio" (an audio/wav body that is not WAV).

Written on asyncio streams rather than a framework so that nothing but the semaphore decides
when a request is served.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable

Fault = Callable[[int], str]


def wav(samples: int, rate: int = 16000) -> bytes:
    data = b"\x00\x01" * samples
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


class QueueServer:
    def __init__(
        self,
        workers: int = 1,
        service_ms: float = 50.0,
        audio_ms: int = 500,
        chunks: int = 1,
        fault: Fault = lambda i: "ok",
        slow_s: float = 3.0,
    ) -> None:
        self.workers, self.service_s = workers, service_ms / 1000
        self.body = wav(16 * audio_ms)
        self.chunks, self.fault, self.slow_s = chunks, fault, slow_s
        self.count = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/audio/speech"

    def __enter__(self) -> QueueServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("queue server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(self.workers)
        server = await asyncio.start_server(self._client, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                index, self.count = self.count, self.count + 1
                if not await self._answer(self.fault(index), writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, mode: str, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection must end."""
        async with self._slots:
            await asyncio.sleep(self.service_s)
        if mode == "reset":
            writer.transport.abort()
            return False
        if mode == "500":
            msg = b'{"error": "injected"}'
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(msg), msg)
            )
        elif mode == "bad_audio":
            msg = b"this is not a wav file at all, sorry"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(msg), msg)
            )
        else:
            await self._stream(writer, stall=mode == "slow")
        await writer.drain()
        return True

    async def _stream(self, writer: asyncio.StreamWriter, stall: bool) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        size = -(-len(self.body) // self.chunks)
        for k in range(0, len(self.body), size):
            piece = self.body[k : k + size]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            if stall:
                await asyncio.sleep(self.slow_s)
        writer.write(b"0\r\n\r\n")
