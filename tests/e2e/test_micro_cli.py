"""`voxbench micro` as a user (or CI) runs it: a real subprocess, a valid result document, the
store, `voxbench report`, and `voxbench compare` on its results."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from support.cli import assert_one_line_error, voxbench
from voxbench.micro.kernels import KERNELS
from voxbench.micro.runner import backend_reason
from voxbench.results import ResultDocument


def _quick(out: Path, *extra: str) -> tuple[Any, float, ResultDocument]:
    started = time.perf_counter()
    proc = voxbench("micro", "--quick", "-o", str(out), "--json", "-", *extra)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    return proc, elapsed, ResultDocument.model_validate_json(proc.stdout)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, float, ResultDocument, Path]:
    out = tmp_path_factory.mktemp("micro") / "results"
    proc, elapsed, doc = _quick(out)
    return proc, elapsed, doc, out / doc.environment.machine_id / doc.run_id


def test_quick_run_writes_a_valid_micro_document(quick_run, record_property):
    proc, elapsed, doc, run_dir = quick_run
    record_property("micro_quick_wall_s", round(elapsed, 1))  # reported, not judged
    print(f"voxbench micro --quick took {elapsed:.1f} s")
    assert doc.scenario == "micro"
    assert ResultDocument.model_validate_json((run_dir / "results.json").read_text()) == doc
    assert {c.engine for c in doc.cases} == {f"micro:{k}" for k in KERNELS}
    for c in doc.cases:
        assert c.mode == "in-process" and not c.errors, c.id
        assert c.latency_ms is not None and c.latency_ms.ci95 is not None, c.id
        assert len(c.samples.latency_ms) == c.iterations == c.latency_ms.n >= 5, c.id
        assert c.params["backend"] in ("numpy", "scipy", "torch", "torchaudio", "librosa"), c.id
        assert c.meta["loops_per_sample"] >= 1, c.id
        reference = c.meta["reference"]
        speedup = c.meta["speedup_vs_reference"]
        assert isinstance(speedup, float) and speedup > 0, c.id
        if c.params["backend"] == reference and c.device == "cpu":
            assert speedup == 1.0 and c.meta["max_rel_error"] == 0.0, c.id
        kernel = KERNELS[c.engine.removeprefix("micro:")]
        if kernel.family == "audio":
            assert reference == ("librosa" if backend_reason("librosa") is None else "numpy")
            assert c.meta["max_rel_error"] < 1e-2, (c.id, c.meta)
        else:
            assert c.meta["max_abs_error"] == 0.0 and c.meta["mismatched"] == 0, c.id
        if kernel.family in ("audio", "codes"):
            assert c.audio_seconds in (0.5, 2.0) and c.rtfx and c.rtfx > 0, c.id
        else:
            assert c.audio_seconds is None and c.items_per_second, c.id
    report = (run_dir / "report.md").read_text()
    assert f"# voxbench micro {doc.run_id}" in report and "speedup vs ref" in report
    assert "speedup vs ref" in proc.stderr  # the terminal table


def test_cuda_runs_where_torch_has_it_and_is_skipped_with_the_reason_elsewhere(quick_run):
    proc, _, doc, run_dir = quick_run
    why = backend_reason("torch", "cuda")
    cuda = [c for c in doc.cases if c.device == "cuda"]
    if why is None:
        assert cuda and "torch" in {c.params["backend"] for c in cuda}
        assert {c.params["backend"] for c in cuda} <= {"torch", "torchaudio"}
    else:
        assert not cuda
        assert {"engine": "micro (torch)", "device": "cuda", "reason": why} in doc.skipped
        assert why in (run_dir / "report.md").read_text() and why in proc.stderr


def test_the_run_is_recorded_in_the_store(quick_run, _private_store):
    from voxbench.results.store import open_store

    _, _, doc, _ = quick_run
    with open_store(str(_private_store)) as store:
        assert store.get(doc.run_id).scenario == "micro"


def test_report_rerenders_a_micro_run(quick_run):
    *_, run_dir = quick_run
    before = (run_dir / "report.md").read_text()
    proc = voxbench("report", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == before


def test_two_quick_runs_flow_through_compare(quick_run, tmp_path):
    _, _, base, base_dir = quick_run
    _, _, cand = _quick(tmp_path / "results")
    cand_dir = tmp_path / "results" / cand.environment.machine_id / cand.run_id
    proc = voxbench("compare", str(base_dir), str(cand_dir), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    assert result["only_base"] == [] and result["only_candidate"] == []
    assert len(result["cases"]) == len(base.cases) == len(cand.cases)
    for case in result["cases"]:
        latency = next(m for m in case["metrics"] if m["metric"] == "latency_ms")
        assert latency["ci_low"] is not None and latency["verdict"] in (
            "improved",
            "regressed",
            "unchanged",
        )
    assert (proc.returncode == 1) == result["regressed"]  # same verdict as the exit status


def test_a_slower_kernel_is_flagged_by_compare(quick_run, tmp_path):
    """A candidate whose mel cases are slower than every base sample (the base's own samples
    scaled by twice their spread) regresses, exit status 1; the unchanged cases do not.
    (How small a change compare can tell from noise is tested with compare itself.)"""
    _, _, base, base_dir = quick_run
    slow = base.model_copy(deep=True)
    for c in slow.cases:
        if c.engine == "micro:mel":
            lat = c.samples.latency_ms
            factor = 2 * max(lat) / min(lat)
            c.samples.latency_ms = [v * factor for v in lat]
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "results.json").write_text(slow.model_dump_json())
    proc = voxbench("compare", str(base_dir), str(tmp_path / "slow"), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    regressed = {c["key"] for c in result["cases"] if c["verdict"] == "regressed"}
    mel = {c["key"] for c in result["cases"] if c["key"].startswith("micro:mel/")}
    assert mel and regressed == mel


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kernel", "melody"], "unknown kernel 'melody'"),
        (["--backend", "jax"], "unknown backend 'jax'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--json", "/no/such/folder/x.json"], "does not exist"),
    ],
)
def test_bad_input_is_one_line(args, needle, tmp_path):
    proc = voxbench("micro", "--quick", "-o", str(tmp_path), *args)
    assert_one_line_error(proc, needle)
    assert not any(tmp_path.iterdir())  # nothing measured, nothing written
