"""How each case of a run is measured: the defaults, declared once.

Light on purpose (a dataclass, nothing else): the command line reads these defaults for its help
text at start-up, and :class:`voxbench.run.request.RunRequest` for every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_OUTPUT = Path("results")
"""The results root: each run goes in ``<output>/<machine-id>/<run-id>/``."""


@dataclass(frozen=True)
class Settings:
    """How each case is measured: call counts, where the engine runs, streaming, audio kept."""

    iterations: int = 10
    warmup: int = 3
    mode: str = "worker"  # a key of voxbench.run.executors.EXECUTORS
    timeout_s: float | None = 120.0
    stream: str = "auto"  # auto: stream when the engine can; on: require it; off: never
    save_audio: bool = True
