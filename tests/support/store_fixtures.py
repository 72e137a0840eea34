"""Fixtures for the results store: a real PostgreSQL server on loopback, a fresh database per
test, a store URL parametrized over both backends, and real result documents to put in it.

The server is started once per session in a temporary folder on a free port (initdb + pg_ctl,
as the ``postgres`` user when the tests run as root, since initdb refuses root). Tests that need
it are skipped, with the reason, only when the server binaries are not installed; ``make setup``
installs them (scripts/setup-system.sh), so CI never skips.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import CAL

PG_MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
    "apt-get install postgresql (make setup does it)"
)


def postgres_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: the newest /usr/lib/postgresql/N/bin, or PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for this session; yields the URL of its ``postgres`` database."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(PG_MISSING)
    base = Path(tempfile.mkdtemp(prefix="voxbench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(base, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    initdb = [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "--no-sync", "-E", "UTF8", "--locale=C"]  # fmt: skip
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w",
             "-l", str(base / "server.log"), "start"]  # fmt: skip
    try:
        subprocess.run(initdb, **run)  # type: ignore[call-overload]
        subprocess.run(start, **run)  # type: ignore[call-overload]
    except subprocess.CalledProcessError as exc:
        log = base / "server.log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{tail}") from exc
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


_db_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    import psycopg

    name = f"vb_{os.getpid()}_{next(_db_numbers)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs against both backends."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def real_doc(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real run: the calibration sleep engine, in-process, two cases."""
    from voxbench.run import EngineChoice, RunRequest, execute, plan
    from voxbench.run.scenario import Settings

    request = RunRequest(
        engines=[EngineChoice(f"{CAL}:SleepEngine", {"call_ms": 2.0})],
        workloads=["short"],
        settings=Settings(iterations=8, warmup=1, mode="in-process", save_audio=False),
        output=tmp_path_factory.mktemp("results"),
        machine_id="test-box",
    )
    doc, _ = execute(request, plan(request))
    return doc


def variant(doc, run_id: str, *, hours: float = 0.0, scale: float = 1.0, **env):  # type: ignore[no-untyped-def]
    """A copy of a real document as if run later (``hours``), with latencies times ``scale`` and
    environment fields replaced (machine_id, git_commit, ...)."""
    from voxbench.results.stats import summarize

    new = doc.model_copy(deep=True)
    new.run_id = run_id
    when = dt.datetime.fromisoformat(doc.created_at) + dt.timedelta(hours=hours)
    new.created_at = when.isoformat(timespec="seconds")
    for key, value in env.items():
        setattr(new.environment, key, value)
    if scale != 1.0:
        from voxbench.results import Summary

        for c in new.cases:
            c.samples.latency_ms = [v * scale for v in c.samples.latency_ms]
            c.latency_ms = Summary(**summarize(c.samples.latency_ms))  # type: ignore[arg-type]
            if c.rtf is not None:
                c.rtf *= scale
            if c.rtfx is not None:
                c.rtfx /= scale
    return new


def one_item_workload(folder: Path) -> str:
    """A one-sentence text workload (one case per engine setting), as a file path."""
    path = folder / "one.txt"
    path.write_text("The quick brown fox jumps over the lazy dog.\n")
    return str(path)


def sleep_run(out: Path, workload: str, call_ms: float, iterations: int):  # type: ignore[no-untyped-def]
    """A real in-process run of the calibration sleep engine, as ``voxbench run`` makes it
    (results.json and report.md, not recorded); returns (document, run folder)."""
    from voxbench import api
    from voxbench.run import EngineChoice, RunRequest
    from voxbench.run.scenario import Settings

    request = RunRequest(
        engines=[EngineChoice(f"{CAL}:SleepEngine", {"call_ms": call_ms})],
        workloads=[workload],
        settings=Settings(iterations=iterations, warmup=1, mode="in-process", save_audio=False),
        output=out,
        machine_id="m",
    )
    outcome = api.benchmark(request, record=False)
    return outcome.doc, outcome.path


@dataclass
class SleepRuns:
    """Three real runs in folders and in a store: 20 ms, 20 ms again, and 22 ms per call."""

    base: Path
    same: Path
    slow: Path
    ids: list[str]
    store: Path

    @property
    def env(self) -> dict[str, str]:
        return {"VOXBENCH_STORE": str(self.store)}


def sleep_runs(folder: Path, iterations: int = 30) -> SleepRuns:
    """Make :class:`SleepRuns` under ``folder`` (about 3 s)."""
    from voxbench.results.store import open_store

    workload = one_item_workload(folder)
    made = [sleep_run(folder / "results", workload, ms, iterations) for ms in (20.0, 20.0, 22.0)]
    store = folder / "store.sqlite"
    with open_store(str(store)) as s:
        for doc, _ in made:
            s.add(doc)
    dirs = [d for _, d in made]
    return SleepRuns(dirs[0], dirs[1], dirs[2], [doc.run_id for doc, _ in made], store)
