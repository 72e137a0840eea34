"""Example: your own Python engines, benchmarked by voxbench.

``Beep`` is the smallest engine voxbench runs: a plain class with one method. ``ChimeTTS`` is a toy text-to-chimes synthesizer with the shape of a real TTS: a prefill step
(text → notes), a decode step (notes → waveform) and a vocoder step (filtering), each timed with
``voxbench.stage``; it streams word by word and renders batches in one vectorised pass.

    PYTHONPATH=examples voxbench run --engine my_engines:Beep --workload short
    PYTHONPATH=examples voxbench run --engine my_engines:ChimeTTS --workload short,medium
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.signal import lfilter

import voxbench


class Beep:
    """A 440 Hz tone, 50 ms per character: no base class, no load(), no close(), no Output."""

    def synthesize(self, text):
        t = np.arange(len(text) * 800) / 16000
        return (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000


class ChimeTTS(voxbench.BaseEngine):
    name = "chime"
    input_kind = "text"
    description = "example: words become chimes (numpy)"
    default_workloads = ("short", "medium", "long")

    def __init__(self, sample_rate: int = 16000, word_ms: int = 220) -> None:
        self.sample_rate = sample_rate
        self.word_samples = sample_rate * word_ms // 1000

    def load(self) -> None:
        # The "model": a decaying envelope and three harmonic weights, built once.
        t = np.arange(self.word_samples) / self.sample_rate
        self.envelope = np.exp(-t * 9.0).astype(np.float32)
        self.t = t.astype(np.float32)
        self.harmonics = np.array([1.0, 0.5, 0.25], dtype=np.float32)

    def _notes(self, text: str) -> np.ndarray:
        words = text.split() or [""]
        return np.array([220.0 * 2 ** ((sum(map(ord, w)) % 24) / 12) for w in words], np.float32)

    def _render(self, notes: np.ndarray) -> np.ndarray:
        """notes (..., n) → audio (..., n * word_samples), every note in one numpy pass."""
        phase = 2 * np.pi * notes[..., None, None] * self.t * np.arange(1, 4)[:, None]
        waves = (np.sin(phase) * self.harmonics[:, None]).sum(axis=-2) * self.envelope
        return waves.reshape(*notes.shape[:-1], -1)

    def _vocode(self, audio: np.ndarray) -> np.ndarray:
        smoothed = lfilter([0.6, 0.4], [1.0], audio, axis=-1)
        return (0.3 * smoothed).astype(np.float32)

    def synthesize(self, text: str) -> voxbench.Output:
        with voxbench.stage("prefill"):
            notes = self._notes(text)
        with voxbench.stage("decode"):
            audio = self._render(notes)
        with voxbench.stage("vocoder"):
            audio = self._vocode(audio)
        return voxbench.Output(audio=audio, sample_rate=self.sample_rate)

    def stream(self, text: str) -> Iterator[voxbench.Chunk]:
        with voxbench.stage("prefill"):
            notes = self._notes(text)
        for note in notes:
            with voxbench.stage("decode"):
                audio = self._render(note[None])
            with voxbench.stage("vocoder"):
                audio = self._vocode(audio)
            yield voxbench.Chunk(audio=audio, sample_rate=self.sample_rate)

    def synthesize_batch(self, texts: list[str]) -> list[voxbench.Output]:
        """All texts in one pass: notes padded to the longest text, rendered together."""
        with voxbench.stage("prefill"):
            notes = [self._notes(t) for t in texts]
            width = max(len(n) for n in notes)
            padded = np.stack([np.pad(n, (0, width - len(n))) for n in notes])
        with voxbench.stage("decode"):
            audio = self._render(padded)
        with voxbench.stage("vocoder"):
            audio = self._vocode(audio)
        return [
            voxbench.Output(audio=a[: len(n) * self.word_samples], sample_rate=self.sample_rate)
            for a, n in zip(audio, notes, strict=True)
        ]
