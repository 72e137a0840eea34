"""Sweeps, devices, batches and config files through the CLI, on real engines."""

from __future__ import annotations

import json

import pytest

from conftest import CAL
from support.cli import assert_one_line_error, voxbench


@pytest.mark.slow
def test_piper_length_scale_sweep_table(tmp_path):
    """The done-when command of the sweep, with fewer iterations."""
    # noise off: piper otherwise draws phoneme durations at random, and the check below
    # compares audio lengths across length_scale values
    proc = voxbench(
        "run",
        "--engine",
        "piper",
        "--engine-arg",
        "noise_w=0",
        "--engine-arg",
        "noise_scale=0",
        "--param",
        "length_scale=0.8,1.0,1.2",
        "--workload",
        "short,medium,long",
        "-n",
        "1",
        "--warmup",
        "0",
        "-o",
        str(tmp_path),
        "--json",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["cases"]) == 3 * 3 * 2  # values × workloads × inputs per workload
    assert doc["config"]["engines"][0]["sweep"] == {"length_scale": [0.8, 1.0, 1.2]}
    # the parameter reaches the engine: slower speech is longer audio, input by input
    by_input: dict[str, dict[float, float]] = {}
    for c in doc["cases"]:
        by_input.setdefault(c["input_id"], {})[c["params"]["length_scale"]] = c["audio_seconds"]
    for lengths in by_input.values():
        assert lengths[0.8] < lengths[1.0] < lengths[1.2]
    assert "Sweep: piper by length_scale × workload" in proc.stderr
    for header in ("short chars/s", "medium rtf ↓", "long chars/s"):
        assert header in proc.stderr
    report = next(tmp_path.glob("*/*/report.md")).read_text()
    assert "## Sweep: piper by length_scale × workload" in report


def test_cuda_without_cuda_is_one_line(tmp_path):
    assert_one_line_error(
        voxbench("run", "-e", f"{CAL}:SleepEngine", "--device", "cuda", "-o", str(tmp_path)),
        "nothing to run",
        "on cuda",
    )
    assert_one_line_error(voxbench("run", "-e", "espeak", "--device", "tpu"), "unknown device")


def test_cpu_and_cuda_runs_cpu_and_records_why_cuda_was_skipped(tmp_path):
    proc = voxbench(
        "run",
        "-e",
        "espeak",
        "-w",
        "short",
        "--device",
        "cpu,cuda",
        "-n",
        "1",
        "--warmup",
        "0",
        "-o",
        str(tmp_path),
        "--json",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {c["device"] for c in doc["cases"]} == {"cpu"}
    assert doc["skipped"][0]["device"] == "cuda" and doc["skipped"][0]["reason"]
    assert "skipped espeak on cuda" in proc.stderr


@pytest.mark.slow
def test_piper_cuda_fallback_is_flagged_not_hidden(tmp_path):
    """onnxruntime here has no CUDA provider: asked for it explicitly, piper runs on the CPU,
    and the case says so."""
    proc = voxbench(
        "run",
        "-e",
        "piper",
        "-a",
        "providers=CUDAExecutionProvider,CPUExecutionProvider",
        "-w",
        "short",
        "-n",
        "1",
        "--warmup",
        "0",
        "-o",
        str(tmp_path),
        "--json",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    case = json.loads(proc.stdout)["cases"][0]
    assert case["engine_info"]["providers"] == ["CPUExecutionProvider"]
    assert case["engine_info"]["providers_requested"][0] == "CUDAExecutionProvider"
    assert case["device_actual"] == "cpu"


def test_batch_sizes_skip_engines_without_batches(tmp_path):
    proc = voxbench(
        "run",
        "-e",
        f"{CAL}:SleepEngine",
        "--batch-size",
        "1,4",
        "-n",
        "1",
        "--warmup",
        "0",
        "-o",
        str(tmp_path),
        "--json",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {c["batch_size"] for c in doc["cases"]} == {1}
    assert doc["skipped"][0]["batch_size"] == "4"


def test_config_file_is_used_overridden_and_stored(tmp_path):
    cfg = tmp_path / "voxbench.toml"
    cfg.write_text(
        'iterations = 4\nwarmup = 0\nworkloads = ["short"]\n'
        f'[[engine]]\nref = "{CAL}:SleepEngine"\nargs = {{ call_ms = 2 }}\n'
        "params = { audio_seconds = [0.5, 1.0] }\n"
    )
    proc = voxbench("run", "--config", str(cfg), "-n", "2", "-o", str(tmp_path), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["config"]["iterations"] == 2  # the command line wins
    assert doc["config"]["config_file"]["engine"][0]["args"] == {"call_ms": 2}
    assert sorted({c["audio_seconds"] for c in doc["cases"]}) == [0.5, 1.0]
    assert all(len(c["samples"]["latency_ms"]) == 2 for c in doc["cases"])
    bad = tmp_path / "bad.toml"
    bad.write_text("iterations = 'many'\n")
    assert_one_line_error(voxbench("run", "--config", str(bad)), "bad.toml: iterations")
