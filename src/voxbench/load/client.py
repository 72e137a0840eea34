"""Send requests at their intended times and record what happened to each, raw.

A small HTTP/1.1 client on asyncio protocols, with an unbounded keep-alive pool, so no request
waits client-side for a connection: a request's ``sent`` time is when the generator got to it,
and ``sent - due`` is the schedule lag. All times are ``time.monotonic()`` seconds from the
level's start (the clock asyncio's timers use).

Why not aiohttp (which this module used before): it spends about 200 µs of CPU on each request,
so one generator process could not keep its own schedule much above 2,000 requests/s; this client
spends a small fraction of that (``benchmarks/loadgen.py`` measures it). It does only what a
load test of a speech endpoint needs: POST a JSON body over HTTP/1.1 (TLS for https URLs), read
the response as it arrives — Content-Length, chunked or until close — and time every piece of
the body. It follows no redirects (a 3xx is recorded as the answer), sends no cookies and asks for
no compression, so the bytes timed are the bytes the decoder reads.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from voxbench.errors import EngineFailed
from voxbench.load.schedule import Level

UNSET = -1.0
_MAX_HEAD_BYTES = 64 * 1024  # a response head longer than this is not HTTP we can use
_MAX_CHUNK_LINE = 4096  # the same for one chunk-size line or trailer field
_KEEPALIVE_S = 15.0  # idle connections older than this are closed, not reused (as aiohttp did)


@dataclass(slots=True)
class RequestRecord:
    """What one request did. Times in seconds from the level start; -1 when it never happened."""

    due: float
    sent: float = UNSET
    first_byte: float = UNSET
    first_audio: float = UNSET
    done: float = UNSET
    status: int = 0
    error: str | None = None  # kind: http_503, timeout, reset, connect, bad_audio, other
    detail: str = ""
    bytes: int = 0
    audio_seconds: float = 0.0
    # (arrival time, audio seconds received so far), streamed responses only
    arrivals: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """The endpoint and what to send it."""

    url: str
    bodies: tuple[dict[str, Any], ...]  # request JSON bodies, used in turn
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    pcm_sample_rate: int = 24000
    track_chunks: bool = True


# --- errors --------------------------------------------------------------------------------------


class ConnectFailed(OSError):
    """The TCP (or TLS) connection to the server could not be made."""


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the response was complete."""


class BadResponse(ValueError):
    """The server's answer is not HTTP/1.x this client can read."""


class BadChunking(ValueError):
    """A chunked body whose framing is broken."""


def _error_kind(exc: BaseException) -> str:
    # TimeoutError is an OSError: it is tested first.
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectFailed):
        return "connect"
    if isinstance(exc, ServerDisconnected | BadChunking | ConnectionError | OSError):
        return "reset"
    return "other"


def _decoder(content_type: str, first: bytes, pcm_rate: int) -> Any:
    from voxbench.engines.http import WavStreamDecoder, pcm16_format

    if first[:4] == b"RIFF" or content_type.startswith(("audio/wav", "audio/x-wav")):
        return WavStreamDecoder()
    if content_type.startswith(("audio/pcm", "audio/l16")):
        return WavStreamDecoder(raw=pcm16_format(pcm_rate))
    return None  # not audio: count bytes only


# --- one request and its response ----------------------------------------------------------------


class _Exchange:
    """One request's response as it arrives: fills the record, then calls ``on_done`` once.

    Called from the connection's ``data_received``, so every arrival is timed when the event loop
    reads it, not when a coroutine gets round to it. No task, future or timer per request: at
    thousands of requests a second those cost more CPU (and garbage collection) than the request.
    """

    __slots__ = (
        "conn",
        "connecting",
        "ctype",
        "deadline",
        "decoder",
        "on_done",
        "pcm_rate",
        "rec",
        "samples",
        "start",
        "timeout_s",
        "timeouts",
        "track",
    )

    def __init__(
        self,
        rec: RequestRecord,
        target: Target,
        start: float,
        on_done: Callable[[], None],
        timeouts: dict[_Exchange, None],
        deadline: float,
    ) -> None:
        self.rec = rec
        self.start = start
        self.on_done: Callable[[], None] | None = on_done
        self.pcm_rate = target.pcm_sample_rate
        self.track = target.track_chunks
        self.timeout_s = target.timeout_s
        self.decoder: Any = None
        self.samples = 0
        self.ctype = ""
        self.conn: _Connection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.timeouts = timeouts  # the session's watch list, in deadline order
        self.deadline = deadline
        timeouts[self] = None

    def head(self, status: int, content_type: str) -> None:
        self.rec.status = status
        self.ctype = content_type

    def body(self, data: bytes) -> None:
        """A piece of the (de-chunked) body; raises EngineFailed when it is not valid audio."""
        rec = self.rec
        t = time.monotonic() - self.start
        if rec.first_byte < 0:
            rec.first_byte = t
            self.decoder = _decoder(self.ctype, data, self.pcm_rate)
        rec.bytes += len(data)
        decoder = self.decoder
        if decoder is not None and rec.status < 400:
            got = len(decoder.feed(data))
            if got:
                self.samples += got
                if rec.first_audio < 0:
                    rec.first_audio = t
                if self.track:
                    rec.arrivals.append((t, self.samples / decoder.sample_rate))

    def complete(self) -> None:
        """The body ended where its framing said it would."""
        if self.on_done is None:
            return
        rec = self.rec
        rec.done = time.monotonic() - self.start
        decoder = self.decoder
        if decoder is not None and decoder.sample_rate:
            rec.audio_seconds = self.samples / decoder.sample_rate
        if rec.status >= 400:
            rec.error = f"http_{rec.status}"
        elif decoder is not None and self.samples == 0:
            rec.error, rec.detail = "bad_audio", "no audio samples in the body"
        self._end()

    def fail(self, exc: BaseException) -> None:
        """The request failed: every failure is a record, never a crash of the generator."""
        if self.on_done is None:
            return
        rec = self.rec
        rec.done = time.monotonic() - self.start
        rec.error = "bad_audio" if isinstance(exc, EngineFailed) else _error_kind(exc)
        rec.detail = f"{type(exc).__name__}: {exc}"[:200]
        self._end()

    def expire(self) -> None:
        """The timeout passed: give up on the connection (or the connecting) and fail."""
        if self.conn is not None:
            self.conn.abandon(self)  # a half-read response: its connection cannot carry another
        if self.connecting is not None:
            self.connecting.cancel()
        self.fail(TimeoutError(f"no complete response within {self.timeout_s:g} s"))

    def _end(self) -> None:
        on_done, self.on_done = self.on_done, None
        self.timeouts.pop(self, None)
        self.decoder = self.conn = self.connecting = None
        if on_done is not None:
            on_done()


# Parser states of a connection.
_IDLE, _HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE = range(8)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, carrying one exchange at a time."""

    __slots__ = (
        "buf",
        "closed",
        "exchange",
        "idle_since",
        "open",
        "pool",
        "remaining",
        "reusable",
        "state",
        "transport",
    )

    def __init__(self, pool: list[_Connection], open_: set[_Connection]) -> None:
        self.pool = pool  # the idle list this connection returns to
        self.open = open_  # the session's open connections, closed when the level ends
        self.transport: asyncio.Transport | None = None
        self.exchange: _Exchange | None = None
        self.buf = bytearray()
        self.state = _IDLE
        self.remaining = 0
        self.reusable = True
        self.closed = False
        self.idle_since = 0.0

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport; they behave as one
        self.transport = cast(asyncio.Transport, transport)
        self.open.add(self)

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:  # bytes nobody asked for: the connection cannot be trusted
            self._close()
            return
        try:
            self._feed(data)
        except Exception as exc:  # bad framing, or audio the decoder refuses
            self._fail(exc)

    def eof_received(self) -> bool | None:
        if self.exchange is not None and self.state == _UNTIL_CLOSE:
            self.reusable = False
            self._finish()
        elif self.exchange is not None:
            self._fail(ServerDisconnected("the server closed the connection mid-response"))
        self._close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.exchange is not None:
            if self.state == _UNTIL_CLOSE and exc is None:
                self.reusable = False
                self._finish()
            else:
                reason = f": {exc}" if exc else ""
                self._fail(ServerDisconnected(f"the server closed the connection{reason}"))
        # Not taken out of the idle pool here (a search of a long list): idle() skips it.
        self.open.discard(self)

    # the exchange

    def begin(self, exchange: _Exchange, request: bytes) -> None:
        """Send ``request`` and read its response into ``exchange``."""
        assert self.transport is not None
        self.exchange = exchange
        exchange.conn = self
        self.state = _HEAD
        self.reusable = True
        self.transport.write(request)

    def abandon(self, exchange: _Exchange) -> None:
        """The caller gave up on ``exchange`` (timeout): close the connection if it still carries
        it (a connection that finished it may already carry another)."""
        if self.exchange is exchange:
            self.exchange = None
            self._close()

    def _finish(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        self.exchange = None
        self.state = _IDLE
        if self.reusable and not self.closed and not self.buf:
            self.idle_since = time.monotonic()
            self.pool.append(self)  # back in the pool before the caller resumes
        else:
            self._close()
        exchange.complete()

    def _fail(self, exc: BaseException) -> None:
        exchange = self.exchange
        self.exchange = None
        self._close()
        if exchange is not None:
            exchange.fail(exc)

    def _close(self) -> None:
        self.closed = True
        self.state = _IDLE
        self.buf.clear()
        if self.transport is not None:
            self.transport.close()

    # parsing

    def _feed(self, data: bytes) -> None:
        while self.state == _HEAD:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD_BYTES:
                    raise BadResponse(f"response head longer than {_MAX_HEAD_BYTES} bytes")
                return
            head = bytes(self.buf[:end])
            data = bytes(self.buf[end + 4 :])
            self.buf.clear()
            self._head(head)  # sets the body state; 1xx answers leave it at _HEAD
            if self.state == _HEAD and not data:
                return
        state = self.state
        if state == _LENGTH:
            body = data[: self.remaining]
            self.remaining -= len(body)
            if len(body) < len(data):
                self.reusable = False  # more bytes than the length: do not trust what follows
            if body:
                self._deliver(body)
            if self.remaining == 0 and self.exchange is not None:
                self._finish()
        elif state == _UNTIL_CLOSE:
            if data:
                self._deliver(data)
        elif state != _IDLE:
            body = self._dechunk(data)
            if body:
                self._deliver(body)
            if self.state == _IDLE and self.exchange is not None:
                self._finish()

    def _deliver(self, body: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.body(body)

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:
            return  # interim answer (100 Continue, 103 Early Hints): the real one follows
        length: int | None = None
        chunked = False
        keep_alive = parts[0] != b"HTTP/1.0"
        content_type = ""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadResponse(f"malformed header line {line[:80]!r}")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    n = int(value.strip())
                except ValueError:
                    raise BadResponse(f"Content-Length {value.strip()[:40]!r}") from None
                if n < 0 or (length is not None and n != length):
                    raise BadResponse(f"Content-Length {value.strip()[:40]!r}")
                length = n
            elif name == b"transfer-encoding":
                chunked = value.strip().lower().endswith(b"chunked")
            elif name == b"connection":
                tokens = {t.strip() for t in value.lower().split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
            elif name == b"content-type":
                content_type = value.strip().decode("latin-1")
        self.reusable = keep_alive
        exchange = self.exchange
        assert exchange is not None
        exchange.head(status, content_type)
        if status in (204, 304) or (not chunked and length == 0):
            self.state, self.remaining = _LENGTH, 0  # no body: _feed finishes the exchange
        elif chunked:
            self.state = _CHUNK_SIZE
        elif length is not None:
            self.state, self.remaining = _LENGTH, length
        else:
            self.state = _UNTIL_CLOSE  # no framing: the body is everything until the server closes
            self.reusable = False

    def _dechunk(self, data: bytes) -> bytes:
        """The payload bytes in ``data`` (with any partial line kept from before); advances state."""
        if not self.buf and self.state == _CHUNK_SIZE:
            # The usual case, a streaming server's write arriving whole: ``size CRLF payload
            # CRLF`` and nothing else. Sliced out directly, without the copies below.
            eol = data.find(b"\r\n", 0, _MAX_CHUNK_LINE)
            if eol > 0:
                try:
                    n = int(data[:eol].split(b";", 1)[0], 16)
                except ValueError:
                    n = 0  # the general path below says what is wrong
                end = eol + 2 + n
                if n > 0 and len(data) == end + 2 and data[end:] == b"\r\n":
                    return data[eol + 2 : end]
        buf = self.buf
        buf += data
        out: list[bytes] = []
        pos = 0
        size = len(buf)
        while pos < size:
            state = self.state
            if state == _CHUNK_DATA:
                take = min(size - pos, self.remaining)
                out.append(bytes(buf[pos : pos + take]))
                pos += take
                self.remaining -= take
                if self.remaining == 0:
                    self.state = _CHUNK_END
            elif state in (_CHUNK_SIZE, _TRAILER):
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if size - pos > _MAX_CHUNK_LINE:
                        raise BadChunking("chunk-size line too long")
                    break
                line = bytes(buf[pos:eol])
                pos = eol + 2
                if state == _TRAILER:
                    if not line:
                        self.state = _IDLE  # the body is complete
                        break
                    continue  # a trailer field: nothing here needs it
                try:
                    n = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadChunking(f"bad chunk size {line[:40]!r}") from None
                if n == 0:
                    self.state = _TRAILER
                else:
                    self.state, self.remaining = _CHUNK_DATA, n
            elif state == _CHUNK_END:
                if size - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise BadChunking("chunk not followed by CRLF")
                pos += 2
                self.state = _CHUNK_SIZE
            else:
                break
        del buf[:pos]
        if self.state == _IDLE and buf:
            self.reusable = False  # bytes after the last chunk: do not trust the connection
            buf.clear()
        return b"".join(out) if len(out) != 1 else out[0]


# --- the session: targets prepared once, a pool of connections ------------------------------------


class _Prepared:
    """A target's connection details and its requests encoded once."""

    def __init__(self, target: Target) -> None:
        from voxbench import __version__

        parts = urlsplit(target.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {target.url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.key = (parts.scheme, self.host, self.port)
        self.target = target
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "host": ("Host", parts.netloc.rpartition("@")[2]),
            "user-agent": ("User-Agent", f"voxbench/{__version__}"),
            "accept": ("Accept", "*/*"),
            "content-type": ("Content-Type", "application/json"),
        }
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(userinfo.encode()).decode()
            headers["authorization"] = ("Authorization", f"Basic {token}")
        for name, value in target.headers.items():
            if any(c in f"{name}{value}" for c in "\r\n"):
                raise ValueError(f"header {name!r} holds a line break")
            headers[name.lower()] = (name, value)
        headers.pop("content-length", None)  # set per body below
        lines = "".join(f"{n}: {v}\r\n" for n, v in headers.values())
        self.head = f"POST {path} HTTP/1.1\r\n{lines}".encode("latin-1")
        self.requests = [self.request(body) for body in target.bodies]

    def request(self, body: dict[str, Any]) -> bytes:
        """The whole request on the wire for ``body``."""
        payload = json.dumps(body).encode()
        return self.head + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload


class _Session:
    """Keep-alive connections for the targets of one level, opened as they are needed."""

    def __init__(self) -> None:
        self.pools: dict[tuple[str, str, int], list[_Connection]] = {}
        self.prepared: dict[int, _Prepared] = {}
        self.connections: set[_Connection] = set()  # open ones only: churn must not pile up
        self.addresses: dict[tuple[str, int], list[tuple[int, str]]] = {}
        # Exchanges in flight, one watch list per timeout: each list is in launch order, which is
        # deadline order, so one timer for its head does for all (see _sweep).
        self.timeouts: dict[float, dict[_Exchange, None]] = {}
        self._sweeping: asyncio.TimerHandle | None = None
        self._tls: Any = None

    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
        for conn in list(self.connections):
            conn._close()
        await asyncio.sleep(0)  # let the transports run their connection_lost

    def prepare(self, target: Target) -> _Prepared:
        prep = self.prepared.get(id(target))
        if prep is None or prep.target is not target:
            prep = self.prepared[id(target)] = _Prepared(target)
        return prep

    def launch(
        self,
        prep: _Prepared,
        rec: RequestRecord,
        request: bytes,
        start: float,
        on_done: Callable[[], None],
    ) -> None:
        """Send one encoded request now; fill ``rec`` as the answer arrives, then call
        ``on_done``. Never raises: a failure is recorded in ``rec``."""
        loop = asyncio.get_running_loop()
        rec.sent = time.monotonic() - start
        timeout_s = prep.target.timeout_s
        watch = self.timeouts.get(timeout_s)
        if watch is None:
            watch = self.timeouts[timeout_s] = {}
        deadline = loop.time() + timeout_s
        exchange = _Exchange(rec, prep.target, start, on_done, watch, deadline)
        if self._sweeping is None or deadline < self._sweeping.when():  # (a shorter timeout)
            if self._sweeping is not None:
                self._sweeping.cancel()
            self._sweeping = loop.call_at(deadline, self._sweep)
        try:
            conn = self.idle(prep)
            if conn is None:  # only a new connection costs a task
                exchange.connecting = loop.create_task(
                    self._connect_and_send(prep, exchange, request)
                )
            else:
                conn.begin(exchange, request)
        except Exception as exc:
            exchange.fail(exc)

    async def _connect_and_send(self, prep: _Prepared, exchange: _Exchange, request: bytes) -> None:
        try:
            conn = await self.connect(prep)
        except Exception as exc:
            exchange.fail(exc)
            return
        exchange.connecting = None
        if exchange.on_done is None:  # timed out while connecting: the connection is still good
            conn.idle_since = time.monotonic()
            conn.pool.append(conn)
            return
        try:
            conn.begin(exchange, request)
        except Exception as exc:
            exchange.fail(exc)

    def _sweep(self) -> None:
        """Expire every exchange past its deadline; set the timer for the next deadline."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        following = None
        for watch in self.timeouts.values():
            while watch:
                exchange = next(iter(watch))
                if exchange.deadline > now:
                    if following is None or exchange.deadline < following:
                        following = exchange.deadline
                    break
                exchange.expire()  # removes it from ``watch``
        self._sweeping = None if following is None else loop.call_at(following, self._sweep)

    def idle(self, prep: _Prepared) -> _Connection | None:
        """A kept-alive connection to the target's server, most recently used first."""
        pool = self.pools.get(prep.key)
        if not pool:
            return None
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if not conn.closed and now - conn.idle_since <= _KEEPALIVE_S:
                return conn
            conn._close()
        return None

    async def connect(self, prep: _Prepared) -> _Connection:
        loop = asyncio.get_running_loop()
        pool = self.pools.setdefault(prep.key, [])
        tls: Any = None
        if prep.tls:
            if self._tls is None:
                import ssl

                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            addresses = await self._resolve(prep.host, prep.port)
        except OSError as exc:
            raise ConnectFailed(f"cannot resolve {prep.host}: {exc}") from exc
        errors = []
        for family, address in addresses:  # in the resolver's order, as a browser would
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(pool, self.connections),
                    address,
                    prep.port,
                    family=family,
                    ssl=tls,
                    server_hostname=prep.host if tls else None,
                )
            except OSError as exc:  # refused, unreachable, TLS handshake
                errors.append(exc)
                continue
            return conn
        raise ConnectFailed(f"cannot connect to {prep.host}:{prep.port}: {errors[-1]}")

    async def _resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        """The host's addresses, looked up once per level: a burst of new connections must not
        queue behind as many name look-ups."""
        cached = self.addresses.get((host, port))
        if cached is None:
            import socket

            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            cached = list(dict.fromkeys((info[0], str(info[4][0])) for info in infos))
            if not cached:
                raise OSError(f"no address for {host}")
            self.addresses[(host, port)] = cached
        return cached


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _exchange(
    session: _Session,
    prep: _Prepared,
    rec: RequestRecord,
    request: bytes,
    start: float,
) -> None:
    """Send one encoded request now and fill ``rec``; returns when it is done; never raises."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    session.launch(prep, rec, request, start, partial(_resolve, future))
    await future


async def send_one(
    session: Any, target: Target, rec: RequestRecord, body: dict[str, Any], start: float
) -> None:
    """Send one request now and fill ``rec``; never raises."""
    try:
        prep = session.prepare(target)
        request = prep.request(body)
    except Exception as exc:  # a URL or header this client cannot send: recorded, not raised
        rec.sent = rec.done = time.monotonic() - start
        rec.error, rec.detail = "other", f"{type(exc).__name__}: {exc}"[:200]
        return
    await _exchange(session, prep, rec, request, start)


def _session(target: Target, connections: int) -> _Session:
    return _Session()


async def run_open(
    target: Target, offsets: list[float], lead_s: float = 0.05
) -> list[RequestRecord]:
    """Open loop: each request starts at its offset, whatever the ones before it are doing."""
    loop = asyncio.get_running_loop()
    records = [RequestRecord(due=o) for o in offsets]
    done = asyncio.Event()
    pending = len(records)

    async with _session(target, len(records)) as session:
        prep = session.prepare(target)
        requests = prep.requests
        start = time.monotonic() + lead_s

        def finished() -> None:
            nonlocal pending
            pending -= 1
            if pending == 0:
                done.set()

        def launch(i: int) -> None:
            # Sent right here, in the timer's callback, when a kept-alive connection is free.
            session.launch(prep, records[i], requests[i % len(requests)], start, finished)

        # One timer at a time, each firing request i and any later ones already due, then
        # setting itself for the next: the same sends as one timer per request, without first
        # spending O(n) time (longer than lead_s at high rates) filling the timer heap.
        following = 0

        def fire() -> None:
            nonlocal following
            i = following
            launch(i)
            i += 1
            now = loop.time()
            while i < len(offsets) and start + offsets[i] <= now:
                launch(i)
                i += 1
            following = i
            if i < len(offsets):
                loop.call_at(start + offsets[i], fire)  # loop.time() is time.monotonic()

        if records:
            loop.call_at(start + offsets[0], fire)
            await done.wait()
    return records


async def run_closed(
    target: Target, concurrency: int, *, duration_s: float | None, requests: int | None
) -> list[RequestRecord]:
    """Closed loop: ``concurrency`` clients, each sending its next request when the last ends.

    Latency then counts from the actual send: a closed loop cannot see the queueing an open
    loop would (coordinated omission); it is here for comparison with other tools.
    """
    records: list[RequestRecord] = []
    async with _session(target, concurrency) as session:
        prep = session.prepare(target)
        wire = prep.requests
        start = time.monotonic()

        async def client() -> None:
            while True:
                now = time.monotonic() - start
                if requests is not None and len(records) >= requests:
                    return
                if requests is None and duration_s is not None and now >= duration_s:
                    return
                rec = RequestRecord(due=now)
                records.append(rec)
                await _exchange(session, prep, rec, wire[len(records) % len(wire)], start)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return records


def run_level(
    target: Target,
    level: Level,
    offsets: list[float] | None,
    *,
    duration_s: float | None,
    requests: int | None,
) -> tuple[list[RequestRecord], float]:
    """Run one level in a fresh event loop (uvloop when installed); returns records and wall s."""
    runner: Callable[..., Any]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    # A full collection walks every object the process holds (numpy and all imported modules:
    # 20-30 ms here), and while it runs no request is sent and no chunk is timed. Objects that
    # exist before the level are frozen out of collections for its duration; those it creates
    # are still collected as usual.
    gc.collect()
    gc.freeze()
    t0 = time.monotonic()
    try:
        if level.kind == "rate":
            assert offsets is not None
            records = runner(run_open(target, offsets))
        else:
            records = runner(
                run_closed(target, int(level.value), duration_s=duration_s, requests=requests)
            )
    finally:
        gc.unfreeze()
    return records, time.monotonic() - t0
