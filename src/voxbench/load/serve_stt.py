"""``voxbench serve`` for speech recognisers: ``POST /v1/audio/transcriptions``, OpenAI's form.

The request is ``multipart/form-data`` with the audio in ``file`` and optional ``model``,
``language``, ``prompt``, ``temperature`` (accepted and ignored: the engine's own settings decide)
and ``response_format`` (``json``, the default: ``{"text": ...}``; or ``text``: the transcript as
plain text). The upload is written to a temporary file with its own suffix (engines take a path),
then the engine's ``synthesize(path)`` runs in an engine thread under the server's slots and queue,
exactly like a speech call (:mod:`voxbench.load.serve`). ``Server-Timing`` says ``queue`` (waiting
for a slot), ``transcribe`` (the engine call) and the engine's own stages.

:mod:`voxbench.load.serve` builds the app and picks this route when the engine takes audio and
gives text (:func:`spec_kinds`); this module imports nothing from it, so the dependency runs one
way.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from voxbench.engine import collect_stages
from voxbench.engines.registry import EngineSpec
from voxbench.errors import EngineFailed, VoxbenchError
from voxbench.load.serve_checks import DEFAULT_MAX_UPLOAD_BYTES, Refused, read_body, refusal

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
SPEECH_KINDS = ("text", "audio")
TRANSCRIPTION_KINDS = ("audio", "text")
SERVED_KINDS = (SPEECH_KINDS, TRANSCRIPTION_KINDS)
RESPONSE_FORMATS = ("json", "text")
MAX_UPLOAD_BYTES = DEFAULT_MAX_UPLOAD_BYTES  # voxbench serve --max-upload-mb sets another
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_NOT_TOKEN = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")

log = logging.getLogger("voxbench.load.serve")


def spec_kinds(spec: EngineSpec) -> tuple[str, str]:
    """``(input_kind, output_kind)`` of the engine ``spec`` builds, read from its factory.

    A reference that cannot be resolved counts as a speech engine: building it then fails with
    the usual one-line error when the server starts.
    """
    try:
        factory = spec.factory()
        kinds_for = getattr(factory, "kinds_for", None)
        if callable(kinds_for):
            kind, output = kinds_for(**spec.implicit_args())
        else:
            kind = getattr(factory, "input_kind", "text")
            output = getattr(factory, "output_kind", "audio")
    except VoxbenchError:
        return SPEECH_KINDS
    return str(spec.params.get("input_kind", kind)), str(output)


class BadForm(Refused):
    """A transcription request refused with 400."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


@dataclass(frozen=True)
class Upload:
    """The parts of a transcription request that matter: the audio, its file name, the format."""

    audio: bytes
    filename: str
    response_format: str


def _params(header: str, value: str) -> Message:
    message = Message()
    message[header] = value
    return message


def form_boundary(content_type: str) -> str:
    """The boundary of a ``multipart/form-data`` content type; :class:`BadForm` otherwise."""
    head = _params("content-type", content_type)
    boundary = head.get_param("boundary")
    if head.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise BadForm("the body must be multipart/form-data with the audio in a 'file' field")
    if not 0 < len(boundary) <= 70 or not boundary.isascii():  # RFC 2046: 1 to 70 characters
        raise BadForm("the multipart boundary must be 1 to 70 ASCII characters")
    return boundary


def parse_form(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a ``multipart/form-data`` body: name → ``(filename or None, content)``."""
    boundary = form_boundary(content_type)
    fields: dict[str, tuple[str | None, bytes]] = {}
    # Each part follows CRLF--boundary; the first delimiter may start the body (no CRLF before it).
    pieces = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    for piece in pieces[1:]:
        if piece.startswith(b"--"):  # the closing delimiter
            return fields
        _, crlf, part = piece.partition(b"\r\n")  # transport padding up to the line end
        headers, blank, content = part.partition(b"\r\n\r\n")
        if not crlf or not blank:
            raise BadForm("a multipart part has no header block")
        disposition = ""
        for line in headers.decode("utf-8", errors="replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value.strip()
        message = _params("content-disposition", disposition)
        name = message.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (_filename(message), content)
    raise BadForm("the multipart body is not closed by its final boundary")


def _filename(message: Message) -> str | None:
    """The part's file name, or None; a name that cannot be decoded counts as none."""
    try:
        name = message.get_filename()
    except (ValueError, LookupError):  # a malformed RFC 2231 name, an unknown charset
        return None
    return name if isinstance(name, str) else None


def check_audio(audio: bytes) -> None:
    """Refuse an upload that is not audio soundfile can read, or that holds no samples: the
    engine would fail on it, and that is the client's input, not a server error."""
    import io

    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(audio))
    except Exception as exc:  # LibsndfileError (a RuntimeError), or soundfile's own TypeError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadForm(f"the file is not audio this server can read ({first[:120]})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise BadForm("the audio file holds no samples")


async def read_upload(request: Request, limit: int = MAX_UPLOAD_BYTES) -> Upload:
    """Check a transcription request; raise :class:`~voxbench.load.serve_checks.Refused` (or
    :class:`BadForm`) with the reason."""
    content_type = request.headers.get("content-type", "")
    form_boundary(content_type)  # before reading a body that is not a form
    fields = parse_form(content_type, await read_body(request, limit))
    if "file" not in fields or not fields["file"][1]:
        raise BadForm("the audio file is missing: send it in the 'file' field")
    filename, audio = fields["file"]
    fmt = fields.get("response_format", (None, b"json"))[1].decode("utf-8", "replace").strip()
    if fmt not in RESPONSE_FORMATS:
        shown = fmt if len(fmt) <= 40 else fmt[:39] + "…"
        raise BadForm(f"response_format {shown!r} is not supported (use json or text)")
    check_audio(audio)
    return Upload(audio=audio, filename=filename or "audio.wav", response_format=fmt)


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def _server_timing(metrics: dict[str, float]) -> str:
    return ", ".join(
        f"{_NOT_TOKEN.sub('_', name) or 'stage'};dur={ms:.3f}" for name, ms in metrics.items()
    )


@dataclass
class Transcript:
    """One engine call: the text, its time and the engine's stages (ms)."""

    text: str
    ms: float
    stages: dict[str, float]


def transcribe(service: Any, upload: Upload) -> Transcript:
    """Write the upload to a temporary file and run the engine on it (in an engine thread)."""
    engine = service.engine
    if engine is None:
        raise EngineFailed("the engine is not loaded (server starting or stopping)")
    suffix = Path(upload.filename).suffix
    fd, name = tempfile.mkstemp(
        prefix="voxbench-stt-", suffix=suffix if _SUFFIX.match(suffix) else ".wav"
    )
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(upload.audio)
        with collect_stages() as stages:
            start = time.perf_counter_ns()
            answer = engine.synthesize(Path(name))
            ms = (time.perf_counter_ns() - start) / 1e6
    finally:
        os.unlink(name)
    for stage, stage_ms in (getattr(answer, "stages", None) or {}).items():
        stages[stage] = stages.get(stage, 0.0) + stage_ms
    text = getattr(answer, "text", None)
    if not isinstance(text, str):
        raise EngineFailed("the engine returned no text")
    return Transcript(text=text, ms=ms, stages=dict(stages))


class TranscriptionApp:
    """The ``POST /v1/audio/transcriptions`` handler around a server's one engine service."""

    def __init__(self, service: Any, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.service = service
        self.max_upload_bytes = max_upload_bytes

    async def transcriptions(self, request: Request) -> Response:
        """Transcribe the uploaded file: ``{"text": ...}`` (or plain text)."""
        try:
            upload = await read_upload(request, self.max_upload_bytes)
        except Refused as exc:
            return refusal(exc)
        slot = await self.service.gate.enter()
        if slot is None:
            return _error(503, "queue full", "overloaded", headers={"Retry-After": "1"})
        try:
            result: Transcript = await self.service.in_thread(transcribe, self.service, upload)
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
            log.warning("engine call failed: %s", message)
            return _error(500, message, "engine_error")
        finally:
            slot.release()
        timing = {"queue": slot.waited_ms, "transcribe": result.ms, **result.stages}
        headers = {"Server-Timing": _server_timing(timing)}
        if upload.response_format == "text":
            return PlainTextResponse(result.text, headers=headers)
        return JSONResponse({"text": result.text}, headers=headers)


def route(service: Any, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> Route:
    """The transcription route for ``service`` (a :class:`voxbench.load.serve.Service`), taking
    uploads of at most ``max_upload_bytes``."""
    app = TranscriptionApp(service, max_upload_bytes)
    return Route(TRANSCRIPTIONS_PATH, app.transcriptions, methods=["POST"])
