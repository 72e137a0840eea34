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
achieved requests/s as throughput).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError

if TYPE_CHECKING:
    from voxbench.results.document import ResultDocument, Summary

FORMATS = ("bencher", "github-action-benchmark")
NS_PER_MS = 1e6


def _interval(s: Summary | None, scale: float = 1.0) -> dict[str, float] | None:
    if s is None:
        return None
    out = {"value": s.median * scale}
    if s.ci95 is not None:
        out["lower_value"] = s.ci95[0] * scale
        out["upper_value"] = s.ci95[1] * scale
    return out


def bencher(doc: ResultDocument) -> dict[str, dict[str, dict[str, float]]]:
    """The run as Bencher Metric Format."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for c in doc.cases:
        measures: dict[str, dict[str, float] | None] = {
            "latency": _interval(c.latency_ms, NS_PER_MS),
            "time-to-first-audio": _interval(c.ttfa_ms, NS_PER_MS),
            "throughput": {"value": c.items_per_second} if c.items_per_second else None,
            "rtf": {"value": c.rtf} if c.rtf is not None else None,
            "rtfx": {"value": c.rtfx} if c.rtfx is not None else None,
            "peak-rss-mb": {"value": c.peak_rss_mb} if c.peak_rss_mb is not None else None,
        }
        found = {k: v for k, v in measures.items() if v is not None}
        if found:
            out[c.id] = found
    for name, level in _load_levels(doc):
        lat = (level.get("latency_ms") or {}).get("p50")
        ttfa = (level.get("ttfa_ms") or {}).get("p50")
        rate = level.get("achieved_rate")
        found = {}
        if lat is not None:
            found["latency"] = {"value": lat * NS_PER_MS}
        if ttfa is not None:
            found["time-to-first-audio"] = {"value": ttfa * NS_PER_MS}
        if rate is not None:
            found["throughput"] = {"value": float(rate)}
        if found:
            out[name] = found
    return out


def _load_levels(doc: ResultDocument) -> list[tuple[str, dict[str, Any]]]:
    if doc.load is None:
        return []
    workload = str(doc.load.settings.get("workload", "load"))
    return [(f"load/{workload}/{lv.get('label')}", lv) for lv in doc.load.levels]


def _range(s: Summary) -> str | None:
    if s.ci95 is None:
        return None
    return f"± {(s.ci95[1] - s.ci95[0]) / 2:.4g}"


def github_action_benchmark(doc: ResultDocument) -> list[dict[str, Any]]:
    """The run as github-action-benchmark ``customSmallerIsBetter`` entries."""
    env = doc.environment
    where = f"machine {env.machine_id}" + (
        f", commit {env.git_commit[:10]}" if env.git_commit else ""
    )
    out: list[dict[str, Any]] = []

    def add(name: str, unit: str, value: float | None, rng: str | None, extra: str) -> None:
        if value is None:
            return
        entry: dict[str, Any] = {"name": name, "unit": unit, "value": value}
        if rng:
            entry["range"] = rng
        entry["extra"] = extra
        out.append(entry)

    for c in doc.cases:
        if c.latency_ms is not None:
            s = c.latency_ms
            extra = f"median of {s.n} calls; p95 {s.p95:.4g} ms; {where}; run {doc.run_id}"
            add(f"{c.id} latency", "ms", s.median, _range(s), extra)
        if c.ttfa_ms is not None:
            s = c.ttfa_ms
            add(f"{c.id} ttfa", "ms", s.median, _range(s), f"median of {s.n} calls; {where}")
        add(f"{c.id} rtf", "wall/audio", c.rtf, None, f"median per-call ratio; {where}")
        add(f"{c.id} peak_rss", "MiB", c.peak_rss_mb, None, f"{c.peak_rss_scope}; {where}")
    for name, level in _load_levels(doc):
        lat = level.get("latency_ms") or {}
        add(f"{name} latency p50", "ms", lat.get("p50"), None, f"{where}; run {doc.run_id}")
        add(f"{name} latency p99", "ms", lat.get("p99"), None, f"{where}; run {doc.run_id}")
        ttfa = level.get("ttfa_ms") or {}
        add(f"{name} ttfa p50", "ms", ttfa.get("p50"), None, f"{where}; run {doc.run_id}")
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
