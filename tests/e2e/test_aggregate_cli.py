"""voxbench aggregate: a real run and a second machine's folder made from it (another machine id,
a GPU name, latencies halved) become one comparison, JSON and Markdown, layout kept."""

from __future__ import annotations

import json

import pytest

from support.cli import assert_one_line_error, voxbench
from support.store_fixtures import one_item_workload, sleep_run, variant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("aggregate")
    doc, _ = sleep_run(tmp / "results-a", one_item_workload(tmp), 4.0, 5)
    from voxbench.results import Gpu

    fast = variant(doc, "20990101T000000Z-fab001", scale=0.5, machine_id="gpu-box")
    fast.environment.gpus = [Gpu(index=0, name="NVIDIA H100 80GB HBM3")]
    folder = tmp / "results-b" / "gpu-box" / fast.run_id
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(fast.model_dump_json(indent=2))
    return tmp, doc, fast


def test_two_machines_into_one_comparison(two_machines, tmp_path):
    tmp, doc, fast = two_machines
    out = tmp_path / "out"
    proc = voxbench("aggregate", str(tmp / "results-a"), str(tmp / "results-b"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "aggregate.json").read_text())
    assert data["baseline"] == "m"
    assert [m["machine_id"] for m in data["machines"]] == ["m", "gpu-box"]
    assert data["machines"][1]["label"] == "gpu-box (NVIDIA H100 80GB HBM3)"
    [row] = data["rows"]
    assert row["case"] == doc.cases[0].id
    assert row["values"]["gpu-box"]["latency_ms"] == pytest.approx(
        doc.cases[0].latency_ms.median / 2, rel=1e-6
    )
    assert row["speedups"]["gpu-box"]["latency_ms"] == pytest.approx(2.0, rel=1e-6)
    assert row["speedups"]["gpu-box"]["rtfx"] == pytest.approx(2.0, rel=1e-6)
    assert row["speedups"]["m"]["latency_ms"] == pytest.approx(1.0)
    md = (out / "aggregate.md").read_text()
    assert "| case | m | gpu-box (NVIDIA H100 80GB HBM3) |" in md and "(2.00×)" in md
    # the per-machine layout is kept: <machine>/<run-id>/results.json (+ report.md)
    assert (out / "gpu-box" / fast.run_id / "results.json").is_file()
    assert (out / "m" / doc.run_id / "results.json").is_file()
    assert (out / "m" / doc.run_id / "report.md").is_file()


def test_baseline_choice_and_stdout(two_machines):
    tmp, *_ = two_machines
    proc = voxbench(
        "aggregate", str(tmp / "results-a"), str(tmp / "results-b"), "--baseline", "gpu-box",
        "--metric", "latency_ms",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Baseline machine: **gpu-box**" in proc.stdout and "(0.50×)" in proc.stdout
    assert "## rtfx" not in proc.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["/no/such/dir"], ["no such file or folder"]),
        (["{a}", "--baseline", "nope"], ["--baseline 'nope' is not among the machines"]),
        (["{a}", "--metric", "speed"], ["unknown --metric 'speed'"]),
        (["{empty}"], ["no results.json under"]),
    ],
)
def test_bad_input_is_one_line(two_machines, tmp_path, args, needles):
    tmp, *_ = two_machines
    (tmp_path / "empty").mkdir()
    paths = {"a": str(tmp / "results-a"), "empty": str(tmp_path / "empty")}
    proc = voxbench("aggregate", *[a.format(**paths) for a in args])
    assert proc.returncode == 2
    assert_one_line_error(proc, *needles)
