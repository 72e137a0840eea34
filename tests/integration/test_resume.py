"""Interrupted runs reach the store as partial, and --resume finishes them: the calibration
engine of KNOWN timing, real run folders, a real SQLite and PostgreSQL store, the real CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import CAL
from support.cli import assert_one_line_error, voxbench
from voxbench import api
from voxbench.cli.signals import SignalInterrupt
from voxbench.errors import Interrupted
from voxbench.results.store import open_store
from voxbench.run import EngineChoice, RunRequest
from voxbench.run.scenario import Settings


def _request(tmp_path, inputs: int = 4) -> RunRequest:
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"line {i}\n" for i in range(inputs)))
    return RunRequest(
        engines=[EngineChoice(f"{CAL}:SleepEngine", {"call_ms": 2.0, "audio_seconds": 0.1})],
        workloads=[str(lines)],
        settings=Settings(iterations=3, warmup=0, mode="in-process"),
        output=tmp_path / "out",
        machine_id="m",
    )


def _stop_at_case(n: int, signum: int = signal.SIGTERM):  # type: ignore[no-untyped-def]
    started: list[str] = []

    def progress(case, calls):  # type: ignore[no-untyped-def]
        if calls == 0 and case.item.id not in started:  # a case that ends with 0 ticks too
            started.append(case.item.id)
            if len(started) == n:
                raise SignalInterrupt(signum)

    return progress


def test_sigterm_then_resume_gives_one_complete_run_in_the_store(tmp_path, store_url):
    request = _request(tmp_path)
    with pytest.raises(Interrupted) as err:
        api.benchmark(request, store=store_url, progress=_stop_at_case(3))
    assert err.value.exit_code == 143 and "stopped by SIGTERM after 2 of 4 cases" in str(err.value)
    run_dir = next((tmp_path / "out" / "m").iterdir())
    partial = json.loads((run_dir / "results.json").read_text())
    assert partial["status"] == "interrupted" and len(partial["cases"]) == 2
    assert [i.rsplit("/", 3)[1] for i in partial["incomplete"]] == ["lines-3", "lines-4"]
    assert (run_dir / "report.md").is_file()
    with open_store(store_url) as store:
        (info,) = store.runs()
        assert info.partial and info.status == "interrupted" and info.cases == 2

    job = api.resume_run(run_dir)
    assert job.remaining == 2 and job.request.workloads == request.workloads
    outcome = api.benchmark(job.request, job.plan, resume=job.folder, store=store_url)
    doc = outcome.doc
    assert doc.run_id == partial["run_id"] and doc.status == "complete" and not doc.incomplete
    assert [c.input_id for c in doc.cases] == ["lines-1", "lines-2", "lines-3", "lines-4"]
    for before, after in zip(partial["cases"], doc.cases[:2], strict=True):
        assert after.samples.latency_ms == before["samples"]["latency_ms"]  # not re-measured
    assert doc.duration_s and doc.duration_s > partial["duration_s"]
    assert sorted(p.name for p in (run_dir / "audio").iterdir()) == [
        f"sleep_lines_lines-{i}_audio_seconds=0.1_call_ms=2.0_cpu.wav" for i in range(1, 5)
    ]
    with open_store(store_url) as store:
        (info,) = store.runs()
        assert not info.partial and info.cases == 4
        stale = doc.model_copy(deep=True)
        stale.status, stale.cases = "interrupted", stale.cases[:1]
        assert store.add(stale).status == "kept"  # a partial copy never replaces it
    assert api.resume_run(run_dir).request is None  # nothing left


def test_micro_resume_measures_only_the_missing_cases(tmp_path):
    from voxbench.micro.runner import MicroRequest

    request = MicroRequest(kernels=["pack"], devices=["cpu"], quick=True, output=tmp_path)
    seen: list[str] = []

    def progress(case, done):  # type: ignore[no-untyped-def]
        if not done:
            seen.append(case.id)
            if len(seen) == 2:
                raise SignalInterrupt(signal.SIGINT)

    with pytest.raises(Interrupted) as err:
        api.micro_bench(request, record=False, progress=progress)
    assert err.value.exit_code == 130
    run_dir = next(p for p in tmp_path.glob("*/*") if p.is_dir())
    first = json.loads((run_dir / "results.json").read_text())
    assert first["status"] == "interrupted" and len(first["cases"]) == 1 and first["incomplete"]
    job = api.resume_micro(run_dir)
    outcome = api.micro_bench(job.request, job.plan, resume=job.folder, record=False)
    assert outcome.doc.status == "complete" and len(outcome.doc.cases) == len(job.plan.cases)
    assert outcome.doc.cases[0].samples.latency_ms == first["cases"][0]["samples"]["latency_ms"]
    others = [c for c in outcome.doc.cases if c.params["backend"] != c.meta["reference"]]
    assert others and all(c.meta.get("max_abs_error") is not None for c in others)


def test_load_resume_measures_only_the_missing_levels(tmp_path):
    from support.queue_server import QueueServer
    from voxbench.load.run import LoadRequest

    with QueueServer(workers=2, service_ms=5) as srv:
        request = LoadRequest.from_text(
            srv.url, rate="4,6,8", duration="1s", warmup="0s", output=tmp_path,
            machine_id="m", pause_s=0.0,
        )  # fmt: skip

        def progress(index, level, seconds):  # type: ignore[no-untyped-def]
            if index == 1:
                raise SignalInterrupt(signal.SIGTERM)

        with pytest.raises(Interrupted, match="after 1 of 3 levels"):
            api.load_test(request, record=False, progress=progress)
        run_dir = next((tmp_path / "m").iterdir())
        first = json.loads((run_dir / "results.json").read_text())
        assert first["incomplete"] == ["6 req/s", "8 req/s"]
        job = api.resume_load(run_dir)
        assert job.remaining == 2 and job.request.target == srv.url
        outcome = api.load_test(job.request, resume=job.folder, record=False)
    assert outcome.doc.load is not None
    assert [lv.label for lv in outcome.doc.load.levels] == ["4 req/s", "6 req/s", "8 req/s"]
    assert (
        outcome.doc.load.levels[0].samples.latency_ms
        == (first["load"]["levels"][0]["samples"]["latency_ms"])
    )
    assert outcome.doc.status == "complete" and outcome.doc.load.capacity


def test_resume_on_the_command_line(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("one\ntwo\nthree\n")
    store = str(tmp_path / "s.sqlite")
    args = ["run", "-e", f"{CAL}:SleepEngine", "-a", "call_ms=1500", "-w", str(lines),
            "-n", "1", "--warmup", "0", "--in-process", "-o", str(tmp_path / "out"),
            "--machine-id", "m", "--store", store]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxbench", *args], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("out/m/*/results.json"))
        if found and json.loads(found[0].read_text())["cases"]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "stopped by SIGTERM after 1 of 3 cases" in err
    run_dir = found[0].parent
    with open_store(store) as s:
        assert [i.status for i in s.runs()] == ["interrupted"]

    assert_one_line_error(
        voxbench("run", "--resume", str(run_dir), "-n", "5", "--in-process"),
        "--resume measures with the settings the run recorded; drop --iterations, --in-process",
    )
    assert_one_line_error(voxbench("run", "--resume", str(tmp_path)), "is not a run folder")
    assert_one_line_error(
        voxbench("load", "--resume", str(run_dir)), "is a single run; resume it with voxbench run"
    )
    done = voxbench("run", "--resume", str(run_dir), "--store", store)
    assert done.returncode == 0, done.stderr
    doc = json.loads(found[0].read_text())
    assert doc["status"] == "complete" and len(doc["cases"]) == 3
    with open_store(store) as s:
        assert [(i.status, i.cases) for i in s.runs()] == [("complete", 3)]
    again = voxbench("run", "--resume", str(run_dir))
    assert (
        again.returncode == 0
        and again.stderr.strip() == f"nothing to resume: {run_dir} is complete"
    )


def test_resume_of_a_run_killed_before_it_was_recorded_records_it(tmp_path):
    """A SIGKILL after the last case but before the store write (or report.md) leaves a complete
    document that the store lacks: --resume has nothing to measure but records it."""
    outcome = api.benchmark(_request(tmp_path, inputs=2), record=False)
    (outcome.path / "report.md").unlink()
    store = str(tmp_path / "s.sqlite")
    done = voxbench("run", "--resume", str(outcome.path), "--store", store)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"nothing to resume: {outcome.path} is complete"
    assert (outcome.path / "report.md").is_file()
    with open_store(store) as s:
        assert [(i.run_id, i.status, i.cases) for i in s.runs()] == [
            (outcome.doc.run_id, "complete", 2)
        ]
    again = voxbench("run", "--resume", str(outcome.path), "--no-store", "--store", store)
    assert again.returncode == 0, again.stderr
