"""Scoring: one metric on one case (:func:`score_item`), and many cases with many metrics, metric
by metric, in worker processes or in this one (:func:`score_entries`).

The unit of work is one metric over every case (a *task*): each task runs in one process, so a
model (Whisper, DNSMOS, the speaker encoder) is loaded once per evaluation, and the metrics, which
share nothing, run side by side in ``jobs`` worker processes. Workers are spawned (never forked:
ONNX Runtime and torch keep thread pools that do not survive a fork), the costliest tasks are
started first (:attr:`Metric.cost`, longest-processing-time order, so the workers finish close
together), and each worker gives its libraries ``cpus // jobs`` threads (:func:`library_threads`)
so two workers on two cores do not each start two threads per library.

Results do not depend on where a task ran: a task computes exactly what it computes in this process
(the same function, the same inputs, one case after another), and ``jobs=1`` runs every task here,
in the same order. Only ``compute_s`` (wall time) differs. A metric that cannot be sent to a worker
(a lambda from an entry point) runs in this process while the workers run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from voxbench.quality.base import Item, Metric, MetricUnavailable
from voxbench.quality.targets import Target
from voxbench.results.document import Case, QualityScore

Progress = Callable[[int, int, str], None]
Scores = list[dict[str, QualityScore]]
THREADS_ENV = "VOXBENCH_QUALITY_THREADS"
# The environment variables the numeric libraries read for their thread pools at import.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Entry:
    """One case to judge: its id, its input kind, the item (None when there is none) and why not."""

    case_id: str
    input_kind: str
    item: Item | None
    why_not: str = ""


def judged_against(metric: Metric, item: Item) -> str:
    parts = []
    for need in metric.needs:
        if need == "text":
            parts.append("input text")
        elif need == "reference":
            parts.append("reference audio")
        elif need == "melody" or (need == "pitch_target" and item.melody):
            parts.append("target melody")
        elif need == "pitch_target":
            parts.append("reference audio")
    return ", ".join(parts) or "none (no reference)"


def unavailable(metric: Metric, reason: str) -> dict[str, QualityScore]:
    return {
        v.name: QualityScore(
            metric=metric.name,
            family=metric.family,
            unit=v.unit,
            higher_is_better=v.higher_is_better,
            available=False,
            reason=reason,
        )
        for v in metric.values
    }


def score_item(
    metric: Metric,
    input_kind: str,
    item: Item | None,
    why_not: str,
    targets: dict[str, Target],
) -> dict[str, QualityScore]:
    """Every value of one metric for one case; failures become reasons, never numbers."""
    reason = why_not or metric.unavailable() or ""
    if not reason and metric.speech_only and input_kind == "midi":
        reason = "a speech metric; this case renders music from MIDI"
    if not reason and item is not None:
        reason = metric.missing_inputs(item) or ""
    if reason or item is None:
        return unavailable(metric, reason)
    start = time.perf_counter()
    try:
        computed: dict[str, Any] = metric.compute(item)
    except MetricUnavailable as exc:
        return unavailable(metric, str(exc))
    except Exception as exc:  # a metric bug or a library refusing this audio: say so
        return unavailable(metric, f"failed: {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    value_names = {v.name for v in metric.values}
    details = {k: v for k, v in computed.items() if k not in value_names}
    scores: dict[str, QualityScore] = {}
    for v in metric.values:
        raw = computed.get(v.name)
        if raw is None or raw != raw:  # missing or NaN
            scores[v.name] = unavailable(metric, "no value for this input")[v.name]
            continue
        target = targets.get(v.name)
        scores[v.name] = QualityScore(
            metric=metric.name,
            family=metric.family,
            value=float(raw),
            unit=v.unit,
            higher_is_better=v.higher_is_better,
            target=target.value if target else None,
            target_op=target.op if target else None,
            passed=target.check(float(raw)) if target else None,
            judged_against=judged_against(metric, item),
            compute_s=seconds,
            details=details,
        )
    return scores


def score_case(
    case: Case, item: Item | None, why_not: str, metrics: list[Metric], targets: dict[str, Target],
    on_metric: Callable[[str], None] | None = None,
) -> dict[str, QualityScore]:  # fmt: skip
    """Every value of every metric for one case; failures become reasons, never numbers."""
    scores: dict[str, QualityScore] = {}
    for metric in metrics:
        if on_metric:
            on_metric(metric.name)
        scores.update(score_item(metric, case.input_kind, item, why_not, targets))
    return scores


def library_threads() -> int | None:
    """Threads a metric library may start (``$VOXBENCH_QUALITY_THREADS``); None: its default.

    Set for the length of every evaluation task (:func:`thread_budget`), read by the model loaders
    (Whisper's ``cpu_threads``, ONNX Runtime's intra-op threads, torch's threads), which cache one
    model per thread count.
    """
    value = os.environ.get(THREADS_ENV, "").strip()
    return max(1, int(value)) if value.isdigit() else None


def default_jobs() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def evaluation_threads(tasks: int) -> int:
    """Library threads per task: the CPUs shared by as many workers as there are tasks (at most
    one per CPU). The same whatever ``jobs`` is: thread counts change the order of floating-point
    sums (ONNX Runtime, BLAS), so serial and parallel scores agree only with equal budgets."""
    cpus = default_jobs()
    return max(1, cpus // max(1, min(cpus, tasks)))


@contextlib.contextmanager
def thread_budget(threads: int) -> Iterator[None]:
    """BLAS and OpenMP pools limited to ``threads`` (threadpoolctl) and ``library_threads()`` set,
    for the block."""
    from threadpoolctl import threadpool_limits

    before = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = str(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        if before is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = before


def score_metric(
    metric: Metric, entries: list[Entry], targets: dict[str, Target], threads: int,
    on_case: Callable[[str], None] | None = None,
) -> Scores:  # fmt: skip
    """One metric's values for every entry, in order, its libraries held to ``threads``."""
    scores: Scores = []
    with thread_budget(threads):
        for entry in entries:
            if on_case:
                on_case(entry.case_id)
            item, reason = entry.item, entry.why_not
            scores.append(score_item(metric, entry.input_kind, item, reason, targets))
    return scores


def _start_worker(threads: int) -> None:
    """Worker initializer: the thread budget, before any numeric library is imported."""
    for name in (THREADS_ENV, *_THREAD_VARIABLES):
        os.environ[name] = str(threads)


def worker_pool(workers: int, threads: int) -> ProcessPoolExecutor:
    """``workers`` spawned processes whose libraries get ``threads`` threads each."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(threads,),
    )


def _picklable(metric: Metric) -> bool:
    try:
        pickle.dumps(metric)
    except Exception:  # lambdas, closures, local classes: run in this process
        return False
    return True


def _merge(entries: list[Entry], metrics: list[Metric], by_metric: dict[str, Scores]) -> Scores:
    """Per case, the scores of every metric in ``metrics`` order (as the serial loop gives them)."""
    merged: Scores = [{} for _ in entries]
    for metric in metrics:
        for case_scores, scores in zip(merged, by_metric[metric.name], strict=True):
            case_scores.update(scores)
    return merged


def score_entries(
    entries: list[Entry],
    metrics: list[Metric],
    targets: dict[str, Target],
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> Scores:
    """Every metric's values for every entry: ``result[i]`` holds entry ``i``'s scores.

    ``jobs``: worker processes (None: :func:`default_jobs`); 1 runs every metric here, one after
    another. Only metrics that can run here and have a case to judge go to workers, costliest
    first; the others, and metrics that cannot be pickled, run here meanwhile. ``pool``: workers
    to reuse (from :func:`worker_pool`), whose models stay loaded between calls; by default each
    call starts its own and stops them at the end.
    """
    total = len(entries) * len(metrics)
    done = 0

    def advance(count: int, what: str) -> None:
        nonlocal done
        if progress:
            progress(done, total, what)
        done += count

    jobs = default_jobs() if jobs is None else max(1, jobs)
    judged = any(e.item is not None for e in entries)
    sendable = [m for m in metrics if judged and not m.unavailable() and _picklable(m)]
    threads = evaluation_threads(len(sendable))
    remote = sorted(sendable, key=lambda m: -m.cost) if jobs > 1 and len(sendable) > 1 else []
    by_metric: dict[str, Scores] = {}
    if remote:
        owned = worker_pool(min(jobs, len(remote)), threads) if pool is None else None
        with owned or contextlib.nullcontext(pool) as workers:
            assert workers is not None
            submit = workers.submit
            futures = {m.name: submit(score_metric, m, entries, targets, threads) for m in remote}
            for metric in metrics:  # the rest here, meanwhile
                if metric.name not in futures:
                    by_metric[metric.name] = score_metric(metric, entries, targets, threads)
                    advance(len(entries), f"{metric.name} · all cases")
            for metric in remote:
                by_metric[metric.name] = _collect(metric, futures[metric.name], entries)
                advance(len(entries), f"{metric.name} · all cases")
    else:
        for metric in metrics:

            def tick(case_id: str, name: str = metric.name) -> None:
                advance(1, f"{name} · {case_id}")

            by_metric[metric.name] = score_metric(metric, entries, targets, threads, tick)
    if progress:
        progress(total, total, "done")
    return _merge(entries, metrics, by_metric)


def _collect(metric: Metric, future: Future[Scores], entries: list[Entry]) -> Scores:
    """A worker's scores, or every case unavailable with the reason its worker failed."""
    try:
        return future.result()
    except Exception as exc:  # a crashed worker (BrokenProcessPool), a result that cannot pickle
        reason = f"failed: the worker process evaluating it failed ({type(exc).__name__}: {exc})"
        return [unavailable(metric, reason) for _ in entries]
