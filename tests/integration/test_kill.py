"""SIGKILL at random moments: real ``voxbench run`` subprocesses and store writers, killed, then
checked and resumed by benchmarks/kill_test.py (which does the full 100 kills; here a number
that fits the suite). Every file must parse, the store must pass its integrity check, and every
case measured before a kill must be there, unchanged, after --resume."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "kill_test.py"


def _harness():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("kill_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_test"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_random_sigkills_lose_nothing_sqlite(tmp_path, capsys):
    status = _harness().main(
        ["--kills", "8", "--store-kills", "4", "--seed", "7", "--inputs", "4",
         "--keep", str(tmp_path)]
    )  # fmt: skip
    out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line)
    assert status == 0, out
    # runs killed alive (on a loaded machine a few may finish first), resumes, store writers
    assert int(out["run_kills"]) >= 4
    assert int(out["kills"]) == sum(
        int(out[k]) for k in ("run_kills", "resume_kills", "store_kills")
    )
    assert int(out["store_kills"]) == 4 and int(out["files_checked"]) > 0
    assert out["files_failed"] == "0" and out["stores_failed"] == "0"
    assert out["measurements_lost"] == "0" and out["runs_incomplete_after_resume"] == "0"


@pytest.mark.slow
def test_random_sigkills_of_the_postgresql_store_writer(tmp_path, postgres_url, capsys):
    status = _harness().main(
        ["--kills", "2", "--store-kills", "4", "--seed", "3", "--inputs", "3",
         "--postgres", postgres_url, "--keep", str(tmp_path)]
    )  # fmt: skip
    out = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line)
    assert status == 0, out
    assert int(out["store_kills"]) == 4 and out["stores_failed"] == "0"
    assert out["measurements_lost"] == "0"
