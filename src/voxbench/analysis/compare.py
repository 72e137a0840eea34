"""Compare two runs case by case: the change of each metric with a confidence interval from the
raw samples, and a noise-aware verdict (improved / regressed / unchanged).

The rule (docs/methodology.md, "Comparing two runs"): for a metric where lower is better, with
``r`` = median(candidate) / median(base) and a 95% percentile-bootstrap confidence interval
``[lo, hi]`` of ``r`` (base and candidate resampled independently, ``scipy.stats.bootstrap``,
seeded), the case **regressed** when ``lo - 1 > threshold`` (the whole interval lies beyond the
threshold), **improved** when ``hi - 1 < -threshold``, and is **unchanged** otherwise (where
higher is better, tokens/s, the other way round: ``hi - 1 < -threshold`` regressed). A
Mann-Whitney U p-value is reported beside it, for information. Without raw samples on both sides
(n < 2) the point estimate is compared with the threshold instead, and the row says so (no CI).
Memory and cold start are single numbers: reported as plain deltas, never a verdict. A case whose
candidate has errors where the base had none regressed.

Between-run noise: the bootstrap sees only the noise within each run. Given :class:`RunNoise` for a
case (a robust spread of the logarithms of its stored run medians since their last change point,
:func:`run_noise`, :func:`noise_from_store`), the part of that spread the bootstrap already covers (the
sampling noise of one run's median) is taken out, and what is left, the drift between runs, widens
the interval on the log scale by ``t * sqrt(2) * sigma_between`` in quadrature (``t``: Student's t
quantile with runs - 1 degrees of freedom), so drift of the machine between two runs is not taken
for a change of the code, nor counted twice.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from voxbench.analysis.run_noise import RunNoise as RunNoise
from voxbench.analysis.run_noise import noise_from_store as noise_from_store
from voxbench.analysis.run_noise import run_noise as run_noise
from voxbench.analysis.run_noise import widen
from voxbench.errors import ConfigError
from voxbench.results.keys import case_key, keyed_levels
from voxbench.results.metrics import BY_NAME, CATALOGUE, Metric

if TYPE_CHECKING:
    from rich.table import Table

    from voxbench.results.document import Case, LoadLevel, ResultDocument
    from voxbench.results.validity import Validity

Verdict = Literal["improved", "regressed", "unchanged", "info"]
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 20261123

METRICS: dict[str, Metric] = {m.name: m for m in CATALOGUE if m.compare}
"""The metrics compare reads (catalogue entries with ``compare`` set), by name; the gated ones
get a verdict, the others a plain delta."""
DEFAULT_METRICS = tuple(METRICS)
# a load level is compared on the figures it keeps raw per-request samples of (latency, ttfa):
# its other distributions are summaries without samples, stored but never gated
_LEVEL_METRICS = tuple(m for m in METRICS.values() if m.level_samples)
_ERRORS = BY_NAME["errors"]


def parse_threshold(text: str) -> float:
    """``5%``, ``5`` (percent) or ``0.05`` (fraction) -> 0.05."""
    raw = text.strip()
    try:
        value = float(raw.rstrip("%"))
    except ValueError:
        raise ConfigError(f"bad --threshold {text!r}: use e.g. 5% or 0.05") from None
    if raw.endswith("%") or value >= 1:
        value /= 100
    if not 0 <= value < 1:
        raise ConfigError(f"bad --threshold {text!r}: must be between 0% and 100%")
    return value


@dataclass
class Unit:
    """What one side knows about one case: raw samples and single figures by metric."""

    label: str
    samples: dict[str, list[float]] = field(default_factory=dict)
    points: dict[str, float | None] = field(default_factory=dict)
    errors: int = 0
    validity: Validity | None = None  # None: not judged (documents from before validity)
    scopes: dict[str, str | None] = field(default_factory=dict)  # whose memory a figure is


@dataclass
class MetricChange:
    """One metric of one matched case. ``change``, ``ci_low`` and ``ci_high`` are relative
    (candidate / base - 1); ``delta`` is candidate - base in the metric's unit."""

    metric: str
    unit: str
    base: float | None
    candidate: float | None
    delta: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_base: int
    n_candidate: int
    verdict: Verdict
    noisy: bool = False  # unchanged, but the CI reaches past the threshold: more iterations
    run_noise: float | None = None  # between-run noise (log-scale sd) the interval includes
    run_noise_runs: int = 0  # stored runs it was estimated from


@dataclass
class CaseChange:
    """A case present in both runs, with its metrics."""

    key: str
    base_case: str
    candidate_case: str
    metrics: list[MetricChange]
    not_compared: list[str] = field(default_factory=list)  # "metric: why", e.g. other scopes

    @property
    def verdict(self) -> Verdict:
        found = {m.verdict for m in self.metrics}
        worst_first: tuple[Verdict, ...] = ("regressed", "improved", "unchanged")
        return next((v for v in worst_first if v in found), "info")


@dataclass
class RunRef:
    """Which run a side is."""

    run_id: str
    label: str
    machine_id: str
    git_commit: str | None
    created_at: str
    scenario: str


@dataclass
class InvalidCase:
    """A case (or load level) in both runs that is invalid on one side or both: not compared,
    never regressed nor unchanged; the reasons are each side's :class:`Validity` reasons."""

    key: str
    base_reasons: list[str]
    candidate_reasons: list[str]

    def text(self) -> str:
        sides = [("base", self.base_reasons), ("candidate", self.candidate_reasons)]
        return "; ".join(f"{side}: {', '.join(r)}" for side, r in sides if r)


EXIT_REGRESSED = 1
EXIT_INVALID = 3
"""Nothing valid regressed, but some matched case or level is invalid: the gate cannot decide."""


@dataclass
class Comparison:
    """The whole comparison; :meth:`exit_status` is the command's exit status."""

    base: RunRef
    candidate: RunRef
    threshold: float
    confidence: float
    cases: list[CaseChange]
    only_base: list[str]
    only_candidate: list[str]
    invalid: list[InvalidCase] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        """A valid case regressed (invalid cases are never compared, so never regressed)."""
        return any(c.verdict == "regressed" for c in self.cases)

    def exit_status(self) -> int:
        """1 when a valid case regressed (a regression is decisive whatever else is invalid); 3
        when none did but a matched case or level is invalid on either side (the gate cannot
        decide: rerun with more iterations, or fix the errors); 0 otherwise."""
        if self.regressed:
            return EXIT_REGRESSED
        return EXIT_INVALID if self.invalid else 0

    def counts(self) -> dict[str, int]:
        out = {"regressed": 0, "improved": 0, "unchanged": 0}
        for c in self.cases:
            if c.verdict in out:
                out[c.verdict] += 1
        out["noisy_metrics"] = sum(m.noisy for c in self.cases for m in c.metrics)
        out["only_base"] = len(self.only_base)
        out["only_candidate"] = len(self.only_candidate)
        out["invalid"] = len(self.invalid)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for case, obj in zip(data["cases"], self.cases, strict=True):
            case["verdict"] = obj.verdict
        data["counts"] = self.counts()
        data["regressed"] = self.regressed
        data["exit_status"] = self.exit_status()
        return data


def _case_unit(c: Case) -> Unit:
    return Unit(
        label=c.id,
        samples={m.name: m.samples_of_case(c) for m in METRICS.values()},
        points={m.name: m.of_case(c) for m in METRICS.values()},
        errors=int(_ERRORS.of_case(c) or 0),
        validity=c.validity,
        scopes={"peak_rss_mb": c.peak_rss_scope},
    )


def _level_unit(key: str, lv: LoadLevel) -> Unit:
    return Unit(
        label=key,
        samples={m.name: m.samples_of_level(lv) for m in _LEVEL_METRICS},
        points={m.name: m.of_level(lv) for m in _LEVEL_METRICS},
        errors=int(_ERRORS.of_level(lv) or 0),
        validity=lv.validity,
    )


def units(doc: ResultDocument, ignore: frozenset[str] = frozenset()) -> dict[str, Unit]:
    """Everything comparable in a document, by key (:func:`~voxbench.results.keys.case_key`):
    its cases, or a load run's levels (key ``load/<workload>/<level>``, samples from each level's
    raw per-request figures)."""
    out: dict[str, Unit] = {}
    for c in doc.cases:
        out.setdefault(case_key(c, ignore), _case_unit(c))
    for key, lv in keyed_levels(doc.load):
        out.setdefault(key, _level_unit(key, lv))
    return out


def ratio_ci(
    base: list[float], cand: list[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """Ratio of medians (candidate / base) and its percentile-bootstrap confidence interval,
    base and candidate resampled independently (seeded: the same inputs give the same answer)."""
    import numpy as np
    from scipy import stats

    b = np.asarray(base, dtype=float)
    c = np.asarray(cand, dtype=float)
    ratio = float(np.median(c) / np.median(b))
    if np.all(b == b[0]) and np.all(c == c[0]):
        return ratio, ratio, ratio

    def statistic(x: Any, y: Any, axis: int = -1) -> Any:
        return np.median(y, axis=axis) / np.median(x, axis=axis)

    res = stats.bootstrap(
        (b, c),
        statistic,
        n_resamples=RESAMPLES,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        paired=False,
        axis=-1,
        rng=np.random.default_rng(SEED),
    )
    return ratio, float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mann_whitney(base: list[float], cand: list[float]) -> float | None:
    from scipy import stats

    if len(set(base) | set(cand)) < 2:
        return 1.0
    return float(stats.mannwhitneyu(base, cand, alternative="two-sided").pvalue)


def _verdict(lo: float, hi: float, threshold: float, higher_is_better: bool = False) -> Verdict:
    """The verdict of a relative change interval ``[lo, hi]``; a drop of a higher-is-better
    metric (tokens/s) is the regression."""
    if higher_is_better:
        lo, hi = -hi, -lo
    if lo > threshold:
        return "regressed"
    if hi < -threshold:
        return "improved"
    return "unchanged"


def compare_metric(
    metric: str,
    b: Unit,
    c: Unit,
    threshold: float,
    confidence: float = CONFIDENCE,
    noise: RunNoise | None = None,
) -> MetricChange | None:
    """One metric of one matched case, or None when neither side has it. ``noise`` (between-run
    noise of the base's configuration, from the store) widens the interval."""
    unit, gated = METRICS[metric].unit, METRICS[metric].gated
    higher = METRICS[metric].higher_is_better
    if metric == "errors":
        verdict: Verdict = "unchanged"
        if b.errors == 0 and c.errors > 0:
            verdict = "regressed"
        elif b.errors > 0 and c.errors == 0:
            verdict = "improved"
        if not b.errors and not c.errors:
            return None
        return MetricChange(
            metric, unit, b.errors, c.errors, c.errors - b.errors, None, None, None, None,
            0, 0, verdict,
        )  # fmt: skip
    bs, cs = b.samples.get(metric) or [], c.samples.get(metric) or []
    bv, cv = b.points.get(metric), c.points.get(metric)
    if len(bs) >= 2 and len(cs) >= 2 and gated:
        import numpy as np

        bm, cm = float(np.median(bs)), float(np.median(cs))
        if bm <= 0:
            return None
        ratio, lo, hi = ratio_ci(bs, cs, confidence)
        if noise is not None and ratio > 0 and lo > 0:
            lo, hi = widen(ratio, lo, hi, noise, confidence)
        change, low, high = ratio - 1, lo - 1, hi - 1
        verdict = _verdict(low, high, threshold, higher)
        noisy = verdict == "unchanged" and (low < -threshold or high > threshold)
        return MetricChange(
            metric, unit, bm, cm, cm - bm, change, low, high, _mann_whitney(bs, cs),
            len(bs), len(cs), verdict, noisy, noise.sigma if noise else None,
            noise.runs if noise else 0,
        )  # fmt: skip
    if bv is None or cv is None:
        return None
    rel = cv / bv - 1 if bv else None
    verdict = "info"
    if gated and rel is not None:
        verdict = _verdict(rel, rel, threshold, higher)
    return MetricChange(
        metric, unit, bv, cv, cv - bv, rel, None, None, None, len(bs), len(cs), verdict
    )


def compare(
    base: ResultDocument,
    candidate: ResultDocument,
    *,
    threshold: float = 0.05,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    ignore_params: frozenset[str] = frozenset(),
    confidence: float = CONFIDENCE,
    labels: tuple[str, str] | None = None,
    noise: dict[tuple[str, str], RunNoise] | None = None,
) -> Comparison:
    """Match the two runs' cases by :func:`case_key` and compare every metric of each pair.
    ``ignore_params`` leaves parameters out of the key, to compare two settings of one engine.
    ``noise`` maps (base case id, metric) to its between-run noise (:func:`noise_from_store`)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}: choose from {', '.join(METRICS)}")
    bu, cu = units(base, ignore_params), units(candidate, ignore_params)
    if not bu and not cu:
        raise ConfigError("neither run has cases to compare")
    cases, invalid = [], []
    for key, b in bu.items():
        c = cu.get(key)
        if c is None:
            continue
        if _invalid(b) or _invalid(c):
            invalid.append(InvalidCase(key, _reasons(b), _reasons(c)))
            continue
        chosen = [m for m in metrics if not _other_scopes(m, b, c)]
        found = [
            compare_metric(m, b, c, threshold, confidence, (noise or {}).get((b.label, m)))
            for m in chosen
        ]
        skipped = [f"{m}: {_other_scopes(m, b, c)}" for m in metrics if m not in chosen]
        cases.append(
            CaseChange(key, b.label, c.label, [m for m in found if m is not None], skipped)
        )

    if not cases and not invalid:
        raise ConfigError(
            f"the runs have no case in common (base: {', '.join(list(bu)[:3]) or 'none'}; "
            f"candidate: {', '.join(list(cu)[:3]) or 'none'}); --ignore-param NAME matches "
            "cases that differ only in that parameter"
        )

    def ref(doc: ResultDocument, label: str) -> RunRef:
        env = doc.environment
        return RunRef(
            doc.run_id, label, env.machine_id, env.git_commit, doc.created_at, doc.scenario
        )

    names = labels or (base.run_id, candidate.run_id)
    return Comparison(
        base=ref(base, names[0]),
        candidate=ref(candidate, names[1]),
        threshold=threshold,
        confidence=confidence,
        cases=cases,
        only_base=[k for k in bu if k not in cu],
        only_candidate=[k for k in cu if k not in bu],
        invalid=invalid,
    )


def _invalid(u: Unit) -> bool:
    return u.validity is not None and not u.validity.valid


def _reasons(u: Unit) -> list[str]:
    return list(u.validity.reasons) if _invalid(u) and u.validity else []


def _other_scopes(metric: str, b: Unit, c: Unit) -> str:
    """Why a memory figure is not compared: the two sides measured different things (a worker's
    peak RSS against voxbench's whole process in-process); empty when comparable."""
    sb, sc = b.scopes.get(metric), c.scopes.get(metric)
    if sb and sc and sb != sc:
        return f"not compared, {sb} memory against {sc} memory"
    return ""


# -- formatting -------------------------------------------------------------------------------


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        text = str(value)
    elif abs(value) >= 100:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.4g}"
    return f"{text} {unit}".strip()


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


def _ci(m: MetricChange) -> str:
    if m.ci_low is None or m.ci_high is None:
        return "–"
    return f"{_pct(m.ci_low)} … {_pct(m.ci_high)}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _verdict_text(m: MetricChange) -> str:
    return f"{m.verdict} (noisy)" if m.noisy else m.verdict


def _noise_note(cmp: Comparison) -> str:
    notes = []
    widened = [m for c in cmp.cases for m in c.metrics if m.run_noise is not None]
    if widened:
        runs = sorted({m.run_noise_runs for m in widened})
        sig = sorted(m.run_noise for m in widened if m.run_noise is not None)
        notes.append(
            f"{len(widened)} interval(s) include between-run noise estimated from "
            f"{runs[0]}–{runs[-1]} stored runs of the same case on {cmp.base.machine_id} "
            f"(sd {sig[0] * 100:.1f}–{sig[-1] * 100:.1f}% per run)."
        )
    elif any(m.ci_low is not None for c in cmp.cases for m in c.metrics):
        notes.append(
            "Intervals cover the noise within each run only: with fewer than 3 stored runs of a "
            "case on this machine, drift between runs is not in them."
        )
    n = cmp.counts()["noisy_metrics"]
    if n:
        notes.append(
            f"{n} unchanged row(s) marked noisy: the interval reaches past "
            f"±{cmp.threshold * 100:g}%, so a change of that size cannot be ruled out; more "
            "iterations (-n) or quieter runs narrow it."
        )
    return " ".join(notes)


def _change(m: MetricChange) -> str:
    if m.metric == "errors":
        return f"{int(m.delta or 0):+d}"
    if METRICS[m.metric].gated:
        return _pct(m.change)
    return "–" if m.delta is None else f"{m.delta:+.1f} {m.unit}".strip()


_ORDER = {"regressed": 0, "improved": 1, "unchanged": 2, "info": 3}


def rows(cmp: Comparison) -> list[tuple[str, MetricChange]]:
    """(case key, metric) rows, regressions first."""
    out = [(c.key, m) for c in cmp.cases for m in c.metrics]
    return sorted(out, key=lambda r: _ORDER[r[1].verdict])


def _run_line(r: RunRef) -> str:
    commit = f", commit {r.git_commit[:10]}" if r.git_commit else ""
    return f"`{r.run_id}` ({r.machine_id}{commit}, {r.created_at})"


def markdown(cmp: Comparison) -> str:
    """A pull-request comment: summary line, one table, the cases only on one side."""
    n = cmp.counts()
    mark = "❌" if cmp.regressed else "⚠️" if cmp.invalid else "✅"
    lines = [
        "### voxbench compare",
        "",
        f"- base: {_run_line(cmp.base)}",
        f"- candidate: {_run_line(cmp.candidate)}",
        "",
        f"{mark} **{n['regressed']} regressed**, {n['improved']} improved, "
        f"{n['unchanged']} unchanged{_invalid_count(cmp)} (threshold {cmp.threshold * 100:g}%, "
        f"{cmp.confidence * 100:g}% bootstrap CI of the ratio of medians)",
        "",
        "| case | metric | base | candidate | change | 95% CI | p (M-W) | verdict |",
        "|---|---|---:|---:|---:|---|---:|---|",
    ]
    lines += [f"| `{i.key}` | – | – | – | – | – | – | **{INVALID}** |" for i in cmp.invalid]
    for key, m in rows(cmp):
        verdict = f"**{m.verdict}**" if m.verdict == "regressed" else _verdict_text(m)
        lines.append(
            f"| `{key}` | {m.metric} | {_num(m.base, m.unit)} | {_num(m.candidate, m.unit)} | "
            f"{_change(m)} | {_ci(m)} | {_p(m.p_value)} | {verdict} |"
        )
    if _noise_note(cmp):
        lines += ["", _noise_note(cmp)]
    if cmp.invalid:
        lines += ["", f"**Invalid, not compared** ({len(cmp.invalid)}; exit status 3 unless a "
                  "valid case regressed):", ""]  # fmt: skip
        lines += [f"- `{i.key}`: {i.text()}" for i in cmp.invalid]
    skipped = [(c.key, why) for c in cmp.cases for why in c.not_compared]
    if skipped:
        lines += ["", "**Not compared:**", ""]
        lines += [f"- `{key}` {why}" for key, why in skipped]
    for title, keys in (("Only in base", cmp.only_base), ("Only in candidate", cmp.only_candidate)):
        if keys:
            lines += ["", f"**{title}** ({len(keys)}):", ""]
            lines += [f"- `{k}`" for k in keys]
    return "\n".join(lines) + "\n"


def rich_table(cmp: Comparison) -> Table:
    """The comparison as a rich Table for the terminal."""
    from rich.table import Table

    n = cmp.counts()
    table = Table(
        title=f"{cmp.base.run_id} → {cmp.candidate.run_id}",
        caption=f"{n['regressed']} regressed, {n['improved']} improved, "
        f"{n['unchanged']} unchanged{_invalid_count(cmp)}; threshold {cmp.threshold * 100:g}%, "
        f"{cmp.confidence * 100:g}% CI of the ratio of medians. {_noise_note(cmp)}".strip(),
    )
    for col in ("case", "metric", "base", "candidate", "change", "95% CI", "p", "verdict"):
        table.add_column(col, justify="right" if col in ("base", "candidate", "change") else "left")
    colour = {"regressed": "red", "improved": "green", "unchanged": "", "info": "dim"}
    for key, m in rows(cmp):
        v = _verdict_text(m)
        v = f"[{colour[m.verdict]}]{v}[/]" if colour[m.verdict] else v
        table.add_row(
            key, m.metric, _num(m.base, m.unit), _num(m.candidate, m.unit), _change(m), _ci(m),
            _p(m.p_value), v,
        )  # fmt: skip
    for i in cmp.invalid:
        table.add_row(i.key, "–", "–", "–", "–", "–", "–", f"[yellow]{INVALID}[/]")
    return table


INVALID = "invalid, not compared"


def _invalid_count(cmp: Comparison) -> str:
    return f", {len(cmp.invalid)} {INVALID}" if cmp.invalid else ""


def to_json(cmp: Comparison) -> str:
    return json.dumps(cmp.to_dict(), indent=2) + "\n"
