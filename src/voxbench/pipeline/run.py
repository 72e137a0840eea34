"""``voxbench pipeline``: start the three components, run every spoken prompt through the chain in
each mode, and write one result document (scenario ``pipeline``).

The components run in this process, side by side, as an assistant application hosts them (an
LLM behind a server, such as ``smollm2``, in its own process): each is started once and its
start is timed as its cold start (import, load), apart from the conversations. Per prompt and
mode: ``warmup`` conversations first (not counted), then ``iterations`` measured ones. Each
prompt × mode is one case of the document, saved as soon as it is measured.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxbench import __version__
from voxbench.engine import Adapted
from voxbench.engines.registry import EngineSpec, redact
from voxbench.errors import ConfigError, EngineUnavailable
from voxbench.pipeline.chain import MODES, Components, Conversation, Mode, converse
from voxbench.pipeline.figures import case_figures
from voxbench.pipeline.load import LoadPlan, capacity, run_levels
from voxbench.pipeline.targets import DEFAULT_TARGETS, Target, check, parse_targets
from voxbench.results.document import Case, ResultDocument, Samples
from voxbench.results.folder import RunFolder, new_run_id, now_iso
from voxbench.results.keys import case_id
from voxbench.results.pipeline_doc import ComponentStart, PipelineResult
from voxbench.results.validity import case_validity
from voxbench.run import environment
from voxbench.run.measure import start_engine
from voxbench.run.request import RayOptions
from voxbench.workloads import resolve_workload
from voxbench.workloads.base import WorkloadItem

ASSISTANT_SYSTEM = (
    "You are a helpful voice assistant. Answer briefly, in one to three short sentences."
)
"""The system message given to a chat LLM that takes one, unless ``--llm-param system=...``."""

Progress = Callable[[str, int, int], None]
"""Called with (what, done, total) as conversations finish."""


def llm_ref(ref: str) -> str:
    """``--llm`` as an engine reference: a bare ``http(s)://`` URL is a chat endpoint."""
    if ref.startswith(("http://", "https://")):
        return f"llm:{ref}"
    return ref


@dataclass
class PipelineRequest:
    """What ``voxbench pipeline`` was asked to do (defaults: Whisper → SmolLM2 → piper)."""

    stt: str = "whisper"
    llm: str = "smollm2"
    tts: str = "piper"
    stt_params: dict[str, Any] = field(default_factory=dict)
    llm_params: dict[str, Any] = field(default_factory=dict)
    tts_params: dict[str, Any] = field(default_factory=dict)
    workload: str = "assistant"
    modes: tuple[Mode, ...] = MODES
    iterations: int = 10
    warmup: int = 1
    targets: tuple[str, ...] = ()
    output: Path = Path("results")
    machine_id: str | None = None
    save_audio: bool = True
    limit: int | None = None
    prompts: tuple[str, ...] = ()  # only these item ids of the workload
    load: LoadPlan | None = None  # many conversations at once, level by level
    argv: list[str] = field(default_factory=list)
    executor: str = "local"  # or "ray": each prompt × mode a Ray task (pipeline/ray_pipeline.py)
    ray: RayOptions = field(default_factory=RayOptions)

    def validate(self) -> None:
        """One-line ConfigError for a bad request, before anything starts."""
        if self.iterations < 1 or self.warmup < 0:
            raise ConfigError("iterations must be at least 1 and warmup at least 0")
        if not self.modes:
            raise ConfigError("no pipeline mode (use sequential, streaming or both)")
        for mode in self.modes:
            if mode not in MODES:
                raise ConfigError(f"unknown pipeline mode {mode!r} (use {' or '.join(MODES)})")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"--executor must be local or ray, not {self.executor!r}")
        if self.executor == "ray" and self.load is not None:
            raise ConfigError(
                "--executor ray runs the prompt × mode cases; load levels (--rate, "
                "--concurrency) run on this machine: drop --executor ray or the levels"
            )
        if self.executor == "ray":
            from voxbench.run.ray_cluster import import_ray

            import_ray()  # without Ray: one line saying how to install it
        self.parsed_targets()
        if self.load is not None:
            self.load.clauses()
            if not self.load.levels:
                raise ConfigError("give --rate or --concurrency levels")
            if self.load.duration_s <= 0:
                raise ConfigError("--duration must be above 0")

    def check(self) -> list[WorkloadItem]:
        """:meth:`validate`, then what can be known before starting anything: the prompts, each
        engine known and available here, and of the right kinds (a Wyoming server says its kinds
        only once connected, at start). Returns the prompts."""
        self.validate()
        items = _items(self)
        for role, spec in self.specs().items():
            factory = spec.factory()
            reason = spec.unavailable_reason()
            if reason:
                raise EngineUnavailable(f"--{role} {spec.name} is unavailable: {reason}")
            if not spec.ref.startswith("wyoming://"):
                _check_kind(role, spec, factory)
        return items

    def parsed_targets(self) -> list[Target]:
        """The default targets, overridden (same name and statistic) or extended by ``targets``."""
        return parse_targets([*DEFAULT_TARGETS, *self.targets])

    @property
    def echo(self) -> bool:
        """The LLM stage is ``echo``: no language model runs."""
        return self.llm == "echo"

    def specs(self) -> dict[str, EngineSpec]:
        """The three engine specs, the LLM given the assistant system message when it takes one."""
        llm_params = dict(self.llm_params)
        llm = EngineSpec(llm_ref(self.llm), llm_params)
        if "system" not in llm_params and _accepts(llm, "system"):
            llm_params["system"] = ASSISTANT_SYSTEM
            llm = EngineSpec(llm.ref, llm_params)
        return {
            "stt": EngineSpec(self.stt, dict(self.stt_params)),
            "llm": llm,
            "tts": EngineSpec(self.tts, dict(self.tts_params)),
        }


def _accepts(spec: EngineSpec, name: str) -> bool:
    try:
        return name in inspect.signature(spec.factory()).parameters
    except (ConfigError, TypeError, ValueError):
        return False


_ARTICLE = {"stt": "an STT", "llm": "an LLM", "tts": "a TTS"}
_KINDS = {"stt": ("audio", "text"), "llm": ("text", "text"), "tts": ("text", "audio")}


def _check_kind(role: str, spec: EngineSpec, engine: object) -> None:
    want_in, want_out = _KINDS[role]
    got_in = getattr(engine, "input_kind", "text")
    got_out = getattr(engine, "output_kind", "audio")
    if (got_in, got_out) != (want_in, want_out):
        raise ConfigError(
            f"--{role} {spec.name} turns {got_in} into {got_out}; {_ARTICLE[role]} engine turns "
            f"{want_in} into {want_out}"
        )


def start_components(
    specs: dict[str, EngineSpec],
) -> tuple[Components, list[ComponentStart]]:
    """Start the three engines, in order, each timed apart; a failure closes those started."""
    started: dict[str, Adapted] = {}
    records: list[ComponentStart] = []
    try:
        for role, spec in specs.items():
            engine, info = start_engine(spec)
            started[role] = engine
            _check_kind(role, spec, engine)
            records.append(
                ComponentStart(
                    role=role,
                    engine=spec.name,
                    import_ms=info.import_ms,
                    load_ms=info.load_ms,
                    total_ms=info.import_ms + info.load_ms,
                    streams=engine.stream is not None,
                    listens=getattr(engine, "listen", None) is not None,
                    engine_info=info.info,
                )
            )
    except BaseException:
        for engine in started.values():
            engine.close()
        raise
    return Components(started["stt"], started["llm"], started["tts"]), records


def _items(req: PipelineRequest) -> list[WorkloadItem]:
    workload = resolve_workload(req.workload)
    items = [i for i in workload.items if i.kind == "audio"]
    if not items:
        raise ConfigError(
            f"workload {req.workload!r} holds no speech: a pipeline needs spoken prompts "
            "(the built-in 'assistant', or a folder of name.wav + name.txt)"
        )
    if req.prompts:
        known = {i.id for i in items}
        missing = [p for p in req.prompts if p not in known]
        if missing:
            raise ConfigError(
                f"workload {req.workload!r} has no prompt {missing[0]!r} "
                f"(it has: {', '.join(sorted(known))})"
            )
        items = [i for i in items if i.id in req.prompts]
    return items[: req.limit] if req.limit else items


def new_document(req: PipelineRequest, components: list[ComponentStart]) -> ResultDocument:
    """The run's document before any conversation."""
    return ResultDocument(
        scenario="pipeline",
        run_id=new_run_id(),
        created_at=now_iso(),
        voxbench_version=__version__,
        environment=environment.capture(req.machine_id),
        pipeline=PipelineResult(
            settings={
                "stt": redact(req.stt),
                "llm": redact(req.llm),
                "tts": redact(req.tts),
                "stt_params": req.stt_params,
                "llm_params": {k: redact(str(v)) for k, v in req.llm_params.items()},
                "tts_params": req.tts_params,
                "workload": req.workload,
                "modes": list(req.modes),
                "iterations": req.iterations,
                "warmup": req.warmup,
                "targets": [t.text() for t in req.parsed_targets()],
                "echo": req.echo,
                "argv": [redact(a) for a in req.argv],
                **(_load_settings(req.load) if req.load else {}),
            },
            components=components,
        ),
    )


def _load_settings(plan: LoadPlan) -> dict[str, Any]:
    return {
        "levels": [lv.label for lv in plan.levels],
        "duration_s": plan.duration_s,
        "arrivals": plan.arrivals,
        "seed": plan.seed,
        "slo": plan.slo,
        "max_lag_ms": plan.max_lag_ms,
    }


def _case(
    req: PipelineRequest,
    names: dict[str, str],
    item: WorkloadItem,
    mode: Mode,
    convs: list[Conversation],
    targets: list[Target],
) -> Case:
    reference = item.text
    fig = case_figures(convs, mode=mode, names=names, reference=reference, echo=req.echo)
    case = prompt_case(
        req,
        names,
        item,
        mode,
        latency_ms=fig["latency_ms"],
        ttfa_ms=fig["ttfa_ms"],
        # echo: no language model ran, so the case carries no LLM figures (its samples keep them)
        ttft_ms=None if req.echo else fig["ttft_ms"],
        itl_ms=None if req.echo else fig["itl_ms"],
        tokens_per_second=None if req.echo else fig["tokens_per_second"],
        output_tokens=fig["output_tokens"],
        input_tokens=fig["input_tokens"],
        tokens_source=fig["tokens_source"],
        audio_seconds=fig["audio_seconds"],
        input_audio_seconds=item.meta.get("duration_s"),
        accuracy=fig["accuracy"],
        stages=fig["stages"],
        errors=fig["errors"],
        error_count=fig["error_count"],
        output_text=fig["output_text"],
        output_kind="audio",
        input_text=reference,
        pipeline=fig["pipeline"],
        samples=Samples(latency_ms=fig["samples_latency"], ttfa_ms=fig["samples_ttfa"]),
    )
    assert case.pipeline is not None
    case.pipeline.targets = check(targets, case.pipeline.samples, mode=mode, echo=req.echo)
    case.validity = case_validity(case)
    return case


def prompt_case(
    req: PipelineRequest, names: dict[str, str], item: WorkloadItem, mode: Mode, **figures: Any
) -> Case:
    """The case of one prompt in one mode: its identity (chain, workload, item, mode) and the
    ``figures`` measured, or the errors that stopped it."""
    chain = f"{names['stt']}+{names['llm']}+{names['tts']}"
    params = {"mode": mode}
    return Case(
        id=case_id(chain, req.workload, item.id, params, 1, "cpu"),
        engine=chain,
        workload=req.workload,
        input_id=item.id,
        input_kind="audio",
        input_meta=dict(item.meta),
        params=params,
        mode="in-process",
        streamed=mode == "streaming",
        iterations=req.iterations,
        warmup=req.warmup,
        **figures,
    )


def save_answer(folder: RunFolder, case: Case, conv: Conversation) -> str | None:
    """The answer as the listener got it (chunks joined), as 16-bit WAV in ``audio/``."""
    if not conv.audio or not conv.playback.sample_rate:
        return None
    import re

    import numpy as np
    import soundfile as sf

    name = re.sub(r"[^A-Za-z0-9._=-]+", "_", case.id) + ".wav"
    audio = np.clip(np.concatenate(conv.audio), -1.0, 1.0)

    def write(staging: Path) -> str:  # atomically into audio/ (RunFolder.save_audio)
        sf.write(staging / name, audio, conv.playback.sample_rate, subtype="PCM_16")
        return name

    return folder.save_audio(write)


def pooled_targets(doc: ResultDocument, req: PipelineRequest) -> None:
    """The run's target table: per mode, each target on the values pooled over its cases."""
    assert doc.pipeline is not None
    rows = []
    targets = req.parsed_targets()
    for mode in req.modes:
        pooled: dict[str, list[float]] = {}
        for case in doc.cases:
            if case.pipeline is None or case.pipeline.mode != mode:
                continue
            for key, values in case.pipeline.samples.items():
                pooled.setdefault(key, []).extend(values)
        rows.extend(check(targets, pooled, mode=mode, echo=req.echo))
    doc.pipeline.targets = rows


def run_pipeline(
    req: PipelineRequest,
    progress: Progress | None = None,
    on_end: Callable[[RunFolder], None] = lambda folder: None,
) -> RunFolder:
    """Measure every prompt in every mode into a new run folder, closed at the end.

    ``on_end`` is called with the folder once measuring ends, finished or interrupted (api writes
    the report there)."""
    import numpy  # noqa: F401  (imported before the loop: see run/runner.measure_run)
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401

    items = req.check()
    if req.executor == "ray":  # the caller places it: voxbench.pipeline.ray_pipeline.run_on_ray
        raise ConfigError("run_pipeline runs here; --executor ray: api.pipeline_run")
    specs = req.specs()
    names = {role: spec.name for role, spec in specs.items()}
    components, starts = start_components(specs)
    names["tts_streams"] = "1" if components.tts_streams else ""
    try:
        folder = RunFolder.create(req.output, new_document(req, starts))
        targets = req.parsed_targets()
        total = len(items) * len(req.modes) * (req.warmup + req.iterations)
        report = progress or (lambda what, d, t: None)
        try:
            if req.load is None:
                _measure(req, folder, components, items, names, targets, report, total)
            else:
                _measure_load(req, req.load, folder, components, items, report)
        finally:
            on_end(folder)
        return folder
    finally:
        for engine in (components.stt, components.llm, components.tts):
            with contextlib.suppress(Exception):  # closing must not hide what was measured
                engine.close()


def _measure(
    req: PipelineRequest,
    folder: RunFolder,
    components: Components,
    items: list[WorkloadItem],
    names: dict[str, str],
    targets: list[Target],
    report: Progress,
    total: int,
) -> None:
    """Every prompt × mode: warm-ups, then the measured conversations, saved as one case."""
    done = 0
    planned = len(items) * len(req.modes)
    chain = f"{names['stt']}+{names['llm']}+{names['tts']}"
    ids = [
        case_id(chain, req.workload, i.id, {"mode": m}, 1, "cpu") for i in items for m in req.modes
    ]
    folder.track(ids, lambda: (c.id for c in folder.doc.cases))
    with folder.measuring(planned, lambda: len(folder.doc.cases)):
        for item in items:
            for mode in req.modes:

                def tick(what: str = f"{item.id} {mode}") -> None:
                    nonlocal done
                    report(what, done, total)
                    done += 1

                case, first = measure_prompt(req, components, item, mode, names, targets, tick)
                if req.save_audio:
                    case.audio_file = save_answer(folder, case, first)
                folder.doc.cases.append(case)
                folder.save()
        report("done", done, total)
        pooled_targets(folder.doc, req)


def measure_prompt(
    req: PipelineRequest,
    components: Components,
    item: WorkloadItem,
    mode: Mode,
    names: dict[str, str],
    targets: list[Target],
    tick: Callable[[], None] = lambda: None,
) -> tuple[Case, Conversation]:
    """One prompt in one mode: ``warmup`` conversations, then ``iterations`` measured ones (the
    first of them keeps its audio), as one case; ``tick`` before each conversation."""
    convs: list[Conversation] = []
    for n in range(req.warmup + req.iterations):
        tick()
        conv = converse(components, Path(item.payload()), mode, keep_audio=n == req.warmup)
        if n >= req.warmup:
            convs.append(conv)
    return _case(req, names, item, mode, convs, targets), convs[0]


def _measure_load(
    req: PipelineRequest,
    plan: LoadPlan,
    folder: RunFolder,
    components: Components,
    items: list[WorkloadItem],
    report: Progress,
) -> None:
    """Warm-up conversations (not kept), then every level, saved as it ends."""
    assert folder.doc.pipeline is not None
    result = folder.doc.pipeline
    planned = len(req.modes) * len(plan.levels)
    total = len(req.modes) * req.warmup * len(items) + planned
    done = 0
    folder.track(
        [f"{m}/{lv.label}" for m in req.modes for lv in plan.levels],
        lambda: (f"{lv.mode}/{lv.label}" for lv in result.levels),
    )
    with folder.measuring(planned, lambda: len(result.levels), unit="levels"):
        for mode in req.modes:
            for _ in range(req.warmup):
                for item in items:
                    report(f"warm-up {item.id} {mode}", done, total)
                    converse(components, Path(item.payload()), mode)
                    done += 1

        def started(label: str, seconds: float) -> None:
            report(f"level {label}, ~{seconds:g} s", done, total)

        def ended(level: Any) -> None:
            nonlocal done
            done += 1
            result.levels.append(level)
            result.capacity = capacity(result.levels, plan.slo)
            folder.save()

        run_levels(components, items, req.modes, plan, on_level=ended, on_start=started)
        report("done", done, total)


def failures(doc: ResultDocument) -> list[str]:
    """Why the run should exit non-zero: failed conversations or failed targets, one line each."""
    lines = []
    for case in doc.cases:
        if case.error_count:
            first = case.errors[0]
            lines.append(
                f"{case.id}: {case.error_count} conversation(s) failed "
                f"({first.where}: {first.type}: {first.message})"
            )
    if doc.pipeline is not None:
        for level in doc.pipeline.levels:
            if level.validity is not None and not level.validity.valid:
                lines.append(f"level {level.label} invalid: {'; '.join(level.validity.reasons)}")
        if doc.pipeline.levels and not any(lv.meets_slo for lv in doc.pipeline.levels):
            slo = doc.pipeline.settings.get("slo")
            lines.append(f"no level met the SLO ({slo})")
        for row in doc.pipeline.targets:
            if row.passed is False:
                lines.append(
                    f"{row.mode}: {row.label} {row.actual:.4g} {row.unit} against "
                    f"{row.op} {row.target:g}"
                )
    return lines
