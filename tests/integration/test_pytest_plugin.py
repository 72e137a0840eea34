"""The pytest plugin, as a user meets it: a tiny test file of their own, run by a real pytest
(a subprocess, with the plugin loaded through its ``pytest11`` entry point)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voxbench.results import ResultDocument

pytest_plugins = ["pytester"]

USER_TESTS = """
import os, time

SLEEP_S = float(os.environ.get("USER_SLEEP_MS", "2")) / 1000


def add(a, b):
    return a + b


def nap():
    time.sleep(SLEEP_S)
    return "rested"


def test_add(voxbench):
    assert voxbench(add, 2, b=3, name="add") == 5


def test_nap(voxbench):
    assert voxbench.measure(nap, audio_seconds=0.5) == "rested"


def test_plain():
    assert True
"""


def _documents(root: Path) -> list[ResultDocument]:
    return [
        ResultDocument.model_validate_json(p.read_text())
        for p in sorted(root.rglob("results.json"))
    ]


def _mentions(result: pytest.RunResult) -> list[str]:
    """Output lines naming voxbench, less pytest's own list of loaded plugins."""
    lines = result.stdout.lines + result.stderr.lines
    return [ln for ln in lines if "voxbench" in ln and not ln.startswith("plugins:")]


def _run(pytester: pytest.Pytester, *args: str, sleep_ms: float = 2) -> pytest.RunResult:
    pytester.makepyfile(test_user=USER_TESTS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("USER_SLEEP_MS", str(sleep_ms))
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_the_fixture_times_returns_and_writes_one_document(pytester: pytest.Pytester):
    result = _run(pytester, "--voxbench-output", "out", "--voxbench-iterations", "6")
    result.assert_outcomes(passed=3)
    docs = _documents(pytester.path / "out")
    assert len(docs) == 1
    doc = docs[0]
    assert doc.scenario == "micro"
    cases = {c.engine: c for c in doc.cases}
    assert set(cases) == {"pytest:test_user.py::test_add", "pytest:test_user.py::test_nap"}
    add, nap = cases["pytest:test_user.py::test_add"], cases["pytest:test_user.py::test_nap"]
    assert add.workload == "add" and add.input_id == "add"
    assert add.meta["loops_per_sample"] > 1  # an addition is looped until a sample lasts 2 ms
    assert nap.meta["loops_per_sample"] == 1
    for c in (add, nap):
        assert c.mode == "in-process" and c.iterations == 6 == len(c.samples.latency_ms)
        assert c.latency_ms is not None and c.latency_ms.ci95 is not None
    assert nap.latency_ms.min >= 2.0  # sleep(2 ms) per call, reported per call
    assert nap.audio_seconds == 0.5 and nap.rtfx and nap.rtfx < 0.5 / 0.002
    run_dir = pytester.path / "out" / doc.environment.machine_id / doc.run_id
    assert (run_dir / "report.md").is_file()
    result.stdout.fnmatch_lines(["*voxbench*", "pytest:test_user.py::test_nap/call/cpu: median *"])


def test_inert_without_the_fixture(pytester: pytest.Pytester):
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "voxbench-" in result.stdout.str()  # loaded...
    assert _mentions(result) == []  # ...and silent
    assert not (pytester.path / "results").exists()
    assert not list(pytester.path.rglob("results.json"))


def test_disable_calls_once_and_records_nothing(pytester: pytest.Pytester):
    result = _run(pytester, "--voxbench-disable")
    result.assert_outcomes(passed=3)
    assert not (pytester.path / "results").exists()
    assert _mentions(result) == []


def test_store_records_the_run(pytester: pytest.Pytester, tmp_path: Path):
    from voxbench.results.store import open_store

    url = str(tmp_path / "team.sqlite")
    result = _run(pytester, "--voxbench-iterations", "5", "--voxbench-store", url)
    result.assert_outcomes(passed=3)
    (doc,) = _documents(pytester.path / "results")
    with open_store(url) as store:
        assert store.get(doc.run_id).cases[0].engine.startswith("pytest:")
    result.stdout.fnmatch_lines([f"*recorded in the store {url}*"])


def test_compare_fails_the_session_on_a_regression(pytester: pytest.Pytester):
    """Same speed: exit status 0. Ten times slower: every test passes, the session fails."""
    # Only the 2 ms nap is gated: `add` takes ~0.3 µs, and between two processes on a shared
    # 2-core VM such a call has moved by +91% (alignment, frequency) — noise no gate should see.
    only_nap = ("-k", "nap or plain")
    base = _run(pytester, *only_nap, "--voxbench-output", "base", "--voxbench-iterations", "8")
    base.assert_outcomes(passed=2, deselected=1)
    (base_doc,) = _documents(pytester.path / "base")
    base_dir = pytester.path / "base" / base_doc.environment.machine_id / base_doc.run_id

    same = _run(
        pytester, *only_nap, "--voxbench-output", "same", "--voxbench-iterations", "8",
        "--voxbench-compare", str(base_dir), "--voxbench-threshold", "50%",
    )  # fmt: skip
    same.assert_outcomes(passed=2, deselected=1)
    assert same.ret == 0, same.stdout.str()
    same.stdout.fnmatch_lines(["*voxbench compare*", "*0 regressed*"])

    slow = _run(
        pytester, *only_nap, "--voxbench-output", "slow", "--voxbench-iterations", "8",
        "--voxbench-compare", str(base_dir), "--voxbench-threshold", "50%", sleep_ms=20,
    )  # fmt: skip
    slow.assert_outcomes(passed=2, deselected=1)
    assert slow.ret == 1
    slow.stdout.fnmatch_lines(
        ["*1 regressed*", "*pytest:test_user.py::test_nap*regressed*", "*exit status 1*"]
    )


def test_a_missing_compare_base_is_a_usage_error(pytester: pytest.Pytester):
    result = _run(pytester, "--voxbench-compare", "no/such/run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--voxbench-compare: no such run folder or file: no/such/run*"])


def test_measuring_one_name_twice_fails_that_test(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_twice="""
def test_twice(voxbench):
    voxbench(len, "ab", name="x")
    voxbench(len, "abc", name="x")
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--voxbench-iterations", "3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'x' is measured twice in test_twice.py::test_twice*"])


def test_loading_the_plugin_imports_nothing_heavy():
    """pytest imports the plugin in every session of every project in the environment:
    it must cost nothing until a test asks for the fixture."""
    code = (
        "import sys, voxbench.cli.pytest_plugin\n"
        "heavy = [m for m in ('numpy', 'scipy', 'pydantic', 'torch', 'voxbench.results',"
        " 'voxbench.micro') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_the_example_in_the_docs_runs(pytester: pytest.Pytester):
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "micro.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", doc, re.S)
    pytester.makepyfile(test_doc_example=example)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--voxbench-iterations", "3")
    result.assert_outcomes(passed=2)
    (doc_run,) = _documents(pytester.path / "results")
    assert sorted(c.workload for c in doc_run.cases) == ["mel-2s", "sorted-10k", "sorted-1k"]
