"""The store through the CLI: runs are recorded, imported, listed and exported; bad input and a
broken store give one-line messages, and a broken store never loses a run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import CAL
from support.cli import assert_one_line_error, voxbench

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Two real runs: one recorded in a fresh store, one with --no-store."""
    tmp = tmp_path_factory.mktemp("store-cli")
    store = tmp / "store.sqlite"
    common = ["run", "-e", f"{CAL}:SleepEngine", "-a", "call_ms=1", "-w", "short", "-n", "3",
              "--warmup", "0", "--in-process", "--no-audio", "-o", str(tmp / "results")]  # fmt: skip
    env = {"VOXBENCH_STORE": str(store)}
    first = voxbench(*common, env=env)
    second = voxbench(*common, "--no-store", env=env)
    return tmp, store, first, second


def _runs(store: Path, *extra: str) -> list[dict]:
    proc = voxbench("store", "list", "--json", "--store", str(store), *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_run_records_unless_told_not_to(recorded):
    tmp, store, first, second = recorded
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert f"store:   {store}" in first.stderr and "store:" not in second.stderr
    runs = _runs(store)
    assert len(runs) == 1 and runs[0]["engines"] == ["sleep"] and runs[0]["cases"] == 2
    assert runs[0]["source"].endswith(runs[0]["run_id"])
    assert len(list((tmp / "results").rglob("results.json"))) == 2


def test_import_is_idempotent_and_export_round_trips(recorded, tmp_path):
    tmp, *_ = recorded
    fresh = tmp_path / "fresh.sqlite"
    proc = voxbench("store", "import", str(tmp / "results"), "--store", str(fresh))
    assert proc.returncode == 0 and proc.stdout.startswith("2 added, 0 replaced, 0 already"), proc
    proc = voxbench("store", "import", str(tmp / "results"), "--store", str(fresh))
    assert proc.stdout.startswith("0 added, 0 replaced, 2 already there"), proc.stdout
    out = tmp_path / "all.json"
    proc = voxbench("store", "export", "-f", "json", "-o", str(out), "--store", str(fresh))
    assert proc.returncode == 0 and "2 runs, 4 cases" in proc.stderr, proc.stderr
    again = tmp_path / "again.sqlite"
    proc = voxbench("store", "import", str(out), "--store", str(again))
    assert proc.stdout.startswith("2 added"), proc.stdout + proc.stderr
    assert [r["run_id"] for r in _runs(again)] == [r["run_id"] for r in _runs(fresh)]


def test_csv_and_parquet_exports(recorded, tmp_path):
    _, store, *_ = recorded
    proc = voxbench("store", "export", "-f", "csv", "--engine", "sleep", "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert (
        len(rows) == 2 and rows[0]["engine"] == "sleep" and float(rows[0]["latency_median_ms"]) > 1
    )
    target = tmp_path / "cases.parquet"
    proc = voxbench("store", "export", "-f", "parquet", "-o", str(target), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(target)
    assert table.num_rows == 2 and str(table.schema.field("latency_median_ms").type) == "double"
    proc = voxbench("store", "export", "-f", "csv", "--since", "2999-01-01", "--store", str(store))
    assert proc.stdout.count("\n") == 1  # the header only


def test_postgresql_store_through_the_cli(recorded, postgres_url):
    tmp, *_ = recorded
    proc = voxbench("store", "import", str(tmp / "results"), "--store", postgres_url)
    assert proc.returncode == 0 and proc.stdout.startswith("2 added"), proc.stderr
    proc = voxbench("store", "list", "--json", "--store", postgres_url)
    assert proc.returncode == 0 and len(json.loads(proc.stdout)) == 2, proc.stderr


def test_a_broken_store_warns_and_keeps_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = voxbench(
        "run", "-e", f"{CAL}:SleepEngine", "-a", "call_ms=1", "-w", "short", "-n", "2",
        "--warmup", "0", "--in-process", "--no-audio", "-o", str(tmp_path / "results"),
        "--store", str(blocker / "store.sqlite"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "not recorded in the store" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("voxbench: warning: run ")
    assert len(list((tmp_path / "results").rglob("results.json"))) == 1


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["store", "export", "-f", "xml"], ["unknown --format 'xml'"]),
        (["store", "export", "-f", "parquet"], ["needs -o FILE"]),
        (["store", "import", "/nonexistent/dir"], ["no such file or folder"]),
        (["store", "list", "--store", "mysql://h/db"], ["unknown store URL scheme 'mysql'"]),
        (["store", "list", "--since", "yesterday"], ["bad time 'yesterday'"]),
        (
            ["store", "list", "--store", "postgresql://u:pw@127.0.0.1:1/x"],
            ["cannot connect", "***"],
        ),
    ],
)
def test_bad_input_is_one_line(args, needles, tmp_path):
    proc = voxbench(*args, env={"VOXBENCH_STORE": str(tmp_path / "s.sqlite")})
    assert proc.returncode == 2
    assert_one_line_error(proc, *needles)
    assert "pw" not in proc.stderr
