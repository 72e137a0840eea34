"""What ``voxbench serve`` takes and what it refuses, before an engine sees a request.

Every refusal is a 4xx answer in OpenAI's error shape, ``{"error": {"message", "type"}}``, never a
5xx: a 5xx means the server or the engine failed, not that the client sent something odd.

- **Body size**: at most :attr:`Limits.max_json_bytes` for a speech request (JSON; 1 MiB unless
  set) and :attr:`Limits.max_upload_bytes` for a transcription upload (50 MiB), counted as the
  body arrives (a ``Content-Length`` over the limit is refused before any of it is read): 413.
- **Text length**: a speech ``input`` of at most :attr:`Limits.max_text_chars` characters (5,000,
  OpenAI's own limit is 4,096): 400.
- **Shape**: ``Content-Type`` ``application/json`` (or none), a JSON object, only OpenAI's speech
  fields, each of its type; ``input`` a non-empty string of valid Unicode without NUL: 400 or 415.
- **Routes**: an unknown path is 404 and a wrong method 405, in the same JSON shape.
- **Slow clients**: see :mod:`voxbench.load.serve_protocol` (the request head within
  :attr:`Limits.header_timeout_s`, the body within :attr:`Limits.body_timeout_s`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from voxbench.errors import ConfigError

MIB = 2**20
DEFAULT_MAX_JSON_BYTES = 1 * MIB
DEFAULT_MAX_UPLOAD_BYTES = 50 * MIB
DEFAULT_MAX_TEXT_CHARS = 5000
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0
DEFAULT_KEEP_ALIVE_S = 5.0
# uvicorn's h11 limit on a request head still incomplete (its default, said here once).
MAX_HEAD_BYTES = 16 * 1024

MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm"}
# The fields of OpenAI's POST /v1/audio/speech; any other is refused, as OpenAI does.
SPEECH_FIELDS = (
    "model",
    "input",
    "voice",
    "instructions",
    "response_format",
    "speed",
    "stream",
    "stream_format",
)
INVALID = "invalid_request_error"


@dataclass(frozen=True)
class Limits:
    """What one ``voxbench serve`` accepts from a client (each settable on the command line)."""

    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    keep_alive_s: float = DEFAULT_KEEP_ALIVE_S

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"serve limit {name} must be a positive number, not {value!r}")


class Refused(Exception):
    """A request answered with a 4xx error: ``status``, a one-line message and OpenAI's type."""

    def __init__(self, status: int, message: str, kind: str = INVALID) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def error_response(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An OpenAI-style ``{"error": {"message", "type"}}`` answer."""
    body = {"error": {"message": message, "type": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def refusal(exc: Refused) -> JSONResponse:
    """The answer to a refused request; a body refused for its size also closes the connection
    (the rest of it may still be on its way)."""
    headers = {"Connection": "close"} if exc.status == 413 else None
    return error_response(exc.status, str(exc), exc.kind, headers)


def _short(value: Any, room: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= room else text[: room - 1] + "…"


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 once it is larger than ``limit`` bytes (before reading
    it when ``Content-Length`` says so); a client gone midway is a 400 nobody will read."""
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) > limit:
        raise Refused(413, f"the body is {int(size)} bytes; this server takes at most {limit}")
    pieces: list[bytes] = []
    received = 0
    try:
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                raise Refused(413, f"the body is larger than the {limit} bytes this server takes")
            pieces.append(piece)
    except ClientDisconnect:
        raise Refused(400, "the client went away before sending the whole body") from None
    return b"".join(pieces)


def check_json_type(content_type: str | None) -> None:
    """``application/json`` (parameters allowed) or no ``Content-Type`` at all; else 415."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise Refused(
            415, f"Content-Type {_short(media)} is not JSON: send Content-Type: application/json"
        )


@dataclass(frozen=True)
class SpeechRequest:
    """The fields of a speech request that change the answer (model, voice, speed do not)."""

    text: str
    response_format: str
    stream: bool


def _check_text(text: Any, max_chars: int) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Refused(400, "input must be a non-empty string")
    if len(text) > max_chars:
        raise Refused(
            400, f"input is {len(text)} characters; this server takes at most {max_chars}"
        )
    if "\x00" in text:
        raise Refused(400, "input holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(400, "input is not valid Unicode (an unpaired surrogate)") from None
    return text


def _check_optional(body: dict[str, Any]) -> None:
    """The fields voxbench serve accepts and ignores must still be of OpenAI's types."""
    for name in ("model", "instructions"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise Refused(400, f"{name} must be a string")
    voice = body.get("voice")
    if voice is not None and not isinstance(voice, str | dict):
        raise Refused(400, "voice must be a string (or an object naming one)")
    speed = body.get("speed")
    if speed is not None and (
        isinstance(speed, bool)
        or not isinstance(speed, int | float)
        or not math.isfinite(speed)
        or speed <= 0
    ):
        raise Refused(400, "speed must be a positive number")
    stream_format = body.get("stream_format")
    if stream_format not in (None, "audio"):
        raise Refused(400, f"stream_format {_short(stream_format)} is not supported (use audio)")


def parse_speech(body: bytes, content_type: str | None, max_chars: int) -> SpeechRequest:
    """A speech request from its body; :class:`Refused` with the reason when it is not one."""
    check_json_type(content_type)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, or nested past Python's stack
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body must be a JSON object")
    unknown = [name for name in data if name not in SPEECH_FIELDS]
    if unknown:
        raise Refused(
            400, f"unknown field {_short(unknown[0])} (known: {', '.join(SPEECH_FIELDS)})"
        )
    text = _check_text(data.get("input"), max_chars)
    fmt = data.get("response_format") or "wav"
    if not isinstance(fmt, str) or fmt not in MEDIA_TYPES:
        raise Refused(400, f"response_format {_short(fmt)} is not supported (use wav or pcm)")
    stream = data.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise Refused(400, "stream must be true or false")
    _check_optional(data)
    return SpeechRequest(text=text, response_format=fmt, stream=stream)


async def http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (404 unknown path, 405 wrong method) in the same JSON shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    headers = getattr(exc, "headers", None)
    return error_response(status, str(detail), INVALID if status < 500 else "server_error", headers)
