"""voxbench history from a store: the table, the SVG, the JSON with the change point."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from support.cli import assert_one_line_error, voxbench
from support.store_fixtures import variant
from voxbench.results.store import open_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory, real_doc):  # type: ignore[no-untyped-def]
    """Ten days of one real run's figures, 25% slower from the seventh commit on."""
    url = str(tmp_path_factory.mktemp("history") / "store.sqlite")
    with open_store(url) as s:
        for i in range(10):
            doc = variant(
                real_doc, f"run{i}", hours=24 * i, scale=1.25 if i >= 6 else 1.0,
                git_commit=f"{i}" * 40,
            )  # fmt: skip
            s.add(doc)
    return url


def test_history_table_svg_and_json(store, real_doc, tmp_path):
    pytest.importorskip("matplotlib")
    case = real_doc.cases[0].id
    svg_path, json_path = tmp_path / "h.svg", tmp_path / "h.json"
    proc = voxbench(
        "history", "-e", "sleep", "--case", case, "--svg", str(svg_path), "--json",
        str(json_path), "--store", store,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "run9" in proc.stdout and "▲ +25.0%" in proc.stdout and "6666666666" in proc.stdout
    data = json.loads(json_path.read_text())
    [hist] = data["cases"]
    assert len(hist["points"]) == 10
    [cp] = hist["change_points"]
    assert cp["run_id"] == "run6" and cp["change"] == pytest.approx(0.25, abs=1e-6)
    root = ET.fromstring(svg_path.read_text())  # matplotlib's SVG, well-formed
    ids = [el.get("id", "") for el in root.iter()]
    assert sum(i.endswith("-change-0-0") for i in ids) == 1  # the one change point, marked
    assert "+25.0% regressed" in svg_path.read_text()


def test_history_of_every_case_of_a_workload(store, real_doc):
    proc = voxbench("history", "-e", "sleep", "-w", "short", "--metric", "rtfx", "--json", "-",
                    "--store", store)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [c["case_id"] for c in data["cases"]] == [c.id for c in real_doc.cases]
    assert all(c["change_points"][0]["change"] < 0 for c in data["cases"])  # rtfx dropped


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-e", "nope"], ["no latency_ms history for engine 'nope'"]),
        (["-e", "sleep", "--metric", "speed"], ["unknown --metric 'speed'"]),
        (["-e", "sleep", "--min-shift", "abc"], ["bad --threshold 'abc'"]),
        (["-e", "sleep", "--svg", "/no/such/dir/h.svg"], ["--svg: folder /no/such/dir"]),
    ],
)
def test_bad_input_is_one_line(store, args, needles):
    proc = voxbench("history", *args, "--store", store)
    assert proc.returncode == 2
    assert_one_line_error(proc, *needles)
