"""A distributed run, one document per machine (``--executor ray``, docs/distributed.md).

A run on Ray writes one document, where the driver runs, under the driver's machine id; each
case measured on a node carries that node's whole environment in ``case.meta["node"]``
(captured on the node as :func:`voxbench.run.environment.capture` captures a local machine).
When some cases ran on another machine than the driver's, the run is also written per machine
beside it, as separate local runs would be: ``<output>/<machine-id>/<run-id>/results.json`` with
that machine's cases and that machine's environment (:class:`MachineDocuments`), so that
``voxbench aggregate`` groups by machine and GPU exactly as for local runs. The driver's own
machine is not written again (its folder holds the main document); :func:`by_machine` lets
``aggregate`` read the main document as its machines' parts, never crediting one machine with
another's cases. A case that ran nowhere (no node could take it, or its task failed) stays in
the main document only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from voxbench.results.document import Case, Environment, ResultDocument
from voxbench.results.folder import RESULTS, RunFolder, write_json


def node_environment(case: Case) -> Environment | None:
    """The environment of the machine ``case`` ran on, from ``case.meta["node"]``; None for a
    case measured where its document was (no node facts) or facts that are not a whole one."""
    node = case.meta.get("node")
    if not isinstance(node, dict):
        return None
    fields = {k: node[k] for k in Environment.model_fields if k in node}
    try:
        return Environment.model_validate(fields)
    except ValidationError:
        return None


def split_by_machine(doc: ResultDocument) -> dict[str, ResultDocument]:
    """One document per machine the cases ran on, each with that machine's cases (in document
    order) and environment; empty when every measured case ran on the document's own machine.
    The parts share the run's id, times and configuration; cases that ran nowhere are left out;
    a case's saved audio is linked back into the main run folder."""
    own = doc.environment.machine_id
    envs: dict[str, Environment] = {}
    groups: dict[str, list[Case]] = {}
    for case in doc.cases:
        env = node_environment(case)
        if env is None:
            continue
        envs.setdefault(env.machine_id, env)
        groups.setdefault(env.machine_id, []).append(case)
    if set(groups) <= {own}:
        return {}
    back = f"../../{own}/{doc.run_id}/"
    return {
        mid: doc.model_copy(
            update={
                "environment": envs[mid],
                "cases": [_linked(c, back) for c in cases],
                "skipped": [],
            }
        )
        for mid, cases in groups.items()
    }


def _linked(case: Case, back: str) -> Case:
    if not case.audio_file or _absolute(case.audio_file):
        return case
    return case.model_copy(update={"audio_file": back + case.audio_file})


def _absolute(path: str) -> bool:
    """A saved-audio path that is not relative to its run folder (left as it is)."""
    return path.startswith("/") or "://" in path


class MachineDocuments:
    """Attached to a run folder (:meth:`attach`), rewrites every other machine's document after
    each save of the main one (each case, and the close), atomically, as the main one is."""

    def __init__(self, folder: RunFolder) -> None:
        self.root = folder.path.parent.parent
        self.paths: dict[str, Path] = {}

    @classmethod
    def attach(cls, folder: RunFolder) -> MachineDocuments:
        """Write ``folder``'s run per machine from now on (a no-op while it ran on one)."""
        writer = cls(folder)
        folder.on_save.append(writer)
        return writer

    def __call__(self, folder: RunFolder) -> None:
        own = folder.doc.environment.machine_id
        for mid, part in split_by_machine(folder.doc).items():
            if mid == own:
                continue  # that folder is the main document's
            path = self.root / mid / part.run_id
            path.mkdir(parents=True, exist_ok=True)
            write_json(part, path / RESULTS)
            self.paths[mid] = path


def by_machine(docs: list[tuple[Path, ResultDocument]]) -> list[tuple[Path, ResultDocument]]:
    """``docs`` with each document that ran on several machines replaced by its per-machine
    parts (:func:`split_by_machine`), leaving out a part whose machine's own document of that
    run is among ``docs`` already (written by :class:`MachineDocuments`)."""
    have = {(d.run_id, d.environment.machine_id) for _, d in docs}
    out: list[tuple[Path, ResultDocument]] = []
    for path, doc in docs:
        parts = split_by_machine(doc)
        if not parts:
            out.append((path, doc))
            continue
        own = doc.environment.machine_id
        out.extend(
            (path, part)
            for mid, part in parts.items()
            if mid == own or (doc.run_id, mid) not in have
        )
    return out


def machine_ids(doc: ResultDocument) -> list[str]:
    """The machines ``doc``'s cases ran on, in order of first case (its own when none says)."""
    seen: dict[str, Any] = {}
    for case in doc.cases:
        env = node_environment(case)
        seen.setdefault(env.machine_id if env else doc.environment.machine_id, None)
    return list(seen)
