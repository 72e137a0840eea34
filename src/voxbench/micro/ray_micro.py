"""``voxbench micro --executor ray``: each kernel × size × backend × device case a Ray task.

A task runs the very :func:`~voxbench.micro.runner.measure_micro_case` a local run runs, under
the same thread limits (:func:`~voxbench.micro.runner.thread_limits`, for that case's backend),
so a case's figures mean the same wherever Ray places it. The numerical agreement of a case with
its reference backend needs the reference's output: the reference case of each kernel and size
is submitted first and its task's result is an argument of the others' tasks, so Ray starts
those once it is done (and, Ray's locality permitting, on the node that holds it). The speed-up
against the reference is filled only against a reference measured on the same machine
(:func:`~voxbench.micro.runner.fill_speedups`).

Placement, retries and failures are :class:`voxbench.run.ray_cluster.TaskPool`'s: a case no node
can take is recorded with the reason, except a GPU case when no node has a GPU at all, which is
skipped with that reason once per backend and device, as a local run skips a device it lacks.
"""

from __future__ import annotations

from typing import Any

from voxbench.micro.runner import (
    MicroCase,
    MicroPlan,
    MicroProgress,
    MicroRequest,
    MicroSettings,
    _failed_case,
    capture_environment,
    fill_speedups,
    measure_micro_case,
    planned_on_disk,
    thread_limits,
)
from voxbench.results.document import Case, Environment, ErrorRecord
from voxbench.results.folder import RunFolder
from voxbench.results.machines import MachineDocuments
from voxbench.results.validity import case_validity
from voxbench.run.ray_cluster import TaskPool, connected
from voxbench.run.ray_executor import device_resources


def node_environment() -> Environment:
    """A node's environment with the micro backends' versions (captured on the node)."""
    return capture_environment(None)


def micro_task(
    mc: MicroCase, settings: MicroSettings, threads: int, reference: Any | None
) -> tuple[Case, Any]:
    """One case inside a Ray worker; ``reference`` is the reference case's task result (Ray
    hands it over resolved) or None. Returns the case and, for a reference case, its output."""
    ref_output = reference[0][1] if reference is not None else None
    with thread_limits(threads, {mc.backend}) as limits:
        case, output = measure_micro_case(mc, settings, ref_output)
    case.engine_info.update(limits)
    return case, (output if mc.is_reference else None)


def _failed(mc: MicroCase, kind: str, reason: str) -> Case:
    case = _failed_case(mc, RuntimeError(reason), "measure")
    case.errors = [ErrorRecord(phase="case", type=kind, message=reason)]
    return case


def measure_on_ray(
    folder: RunFolder,
    request: MicroRequest,
    the_plan: MicroPlan,
    settings: MicroSettings,
    progress: MicroProgress,
) -> None:
    """Every planned case as a Ray task into ``folder``, saved as each finishes; then the cases
    are put back in plan order, as a local run writes them."""
    doc = folder.doc
    MachineDocuments.attach(folder)  # cases that ran on other machines: theirs too
    order = {mc.id: i for i, mc in enumerate(the_plan.cases)}
    opts = request.ray
    with connected(opts) as ray, TaskPool(ray, opts.retries, node_environment) as pool:
        references: dict[tuple[str, str, str], Any] = {}
        for mc in the_plan.cases:
            need = device_resources(mc.device, opts.resources)
            if mc.device != "cpu" and pool.unmet({"GPU": need.get("GPU", 0.0)}):
                skip = {
                    "engine": f"micro ({mc.backend})",
                    "device": mc.device,
                    "reason": str(pool.unmet({"GPU": need.get("GPU", 0.0)})),
                }
                if skip not in doc.skipped:
                    doc.skipped.append(skip)
                continue
            key = (mc.kernel.name, mc.size.workload, mc.size.input_id)
            reference = None if mc.is_reference else references.get(key)
            ref = pool.submit(mc, need, micro_task, mc, settings, request.threads, reference)
            if mc.is_reference:
                references[key] = ref
        for done in pool.results():
            mc = done.key
            progress(mc, False)
            if done.failure is not None:
                case = _failed(mc, *done.failure)
            else:
                case = done.value[0]
                case.meta["node"] = done.node
            case.meta["ray"] = {"resources": done.need}
            case.validity = case_validity(case)
            doc.cases.append(case)
            fill_speedups(doc.cases)
            folder.save()
            progress(mc, True)
        doc.cases.sort(key=lambda c: order.get(c.id, len(order)))


def measure_micro_on_ray(
    folder: RunFolder, request: MicroRequest, the_plan: MicroPlan, progress: MicroProgress
) -> None:
    """:func:`measure_on_ray` inside the folder's lifecycle (closed, or closed as interrupted),
    for the cases ``folder`` lacks (all for a new run; the missing ones on ``--resume``)."""
    settings = request.settings()
    doc = folder.doc
    done = planned_on_disk(folder, the_plan)
    todo = MicroPlan(
        [c for c in the_plan.cases if c.id not in done], the_plan.skipped, the_plan.kernels
    )
    with folder.measuring(len(the_plan.cases), lambda: len(doc.cases)):
        measure_on_ray(folder, request, todo, settings, progress)
