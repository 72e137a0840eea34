"""voxbench compare as CI runs it: exit status 0 when unchanged, 1 on a regression, 2 on bad
input; Markdown for the pull request, JSON for machines."""

from __future__ import annotations

import json

import pytest

from support.cli import assert_one_line_error, voxbench
from support.store_fixtures import sleep_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):  # type: ignore[no-untyped-def]
    return sleep_runs(tmp_path_factory.mktemp("compare-cli"))


def test_same_engine_twice_is_unchanged(runs):
    proc = voxbench("compare", str(runs.base), str(runs.same), env=runs.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 regressed" in proc.stdout and "unchanged" in proc.stdout


def test_ten_percent_slower_fails_the_gate(runs, tmp_path):
    md = tmp_path / "comment.md"
    proc = voxbench(
        "compare", str(runs.base / "results.json"), str(runs.slow), "--ignore-param", "call_ms",
        "--markdown", str(md), env=runs.env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    text = md.read_text()
    assert "❌ **1 regressed**" in text and "| latency_ms |" in text and "**regressed**" in text


def test_run_ids_from_the_store_and_json(runs):
    proc = voxbench(
        "compare", "latest~2", "latest", "--ignore-param", "call_ms", "--json", "-",
        "--metric", "latency_ms", env=runs.env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["base"]["run_id"] == runs.ids[0] and data["candidate"]["run_id"] == runs.ids[2]
    [case] = data["cases"]
    assert [m["metric"] for m in case["metrics"]] == ["latency_ms"]
    assert case["verdict"] == "regressed" and case["metrics"][0]["ci_low"] > 0.05
    proc = voxbench("compare", runs.ids[0][:-2], runs.ids[1], "--format", "markdown", env=runs.env)
    assert proc.returncode == 0 and proc.stdout.startswith("### voxbench compare"), proc.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["nothing-here", "latest"], ["no run 'nothing-here'"]),
        (["/no/such/dir", "latest"], ["no such run folder or file"]),
        (["latest~1", "latest"], ["no case in common", "--ignore-param"]),
        (["latest", "latest", "--threshold", "abc"], ["bad --threshold 'abc'"]),
        (["latest", "latest", "--format", "xml"], ["unknown --format 'xml'"]),
        (["latest", "latest", "--metric", "speed"], ["unknown metric 'speed'"]),
        (["latest~9", "latest"], ["latest~9: the store", "holds 3 runs"]),
    ],
)
def test_bad_input_is_one_line_with_status_2(runs, args, needles):
    proc = voxbench("compare", *args, env=runs.env)
    assert proc.returncode == 2
    assert_one_line_error(proc, *needles)


def _judged_file(tmp_path, name: str, n: int, center: float):  # type: ignore[no-untyped-def]
    from support.result_docs import make_case, make_doc, noise
    from voxbench.results.folder import write_json
    from voxbench.results.validity import case_validity

    case = make_case(noise(center, n=n, seed=n))
    case.validity = case_validity(case)
    path = tmp_path / f"{name}.json"
    write_json(make_doc(name, case), path)
    return path


def test_an_invalid_case_cannot_be_gated_exit_3(tmp_path):
    base = _judged_file(tmp_path, "base", 5, 20.0)  # 5 measured iterations: invalid
    cand = _judged_file(tmp_path, "cand", 30, 20.0)
    proc = voxbench("compare", str(base), str(cand), "--no-run-noise")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "invalid" in proc.stdout and "0 regressed" in proc.stdout
    proc = voxbench("compare", str(base), str(cand), "--no-run-noise", "--json", "-")
    assert proc.returncode == 3 and json.loads(proc.stdout)["exit_status"] == 3


def test_a_regression_of_valid_cases_still_exits_1(tmp_path):
    base = _judged_file(tmp_path, "base", 30, 20.0)
    cand = _judged_file(tmp_path, "cand", 31, 24.0)
    proc = voxbench("compare", str(base), str(cand), "--no-run-noise")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "invalid" not in proc.stdout


def test_an_invalid_run_is_not_gated_and_exits_3(runs, tmp_path):
    """A real 5-iteration run (fewer than MIN_SAMPLES = 10) is invalid in its results.json, with
    the reason; compare against it says "invalid, not compared" and exits 3: the gate cannot
    decide (exit 0 would pass it, exit 1 would call it a regression)."""
    from support.store_fixtures import one_item_workload, sleep_run

    _doc, folder = sleep_run(tmp_path / "results", one_item_workload(tmp_path), 20.0, 5)
    stored = json.loads((folder / "results.json").read_text())["cases"][0]["validity"]
    assert stored == {"valid": False, "reasons": ["5 measured samples, fewer than 10"]}
    proc = voxbench("compare", str(runs.base), str(folder), env=runs.env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "invalid, not compared" in proc.stdout and "5 measured samples" in proc.stdout
    proc = voxbench("compare", str(runs.base), str(folder), "--json", "-", env=runs.env)
    data = json.loads(proc.stdout)
    assert proc.returncode == 3 and data["exit_status"] == 3 and data["cases"] == []
    [inv] = data["invalid"]
    assert inv["base_reasons"] == [] and inv["candidate_reasons"] == [
        "5 measured samples, fewer than 10"
    ]
