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

from voxbench import __version__
from voxbench.errors import ConfigError, EngineUnavailable, VoxbenchError
from voxbench.registry import BUILTIN_ENGINES, EngineSpec
from voxbench.results import EngineRef, ResultDocument, RunConfig
from voxbench.scenario import CaseOutcome, Settings, run_case, write_audio
from voxbench.workloads import Workload, WorkloadItem, resolve_workload


class Interrupted(VoxbenchError):
    exit_code = 130


@dataclass
class RunRequest:
    """What to run. ``engines=None`` means every available built-in engine; ``workloads=None``
    means each engine's default workloads."""

    engines: list[EngineSpec] | None = None
    workloads: list[str] | None = None
    settings: Settings = field(default_factory=Settings)
    output: Path = Path("results")
    machine_id: str | None = None
    argv: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedCase:
    spec: EngineSpec
    engine: str
    workload: str
    item: WorkloadItem


@dataclass
class Plan:
    cases: list[PlannedCase]
    skipped: list[dict[str, str]]
    workloads: list[str]


def _engine_kind(spec: EngineSpec) -> tuple[str, tuple[str, ...]]:
    factory = spec.factory()
    return getattr(factory, "input_kind", "text"), tuple(getattr(factory, "default_workloads", ()))


def plan(request: RunRequest) -> Plan:
    """Resolve engines and workloads into cases; raise ConfigError/EngineUnavailable on bad input."""
    explicit = request.engines is not None
    specs = request.engines if explicit else [EngineSpec(name) for name in BUILTIN_ENGINES]
    assert specs is not None
    specs = list({(s.ref, repr(sorted(s.params.items()))): s for s in specs}.values())
    skipped: list[dict[str, str]] = []
    usable: list[EngineSpec] = []
    for spec in specs:
        reason = spec.unavailable_reason()
        if reason is None:
            usable.append(spec)
        elif explicit:
            raise EngineUnavailable(f"engine {spec.ref!r} is unavailable: {reason}")
        else:
            skipped.append({"engine": spec.ref, "reason": reason})
    if not usable:
        raise EngineUnavailable(
            "no engine can run here: " + "; ".join(f"{s['engine']}: {s['reason']}" for s in skipped)
        )

    given: list[Workload] | None = None
    if request.workloads is not None:
        given = [resolve_workload(ref) for ref in dict.fromkeys(request.workloads)]
    cases: list[PlannedCase] = []
    used: set[str] = set()
    for spec in usable:
        kind, defaults = _engine_kind(spec)
        if given is None:
            chosen = [resolve_workload(w) for w in defaults]
        else:
            chosen = [w for w in given if w.kind == kind]
            if not chosen:
                hint = f" (try --workload {defaults[0]})" if defaults else ""
                raise ConfigError(
                    f"engine {spec.ref!r} takes {kind} input, but no {kind} "
                    f"workload was given{hint}"
                )
        name = spec.name
        for w in chosen:
            used.add(w.name)
            cases.extend(PlannedCase(spec, name, w.name, item) for item in w.items)
    for w in given or []:
        if w.name not in used:
            raise ConfigError(
                f"workload {w.name!r} is {w.kind} input, which none of the chosen engines takes"
            )
    if not cases:
        raise ConfigError("nothing to run: no engine has a workload it can take")
    return Plan(cases=cases, skipped=skipped, workloads=sorted(used))


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write_json(doc: ResultDocument, path: Path) -> None:
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
    from voxbench import environment
    from voxbench.report import write_report

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
    engines: dict[str, EngineRef] = {}
    for c in the_plan.cases:
        engines.setdefault(c.spec.ref, EngineRef(ref=c.spec.ref, params=c.spec.params))
    doc = ResultDocument(
        run_id=run_id,
        created_at=_now(),
        voxbench_version=__version__,
        environment=env,
        config=RunConfig(
            engines=list(engines.values()),
            workloads=the_plan.workloads,
            iterations=s.iterations,
            warmup=s.warmup,
            mode=s.mode,  # type: ignore[arg-type]
            timeout_s=s.timeout_s,
            stream=s.stream,
            device=s.device,  # type: ignore[arg-type]
            save_audio=s.save_audio,
            argv=request.argv,
        ),
        skipped=the_plan.skipped,
    )
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
            )
            if s.save_audio:
                outcome.case.audio_file = write_audio(outcome, run_dir / "audio")
            doc.cases.append(outcome.case)
            _write_json(doc, results_path)  # after every case: an interrupted run keeps its cases
            on_case(outcome)
    except KeyboardInterrupt:
        doc.duration_s = time.perf_counter() - started
        _write_json(doc, results_path)
        write_report(doc, run_dir / "report.md")
        raise Interrupted(
            f"interrupted after {len(doc.cases)} of {len(the_plan.cases)} cases; "
            f"what was measured is in {run_dir}"
        ) from None
    doc.finished_at = _now()
    doc.duration_s = time.perf_counter() - started
    _write_json(doc, results_path)
    write_report(doc, run_dir / "report.md")
    return doc, run_dir


def calls_per_case(settings: Settings) -> int:
    return 1 + settings.warmup + settings.iterations
