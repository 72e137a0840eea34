"""Measure a planned run case by case into its run folder.

:func:`start_run` captures the machine and opens the run folder with an empty document;
:func:`measure_run` runs every case through :func:`voxbench.run.scenario.run_case` (one after
another here, or as Ray tasks with ``executor="ray"``: :mod:`voxbench.run.ray_executor`), saving
``results.json`` after each (each case with its validity verdict,
:func:`voxbench.results.validity.case_validity`), and closes the folder (as interrupted on
Ctrl-C). :func:`execute` does both. The report is not written here:
:func:`voxbench.api.benchmark` renders it, so measuring never depends on presentation.

A run records the request it was made from (``config.request``); :func:`resume_request` reads it
back so that ``voxbench run --resume RUN_DIR`` re-plans the same cases and :func:`measure_run`
measures only those the folder does not hold yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from voxbench import __version__
from voxbench.engines.registry import redact
from voxbench.errors import ConfigError
from voxbench.results.document import EngineRef, ResultDocument, RunConfig
from voxbench.results.folder import RunFolder, new_run_id, now_iso
from voxbench.results.keys import case_id
from voxbench.results.validity import case_validity
from voxbench.run import environment
from voxbench.run.planner import Plan, PlannedCase
from voxbench.run.request import EngineChoice, RayOptions, RunRequest
from voxbench.run.scenario import CaseOutcome, run_case, write_audio
from voxbench.run.settings import Settings

Progress = Callable[[PlannedCase, int], None]
"""Called with (case, 0) when a case starts and (case, n) after n more engine calls."""


def planned_id(planned: PlannedCase) -> str:
    """The id the case will have in the document (:func:`voxbench.results.keys.case_id`)."""
    spec = planned.spec
    return case_id(
        planned.engine, planned.workload, planned.item.id, spec.params, planned.batch_size,
        spec.device,
    )  # fmt: skip


def _workload_ref(ref: str) -> str:
    """A workload reference as --resume finds it from anywhere: a file or folder made absolute."""
    path = Path(ref).expanduser()
    return str(path.resolve()) if path.exists() else ref


def recorded_request(request: RunRequest, the_plan: Plan) -> dict[str, Any]:
    """What :func:`resume_request` needs to re-plan the run, as JSON (credentials redacted):
    the engines as planned, the workload references as given, the settings and the executor."""
    return {
        "engines": [
            {
                "ref": redact(c.ref),
                "args": c.args,
                "sweep": {**request.sweep, **c.sweep},
                "resources": c.resources,
            }
            for c in the_plan.engines
        ],
        "workloads": None
        if request.workloads is None
        else [_workload_ref(w) for w in request.workloads],
        "settings": asdict(request.settings),
        "devices": request.devices,
        "batch_sizes": request.batch_sizes,
        "executor": request.executor,
        "ray": request.ray.record(),
    }


def resume_request(folder: RunFolder) -> RunRequest:
    """The request a run was made with, read back from its document, writing into the same
    folder; one-line ConfigError when the document does not record it (schema before 1.7) or a
    credential in it was redacted."""
    doc = folder.doc
    rec = doc.config.request if doc.config is not None else None
    if not rec:
        raise ConfigError(
            f"--resume: {folder.path} does not record its request (written by voxbench "
            f"{doc.voxbench_version}, schema {doc.schema_version}); run it again instead"
        )
    refs = [e["ref"] for e in rec["engines"]]
    hidden = [r for r in refs if "***@" in r]
    if hidden:
        raise ConfigError(
            f"--resume: the run recorded {hidden[0]!r} with its credentials redacted; "
            "run it again instead"
        )
    known = {f.name for f in fields(Settings)}
    settings = Settings(**{k: v for k, v in rec["settings"].items() if k in known})
    request = RunRequest(
        engines=[
            EngineChoice(e["ref"], dict(e["args"]), dict(e["sweep"]), dict(e["resources"]))
            for e in rec["engines"]
        ],
        workloads=rec["workloads"],
        settings=settings,
        devices=list(rec["devices"]),
        batch_sizes=list(rec["batch_sizes"]),
        output=folder.path.parent.parent,
        machine_id=doc.environment.machine_id,
        argv=list(doc.config.argv) if doc.config else [],
        config_file=doc.config.config_file if doc.config else None,
        executor=rec["executor"],
        ray=RayOptions.from_record(rec.get("ray")),
    )
    return request.validate()


def new_document(request: RunRequest, the_plan: Plan) -> ResultDocument:
    """The run's document before any case: environment, configuration (secrets redacted), skips."""
    s = request.settings
    engines = [
        EngineRef(ref=redact(c.ref), args=c.args, sweep={**request.sweep, **c.sweep})
        for c in the_plan.engines
    ]
    return ResultDocument(
        run_id=new_run_id(),
        created_at=now_iso(),
        voxbench_version=__version__,
        environment=environment.capture(request.machine_id),
        config=RunConfig(
            engines=engines,
            workloads=the_plan.workloads,
            iterations=s.iterations,
            warmup=s.warmup,
            mode=s.mode,
            timeout_s=s.timeout_s,
            stream=s.stream,
            devices=request.devices,
            batch_sizes=request.batch_sizes,
            config_file=request.config_file,
            save_audio=s.save_audio,
            argv=[redact(a) for a in request.argv],
            request=recorded_request(request, the_plan),
        ),
        skipped=[{k: redact(v) for k, v in s.items()} for s in the_plan.skipped],
    )


def start_run(request: RunRequest, the_plan: Plan) -> RunFolder:
    """Validate the request, capture the machine and create the run folder."""
    request.validate()
    return RunFolder.create(request.output, new_document(request, the_plan))


def measure_run(
    folder: RunFolder,
    request: RunRequest,
    the_plan: Plan,
    progress: Progress = lambda c, n: None,
    on_case: Callable[[CaseOutcome], None] = lambda o: None,
) -> ResultDocument:
    """Measure every planned case the folder does not hold yet into ``folder`` (all of them for
    a new run; the missing ones for ``--resume``), in plan order, and close it; Ctrl-C closes it
    as interrupted and raises :class:`~voxbench.errors.Interrupted`."""
    # What summarising and saving a case import, imported now: a Ctrl-C that lands inside a
    # first-time import leaves the module half-initialised (numpy then recurses without end
    # when the interrupted run is written out).
    import numpy  # noqa: F401
    import scipy.stats  # noqa: F401
    import soundfile  # noqa: F401

    s = request.settings
    doc = folder.doc
    order = {planned_id(p): i for i, p in enumerate(the_plan.cases)}
    folder.track(list(order), lambda: (c.id for c in doc.cases))
    measured = {c.id for c in doc.cases}
    todo = [p for p in the_plan.cases if planned_id(p) not in measured]

    def finish(outcome: CaseOutcome) -> None:
        if s.save_audio:
            outcome.case.audio_file = folder.save_audio(
                lambda staging: write_audio(outcome, staging)
            )
        outcome.case.validity = case_validity(outcome.case)
        doc.cases.append(outcome.case)
        doc.cases.sort(key=lambda c: order.get(c.id, len(order)))  # plan order, resumed or not
        folder.save()  # after every case: an interrupted or killed run keeps its cases
        on_case(outcome)

    folder.save()  # the plan on disk before the first case: a kill now still says what is missing
    with folder.measuring(len(the_plan.cases), lambda: len(doc.cases)):
        if request.executor == "ray":
            from voxbench.results.machines import MachineDocuments

            MachineDocuments.attach(folder)  # cases that ran on other machines: theirs too
            _measure_on_ray(doc, request, Plan(todo, the_plan.skipped, the_plan.workloads,
                                               the_plan.engines), progress, finish)  # fmt: skip
            return doc
        for planned in todo:
            progress(planned, 0)
            outcome = run_case(
                planned.spec,
                planned.engine,
                planned.workload,
                planned.item,
                s,
                tick=lambda n, p=planned: progress(p, n),  # type: ignore[misc]
                batch_size=planned.batch_size,
            )
            finish(outcome)
    return doc


def _measure_on_ray(
    doc: ResultDocument,
    request: RunRequest,
    the_plan: Plan,
    progress: Progress,
    finish: Callable[[CaseOutcome], None],
) -> None:
    """The cases as Ray tasks (:mod:`voxbench.run.ray_executor`), each saved as it finishes
    (``finish`` keeps the document's cases in plan order, as a local run writes them)."""
    from voxbench.run.ray_executor import measure_cases

    def arrived(planned: PlannedCase, outcome: CaseOutcome) -> None:
        finish(outcome)

    measure_cases(request, the_plan.cases, the_plan.engines, arrived, progress)


def execute(
    request: RunRequest,
    the_plan: Plan,
    progress: Progress = lambda c, n: None,
    on_case: Callable[[CaseOutcome], None] = lambda o: None,
) -> tuple[ResultDocument, Path]:
    """Measure every planned case and write the run folder (``results.json``, ``audio/``);
    returns the document and the folder's path."""
    folder = start_run(request, the_plan)
    return measure_run(folder, request, the_plan, progress, on_case), folder.path
