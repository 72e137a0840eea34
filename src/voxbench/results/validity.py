"""Whether a figure may be quoted: the validity rules of a case and of a load level, in one place.

Modelled on MLPerf LoadGen: a result carries a verdict (valid or not) and the reasons, and an
invalid result is shown as such everywhere (terminal, Markdown, JSON) and is never gated on.

A percentile is *supported* by ``n`` samples when at least :data:`TAIL_SAMPLES` of them lie at or
beyond it, i.e. ``n·(1 − p) ≥ TAIL_SAMPLES``: p50 needs 10 samples, p90 50, p95 100, p99 500,
p99.9 5,000. Below that the "p99" is one of the few largest samples (from 10 samples it is the
maximum), so it is shown marked, not as a percentile.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

TAIL_SAMPLES = 5
"""Samples at or beyond a percentile needed for it to be shown as that percentile."""

MIN_SAMPLES = 10
"""Fewest measured samples behind a headline figure (a median) for it to be valid."""

MAX_ERROR_RATE = 0.01
"""Highest failed / measured share of a valid result (and of the level capacity comes from)."""


class Validity(BaseModel):
    """The verdict on one case or load level: valid, or not and why (one line per reason)."""

    model_config = ConfigDict(extra="forbid")

    valid: bool = True
    reasons: list[str] = Field([], description="why the result is invalid, one line each")


def min_samples(pct: float) -> int:
    """Fewest samples that support the ``pct`` percentile (``95``, ``99.9``)."""
    return math.ceil(TAIL_SAMPLES / (1 - pct / 100) - 1e-9)


def supported(pct: float | str, n: int | None) -> bool:
    """Whether ``n`` samples support the ``pct`` percentile (``"99_9"`` and ``"99.9"`` read too)."""
    value = float(str(pct).lstrip("p").replace("_", "."))
    return n is not None and n >= min_samples(value)


def verdict(reasons: list[str]) -> Validity:
    """A :class:`Validity` from the reasons found (none: valid)."""
    return Validity(valid=not reasons, reasons=list(reasons))


class Case(Protocol):
    """What :func:`case_validity` reads of a :class:`voxbench.results.document.Case` (a protocol,
    not an import: document imports this module, and results/ stays free of cycles)."""

    @property
    def samples(self) -> Any: ...  # .latency_ms, .audio_seconds: lists of floats
    @property
    def latency_ms(self) -> Any: ...  # a Summary (.n) or None
    @property
    def errors(self) -> Any: ...  # ErrorRecords (.phase, .type)
    @property
    def iterations(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def device_actual(self) -> str | None: ...
    @property
    def device_fallback(self) -> bool: ...
    @property
    def output_text(self) -> str | None: ...


def case_validity(case: Case) -> Validity:
    """The verdict on one single-request or micro case, from what the case holds.

    Invalid, each with its reason, when:

    - it produced nothing: no measured call succeeded, or every measured call returned 0 s of
      audio (and no text);
    - fewer than :data:`MIN_SAMPLES` measured samples back its median;
    - more than :data:`MAX_ERROR_RATE` of its measured calls failed (failed / attempted, where
      attempted = succeeded + failed measured calls);
    - it was cut short: fewer measured calls were attempted than the case's ``iterations`` (a
      timeout or a dead worker ended it);
    - it ran on another device than the one asked for (``device_fallback``).

    Errors of the load, cold and warm-up phases alone do not invalidate a case: those calls are
    outside the measured figures by design (they are listed with the case all the same).
    """
    reasons: list[str] = []
    n = len(case.samples.latency_ms) or (case.latency_ms.n if case.latency_ms else 0)
    failed = sum(e.phase == "measure" for e in case.errors)
    attempted = n + failed
    if n == 0:
        reasons.append("produced nothing: no measured call succeeded")
    elif _no_output(case):
        reasons.append("produced nothing: every measured call returned 0 s of audio")
    if 0 < n < MIN_SAMPLES:
        reasons.append(f"{n} measured samples, fewer than {MIN_SAMPLES}")
    if attempted and failed / attempted > MAX_ERROR_RATE:
        reasons.append(
            f"{failed} of {attempted} measured calls failed ({failed / attempted:.0%}, "
            f"above {MAX_ERROR_RATE:.0%})"
        )
    if 0 < attempted < case.iterations:
        fatal = next((e for e in case.errors if e.phase == "case"), None)
        why = f": {fatal.type}" if fatal else ""
        reasons.append(f"cut short: {attempted} of {case.iterations} measured calls ran{why}")
    if case.device_fallback:
        reasons.append(f"asked for {case.device}, ran on {case.device_actual or 'another device'}")
    return verdict(reasons)


def _no_output(case: Case) -> bool:
    audio = case.samples.audio_seconds
    return bool(audio) and not any(audio) and not case.output_text
