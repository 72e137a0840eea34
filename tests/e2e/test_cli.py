"""The CLI as a user runs it: a real subprocess, real engines, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import CAL
from support.cli import assert_one_line_error, terminal_like_sigint, voxbench


def test_help_imports_nothing_heavy():
    code = (
        "import sys; sys.argv = ['voxbench', '--help']\n"
        "from voxbench.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'scipy', 'pydantic', 'onnxruntime', 'piper', 'psutil',"
        " 'soundfile', 'mido') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_engines_lists_builtins_with_availability():
    proc = voxbench("engines", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"espeak", "piper", "fluidsynth"} <= set(rows)
    assert rows["espeak"]["available"] and rows["espeak"]["streaming"]


NOISY_ENGINE = """
import os, sys
import numpy as np
import voxbench

print("noisy: imported")


class Noisy(voxbench.BaseEngine):
    name = "noisy"
    waive_output_checks = ("silent",)  # answers digital silence on purpose
    input_kind = "text"
    default_workloads = ("short",)

    def load(self):
        print("noisy: loading")

    def synthesize(self, text):
        print("noisy: python print")
        os.write(1, b"noisy: C-level write to fd 1\\n")
        return voxbench.Output(audio=np.zeros(1600, np.float32), sample_rate=16000)
"""


@pytest.mark.parametrize("mode", [[], ["--in-process"]], ids=["worker", "in-process"])
def test_json_on_stdout_survives_engines_that_print(tmp_path, mode):
    """`--json -` stays parseable when an engine (or a library, as pyfluidsynth does under CI=1)
    writes to stdout from Python or from C; that text goes to stderr (or the worker's log)."""
    (tmp_path / "noisy_engine.py").write_text(NOISY_ENGINE)
    proc = voxbench(
        "run", "-e", "noisy_engine:Noisy", "-n", "2", "--warmup", "1", *mode,
        "-o", str(tmp_path / "out"), "--json", "-",
        env={"PYTHONPATH": str(tmp_path), "CI": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["cases"][0]["engine"] == "noisy"
    assert "noisy: imported" in proc.stderr  # the parent imports the module to plan the run
    if mode:
        assert "noisy: python print" in proc.stderr and "noisy: C-level write" in proc.stderr


def test_engines_json_is_clean_under_ci():
    """CI=1 makes pyfluidsynth print where it found libfluidsynth; `engines --json` stays JSON."""
    proc = voxbench("engines", "--json", env={"CI": "1"})
    assert proc.returncode == 0, proc.stderr
    assert {r["name"] for r in json.loads(proc.stdout)} >= {"espeak", "fluidsynth"}


def test_missing_system_package_is_one_line_with_the_fix(tmp_path):
    env = {"VOXBENCH_ESPEAK_LIBRARY": str(tmp_path / "libespeak-ng.so.1")}
    proc = voxbench("engines", "--json", env=env)
    espeak = next(r for r in json.loads(proc.stdout) if r["name"] == "espeak")
    assert not espeak["available"] and "apt-get install espeak-ng" in espeak["reason"]
    proc = voxbench("run", "--engine", "espeak", "-o", str(tmp_path), env=env)
    assert_one_line_error(proc, "espeak", "apt-get install espeak-ng")


def test_unknown_engine(tmp_path):
    assert_one_line_error(
        voxbench("run", "--engine", "nope", "-o", str(tmp_path)), "unknown engine 'nope'"
    )


def test_unknown_workload_and_empty_corpus(tmp_path):
    assert_one_line_error(
        voxbench("run", "-e", "espeak", "-w", "nope", "-o", str(tmp_path)),
        "unknown workload 'nope'",
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert_one_line_error(
        voxbench("run", "-e", "espeak", "-w", str(empty), "-o", str(tmp_path)), "has no inputs"
    )


def test_mismatched_engine_and_workload(tmp_path):
    assert_one_line_error(
        voxbench("run", "-e", "fluidsynth", "-w", "short", "-o", str(tmp_path)),
        "takes midi input",
        "--workload piano",
    )


def test_report_on_a_missing_folder(tmp_path):
    assert_one_line_error(voxbench("report", str(tmp_path / "nothing")), "no result document")


def test_raising_engine_is_recorded_and_the_run_goes_on(tmp_path):
    proc = voxbench(
        "run",
        "-e",
        f"{CAL}:FailingEngine,{CAL}:SleepEngine",
        "-w",
        "short",
        "-n",
        "2",
        "--warmup",
        "0",
        "-o",
        str(tmp_path),
        "--json",
        "-",
    )
    assert proc.returncode == 1, proc.stderr  # finished, but with errors
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    failing = [c for c in doc["cases"] if c["engine"] == "failing"]
    ok = [c for c in doc["cases"] if c["engine"] == "sleep"]
    assert failing and all(c["errors"][0]["type"] == "RuntimeError" for c in failing)
    assert ok and all(c["error_count"] == 0 and c["latency_ms"]["median"] > 0 for c in ok)


@pytest.mark.slow
def test_espeak_run_writes_document_report_and_audio(tmp_path):
    proc = voxbench(
        "run",
        "--engine",
        "espeak",
        "--workload",
        "short",
        "-n",
        "3",
        "--warmup",
        "1",
        "-o",
        str(tmp_path),
        "--machine-id",
        "box-a",
        "--json",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    run_dir = tmp_path / "box-a" / doc["run_id"]
    assert json.loads((run_dir / "results.json").read_text()) == doc
    case = doc["cases"][0]
    for key in (
        "engine",
        "workload",
        "input_id",
        "params",
        "device",
        "iterations",
        "warmup",
        "latency_ms",
        "rtf",
        "rtfx",
        "audio_seconds",
        "chars_per_second",
        "ttfa_ms",
        "cold_start_ms",
        "peak_rss_mb",
        "cpu_utilization",
        "stages",
        "errors",
        "samples",
    ):
        assert key in case
    assert case["rtf"] < 1 < case["rtfx"]
    assert len(case["samples"]["latency_ms"]) == 3
    assert (run_dir / case["audio_file"]).stat().st_size > 10_000
    assert doc["environment"]["machine_id"] == "box-a"
    report = (run_dir / "report.md").read_text()
    assert "rtf" in report and case["input_id"] in report
    # report re-renders from the JSON alone
    (run_dir / "report.md").unlink()
    again = voxbench("report", str(run_dir))
    assert again.returncode == 0 and (run_dir / "report.md").read_text() == report


def _offline_prefix() -> list[str]:
    """`unshare -n` (no network at all) where this user may create a network namespace."""
    import shutil

    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-n"]
    return []


@pytest.mark.slow
def test_default_run_covers_builtin_engines_offline(tmp_path):
    """`voxbench run` with no engine or workload: every built-in on its own workloads, no network."""
    prefix = _offline_prefix()
    cmd = [
        *prefix,
        sys.executable,
        "-m",
        "voxbench",
        "run",
        "-n",
        "2",
        "--warmup",
        "1",
        "-o",
        str(tmp_path),
        "--json",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    engines = {c["engine"] for c in doc["cases"]}
    assert {"espeak", "piper", "fluidsynth"} <= engines
    workloads = {(c["engine"], c["workload"]) for c in doc["cases"]}
    assert ("piper", "long") in workloads and ("fluidsynth", "piano") in workloads
    for case in doc["cases"]:
        assert case["error_count"] == 0, case["errors"]
        assert case["rtf"] > 0 and case["rtfx"] > 0 and case["cold_start_ms"] > 0
        if case["engine"] == "worldvc":  # whole-file WORLD analysis: it does not stream
            continue
        assert case["streamed"] and case["ttfa_ms"]["median"] <= case["latency_ms"]["median"]
    assert "rtf" in proc.stderr  # the human table went to stderr, the JSON to stdout


@pytest.mark.slow
def test_ctrl_c_keeps_the_cases_already_measured(tmp_path):
    import signal
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voxbench",
            "run",
            "-e",
            f"{CAL}:SleepEngine",
            "-w",
            "short,medium",
            "-n",
            "200",  # ~10 s a case: on a loaded machine the run must still be mid-way at SIGINT
            "--warmup",
            "0",
            "-o",
            str(tmp_path),
            "--machine-id",
            "m",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=terminal_like_sigint,
    )
    deadline = time.monotonic() + 60
    results = None
    while time.monotonic() < deadline and results is None:
        found = list(tmp_path.glob("m/*/results.json"))
        if found and json.loads(found[0].read_text())["cases"]:
            results = found[0]
        time.sleep(0.05)
    assert results is not None, "no case finished in time"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    here = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    assert proc.returncode == 130, f"{err}\n(SIGINT handler and blocked set in pytest: {here})"
    assert "Traceback" not in err and "interrupted after" in err
    doc = json.loads(results.read_text())
    assert 1 <= len(doc["cases"]) < 4 and doc["finished_at"] is None
    assert (results.parent / "report.md").is_file()


def test_unusable_output_paths_are_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_one_line_error(
        voxbench("run", "-e", f"{CAL}:SleepEngine", "-o", str(blocker)),
        "cannot create the results folder",
    )
    assert_one_line_error(
        voxbench(
            "run",
            "-e",
            f"{CAL}:SleepEngine",
            "-o",
            str(tmp_path),
            "--json",
            str(tmp_path / "missing" / "x.json"),
        ),
        "--json: folder",
    )


def test_repeated_engines_and_workloads_run_once(tmp_path):
    proc = voxbench(
        "run",
        "-e",
        f"{CAL}:SleepEngine",
        "-e",
        f"{CAL}:SleepEngine",
        "-w",
        "short,short",
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
    assert len(json.loads(proc.stdout)["cases"]) == 2  # short has two inputs
