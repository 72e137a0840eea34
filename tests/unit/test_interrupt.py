"""Interruption in the run folder: status and incomplete cases, SIGTERM as Ctrl-C with its own
exit status, atomic files that a failure or a kill leaves whole, documents of schema 1.6."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from support.result_docs import make_case, make_doc
from voxbench.cli.signals import SignalInterrupt, exit_status, stop_on_signals
from voxbench.errors import ConfigError, Interrupted
from voxbench.results.document import ResultDocument
from voxbench.results.folder import (
    RunFolder,
    atomic_path,
    atomic_write_text,
    new_run_id,
    remove_temporaries,
)

PLANNED = ["eng/w/a/cpu", "eng/w/b/cpu", "eng/w/c/cpu"]


def _tracked(tmp_path):
    doc = make_doc(new_run_id())
    folder = RunFolder.create(tmp_path, doc)
    folder.track(PLANNED, lambda: (c.id for c in doc.cases))
    return folder, doc


def test_a_tracked_run_lists_what_is_missing_at_every_save(tmp_path):
    folder, doc = _tracked(tmp_path)
    folder.save()
    saved = json.loads(folder.results_path.read_text())
    assert saved["status"] == "running" and saved["incomplete"] == PLANNED
    doc.cases.append(make_case([1.0, 2.0], input_id="b"))
    folder.save()
    saved = json.loads(folder.results_path.read_text())
    assert saved["incomplete"] == ["eng/w/a/cpu", "eng/w/c/cpu"]
    doc.cases += [make_case([1.0], input_id="a"), make_case([3.0], input_id="c")]
    folder.close()
    saved = json.loads(folder.results_path.read_text())
    assert saved["status"] == "complete" and saved["incomplete"] == []
    assert saved["finished_at"] is not None and folder.complete


def test_sigterm_closes_as_interrupted_with_status_143(tmp_path):
    folder, doc = _tracked(tmp_path)
    doc.cases.append(make_case([1.0, 2.0], input_id="a"))
    with pytest.raises(Interrupted) as err, folder.measuring(3, lambda: len(doc.cases)):
        raise SignalInterrupt(signal.SIGTERM)
    assert err.value.exit_code == 143
    assert str(err.value) == (
        f"stopped by SIGTERM after 1 of 3 cases; what was measured is in {folder.path} "
        f"(finish it: --resume {folder.path})"
    )
    saved = json.loads(folder.results_path.read_text())
    assert saved["status"] == "interrupted" and saved["finished_at"] is None
    assert saved["incomplete"] == ["eng/w/b/cpu", "eng/w/c/cpu"]


def test_ctrl_c_keeps_status_130(tmp_path):
    folder, doc = _tracked(tmp_path)
    with pytest.raises(Interrupted) as err, folder.measuring(3, lambda: len(doc.cases)):
        raise KeyboardInterrupt
    assert err.value.exit_code == 130 and str(err.value).startswith("interrupted after 0 of 3")


def test_stop_on_signals_turns_sigterm_into_an_interrupt_and_restores_the_handler():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SignalInterrupt) as err, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at once, cutting the sleep short
        raise AssertionError("SIGTERM did not stop the block")
    assert err.value.signum == signal.SIGTERM and exit_status(err.value) == 143
    assert isinstance(err.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before
    assert exit_status(KeyboardInterrupt()) == 130


def test_atomic_path_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # the temporary is gone
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_two_writers_never_share_a_temporary(tmp_path):
    target = tmp_path / "a.wav"
    with atomic_path(target) as one, atomic_path(target) as two:
        assert one != two and one.parent == two.parent == tmp_path
        assert one.suffix == ".wav" and one.name.startswith(".a.wav.")  # soundfile reads .wav
        one.write_bytes(b"1")
        two.write_bytes(b"2")
    assert target.read_bytes() == b"1"  # the outer block ended last: its file won


def test_resume_removes_what_a_killed_writer_left(tmp_path):
    folder, _doc = _tracked(tmp_path)
    folder.save()
    (folder.path / ".results.json.123-abcd.tmp.json").write_text("{half")
    (folder.path / ".audio-123-abcd").mkdir()
    (folder.path / ".audio-123-abcd" / "x.wav").write_bytes(b"RIFF")
    folder.close(finished=False)
    again = RunFolder.resume(folder.path, "single", "run")
    assert sorted(p.name for p in folder.path.iterdir()) == ["results.json"]
    assert again.doc.incomplete == PLANNED and not again.complete
    assert remove_temporaries(folder.path) == 0


def test_resume_refuses_a_folder_that_is_no_run_or_another_scenario(tmp_path):
    with pytest.raises(ConfigError, match="is not a run folder"):
        RunFolder.resume(tmp_path, "single", "run")
    folder, _ = _tracked(tmp_path)
    folder.close()
    with pytest.raises(ConfigError, match="is a single run; resume it with voxbench run --resume"):
        RunFolder.resume(folder.path, "load", "load")


def test_a_second_writer_of_a_running_folder_is_refused(tmp_path):
    folder, _ = _tracked(tmp_path)  # holds the folder's lock until it closes
    folder.save()
    with pytest.raises(ConfigError, match="being written by another voxbench process"):
        RunFolder.resume(folder.path, "single", "run")
    folder.close()
    RunFolder.resume(folder.path, "single", "run")


@pytest.mark.parametrize(
    ("finished_at", "status"), [("2026-01-01T00:10:00+00:00", "complete"), (None, "interrupted")]
)
def test_documents_of_schema_1_6_read_their_status_from_finished_at(finished_at, status):
    data = json.loads(make_doc(new_run_id(), make_case([1.0])).model_dump_json())
    data.update(schema_version="1.6", finished_at=finished_at)
    del data["status"], data["incomplete"]
    doc = ResultDocument.model_validate_json(json.dumps(data))
    assert doc.status == status and doc.incomplete == []
