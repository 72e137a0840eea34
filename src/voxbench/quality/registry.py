"""Every quality metric: the built-in families plus third-party ones from entry points.

Family modules are imported only when metrics are asked for, so ``voxbench --help`` and speed-only
runs never pay for numpy-heavy or model-loading imports.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from voxbench.errors import ConfigError
from voxbench.quality.base import Metric

BUILTIN_FAMILIES = ("pitch", "spectral", "perceptual", "speaker", "intelligibility")
ENTRY_POINT_GROUP = "voxbench.metrics"


def family_metrics(family: str) -> list[Metric]:
    module = importlib.import_module(f"voxbench.quality.{family}")
    return list(module.METRICS)


def all_metrics() -> list[Metric]:
    """Built-in metrics in family order, then entry-point metrics (each a Metric or list of them)."""
    metrics: list[Metric] = []
    for family in BUILTIN_FAMILIES:
        metrics += family_metrics(family)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded = ep.load()
        metrics += list(loaded) if isinstance(loaded, list | tuple) else [loaded]
    return metrics


def select_metrics(names: list[str] | None) -> list[Metric]:
    """Metrics by metric name, family name or value name; all of them when ``names`` is empty."""
    metrics = all_metrics()
    if not names:
        return metrics
    chosen: list[Metric] = []
    for name in names:
        hits = [
            m
            for m in metrics
            if name in (m.name, m.family) or any(v.name == name for v in m.values)
        ]
        if not hits:
            known = sorted({m.family for m in metrics} | {m.name for m in metrics})
            raise ConfigError(f"unknown metric {name!r} (known: {', '.join(known)})")
        chosen += [m for m in hits if m not in chosen]
    return chosen
