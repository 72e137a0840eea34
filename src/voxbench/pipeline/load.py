"""Many conversations at once: ``voxbench pipeline --rate R[,R...]`` (open loop) or
``--concurrency N[,N...]`` (closed loop), one level after another.

Open loop, as ``voxbench load``: users start speaking at the times of a seeded Poisson (or
constant) schedule, whether or not the chain has answered the ones before — queueing shows as it
would to them. Each conversation runs in its own thread, started by a scheduler thread at its
time; a thread that starts late still counts its user's speech from the scheduled time, and the
lateness is the level's ``lag_ms`` (a level whose lag p99 is over ``max_lag_ms`` measured the
generator, not the chain, and is invalid). Closed loop: ``N`` users, each starting to speak the
moment their previous answer has been produced.

Per level: the figures of every conversation (:func:`voxbench.pipeline.figures.conversation_figures`),
percentiles of the successful ones, first audio over all of them (a failure at the time it took
to fail), the achieved rate in the sending window, errors by kind, validity, and the SLO verdict
(``--slo``, the targets' syntax; default: first audio p95 ≤ 1 s). Capacity: the highest offered
rate of a valid level that met the SLO ("conversations per second with first audio p95 ≤ 1 s").
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxbench.load.schedule import Arrivals, Level, intended_offsets
from voxbench.pipeline.chain import Components, Conversation, Mode, converse
from voxbench.pipeline.figures import conversation_figures
from voxbench.pipeline.targets import Target, parse_targets, statistic
from voxbench.results.model_base import Summary
from voxbench.results.pipeline_doc import PipelineLevel
from voxbench.results.stats import summarize
from voxbench.results.validity import MAX_ERROR_RATE, MIN_SAMPLES, verdict
from voxbench.workloads.base import WorkloadItem

DEFAULT_SLO = "first_audio_ms:p95<=1000"
ALL_REQUEST = ("first_audio_ms",)  # SLO clauses judged over every conversation, failures too


@dataclass(frozen=True)
class LoadPlan:
    """How to load the chain: levels, their length, the schedule, the rules."""

    levels: tuple[Level, ...]
    duration_s: float = 30.0
    arrivals: Arrivals = "poisson"
    seed: int = 0
    slo: str = DEFAULT_SLO
    max_lag_ms: float = 20.0
    timeout_s: float = 120.0

    def clauses(self) -> list[Target]:
        """The SLO as parsed targets (one-line ConfigError when it does not parse)."""
        return parse_targets([c for c in self.slo.split(",") if c.strip()])


@dataclass
class _Run:
    due_ns: int
    started_ns: int
    conv: Conversation | None = None


def _utterance_seconds(item: WorkloadItem) -> float:
    import soundfile as sf

    return float(sf.info(str(item.payload())).duration)


def _open_loop(
    components: Components,
    items: Sequence[WorkloadItem],
    mode: Mode,
    rate: float,
    plan: LoadPlan,
) -> tuple[list[_Run], float | None]:
    offsets = intended_offsets(
        rate, duration_s=plan.duration_s, requests=None, arrivals=plan.arrivals, seed=plan.seed
    )
    lengths = [_utterance_seconds(i) for i in items]
    runs: list[_Run] = []
    threads: list[threading.Thread] = []
    t0 = time.perf_counter_ns() + 50_000_000  # 50 ms to get going

    def one(run: _Run, item: WorkloadItem, seconds: float) -> None:
        run.started_ns = time.perf_counter_ns()
        run.conv = converse(
            components,
            Path(item.payload()),
            mode,
            speech_start_ns=run.due_ns,
            utterance_s=seconds,
        )

    for n, offset in enumerate(offsets):
        due = t0 + round(offset * 1e9)
        wait = (due - time.perf_counter_ns()) / 1e9
        if wait > 0:
            time.sleep(wait)
        run = _Run(due_ns=due, started_ns=0)
        k = n % len(items)
        thread = threading.Thread(
            target=one, args=(run, items[k], lengths[k]), name=f"voxbench-conv-{n}", daemon=True
        )
        runs.append(run)
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + plan.timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    window = offsets[-1] - offsets[0] if len(offsets) > 1 else None
    return runs, window


def _closed_loop(
    components: Components,
    items: Sequence[WorkloadItem],
    mode: Mode,
    users: int,
    plan: LoadPlan,
) -> list[_Run]:
    lengths = [_utterance_seconds(i) for i in items]
    runs: list[_Run] = []
    lock = threading.Lock()
    end = time.perf_counter_ns() + round(plan.duration_s * 1e9)

    def user(slot: int) -> None:
        n = slot
        while time.perf_counter_ns() < end:
            now = time.perf_counter_ns()
            run = _Run(due_ns=now, started_ns=now)
            k = n % len(items)
            run.conv = converse(
                components,
                Path(items[k].payload()),
                mode,
                speech_start_ns=now,
                utterance_s=lengths[k],
            )
            with lock:
                runs.append(run)
            n += users

    threads = [
        threading.Thread(target=user, args=(s,), name=f"voxbench-user-{s}", daemon=True)
        for s in range(users)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(plan.duration_s + plan.timeout_s)
    return sorted(runs, key=lambda r: r.due_ns)


def _summary(values: list[float]) -> Summary | None:
    data = summarize(values)
    return Summary(**data) if data else None


def level_figures(
    runs: list[_Run],
    *,
    level: Level,
    mode: Mode,
    plan: LoadPlan,
    window_s: float | None,
) -> PipelineLevel:
    """A level's figures from its conversations (an unfinished one is a timeout)."""
    samples: dict[str, list[float]] = {}
    kinds: Counter[str] = Counter()
    first_all: list[float] = []
    ended = [r for r in runs if r.conv is not None and r.conv.ended_ns is not None]
    for run in runs:
        conv = run.conv
        if level.kind == "rate":
            samples.setdefault("lag_ms", []).append((run.started_ns - run.due_ns) / 1e6)
        if conv is None or conv.ended_ns is None:
            kinds["timeout"] += 1
            first_all.append(plan.timeout_s * 1000)
            continue
        if conv.error is not None:
            kinds[f"{conv.error['stage']}: {conv.error['type']}"] += 1
            first_all.append((conv.ended_ns - conv.end_of_speech_ns) / 1e6)
            continue
        for key, value in conversation_figures(conv).items():
            if value is not None:
                samples.setdefault(key, []).append(float(value))
        first_all.append(samples["first_audio_ms"][-1])
    samples["first_audio_all_ms"] = first_all
    failed = sum(kinds.values())
    achieved = _achieved_rate(runs, ended, window_s)
    n = len(runs)
    error_rate = failed / n if n else 0.0
    lvl = PipelineLevel(
        label=f"{mode} {_label(level)}",
        mode=mode,
        kind=level.kind,
        value=level.value,
        duration_s=plan.duration_s,
        window_s=window_s,
        conversations=n,
        failed=failed,
        error_rate=error_rate,
        errors_by_kind=dict(kinds),
        achieved_rate=achieved,
        first_audio_ms=_summary(samples.get("first_audio_ms", [])),
        first_audio_all_ms=_summary(first_all),
        first_byte_ms=_summary(samples.get("first_byte_ms", [])),
        end_to_end_ms=_summary(samples.get("end_to_end_ms", [])),
        stt_ms=_summary(samples.get("stt_ms", [])),
        llm_ttft_ms=_summary(samples.get("llm_ttft_ms", [])),
        tts_first_audio_ms=_summary(samples.get("tts_first_audio_ms", [])),
        tokens_per_second=_summary(samples.get("tokens_per_second", [])),
        lag_ms=_summary(samples.get("lag_ms", [])),
        stall_ms=_summary(samples.get("stall_ms", [])),
        samples=samples,
    )
    reasons = []
    good = n - failed
    if good < MIN_SAMPLES:
        reasons.append(f"{good} successful conversations, fewer than {MIN_SAMPLES}")
    if n and error_rate > MAX_ERROR_RATE:
        reasons.append(f"{failed} of {n} conversations failed ({error_rate:.0%})")
    lag = lvl.lag_ms.p99 if lvl.lag_ms else None
    if lag is not None and lag > plan.max_lag_ms:
        reasons.append(f"schedule lag p99 {lag:.3g} ms over the {plan.max_lag_ms:g} ms limit")
    lvl.validity = verdict(reasons)
    _judge(lvl, plan.clauses())
    return lvl


def _label(level: Level) -> str:
    v = f"{level.value:g}"
    return f"{v} conv/s" if level.kind == "rate" else f"{v} users"


def _achieved_rate(runs: list[_Run], ended: list[_Run], window_s: float | None) -> float | None:
    """Conversations completed per second in the sending window moved by the median
    conversation time: a conversation takes seconds (the user speaks first), so completions
    inside the unshifted window would miss the last of them and read low (docs/methodology.md)."""
    if not window_s or not runs or not ended:
        return None
    import statistics

    shift = statistics.median(
        r.conv.ended_ns - r.due_ns for r in ended if r.conv and r.conv.ended_ns
    )
    start = runs[0].due_ns + shift
    end = start + round(window_s * 1e9)
    done = sum(1 for r in ended if r.conv and r.conv.ended_ns and start <= r.conv.ended_ns <= end)
    return done / window_s


def _judge(level: PipelineLevel, clauses: list[Target]) -> None:
    """Each SLO clause at this level; ``meets_slo`` when all hold, few failed and it is valid."""
    for clause in clauses:
        key = f"{clause.name[: -len('_ms')]}_all_ms" if clause.name in ALL_REQUEST else clause.name
        value = statistic(level.samples.get(key, []), clause.stat)
        held = None
        if value is not None:
            held = value <= clause.bound if clause.op == "<=" else value >= clause.bound
        level.slo[clause.text()] = held
    level.meets_slo = (
        bool(level.slo)
        and all(v is True for v in level.slo.values())
        and level.error_rate <= MAX_ERROR_RATE
        and level.validity is not None
        and level.validity.valid
    )


def capacity(levels: list[PipelineLevel], slo: str) -> dict[str, object]:
    """The highest offered rate per mode whose level is valid and met the SLO."""
    out: dict[str, object] = {"slo": slo}
    for mode in dict.fromkeys(lv.mode for lv in levels):
        ok = [lv.value for lv in levels if lv.mode == mode and lv.kind == "rate" and lv.meets_slo]
        out[mode] = max(ok) if ok else None
    return out


def run_levels(
    components: Components,
    items: Sequence[WorkloadItem],
    modes: Sequence[Mode],
    plan: LoadPlan,
    on_level: Callable[[PipelineLevel], None] = lambda lv: None,
    on_start: Callable[[str, float], None] = lambda label, seconds: None,
) -> list[PipelineLevel]:
    """Every mode × level, in order; each level handed to ``on_level`` as soon as it is done."""
    levels = []
    for mode in modes:
        for level in plan.levels:
            on_start(f"{mode} {level.label}", plan.duration_s)
            if level.kind == "rate":
                runs, window = _open_loop(components, items, mode, level.value, plan)
            else:
                runs, window = _closed_loop(components, items, mode, int(level.value), plan), None
            lvl = level_figures(runs, level=level, mode=mode, plan=plan, window_s=window)
            levels.append(lvl)
            on_level(lvl)
    return levels
