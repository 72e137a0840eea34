"""A metric over time (commits, dates) from the store, with change points marked.

Change points: **binary segmentation with an L1 cost** on the per-run values (each already a
median over that run's iterations), then a **minimum relative shift**:

1. Split the series where the sum of absolute deviations from the segments' medians drops most;
   keep the split when the drop exceeds a penalty ``gamma = 2 * sigma * ln(n)`` (``sigma``: a
   robust noise scale, 1.4826 x the median absolute difference of consecutive values / sqrt(2));
   recurse into both halves. Segments hold at least ``min_size`` runs (2), so one outlier run is
   never a step of its own.
2. Remove, smallest first, every change point whose neighbouring segments' medians differ by
   less than ``min_shift`` (5%) relative to the earlier one.

This fits the same model as asv's step detection (``asv/step_detect.py``: piecewise-constant
signal plus noise, L1 cost plus a penalty per segment, after Friedrich et al. 2008, "Complexity
penalized M-estimation"), solved greedily instead of exactly; the relative-shift filter plays the
part of asv's regression threshold. A step in the last run alone is reported once a second run
confirms it.

Series: one per case id, machine (environment ``machine_id``) and executor mode (``Case.mode``,
worker or in-process), so runs of one case on two machines, or in two modes, are never one series
(a difference between machines would read as a change point). ``all_machines`` / ``all_modes``
merge them on request.

The plot: a Unicode sparkline in the terminal; the SVG (``voxbench history --svg``) is drawn by
matplotlib in ``voxbench.report.plots.history_plot``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError
from voxbench.results.store import METRICS

if TYPE_CHECKING:
    from voxbench.results.store.core import SeriesPoint, Store

SPARK = "▁▂▃▄▅▆▇█"


def _l1(x: Any) -> float:
    import numpy as np

    return float(np.abs(x - np.median(x)).sum()) if len(x) else 0.0


def noise_scale(values: list[float]) -> float:
    """Robust noise scale of a series: 1.4826 x median |consecutive difference| / sqrt(2)
    (steps affect few differences, so they barely move it)."""
    import numpy as np

    if len(values) < 3:
        return 0.0
    d = np.abs(np.diff(np.asarray(values, dtype=float)))
    return float(1.4826 * np.median(d) / math.sqrt(2))


def _refine(x: Any, cuts: list[int], min_size: int, passes: int = 3) -> list[int]:
    """Move each cut to the best place between its neighbours (greedy splits found with the
    whole series in view can land one run off when a later step pulls a segment's median)."""
    cuts = list(cuts)
    for _ in range(passes):
        moved = False
        for i in range(len(cuts)):
            lo = (cuts[i - 1] if i else 0) + min_size
            hi = (cuts[i + 1] if i + 1 < len(cuts) else len(x)) - min_size
            a, b = lo - min_size, hi + min_size
            best = min(range(lo, hi + 1), key=lambda k: _l1(x[a:k]) + _l1(x[k:b]))
            if best != cuts[i]:
                cuts[i], moved = best, True
        if not moved:
            break
    return cuts


def detect_changes(values: list[float], *, min_shift: float = 0.05, min_size: int = 2) -> list[int]:
    """Indices where a new level starts (see the module docstring for the method)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2 * min_size:
        return []
    sigma = noise_scale(values) or 1e-9 * max(abs(float(np.median(x))), 1e-12)
    gamma = 2 * sigma * math.log(n)
    cuts: list[int] = []
    stack = [(0, n)]
    while stack:
        a, b = stack.pop()
        if b - a < 2 * min_size:
            continue
        seg = x[a:b]
        total = _l1(seg)
        best_k, best_gain = 0, 0.0
        for k in range(min_size, len(seg) - min_size + 1):
            gain = total - _l1(seg[:k]) - _l1(seg[k:])
            if gain > best_gain:
                best_k, best_gain = k, gain
        if best_k and best_gain > gamma:
            cuts.append(a + best_k)
            stack += [(a, a + best_k), (a + best_k, b)]
    cuts.sort()
    cuts = _refine(x, cuts, min_size)
    while cuts:  # drop the smallest shift below min_shift, then look again
        bounds = [0, *cuts, n]
        meds = [float(np.median(x[bounds[i] : bounds[i + 1]])) for i in range(len(bounds) - 1)]
        shifts = [
            abs(meds[i + 1] - meds[i]) / abs(meds[i]) if meds[i] else math.inf
            for i in range(len(cuts))
        ]
        smallest = min(range(len(cuts)), key=lambda i: shifts[i])
        if shifts[smallest] >= min_shift:
            break
        del cuts[smallest]
    return cuts


def sparkline(values: list[float], marks: set[int] | frozenset[int] = frozenset()) -> str:
    """Values as block characters, lowest ``▁`` to highest ``█``; ``marks`` are preceded by ``|``."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo
    out = []
    for i, v in enumerate(values):
        level = 0 if span == 0 else round((v - lo) / span * (len(SPARK) - 1))
        out.append(("|" if i in marks else "") + SPARK[level])
    return "".join(out)


@dataclass
class CaseHistory:
    """One case's series and its change points."""

    case_id: str
    engine: str
    workload: str
    points: list[dict[str, Any]]
    change_points: list[dict[str, Any]] = field(default_factory=list)
    machine_id: str | None = None  # None: the series mixes machines (all_machines)
    mode: str | None = None  # None: the series mixes executor modes (all_modes)

    @property
    def label(self) -> str:
        """The case id, with the machine and mode the series is of."""
        parts = [p for p in (self.machine_id, self.mode) if p]
        return f"{self.case_id} [{', '.join(parts)}]" if parts else self.case_id

    @property
    def values(self) -> list[float]:
        return [p["value"] for p in self.points]


@dataclass
class History:
    """Everything ``voxbench history`` shows."""

    engine: str
    metric: str
    unit: str
    min_shift: float
    cases: list[CaseHistory]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_history(
    store: Store,
    engine: str,
    *,
    metric: str = "latency_ms",
    workload: str | None = None,
    case_id: str | None = None,
    machine: str | None = None,
    since: str | None = None,
    min_shift: float = 0.05,
    all_machines: bool = False,
    all_modes: bool = False,
) -> History:
    """Read the series from the store and mark change points per series: one per case id,
    machine and executor mode, unless ``all_machines`` / ``all_modes`` merge them."""
    series = store.case_series(
        engine, metric=metric, workload=workload, case_id=case_id, machine=machine, since=since
    )
    if not series:
        what = f"engine {engine!r}" + (f", workload {workload!r}" if workload else "")
        what += f", case {case_id!r}" if case_id else ""
        raise ConfigError(f"no {metric} history for {what} in the store {store.url}")
    by_case: dict[tuple[str, str | None, str | None], list[SeriesPoint]] = {}
    for p in series:
        key = (p.case_id, None if all_machines else p.machine_id, None if all_modes else p.mode)
        by_case.setdefault(key, []).append(p)
    cases = []
    for (cid, machine_id, mode), pts in by_case.items():
        ch = CaseHistory(
            case_id=cid,
            engine=pts[0].engine,
            workload=pts[0].workload,
            machine_id=machine_id,
            mode=mode,
            points=[
                {
                    "run_id": p.run_id,
                    "created_at": p.created_at,
                    "git_commit": p.git_commit,
                    "machine_id": p.machine_id,
                    "mode": p.mode,
                    "value": p.value,
                    "ci_low": p.ci_low,
                    "ci_high": p.ci_high,
                    "n": p.n,
                }
                for p in pts
            ],
        )
        values = ch.values
        cuts = detect_changes(values, min_shift=min_shift)
        bounds = [0, *cuts, len(values)]
        import numpy as np

        meds = [float(np.median(values[bounds[i] : bounds[i + 1]])) for i in range(len(bounds) - 1)]
        for i, cut in enumerate(cuts):
            ch.change_points.append(
                {
                    "index": cut,
                    "run_id": ch.points[cut]["run_id"],
                    "git_commit": ch.points[cut]["git_commit"],
                    "created_at": ch.points[cut]["created_at"],
                    "before": meds[i],
                    "after": meds[i + 1],
                    "change": meds[i + 1] / meds[i] - 1 if meds[i] else None,
                }
            )
        cases.append(ch)
    unit = METRICS[metric].unit
    return History(engine, metric, unit, min_shift, cases)


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def rich_tables(hist: History, last: int | None = None) -> list[Any]:
    """One rich Table per case: date, commit, machine, run, value (CI), change marks."""
    from rich.table import Table

    out = []
    for ch in hist.cases:
        marks = {c["index"]: c for c in ch.change_points}
        title = f"{ch.label} · {hist.metric}" + (f" ({hist.unit})" if hist.unit else "")
        table = Table(title=title, caption=sparkline(ch.values, set(marks)))
        for col in ("date", "commit", "machine", "run", hist.metric, "95% CI", "change point"):
            table.add_column(col, justify="right" if col == hist.metric else "left")
        start = max(0, len(ch.points) - last) if last else 0
        for i, p in enumerate(ch.points[start:], start):
            ci = f"{_fmt(p['ci_low'])} … {_fmt(p['ci_high'])}" if p["ci_low"] is not None else ""
            cp = marks.get(i)
            mark = ""
            if cp is not None and cp["change"] is not None:
                colour = "red" if (cp["change"] > 0) != _higher_is_better(hist.metric) else "green"
                arrow = "▲" if cp["change"] > 0 else "▼"
                mark = f"[{colour}]{arrow} {cp['change'] * 100:+.1f}%[/]"
            table.add_row(
                p["created_at"][:19].replace("T", " "),
                (p["git_commit"] or "")[:10],
                p["machine_id"],
                p["run_id"],
                _fmt(p["value"]),
                ci,
                mark,
            )
        out.append(table)
    return out


def _higher_is_better(metric: str) -> bool:
    return METRICS[metric].higher_is_better
