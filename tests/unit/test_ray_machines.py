"""A distributed run written per machine (results/machines.py): documents whose cases carry two
different node environments (as ``--executor ray`` records them in ``case.meta["node"]``) are
split into one document per machine, each with that machine's cases and environment, and
``voxbench aggregate`` over the output folder sees both machines, each with its own cases."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from support.result_docs import ENV, make_case, make_doc
from voxbench.cli.app import app
from voxbench.results.document import Gpu, load_document
from voxbench.results.folder import RunFolder
from voxbench.results.machines import MachineDocuments, by_machine, split_by_machine

GPU = Gpu(index=0, name="NVIDIA H100", driver="550.1", cuda="12.4", memory_total_mb=81559.0)
HEAD = ENV.model_copy(update={"machine_id": "head", "hostname": "head"})
GPU_NODE = ENV.model_copy(
    update={"machine_id": "gpu-node", "hostname": "gpu-node", "cpu_model": "EPYC", "gpus": [GPU]}
)


def _on(node, latency: list[float], input_id: str):
    case = make_case(latency, input_id=input_id)
    case.meta["node"] = {
        **node.model_dump(mode="json"),
        "ray_node_id": f"id-{node.machine_id}",
        "ray_node_ip": "10.0.0.1",
        "env": {"OMP_NUM_THREADS": "1"},
    }
    return case


def _run(*cases):
    return make_doc("20260101T000000Z-abcdef", *cases, machine_id="head", hostname="head")


def test_a_run_on_two_machines_splits_into_their_documents() -> None:
    doc = _run(_on(HEAD, [10.0] * 5, "a"), _on(GPU_NODE, [2.0] * 5, "b"), _on(HEAD, [11.0], "c"))
    parts = split_by_machine(doc)
    assert list(parts) == ["head", "gpu-node"]
    assert [c.input_id for c in parts["head"].cases] == ["a", "c"]
    assert [c.input_id for c in parts["gpu-node"].cases] == ["b"]
    assert parts["gpu-node"].environment == GPU_NODE  # the node's own, not the driver's
    assert parts["gpu-node"].environment.gpus[0].name == "NVIDIA H100"
    assert parts["gpu-node"].run_id == doc.run_id
    assert len(doc.cases) == 3  # the main document is left whole


def test_a_run_on_its_own_machine_is_not_split() -> None:
    assert split_by_machine(_run(_on(HEAD, [10.0], "a"), _on(HEAD, [9.0], "b"))) == {}
    assert split_by_machine(_run(make_case([10.0], input_id="local"))) == {}  # no node facts


def test_cases_that_ran_nowhere_stay_in_the_main_document_only() -> None:
    unplaced = make_case([], input_id="z", errors=1)  # no node: no Ray node could take it
    parts = split_by_machine(_run(_on(GPU_NODE, [2.0], "b"), unplaced))
    assert list(parts) == ["gpu-node"]
    assert [c.input_id for c in parts["gpu-node"].cases] == ["b"]


def test_saved_audio_is_linked_back_into_the_main_run_folder() -> None:
    case = _on(GPU_NODE, [2.0], "b")
    case.audio_file = "audio/b.wav"
    [part] = split_by_machine(_run(case)).values()
    assert part.cases[0].audio_file == "../../head/20260101T000000Z-abcdef/audio/b.wav"
    assert case.audio_file == "audio/b.wav"


def test_the_folder_writes_each_other_machine_and_aggregate_sees_both(tmp_path: Path) -> None:
    doc = _run(_on(HEAD, [10.0] * 5, "a"))
    folder = RunFolder.create(tmp_path, doc)
    MachineDocuments.attach(folder)
    folder.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head"]  # one machine so far
    doc.cases.append(_on(GPU_NODE, [2.0] * 5, "b"))
    folder.save()
    folder.close()

    node_doc = load_document(tmp_path / "gpu-node" / doc.run_id / "results.json")
    assert node_doc.environment.machine_id == "gpu-node"
    assert node_doc.environment.gpus == [GPU]
    assert [c.input_id for c in node_doc.cases] == ["b"]
    assert node_doc.finished_at == doc.finished_at is not None  # written again at the close
    main = load_document(tmp_path / "head" / doc.run_id / "results.json")
    assert [c.input_id for c in main.cases] == ["a", "b"]

    out = tmp_path / "agg"
    result = CliRunner().invoke(app, ["aggregate", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    agg = json.loads((out / "aggregate.json").read_text())
    machines = {m["machine_id"]: (m["gpus"], m["cpu_model"]) for m in agg["machines"]}
    assert machines == {"head": ([], "cpu"), "gpu-node": (["NVIDIA H100"], "EPYC")}
    values = {row["case"].split("/")[2]: row["values"] for row in agg["rows"]}
    # each case only under the machine it ran on: head's folder does not claim gpu-node's case
    assert {k: sorted(v) for k, v in values.items()} == {"a": ["head"], "b": ["gpu-node"]}
    assert values["a"]["head"]["latency_ms"] == 10.0
    assert values["b"]["gpu-node"]["latency_ms"] == 2.0


def test_aggregate_reads_a_main_document_alone_as_its_machines() -> None:
    doc = _run(_on(HEAD, [10.0], "a"), _on(GPU_NODE, [2.0], "b"))
    split = by_machine([(Path("head/r/results.json"), doc)])
    assert [(d.environment.machine_id, [c.input_id for c in d.cases]) for _, d in split] == [
        ("head", ["a"]),
        ("gpu-node", ["b"]),
    ]
    node_doc = split_by_machine(doc)["gpu-node"]
    both = by_machine(
        [(Path("head/r/results.json"), doc), (Path("gpu-node/r/results.json"), node_doc)]
    )
    # the node's own document is used, not the part of the main one
    assert [(str(p), d.environment.machine_id) for p, d in both] == [
        ("head/r/results.json", "head"),
        ("gpu-node/r/results.json", "gpu-node"),
    ]
