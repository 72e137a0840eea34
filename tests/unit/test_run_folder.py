"""The one run-folder lifecycle: create, atomic saves, close, interrupted close."""

from __future__ import annotations

import json
import re

import pytest

from support.result_docs import make_case, make_doc
from voxbench.errors import ConfigError, Interrupted
from voxbench.results.folder import RunFolder, new_run_id


def test_create_save_close(tmp_path):
    doc = make_doc(new_run_id(), make_case([1.0, 2.0]), make_case([3.0], input_id="b"))
    folder = RunFolder.create(tmp_path, doc, started=0.0)
    assert folder.path == tmp_path / doc.environment.machine_id / doc.run_id
    folder.save()
    saved = json.loads(folder.results_path.read_text())
    assert saved["run_id"] == doc.run_id and saved["finished_at"] is None
    folder.close()
    closed = json.loads(folder.results_path.read_text())
    assert closed["finished_at"] is not None and closed["duration_s"] > 0
    assert [p.name for p in folder.path.iterdir()] == ["results.json"]  # no temporary left


def test_a_second_writer_of_the_same_run_is_refused(tmp_path):
    doc = make_doc(new_run_id(), make_case([1.0, 2.0]), make_case([3.0], input_id="b"))
    RunFolder.create(tmp_path, doc)
    with pytest.raises(ConfigError, match="cannot create the results folder"):
        RunFolder.create(tmp_path, doc)


def test_ctrl_c_inside_measuring_closes_as_interrupted(tmp_path):
    doc = make_doc(new_run_id(), make_case([1.0, 2.0]), make_case([3.0], input_id="b"))
    n_cases = len(doc.cases)
    folder = RunFolder.create(tmp_path, doc)
    with pytest.raises(Interrupted) as err, folder.measuring(5, lambda: len(doc.cases)):
        raise KeyboardInterrupt
    assert err.value.exit_code == 130
    assert str(err.value) == (
        f"interrupted after {n_cases} of 5 cases; what was measured is in {folder.path}"
    )
    saved = json.loads(folder.results_path.read_text())
    assert saved["finished_at"] is None and saved["duration_s"] is not None
    assert len(saved["cases"]) == n_cases


def test_open_reads_the_document_back(tmp_path):
    doc = make_doc(new_run_id(), make_case([1.0, 2.0]), make_case([3.0], input_id="b"))
    folder = RunFolder.create(tmp_path, doc)
    folder.close()
    again = RunFolder.open(folder.results_path)
    assert again.path == folder.path and again.doc == folder.doc


def test_run_ids_sort_by_time_and_differ():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", i) for i in ids)
