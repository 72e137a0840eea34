"""How each case of a run is measured: the defaults, declared once.

Light on purpose (a dataclass, nothing else): the command line reads these defaults for its help
text at start-up, and :class:`voxbench.run.request.RunRequest` for every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from voxbench.errors import ConfigError

DEFAULT_OUTPUT = Path("results")
"""The results root: each run goes in ``<output>/<machine-id>/<run-id>/``."""


@dataclass(frozen=True)
class Settings:
    """How each case is measured: call counts, where the engine runs, streaming, audio kept,
    and the limits a case runs under (docs/engines.md, "Faults").

    ``timeout_s`` bounds each engine call, ``case_timeout_s`` the whole case (worker start,
    load and every call; in-process it is checked between calls); ``max_memory`` (``"2G"``,
    ``"500M"``: :func:`parse_size`) the worker's resident memory, worker mode only. ``None``:
    no limit. A case past a limit is stopped and the reason recorded in it; the run goes on.
    """

    iterations: int = 10
    warmup: int = 3
    mode: str = "worker"  # a key of voxbench.run.executors.EXECUTORS
    timeout_s: float | None = 120.0
    stream: str = "auto"  # auto: stream when the engine can; on: require it; off: never
    save_audio: bool = True
    case_timeout_s: float | None = None
    max_memory: str | None = None


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str, where: str = "--max-memory") -> int:
    """``"500M"`` → bytes (K, M, G, T are powers of 1024; ``500MB``, ``2GiB`` and a bare byte
    count too); one-line ConfigError naming ``where`` for anything else or a size under 1 MiB."""
    m = _SIZE.fullmatch(text or "")
    if m is None:
        raise ConfigError(f"{where}: give a size such as 500M or 2G, not {text!r}")
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size < 2**20:
        raise ConfigError(f"{where} {text}: too small to run an engine in (at least 1M)")
    return size
