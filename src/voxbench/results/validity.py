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
