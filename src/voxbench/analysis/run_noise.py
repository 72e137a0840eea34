"""Between-run noise for ``voxbench compare``: how much a case's per-run median moves between runs
of one configuration on one machine, from the store, and how it widens a within-run interval.

The bootstrap interval of a comparison sees only the noise within each run. The spread of the
stored run medians holds the drift between runs *and* each run's sampling noise of its median;
the second is already in the bootstrap interval, so :func:`widen` takes it out before adding the
first (docs/methodology.md, "Between-run noise"):

1. the runs: the newest :data:`NOISE_RUNS` stored runs of the case id on the base's machine in the
   same executor mode, the candidate left out, and of those the runs since their last change
   point (:func:`voxbench.analysis.history.detect_changes`) when at least :data:`MIN_NOISE_RUNS`
   follow it;
2. the spread ``s`` of their log medians, robust (:func:`run_noise`);
3. ``sigma_between^2 = max(0, s^2 - w^2)``, ``w`` one run's sampling noise of its log median read
   off the comparison's own interval; each half width becomes
   ``sqrt(h^2 + (t * sqrt(2) * sigma_between)^2)``, ``t`` Student's t on runs - 1 degrees of
   freedom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voxbench.results.metrics import BY_NAME

if TYPE_CHECKING:
    from voxbench.results.document import ResultDocument
    from voxbench.results.store.core import Store


@dataclass(frozen=True)
class RunNoise:
    """How much one case's per-run median moves between runs of the same configuration on the
    same machine: a robust standard deviation of log(run median) (:func:`run_noise`), from
    ``runs`` stored runs. It includes each run's own sampling noise of its median, which
    :func:`widen` takes out again."""

    sigma: float
    runs: int


MIN_NOISE_RUNS = 3
NOISE_RUNS = 20
MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normal data


def run_noise(values: list[float]) -> RunNoise | None:
    """Between-run noise from per-run medians, oldest first, over the runs since the last change
    point (:func:`~voxbench.analysis.history.detect_changes`) when at least
    :data:`MIN_NOISE_RUNS` runs follow it, else over all: on the logarithms, the larger of
    1.4826 x the median absolute deviation and the standard deviation without the one run farthest
    from the median. Robust on purpose: one earlier regressed run, or a step the store has seen,
    must not widen the interval so far that the next regression passes as unchanged; the trimmed
    standard deviation keeps the heavy tails of a bursty machine's runs, which MAD alone would
    drop. None for fewer than :data:`MIN_NOISE_RUNS` runs."""
    import numpy as np

    from voxbench.analysis.history import detect_changes

    kept = [x for x in values if x > 0]
    cuts = detect_changes(kept)
    if cuts and len(kept) - cuts[-1] >= MIN_NOISE_RUNS:
        kept = kept[cuts[-1] :]
    v = np.log(np.asarray(kept, dtype=float))
    if v.size < MIN_NOISE_RUNS:
        return None
    dev = np.abs(v - np.median(v))
    trimmed = float(np.std(np.delete(v, int(np.argmax(dev))), ddof=1))
    return RunNoise(max(MAD_SCALE * float(np.median(dev)), trimmed), int(v.size))


def widen(
    ratio: float, lo: float, hi: float, noise: RunNoise, confidence: float
) -> tuple[float, float]:
    """Add between-run noise to a within-run interval of a ratio, on the log scale.

    ``noise.sigma`` is the spread of stored run medians, which already holds each run's sampling
    noise of its median; that part is in the bootstrap interval, so it is taken out:
    ``w^2 = (h / z)^2 / 2`` per run (``h``: the mean half width, ``z`` the normal quantile) and
    ``sigma_between^2 = max(0, sigma^2 - w^2)``. Each half width then becomes
    ``sqrt(half^2 + (t * sqrt(2) * sigma_between)^2)``, with ``t`` Student's t quantile on
    ``noise.runs - 1`` degrees of freedom (both runs drift, hence sqrt 2)."""
    from statistics import NormalDist

    from scipy import stats

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    t = float(stats.t.ppf(0.5 + confidence / 2, max(noise.runs - 1, 1)))
    lr = math.log(ratio)
    half_down, half_up = lr - math.log(lo), math.log(hi) - lr
    within = ((half_down + half_up) / 2 / z) ** 2 / 2
    between = math.sqrt(max(0.0, noise.sigma**2 - within))
    extra = t * math.sqrt(2) * between
    return math.exp(lr - math.hypot(half_down, extra)), math.exp(lr + math.hypot(half_up, extra))


def noise_from_store(
    store: Store, base: ResultDocument, exclude: set[str], metrics: tuple[str, ...]
) -> dict[tuple[str, str], RunNoise]:
    """Between-run noise of each of the base's cases, from the newest :data:`NOISE_RUNS` stored
    runs of the same case id on the same machine in the same executor mode (runs in ``exclude``
    left out: the candidate), by :func:`run_noise` (robust, since the last change point)."""
    out: dict[tuple[str, str], RunNoise] = {}
    machine = base.environment.machine_id
    for c in base.cases:
        for metric in metrics:
            spec = BY_NAME.get(metric)
            if spec is None or not (spec.gated and spec.column):
                continue  # no interval to widen, or no series of it in the store
            series = store.case_series(c.engine, metric=metric, case_id=c.id, machine=machine)
            values = [
                p.value
                for p in series
                if p.run_id not in exclude and (p.mode is None or p.mode == c.mode)
            ][-NOISE_RUNS:]
            found = run_noise(values)
            if found is not None:
                out[(c.id, metric)] = found
    return out
