"""The library functions behind every measuring command: each measures (or judges), closes the
run folder, writes its report and records the run in the store.

The CLI parses its options into a request, calls one of these and prints what comes back; a
Python user calls the same function and gets the same checks::

    from voxbench import api
    from voxbench.run import RunOptions, RunRequest

    request = RunRequest.from_sources(None, RunOptions(engines=["espeak"], workloads=["short"]))
    outcome = api.benchmark(request, record=False)
    print(outcome.path, outcome.doc.cases[0].rtf)

An interrupted run (Ctrl-C, or SIGTERM inside :func:`voxbench.cli.signals.stop_on_signals`,
which the command line holds) still gets its ``report.md`` for what it measured and goes to the store marked as
partial (``status`` ``interrupted``); the :class:`~voxbench.errors.Interrupted` then propagates
(exit status 130 for SIGINT, 143 for SIGTERM on the command line). :func:`resume_run`,
:func:`resume_load` and :func:`resume_micro` read an unfinished run folder back for
``--resume``: the same call then measures only what is missing, into the same folder, and the
complete document replaces the partial one in the store. Recording never loses a run: a store
failure is a warning on stderr (:func:`record_run`). Files are written atomically (temporary
file, fsync, ``os.replace``), so a SIGKILL at any moment leaves no half-written file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError, Interrupted
from voxbench.report import render_markdown
from voxbench.results.folder import RunFolder, atomic_write_text

if TYPE_CHECKING:
    from voxbench.analysis.aggregate import Aggregate
    from voxbench.analysis.compare import Comparison
    from voxbench.analysis.history import History
    from voxbench.load.run import LoadRequest
    from voxbench.load.schedule import Level
    from voxbench.micro.runner import MicroCase, MicroPlan, MicroRequest
    from voxbench.pipeline.run import PipelineRequest
    from voxbench.quality.base import Metric
    from voxbench.quality.targets import Target
    from voxbench.results.document import ResultDocument
    from voxbench.run.planner import Plan
    from voxbench.run.request import RunRequest
    from voxbench.run.runner import Progress

QualityProgress = Callable[[int, int, str], None]
"""Called with (cases done, cases in all, what is being judged)."""


@dataclass
class Outcome:
    """What a command produced: the document, its run folder, and the store it went to."""

    doc: ResultDocument
    path: Path
    stored: str | None = None  # the store's URL (password redacted) when the run was recorded

    @property
    def failed(self) -> bool:
        """True when a case recorded errors: the command's exit status is then 1."""
        return any(c.error_count for c in self.doc.cases)


@dataclass
class Resume:
    """An unfinished run read back for ``--resume``: its folder, the request and plan it was
    made with, and how many planned cases (or levels) are still to measure (0: complete)."""

    folder: RunFolder
    request: Any  # RunRequest, LoadRequest or MicroRequest
    plan: Any = None  # Plan or MicroPlan; None for load
    remaining: int = 0


@dataclass(frozen=True)
class QualityPlan:
    """Which quality metrics to compute and the targets to judge them against."""

    metrics: list[Metric]
    targets: dict[str, Target]
    jobs: int | None = None  # worker processes for the metric families; None: one per CPU


def quality_plan(
    config: Path | None,
    wanted: bool | None = None,
    metrics: list[str] | None = None,
    targets: list[str] | None = None,
    *,
    always: bool = False,
    jobs: int | None = None,
) -> QualityPlan | None:
    """Resolve the quality metrics and targets asked for (here or in the config file's
    ``quality``/``metrics``/``[targets]``); None when quality is not asked for. Resolved before
    measuring, so a misspelt metric or target fails at once. ``always``: asked for regardless
    (``voxbench quality``)."""
    from voxbench.quality.registry import select_metrics
    from voxbench.quality.targets import resolve_targets
    from voxbench.run.config import ConfigFile, load_config
    from voxbench.run.request import split_values

    cfg = load_config(config)[0] if config else ConfigFile()
    names = split_values(metrics) or cfg.metrics
    if wanted is None:
        wanted = bool(cfg.quality) or bool(metrics or targets)
    if not (wanted or always):
        return None
    chosen = select_metrics(names)
    directions = {v.name: v.higher_is_better for m in chosen for v in m.values}
    return QualityPlan(chosen, resolve_targets(cfg.targets, targets, directions), jobs)


def record_run(doc: ResultDocument, path: Path, store: str | None = None) -> str | None:
    """Add the run to the store (``store``, else ``$VOXBENCH_STORE``, else the default file);
    returns the redacted URL, or None when recording is off or failed (with a warning)."""
    from voxbench.results.store import record, resolve_url
    from voxbench.results.store.dialects import redact_url

    url = resolve_url(store)
    if url and record(doc, url, source=str(path.resolve())):
        return redact_url(url)
    return None


def write_report(doc: ResultDocument, path: Path) -> Path:
    """``report.md`` for the document, written atomically (a kill never leaves half of it)."""
    return atomic_write_text(path, render_markdown(doc))


@contextmanager
def _reported(folder: RunFolder, store: str | None = None, record: bool = False) -> Iterator[None]:
    """Write report.md when the block ends, interrupted or not; an interrupted run is also
    recorded in the store (as partial: its ``status`` says so) before the error goes on."""
    try:
        yield
    except Interrupted:
        if record:
            record_run(folder.doc, folder.path, store)
        raise
    finally:
        write_report(folder.doc, folder.report_path)


def check_benchmark(request: RunRequest, quality: QualityPlan | None = None) -> None:
    """The checks :func:`benchmark` makes before measuring, for callers that plan first."""
    request.validate()
    if quality is not None and not request.settings.save_audio:
        raise ConfigError("--quality judges the saved audio; drop --no-audio")


def benchmark(
    request: RunRequest,
    the_plan: Plan | None = None,
    *,
    quality: QualityPlan | None = None,
    store: str | None = None,
    record: bool = True,
    progress: Progress | None = None,
    quality_progress: QualityProgress | None = None,
    resume: RunFolder | None = None,
) -> Outcome:
    """``voxbench run``: plan (unless given), measure every case, judge quality when asked,
    write results.json, report.md and audio/, and record the run. ``resume`` (from
    :func:`resume_run`): measure only the cases that folder lacks, into it."""
    from voxbench.run.planner import plan
    from voxbench.run.runner import measure_run, start_run

    check_benchmark(request, quality)
    the_plan = the_plan or plan(request)
    folder = resume or start_run(request, the_plan)
    with _reported(folder, store, record):
        measure_run(folder, request, the_plan, progress or (lambda c, n: None))
        if quality is not None:
            _judge(folder, quality, quality_progress)
    return _finish(folder, store, record)


def resume_run(run: Path) -> Resume:
    """``voxbench run --resume RUN_DIR``: the unfinished run folder, re-planned with the request
    it recorded; pass ``.folder``, ``.request`` and ``.plan`` to :func:`benchmark`
    (``remaining`` 0: nothing to resume). One-line ConfigError for a folder that is not a run."""
    from voxbench.run.planner import plan
    from voxbench.run.runner import planned_id, resume_request

    folder = RunFolder.resume(run, "single", "run")
    if folder.complete:
        return Resume(folder, None)
    request = resume_request(folder)
    the_plan = plan(request)
    ids = {planned_id(p) for p in the_plan.cases}
    lost = [i for i in folder.doc.incomplete if i not in ids]
    if lost:
        raise ConfigError(f"--resume: case {lost[0]} of {folder.path} no longer plans here")
    done = {c.id for c in folder.doc.cases}
    return Resume(folder, request, the_plan, len(ids - done))


def judge(run: Path, quality: QualityPlan, progress: QualityProgress | None = None) -> Outcome:
    """``voxbench quality RUN_DIR``: judge the audio a finished run saved; the same document with
    ``quality`` filled in is written back, with its report. Not recorded (the run already is)."""
    folder = RunFolder.open(run)
    if folder.doc.scenario != "single":
        raise ConfigError(f"{folder.path}: a {folder.doc.scenario} run has no saved audio to judge")
    with _reported(folder):
        _judge(folder, quality, progress)
    return Outcome(folder.doc, folder.path)


def _judge(folder: RunFolder, quality: QualityPlan, progress: QualityProgress | None) -> None:
    from voxbench.quality.evaluate import evaluate_document

    folder.doc = evaluate_document(
        folder.doc,
        folder.path,
        quality.metrics,
        quality.targets,
        jobs=quality.jobs,
        progress=progress,
    )
    folder.save()


def load_test(
    request: LoadRequest,
    *,
    store: str | None = None,
    record: bool = True,
    progress: Callable[[int, Level, float], None] | None = None,
    resume: RunFolder | None = None,
) -> Outcome:
    """``voxbench load``: every level against the target, capacity and cost; the run folder,
    its report, and the store. ``resume`` (from :func:`resume_load`): only the levels that
    folder lacks, into it."""
    from voxbench.load.run import measure_load, start_load

    folder = resume or start_load(request)
    with _reported(folder, store, record):
        measure_load(folder, request, progress or (lambda i, lv, s: None))
    return _finish(folder, store, record)


def resume_load(run: Path) -> Resume:
    """``voxbench load --resume RUN_DIR``: the unfinished load run and the request its document
    recorded (``load.settings``); ``remaining`` 0: nothing to resume."""
    from voxbench.load.run import resume_request

    folder = RunFolder.resume(run, "load", "load")
    if folder.complete:
        return Resume(folder, None)
    request = resume_request(folder)
    assert folder.doc.load is not None
    done = {lv.label for lv in folder.doc.load.levels}
    return Resume(folder, request, None, sum(lv.label not in done for lv in request.levels))


def micro_bench(
    request: MicroRequest,
    the_plan: MicroPlan | None = None,
    *,
    store: str | None = None,
    record: bool = True,
    progress: Callable[[MicroCase, bool], None] | None = None,
    resume: RunFolder | None = None,
) -> Outcome:
    """``voxbench micro``: plan (unless given) and time every kernel case; folder, report, store.
    ``resume`` (from :func:`resume_micro`): only the cases that folder lacks, into it."""
    from voxbench.micro.runner import measure_micro, plan_micro, start_micro

    request.settings()  # bad values fail before any measuring
    the_plan = the_plan or plan_micro(request)
    folder = resume or start_micro(request, the_plan)
    with _reported(folder, store, record):
        if request.executor == "ray":  # each case a Ray task (docs/distributed.md)
            from voxbench.micro.ray_micro import measure_micro_on_ray

            measure_micro_on_ray(folder, request, the_plan, progress or (lambda c, d: None))
        else:
            measure_micro(folder, request, the_plan, progress or (lambda c, d: None))
    return _finish(folder, store, record)


def resume_micro(run: Path) -> Resume:
    """``voxbench micro --resume RUN_DIR``: the unfinished micro run, re-planned with the
    request it recorded; ``remaining`` 0: nothing to resume."""
    from voxbench.micro.runner import plan_micro, resume_request

    folder = RunFolder.resume(run, "micro", "micro")
    if folder.complete:
        return Resume(folder, None)
    request = resume_request(folder)
    the_plan = plan_micro(request)
    ids = {c.id for c in the_plan.cases}
    lost = [i for i in folder.doc.incomplete if i not in ids]
    if lost:
        raise ConfigError(f"--resume: case {lost[0]} of {folder.path} no longer plans here")
    done = {c.id for c in folder.doc.cases}
    return Resume(folder, request, the_plan, len(ids - done))


def pipeline_run(
    request: PipelineRequest,
    *,
    store: str | None = None,
    record: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> Outcome:
    """``voxbench pipeline``: start the chain's components, run every spoken prompt in every mode,
    write the run folder and its report, and record the run."""
    from voxbench.pipeline.run import run_pipeline

    ended: list[RunFolder] = []

    def report(folder: RunFolder) -> None:
        ended.append(folder)
        write_report(folder.doc, folder.report_path)

    try:
        if request.executor == "ray":  # each prompt × mode a Ray task (docs/distributed.md)
            from voxbench.pipeline.ray_pipeline import run_on_ray

            items = request.check()
            folder = run_on_ray(request, items, progress or (lambda w, d, t: None), report)
        else:
            folder = run_pipeline(request, progress, on_end=report)
    except Interrupted:
        if record and ended:  # what was measured goes to the store, marked as partial
            record_run(ended[0].doc, ended[0].path, store)
        raise
    return _finish(folder, store, record)


def settle(folder: RunFolder, store: str | None = None, record: bool = True) -> Outcome:
    """``--resume`` of a run that is already complete: a kill after its last case but before its
    report or its store record (or the store's failure then) is made good — report.md written
    again, the run recorded (adding the same document again changes nothing)."""
    write_report(folder.doc, folder.report_path)
    return _finish(folder, store, record)


def _finish(folder: RunFolder, store: str | None, record: bool) -> Outcome:
    stored = record_run(folder.doc, folder.path, store) if record else None
    return Outcome(folder.doc, folder.path, stored)


def describe_engines() -> list[dict[str, Any]]:
    """Every known engine: kind, whether it can run here, and the fix when it cannot."""
    from voxbench.engines.registry import describe, known_engines

    return [describe(name) for name in known_engines()]


# -- HTML reports -----------------------------------------------------------------------------


def check_html() -> None:
    """Fail in one line before measuring when ``--html`` cannot be written here (no
    matplotlib: the message says how to install it)."""
    from voxbench.report.html import require_plotting

    require_plotting()


def write_html_report(doc: ResultDocument, run_dir: Path, *, embed_audio: bool = False) -> Path:
    """``--html``: write ``report.html`` beside report.md, from the document (audio linked as
    ``audio/…``, or embedded with ``embed_audio``); returns its path."""
    from voxbench.report.html import write_html

    return write_html(doc, run_dir, embed_audio=embed_audio)


def _html_target(path: Path) -> Path:
    if path.is_dir():
        raise ConfigError(
            f"--html: {path} is a folder; name the page to write, e.g. {path}/report.html"
        )
    if not path.resolve().parent.is_dir():
        raise ConfigError(f"--html: folder {path.parent} does not exist")
    return path


def check_html_target(path: Path) -> None:
    """The checks :func:`write_compare_html` and the others make on ``--html FILE``, for
    callers that check before the work (a missing folder fails at once)."""
    check_html()
    _html_target(path)


def _run_folder_of(doc: ResultDocument, label: str, store: str | None) -> Path | None:
    """Where a compared run's audio is: the folder it was read from, else the folder the store
    recorded as its source; None when neither exists."""
    folder = Path(label)
    if folder.is_dir():
        return folder
    from voxbench.errors import VoxbenchError
    from voxbench.results.store import open_store, resolve_url

    url = resolve_url(store)
    if url is None or ("://" not in url and not Path(url).exists()):
        return None
    try:
        with open_store(store) as s:
            source = next((i.source for i in s.runs() if i.run_id == doc.run_id), None)
    except VoxbenchError:
        return None
    return Path(source) if source and Path(source).is_dir() else None


def write_compare_html(
    cmp: Comparison,
    base: tuple[ResultDocument, str],
    candidate: tuple[ResultDocument, str],
    path: Path,
    *,
    embed_audio: bool = False,
    store: str | None = None,
) -> Path:
    """``voxbench compare --html FILE``: the comparison as a page, with the base and candidate
    audio of each case side by side (``base``/``candidate``: a document and the label
    :func:`~voxbench.results.store.io.resolve_run` gave it)."""
    from voxbench.report.html_results import RunAudio, render_compare_html

    check_html()
    sides = [RunAudio(doc, _run_folder_of(doc, label, store)) for doc, label in (base, candidate)]
    text = render_compare_html(
        cmp, base=sides[0], candidate=sides[1], page_dir=_html_target(path).parent,
        embed_audio=embed_audio,
    )  # fmt: skip
    path.write_text(text, encoding="utf-8")
    return path


def write_aggregate_html(agg: Aggregate, path: Path) -> Path:
    """``voxbench aggregate --html FILE``: machines side by side as a page."""
    from voxbench.report.html import render_aggregate_html

    check_html()
    _html_target(path).write_text(render_aggregate_html(agg), encoding="utf-8")
    return path


def write_history_html(hist: History, path: Path) -> Path:
    """``voxbench history --html FILE``: the metric over commits as a page."""
    from voxbench.report.html import render_history_html

    check_html()
    _html_target(path).write_text(render_history_html(hist), encoding="utf-8")
    return path


def build_site(store: str | None, out: Path) -> Path:
    """``voxbench site -o DIR``: a static site over the whole store; returns its index page."""
    from voxbench.report.site import build_site as build

    return build(store, out)
