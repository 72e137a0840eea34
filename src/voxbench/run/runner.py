"""Plan a run (engines × workloads → cases), measure every case, and write the run folder.

The run folder is ``<output>/<machine-id>/<run-id>/`` with ``results.json``, ``report.md`` and
``audio/``. ``results.json`` is rewritten after every case, so an interrupted run keeps what it
measured.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxbench import __version__
from voxbench.engines import devices
from voxbench.engines.registry import BUILTIN_ENGINES, EngineSpec, redact
from voxbench.errors import ConfigError, EngineUnavailable, VoxbenchError
from voxbench.report.views import skip_text
from voxbench.results.document import EngineRef, ResultDocument, RunConfig
from voxbench.run import environment
from voxbench.run.params import combinations
from voxbench.run.scenario import CaseOutcome, Settings, run_case, write_audio
from voxbench.workloads import Workload, WorkloadItem, resolve_workload


class Interrupted(VoxbenchError):
    exit_code = 130


@dataclass
class EngineChoice:
    """One engine as asked for: its reference, fixed arguments and swept parameters."""

    ref: str
    args: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class RunRequest:
    """What to run. ``engines=None`` means every available built-in engine; ``workloads=None``
    means each engine's default workloads. ``sweep`` applies to every engine (crossed with each
    engine's own), and every case runs on each of ``devices`` and ``batch_sizes``."""

    engines: list[EngineChoice] | None = None
    workloads: list[str] | None = None
    settings: Settings = field(default_factory=Settings)
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    output: Path = Path("results")
    machine_id: str | None = None
    argv: list[str] = field(default_factory=list)
    config_file: dict[str, Any] | None = None


@dataclass(frozen=True)
class PlannedCase:
    spec: EngineSpec
    engine: str
    workload: str
    item: WorkloadItem
    batch_size: int = 1


@dataclass
class Plan:
    cases: list[PlannedCase]
    skipped: list[dict[str, str]]
    workloads: list[str]
    engines: list[EngineChoice]


KIND_DEFAULT_WORKLOADS = {"text": ("short", "medium", "long"), "midi": ("piano",), "audio": ()}


def _engine_kind(spec: EngineSpec) -> tuple[str, tuple[str, ...]]:
    """What input an engine takes and its default workloads; an ``input_kind`` argument (the
    command-line engine has one) overrides the class's."""
    factory = spec.factory()
    kind = spec.params.get("input_kind") or getattr(factory, "input_kind", "text")
    defaults = tuple(getattr(factory, "default_workloads", ()))
    if "input_kind" in spec.params or not defaults:
        defaults = KIND_DEFAULT_WORKLOADS.get(kind, ())
    return kind, defaults


def _usable_engines(request: RunRequest, skipped: list[dict[str, str]]) -> list[EngineChoice]:
    explicit = request.engines is not None
    choices = request.engines if explicit else [EngineChoice(name) for name in BUILTIN_ENGINES]
    assert choices is not None
    unique = {(c.ref, repr(sorted(c.args.items())), repr(c.sweep)): c for c in choices}
    usable = []
    for choice in unique.values():
        reason = EngineSpec(choice.ref, choice.args).unavailable_reason()
        if reason is None:
            usable.append(choice)
        elif explicit:
            raise EngineUnavailable(f"engine {choice.ref!r} is unavailable: {reason}")
        else:
            skipped.append({"engine": choice.ref, "reason": reason})
    if not usable:
        raise EngineUnavailable(
            "no engine can run here: " + "; ".join(f"{s['engine']}: {s['reason']}" for s in skipped)
        )
    return usable


def _variants(
    request: RunRequest, choice: EngineChoice, skipped: list[dict[str, str]]
) -> list[tuple[EngineSpec, int]]:
    """Every (spec, batch size) of one engine: devices × batch sizes × swept parameters."""
    factory = EngineSpec(choice.ref, choice.args).factory()
    combos = combinations({**request.sweep, **choice.sweep})
    out = []
    for device in request.devices:
        reason = environment.machine_reason(device) or devices.engine_reason(factory, device)
        if reason:
            skipped.append({"engine": choice.ref, "device": device, "reason": reason})
            continue
        for batch in request.batch_sizes:
            if batch > 1 and not callable(getattr(factory, "synthesize_batch", None)):
                skipped.append(
                    {
                        "engine": choice.ref,
                        "batch_size": str(batch),
                        "reason": "takes no batches (no synthesize_batch)",
                    }
                )
                continue
            out.extend(
                (EngineSpec(choice.ref, {**choice.args, **combo}, device), batch)
                for combo in combos
            )
    return out


def plan(request: RunRequest) -> Plan:
    """Resolve engines, workloads, sweeps and devices into cases; raise a one-line VoxbenchError
    on bad input. Devices or batch sizes an engine cannot use are skipped with the reason."""
    skipped: list[dict[str, str]] = []
    usable = _usable_engines(request, skipped)
    given: list[Workload] | None = None
    if request.workloads is not None:
        given = [resolve_workload(ref) for ref in dict.fromkeys(request.workloads)]
    cases: list[PlannedCase] = []
    used: set[str] = set()
    for choice in usable:
        base = EngineSpec(choice.ref, choice.args)
        kind, defaults = _engine_kind(base)
        if given is None:
            chosen = [resolve_workload(w) for w in defaults]
        else:
            chosen = [w for w in given if w.kind == kind]
            if not chosen:
                hint = f" (try --workload {defaults[0]})" if defaults else ""
                raise ConfigError(
                    f"engine {choice.ref!r} takes {kind} input, but no {kind} "
                    f"workload was given{hint}"
                )
        name = base.name
        for spec, batch in _variants(request, choice, skipped):
            for w in chosen:
                used.add(w.name)
                cases.extend(PlannedCase(spec, name, w.name, item, batch) for item in w.items)
    for w in given or []:
        if w.name not in used and not skipped:
            raise ConfigError(
                f"workload {w.name!r} is {w.kind} input, which none of the chosen engines takes"
            )
    if not cases:
        reasons = "; ".join(skip_text(s) for s in skipped) or "no engine has a workload it takes"
        raise ConfigError(f"nothing to run: {reasons}")
    return Plan(cases=cases, skipped=skipped, workloads=sorted(used), engines=usable)


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_json(doc: ResultDocument, path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(doc.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp, path)


Progress = Callable[[PlannedCase | None, int], None]


def execute(
    request: RunRequest,
    the_plan: Plan,
    progress: Progress = lambda c, n: None,
    on_case: Callable[[CaseOutcome], None] = lambda o: None,
) -> tuple[ResultDocument, Path]:
    """Measure every planned case and write the run folder; returns the document and the folder."""
    from voxbench.report.markdown import write_report
    from voxbench.run import environment

    s = request.settings
    if s.iterations < 1:
        raise ConfigError("--iterations must be at least 1")
    if s.warmup < 0:
        raise ConfigError("--warmup cannot be negative")
    env = environment.capture(request.machine_id)
    run_id = new_run_id()
    run_dir = request.output / env.machine_id / run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise ConfigError(f"cannot create the results folder {run_dir}: {exc.strerror}") from None
    engines = [
        EngineRef(ref=redact(c.ref), args=c.args, sweep={**request.sweep, **c.sweep})
        for c in the_plan.engines
    ]
    doc = ResultDocument(
        run_id=run_id,
        created_at=now_iso(),
        voxbench_version=__version__,
        environment=env,
        config=RunConfig(
            engines=engines,
            workloads=the_plan.workloads,
            iterations=s.iterations,
            warmup=s.warmup,
            mode=s.mode,  # type: ignore[arg-type]
            timeout_s=s.timeout_s,
            stream=s.stream,
            devices=request.devices,
            batch_sizes=request.batch_sizes,
            config_file=request.config_file,  # type: ignore[arg-type]
            save_audio=s.save_audio,
            argv=[redact(a) for a in request.argv],
        ),
        skipped=[{k: redact(v) for k, v in s.items()} for s in the_plan.skipped],
    )
    # What summarising and saving a case import, imported now: a Ctrl-C that lands inside a
    # first-time import leaves the module half-initialised (numpy then recurses without end
    # when the interrupted run is written out).
    import numpy  # noqa: F401
    import scipy.stats  # noqa: F401
    import soundfile  # noqa: F401

    started = time.perf_counter()
    results_path = run_dir / "results.json"
    try:
        for planned in the_plan.cases:
            progress(planned, 0)
            outcome = run_case(
                planned.spec,
                planned.engine,
                planned.workload,
                planned.item,
                s,
                tick=lambda n, p=planned: progress(p, n),
                batch_size=planned.batch_size,
            )
            if s.save_audio:
                outcome.case.audio_file = write_audio(outcome, run_dir / "audio")
            doc.cases.append(outcome.case)
            write_json(doc, results_path)  # after every case: an interrupted run keeps its cases
            on_case(outcome)
    except KeyboardInterrupt:
        raise close_interrupted(doc, run_dir, started, len(the_plan.cases), write_report) from None
    close_run(doc, run_dir, started, write_report)
    return doc, run_dir


def close_run(
    doc: ResultDocument,
    run_dir: Path,
    started: float,
    render: Callable[[ResultDocument, Path], object],
    finished: bool = True,
) -> None:
    """Stamp the run's end (unless interrupted) and write results.json and report.md."""
    if finished:
        doc.finished_at = now_iso()
    doc.duration_s = time.perf_counter() - started
    write_json(doc, run_dir / "results.json")
    render(doc, run_dir / "report.md")


def close_interrupted(
    doc: ResultDocument,
    run_dir: Path,
    started: float,
    planned: int,
    render: Callable[[ResultDocument, Path], object],
) -> Interrupted:
    """Write what an interrupted run measured; the error to raise says where it is."""
    close_run(doc, run_dir, started, render, finished=False)
    return Interrupted(
        f"interrupted after {len(doc.cases)} of {planned} cases; what was measured is in {run_dir}"
    )


def calls_per_case(settings: Settings) -> int:
    return 1 + settings.warmup + settings.iterations
