"""The HTTP/1.1 side of the load client: one connection's response parser, and the exchange
that turns one response into a :class:`~voxbench.load.records.RequestRecord` as it arrives.

Responses are read as they arrive — Content-Length, chunked or until close — and every piece of
the body is timed and fed to the audio decoder (:mod:`voxbench.wav`) when the event loop reads
it (a transcription answer is collected and read when it ends). 1xx interim answers are skipped;
nothing else of HTTP beyond what a speech endpoint's answer needs is implemented.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

from voxbench.errors import EngineFailed
from voxbench.load.records import (
    DEFAULT_PCM_RATE,
    BadAnswer,
    BadChunking,
    BadResponse,
    BadStream,
    RequestRecord,
    ServerDisconnected,
    Target,
    error_kind,
)
from voxbench.load.sse import ChatReader
from voxbench.load.transcriptions import TranscriptReader
from voxbench.wav import RawDecoder, WavDecoder

_MAX_HEAD_BYTES = 64 * 1024  # a response head longer than this is not HTTP we can use
_MAX_CHUNK_LINE = 4096  # the same for one chunk-size line or trailer field


def audio_decoder(content_type: str, first: bytes, pcm_rate: int) -> WavDecoder | None:
    """The decoder for a body of ``content_type`` starting with ``first``; None: not audio.

    A body that starts with ``RIFF`` is WAV whatever its type says; ``audio/pcm`` and
    ``audio/l16`` are 16-bit mono at ``pcm_rate`` Hz.
    """
    if is_wav(content_type, first):
        return WavDecoder()
    if content_type.startswith(("audio/pcm", "audio/l16")):
        return RawDecoder(pcm_rate)
    return None  # not audio: count bytes only


def is_wav(content_type: str, first: bytes) -> bool:
    """Whether a body is WAV (it carries its own sample rate)."""
    return first[:4] == b"RIFF" or content_type.startswith(("audio/wav", "audio/x-wav"))


def resolve_pcm_rate(announced: str, option: int | None) -> tuple[int, str]:
    """(Hz, source) of a raw PCM answer: the server's ``X-Sample-Rate`` when it sends a usable
    one (``header``), else the user's ``pcm_sample_rate`` (``option``), else
    :data:`~voxbench.load.records.DEFAULT_PCM_RATE` (``default``)."""
    if announced.strip().isdigit() and int(announced) > 0:
        return int(announced), "header"
    if option is not None:
        return option, "option"
    return DEFAULT_PCM_RATE, "default"


# --- one request and its response ----------------------------------------------------------------


class Exchange:
    """One request's response as it arrives: fills the record, then calls ``on_done`` once.

    Called from the connection's ``data_received``, so every arrival is timed when the event loop
    reads it, not when a coroutine gets round to it. No task, future or timer per request: at
    thousands of requests a second those cost more CPU (and garbage collection) than the request.
    """

    __slots__ = (
        "chat",
        "conn",
        "connecting",
        "ctype",
        "deadline",
        "decoder",
        "is_chat",
        "is_stt",
        "on_done",
        "pcm_rate",
        "rate_header",
        "rec",
        "samples",
        "start",
        "timeout_s",
        "timeouts",
        "track",
        "transcript",
    )

    def __init__(
        self,
        rec: RequestRecord,
        target: Target,
        start: float,
        on_done: Callable[[], None],
        timeouts: dict[Exchange, None],
        deadline: float,
    ) -> None:
        self.rec = rec
        self.start = start
        self.on_done: Callable[[], None] | None = on_done
        self.pcm_rate = target.pcm_sample_rate
        self.track = target.track_chunks
        self.timeout_s = target.timeout_s
        self.decoder: WavDecoder | None = None
        self.is_chat = target.chat
        self.chat: ChatReader | None = None
        self.is_stt = target.transcription
        self.transcript: TranscriptReader | None = None
        self.samples = 0
        self.ctype = ""
        self.rate_header = ""
        self.conn: Connection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.timeouts = timeouts  # the session's watch list, in deadline order
        self.deadline = deadline
        timeouts[self] = None

    def head(self, status: int, content_type: str, sample_rate: str = "") -> None:
        """The response head: status, Content-Type and X-Sample-Rate (``""`` when absent)."""
        self.rec.status = status
        self.ctype = content_type
        self.rate_header = sample_rate
        if self.is_chat and status < 400:
            self.chat = ChatReader(self.rec, track=self.track, content_type=content_type)
        elif self.is_stt and status < 400:
            self.transcript = TranscriptReader(content_type)

    def body(self, data: bytes) -> None:
        """A piece of the (de-chunked) body; raises EngineFailed when it is not valid audio,
        BadStream when a chat answer is not OpenAI's events, or BadAnswer when a transcription
        answer is too long to be one."""
        rec = self.rec
        t = time.monotonic() - self.start
        chat = self.chat
        if chat is not None:
            if rec.first_byte < 0:
                rec.first_byte = t
            rec.bytes += len(data)
            chat.feed(data, t)
            return
        transcript = self.transcript
        if transcript is not None:
            if rec.first_byte < 0:
                rec.first_byte = t
            rec.bytes += len(data)
            transcript.feed(data)
            return
        if self.is_chat or self.is_stt:  # an error answer of a text target: counted, not decoded
            if rec.first_byte < 0:
                rec.first_byte = t
            rec.bytes += len(data)
            return
        if rec.first_byte < 0:
            rec.first_byte = t
            if is_wav(self.ctype, data):
                rate, rec.rate_source = DEFAULT_PCM_RATE, "wav"
            else:
                rate, rec.rate_source = resolve_pcm_rate(self.rate_header, self.pcm_rate)
            self.decoder = audio_decoder(self.ctype, data, rate)
            if self.decoder is None:
                rec.rate_source = ""
        rec.bytes += len(data)
        decoder = self.decoder
        if decoder is not None and rec.status < 400:
            got = len(decoder.feed(data))
            if got:
                self.samples += got
                if rec.first_audio < 0:
                    rec.first_audio = t
                if self.track:  # (the rate is known once samples come out)
                    rec.arrivals.append((t, self.samples / (decoder.sample_rate or 1)))

    def complete(self) -> None:
        """The body ended where its framing said it would."""
        if self.on_done is None:
            return
        rec = self.rec
        rec.done = time.monotonic() - self.start
        if self.is_chat:
            self._complete_chat(rec)
            return
        if self.is_stt:
            self._complete_transcript(rec)
            return
        decoder = self.decoder
        if decoder is not None and decoder.sample_rate:
            rec.audio_seconds = self.samples / decoder.sample_rate
            rec.sample_rate = decoder.sample_rate
        if rec.status >= 400:
            rec.error = f"http_{rec.status}"
        elif decoder is not None and self.samples == 0:
            rec.error, rec.detail = "bad_audio", "no audio samples in the body"
        self._end()

    def _complete_chat(self, rec: RequestRecord) -> None:
        chat = self.chat
        if rec.status >= 400:
            rec.error = f"http_{rec.status}"
        elif chat is not None:
            try:
                chat.finish(rec.done)
            except BadStream as exc:
                rec.error, rec.detail = "bad_stream", f"BadStream: {exc}"[:200]
            if rec.error is None and rec.deltas == 0:
                rec.error, rec.detail = "bad_stream", "no content in the answer"
        self._end()

    def _complete_transcript(self, rec: RequestRecord) -> None:
        transcript = self.transcript
        if rec.status >= 400:
            rec.error = f"http_{rec.status}"
        elif transcript is not None:  # (head() made one for every answer under 400)
            try:
                rec.text = transcript.finish()
            except BadAnswer as exc:
                rec.error, rec.detail = "bad_answer", f"BadAnswer: {exc}"[:200]
        self._end()

    def fail(self, exc: BaseException) -> None:
        """The request failed: every failure is a record, never a crash of the generator."""
        if self.on_done is None:
            return
        rec = self.rec
        rec.done = time.monotonic() - self.start
        rec.error = "bad_audio" if isinstance(exc, EngineFailed) else error_kind(exc)
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
        self.decoder = self.conn = self.connecting = self.chat = self.transcript = None
        if on_done is not None:
            on_done()


# Parser states of a connection.
_IDLE, _HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_CLOSE = range(8)


class Connection(asyncio.Protocol):
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

    def __init__(self, pool: list[Connection], open_: set[Connection]) -> None:
        self.pool = pool  # the idle list this connection returns to
        self.open = open_  # the session's open connections, closed when the level ends
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
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
            self.close()
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
        self.close()
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

    def begin(self, exchange: Exchange, request: bytes) -> None:
        """Send ``request`` and read its response into ``exchange``."""
        assert self.transport is not None
        self.exchange = exchange
        exchange.conn = self
        self.state = _HEAD
        self.reusable = True
        self.transport.write(request)

    def abandon(self, exchange: Exchange) -> None:
        """The caller gave up on ``exchange`` (timeout): close the connection if it still carries
        it (a connection that finished it may already carry another)."""
        if self.exchange is exchange:
            self.exchange = None
            self.close()

    def _finish(self) -> None:
        exchange = self.exchange
        assert exchange is not None
        self.exchange = None
        self.state = _IDLE
        if self.reusable and not self.closed and not self.buf:
            self.idle_since = time.monotonic()
            self.pool.append(self)  # back in the pool before the caller resumes
        else:
            self.close()
        exchange.complete()

    def _fail(self, exc: BaseException) -> None:
        exchange = self.exchange
        self.exchange = None
        self.close()
        if exchange is not None:
            exchange.fail(exc)

    def close(self) -> None:
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
        content_type = sample_rate = ""
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
            elif name == b"x-sample-rate":
                sample_rate = value.strip().decode("latin-1")
        self.reusable = keep_alive
        exchange = self.exchange
        assert exchange is not None
        exchange.head(status, content_type, sample_rate)
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
