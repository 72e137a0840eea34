"""Cases as Ray tasks: ``voxbench run --executor ray`` (docs/distributed.md).

Each planned case becomes one Ray task that calls the very :func:`~voxbench.run.scenario.run_case`
a local run calls, with the same executor (by default a fresh worker process that times every call
next to the engine), so a case's figures mean the same wherever Ray places it. Ray decides only
*where*: the task asks for ``num_cpus`` (1, or ``CPU``), ``num_gpus`` (1 on a CUDA device, or
``GPU``) and custom resources (``{"gpu_type:H100": 1}``) from the engine's config entry and
``--ray-resources``.

Nothing goes silently missing. A case asking for resources no live node offers is recorded at
once with that reason (Ray itself would keep such a task pending for ever); a task whose worker
dies, or that raises, is run again ``retries`` times (Ray's ``max_retries`` and
``retry_exceptions``) and then recorded as a case with an error (phase ``case``). Results come
back as tasks finish (``ray.wait``) and are handed to the caller one by one, so the run folder is
saved after each. That loop, and the connection, are :mod:`voxbench.run.ray_cluster`'s, shared
with ``micro`` and ``pipeline``. Each task returns its node's whole environment (captured on the
node, with its Ray node id) into ``case.meta["node"]``; a run whose cases ran on several machines
is also written per machine (:mod:`voxbench.results.machines`).

Ray is an optional extra, imported only when a run asks for it.
"""

from __future__ import annotations

from collections.abc import Callable

from voxbench.results.document import ErrorRecord
from voxbench.run.planner import PlannedCase
from voxbench.run.ray_cluster import RAY_SET_ENV, TaskPool, connected, node_facts, unmet_reason
from voxbench.run.request import EngineChoice, RayOptions, RunRequest
from voxbench.run.scenario import CaseOutcome, Settings, _new_case, run_case

__all__ = [
    "RAY_SET_ENV",
    "case_resources",
    "case_task",
    "failed_outcome",
    "measure_cases",
    "node_facts",
    "unmet_reason",
]

Finish = Callable[[PlannedCase, CaseOutcome], None]
Progress = Callable[[PlannedCase, int], None]


def _choice_of(planned: PlannedCase, engines: list[EngineChoice]) -> EngineChoice | None:
    """The engine entry a case was planned from: same reference, its fixed arguments kept."""
    for choice in engines:
        params = planned.spec.params
        if choice.ref == planned.spec.ref and all(
            params.get(k) == v for k, v in choice.args.items()
        ):
            return choice
    return None


def device_resources(device: str, asked: dict[str, float]) -> dict[str, float]:
    """What a case on ``device`` asks of a node, in Ray's names: ``CPU`` (1 unless given),
    ``GPU`` (1 on a CUDA device unless given) and the custom resources in ``asked``."""
    rest = dict(asked)
    cuda = device.startswith("cuda")
    need = {"CPU": rest.pop("CPU", 1.0), "GPU": rest.pop("GPU", 1.0 if cuda else 0.0), **rest}
    return {k: v for k, v in need.items() if v > 0}


def case_resources(
    planned: PlannedCase, engines: list[EngineChoice], options: RayOptions
) -> dict[str, float]:
    """What one case's task asks of a node (:func:`device_resources`); ``--ray-resources`` over
    the engine entry's."""
    choice = _choice_of(planned, engines)
    return device_resources(
        planned.spec.device, {**(choice.resources if choice else {}), **options.resources}
    )


def case_task(planned: PlannedCase, settings: Settings) -> CaseOutcome:
    """One case, inside a Ray worker: the same :func:`run_case` as a local run."""
    return run_case(
        planned.spec,
        planned.engine,
        planned.workload,
        planned.item,
        settings,
        batch_size=planned.batch_size,
    )


def failed_outcome(planned: PlannedCase, settings: Settings, kind: str, reason: str) -> CaseOutcome:
    """A case that could not be measured, recorded with why (phase ``case``)."""
    case = _new_case(
        planned.spec, planned.engine, planned.workload, planned.item, settings, planned.batch_size
    )
    case.errors.append(ErrorRecord(phase="case", type=kind, message=reason))
    case.error_count = len(case.errors)
    return CaseOutcome(case=case)


def measure_cases(
    request: RunRequest,
    cases: list[PlannedCase],
    engines: list[EngineChoice],
    finish: Finish,
    progress: Progress = lambda c, n: None,
) -> None:
    """Run ``cases`` as Ray tasks and hand each outcome to ``finish`` as it arrives (finish
    order, not plan order); a case no node can take, or whose task failed after its retries, is
    handed over as a failed case. Ctrl-C cancels the tasks still out."""
    s, opts = request.settings, request.ray
    calls = request.calls_per_case
    with connected(opts) as ray, TaskPool(ray, opts.retries) as pool:
        for planned in cases:
            pool.submit(planned, case_resources(planned, engines, opts), case_task, planned, s)
        for done in pool.results():
            planned = done.key
            if done.failure is not None:
                outcome = failed_outcome(planned, s, *done.failure)
            else:
                outcome = done.value
                outcome.case.meta["node"] = done.node
            outcome.case.meta.setdefault("ray", {})["resources"] = done.need
            progress(planned, 0)
            progress(planned, calls)
            finish(planned, outcome)
