"""``voxbench pipeline --executor ray``: each prompt × mode (sequential, streaming) a Ray task.

A task starts the three components on its node (:func:`~voxbench.pipeline.run.start_components`,
each start timed as locally), runs the very :func:`~voxbench.pipeline.run.measure_prompt` a local
run runs (the warm-up conversations, then the measured ones), and closes them; it returns the
case, the first measured answer's audio (when audio is saved) and the components' starts. The
starts of each case are kept in ``case.meta["components"]``; the document's component table is
the first finished task's (a Ray worker process that ran a task before starts warm: its imports
are done). Placement, retries and failures are :class:`voxbench.run.ray_cluster.TaskPool`'s.

Load levels (``--rate``, ``--concurrency``) are not placed on Ray: they run on this machine
(:meth:`~voxbench.pipeline.run.PipelineRequest.validate` refuses the two together).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from voxbench.errors import ConfigError
from voxbench.pipeline.chain import Conversation, Mode
from voxbench.pipeline.run import (
    PipelineRequest,
    Progress,
    measure_prompt,
    new_document,
    pooled_targets,
    prompt_case,
    save_answer,
    start_components,
)
from voxbench.results.document import Case, ErrorRecord
from voxbench.results.folder import RunFolder
from voxbench.results.machines import MachineDocuments
from voxbench.results.pipeline_doc import ComponentStart
from voxbench.results.validity import case_validity
from voxbench.run.ray_cluster import TaskPool, connected
from voxbench.run.ray_executor import device_resources
from voxbench.workloads.base import WorkloadItem


def pipeline_task(
    req: PipelineRequest, item: WorkloadItem, mode: Mode
) -> tuple[Case, Conversation | None, list[ComponentStart]]:
    """One prompt in one mode inside a Ray worker: start the components, measure, close."""
    specs = req.specs()
    names = {role: spec.name for role, spec in specs.items()}
    components, starts = start_components(specs)
    names["tts_streams"] = "1" if components.tts_streams else ""
    try:
        case, first = measure_prompt(req, components, item, mode, names, req.parsed_targets())
    finally:
        for engine in (components.stt, components.llm, components.tts):
            with contextlib.suppress(Exception):  # closing must not hide what was measured
                engine.close()
    return case, (first if req.save_audio else None), starts


def _failed(req: PipelineRequest, item: WorkloadItem, mode: Mode, kind: str, reason: str) -> Case:
    """A prompt × mode that could not be measured, recorded with why (phase ``case``)."""
    names = {role: spec.name for role, spec in req.specs().items()}
    error = ErrorRecord(phase="case", type=kind, message=reason)
    case = prompt_case(req, names, item, mode, errors=[error], error_count=1)
    case.validity = case_validity(case)
    return case


def run_on_ray(
    req: PipelineRequest,
    items: list[WorkloadItem],
    report: Progress,
    on_end: Callable[[RunFolder], None],
) -> RunFolder:
    """Every prompt × mode as a Ray task into a new run folder, each case saved as it finishes,
    then put in plan order (prompt, then mode) and the targets pooled, as locally."""
    if req.load is not None:  # validate() says so first; kept for callers that skip it
        raise ConfigError("--executor ray does not run pipeline load levels")
    folder = RunFolder.create(req.output, new_document(req, []))
    doc = folder.doc
    assert doc.pipeline is not None
    MachineDocuments.attach(folder)
    planned = [(item, mode) for item in items for mode in req.modes]
    order: dict[tuple[str, Any], int] = {(it.id, m): i for i, (it, m) in enumerate(planned)}
    opts = req.ray
    need = device_resources("cpu", opts.resources)
    try:
        with (
            folder.measuring(len(planned), lambda: len(doc.cases)),
            connected(opts) as ray,
            TaskPool(ray, opts.retries) as pool,
        ):
            for item, mode in planned:
                pool.submit((item, mode), need, pipeline_task, req, item, mode)
            report("running on Ray", 0, len(planned))
            for done in pool.results():
                item, mode = done.key
                conv: Conversation | None = None
                if done.failure is not None:
                    case = _failed(req, item, mode, *done.failure)
                else:
                    case, conv, starts = done.value
                    case.meta["node"] = done.node
                    case.meta["components"] = [s.model_dump(mode="json") for s in starts]
                    if not doc.pipeline.components:
                        doc.pipeline.components = starts
                case.meta["ray"] = {"resources": done.need}
                if conv is not None:
                    case.audio_file = save_answer(folder, case, conv)
                doc.cases.append(case)
                folder.save()
                report(f"{item.id} {mode}", len(doc.cases), len(planned))
            doc.cases.sort(key=lambda c: order.get((c.input_id, c.params.get("mode")), 0))
            pooled_targets(doc, req)
    finally:
        on_end(folder)
    return folder
