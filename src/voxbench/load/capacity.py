"""Service-level objectives, the capacity they allow, and what the capacity costs.

An SLO clause bounds a percentile of *every* measured request (``latency_p99<2s``: a failure
counts at the time it took to fail, a timeout at the timeout), or with the ``_ok`` suffix of the
successful ones only (``latency_ok_p99<2s``); ``rtf`` exists for successful streams only. Chat
targets add ``ttft`` (= ``ttft_ok``), ``itl`` and ``tokens_per_second`` (``tokens_per_second_p50>=20``),
all of successful requests only: pair them with ``error_rate``. Transcription targets add
``wer`` and ``cer`` (``wer<=5%``: the level's corpus rate over its successful transcripts); their
latency clauses are the usual ones. A level without the clause's figure (``stall_rate`` where
nothing was streamed, ``wer`` of a speech target) has it *not measured*: the clause does not hold
there.

Capacity is the highest *valid* level (:mod:`voxbench.results.validity`: enough samples, the
generator kept its schedule, errors at most ``--max-error-rate``, a long enough window) that meets
every clause; without an SLO, the highest valid level.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voxbench.errors import ConfigError
from voxbench.results.document import LoadLevel, Percentiles
from voxbench.results.validity import MAX_ERROR_RATE, min_samples, supported

_CLAUSE = re.compile(
    r"^\s*(?P<metric>[a-z_]+?)(?:_p(?P<pct>\d+(?:[._]\d+)?))?\s*(?P<op><=|<|>=|>)\s*"
    r"(?P<value>[\d.]+)\s*(?P<unit>ms|s|%)?\s*$"
)
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
PERCENTILES = ("50", "90", "95", "99", "99.9")
"""The percentiles a level keeps, so the ones a clause may name."""
# SLO metric -> the level's distribution it is a percentile of
_DIST_METRICS: dict[str, Callable[[LoadLevel], Percentiles | None]] = {
    "ttfa": lambda lv: lv.ttfa_all_ms,
    "latency": lambda lv: lv.latency_all_ms,
    "ttfb": lambda lv: lv.ttfb_all_ms,
    "ttfa_ok": lambda lv: lv.ttfa_ms,
    "latency_ok": lambda lv: lv.latency_ms,
    "ttfb_ok": lambda lv: lv.ttfb_ms,
    "rtf": lambda lv: lv.rtf,
    # chat targets: of the successful requests only (a level keeps no all-request ttft; bound
    # the failures with error_rate); ``ttft`` and ``ttft_ok`` are the same figure
    "ttft": lambda lv: lv.ttft_ms,
    "ttft_ok": lambda lv: lv.ttft_ms,
    "itl": lambda lv: lv.itl_ms,
    "tokens_per_second": lambda lv: lv.tokens_per_second,
}
_PLAIN_NUMBERS = ("tokens_per_second",)  # no time unit: a bound with ms or s is refused
# SLO metric -> the level's fraction; None: not measured (a level without streamed responses)
_RATE_METRICS: dict[str, Callable[[LoadLevel], float | None]] = {
    "error_rate": lambda lv: lv.error_rate,
    "stall_rate": lambda lv: lv.stalls.stall_rate if lv.stalls else None,
    # transcription targets: corpus rates of the measured successes' transcripts
    "wer": lambda lv: lv.wer,
    "cer": lambda lv: lv.cer,
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

    def holds(self, level: LoadLevel) -> bool | None:
        """Whether the level meets this clause; None when the level has no such figure."""
        v = self.value(level)
        return None if v is None else bool(_OPS[self.op](v, self.bound))

    def note(self, level: LoadLevel) -> str | None:
        """Why this clause's figure is not measured or not supported at the level; None if it is."""
        if self.value(level) is None:
            return "not measured"
        if self.pct is None:
            return None
        summary = _DIST_METRICS[self.metric](level)
        n = summary.n if summary else None
        if not supported(self.pct, n):
            return (
                f"p{self.pct} from {n} samples is not supported (needs "
                f"{min_samples(float(self.pct))})"
            )
        return None


def parse_slo(text: str) -> list[Clause]:
    """``"ttfa_p95<300ms,error_rate<0.1%"`` → clauses; one-line ConfigError on anything else."""
    clauses = []
    for raw in (t for t in text.split(",") if t.strip()):
        m = _CLAUSE.match(raw)
        if not m or (m["metric"] not in _DIST_METRICS and m["metric"] not in _RATE_METRICS):
            raise ConfigError(
                f"cannot read SLO clause {raw.strip()!r} (e.g. ttfa_p95<300ms, latency_p99<2s, "
                "latency_ok_p99<2s, error_rate<0.1%, stall_rate<1%, ttft_p95<500ms, "
                "tokens_per_second_p50>=20, wer<=5%)"
            )
        metric, pct, unit = m["metric"], m["pct"], m["unit"]
        if metric in _DIST_METRICS and not pct:
            raise ConfigError(f"SLO clause {raw.strip()!r} needs a percentile, e.g. {metric}_p95")
        if metric in _RATE_METRICS and pct:
            raise ConfigError(f"SLO clause {raw.strip()!r}: {metric} has no percentiles")
        pct = pct.replace("_", ".") if pct else None
        if pct is not None and pct not in PERCENTILES:
            raise ConfigError(
                f"SLO clause {raw.strip()!r}: p{pct} is not kept (use one of "
                f"{', '.join('p' + p for p in PERCENTILES)})"
            )
        bound = float(m["value"])
        if metric in _PLAIN_NUMBERS and unit in ("ms", "s"):
            raise ConfigError(f"SLO clause {raw.strip()!r}: {metric} is a plain number, not a time")
        if unit == "s":
            bound *= 1000
        elif unit == "%":
            bound /= 100
        clauses.append(Clause(raw.strip(), metric, pct, m["op"], bound))
    return clauses


def startup_bound_ms(clauses: list[Clause], default: float) -> float:
    """The start-up delay a real-time stream may take: the tightest ttfa bound of the SLO, else
    ``default``."""
    bounds = [c.bound for c in clauses if c.metric in ("ttfa", "ttfa_ok") and c.op in ("<", "<=")]
    return min(bounds, default=default)


def _valid(level: LoadLevel) -> bool:
    return (level.validity is None or level.validity.valid) and not level.saturated


def _mark(level: LoadLevel, clauses: list[Clause]) -> None:
    level.slo = {c.text: c.holds(level) for c in clauses}
    notes = {c.text: note for c in clauses if (note := c.note(level))}
    if notes or level.slo_notes:
        level.slo_notes = notes
    level.meets_slo = all(v is True for v in level.slo.values()) and _valid(level)


def evaluate(
    levels: Sequence[LoadLevel | dict[str, Any]],
    clauses: list[Clause],
    max_error_rate: float = MAX_ERROR_RATE,
) -> dict[str, Any]:
    """Mark each level against the SLO (``slo``, ``meets_slo``) and find the capacity and the
    real-time stream capacity. A level may also be given as its JSON dict; the dict is marked too.

    Capacity: the highest valid level meeting every clause, or without an SLO the highest valid
    level (whose error rate is then at most ``max_error_rate``). Real-time streams: the highest
    :attr:`~voxbench.results.document.Stalls.realtime_concurrent` of a valid level where all but
    ``max_error_rate`` of the measured requests were real-time streams."""
    typed = [lv if isinstance(lv, LoadLevel) else LoadLevel.model_validate(lv) for lv in levels]
    for raw, lv in zip(levels, typed, strict=True):
        _mark(lv, clauses)
        if isinstance(raw, dict):
            raw.update(slo=lv.slo, meets_slo=lv.meets_slo)
    eligible = [
        lv
        for lv in typed
        if (lv.meets_slo if clauses else _valid(lv))
        and (lv.error_rate is None or lv.error_rate <= max_error_rate)
    ]
    best = max(eligible, key=lambda lv: lv.value, default=None)
    rule = (
        "highest valid level meeting the SLO"
        if clauses
        else f"highest valid level (no SLO; errors at most {max_error_rate:.2%})"
    )
    streaming = [
        lv
        for lv in typed
        if lv.stalls is not None
        and lv.stalls.realtime_concurrent is not None
        and lv.stalls.realtime_streams is not None
        and _valid(lv)
        and lv.stalls.realtime_streams >= (1 - max_error_rate) * lv.requests
    ]
    rt = max(streaming, key=_realtime_at, default=None)
    realtime = _realtime_at(rt) if rt else None
    capped = bool(
        rt and rt.stalls and (rt.stalls.realtime_concurrent or 0.0) > (realtime or 0.0) + 1e-9
    )
    return {
        "slo": [c.text for c in clauses],
        "rule": rule,
        "basis": _basis(best, clauses, max_error_rate),
        "level": best.label if best else None,
        "rate": best.achieved_rate if best else None,
        "audio_seconds_per_second": best.audio_seconds_per_second if best else None,
        "output_tokens_per_second": best.output_tokens_per_second if best else None,
        "realtime_streams": realtime,
        "realtime_level": rt.label if rt else None,
        "realtime_capped": capped,
    }


def _realtime_at(level: LoadLevel) -> float:
    """The level's real-time listeners fed at once, never above the audio seconds it made per
    second (a listener plays one second of audio per second)."""
    found = (level.stalls.realtime_concurrent if level.stalls else None) or 0.0
    made = level.audio_seconds_per_second
    return found if made is None else min(found, made)


def _basis(best: LoadLevel | None, clauses: list[Clause], max_error_rate: float) -> str:
    """One sentence: which level capacity and cost come from, and why that one."""
    if clauses:
        rule = f"highest valid level meeting {', '.join(c.text for c in clauses)}"
    else:
        rule = f"highest level with errors at most {max_error_rate * 100:g}%, valid, no SLO given"
    return f"{best.label}: {rule}" if best else f"no level qualifies ({rule})"


def cost(
    capacity: dict[str, Any],
    per_hour: float,
    hardware_price: float | None = None,
    running_per_month: float = 0.0,
) -> dict[str, Any]:
    """Cost per request and per audio hour at the capacity level, monthly cost, and break-even."""
    hours_per_month = 730.0
    rate = capacity.get("rate")
    audio_rate = capacity.get("audio_seconds_per_second")
    out: dict[str, Any] = {
        "level": capacity.get("level"),
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
