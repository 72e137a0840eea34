"""Engines of KNOWN timing for pipeline tests: a recogniser and a TTS that sleep a set time.

Fakes by design, named as such: they stand in for STT and TTS so that what voxbench reports of a
chain (stage times, shares, the sum against the measured end to end) can be checked against what
was set. The recogniser answers the same transcript after ``delay_ms``; the TTS answers
``seconds_per_word`` of a 440 Hz tone per word, after ``delay_ms`` plus ``ms_per_word`` per word,
with ``silence_ms`` of silence first.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from voxbench.engine import Chunk, Output

RATE = 16000


class KnownSTT:
    """Answers ``text`` ``delay_ms`` after it was called."""

    name = "known-stt"
    input_kind: ClassVar[str] = "audio"
    output_kind: ClassVar[str] = "text"

    def __init__(self, delay_ms: float = 100.0, text: str = "what time is it") -> None:
        self.delay_ms = float(delay_ms)
        self.text = text

    def synthesize(self, inp: Path) -> Output:
        time.sleep(self.delay_ms / 1000)
        return Output(text=self.text)


class KnownTTS:
    """A tone per word, after a set time; streams one chunk per word when asked."""

    name = "known-tts"
    input_kind: ClassVar[str] = "text"
    output_kind: ClassVar[str] = "audio"
    sample_rate = RATE

    def __init__(
        self,
        delay_ms: float = 50.0,
        ms_per_word: float = 5.0,
        seconds_per_word: float = 0.3,
        silence_ms: float = 100.0,
    ) -> None:
        self.delay_ms = float(delay_ms)
        self.ms_per_word = float(ms_per_word)
        self.seconds_per_word = float(seconds_per_word)
        self.silence_ms = float(silence_ms)

    def _tone(self, words: int) -> np.ndarray:
        n = int(RATE * self.seconds_per_word * max(words, 1))
        t = np.arange(n) / RATE
        return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)

    def synthesize(self, text: str) -> Output:
        words = len(text.split())
        time.sleep((self.delay_ms + self.ms_per_word * words) / 1000)
        silence = np.zeros(int(RATE * self.silence_ms / 1000), dtype=np.float32)
        return Output(audio=np.concatenate([silence, self._tone(words)]), sample_rate=RATE)


class KnownStreamingTTS(KnownTTS):
    """The same, streamed: the leading silence and the first word after ``delay_ms``, then one
    word every ``ms_per_word``."""

    def stream(self, text: str) -> Iterator[Chunk]:
        words = text.split() or [""]
        time.sleep(self.delay_ms / 1000)
        yield Chunk(np.zeros(int(RATE * self.silence_ms / 1000), dtype=np.float32), RATE)
        for n, _ in enumerate(words):
            if n:
                time.sleep(self.ms_per_word / 1000)
            yield Chunk(self._tone(1), RATE)
