"""The metric catalogue: every figure voxbench stores, compares, aggregates or exports, declared
once.

A :class:`Metric` says what a figure is (name, unit, which direction is better), how it is read
from a :class:`~voxbench.results.document.Case` (its value, the 95% interval of that value, its
raw per-iteration samples) and from a :class:`~voxbench.results.document.LoadLevel`, and where it
goes. Each consumer takes its metrics from :data:`CATALOGUE` and keeps no list of its own:

- the store (``voxbench.results.store``): every metric with a ``column`` is a column of the
  ``cases`` table, so ``voxbench history`` and the CSV/Parquet export have it;
- ``voxbench compare``: ``compare="gate"`` gives a verdict, ``"info"`` a plain delta;
- ``voxbench aggregate``: ``aggregate=True`` makes it a column of machines with speedups;
- ``voxbench export``: ``bencher`` and ``github`` name it in those dashboard formats.

The order of :data:`CATALOGUE` is the order of every listing: the store's columns (and so of
CSV exports), compare's rows, aggregate's tables, the exported series. A new stored metric needs
its column added by a migration in ``store/schema.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from voxbench.results.document import Case, LoadLevel, Percentiles, Summary

NS_PER_MS = 1e6


@dataclass(frozen=True)
class Export:
    """How one dashboard format names a metric.

    ``name`` is the measure (Bencher) or series suffix (github-action-benchmark) of a case, None
    when cases do not export it; ``level_name`` the same for a load level. ``scale`` multiplies
    the value and its interval (Bencher's built-in latency is in nanoseconds); ``unit`` is the
    unit text the format shows when it is not the metric's own. ``note`` is the
    github-action-benchmark ``extra`` of a case, a :meth:`str.format` template with the fields
    ``case`` (the Case), ``where`` (machine and commit) and ``run`` (the run id).
    """

    name: str | None
    level_name: str | None = None
    scale: float = 1.0
    unit: str | None = None
    note: str = "{where}"


@dataclass(frozen=True)
class Metric:
    """One figure of a case or a load level, and everywhere it goes.

    - ``name``: the key everywhere (``--metric``, JSON, store series); ``unit``: its unit (``""``
      for ratios); ``higher_is_better``: which way is an improvement (speedups, colours).
    - ``case``, ``case_ci``, ``case_samples``: read from a Case its value, the 95% interval of
      that value, and its raw per-iteration values; ``level``, ``level_samples``: the value and
      raw per-request values of a load level. A reader returns None (or no samples) when the case
      or level lacks the figure; a metric without a reader for a source does not exist there.
      compare judges a load level only on metrics with ``level_samples``.
    - ``compare``: ``"gate"`` (a verdict, and exit status 1 on a regression), ``"info"`` (a plain
      delta) or None (not compared); ``aggregate``: a table of ``voxbench aggregate``.
    - ``column``: its column of the store's ``cases`` table, ``ci_columns`` the columns of its
      interval (None: not stored); ``bencher``, ``github``: its dashboard names (None: not
      exported).
    """

    name: str
    unit: str
    higher_is_better: bool
    description: str
    case: Callable[[Case], float | None] | None = None
    case_ci: Callable[[Case], tuple[float, float] | None] | None = None
    case_samples: Callable[[Case], list[float]] | None = None
    level: Callable[[LoadLevel], float | None] | None = None
    level_samples: Callable[[LoadLevel], list[float]] | None = None
    compare: Literal["gate", "info"] | None = None
    aggregate: bool = False
    column: str | None = None
    ci_columns: tuple[str, str] | None = None
    bencher: Export | None = None
    github: Export | None = None

    @property
    def gated(self) -> bool:
        """Whether ``voxbench compare`` gives this metric a verdict (and so an exit status)."""
        return self.compare == "gate"

    def of_case(self, case: Case) -> float | None:
        """The case's value, in :attr:`unit`."""
        return self.case(case) if self.case else None

    def ci_of_case(self, case: Case) -> tuple[float, float] | None:
        """The 95% confidence interval of the case's value, where the case keeps one."""
        return self.case_ci(case) if self.case_ci else None

    def samples_of_case(self, case: Case) -> list[float]:
        """The case's raw per-iteration values, in :attr:`unit`."""
        return self.case_samples(case) if self.case_samples else []

    def of_level(self, level: LoadLevel) -> float | None:
        """The load level's value, in :attr:`unit`."""
        return self.level(level) if self.level else None

    def samples_of_level(self, level: LoadLevel) -> list[float]:
        """The load level's raw per-request values, in :attr:`unit`."""
        return self.level_samples(level) if self.level_samples else []


def _median(s: Summary | None) -> float | None:
    return s.median if s else None


def _ci(s: Summary | None) -> tuple[float, float] | None:
    return s.ci95 if s else None


def _p50(p: Percentiles | None) -> float | None:
    return p.p50 if p else None


def _llm_ran(c: Case) -> bool:
    """False for a pipeline case whose LLM stage is ``echo``: its token figures are no model's."""
    return c.pipeline is None or not c.pipeline.llm_is_echo


def _ttft_samples(c: Case) -> list[float]:
    """Per-call time to the first text piece. A pipeline case keeps its LLM's apart: its
    ``samples.ttfa_ms`` are the first *audible* answer, not the first token."""
    if c.pipeline is not None:
        return list(c.pipeline.samples.get("llm_ttft_ms", [])) if _llm_ran(c) else []
    return list(c.samples.ttfa_ms) if c.ttft_ms else []


def _tokens_per_second_samples(c: Case) -> list[float]:
    """Per-call decode rate (a pipeline case: per conversation, from its own samples)."""
    if c.pipeline is not None:
        return list(c.pipeline.samples.get("tokens_per_second", [])) if _llm_ran(c) else []
    return list(c.samples.tokens_per_second)


def _rtf_samples(c: Case) -> list[float]:
    """Per-iteration wall / audio time, where every measured iteration produced audio."""
    s = c.samples
    if s.latency_ms and len(s.audio_seconds) == len(s.latency_ms) and all(s.audio_seconds):
        return [lat / 1000 / a for lat, a in zip(s.latency_ms, s.audio_seconds, strict=True)]
    return []


CATALOGUE: tuple[Metric, ...] = (
    Metric(
        name="latency_ms",
        unit="ms",
        higher_is_better=False,
        description="median wall time of one measured call; a load level's p50, counted from "
        "the intended send time",
        case=lambda c: _median(c.latency_ms),
        case_ci=lambda c: _ci(c.latency_ms),
        case_samples=lambda c: list(c.samples.latency_ms),
        level=lambda lv: _p50(lv.latency_ms),
        level_samples=lambda lv: list(lv.samples.latency_ms),
        compare="gate",
        aggregate=True,
        column="latency_median_ms",
        ci_columns=("latency_ci_low_ms", "latency_ci_high_ms"),
        bencher=Export("latency", level_name="latency", scale=NS_PER_MS),
        github=Export(
            "latency",
            level_name="latency p50",
            note="median of {case.latency_ms.n} calls; p95 {case.latency_ms.p95:.4g} ms; "
            "{where}; run {run}",
        ),
    ),
    Metric(
        name="latency_p95_ms",
        unit="ms",
        higher_is_better=False,
        description="95th percentile of the call (or request) latency",
        case=lambda c: c.latency_ms.p95 if c.latency_ms else None,
        level=lambda lv: lv.latency_ms.p95 if lv.latency_ms else None,
        column="latency_p95_ms",
    ),
    Metric(
        name="latency_p99_ms",
        unit="ms",
        higher_is_better=False,
        description="99th percentile of the call (or request) latency",
        case=lambda c: c.latency_ms.p99 if c.latency_ms else None,
        level=lambda lv: lv.latency_ms.p99 if lv.latency_ms else None,
        github=Export(None, level_name="latency p99"),
    ),
    Metric(
        name="latency_all_p99_ms",
        unit="ms",
        higher_is_better=False,
        description="99th percentile of a load level's latency over every measured request, a "
        "failure at the time it took to fail",
        level=lambda lv: lv.latency_all_ms.p99 if lv.latency_all_ms else None,
    ),
    Metric(
        name="ttfa_all_p99_ms",
        unit="ms",
        higher_is_better=False,
        description="99th percentile of a load level's time to first audio over every measured "
        "request, one without audio at the time it ended",
        level=lambda lv: lv.ttfa_all_ms.p99 if lv.ttfa_all_ms else None,
    ),
    Metric(
        name="rtf",
        unit="",
        higher_is_better=False,
        description="real-time factor: wall time / audio time, median over calls",
        case=lambda c: c.rtf,
        case_samples=_rtf_samples,
        level=lambda lv: _p50(lv.rtf),
        compare="gate",
        aggregate=True,
        column="rtf",
        bencher=Export("rtf"),
        github=Export("rtf", unit="wall/audio", note="median per-call ratio; {where}"),
    ),
    Metric(
        name="rtfx",
        unit="",
        higher_is_better=True,
        description="inverse real-time factor: audio time / wall time, median over calls",
        case=lambda c: c.rtfx,
        aggregate=True,
        column="rtfx",
        bencher=Export("rtfx"),
    ),
    Metric(
        name="ttfa_ms",
        unit="ms",
        higher_is_better=False,
        description="median time to the first audio of a streamed call; a load level's p50",
        case=lambda c: _median(c.ttfa_ms),
        case_ci=lambda c: _ci(c.ttfa_ms),
        case_samples=lambda c: list(c.samples.ttfa_ms),
        level=lambda lv: _p50(lv.ttfa_ms),
        level_samples=lambda lv: list(lv.samples.ttfa_ms),
        compare="gate",
        aggregate=True,
        column="ttfa_median_ms",
        bencher=Export("time-to-first-audio", level_name="time-to-first-audio", scale=NS_PER_MS),
        github=Export(
            "ttfa", level_name="ttfa p50", note="median of {case.ttfa_ms.n} calls; {where}"
        ),
    ),
    Metric(
        name="ttft_ms",
        unit="ms",
        higher_is_better=False,
        description="median time to the first text piece of a streamed text answer (an LLM's "
        "first token, a recogniser's first partial result)",
        case=lambda c: _median(c.ttft_ms) if _llm_ran(c) else None,
        case_ci=lambda c: _ci(c.ttft_ms) if _llm_ran(c) else None,
        case_samples=_ttft_samples,
        level=lambda lv: _p50(lv.ttft_ms),
        level_samples=lambda lv: list(lv.samples.ttft_ms),
        compare="gate",
        aggregate=True,
        column="ttft_median_ms",
        bencher=Export("time-to-first-token", level_name="time-to-first-token", scale=NS_PER_MS),
        github=Export("ttft", level_name="ttft p50", note="median of {case.ttft_ms.n}; {where}"),
    ),
    Metric(
        name="tokens_per_second",
        unit="tok/s",
        higher_is_better=True,
        description="median decode rate of a text-generating call: tokens after the first / time "
        "after the first token (not streamed: tokens / wall time); a load level's median",
        case=lambda c: c.tokens_per_second if _llm_ran(c) else None,
        case_samples=_tokens_per_second_samples,
        level=lambda lv: _p50(lv.tokens_per_second),
        level_samples=lambda lv: list(lv.samples.tokens_per_second),
        compare="gate",
        aggregate=True,
        column="tokens_per_second",
        bencher=Export("tokens-per-second", level_name="tokens-per-second"),
    ),
    Metric(
        name="itl_ms",
        unit="ms",
        higher_is_better=False,
        description="median inter-token latency: the gap between streamed text pieces",
        case=lambda c: _median(c.itl_ms),
        compare="info",
        column="itl_median_ms",
    ),
    Metric(
        name="wer",
        unit="",
        higher_is_better=False,
        description="word error rate of a speech recogniser's transcript against the reference "
        "(normalised; a workload's corpus WER sums errors over reference words)",
        case=lambda c: c.accuracy.wer if c.accuracy else None,
        compare="gate",
        aggregate=True,
        column="wer",
        bencher=Export("wer"),
    ),
    Metric(
        name="cer",
        unit="",
        higher_is_better=False,
        description="character error rate of a speech recogniser's transcript (normalised)",
        case=lambda c: c.accuracy.cer if c.accuracy else None,
        compare="info",
        column="cer",
    ),
    Metric(
        name="errors",
        unit="",
        higher_is_better=False,
        description="failed calls of a case, failed requests of a load level",
        case=lambda c: c.error_count,
        level=lambda lv: sum(lv.errors.values()),
        compare="gate",
    ),
    Metric(
        name="peak_rss_mb",
        unit="MiB",
        higher_is_better=False,
        description="peak resident memory of the worker (or this process)",
        case=lambda c: c.peak_rss_mb,
        compare="info",
        aggregate=True,
        column="peak_rss_mb",
        bencher=Export("peak-rss-mb"),
        github=Export("peak_rss", note="{case.peak_rss_scope}; {where}"),
    ),
    Metric(
        name="peak_child_rss_mb",
        unit="MiB",
        higher_is_better=False,
        description="largest peak resident memory of a child process the engine ran (cmd: "
        "engines); the child's own only when above peak_rss_mb",
        case=lambda c: c.peak_child_rss_mb,
        compare="info",
        column="peak_child_rss_mb",
    ),
    Metric(
        name="peak_gpu_allocated_mb",
        unit="MiB",
        higher_is_better=False,
        description="peak GPU memory of torch's CUDA allocator (max_memory_allocated)",
        case=lambda c: c.peak_gpu_allocated_mb,
        compare="info",
        aggregate=True,
        column="peak_gpu_allocated_mb",
    ),
    Metric(
        name="gpu_nvml_mb",
        unit="MiB",
        higher_is_better=False,
        description="GPU memory NVML sees the engine's process hold at the end of the case",
        case=lambda c: c.gpu_nvml_mb,
        compare="info",
        aggregate=True,
        column="gpu_nvml_mb",
    ),
    Metric(
        name="cold_start_ms",
        unit="ms",
        higher_is_better=False,
        description="from asking for the engine to its first output, in a process that ran no "
        "engine before (warm-process starts have none)",
        case=lambda c: c.cold_start_ms,
        compare="info",
        aggregate=True,
        column="cold_start_ms",
    ),
    Metric(
        name="items_per_second",
        unit="1/s",
        higher_is_better=True,
        description="batch size / median latency",
        case=lambda c: c.items_per_second,
        aggregate=True,
        column="items_per_second",
        bencher=Export("throughput"),
    ),
    Metric(
        name="chars_per_second",
        unit="chars/s",
        higher_is_better=True,
        description="input characters / median latency",
        case=lambda c: c.chars_per_second,
        column="chars_per_second",
    ),
    Metric(
        name="achieved_rate",
        unit="1/s",
        higher_is_better=True,
        description="a load level's successful responses per second",
        level=lambda lv: lv.achieved_rate,
        bencher=Export(None, level_name="throughput"),
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOGUE}
"""Every catalogue entry by its name."""
