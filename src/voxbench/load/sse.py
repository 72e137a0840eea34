"""The answer of an OpenAI chat endpoint, read as it arrives: server-sent events
(``data: {...}`` separated by blank lines) whose pieces are timed into a request record.

An event may span body pieces and one piece may hold several events; ``\\r\\n`` line ends are
read as ``\\n``. Only events that can matter are decoded as JSON: one holding ``"usage"`` (the
token count, OpenAI's ``stream_options.include_usage``) or ``"error"``, or a ``"content"`` whose
value cannot be told from the bytes after its key; comments, role-only and finish events are
skipped by a substring test. (A content delta is told without decoding it: ``json.loads`` of
every event would cost the client most of its CPU at thousands of tokens a second.) A content
delta counts when its text is not empty (the role event's ``"content": ""`` does not). A server that ignores
``"stream": true`` and answers one JSON object is read too: its whole answer is one delta, at the
time the body ended.
"""

from __future__ import annotations

import json
from typing import Any

from voxbench.load.records import BadStream, RequestRecord

_MAX_EVENT_BYTES = 1 << 20  # an event longer than this is not a chat delta


def _content(payload: bytes, at: int) -> bool | None:
    """Whether an event's one ``"content"`` value (its key at ``at``, after a ``"delta"``) is a
    non-empty string, read without decoding the JSON; None when that cannot be told so (decode it
    then). A quote inside a JSON string is escaped, so ``"content"`` followed by a colon is a key
    (``"reasoning_content"`` is another). An ``"error"`` event has no ``"delta"``."""
    if payload.find(b'"content"', at + 9) >= 0 or payload.rfind(b'"delta"', 0, at) < 0:
        return None
    i = at + 9
    n = len(payload)
    while i < n and payload[i] in b" \t":
        i += 1
    if i >= n or payload[i] != 0x3A:  # ":"
        return None
    i += 1
    while i < n and payload[i] in b" \t":
        i += 1
    if payload.startswith(b"null", i):
        return False
    if i + 1 < n and payload[i] == 0x22:  # '"': the string is empty when it closes at once
        return payload[i + 1] != 0x22
    return None


class ChatReader:
    """Fills ``rec``'s chat fields from the body pieces of one answer."""

    __slots__ = ("buf", "rec", "track", "whole")

    def __init__(self, rec: RequestRecord, *, track: bool, content_type: str) -> None:
        self.rec = rec
        self.track = track  # keep every delta's time (inter-token latency)
        self.buf = b""
        # a JSON (not event-stream) answer: kept whole and read when it ends
        self.whole = content_type.startswith("application/json")

    def feed(self, data: bytes, t: float) -> None:
        """A body piece that arrived at ``t`` (seconds from the level start)."""
        buf = self.buf + data if self.buf else data
        if self.whole:
            self.buf = buf
            return
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")  # a lone trailing \r waits for its \n
        pos = 0
        while (end := buf.find(b"\n\n", pos)) >= 0:
            self._event(buf[pos:end], t)
            pos = end + 2
        self.buf = buf[pos:] if pos else buf
        if len(self.buf) > _MAX_EVENT_BYTES:
            raise BadStream(f"an event longer than {_MAX_EVENT_BYTES} bytes")

    def finish(self, t: float) -> None:
        """The body ended at ``t``: read a whole JSON answer, or a last event without its blank
        line."""
        if self.whole:
            if self.buf:
                try:
                    obj = json.loads(self.buf)
                except ValueError as exc:
                    raise BadStream(f"the answer is not JSON: {exc}") from None
                self._object(obj, t, "message")
        elif self.buf.strip():
            self._event(self.buf.strip(b"\n"), t)
        self.buf = b""

    def _event(self, event: bytes, t: float) -> None:
        if event.startswith(b"data:") and b"\n" not in event:  # the usual: one data line
            payload = event[5:].strip()
        else:
            data = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
            if not data:
                return  # a comment (": keep-alive"), or an event without data
            payload = b"\n".join(data).strip()
        if payload == b"[DONE]":
            self.rec.done_marker = True
            return
        at = payload.find(b'"content"')
        if b'"usage"' not in payload:
            if at < 0:
                if b'"error"' not in payload:
                    return  # e.g. a finish event with an empty delta
            elif (found := _content(payload, at)) is not None:
                if found:
                    self._token(t)
                return
        try:
            obj = json.loads(payload)
        except ValueError as exc:
            raise BadStream(f"an event is not JSON: {payload[:60]!r} ({exc})") from None
        self._object(obj, t, "delta")

    def _token(self, t: float) -> None:
        rec = self.rec
        if rec.first_token < 0:
            rec.first_token = t
        rec.last_token = t
        rec.deltas += 1
        if self.track:
            rec.token_times.append(t)

    def _object(self, obj: Any, t: float, part: str) -> None:
        if not isinstance(obj, dict):
            raise BadStream(f"an event is not a JSON object: {str(obj)[:60]!r}")
        err = obj.get("error")
        if err:
            message = err.get("message", err) if isinstance(err, dict) else err
            raise BadStream(f"the server reported an error: {str(message)[:150]}")
        rec = self.rec
        choices = obj.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            piece = choices[0].get(part)
            text = piece.get("content") if isinstance(piece, dict) else None
            if isinstance(text, str) and text:
                self._token(t)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            tokens = usage.get("completion_tokens")
            if isinstance(tokens, int) and tokens >= 0:
                rec.usage_tokens = tokens
