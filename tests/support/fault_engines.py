"""FAULT INJECTORS: engines of known behaviour that kill a process on purpose, for the tests of
what voxbench records when the machinery under a case dies (tests/integration/test_ray_run.py).

:class:`KillsRayWorker` answers a short tone, and on its ``nth`` call (counted per engine, so a
retried task dies again at the same call) SIGKILLs the Ray worker process running the case: the
worker process's parent in worker mode, its own process in ``--in-process`` mode. It kills only
a process whose title is a Ray worker's (``ray::...``) and raises otherwise, so it can never take
a test runner or a shell with it. With ``once`` set to a file path it dies only while that file
does not exist (it creates it first): the first attempt dies, a retry measures normally. With
``log`` set to a file path, each engine built appends its process id there: one line per attempt.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import ClassVar

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
