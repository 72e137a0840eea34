"""`voxbench run --quality` and `voxbench quality RUN_DIR` as a user runs them: real engines,
real metrics, the verdicts in the terminal, report.md and the document."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.cli import assert_one_line_error, voxbench


def _run_dir(doc: dict, root: Path) -> Path:
    return root / doc["environment"]["machine_id"] / doc["run_id"]


@pytest.mark.slow
def test_worldvc_presets_report_rtf_and_pitch_with_verdicts(tmp_path):
    """The issue's command, on the 5-second singing clip to keep CI fast."""
    proc = voxbench(
        "run", "--engine", "worldvc", "--workload", "singing5",
        "--param", "preset=fast,balanced,quality", "--quality", "--metric", "pitch",
        "-n", "2", "--warmup", "1", "-o", str(tmp_path), "--json", "-",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    presets = {c["params"]["preset"]: c for c in doc["cases"]}
    assert set(presets) == {"fast", "balanced", "quality"}
    for case in presets.values():
        pitch = case["quality"]["f0_rmse_hz"]
        assert pitch["available"], pitch["reason"]
        assert pitch["target"] == 10.0 and pitch["target_op"] == "<="
        assert pitch["passed"] == (pitch["value"] <= 10.0)
        assert pitch["judged_against"] == "target melody"
        assert case["rtf"] > 0
    assert doc["quality"]["targets"]["f0_rmse_hz"] == "<= 10"
    # the terminal shows the verdicts and the trade-off; report.md keeps them
    assert "Quality targets" in proc.stderr and "f0_rmse_hz" in proc.stderr
    assert ("PASS" in proc.stderr) or ("FAIL" in proc.stderr)
    report = (_run_dir(doc, tmp_path) / "report.md").read_text()
    assert "## Quality–speed trade-off: worldvc on singing5" in report
    assert "Pareto-optimal for" in report


@pytest.mark.slow
def test_quality_afterwards_with_a_reference_and_without(tmp_path):
    """`voxbench quality RUN_DIR` judges a finished run; reference-based metrics need a
    reference, and say so instead of reporting a number."""
    ref = tmp_path / "ref.wav"
    text = "The quick brown fox jumps over the lazy dog."
    subprocess.run(["espeak-ng", "-w", str(ref), text], check=True)
    (tmp_path / "refs.jsonl").write_text(
        json.dumps({"id": "fox", "text": text, "reference": "ref.wav"})
        + "\n"
        + json.dumps({"id": "plain", "text": "Hello there, how are you today?"})
        + "\n"
    )
    proc = voxbench(
        "run", "-e", "espeak", "-w", str(tmp_path / "refs.jsonl"), "-n", "2", "--warmup", "1",
        "-o", str(tmp_path / "out"), "--json", "-",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert all(not c["quality"] for c in doc["cases"])  # speed only until asked
    run_dir = _run_dir(doc, tmp_path / "out")
    proc = voxbench("quality", str(run_dir), "--metric", "spectral,asr", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    judged = {c["input_id"]: c["quality"] for c in json.loads(proc.stdout)["cases"]}
    fox, plain = judged["fox"], judged["plain"]
    # espeak against espeak-ng's own rendering of the same text: close, but measured
    assert fox["mcd_db"]["available"] and fox["mcd_db"]["value"] >= 0
    assert fox["mcd_db"]["judged_against"] == "reference audio"
    assert not plain["mcd_db"]["available"] and plain["mcd_db"]["value"] is None
    assert plain["mcd_db"]["reason"] == "no reference audio for this input"
    for q in (fox, plain):
        assert q["wer"]["available"] and q["wer"]["details"]["transcript"]
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["quality"]["metrics"] == ["spectral", "asr"]
    assert "## Quality not measured" in (run_dir / "report.md").read_text()
    # --jobs 1: every metric in the voxbench process, the same scores as the worker pool
    proc = voxbench("quality", str(run_dir), "--metric", "spectral", "--jobs", "1", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    serial = {c["input_id"]: c["quality"] for c in json.loads(proc.stdout)["cases"]}
    assert serial["fox"]["mcd_db"]["value"] == fox["mcd_db"]["value"]


def test_quality_bad_input_is_one_line(tmp_path):
    assert_one_line_error(
        voxbench("run", "-e", "espeak", "--quality", "--metric", "nope", "-o", str(tmp_path)),
        "unknown metric 'nope'",
    )
    assert_one_line_error(
        voxbench("run", "-e", "espeak", "--target", "wer<=fast", "-o", str(tmp_path)),
        "target for 'wer'",
    )
    assert_one_line_error(
        voxbench("run", "-e", "espeak", "--quality", "--no-audio", "-o", str(tmp_path)),
        "drop --no-audio",
    )
    assert_one_line_error(voxbench("quality", str(tmp_path / "nothing")), "no result document")
