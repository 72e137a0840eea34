"""Calibration engines with known timings, to check the harness itself.

They are not speech engines: each sleeps for a set time and returns silence, so a correct harness
must report exactly those times. Digital silence is their answer by design: they waive the
``silent`` output check (``waive_output_checks``, :mod:`voxbench.run.output_checks`). Use them as ``voxbench.engines.calibration:SleepEngine`` etc.;
``benchmarks/overhead.py`` and the timing tests rely on them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from voxbench.engine import BaseEngine, Chunk, InputKind, Output, stage


def _silence(seconds: float, sample_rate: int) -> Any:
    import numpy as np

    return np.zeros(round(seconds * sample_rate), dtype=np.float32)


class SleepEngine(BaseEngine):
    """Loads in ``load_ms``, answers in ``call_ms`` with ``audio_seconds`` of silence."""

    name: ClassVar[str] = "sleep"
    input_kind: ClassVar[InputKind] = "text"
    description: ClassVar[str] = "calibration: sleeps a known time, returns silence"
    default_workloads: ClassVar[tuple[str, ...]] = ("short",)
    waive_output_checks: ClassVar[tuple[str, ...]] = ("silent",)

    def __init__(
        self,
        call_ms: float = 50.0,
        load_ms: float = 0.0,
        audio_seconds: float = 1.0,
        sample_rate: int = 16000,
    ) -> None:
        self.call_ms = float(call_ms)
        self.load_ms = float(load_ms)
        self.audio_seconds = float(audio_seconds)
        self.sample_rate = int(sample_rate)
        self._audio: Any = None

    def load(self) -> None:
        time.sleep(self.load_ms / 1000)
        self._audio = _silence(self.audio_seconds, self.sample_rate)

    def synthesize(self, inp: Any) -> Output:
        if self.call_ms:
            time.sleep(self.call_ms / 1000)
        return Output(audio=self._audio, sample_rate=self.sample_rate)

    def info(self) -> dict[str, Any]:
        return {"call_ms": self.call_ms, "load_ms": self.load_ms}


class StreamingSleepEngine(SleepEngine):
    """Streams ``chunks`` chunks: the first after ``first_chunk_ms``, then one every ``gap_ms``."""

    name: ClassVar[str] = "sleep-stream"

    def __init__(
        self, first_chunk_ms: float = 30.0, gap_ms: float = 20.0, chunks: int = 4, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.first_chunk_ms = float(first_chunk_ms)
        self.gap_ms = float(gap_ms)
        self.chunks = int(chunks)

    def stream(self, inp: Any) -> Iterator[Chunk]:
        piece = _silence(self.audio_seconds / self.chunks, self.sample_rate)
        for i in range(self.chunks):
            time.sleep((self.first_chunk_ms if i == 0 else self.gap_ms) / 1000)
            yield Chunk(audio=piece, sample_rate=self.sample_rate)

    def synthesize(self, inp: Any) -> Output:
        import numpy as np

        return Output(
            audio=np.concatenate([c.audio for c in self.stream(inp)]), sample_rate=self.sample_rate
        )


class StagedSleepEngine(SleepEngine):
    """Times two stages with :func:`voxbench.stage` and reports a third itself."""

    name: ClassVar[str] = "sleep-staged"

    def synthesize(self, inp: Any) -> Output:
        with stage("prefill"):
            time.sleep(self.call_ms * 0.2 / 1000)
        with stage("decode"):
            time.sleep(self.call_ms * 0.5 / 1000)
        t0 = time.perf_counter_ns()
        time.sleep(self.call_ms * 0.3 / 1000)
        vocoder_ms = (time.perf_counter_ns() - t0) / 1e6
        return Output(
            audio=self._audio, sample_rate=self.sample_rate, stages={"vocoder": vocoder_ms}
        )


class FailingEngine(SleepEngine):
    """Raises on every ``fail_every``-th call (every call by default)."""

    name: ClassVar[str] = "failing"

    def __init__(self, fail_every: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("call_ms", 1.0)
        super().__init__(**kwargs)
        self.fail_every = int(fail_every)
        self._calls = 0

    def synthesize(self, inp: Any) -> Output:
        self._calls += 1
        if self._calls % self.fail_every == 0:
            raise RuntimeError(f"calibration failure on call {self._calls}")
        return super().synthesize(inp)


class FailingLoadEngine(SleepEngine):
    """Raises in ``load()``."""

    name: ClassVar[str] = "failing-load"

    def load(self) -> None:
        raise RuntimeError("calibration failure while loading")


class HangingEngine(SleepEngine):
    """Never answers its ``hang_on``-th call: the per-call timeout must cut it."""

    name: ClassVar[str] = "hanging"

    def __init__(self, hang_on: int = 2, **kwargs: Any) -> None:
        kwargs.setdefault("call_ms", 1.0)
        super().__init__(**kwargs)
        self.hang_on = int(hang_on)
        self._calls = 0

    def synthesize(self, inp: Any) -> Output:
        self._calls += 1
        if self._calls >= self.hang_on:
            time.sleep(3600)
        return super().synthesize(inp)


class CrashingEngine(SleepEngine):
    """Kills its own process on the first call, like a segfault in native code."""

    name: ClassVar[str] = "crashing"

    def synthesize(self, inp: Any) -> Output:
        os._exit(77)
