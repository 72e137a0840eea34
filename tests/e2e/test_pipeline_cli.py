"""``voxbench pipeline`` as a user runs it, and its runs through the rest of the product.

The chain is made of parts of KNOWN timing, named as such: the recogniser and TTS of
tests/support/known_timing.py (they sleep a set time) and the chat server of known speed
(tests/support/chat_server.py) as the LLM, on loopback. So each run takes a second or two and
what it reports can be checked against what the parts were set to do: STT ``delay_ms``, the
server's first token at 20 ms and 200 tokens/s, the TTS's 50 ms + 5 ms per word and 0.3 s of tone
per word after 100 ms of silence.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.chat_server import ChatServer
from support.cli import assert_one_line_error, voxbench

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_default_keys")]

TESTS = Path(__file__).resolve().parents[1]
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
STT = "support.known_timing:KnownSTT"
TTS = "support.known_timing:KnownTTS"
STT_MS = 30.0
FIRST_TOKEN_MS, TOKENS_PER_S, TOKENS = 20.0, 200.0, 5
WORDS = TOKENS  # the server's answer "t0 t1 t2 t3 t4 ": one word per token
RATE = 16000  # KnownTTS


@pytest.fixture(scope="module")
def chat() -> Iterator[str]:
    with ChatServer(
        first_token_ms=FIRST_TOKEN_MS, tokens_per_second=TOKENS_PER_S, tokens=TOKENS
    ) as url:
        yield url


def pipeline(
    chat: str, out: Path, *extra: str, store: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """One prompt of ``spoken-short``, both modes, 2 conversations each, nothing warmed up."""
    keep = ["--store", store] if store else ["--no-store"]
    return voxbench(
        "pipeline", "--stt", STT, "--stt-arg", f"delay_ms={STT_MS:g}", "--llm", chat,
        "--tts", TTS, "-w", "spoken-short", "--limit", "1", "-n", "2", "--warmup", "0",
        "-o", str(out), *keep, *extra, env=ENV, cwd=cwd, timeout=120,
    )  # fmt: skip


def run_dir(out: Path) -> Path:
    """The one run folder under a results root."""
    (found,) = out.rglob("results.json")
    return found.parent


def fails_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("fails: ")]


# -- one passing run, its document on stdout ---------------------------------------------------


@pytest.fixture(scope="module")
def passing(chat: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("pipeline-pass") / "results"
    proc = pipeline(chat, out, "--json", "-")
    return proc, out


def test_passing_targets_exit_0_and_the_document_goes_to_stdout(passing: Any) -> None:
    proc, out = passing
    assert proc.returncode == 0, proc.stderr
    assert not fails_lines(proc)
    doc = json.loads(proc.stdout)  # stdout holds the document and nothing else
    assert doc["scenario"] == "pipeline" and doc["run_id"] == run_dir(out).name
    cases = {c["pipeline"]["mode"]: c for c in doc["cases"]}
    assert sorted(cases) == ["sequential", "streaming"]
    for case in cases.values():
        p = case["pipeline"]
        assert case["error_count"] == 0 and case["iterations"] == 2
        assert p["stt_ms"]["median"] == pytest.approx(STT_MS, abs=10)
        assert case["ttft_ms"]["median"] == pytest.approx(FIRST_TOKEN_MS, abs=12)
        assert p["answer"].split() == [f"t{i}" for i in range(TOKENS)]
        # the listener hears the tone after the TTS's 100 ms of leading silence
        assert case["ttfa_ms"]["median"] - p["first_byte_ms"]["median"] == pytest.approx(100, abs=2)
    rows = doc["pipeline"]["targets"]
    assert len(rows) == 10  # the five default targets, per mode
    assert all(r["passed"] is True for r in rows), rows
    stt = [r for r in rows if r["name"] == "stt_ms"]
    assert [r["target"] for r in stt] == [500, 500]
    assert all(r["actual"] == pytest.approx(STT_MS, abs=10) for r in stt)
    # the tables went to stderr
    assert "Pipeline targets" in proc.stderr and "Pipeline components" in proc.stderr
    assert "Pipeline targets" not in proc.stdout


def test_report_md_holds_the_target_table(passing: Any) -> None:
    _, out = passing
    md = (run_dir(out) / "report.md").read_text(encoding="utf-8")
    assert md.startswith(f"# voxbench pipeline {run_dir(out).name}\n")
    assert "## Pipeline targets" in md
    assert "| sequential | STT latency after end of speech | <= 500 ms |" in md
    assert "| streaming | end of speech → first audible answer | <= 1000 ms |" in md
    assert md.count("| PASS |") == 10 and "FAIL" not in md


def test_voxbench_report_re_renders_a_pipeline_run(passing: Any) -> None:
    _, out = passing
    folder = run_dir(out)
    before = (folder / "report.md").read_text(encoding="utf-8")
    (folder / "report.md").unlink()
    proc = voxbench("report", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == before == (folder / "report.md").read_text(encoding="utf-8")
    assert "## Pipeline targets" in proc.stdout and "## Pipeline stage shares" in proc.stdout
    assert "## Results" not in proc.stdout  # not the single-run table, empty for a pipeline


def test_the_answer_is_saved_as_a_readable_wav(passing: Any) -> None:
    import numpy as np
    import soundfile as sf

    proc, out = passing
    for case in json.loads(proc.stdout)["cases"]:
        path = run_dir(out) / case["audio_file"]
        assert case["audio_file"].startswith("audio/") and path.is_file()
        info = sf.info(str(path))
        assert info.samplerate == RATE and info.subtype == "PCM_16"
        audio, _ = sf.read(str(path), dtype="float32")
        silence = int(0.1 * RATE)
        assert len(audio) == silence + int(0.3 * RATE) * WORDS  # 100 ms + 0.3 s per word
        assert np.abs(audio[:silence]).max() == 0
        assert np.abs(audio[silence:]).max() == pytest.approx(0.5, abs=0.01)


# -- a failing target ----------------------------------------------------------------------------


def test_a_failing_target_exits_1_and_says_which(chat: str, tmp_path: Path) -> None:
    proc = pipeline(chat, tmp_path / "out", "--target", "stt_ms<=1")
    assert proc.returncode == 1, proc.stderr
    lines = fails_lines(proc)
    assert len(lines) == 2, proc.stderr
    for line, mode in zip(lines, ("sequential", "streaming"), strict=True):
        assert line.startswith(f"fails: {mode}: STT latency after end of speech ")
        assert line.endswith("ms against <= 1")
    # written first: the run folder and a report with the FAIL rows
    md = (run_dir(tmp_path / "out") / "report.md").read_text(encoding="utf-8")
    assert md.count("| FAIL |") == 2 and md.count("| PASS |") == 8


# -- bad input: one line, exit status 2, nothing measured ----------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--mode", "fast"], ["unknown pipeline mode 'fast'"]),
        (["--target", "stt_ms=5"], ["bad target 'stt_ms=5'", "NAME<=N"]),
        (["--target", "speed<=5"], ["unknown target 'speed'", "first_audio_ms"]),
        (["--target", "stt_ms:p42<=5"], ["unknown statistic 'p42'"]),
        (["--stt", TTS], ["--stt known-tts turns text into audio"]),
        (["--tts", STT], ["--tts known-stt turns audio into text"]),
        (["--tts", "nosuch"], ["unknown engine 'nosuch'"]),
        (["-w", "short"], ["workload 'short' holds no speech"]),
        (["--llm-arg", "foo"], ["--llm-arg 'foo' must look like name=value"]),
        (["--config", "/no/such/voxbench.toml"], ["/no/such/voxbench.toml does not exist"]),
    ],
)
def test_bad_input_is_one_line_with_status_2(
    chat: str, tmp_path: Path, args: list[str], needles: list[str]
) -> None:
    proc = pipeline(chat, tmp_path / "out", *args)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, *needles)
    assert not list(tmp_path.rglob("results.json"))  # refused before anything was measured


def test_an_unknown_key_in_the_pipeline_table_is_one_line(chat: str, tmp_path: Path) -> None:
    (tmp_path / "voxbench.toml").write_text('[pipeline]\nstt = "whisper"\nspeed = 2\n')
    proc = pipeline(chat, tmp_path / "out", "--config", "voxbench.toml", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, "voxbench.toml", "pipeline.speed")


# -- the [pipeline] table of voxbench.toml, and options over it ---------------------------------


def test_the_pipeline_table_is_used_and_options_override_it(chat: str, tmp_path: Path) -> None:
    (tmp_path / "voxbench.toml").write_text(
        "[pipeline]\n"
        f'stt = "{STT}"\nllm = "{chat}"\ntts = "{TTS}"\n'
        "stt_args = { delay_ms = 10 }\n"
        'workload = "spoken-short"\nmodes = ["sequential"]\niterations = 3\nwarmup = 0\n'
        'targets = ["stt_ms<=1"]\n'
    )
    common = ["--config", "voxbench.toml", "--limit", "1", "--no-store", "--json", "-"]
    proc = voxbench("pipeline", *common, "-o", "a", env=ENV, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr  # the file's target fails
    doc = json.loads(proc.stdout)
    (case,) = doc["cases"]
    assert case["pipeline"]["mode"] == "sequential" and case["iterations"] == 3
    assert case["pipeline"]["stt_ms"]["median"] == pytest.approx(10, abs=8)
    assert doc["pipeline"]["settings"]["llm"] == chat
    assert "stt_ms<=1" in doc["pipeline"]["settings"]["targets"]

    proc = voxbench(
        "pipeline", *common, "-o", "b", "-n", "2", "--mode", "streaming",
        "--stt-arg", "delay_ms=60", "--target", "stt_ms<=1000", env=ENV, cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    (case,) = doc["cases"]
    assert case["pipeline"]["mode"] == "streaming" and case["iterations"] == 2
    assert case["pipeline"]["stt_ms"]["median"] == pytest.approx(60, abs=10)
    stt = [r for r in doc["pipeline"]["targets"] if r["name"] == "stt_ms"]
    assert [(r["op"], r["target"], r["passed"]) for r in stt] == [("<=", 1000, True)]


# -- the store, compare and history on pipeline runs ---------------------------------------------

SLOW_TTS_MS = 150.0  # the TTS's fixed delay in the slower run (50 ms in the others)


@pytest.fixture(scope="module")
def stored(chat: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Three sequential runs of 10 conversations (enough to be valid) in one SQLite store: two
    alike, then one whose TTS answers 100 ms later."""
    tmp = tmp_path_factory.mktemp("pipeline-store")
    store = f"sqlite:///{tmp / 's.db'}"
    folders = []
    for n, tts_ms in enumerate((50.0, 50.0, SLOW_TTS_MS)):
        out = tmp / f"run{n}"
        proc = pipeline(
            chat, out, "--mode", "sequential", "-n", "10", "--tts-arg", f"delay_ms={tts_ms:g}",
            "--no-audio", store=store,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"store:   {store}" in proc.stderr
        folders.append(run_dir(out))
    return tmp, store, folders


def _compare(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = voxbench("compare", *args, "--no-run-noise", "--json", "-")
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else {}


def _metrics(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (case,) = data["cases"]
    assert "mode=sequential" in case["key"]
    return {m["metric"]: m for m in case["metrics"]}


def test_pipeline_runs_are_listed_in_the_store(stored: Any) -> None:
    _, store, folders = stored
    proc = voxbench("store", "list", "--json", "--store", store)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)
    assert [r["run_id"] for r in runs] == [f.name for f in reversed(folders)]  # newest first
    assert {r["scenario"] for r in runs} == {"pipeline"}
    assert all(r["cases"] == 1 and len(r["engines"]) == 1 for r in runs)
    assert runs[0]["engines"][0].startswith("known-stt+llm:127.0.0.1:")


def test_compare_two_alike_pipeline_runs_is_unchanged(stored: Any) -> None:
    _, store, (a, b, _) = stored
    proc, data = _compare(str(a), str(b), "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert data["base"]["scenario"] == data["candidate"]["scenario"] == "pipeline"
    m = _metrics(data)
    assert m["latency_ms"]["verdict"] == m["ttfa_ms"]["verdict"] == "unchanged"
    assert m["latency_ms"]["n_base"] == m["latency_ms"]["n_candidate"] == 10
    # ttft is the LLM's first token, not the first audible answer the case's ttfa samples hold
    assert m["ttft_ms"]["base"] == pytest.approx(FIRST_TOKEN_MS, abs=12)
    assert m["ttft_ms"]["n_base"] == 10


def test_compare_finds_the_slower_tts_by_its_known_delay(stored: Any) -> None:
    _, store, (a, _, slow) = stored
    proc, data = _compare(str(a), str(slow), "--store", store)
    assert proc.returncode == 1, proc.stderr
    m = _metrics(data)
    extra = SLOW_TTS_MS - 50.0
    for name in ("latency_ms", "ttfa_ms"):
        assert m[name]["verdict"] == "regressed"
        assert m[name]["delta"] == pytest.approx(extra, abs=15)
    assert m["ttft_ms"]["verdict"] == "unchanged"
    # the same, by run ids from the store
    proc, data = _compare("latest~1", "latest", "--store", store)
    assert proc.returncode == 1 and data["candidate"]["run_id"] == slow.name, proc.stderr
    proc = voxbench("compare", str(a), str(slow), "--no-run-noise", "--store", store)
    assert proc.returncode == 1 and "1 regressed" in proc.stdout, proc.stderr


def test_a_lower_token_rate_is_a_regression(stored: Any, tmp_path: Path) -> None:
    """tokens/s is better higher: the same run with half the rate regressed, and back improved."""
    _, store, (a, *_) = stored
    doc = json.loads((a / "results.json").read_text())
    doc["run_id"] += "-half"
    for case in doc["cases"]:
        case["tokens_per_second"] /= 2
        rates = case["pipeline"]["samples"]["tokens_per_second"]
        case["pipeline"]["samples"]["tokens_per_second"] = [v / 2 for v in rates]
    half = tmp_path / "half.json"
    half.write_text(json.dumps(doc))
    proc, data = _compare(str(a), str(half), "--metric", "tokens_per_second", "--store", store)
    assert proc.returncode == 1, proc.stderr
    m = _metrics(data)["tokens_per_second"]
    assert m["verdict"] == "regressed" and m["change"] == pytest.approx(-0.5, abs=1e-9)
    assert m["n_base"] == 10  # per conversation, from the pipeline's own samples
    proc, data = _compare(str(half), str(a), "--metric", "tokens_per_second", "--store", store)
    assert proc.returncode == 0 and _metrics(data)["tokens_per_second"]["verdict"] == "improved"


def test_history_follows_a_pipeline_case(stored: Any) -> None:
    _, store, folders = stored
    engine = json.loads((folders[0] / "results.json").read_text())["cases"][0]["engine"]
    proc = voxbench("history", "-e", engine, "--metric", "ttfa_ms", "--json", "-", "--store", store)
    assert proc.returncode == 0, proc.stderr
    (series,) = json.loads(proc.stdout)["cases"]
    assert "mode=sequential" in series["case_id"]
    points = series["points"]
    assert [p["run_id"] for p in points] == [f.name for f in folders]
    base, same, slow = (p["value"] for p in points)
    assert same == pytest.approx(base, rel=0.05)
    assert slow - base == pytest.approx(SLOW_TTS_MS - 50.0, abs=15)


def test_a_pipeline_folder_imports_into_a_fresh_store(stored: Any, tmp_path: Path) -> None:
    _, _, folders = stored
    fresh = tmp_path / "fresh.sqlite"
    root = tmp_path / "results"
    for f in folders:
        shutil.copytree(f, root / f.name)
    proc = voxbench("store", "import", str(root), "--store", str(fresh))
    assert proc.returncode == 0 and proc.stdout.startswith("3 added"), proc.stdout + proc.stderr
    proc = voxbench("store", "list", "--json", "--store", str(fresh))
    assert {r["scenario"] for r in json.loads(proc.stdout)} == {"pipeline"}
