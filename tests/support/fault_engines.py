"""FAULT INJECTORS: engines of known behaviour that kill a process on purpose, for the tests of
what voxbench records when the machinery under a case dies (tests/integration/test_ray_run.py).

:class:`KillsRayWorker` answers a short tone, and on its ``nth`` call (counted per engine, so a
retried task dies again at the same call) SIGKILLs the Ray worker process running the case: the
worker process's parent in worker mode, its own process in ``--in-process`` mode. It kills only
a process whose title is a Ray worker's (``ray::...``) and raises otherwise, so it can never take
a test runner or a shell with it. With ``once`` set to a file path it dies only while that file
does not exist (it creates it first): the first attempt dies, a retry measures normally. With
``log`` set to a file path, each engine built appends its process id there: one line per attempt.

The others, for tests/integration/test_faults.py, answer a 100 ms tone at half scale (16 kHz)
until their ``nth`` call (counted per engine, from 1: the cold call), which goes wrong their way:
:class:`RaisesOnNth` raises, :class:`SegfaultsOnNth` reads address 0 (SIGSEGV) or aborts
(SIGABRT), :class:`ExitsOnNth` exits with a code, :class:`KillsItselfOnNth` SIGKILLs itself (as
the kernel's OOM killer does), :class:`HangsOnNth` sleeps an hour, :class:`Leaks` keeps
``mb_per_call`` MB more each call (touched, so resident) up to ``cap_mb`` and then hangs, and
:class:`BadAudio` answers ``bad`` audio (nan, inf, silence, clipped, rate, int32, 2-D, empty,
long); :class:`DeafSTT` is a recogniser that answers an empty transcript. The ones that kill a
process refuse to unless they run in a voxbench worker process.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import psutil

from voxbench.engine import Output

RATE = 16000


def _ray_worker_pid() -> int:
    """This process when it is a Ray worker (in-process mode), else its parent when that is one."""
    for pid in (os.getpid(), os.getppid()):
        title = " ".join(psutil.Process(pid).cmdline())
        if title.startswith("ray::"):
            return pid
    raise RuntimeError("KillsRayWorker runs only inside a Ray task; refusing to kill anything")


class KillsRayWorker:
    """A 10 ms tone per call; the ``nth`` call SIGKILLs the Ray worker that runs the case."""

    name = "kills-ray-worker"
    input_kind: ClassVar[str] = "text"
    output_kind: ClassVar[str] = "audio"
    sample_rate = RATE

    def __init__(self, nth: int = 3, once: str = "", log: str = "") -> None:
        self.nth = int(nth)
        self.once = Path(once) if once else None
        self.calls = 0
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")

    def synthesize(self, text: str) -> Output:
        self.calls += 1
        if self.calls == self.nth and self._dies_now():
            os.kill(_ray_worker_pid(), signal.SIGKILL)
        return Output(audio=np.zeros(RATE // 100, dtype=np.float32) + 0.1, sample_rate=RATE)

    def _dies_now(self) -> bool:
        if self.once is None:
            return True
        try:
            self.once.touch(exist_ok=False)
        except FileExistsError:
            return False
        return True


def tone(seconds: float = 0.1, amplitude: float = 0.5) -> np.ndarray:
    """A 440 Hz sine at ``amplitude`` of full scale, float32 at :data:`RATE`."""
    t = np.arange(round(seconds * RATE), dtype=np.float32) / RATE
    return (amplitude * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def _in_worker() -> None:
    """Raise unless this process is a voxbench worker: never kill a test runner."""
    if "voxbench.run.worker" not in " ".join(psutil.Process().cmdline()):
        raise RuntimeError("this fault engine kills its process only in a voxbench worker")


class _Nth:
    """A tone per call; the ``nth`` call does :meth:`fault` instead."""

    name = "fault"
    input_kind: ClassVar[str] = "text"
    output_kind: ClassVar[str] = "audio"
    sample_rate = RATE

    def __init__(self, nth: int = 3) -> None:
        self.nth = int(nth)
        self.calls = 0

    def synthesize(self, text: str) -> Output:
        self.calls += 1
        if self.calls >= self.nth:
            self.fault()
        return Output(audio=tone(), sample_rate=RATE)

    def fault(self) -> None:
        raise NotImplementedError


class RaisesOnNth(_Nth):
    """Raises RuntimeError on the ``nth`` call only: the calls after it answer again."""

    name = "raises"

    def synthesize(self, text: str) -> Output:
        if self.calls + 1 == self.nth:
            self.calls += 1
            raise RuntimeError(f"injected failure on call {self.nth}")
        self.calls += 1
        return Output(audio=tone(), sample_rate=RATE)


class SegfaultsOnNth(_Nth):
    """``how="segv"``: reads address 0 through ctypes (SIGSEGV); ``"abort"``: os.abort()."""

    name = "segfaults"

    def __init__(self, nth: int = 3, how: str = "segv") -> None:
        super().__init__(nth)
        self.how = how

    def fault(self) -> None:
        _in_worker()
        if self.how == "abort":
            os.abort()
        import ctypes

        ctypes.string_at(0)


class ExitsOnNth(_Nth):
    """Exits the process with ``code`` (no clean-up, as native code calling exit() does)."""

    name = "exits"

    def __init__(self, nth: int = 3, code: int = 3) -> None:
        super().__init__(nth)
        self.code = int(code)

    def fault(self) -> None:
        _in_worker()
        os._exit(self.code)


class KillsItselfOnNth(_Nth):
    """SIGKILLs its own process, as the kernel's OOM killer does."""

    name = "sigkilled"

    def fault(self) -> None:
        _in_worker()
        os.kill(os.getpid(), signal.SIGKILL)


class HangsOnNth(_Nth):
    """Sleeps an hour on the ``nth`` call and every one after."""

    name = "hangs"

    def fault(self) -> None:
        time.sleep(3600)


class SlowCalls(_Nth):
    """Every call takes ``call_ms``; nothing else goes wrong (for --case-timeout)."""

    name = "slow"

    def __init__(self, call_ms: float = 200.0) -> None:
        super().__init__(nth=1 << 30)
        self.call_ms = float(call_ms)

    def synthesize(self, text: str) -> Output:
        time.sleep(self.call_ms / 1000)
        return super().synthesize(text)


class Leaks(_Nth):
    """From the ``nth`` call on, keeps ``mb_per_call`` MB more per call, touched (resident), in
    pieces of 10 MB 5 ms apart; past ``cap_mb`` kept it hangs instead (so a missing memory
    watch is cut by the call timeout, never by the machine). With ``kill_at_mb``, once its
    resident memory reaches that it waits 0.1 s and SIGKILLs itself (the OOM killer's way)."""

    name = "leaks"

    def __init__(
        self, nth: int = 1, mb_per_call: int = 400, cap_mb: int = 1500, kill_at_mb: int = 0
    ) -> None:
        super().__init__(nth)
        self.mb_per_call = int(mb_per_call)
        self.cap_mb = int(cap_mb)
        self.kill_at_mb = int(kill_at_mb)
        self.kept: list[np.ndarray] = []

    def fault(self) -> None:
        for _ in range(self.mb_per_call // 10):
            if len(self.kept) * 10 >= self.cap_mb:
                time.sleep(3600)
            self.kept.append(np.ones(10 * 2**20, dtype=np.uint8))
            if self.kill_at_mb and psutil.Process().memory_info().rss >= self.kill_at_mb * 2**20:
                _in_worker()
                time.sleep(0.1)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.005)


class BadAudio(_Nth):
    """From the ``nth`` call on answers ``bad`` audio: ``nan`` (one sample NaN), ``inf``,
    ``silence`` (zeros), ``quiet`` (peak -70 dBFS), ``clipped`` (10 % of samples at ±1.0),
    ``rate`` (a 22050 Hz answer from an engine that declares 16000), ``int32``, ``stereo`` (2-D),
    ``empty`` (0 samples), ``long`` (60 s per input character and 1 s more), ``none``
    (an Output without audio or text)."""

    name = "bad-audio"

    def __init__(self, bad: str = "nan", nth: int = 1) -> None:
        super().__init__(nth)
        self.bad = bad

    def synthesize(self, text: str) -> Output:
        self.calls += 1
        if self.calls < self.nth:
            return Output(audio=tone(), sample_rate=RATE)
        return self.answer(text)

    def answer(self, text: str) -> Output:
        audio: Any = tone()
        rate = RATE
        if self.bad == "nan":
            audio[10] = np.nan
        elif self.bad == "inf":
            audio[10] = np.inf
        elif self.bad == "silence":
            audio = np.zeros_like(audio)
        elif self.bad == "quiet":
            audio = audio / 0.5 * 10 ** (-70 / 20)
        elif self.bad == "clipped":
            audio[::10] = 1.0
        elif self.bad == "rate":
            rate = 22050
        elif self.bad == "int32":
            audio = (audio * 2**30).astype(np.int32)
        elif self.bad == "stereo":
            audio = np.stack([audio, audio], axis=1)
        elif self.bad == "empty":
            audio = audio[:0]
        elif self.bad == "long":
            audio = np.resize(tone(1.0), (60 * len(text) + 1) * RATE)
        elif self.bad == "none":
            return Output()
        return Output(audio=audio, sample_rate=rate)


class DeafSTT:
    """A speech recogniser that hears nothing: an empty transcript for every input."""

    name = "deaf-stt"
    input_kind: ClassVar[str] = "audio"
    output_kind: ClassVar[str] = "text"

    def synthesize(self, path: Any) -> Output:
        return Output(text="")
