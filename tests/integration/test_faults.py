"""Fault injection: engines and servers of KNOWN misbehaviour (tests/support/fault_engines.py,
tests/support/speech_server.py) run through the real worker executor, the library's run and the
CLI. Each fault is recorded in its case with a one-line reason; the run goes on, and the case
after it measures normally with a fresh worker."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from conftest import CAL
from support.cli import assert_one_line_error, voxbench
from support.speech_server import ResetServer, SpeechServer
from voxbench.engines.registry import EngineSpec
from voxbench.run import EngineChoice, RunRequest, execute, plan
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import WorkloadItem

FAULTS = "support.fault_engines"
ITEM = WorkloadItem(id="one", kind="text", text="Hello there.")
TESTS = str(Path(__file__).resolve().parents[1])


def case_of(ref: str, args: dict | None = None, **settings):
    base = {"mode": "worker", "iterations": 3, "warmup": 1, "timeout_s": 30.0, **settings}
    return run_case(
        EngineSpec(f"{FAULTS}:{ref}", args or {}), ref, "w", ITEM, Settings(**base)
    ).case


def last(case):
    assert case.errors, "the fault was not recorded"
    error = case.errors[-1]
    assert "\n" not in error.message
    return error


# --- the engine dies, hangs or leaks: the case ends with its reason ----------------------------


def test_an_exception_on_the_nth_call_is_that_calls_error():
    case = case_of("RaisesOnNth", {"nth": 3})  # cold, warm-up, then measured call 0 raises
    assert [(e.phase, e.iteration, e.kind) for e in case.errors] == [("measure", 0, "exception")]
    assert case.errors[0].message == "injected failure on call 3"
    assert case.latency_ms.n == 2  # the calls after it answered again


@pytest.mark.parametrize(
    ("how", "signal", "fatal"),
    [
        ("segv", "SIGSEGV (segmentation fault)", "Segmentation fault"),
        ("abort", "SIGABRT", "Aborted"),
    ],
)
def test_a_segfault_names_the_signal_and_the_frame(how, signal, fatal):
    case = case_of("SegfaultsOnNth", {"nth": 4, "how": how})
    error = last(case)
    assert error.phase == "case" and error.kind == "crash" and error.type == "EngineFailed"
    assert f"worker died during engine call: killed by {signal}" in error.message
    # faulthandler's dump in the worker's log: the fatal error and the engine's own frame
    assert f"Fatal Python error: {fatal}" in error.message
    assert "innermost frame: File" in error.message and "fault_engines.py" in error.message
    assert len(case.samples.latency_ms) == 1  # measured call 0 answered; call 1 crashed


def test_an_exit_reports_its_code():
    error = last(case_of("ExitsOnNth", {"nth": 2, "code": 3}))
    assert error.kind == "crash" and "worker died during engine call (exit code 3)" in error.message


def test_sigkill_is_named_and_suspected_oom_near_the_limit():
    error = last(case_of("KillsItselfOnNth", {"nth": 2}))
    assert (
        error.kind == "crash"
        and "worker died during engine call: killed by SIGKILL" in error.message
    )
    # a worker SIGKILLed (from outside the watch) after its sampled peak neared --max-memory
    error = last(case_of("Leaks", {"nth": 2, "kill_at_mb": 380}, max_memory="400M"))
    assert error.kind == "crash", error.message
    assert "killed by SIGKILL (out of memory?)" in error.message


def test_the_memory_limit_kills_a_leaking_worker():
    case = case_of("Leaks", {"nth": 3, "mb_per_call": 400}, max_memory="300M")
    error = last(case)
    assert error.kind == "memory" and error.phase == "case"
    assert error.message.startswith("worker exceeded --max-memory 300M (peak ")
    peak = float(error.message.split("(peak ")[1].split(" MB")[0])
    assert 300 <= peak < 500  # sampled every 20 ms, 10 MB per 5 ms: past the limit (the message
    # rounds to whole MB, so a peak just past 300 MiB reads 300), not far past it
    assert len(case.samples.latency_ms) == 0 and case.cold_start is not None


def test_a_hang_is_cut_by_the_call_timeout():
    error = last(case_of("HangsOnNth", {"nth": 4}, timeout_s=1.0))
    assert error.kind == "timeout"
    assert error.message == "engine call timed out after 1 s; the worker was stopped"


@pytest.mark.parametrize("mode", ["worker", "in-process"])
def test_the_case_timeout_bounds_the_whole_case(mode):
    case = case_of("SlowCalls", {"call_ms": 200}, mode=mode, iterations=50, case_timeout_s=2.0)
    error = last(case)
    assert error.kind == "timeout" and "case timed out after 2 s (--case-timeout)" in error.message
    assert 0 < len(case.samples.latency_ms) < 10  # ~8 calls of 200 ms fit in 2 s, not 50


# --- bad output: flagged per call, never a sample ------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "rule"),
    [
        ("nan", "nonfinite"),
        ("inf", "nonfinite"),
        ("silence", "silent"),
        ("quiet", "silent"),
        ("clipped", "clipped"),
        ("rate", "sample_rate"),
        ("int32", "dtype"),
        ("stereo", "dtype"),
        ("empty", "empty"),
        ("none", "empty"),
    ],
)
def test_bad_output_is_an_error_of_every_call_not_a_sample(bad, rule):
    case = case_of("BadAudio", {"bad": bad, "nth": 3}, iterations=2)
    # cold and warm-up answered a tone; both measured calls answered garbage
    assert [(e.phase, e.kind, e.rule) for e in case.errors] == [("measure", "output", rule)] * 2
    assert case.errors[0].type == "BadOutput"
    assert case.latency_ms is None and case.samples.latency_ms == [] and case.audio_seconds is None


def test_absurdly_long_audio_is_flagged():
    item = WorkloadItem(id="a", kind="text", text="a")  # one character: at most 60 s
    spec = EngineSpec(f"{FAULTS}:BadAudio", {"bad": "long"})
    settings = Settings(mode="worker", iterations=1, warmup=0, save_audio=False)
    case = run_case(spec, "bad-audio", "w", item, settings).case
    assert [e.rule for e in case.errors] == ["length", "length"]
    assert "61.0 s of audio, over 60 s (60 s per input character)" in case.errors[0].message


def test_an_empty_transcript_of_speech_with_a_reference_is_flagged(tmp_path):
    import numpy as np
    import soundfile as sf

    wav = tmp_path / "hello.wav"
    sf.write(wav, (0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220)), 16000)
    settings = Settings(mode="worker", iterations=2, warmup=0)
    spec = EngineSpec(f"{FAULTS}:DeafSTT")
    heard = WorkloadItem(id="hello", kind="audio", path=wav, text="hello")
    case = run_case(spec, "deaf-stt", "w", heard, settings).case
    assert [(e.phase, e.rule) for e in case.errors] == [
        ("cold", "empty_text"),
        ("measure", "empty_text"),
        ("measure", "empty_text"),
    ]
    assert case.accuracy is None and case.latency_ms is None
    # no reference transcript: silence in, nothing out, is right
    unknown = WorkloadItem(id="hello", kind="audio", path=wav)
    case = run_case(spec, "deaf-stt", "w", unknown, settings).case
    assert case.errors == [] and case.latency_ms.n == 2


# --- a whole run: every fault recorded, the case after each one measures normally --------------


def one_text(folder: Path) -> str:
    path = folder / "one.txt"
    path.write_text("Hello there.\n")
    return str(path)


def test_a_run_survives_every_fault_and_measures_the_case_after(tmp_path, results_dir):
    faults = [
        ("SegfaultsOnNth", {"nth": 2}),
        ("Leaks", {"nth": 2}),
        ("HangsOnNth", {"nth": 2}),
        ("ExitsOnNth", {"nth": 2}),
        ("BadAudio", {"bad": "nan"}),
    ]
    engines = [EngineChoice(f"{FAULTS}:{ref}", args) for ref, args in faults]
    engines.append(EngineChoice(f"{CAL}:SleepEngine", {"call_ms": 20}))
    settings = Settings(iterations=3, warmup=1, timeout_s=2.0, max_memory="300M")
    request = RunRequest(
        engines=engines, workloads=[one_text(tmp_path)], settings=settings, output=results_dir
    ).validate()
    doc, run_dir = execute(request, plan(request))
    kinds = {c.engine: c.errors[-1].kind if c.errors else None for c in doc.cases}
    assert kinds == {
        "segfaults": "crash",
        "leaks": "memory",
        "hangs": "timeout",
        "exits": "crash",
        "bad-audio": "output",
        "sleep": None,
    }
    sleep = next(c for c in doc.cases if c.engine == "sleep")
    assert sleep.error_count == 0 and sleep.latency_ms.n == 3
    assert 20 <= sleep.latency_ms.median < 60 and sleep.audio_seconds == 1.0
    saved = json.loads((run_dir / "results.json").read_text())
    assert [e["kind"] for c in saved["cases"] for e in c["errors"][-1:]] == [
        "crash",
        "memory",
        "timeout",
        "crash",
        "output",
    ]


# --- the command line ----------------------------------------------------------------------------


def test_cli_limits_record_the_fault_and_exit_1(tmp_path):
    proc = voxbench(
        "run", "-e", f"{FAULTS}:Leaks", "-e", f"{FAULTS}:SlowCalls", "-e", f"{CAL}:SleepEngine",
        "-w", one_text(tmp_path), "-n", "20", "--warmup", "0", "--max-memory", "300M",
        "--case-timeout", "3", "--no-audio", "--no-store", "-o", str(tmp_path / "out"),
        "--machine-id", "m",
        env={"PYTHONPATH": TESTS},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(next(tmp_path.glob("out/m/*/results.json")).read_text())
    by = {c["engine"]: c for c in doc["cases"]}
    assert by["leaks"]["errors"][-1]["kind"] == "memory"
    assert "exceeded --max-memory 300M" in by["leaks"]["errors"][-1]["message"]
    assert "case timed out after 3 s (--case-timeout)" in by["slow"]["errors"][-1]["message"]
    assert by["sleep"]["error_count"] == 0 and by["sleep"]["latency_ms"]["n"] == 20
    assert doc["config"]["request"]["settings"]["max_memory"] == "300M"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-memory", "lots"], "--max-memory: give a size such as 500M or 2G, not 'lots'"),
        (["--max-memory", "1G", "--in-process"], "--max-memory needs worker mode"),
        (["--case-timeout", "-1"], "--case-timeout cannot be negative"),
    ],
)
def test_cli_bad_limits_are_one_line(tmp_path, args, says):
    proc = voxbench("run", "-e", f"{CAL}:SleepEngine", *args, "-o", str(tmp_path))
    assert_one_line_error(proc, says)


# --- servers that misbehave: through the HTTP engine, and under load -----------------------------


def test_misbehaving_servers_through_the_http_engine(tmp_path, results_dir):
    with (
        SpeechServer() as good,
        SpeechServer(fail_status=500) as s500,
        SpeechServer(fault="stall", stall_s=10) as stall,
        SpeechServer(fault="drop") as drop,
        SpeechServer(fault="garbage") as garbage,
        ResetServer() as reset,
    ):
        urls = {"500": s500, "stall": stall, "drop": drop, "garbage": garbage, "reset": reset}
        engines = [EngineChoice(url, {"timeout": 1.0}) for url in urls.values()]
        engines.append(EngineChoice(good, {"timeout": 10.0}))
        request = RunRequest(
            engines=engines,
            workloads=[one_text(tmp_path)],
            settings=Settings(iterations=2, warmup=0, save_audio=False),
            output=results_dir,
        ).validate()
        doc, _ = execute(request, plan(request))
    assert len(doc.cases) == 6
    messages = [" | ".join(e.message for e in c.errors) for c in doc.cases]
    faulty, healthy = doc.cases[:5], doc.cases[5]
    for case, message in zip(faulty, messages, strict=False):
        assert case.error_count == 3 and case.latency_ms is None, message  # cold + 2 measured
    says = [
        "HTTP 500 from http://127.0.0.1:",
        "did not answer within 1 s (ReadTimeout)",
        "RemoteProtocolError: peer closed connection without sending complete message body",
        "bad audio: not a WAV stream (it starts with b",
        "ReadError: [Errno 104] Connection reset by peer",
    ]
    for case, said in zip(faulty, says, strict=True):
        assert all(said in e.message and e.kind == "exception" for e in case.errors), case.errors
    assert healthy.error_count == 0 and healthy.latency_ms.n == 2 and healthy.audio_seconds > 0.5


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def load(url: str, tmp_path: Path, name: str):
    out = tmp_path / name
    proc = voxbench(
        "load", "--target", url, "--concurrency", "2", "--requests", "6", "--warmup", "0s",
        "--timeout", "1", "--min-duration=0s", "--no-store", "-o", str(out), "--machine-id", "m",
        timeout=120,
    )  # fmt: skip
    docs = list(out.glob("m/*/results.json"))
    return proc, (json.loads(docs[0].read_text()) if docs else None)


def test_load_counts_every_server_fault_and_exits_1(tmp_path):
    seen = {}
    with (
        SpeechServer(fail_status=500) as s500,
        SpeechServer(fault="stall", stall_s=5) as stall,
        SpeechServer(fault="drop") as drop,
        SpeechServer(fault="garbage") as garbage,
        ResetServer() as reset,
    ):
        servers = {"500": s500, "stall": stall, "drop": drop, "garbage": garbage, "reset": reset}
        servers["closed"] = f"http://127.0.0.1:{closed_port()}/v1/audio/speech"
        for name, url in servers.items():
            proc, doc = load(url, tmp_path, name)
            assert proc.returncode == 1, (name, proc.stderr)
            assert "Traceback" not in proc.stderr
            assert "every request failed (6 of 6)" in proc.stderr, (name, proc.stderr)
            level = doc["load"]["levels"][0]
            assert level["ok"] == 0 and sum(level["errors"].values()) == 6, (name, level)
            assert level["error_rate"] == 1.0
            # every failure is in the all-request distribution, at the time it took to fail
            assert level["latency_all_ms"]["n"] == 6 and not level.get("latency_ms")
            seen[name] = level["errors"]
    assert seen == {
        "500": {"http_500": 6},
        "stall": {"timeout": 6},
        "drop": {"reset": 6},
        "garbage": {"bad_audio": 6},
        "reset": {"reset": 6},
        "closed": {"connect": 6},
    }
