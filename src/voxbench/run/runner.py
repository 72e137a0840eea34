"""Measure a planned run case by case into its run folder.

:func:`start_run` captures the machine and opens the run folder with an empty document;
:func:`measure_run` runs every case through :func:`voxbench.run.scenario.run_case` (one after
another here, or as Ray tasks with ``executor="ray"``: :mod:`voxbench.run.ray_executor`), saving
``results.json`` after each (each case with its validity verdict,
:func:`voxbench.results.validity.case_validity`), and closes the folder (as interrupted on
Ctrl-C). :func:`execute` does both. The report is not written here:
:func:`voxbench.api.benchmark` renders it, so measuring never depends on presentation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from voxbench import __version__
from voxbench.engines.registry import redact
from voxbench.results.document import EngineRef, ResultDocument, RunConfig
from voxbench.results.folder import RunFolder, new_run_id, now_iso
from voxbench.results.validity import case_validity
from voxbench.run import environment
from voxbench.run.planner import Plan, PlannedCase
from voxbench.run.request import RunRequest
from voxbench.run.scenario import CaseOutcome, run_case, write_audio

Progress = Callable[[PlannedCase, int], None]
"""Called with (case, 0) when a case starts and (case, n) after n more engine calls."""


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
    """Measure every planned case into ``folder`` and close it; Ctrl-C closes it as interrupted
    and raises :class:`~voxbench.errors.Interrupted`."""
    # What summarising and saving a case import, imported now: a Ctrl-C that lands inside a
    # first-time import leaves the module half-initialised (numpy then recurses without end
    # when the interrupted run is written out).
    import numpy  # noqa: F401
    import scipy.stats  # noqa: F401
    import soundfile  # noqa: F401

    s = request.settings
    doc = folder.doc

    def finish(outcome: CaseOutcome) -> None:
        if s.save_audio:
            outcome.case.audio_file = write_audio(outcome, folder.audio_dir)
        outcome.case.validity = case_validity(outcome.case)
        doc.cases.append(outcome.case)
        folder.save()  # after every case: an interrupted or killed run keeps its cases
        on_case(outcome)

    with folder.measuring(len(the_plan.cases), lambda: len(doc.cases)):
        if request.executor == "ray":
            _measure_on_ray(doc, request, the_plan, progress, finish)
            folder.save()
            return doc
        for planned in the_plan.cases:
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
    """The cases as Ray tasks (:mod:`voxbench.run.ray_executor`), each saved as it finishes;
    then the document's cases are put back in plan order, as a local run writes them."""
    from voxbench.run.ray_executor import measure_cases

    position = {id(p): i for i, p in enumerate(the_plan.cases)}
    rank: dict[int, int] = {}

    def arrived(planned: PlannedCase, outcome: CaseOutcome) -> None:
        rank[id(outcome.case)] = position[id(planned)]
        finish(outcome)

    measure_cases(request, the_plan.cases, the_plan.engines, arrived, progress)
    doc.cases.sort(key=lambda c: rank.get(id(c), len(position)))


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
