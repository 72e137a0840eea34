"""Load against OpenAI transcription endpoints (``POST …/audio/transcriptions``): the upload
bodies, encoded once before a level starts, the answers read into transcripts, and a level's
speech-recognition figures.

A body is ``multipart/form-data`` as an OpenAI client sends it (RFC 7578): ``model``,
``response_format=json`` and the item's audio file in ``file``. Every body of a target shares one
boundary, a random token checked to occur in no file. The answer is ``{"text": ...}`` (a server
that answers ``text/plain`` is read as the transcript itself); anything else is a ``bad_answer``.

Per level: ``audio_seconds_per_second`` counts the *input* audio of the successes completed in
the sending window (the server's RTFx under load), ``rtf`` is each success's latency over its
input audio, and ``wer``/``cer`` are corpus rates (:mod:`voxbench.results.accuracy`: errors summed
over reference words) of every measured success whose item has a reference transcript.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError
from voxbench.load.records import BadAnswer, Form

if TYPE_CHECKING:
    from voxbench.load.records import RequestRecord
    from voxbench.workloads.base import Workload

MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg"}
_MAX_ANSWER_BYTES = 1 << 20  # a transcript answer longer than this is not one


@dataclass(frozen=True)
class Corpus:
    """What the answers are scored against, by item index (a request's ``RequestRecord.item``):
    each item's reference transcript (None: not known) and its input audio seconds."""

    references: tuple[str | None, ...]
    seconds: tuple[float, ...]


def _quoted(value: str) -> str:
    """A form parameter value inside double quotes: quote and line breaks percent-encoded, as
    browsers and httpx do (RFC 7578 §4.2)."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def new_boundary(files: Iterable[bytes]) -> str:
    """A multipart boundary (``voxbench-`` and 32 random hex digits) found in none of ``files``."""
    contents = list(files)
    while True:
        boundary = f"voxbench-{secrets.token_hex(16)}"
        token = boundary.encode()
        if not any(token in data for data in contents):
            return boundary


def encode_form(
    fields: Sequence[tuple[str, str]], file: tuple[str, bytes, str], boundary: str
) -> Form:
    """``fields`` (name, value) then ``file`` (filename, bytes, media type) in the ``file`` part,
    as one ``multipart/form-data`` body delimited by ``boundary`` (which must not occur in the
    file: :func:`new_boundary`)."""
    dash = f"--{boundary}\r\n".encode()
    parts = []
    for name, value in fields:
        parts += [
            dash,
            f'Content-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode(),
            value.encode(),
            b"\r\n",
        ]
    filename, data, media = file
    parts += [
        dash,
        f'Content-Disposition: form-data; name="file"; filename="{_quoted(filename)}"\r\n'.encode(),
        f"Content-Type: {media}\r\n\r\n".encode(),
        data,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return Form(f"multipart/form-data; boundary={boundary}", b"".join(parts))


def transcription_bodies(work: Workload, model: str) -> tuple[tuple[Form, ...], Corpus]:
    """One upload per item of an audio workload (``model``, ``response_format=json``, the file),
    and the corpus its answers are scored against. ConfigError when a file cannot be read or its
    length is unknown."""
    from voxbench.run.scenario import input_audio_seconds

    paths, files, seconds = [], [], []
    for item in work.items:
        assert item.path is not None  # an audio item is a file
        paths.append(item.path)
        try:
            files.append(item.path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read audio {item.path}: {exc.strerror or exc}") from None
        length = input_audio_seconds(item)
        if not length:
            raise ConfigError(f"cannot read the length of {item.path} (not a readable audio file)")
        seconds.append(length)
    boundary = new_boundary(files)
    fields = (("model", model), ("response_format", "json"))
    forms = tuple(
        encode_form(fields, (path.name, data, media_type(path)), boundary)
        for path, data in zip(paths, files, strict=True)
    )
    return forms, Corpus(tuple(item.text for item in work.items), tuple(seconds))


def media_type(path: Path) -> str:
    """The Content-Type of an audio file's part, by its suffix."""
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


class TranscriptReader:
    """Collects one answer's body and reads the transcript out of it when it ends."""

    __slots__ = ("buf", "content_type")

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self.buf = bytearray()

    def feed(self, data: bytes) -> None:
        """A body piece; BadAnswer when the answer grows past any transcript's size."""
        self.buf += data
        if len(self.buf) > _MAX_ANSWER_BYTES:
            raise BadAnswer(f"the answer is longer than {_MAX_ANSWER_BYTES} bytes")

    def finish(self) -> str:
        """The transcript; BadAnswer when the answer is not ``{"text": ...}`` (or plain text)."""
        return read_transcript(bytes(self.buf), self.content_type)


def read_transcript(body: bytes, content_type: str) -> str:
    """The transcript in a transcription answer: the ``text`` string of a JSON object, or a
    ``text/plain`` body itself; BadAnswer otherwise."""
    if content_type.startswith("text/plain"):
        return body.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise BadAnswer(f"the answer is not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise BadAnswer(f'the answer has no "text" string: {body[:60]!r}')
    return str(obj["text"])


@dataclass(frozen=True)
class Figures:
    """A transcription level's own figures (:func:`transcription_figures`)."""

    audio_seconds_per_second: float | None  # input audio transcribed per second of the window
    rtf: list[float]  # latency / input audio seconds, per measured success
    wer: float | None = None
    cer: float | None = None
    wer_requests: int | None = None  # the measured successes scored (their item has a reference)


def transcription_figures(
    records: list[RequestRecord],
    ok: list[RequestRecord],
    window: tuple[float, float] | None,
    corpus: Corpus,
) -> Figures:
    """A transcription level's figures. Input audio per second: of the successes completed in
    ``window`` (warm-up included, as for ``achieved_rate``). rtf: each measured success's latency
    (from its intended send time) over its input audio. WER and CER: corpus rates over the
    measured successes (``ok``) whose item has a reference, every request counted (an item sent
    five times weighs five times)."""
    from voxbench.results.accuracy import corpus_rates, error_counts

    seconds = corpus.seconds
    rtf = [(r.done - r.due) / seconds[r.item] for r in ok if r.item >= 0]
    audio_rate = None
    if window is not None:
        t0, t1 = window
        done_in = [r for r in records if r.error is None and r.item >= 0 and t0 <= r.done < t1]
        audio_rate = sum(seconds[r.item] for r in done_in) / (t1 - t0)
    aligned: dict[tuple[int, str], dict[str, Any] | None] = {}  # equal answers align once
    counts = []
    for r in ok:
        reference = corpus.references[r.item] if r.item >= 0 else None
        if reference is None or r.text is None:
            continue
        key = (r.item, r.text)
        if key not in aligned:
            aligned[key] = error_counts(reference, r.text)
        if (found := aligned[key]) is not None:
            counts.append(found)
    rates = corpus_rates(counts)
    if rates is None:
        return Figures(audio_rate, rtf)
    return Figures(audio_rate, rtf, rates["wer"], rates["cer"], len(counts))
