"""What the load generator sends and what it records: targets, request records, failure kinds.

All times are ``time.monotonic()`` seconds from the level's start (the clock asyncio's timers use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNSET = -1.0
DEFAULT_PCM_RATE = 24000
"""Hz assumed for a raw ``audio/pcm`` answer when neither the server (``X-Sample-Rate``) nor the
user (``--pcm-sample-rate``) says otherwise: OpenAI's ``pcm`` format."""


@dataclass(slots=True)
class RequestRecord:
    """What one request did. Times in seconds from the level start; -1 when it never happened."""

    due: float
    sent: float = UNSET
    first_byte: float = UNSET
    first_audio: float = UNSET
    done: float = UNSET
    status: int = 0
    # kind: http_503, timeout, reset, connect, bad_audio, bad_stream, bad_answer, other
    error: str | None = None
    detail: str = ""
    bytes: int = 0
    audio_seconds: float = 0.0
    sample_rate: int = 0  # Hz the audio was decoded at; 0 when no audio decoder was used
    # where sample_rate came from: "wav" (its header), or for raw PCM "header" (X-Sample-Rate),
    # "option" (Target.pcm_sample_rate) or "default" (DEFAULT_PCM_RATE); "" when not audio
    rate_source: str = ""
    # (arrival time, audio seconds received so far), streamed responses only
    arrivals: list[tuple[float, float]] = field(default_factory=list)
    # chat targets only: the first and the last non-empty content delta, the deltas counted,
    # the server's usage.completion_tokens (-1: not sent), whether ``data: [DONE]`` came, and
    # the time of every content delta (for inter-token latency; when Target.track_chunks)
    first_token: float = UNSET
    last_token: float = UNSET
    deltas: int = 0
    usage_tokens: int = -1
    done_marker: bool = False
    token_times: list[float] = field(default_factory=list)
    # which of the target's bodies was sent (its index; -1: not known), and for transcription
    # targets the transcript the answer held (None: no transcript read)
    item: int = -1
    text: str | None = None

    @property
    def tokens(self) -> int:
        """Output tokens: the server's usage count when it sent one, else the deltas counted."""
        return self.usage_tokens if self.usage_tokens >= 0 else self.deltas


@dataclass(frozen=True)
class Form:
    """A body already encoded (``multipart/form-data`` for a transcription target): its
    ``Content-Type`` and its bytes (:mod:`voxbench.load.transcriptions`)."""

    content_type: str
    payload: bytes


@dataclass(frozen=True)
class Target:
    """The endpoint and what to send it: ``bodies`` in turn (JSON objects, or encoded
    :class:`Form` uploads), ``timeout_s`` seconds per request; ``pcm_sample_rate`` Hz for
    ``audio/pcm`` answers that announce no ``X-Sample-Rate`` (None: :data:`DEFAULT_PCM_RATE`);
    ``track_chunks`` keeps every arrival time of a streamed body (needed for stall metrics, and
    for inter-token latency of ``chat`` targets)."""

    url: str
    bodies: tuple[dict[str, Any] | Form, ...]  # request bodies, used in turn
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    pcm_sample_rate: int | None = None
    track_chunks: bool = True
    chat: bool = False  # an OpenAI chat endpoint: the answer is SSE text (voxbench.load.sse)
    # an OpenAI transcription endpoint: the answer is {"text": ...} (voxbench.load.transcriptions)
    transcription: bool = False


# --- errors --------------------------------------------------------------------------------------


class ConnectFailed(OSError):
    """The TCP (or TLS) connection to the server could not be made."""


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the response was complete."""


class BadResponse(ValueError):
    """The server's answer is not HTTP/1.x this client can read."""


class BadChunking(ValueError):
    """A chunked body whose framing is broken."""


class BadStream(ValueError):
    """A chat answer that is not the OpenAI server-sent events (or JSON) it should be, or one
    that reports an error mid-stream."""


class BadAnswer(ValueError):
    """A transcription answer that is not the ``{"text": ...}`` it should be."""


def error_kind(exc: BaseException) -> str:
    """The :attr:`RequestRecord.error` kind of a transport failure: ``timeout``, ``connect``,
    ``reset`` (the connection broke or its framing did), ``bad_stream`` (a chat answer that is
    not OpenAI's events), ``bad_answer`` (a transcription answer that is not a transcript) or
    ``other``."""
    # TimeoutError is an OSError: it is tested first.
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, BadStream):
        return "bad_stream"
    if isinstance(exc, BadAnswer):
        return "bad_answer"
    if isinstance(exc, ConnectFailed):
        return "connect"
    if isinstance(exc, ServerDisconnected | BadChunking | ConnectionError | OSError):
        return "reset"
    return "other"
