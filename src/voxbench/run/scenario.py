"""The single-request scenario: one case = cold start, warm-ups, then measured iterations.

Order per case, in one fresh executor: start the process (worker mode), import and load the engine,
make the first call (together: the cold start), make ``warmup`` calls that are recorded only for
their errors, then ``iterations`` measured calls whose raw samples are kept. Calls are sequential
with nothing else in flight, so each latency is the engine's alone.

A call that raised, or whose answer broke an output rule (:mod:`voxbench.run.output_checks`;
``empty_text`` is judged here, where the reference transcript is known), is an error of the case
(``kind``: exception or output) and never a sample. A fault of the executor (timeout, a dead
worker, the memory limit: :class:`~voxbench.run.executors.WorkerFault`) ends the case with one
``phase: case`` error naming it; the next case gets a fresh executor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxbench.engines.registry import EngineSpec
from voxbench.errors import VoxbenchError
from voxbench.results.document import (
    Accuracy,
    Case,
    ColdStart,
    ErrorRecord,
    Samples,
    StageSummary,
    Summary,
)
from voxbench.results.keys import case_id
from voxbench.results.stats import summarize
from voxbench.run.executors import Executor, WorkerFault, make_executor
from voxbench.run.measure import CallRecord, StartInfo
from voxbench.run.output_checks import text_fault
from voxbench.run.settings import Settings as Settings
from voxbench.workloads.base import WorkloadItem


@dataclass
class CaseOutcome:
    """A measured case, with the audio of one iteration to save beside the document."""

    case: Case
    audio: Any = None  # float32 audio of one measured iteration, for listening
    sample_rate: int | None = None


Tick = Callable[[int], None]


def _error(phase: str, iteration: int | None, err: dict[str, str]) -> ErrorRecord:
    return ErrorRecord(phase=phase, iteration=iteration, **{"kind": "exception", **err})


def _fatal(exc: VoxbenchError) -> ErrorRecord:
    """The case's error for a failure of its executor (a WorkerFault says its kind)."""
    if isinstance(exc, WorkerFault):
        return ErrorRecord(phase="case", type="EngineFailed", message=str(exc), kind=exc.kind)
    return ErrorRecord(phase="case", type=type(exc).__name__, message=str(exc))


def _judge_text(rec: CallRecord, item: WorkloadItem) -> CallRecord:
    """``rec`` with ``empty_text`` as its error when a recogniser heard nothing in speech that
    has a reference transcript (waived by an engine's ``waive_output_checks``)."""
    if rec.error is None and item.kind == "audio" and item.text and not rec.samples:
        rec.error = text_fault(rec.text, speech_input=True)
    return rec


def _summary(values: list[float], *, ci: bool = True) -> Summary | None:
    stats = summarize(values, ci=ci)
    return Summary(**stats) if stats else None


def _median(values: list[float]) -> float | None:
    import numpy as np

    return float(np.median(values)) if values else None


def _tokens_per_second(r: CallRecord) -> float | None:
    """Decode rate of one call: tokens after the first over the time after the first (streamed),
    else tokens over the wall time; None without a token count."""
    if not r.tokens:
        return None
    if r.ttfa_ns is not None and r.tokens > 1 and r.wall_ns > r.ttfa_ns:
        return (r.tokens - 1) / ((r.wall_ns - r.ttfa_ns) / 1e9)
    return r.tokens / (r.wall_ns / 1e9) if r.wall_ns > 0 else None


def input_audio_seconds(item: WorkloadItem) -> float | None:
    """Length of an audio input (from the workload's ``duration_s``, else the file's header)."""
    if item.kind != "audio":
        return None
    known = item.meta.get("duration_s")
    if isinstance(known, (int, float)) and known > 0:
        return float(known)
    if item.path is None:
        return None
    try:
        import soundfile as sf

        info = sf.info(str(item.path))
    except Exception:
        return None
    return info.frames / info.samplerate if info.samplerate else None


def _fill_text_metrics(case: Case, ok: list[CallRecord], item: WorkloadItem) -> None:
    """A text answer's figures: tokens and their rate (LLM), the transcript against the reference
    and rtf on the input audio (speech recognition)."""
    s = case.samples
    case.output_kind = "text"
    if s.ttfa_ms:
        case.ttft_ms = _summary(s.ttfa_ms)
    # A recogniser's pieces are partial hypotheses, not tokens: no token rate or ITL for audio
    # inputs (the gaps stay in the raw samples).
    generates = item.kind != "audio"
    if s.chunk_gap_ms and generates:
        case.itl_ms = _summary(s.chunk_gap_ms, ci=False)
    counted = [r for r in ok if r.tokens and generates]
    if counted:
        case.output_tokens = _median([float(r.tokens or 0) for r in counted])
        s.output_tokens = [float(r.tokens or 0) for r in counted]
        rates = [v for v in map(_tokens_per_second, counted) if v is not None]
        s.tokens_per_second = rates
        case.tokens_per_second = _median(rates)
        sources = {r.tokens_source for r in counted}
        case.tokens_source = "counted" if "counted" in sources else "usage"
    prompts = [float(r.input_tokens) for r in ok if r.input_tokens is not None]
    case.input_tokens = _median(prompts)
    seconds = input_audio_seconds(item)
    if seconds:
        case.input_audio_seconds = seconds
        walls = [r.wall_ns / 1e9 for r in ok]
        audio = seconds * case.batch_size  # a batched call transcribes batch_size copies
        case.rtf = _median([w / audio for w in walls])
        case.rtfx = _median([audio / w for w in walls if w > 0])
        case.ms_per_audio_second = case.rtf * 1000 if case.rtf is not None else None
    if item.kind == "audio" and item.text and ok:
        from voxbench.results.accuracy import error_counts

        counts = error_counts(item.text, ok[-1].text or "")
        if counts is not None:
            case.accuracy = Accuracy(**counts)


def _fill_metrics(case: Case, records: list[CallRecord], item: WorkloadItem) -> None:
    """Summaries from the raw records of the measured calls (errors are not samples)."""
    ok = [r for r in records if r.error is None]
    s = Samples(
        latency_ms=[r.wall_ns / 1e6 for r in ok],
        cpu_s=[r.cpu_s for r in ok],
        audio_seconds=[r.audio_seconds for r in ok if r.audio_seconds is not None],
        ttfa_ms=[r.ttfa_ns / 1e6 for r in ok if r.ttfa_ns is not None],
        chunk_gap_ms=[g / 1e6 for r in ok for g in r.chunk_gaps_ns],
    )
    for name in sorted({k for r in ok for k in r.stages}):
        s.stages_ms[name] = [r.stages.get(name, 0.0) for r in ok]
    case.samples = s
    if not ok:
        return
    case.latency_ms = lat = _summary(s.latency_ms)
    walls = [r.wall_ns / 1e9 for r in ok]
    with_audio = [(w, r.audio_seconds) for w, r in zip(walls, ok, strict=True) if r.audio_seconds]
    if with_audio:
        case.audio_seconds = _median([a for _, a in with_audio])
        case.rtf = _median([w / a for w, a in with_audio])
        case.rtfx = _median([a / w for w, a in with_audio if w > 0])
        case.ms_per_audio_second = case.rtf * 1000 if case.rtf is not None else None
    if lat and lat.median > 0:
        case.items_per_second = case.batch_size / (lat.median / 1000)
        if item.chars and item.kind == "text":
            case.chars_per_second = item.chars * case.batch_size / (lat.median / 1000)
    text_answer = any(r.text is not None for r in ok) and not any(r.samples for r in ok)
    if text_answer:
        _fill_text_metrics(case, ok, item)
        if s.ttfa_ms:
            case.chunks = int(_median([r.chunks for r in ok]) or 0)
    elif s.ttfa_ms:
        case.output_kind = "audio"
        case.ttfa_ms = _summary(s.ttfa_ms)
        case.chunks = int(_median([r.chunks for r in ok]) or 0)
    else:
        case.output_kind = "audio" if with_audio else None
    if s.chunk_gap_ms and not text_answer:
        case.chunk_gap_ms = _summary(s.chunk_gap_ms, ci=False)
    case.cpu_utilization = _median([r.cpu_s / w for r, w in zip(ok, walls, strict=True) if w > 0])
    texts = [r.text for r in ok if r.text]
    case.output_text = texts[-1] if texts else None
    for name, values in s.stages_ms.items():
        med = _median(values) or 0.0
        share = med / lat.median if lat and lat.median > 0 else None
        case.stages[name] = StageSummary(median_ms=med, share=share)


def measure_iterations(
    executor: Executor,
    payload: Any,
    n: int,
    *,
    use_stream: bool,
    keep_last_audio: bool,
    tick: Tick,
    records: list[CallRecord] | None = None,
    batch: int = 1,
) -> list[CallRecord]:
    """The measured loop: ``n`` back-to-back calls, raw records kept (audio of the last one only).

    Records are appended to ``records`` as they come, so a timeout keeps the calls before it.
    ``benchmarks/overhead.py`` times this very function against a bare loop.
    """
    records = [] if records is None else records
    for i in range(n):
        rec = executor.call(
            payload, use_stream=use_stream, keep_audio=keep_last_audio and i == n - 1, batch=batch
        )
        records.append(rec)
        tick(1)
    return records


def run_case(
    spec: EngineSpec,
    engine_name: str,
    workload: str,
    item: WorkloadItem,
    settings: Settings,
    tick: Tick = lambda n: None,
    batch_size: int = 1,
) -> CaseOutcome:
    """Measure one case end to end; engine failures are recorded in the case, never raised."""
    case = _new_case(spec, engine_name, workload, item, settings, batch_size)
    outcome = CaseOutcome(case=case)
    payload = item.payload()
    records: list[CallRecord] = []
    total, done = 1 + settings.warmup + settings.iterations, 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        tick(n)

    fatal: ErrorRecord | None = None
    executor = make_executor(
        settings.mode,
        settings.timeout_s,
        case_timeout_s=settings.case_timeout_s,
        max_memory=settings.max_memory,
    )
    case.peak_rss_scope = executor.rss_scope
    try:
        _drive(executor, spec, item, payload, settings, batch_size, outcome, records, step)
    except VoxbenchError as exc:  # timeout or a dead worker: the rest of this case cannot run
        fatal = _fatal(exc)
    finally:
        for r in records:
            _judge_text(r, item)
        case.errors.extend(_error("measure", i, r.error) for i, r in enumerate(records) if r.error)
        if fatal:
            case.errors.append(fatal)
        _fill_metrics(case, records, item)
        tick(total - done)  # the calls a failure skipped, so progress still reaches the end
        try:
            executor.close()
        except Exception as exc:
            case.errors.append(
                ErrorRecord(phase="case", type=type(exc).__name__, message=f"close failed: {exc}")
            )
        case.error_count = len(case.errors)
    return outcome


def _new_case(
    spec: EngineSpec,
    engine_name: str,
    workload: str,
    item: WorkloadItem,
    settings: Settings,
    batch_size: int,
) -> Case:
    return Case(
        id=case_id(engine_name, workload, item.id, spec.params, batch_size, spec.device),
        engine=engine_name,
        workload=workload,
        input_id=item.id,
        input_kind=item.kind,
        input_chars=item.chars,
        input_text=item.text,
        input_meta=item.meta,
        params=spec.params,
        device=spec.device,
        batch_size=batch_size,
        mode=settings.mode,
        iterations=settings.iterations,
        warmup=settings.warmup,
    )


def _drive(
    executor: Executor,
    spec: EngineSpec,
    item: WorkloadItem,
    payload: Any,
    settings: Settings,
    batch: int,
    outcome: CaseOutcome,
    records: list[CallRecord],
    tick: Tick,
) -> None:
    """Start the engine, then the cold call, the warm-ups and the measured calls (into ``records``).

    Raises VoxbenchError only when the executor itself fails (a timeout, a dead worker).
    """
    case = outcome.case
    try:
        started = executor.start(spec)
    except VoxbenchError as exc:
        case.errors.append(_fatal(exc).model_copy(update={"phase": "load"}))
        return
    _note_engine(case, started, spec)
    if settings.stream == "on" and not started.streams:
        message = f"engine {case.engine!r} cannot stream (use --stream auto or off)"
        case.errors.append(ErrorRecord(phase="load", type="ConfigError", message=message))
        return
    use_stream = started.streams and settings.stream != "off" and batch == 1
    case.streamed = use_stream

    first = executor.call(payload, use_stream=use_stream, keep_audio=False, batch=batch)
    cold_total = (time.perf_counter_ns() - executor.created_ns) / 1e6
    _judge_text(first, item)
    tick(1)
    if first.error:
        case.errors.append(_error("cold", None, first.error))
    case.cold_start = ColdStart(
        total_ms=cold_total,
        process_ms=started.process_ms,
        import_ms=started.import_ms,
        load_ms=started.load_ms,
        first_call_ms=first.wall_ns / 1e6,
        kind="warm-process" if started.warm_process else "cold",
    )
    # A start in a process that had run an engine (or held its module) is no cold start: it is
    # kept in the breakdown, labelled, and not offered to compare, history and aggregate as one.
    case.cold_start_ms = None if started.warm_process else cold_total

    for i in range(settings.warmup):
        rec = executor.call(payload, use_stream=use_stream, keep_audio=False, batch=batch)
        tick(1)
        _judge_text(rec, item)
        if rec.error:
            case.errors.append(_error("warmup", i, rec.error))

    measure_iterations(
        executor,
        payload,
        settings.iterations,
        use_stream=use_stream,
        keep_last_audio=settings.save_audio,
        tick=tick,
        records=records,
        batch=batch,
    )
    if records and records[-1].audio is not None:
        outcome.audio, outcome.sample_rate = records[-1].audio, records[-1].sample_rate
    memory = executor.memory()
    case.peak_rss_mb = memory.rss_mb
    case.peak_child_rss_mb = memory.child_rss_mb
    case.peak_gpu_allocated_mb = memory.gpu_allocated_mb
    case.gpu_nvml_mb = memory.gpu_nvml_mb


def _note_engine(case: Case, started: StartInfo, spec: EngineSpec) -> None:
    """What the engine said about itself, and whether it runs on another device than asked."""
    case.engine_info = started.info
    actual = started.info.get("device_actual")
    if actual:
        case.device_actual = str(actual)
        case.device_fallback = case.device_actual.split(":")[0] != spec.device.split(":")[0]


def write_audio(outcome: CaseOutcome, folder: Path) -> str | None:
    """Save the kept iteration's audio as 16-bit WAV; returns its path relative to the run folder."""
    if outcome.audio is None or not outcome.sample_rate:
        return None
    import re

    import numpy as np
    import soundfile as sf

    name = re.sub(r"[^A-Za-z0-9._=-]+", "_", outcome.case.id) + ".wav"
    folder.mkdir(parents=True, exist_ok=True)
    audio = np.clip(np.asarray(outcome.audio, dtype=np.float32), -1.0, 1.0)
    sf.write(folder / name, audio, outcome.sample_rate, subtype="PCM_16")
    return f"{folder.name}/{name}"
