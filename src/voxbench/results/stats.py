"""Summaries of raw samples: order statistics and a bootstrap confidence interval of the median.

Percentiles use linear interpolation between order statistics (numpy's default, "type 7" in
Hyndman & Fan 1996). The 95% interval of the median is a percentile bootstrap
(``scipy.stats.bootstrap``, 2,000 resamples, fixed seed so re-rendering a document is repeatable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy.typing as npt

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261123


def median_ci95(values: Sequence[float] | npt.ArrayLike) -> tuple[float, float] | None:
    """Percentile-bootstrap 95% confidence interval of the median, or None for fewer than 2 values."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    if np.all(data == data[0]):
        return (float(data[0]), float(data[0]))
    from scipy import stats

    res = stats.bootstrap(
        (data,),
        np.median,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=0.95,
        method="percentile",
        vectorized=True,
        axis=-1,
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def summarize(values: Sequence[float], *, ci: bool = True) -> dict[str, Any] | None:
    """min, median, mean, p50/p90/p95/p99, max, stdev (sample, n-1) and the median's 95% CI."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return None
    p50, p90, p95, p99 = np.percentile(data, [50, 90, 95, 99])
    return {
        "n": int(data.size),
        "min": float(data.min()),
        "median": float(p50),
        "mean": float(data.mean()),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(data.max()),
        "stdev": float(data.std(ddof=1)) if data.size > 1 else 0.0,
        "ci95": median_ci95(data) if ci else None,
    }
