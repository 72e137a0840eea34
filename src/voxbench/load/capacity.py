"""Service-level objectives, the capacity they allow, and what the capacity costs."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voxbench.errors import ConfigError
from voxbench.results.document import LoadLevel, Percentiles

_CLAUSE = re.compile(
    r"^\s*(?P<metric>[a-z_]+?)(?:_p(?P<pct>\d+(?:[._]\d+)?))?\s*(?P<op><=|<|>=|>)\s*"
    r"(?P<value>[\d.]+)\s*(?P<unit>ms|s|%)?\s*$"
)
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# SLO metric -> the level's distribution it is a percentile of
_DIST_METRICS: dict[str, Callable[[LoadLevel], Percentiles | None]] = {
    "ttfa": lambda lv: lv.ttfa_ms,
    "latency": lambda lv: lv.latency_ms,
    "ttfb": lambda lv: lv.ttfb_ms,
    "rtf": lambda lv: lv.rtf,
}
# SLO metric -> the level's fraction; a level without streamed responses has no stalls
_RATE_METRICS: dict[str, Callable[[LoadLevel], float | None]] = {
    "error_rate": lambda lv: lv.error_rate,
    "stall_rate": lambda lv: lv.stalls.stall_rate if lv.stalls else 0.0,
}


@dataclass(frozen=True)
class Clause:
    """One objective, e.g. ``ttfa_p95<300ms``: a metric of a level compared with a bound."""

    text: str
    metric: str
    pct: str | None
    op: str
    bound: float  # in the metric's own unit: ms for times, a fraction for rates

    def value(self, level: LoadLevel) -> float | None:
        """The level's figure this clause bounds; None when the level does not have it."""
        if self.metric in _RATE_METRICS:
            return _RATE_METRICS[self.metric](level)
        summary = _DIST_METRICS[self.metric](level)
        return summary.percentile(self.pct) if summary and self.pct else None

    def holds(self, level: LoadLevel) -> bool:
        """Whether the level meets this clause (a missing figure does not)."""
        v = self.value(level)
        return v is not None and _OPS[self.op](v, self.bound)


def parse_slo(text: str) -> list[Clause]:
    """``"ttfa_p95<300ms,error_rate<0.1%"`` → clauses; one-line ConfigError on anything else."""
    clauses = []
    for raw in (t for t in text.split(",") if t.strip()):
        m = _CLAUSE.match(raw)
        if not m or (m["metric"] not in _DIST_METRICS and m["metric"] not in _RATE_METRICS):
            raise ConfigError(
                f"cannot read SLO clause {raw.strip()!r} (e.g. ttfa_p95<300ms, latency_p99<2s, "
                "error_rate<0.1%, stall_rate<1%)"
            )
        metric, pct, unit = m["metric"], m["pct"], m["unit"]
        if metric in _DIST_METRICS and not pct:
            raise ConfigError(f"SLO clause {raw.strip()!r} needs a percentile, e.g. {metric}_p95")
        bound = float(m["value"])
        if unit == "s":
            bound *= 1000
        elif unit == "%":
            bound /= 100
        clauses.append(
            Clause(raw.strip(), metric, pct.replace("_", ".") if pct else None, m["op"], bound)
        )
    return clauses


def _mark(level: LoadLevel, clauses: list[Clause]) -> None:
    level.slo = {c.text: c.holds(level) for c in clauses}
    level.meets_slo = all(level.slo.values()) and not level.saturated


def evaluate(levels: Sequence[LoadLevel | dict[str, Any]], clauses: list[Clause]) -> dict[str, Any]:
    """Mark each level against the SLO (``slo``, ``meets_slo``) and find the capacity (the
    highest level meeting it) and the real-time stream goodput (the highest stall-free,
    error-free level). A level may also be given as its JSON dict; the dict is marked too."""
    typed = [lv if isinstance(lv, LoadLevel) else LoadLevel.model_validate(lv) for lv in levels]
    for raw, lv in zip(levels, typed, strict=True):
        _mark(lv, clauses)
        if isinstance(raw, dict):
            raw.update(slo=lv.slo, meets_slo=lv.meets_slo)
    best = max((lv for lv in typed if lv.meets_slo), key=lambda lv: lv.value, default=None)
    stall_free = [
        lv
        for lv in typed
        if lv.stalls and lv.stalls.streams_with_stalls == 0 and not lv.errors and not lv.saturated
    ]
    streams = max(
        (lv.value if lv.kind == "concurrency" else lv.in_flight_mean or 0.0 for lv in stall_free),
        default=None,
    )
    return {
        "slo": [c.text for c in clauses],
        "level": best.label if best else None,
        "rate": best.achieved_rate if best else None,
        "audio_seconds_per_second": best.audio_seconds_per_second if best else None,
        "realtime_streams": streams,
    }


def cost(
    capacity: dict[str, Any],
    per_hour: float,
    hardware_price: float | None = None,
    running_per_month: float = 0.0,
) -> dict[str, Any]:
    """Cost per request and per audio hour at the capacity, monthly cost, and break-even."""
    hours_per_month = 730.0
    rate = capacity.get("rate")
    audio_rate = capacity.get("audio_seconds_per_second")
    out: dict[str, Any] = {
        "per_hour": per_hour,
        "per_request": per_hour / 3600 / rate if rate else None,
        "per_audio_hour": per_hour / audio_rate if audio_rate else None,
        "monthly_at_full_use": per_hour * hours_per_month,
        "hardware_price": hardware_price,
        "running_per_month": running_per_month,
        "break_even_month": None,
    }
    saving = out["monthly_at_full_use"] - running_per_month
    if hardware_price is not None and saving > 0:
        out["break_even_month"] = hardware_price / saving
    return out
