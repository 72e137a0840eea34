"""Engines that raise, hang or crash are recorded as errors; the case ends, the run goes on."""

import pytest

from conftest import CAL
from voxbench.engines.registry import EngineSpec
from voxbench.run import EngineChoice, RunRequest, execute, plan
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import resolve_workload


@pytest.fixture(scope="module")
def item():
    return resolve_workload("short").items[0]


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_raising_engine_errors_are_recorded_per_iteration(mode, item):
    spec = EngineSpec(f"{CAL}:FailingEngine", {"fail_every": 2})
    case = run_case(
        spec, "failing", "short", item, Settings(mode=mode, iterations=4, warmup=1)
    ).case
    # calls 1 (cold) ok, 2 (warm-up) fails, then measured 3 ok, 4 fails, 5 ok, 6 fails
    assert [(e.phase, e.iteration) for e in case.errors] == [
        ("warmup", 0),
        ("measure", 1),
        ("measure", 3),
    ]
    assert case.error_count == 3
    assert len(case.samples.latency_ms) == 2  # only successful calls are samples


@pytest.mark.parametrize("mode", ["in-process", "worker"])
def test_load_failure(mode, item):
    case = run_case(
        EngineSpec(f"{CAL}:FailingLoadEngine"), "x", "short", item, Settings(mode=mode)
    ).case
    assert case.errors[0].phase == "load"
    assert "failure while loading" in case.errors[0].message
    assert case.latency_ms is None


def test_hang_is_cut_by_the_timeout(item):
    case = run_case(
        EngineSpec(f"{CAL}:HangingEngine", {"hang_on": 3}),
        "x",
        "short",
        item,
        Settings(mode="worker", timeout_s=1.0, warmup=2),
    ).case
    assert case.errors[-1].phase == "case"
    assert "timed out after 1 s" in case.errors[-1].message


def test_crash_reports_the_exit_code(item):
    case = run_case(
        EngineSpec(f"{CAL}:CrashingEngine"), "x", "short", item, Settings(mode="worker")
    ).case
    assert "worker died" in case.errors[-1].message and "77" in case.errors[-1].message


def test_run_goes_on_after_a_failing_engine(results_dir):
    request = RunRequest(
        engines=[
            EngineChoice(f"{CAL}:FailingEngine"),
            EngineChoice(f"{CAL}:SleepEngine", {"call_ms": 1}),
        ],
        workloads=["short"],
        settings=Settings(iterations=2, warmup=0),
        output=results_dir,
    )
    doc, run_dir = execute(request, plan(request))
    by_engine = {}
    for c in doc.cases:
        by_engine.setdefault(c.engine, []).append(c)
    assert all(c.error_count == 3 for c in by_engine["failing"])
    assert all(c.error_count == 0 and c.latency_ms for c in by_engine["sleep"])
    assert (run_dir / "results.json").is_file()


def test_timeout_keeps_the_iterations_measured_before_it(item):
    # cold + 1 warm-up + 2 measured calls answer; the 5th call hangs.
    case = run_case(
        EngineSpec(f"{CAL}:HangingEngine", {"hang_on": 5}),
        "x",
        "short",
        item,
        Settings(mode="worker", timeout_s=1.0, warmup=1, iterations=5),
    ).case
    assert len(case.samples.latency_ms) == 2 and case.latency_ms.n == 2
    assert case.errors[-1].phase == "case"
