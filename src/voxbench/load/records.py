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
    error: str | None = None  # kind: http_503, timeout, reset, connect, bad_audio, other
    detail: str = ""
    bytes: int = 0
    audio_seconds: float = 0.0
    sample_rate: int = 0  # Hz the audio was decoded at; 0 when no audio decoder was used
    # where sample_rate came from: "wav" (its header), or for raw PCM "header" (X-Sample-Rate),
    # "option" (Target.pcm_sample_rate) or "default" (DEFAULT_PCM_RATE); "" when not audio
    rate_source: str = ""
    # (arrival time, audio seconds received so far), streamed responses only
    arrivals: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """The endpoint and what to send it: JSON ``bodies`` in turn, ``timeout_s`` seconds per
    request; ``pcm_sample_rate`` Hz for ``audio/pcm`` answers that announce no ``X-Sample-Rate``
    (None: :data:`DEFAULT_PCM_RATE`); ``track_chunks`` keeps every arrival time of a streamed body
    (needed for stall metrics)."""

    url: str
    bodies: tuple[dict[str, Any], ...]  # request JSON bodies, used in turn
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0
    pcm_sample_rate: int | None = None
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


def error_kind(exc: BaseException) -> str:
    """The :attr:`RequestRecord.error` kind of a transport failure: ``timeout``, ``connect``,
    ``reset`` (the connection broke or its framing did) or ``other``."""
    # TimeoutError is an OSError: it is tested first.
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectFailed):
        return "connect"
    if isinstance(exc, ServerDisconnected | BadChunking | ConnectionError | OSError):
        return "reset"
    return "other"
