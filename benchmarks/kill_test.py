"""SIGKILL ``voxbench run`` and the store writer at random moments, many times, and check that
nothing is corrupt and nothing measured is lost after ``--resume``.

Each run kill starts a real ``voxbench run`` in a subprocess — the calibration engine of KNOWN
timing (``voxbench.engines.calibration:SleepEngine``, ``call_ms`` per call) on a workload of
``--inputs`` lines, audio saved, recorded in a SQLite store (or PostgreSQL with ``--postgres``) —
and SIGKILLs it after a random delay drawn over the time a whole run takes here (measured first).
Then:

- every ``results.json`` must parse as a result document, every ``audio/*.wav`` as audio, every
  ``report.md`` as UTF-8, and the SQLite store must pass ``PRAGMA integrity_check`` with every
  stored document parsing;
- ``voxbench run --resume RUN_DIR`` (itself SIGKILLed at a random moment every third time, then
  resumed again) must end with one complete document (same run id) holding every case the
  killed run had measured, unchanged (same samples), plus the rest; and the store must hold
  that run as complete, with every case.

Each store kill SIGKILLs a process that adds documents of many cases to the store in a loop;
afterwards the store must pass the same checks and every stored run must have exactly its
document's cases.

Usage: python benchmarks/kill_test.py [--kills 100] [--store-kills 20] [--seed 1]
       [--postgres postgresql://...]
Prints the counts; exits 1 when a file failed to parse or a measurement was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ENGINE = "voxbench.engines.calibration:SleepEngine"
# The store writer a store kill kills: adds `n` documents of `cases` cases each, in a loop.
STORE_WRITER = """
import sys
from voxbench.results.folder import new_run_id
from voxbench.results.store import open_store
sys.path.insert(0, sys.argv[3])
from kill_test import big_document
with open_store(sys.argv[1]) as store:
    while True:
        store.add(big_document(new_run_id(), int(sys.argv[2])))
"""


@dataclass
class Counts:
    """What the kills did and found."""

    kills: int = 0  # SIGKILLs delivered to a live voxbench process (runs, resumes, store writers)
    run_kills: int = 0
    resume_kills: int = 0
    store_kills: int = 0
    killed_while_measuring: int = 0  # results.json existed, status running
    killed_before_document: int = 0  # no results.json yet: nothing to resume
    finished_before_kill: int = 0  # the run ended before its kill time: not counted as a kill
    files_checked: int = 0
    files_failed: int = 0  # must be 0
    stores_checked: int = 0
    stores_failed: int = 0  # must be 0
    resumes: int = 0
    cases_before_resume: int = 0  # cases measured by killed runs, checked after --resume
    measurements_lost: int = 0  # must be 0: a case measured before a kill missing or changed
    runs_incomplete_after_resume: int = 0  # must be 0
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failures.append(what)


def _voxbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "voxbench", *args]


def run_command(out: Path, store: str, inputs: Path, call_ms: int, mode: str) -> list[str]:
    """The killed command: a real ``voxbench run`` of the calibration engine."""
    extra = ["--in-process"] if mode == "in-process" else []
    return _voxbench(
        "run", "-e", ENGINE, "-a", f"call_ms={call_ms}", "-a", "audio_seconds=0.2",
        "-w", str(inputs), "-n", "3", "--warmup", "0", *extra,
        "-o", str(out), "--machine-id", "m", "--store", store,
    )  # fmt: skip


def _env() -> dict[str, str]:
    # the child gets SIGTERM/SIGINT as a terminal gives them; SIGKILL cannot be caught anyway
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def kill_after(cmd: list[str], delay_s: float) -> tuple[bool, int | None]:
    """Start ``cmd``, SIGKILL it after ``delay_s``; (killed while alive, exit status if not)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    try:
        proc.wait(timeout=delay_s)
        return False, proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True, None


def check_files(root: Path, counts: Counts) -> None:
    """Every results.json, audio file and report under ``root`` must parse."""
    import soundfile as sf

    from voxbench.results.document import load_document

    for path in root.rglob("results.json"):
        counts.files_checked += 1
        try:
            load_document(path)
        except Exception as exc:
            counts.files_failed += 1
            counts.fail(f"{path}: {exc}")
    for path in root.rglob("audio/*.wav"):
        if path.name.startswith("."):
            continue  # a killed writer's temporary: never a file the document names
        counts.files_checked += 1
        try:
            sf.info(str(path))
            sf.read(str(path))
        except Exception as exc:
            counts.files_failed += 1
            counts.fail(f"{path}: {exc}")
    for path in root.rglob("report.md"):
        counts.files_checked += 1
        try:
            path.read_text(encoding="utf-8")
        except Exception as exc:
            counts.files_failed += 1
            counts.fail(f"{path}: {exc}")


_PARSED: dict[str, dict[str, int]] = {}  # per store: run ids whose complete stored document
# parsed (at any check), with its number of cases


def check_store(url: str, counts: Counts) -> dict[str, object]:
    """The store opens, passes its integrity check (SQLite), and every stored document parses
    with as many case rows as it has cases (a document checked at an earlier kill is not parsed
    again: a committed run is never rewritten but by its own run id); returns the documents
    parsed now, by run id."""
    from voxbench.results.store import open_store

    if "://" not in url and not Path(url).exists():
        return {}
    counts.stores_checked += 1
    docs: dict[str, object] = {}
    try:
        if "://" not in url:
            with sqlite3.connect(url) as db:
                verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
            if verdict != "ok":
                raise RuntimeError(f"integrity_check: {verdict}")
        with open_store(url) as store:
            seen = _PARSED.setdefault(url, {})
            for info in store.runs():
                if info.run_id in seen:
                    continue
                doc = store.get(info.run_id)
                if info.status == "complete":
                    seen[info.run_id] = len(doc.cases)
                if info.cases != len(doc.cases) + (len(doc.load.levels) if doc.load else 0):
                    raise RuntimeError(f"run {info.run_id}: {info.cases} case rows, document "
                                       f"has {len(doc.cases)} cases")  # fmt: skip
                docs[info.run_id] = (info, doc)
    except Exception as exc:
        counts.stores_failed += 1
        counts.fail(f"store {url}: {exc}")
    return docs


def _cases(results: Path) -> dict[str, str]:
    data = json.loads(results.read_text(encoding="utf-8"))
    return {c["id"]: json.dumps(c, sort_keys=True) for c in data["cases"]}


def resume_until_complete(
    run_dir: Path, store: str, rng: random.Random, full_s: float, counts: Counts
) -> subprocess.CompletedProcess[str] | None:
    """``voxbench run --resume`` until it completes; every third try is SIGKILLed on the way."""
    for attempt in range(6):
        cmd = _voxbench("run", "--resume", str(run_dir), "--store", store)
        if attempt == 0 and rng.random() < 1 / 3:
            killed, _ = kill_after(cmd, rng.uniform(0.3, full_s))
            if killed:
                counts.kills += 1
                counts.resume_kills += 1
                check_files(run_dir, counts)
                continue
        counts.resumes += 1
        return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    return None


def one_run_kill(
    base: Path, k: int, args: argparse.Namespace, rng: random.Random, full_s: float,
    counts: Counts, store: str, inputs: Path, planned: int,
) -> None:  # fmt: skip
    """One killed run, its checks, its resume and theirs."""
    out = base / f"kill{k:03d}"
    mode = "worker" if args.worker_every and k % args.worker_every == 0 else "in-process"
    cmd = run_command(out, store, inputs, args.call_ms, mode)
    killed, status = kill_after(cmd, rng.uniform(0.05, 1.1) * full_s)
    if not killed:
        counts.finished_before_kill += 1
        if status != 0:
            counts.fail(f"kill {k}: the run ended by itself with status {status}")
        return
    counts.kills += 1
    counts.run_kills += 1
    check_files(out, counts)
    check_store(store, counts)
    found = list(out.glob("m/*/results.json"))
    if not found:
        counts.killed_before_document += 1
        return
    results = found[0]
    before = _cases(results)
    counts.cases_before_resume += len(before)
    if json.loads(results.read_text())["status"] == "running":
        counts.killed_while_measuring += 1
    proc = resume_until_complete(results.parent, store, rng, full_s, counts)
    if proc is None or proc.returncode != 0:
        counts.fail(f"kill {k}: --resume failed: {proc.stderr if proc else 'killed every time'}")
        counts.measurements_lost += len(before)
        return
    check_files(out, counts)
    after = _cases(results)
    doc = json.loads(results.read_text())
    lost = [i for i, text in before.items() if after.get(i) != text]
    counts.measurements_lost += len(lost)
    if lost:
        counts.fail(f"kill {k}: lost or changed after --resume: {lost}")
    if doc["status"] != "complete" or doc["incomplete"] or len(after) != planned:
        counts.runs_incomplete_after_resume += 1
        counts.fail(f"kill {k}: after --resume {doc['status']}, {len(after)} of {planned} cases")
    check_store(store, counts)
    # a run killed after its store write was found complete at the check after the kill
    if _PARSED.get(store, {}).get(doc["run_id"]) != planned:
        counts.runs_incomplete_after_resume += 1
        counts.fail(f"kill {k}: the store does not hold run {doc['run_id']} complete")


def big_document(run_id: str, cases: int) -> object:
    """A result document of ``cases`` cases with raw samples (the store writer's payload)."""
    from voxbench import __version__
    from voxbench.results.document import Case, Environment, ResultDocument, Samples, Summary
    from voxbench.results.folder import now_iso

    env = Environment(machine_id="m", hostname="h", cpu_model="c", cpu_cores_logical=1,
                      cpu_cores_physical=1, ram_gb=1.0, os="linux", python="3",
                      python_implementation="CPython")  # fmt: skip
    made = [
        Case(
            id=f"sleep/lines/{i}/cpu",
            engine="sleep",
            workload="lines",
            input_id=str(i),
            input_kind="text",
            mode="in-process",
            iterations=50,
            warmup=0,
            latency_ms=Summary(
                n=50,
                min=1.0,
                median=2.0,
                mean=2.0,
                p90=2.8,
                p95=3.0,
                p99=3.9,
                max=4.0,
                stdev=0.5,
                ci95=(1.9, 2.1),
            ),
            samples=Samples(latency_ms=[1.0 + j / 50 for j in range(50)]),
        )
        for i in range(cases)
    ]
    return ResultDocument(run_id=run_id, created_at=now_iso(), finished_at=now_iso(),
                          voxbench_version=__version__, environment=env, cases=made)  # fmt: skip


def one_store_kill(store: str, k: int, rng: random.Random, counts: Counts, cases: int) -> None:
    here = str(Path(__file__).resolve().parent)
    cmd = [sys.executable, "-c", STORE_WRITER, store, str(cases), here]
    killed, status = kill_after(cmd, rng.uniform(1.0, 3.0))
    if not killed:
        counts.fail(f"store kill {k}: the writer ended by itself with status {status}")
        return
    counts.kills += 1
    counts.store_kills += 1
    check_store(store, counts)


def calibrate(base: Path, store: str, inputs: Path, call_ms: int) -> float:
    """Seconds one whole run takes here, start-up and store included."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        run_command(base / "calibration", store, inputs, call_ms, "in-process"),
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed: {proc.stderr}")
    return time.perf_counter() - t0


def run_all(args: argparse.Namespace, base: Path) -> Counts:
    rng = random.Random(args.seed)
    counts = Counts()
    inputs = base / "lines.txt"
    inputs.write_text("".join(f"Line number {i} of the kill test.\n" for i in range(args.inputs)))
    store = args.postgres or str(base / "store.sqlite")
    full_s = calibrate(base, store, inputs, args.call_ms)
    for k in range(args.kills):
        one_run_kill(base, k, args, rng, full_s, counts, store, inputs, args.inputs)
    writer_store = args.postgres or str(base / "writer.sqlite")
    for k in range(args.store_kills):
        one_store_kill(writer_store, k, rng, counts, args.store_cases)
    counts.full_run_s = round(full_s, 2)  # type: ignore[attr-defined]
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="runs to SIGKILL")
    parser.add_argument("--store-kills", type=int, default=20, help="store writers to SIGKILL")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inputs", type=int, default=6, help="cases per run (workload lines)")
    parser.add_argument("--call-ms", type=int, default=40, help="each engine call's known time")
    parser.add_argument("--store-cases", type=int, default=400, help="cases per stored document")
    parser.add_argument("--worker-every", type=int, default=5,
                        help="every Nth run in worker mode (0: all in-process)")  # fmt: skip
    parser.add_argument("--postgres", help="a PostgreSQL store URL instead of SQLite files")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        counts = run_all(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="voxbench-kill-") as tmp:
            counts = run_all(args, Path(tmp))
    shown = {k: v for k, v in asdict(counts).items() if k != "failures"}
    shown["full_run_s"] = getattr(counts, "full_run_s", None)
    for key, value in shown.items():
        print(f"{key}: {value}")
    for line in counts.failures:
        print(f"FAILED: {line}")
    bad = counts.files_failed or counts.stores_failed or counts.measurements_lost
    return 1 if bad or counts.runs_incomplete_after_resume or counts.failures else 0


if __name__ == "__main__":
    sys.exit(main())
