"""Cut a streamed answer into sentences as it arrives, so speech can start on the first one.

A sentence ends at ``.``, ``!``, ``?`` (and their full-width forms, and ``…``), with any closing
quotes or brackets after it, once the next character is whitespace: "3.5" and "e.g." inside a
word do not end one, and neither do a few common abbreviations ("Dr.", "Mr.", "St."). What is left
when the stream ends is the last sentence. The rule is the one voice-assistant frameworks use
(aggregate LLM text until a sentence boundary, then synthesise), kept deliberately simple.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*(?=\s)")
_ABBREVIATIONS = frozenset({"dr.", "mr.", "mrs.", "ms.", "st.", "vs.", "e.g.", "i.e.", "etc."})


class SentenceSplitter:
    """Feed text pieces with :meth:`feed`; complete sentences come back as soon as they end."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        """Add ``piece``; return the sentences it completed (stripped, in order)."""
        self._buffer += piece
        done: list[str] = []
        start = 0
        for match in _END.finditer(self._buffer):
            candidate = self._buffer[start : match.end()].strip()
            last_word = candidate.rsplit(None, 1)[-1].lower() if candidate else ""
            if last_word in _ABBREVIATIONS:
                continue
            if candidate:
                done.append(candidate)
            start = match.end()
        self._buffer = self._buffer[start:]
        return done

    def flush(self) -> list[str]:
        """The text left when the stream ended, as the last sentence (none when only spaces)."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []


def split_sentences(text: str) -> list[str]:
    """All sentences of a whole text, by the same rule as a stream."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.flush()
