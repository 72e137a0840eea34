"""One run in the formats CI dashboards read.

- ``bencher``: Bencher Metric Format (BMF) JSON, ``{benchmark: {measure: {value, lower_value,
  upper_value}}}`` (https://bencher.dev/docs/reference/bencher-metric-format/). The benchmark is
  the case id. ``latency`` is Bencher's built-in Latency measure, which is in **nanoseconds**, so
  the median latency and its 95% CI are written in ns; ``throughput`` is the built-in Throughput
  (operations/s: here items per second). The others are measures Bencher creates on first use:
  ``time-to-first-audio`` (ns, with its CI), ``rtf``, ``rtfx``, ``peak-rss-mb``.
- ``github-action-benchmark``: the ``customSmallerIsBetter`` input of
  benchmark-action/github-action-benchmark, a list of ``{name, unit, value, range, extra}``; only
  figures where smaller is better go in (median latency, ttfa, rtf, peak memory), ``range`` is
  half the width of the median's 95% CI as ``± x``.

Load runs contribute one benchmark per level (``load/<workload>/<level>``: p50 latency and ttfa,
achieved requests/s as throughput; github-action-benchmark also p99 latency).

Which metric goes in, under which name and scale, is the ``bencher`` and ``github`` export of its
entry in the metric catalogue (:mod:`voxbench.results.metrics`); this module only lays them out.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError
from voxbench.results.keys import keyed_levels
from voxbench.results.metrics import CATALOGUE, Export, Metric

if TYPE_CHECKING:
    from voxbench.results.document import Case, LoadLevel, ResultDocument

FORMATS = ("bencher", "github-action-benchmark")
_BENCHER: list[tuple[Metric, Export]] = [(m, m.bencher) for m in CATALOGUE if m.bencher]
# customSmallerIsBetter: a metric where higher is better cannot go in
_GITHUB: list[tuple[Metric, Export]] = [
    (m, m.github) for m in CATALOGUE if m.github and not m.higher_is_better
]


def _measure(
    value: float | None, interval: tuple[float, float] | None, scale: float
) -> dict[str, float] | None:
    if value is None:
        return None
    out = {"value": value * scale}
    if interval is not None:
        out["lower_value"] = interval[0] * scale
        out["upper_value"] = interval[1] * scale
    return out


def bencher(doc: ResultDocument) -> dict[str, dict[str, dict[str, float]]]:
    """The run as Bencher Metric Format."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c in doc.cases:
        found = {
            ex.name: measure
            for m, ex in _BENCHER
            if ex.name and (measure := _measure(m.of_case(c), m.ci_of_case(c), ex.scale))
        }
        if found:
            out[c.id] = found
    for key, lv in keyed_levels(doc.load):
        found = {
            ex.level_name: measure
            for m, ex in _BENCHER
            if ex.level_name and (measure := _measure(m.of_level(lv), None, ex.scale))
        }
        if found:
            out[key] = found
    return out


def _range(interval: tuple[float, float] | None) -> str | None:
    if interval is None:
        return None
    return f"± {(interval[1] - interval[0]) / 2:.4g}"


def _entry(name: str, unit: str, value: float, rng: str | None, extra: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "unit": unit, "value": value}
    if rng:
        entry["range"] = rng
    entry["extra"] = extra
    return entry


def _github_case(c: Case, where: str, run: str) -> list[dict[str, Any]]:
    out = []
    for m, ex in _GITHUB:
        value = m.of_case(c)
        if ex.name and value is not None:
            extra = ex.note.format(case=c, where=where, run=run)
            name, unit = f"{c.id} {ex.name}", ex.unit or m.unit
            out.append(_entry(name, unit, value * ex.scale, _range(m.ci_of_case(c)), extra))
    return out


def _github_level(key: str, lv: LoadLevel, where: str, run: str) -> list[dict[str, Any]]:
    out = []
    for m, ex in _GITHUB:
        value = m.of_level(lv)
        if ex.level_name and value is not None:
            name, unit = f"{key} {ex.level_name}", ex.unit or m.unit
            out.append(_entry(name, unit, value * ex.scale, None, f"{where}; run {run}"))
    return out


def github_action_benchmark(doc: ResultDocument) -> list[dict[str, Any]]:
    """The run as github-action-benchmark ``customSmallerIsBetter`` entries."""
    env = doc.environment
    where = f"machine {env.machine_id}" + (
        f", commit {env.git_commit[:10]}" if env.git_commit else ""
    )
    out = [e for c in doc.cases for e in _github_case(c, where, doc.run_id)]
    for key, lv in keyed_levels(doc.load):
        out += _github_level(key, lv, where, doc.run_id)
    return out


def render(doc: ResultDocument, fmt: str) -> str:
    """The run in ``fmt`` (one of :data:`FORMATS`) as JSON text."""
    if fmt == "bencher":
        data: Any = bencher(doc)
    elif fmt == "github-action-benchmark":
        data = github_action_benchmark(doc)
    else:
        raise ConfigError(f"unknown export format {fmt!r}: choose from {', '.join(FORMATS)}")
    if not data:
        raise ConfigError(f"run {doc.run_id} has no measured figures to export")
    return json.dumps(data, indent=2) + "\n"
