"""Running cases: the request, the plan, the single-request scenario, executors and timing.

The names below load lazily: a worker process imports :mod:`voxbench.run.worker` alone, and
must not pay for the planner and the registry at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EngineChoice": "voxbench.run.request",
    "RunOptions": "voxbench.run.request",
    "RunRequest": "voxbench.run.request",
    "Plan": "voxbench.run.planner",
    "PlannedCase": "voxbench.run.planner",
    "plan": "voxbench.run.planner",
    "execute": "voxbench.run.runner",
    "Settings": "voxbench.run.scenario",
    "run_case": "voxbench.run.scenario",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'voxbench.run' has no attribute {name!r}")
