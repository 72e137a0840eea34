"""``voxbench serve``: any voxbench engine behind an OpenAI-compatible speech endpoint.

One engine instance answers ``POST /v1/audio/speech`` (``input``, ``response_format`` ``wav`` or
``pcm``, ``stream``), so it can be load-tested as a service, by voxbench's own HTTP engine or by
any other client. Engine calls run in worker threads, at most ``concurrency`` at a time; at most
``queue`` more requests wait for a slot and the rest are refused at once with 503, so an overload
shows up as errors instead of an ever longer queue.

Each answer says where its time went in ``Server-Timing``: ``queue`` (waiting for a slot),
``synth`` (the engine call) and the engine's own stages; a stream says ``queue`` and
``first_chunk`` (the engine's time to its first chunk), as the rest is unknown when the head goes.

    with ServerThread(EngineSpec("espeak"), concurrency=2) as server:
        ...  # server.url is http://127.0.0.1:PORT/v1/audio/speech
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from voxbench.engine import adapt, can_stream, collect_stages
from voxbench.engines.registry import EngineSpec
from voxbench.errors import ConfigError, EngineFailed
from voxbench.load import serve_stt
from voxbench.load.serve_checks import (
    MAX_HEAD_BYTES,
    MEDIA_TYPES,
    Limits,
    Refused,
    SpeechRequest,
    error_response,
    http_error,
    parse_speech,
    read_body,
    refusal,
)
from voxbench.load.serve_protocol import deadline_protocol
from voxbench.wav import to_pcm16, wav_header

__all__ = ["Limits", "ServerThread", "SpeechRequest", "build_app", "error_response", "serve"]

SPEECH_PATH = "/v1/audio/speech"
_START_TIMEOUT_S = 30.0
# In-flight requests get this long to finish when the server is asked to stop.
_GRACEFUL_SHUTDOWN_S = 5
_NOT_TOKEN = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")

log = logging.getLogger("voxbench.load.serve")


# --- Server-Timing -------------------------------------------------------------------------------


def _token(name: str) -> str:
    """A stage name as a Server-Timing metric name (an HTTP token)."""
    return _NOT_TOKEN.sub("_", name) or "stage"


def server_timing(metrics: dict[str, float]) -> str:
    """``name;dur=ms, ...`` for a ``Server-Timing`` header."""
    return ", ".join(f"{_token(name)};dur={ms:.3f}" for name, ms in metrics.items())


# --- slots and queue -----------------------------------------------------------------------------


class Slot:
    """The right to run one engine call; give it back with :meth:`release` (idempotent)."""

    def __init__(self, gate: Gate, waited_ms: float) -> None:
        self.waited_ms = waited_ms
        self._gate: Gate | None = gate

    def release(self) -> None:
        """Free the slot for the next request (later calls do nothing)."""
        if self._gate is not None:
            self._gate.leave()
            self._gate = None


class Gate:
    """At most ``concurrency`` engine calls at once and ``queue`` requests waiting for one.

    Used from the event loop only, so the counters need no lock.
    """

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self.in_flight = 0
        self.queued = 0
        self._free = asyncio.Semaphore(concurrency)

    async def enter(self) -> Slot | None:
        """Wait for a slot; None at once when the queue is full."""
        # A request that has been handed a slot but not resumed yet still counts as queued, so the
        # sum never lets more in than there is room for.
        if self.in_flight + self.queued >= self.concurrency + self.queue:
            return None
        start = time.perf_counter_ns()
        self.queued += 1
        try:
            await self._free.acquire()
        finally:
            self.queued -= 1
        self.in_flight += 1
        return Slot(self, (time.perf_counter_ns() - start) / 1e6)

    def leave(self) -> None:
        """Give a slot back (through :meth:`Slot.release`)."""
        self.in_flight -= 1
        self._free.release()


# --- the engine, owned by the app ----------------------------------------------------------------


@dataclass
class Synthesis:
    """One whole engine call: 16-bit PCM, its rate, the engine's time and its stages (ms)."""

    pcm: bytes
    sample_rate: int
    synth_ms: float
    stages: dict[str, float]

    @property
    def seconds(self) -> float:
        """Length of the audio."""
        return len(self.pcm) / 2 / self.sample_rate


class Service:
    """The one engine instance behind the app, its slots and the threads its calls run in."""

    def __init__(self, spec: EngineSpec, concurrency: int, queue: int, chunk_ms: int) -> None:
        if concurrency < 1 or queue < 0 or chunk_ms < 1:
            raise ConfigError("concurrency and chunk_ms must be at least 1, queue at least 0")
        self.spec = spec
        self.concurrency = concurrency
        self.chunk_ms = chunk_ms
        self.gate = Gate(concurrency, queue)
        self.engine: Any = None
        self.name = spec.ref
        self.kinds = serve_stt.spec_kinds(spec)  # speech, or transcription (serve_stt)
        self._lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None

    def start(self) -> None:
        """Build and load the engine unless that is done: text to audio, or audio to text."""
        with self._lock:
            if self.engine is not None:
                return
            engine = adapt(self.spec.create())  # load, close, stream: the full protocol
            kinds = (getattr(engine, "input_kind", "text"), getattr(engine, "output_kind", "audio"))
            if kinds != self.kinds or kinds not in serve_stt.SERVED_KINDS:
                raise ConfigError(
                    f"engine {self.spec.ref!r} takes {kinds[0]} and gives {kinds[1]}; "
                    "a speech endpoint needs one that takes text and gives audio "
                    "(a transcription endpoint: audio to text)"
                )
            engine.load()
            self.engine = engine
            self.name = self.spec.name

    def stop(self) -> None:
        """Close the engine (once)."""
        with self._lock:
            engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()

    async def in_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run ``func(*args)`` in an engine thread; cancelling the caller waits for it to return."""
        if self._limiter is None:
            # Its own threads: engine calls never wait behind starlette's shared pool.
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    def synthesize(self, text: str) -> Synthesis:
        """One whole engine call, in the calling (worker) thread."""
        with collect_stages() as stages:
            start = time.perf_counter_ns()
            out = self._loaded().synthesize(text)
            synth_ms = (time.perf_counter_ns() - start) / 1e6
        for name, ms in (getattr(out, "stages", None) or {}).items():
            stages[name] = stages.get(name, 0.0) + ms
        if getattr(out, "audio", None) is None or not getattr(out, "sample_rate", None):
            raise EngineFailed("the engine returned no audio")
        return Synthesis(to_pcm16(out.audio), int(out.sample_rate), synth_ms, dict(stages))

    def _loaded(self) -> Any:
        engine = self.engine
        if engine is None:
            raise EngineFailed("the engine is not loaded (server starting or stopping)")
        return engine


# --- streaming: engine thread → event loop -------------------------------------------------------

_END = object()


class EngineStream:
    """One ``engine.stream(text)`` iterated in an engine thread, its chunks handed to the loop.

    :meth:`next` gives ``(sample_rate, pcm16)`` pieces; :meth:`close` stops the iteration at the
    next chunk (the engine's generator is closed, so it can stop working) and waits for the thread.
    """

    def __init__(self, service: Service, text: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._stop = threading.Event()
        self.first_chunk_ms: float | None = None
        self._task = asyncio.ensure_future(service.in_thread(self._pump, service, text))

    def _emit(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            self._stop.set()

    def _pump(self, service: Service, text: str) -> None:
        start = time.perf_counter_ns()
        try:
            chunks = service._loaded().stream(text)
            try:
                self._forward(chunks, start)
            finally:
                close = getattr(chunks, "close", None)
                if callable(close):
                    close()
        except BaseException as exc:  # the response reports it; the thread must not die with it
            self._emit(exc)
        else:
            self._emit(_END)

    def _forward(self, chunks: Iterator[Any], start: int) -> None:
        rate: int | None = None
        for chunk in chunks:
            if self._stop.is_set():
                return
            if rate is None:
                rate = int(chunk.sample_rate)
                self.first_chunk_ms = (time.perf_counter_ns() - start) / 1e6
            elif int(chunk.sample_rate) != rate:
                raise EngineFailed(f"the stream changed sample rate ({rate} → {chunk.sample_rate})")
            self._emit((rate, to_pcm16(chunk.audio)))

    async def next(self) -> tuple[int, bytes] | None:
        """The next piece, None at the end; raises what the engine raised."""
        item = await self._items.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        """Stop the engine iteration and wait until its thread has let go of the engine."""
        self._stop.set()
        with anyio.CancelScope(shield=True):
            await self._task


class GuardedStreamingResponse(StreamingResponse):
    """A streaming response that runs ``on_close`` however it ends: finished, failed or the client
    gone (starlette then cancels the body iterator, which alone would leak the engine slot)."""

    def __init__(
        self, content: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]], **kw: Any
    ) -> None:
        super().__init__(content, **kw)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._on_close()


# --- requests and answers ------------------------------------------------------------------------


def engine_error(exc: BaseException) -> JSONResponse:
    """500 naming the exception type and the first line of its message, never a traceback."""
    lines = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    log.warning("engine call failed: %s", message)
    log.debug("engine call failed", exc_info=exc)
    return error_response(500, message, "engine_error")


def _audio_headers(fmt: str, rate: int, metrics: dict[str, float]) -> dict[str, str]:
    return {
        "Server-Timing": server_timing(metrics),
        "X-Sample-Rate": str(rate),
        "Content-Type": MEDIA_TYPES[fmt],
    }


class SpeechApp:
    """The route handlers, around one :class:`Service`."""

    def __init__(self, service: Service, limits: Limits) -> None:
        self.service = service
        self.limits = limits

    async def health(self, _request: Request) -> Response:
        """Liveness, and how busy the engine is."""
        s = self.service
        return JSONResponse(
            {
                "status": "ok",
                "engine": s.name,
                "concurrency": s.concurrency,
                "in_flight": s.gate.in_flight,
                "queued": s.gate.queued,
            }
        )

    async def models(self, _request: Request) -> Response:
        """The one model: the engine."""
        return JSONResponse(
            {"object": "list", "data": [{"id": self.service.name, "object": "model"}]}
        )

    async def speech(self, request: Request) -> Response:
        """``POST /v1/audio/speech``."""
        try:
            body = await read_body(request, self.limits.max_json_bytes)
            ctype = request.headers.get("content-type")
            req = parse_speech(body, ctype, self.limits.max_text_chars)
        except Refused as exc:
            return refusal(exc)
        slot = await self.service.gate.enter()
        if slot is None:
            return error_response(503, "queue full", "overloaded", headers={"Retry-After": "1"})
        try:
            if req.stream and can_stream(self.service.engine):
                return await self._live_stream(req, slot)
            return await self._whole(req, slot)
        except Exception as exc:
            slot.release()
            return engine_error(exc)

    async def _whole(self, req: SpeechRequest, slot: Slot) -> Response:
        """Synthesize, free the slot, then answer in one body or (``stream``) in timed pieces."""
        try:
            synth: Synthesis = await self.service.in_thread(self.service.synthesize, req.text)
        finally:
            slot.release()
        metrics = {"queue": slot.waited_ms, "synth": synth.synth_ms, **synth.stages}
        headers = _audio_headers(req.response_format, synth.sample_rate, metrics)
        headers["X-Audio-Seconds"] = f"{synth.seconds:.6f}"
        wav = req.response_format == "wav"
        if not req.stream:
            header = wav_header(synth.sample_rate, len(synth.pcm)) if wav else b""
            return Response(header + synth.pcm, headers=headers)
        header = wav_header(synth.sample_rate, None) if wav else b""
        step = max(1, synth.sample_rate * self.service.chunk_ms // 1000) * 2
        return StreamingResponse(_pieces(header, synth.pcm, step), headers=headers)

    async def _live_stream(self, req: SpeechRequest, slot: Slot) -> Response:
        """Forward the engine's chunks as they come; the slot is held until the stream ends.

        The head waits for the first chunk: it carries the sample rate, and a failure before any
        audio can still be a proper 500.
        """
        stream = EngineStream(self.service, req.text)

        async def finish() -> None:
            await stream.close()
            slot.release()

        try:
            first = await stream.next()
            if first is None:
                raise EngineFailed("the engine streamed no audio")
        except BaseException:
            await finish()
            raise
        rate, pcm = first
        header = wav_header(rate, None) if req.response_format == "wav" else b""
        metrics = {"queue": slot.waited_ms, "first_chunk": stream.first_chunk_ms or 0.0}
        return GuardedStreamingResponse(
            _forward(stream, header + pcm),
            on_close=finish,
            headers=_audio_headers(req.response_format, rate, metrics),
        )


async def _pieces(header: bytes, pcm: bytes, step: int) -> AsyncIterator[bytes]:
    """A finished answer sent as a stream: the header, then ``step``-byte pieces."""
    if header:
        yield header
    for offset in range(0, len(pcm), step):
        yield pcm[offset : offset + step]


async def _forward(stream: EngineStream, first: bytes) -> AsyncIterator[bytes]:
    """The body of a live stream; an engine failure midway cuts the connection, so the client
    sees an error rather than a short answer that looks whole."""
    yield first
    while (piece := await stream.next()) is not None:
        yield piece[1]


def build_app(
    spec: EngineSpec,
    *,
    concurrency: int = 1,
    queue: int = 64,
    chunk_ms: int = 100,
    limits: Limits | None = None,
) -> Starlette:
    """The ASGI app serving ``spec``'s engine: built and loaded at start-up, closed at shutdown.

    ``chunk_ms`` sizes the pieces a non-streaming engine's answer is streamed in; ``limits``
    (:mod:`voxbench.load.serve_checks`) what a request may be.
    """
    limits = limits or Limits()
    service = Service(spec, concurrency, queue, chunk_ms)
    handlers = SpeechApp(service, limits)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(service.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.stop)

    speech = Route(SPEECH_PATH, handlers.speech, methods=["POST"])
    stt = service.kinds == serve_stt.TRANSCRIPTION_KINDS
    served = serve_stt.route(service, limits.max_upload_bytes) if stt else speech
    app = Starlette(
        routes=[
            served,
            Route("/health", handlers.health, methods=["GET"]),
            Route("/v1/models", handlers.models, methods=["GET"]),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    app.state.service = service
    app.state.path = served.path
    app.state.limits = limits
    return app


def _service(app: Starlette) -> Service:
    return app.state.service


# --- running it ----------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port); one-line ConfigError when it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn, with a hook once it listens; a signal stops it quietly instead of being re-raised
    (for ``voxbench serve`` a signal is the normal way to stop, not an interruption)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list):
                    captured.clear()


def _config(app: Starlette, log_level: str) -> uvicorn.Config:
    limits: Limits = app.state.limits
    return uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        http=deadline_protocol(limits.header_timeout_s, limits.body_timeout_s),
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]  # call_later takes float
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )


def serve(
    spec: EngineSpec,
    host: str = "127.0.0.1",
    port: int = 8880,
    concurrency: int = 1,
    queue: int = 64,
    log_level: str = "warning",
    chunk_ms: int = 100,
    limits: Limits | None = None,
) -> None:
    """Serve ``spec``'s engine until SIGINT/SIGTERM; one line on stderr once it listens.

    The port is bound and the engine loaded before uvicorn starts, so a busy port or an engine that
    cannot load is a one-line error, not a server that never comes up. Only 127.0.0.1 unless
    ``host`` says otherwise; ``limits``: what a request may be (:class:`Limits`' defaults).
    """
    sock = bind_socket(host, port)
    app = build_app(spec, concurrency=concurrency, queue=queue, chunk_ms=chunk_ms, limits=limits)
    service = _service(app)
    try:
        service.start()
        url = base_url(sock) + app.state.path

        def ready() -> None:
            print(
                f"voxbench serve: {service.name} on {url} (concurrency {concurrency}, queue {queue})",
                file=sys.stderr,
                flush=True,
            )

        _Server(_config(app, log_level), on_ready=ready).run(sockets=[sock])
    finally:
        sock.close()
        service.stop()


class ServerThread:
    """``serve`` on a background thread, for tests and self-tests; port 0 picks a free port.

    ``with ServerThread(EngineSpec("espeak")) as server:`` gives ``server.url`` (the speech
    endpoint) and ``server.base_url``; leaving the block stops the server and closes the engine.
    """

    def __init__(
        self,
        spec: EngineSpec,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        concurrency: int = 1,
        queue: int = 64,
        chunk_ms: int = 100,
        log_level: str = "warning",
        limits: Limits | None = None,
    ) -> None:
        self.app = build_app(
            spec, concurrency=concurrency, queue=queue, chunk_ms=chunk_ms, limits=limits
        )
        self.host = host
        self.port = port
        self.log_level = log_level
        self.base_url = ""
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def service(self) -> Service:
        """The engine's service (its gate tells what is in flight)."""
        return _service(self.app)

    def __enter__(self) -> ServerThread:
        self._sock = bind_socket(self.host, self.port)
        try:
            self.service.start()
            self.base_url = base_url(self._sock)
            self.url = self.base_url + self.app.state.path
            self._server = _Server(_config(self.app, self.log_level))
            self._thread = threading.Thread(
                target=self._server.run,
                kwargs={"sockets": [self._sock]},
                name="voxbench-serve",
                daemon=True,
            )
            self._thread.start()
            self._wait_started()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server for {self.service.name} did not start")
            time.sleep(0.005)

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(_GRACEFUL_SHUTDOWN_S + _START_TIMEOUT_S)
        if self._sock is not None:
            self._sock.close()
        self.service.stop()
        self._server = self._thread = self._sock = None
