"""The results store: one suite, run against SQLite and a real PostgreSQL server on loopback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from support.store_fixtures import variant
from voxbench.errors import ConfigError
from voxbench.results import ResultDocument
from voxbench.results.store import StoreError, open_store, record
from voxbench.results.store import schema as store_schema


def _ids(store) -> set[str]:  # type: ignore[no-untyped-def]
    return {r.run_id for r in store.runs()}


def test_add_get_round_trip_and_idempotent(store_url, real_doc):
    with open_store(store_url) as store:
        first = store.add(real_doc, source="here")
        assert (first.status, first.cases) == ("added", len(real_doc.cases))
        assert store.add(real_doc).status == "unchanged"
        assert store.get(real_doc.run_id) == real_doc
        assert store.get(real_doc.run_id[:12]) == real_doc  # a unique prefix will do
        [info] = store.runs()
        assert info.run_id == real_doc.run_id and info.cases == len(real_doc.cases)
        assert info.engines == ("sleep",) and info.machine_id == "test-box"
        assert info.source == "here"
    with open_store(store_url) as store:  # reopening neither migrates again nor loses data
        assert _ids(store) == {real_doc.run_id}
        assert store.db.query("SELECT COUNT(*) FROM schema_version")[0][0] == store_schema.LATEST


def test_changed_document_with_same_run_id_replaces(store_url, real_doc):
    partial = real_doc.model_copy(deep=True)
    partial.cases = partial.cases[:1]
    partial.finished_at = None
    with open_store(store_url) as store:
        store.add(partial)
        result = store.add(real_doc)
        assert result.status == "replaced"
        assert store.get(real_doc.run_id) == real_doc
        assert len(store.case_rows()) == len(real_doc.cases)


def test_filters_series_and_rows(store_url, real_doc):
    docs = [
        variant(real_doc, "r1", hours=-48, git_commit="a" * 40),
        variant(real_doc, "r2", hours=-24, scale=1.5, git_commit="b" * 40),
        variant(real_doc, "r3", hours=0, machine_id="other"),
    ]
    with open_store(store_url) as store:
        for d in docs:
            store.add(d)
        assert [r.run_id for r in store.runs()] == ["r3", "r2", "r1"]  # newest first
        assert [r.run_id for r in store.runs(machine="other")] == ["r3"]
        assert [r.run_id for r in store.runs(since=docs[1].created_at)] == ["r3", "r2"]
        assert [r.run_id for r in store.runs(until=docs[1].created_at)] == ["r2", "r1"]
        assert store.runs(engine="nope") == [] and len(store.runs(engine="sleep")) == 3
        assert [r.run_id for r in store.runs(limit=1)] == ["r3"]
        case = real_doc.cases[0].id
        series = store.case_series("sleep", case_id=case)
        assert [p.run_id for p in series] == ["r1", "r2", "r3"]
        assert series[1].value == pytest.approx(series[0].value * 1.5, rel=1e-6)
        assert series[0].git_commit == "a" * 40 and series[0].ci_low is not None
        assert len(store.case_series("sleep", metric="rtfx")) == 3 * len(real_doc.cases)
        rows = store.case_rows(run_ids=["r1"])
        assert [r["case_id"] for r in rows] == [c.id for c in real_doc.cases]
        assert rows[0]["params"] == '{"call_ms": 2.0}' and rows[0]["batch_size"] == 1
        with pytest.raises(ConfigError, match="unknown metric"):
            store.case_series("sleep", metric="speed")
        with pytest.raises(ConfigError, match="no run 'zzz'"):
            store.get("zzz")


def test_runs_in_the_same_second_keep_the_order_they_were_added(store_url, real_doc):
    """created_at has one-second resolution: ties go by insertion, not by run id."""
    with open_store(store_url) as store:
        store.add(variant(real_doc, "zzz-first"))
        store.add(variant(real_doc, "aaa-second"))
        assert [r.run_id for r in store.runs()] == ["aaa-second", "zzz-first"]
        series = store.case_series("sleep", case_id=real_doc.cases[0].id)
        assert [p.run_id for p in series] == ["zzz-first", "aaa-second"]


def test_load_runs_are_stored_by_level(store_url, real_doc):
    from voxbench.results import LoadResult

    doc = real_doc.model_copy(deep=True, update={"scenario": "load", "cases": [], "config": None})
    level = {
        "label": "2/s", "kind": "rate", "value": 2.0, "requests": 20, "errors": {"timeout": 1},
        "latency_ms": {"p50": 80.0, "p95": 120.0}, "ttfa_ms": {"p50": 30.0},
        "samples": {"latency_ms": [80.0] * 20},
    }  # fmt: skip
    doc.load = LoadResult(target="http://127.0.0.1:1/v1/audio/speech", settings={}, levels=[level])
    with open_store(store_url) as store:
        store.add(doc)
        [row] = store.case_rows()
        assert (row["engine"], row["case_id"], row["error_count"]) == ("load", "load/load/2/s", 1)
        assert row["latency_median_ms"] == 80.0 and row["ttfa_median_ms"] == 30.0
        assert store.get(doc.run_id) == doc


def test_a_failure_inside_the_write_leaves_no_partial_run(store_url, real_doc, monkeypatch):
    """The runs row is written, then inserting the cases fails: the whole run is rolled back."""
    other = variant(real_doc, "kept")
    with open_store(store_url) as store:
        store.add(other)

        def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(store.db, "executemany", boom)
        with pytest.raises(RuntimeError, match="disk on fire"):
            store.add(real_doc)
        monkeypatch.undo()
        assert _ids(store) == {"kept"}
        assert {r["run_id"] for r in store.case_rows()} == {"kept"}
        assert store.add(real_doc).status == "added"  # and the store still works


KILLER = """
import os, signal, sys
from voxbench.results import ResultDocument
from voxbench.results.store import open_store

doc = ResultDocument.model_validate_json(sys.stdin.read())
store = open_store(sys.argv[1])
real = store.db.executemany

def die(*args, **kwargs):
    real(*args, **kwargs)  # the rows are written, the transaction is not committed
    print("writing", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

store.db.executemany = die
store.add(doc)
"""


def test_a_process_killed_mid_write_leaves_the_store_consistent(store_url, real_doc):
    """SIGKILL between the run's rows and its commit: after it, the store opens, holds every
    earlier run whole and none of the killed one; re-adding it works."""
    with open_store(store_url) as store:
        store.add(variant(real_doc, "kept"))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLER), store_url],
        input=real_doc.model_dump_json(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9 and "writing" in proc.stdout, proc.stderr
    with open_store(store_url) as store:
        assert _ids(store) == {"kept"}
        assert len(store.case_rows()) == len(real_doc.cases)
        assert store.add(real_doc).status == "added"
        assert store.get(real_doc.run_id) == real_doc


def test_migrations_apply_in_order_and_a_newer_store_is_refused(store_url, monkeypatch):
    with open_store(store_url) as store:
        assert store.schema_version == store_schema.LATEST
    extra = (store_schema.LATEST + 1, ["CREATE TABLE notes (run_id TEXT, note TEXT)"])
    monkeypatch.setattr(store_schema, "MIGRATIONS", [*store_schema.MIGRATIONS, extra])
    with open_store(store_url) as store:  # the new step runs once, on the next open
        assert store.schema_version == store_schema.LATEST + 1
        assert store.db.table_exists("notes")
    monkeypatch.undo()
    with pytest.raises(StoreError, match="newer than this voxbench knows"):
        open_store(store_url)


def test_record_never_raises(tmp_path, real_doc, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert record(real_doc, str(blocker / "store.sqlite")) is False  # parent is a file
    err = capsys.readouterr().err
    assert f"run {real_doc.run_id} not recorded" in err and len(err.strip().splitlines()) == 1
    assert record(real_doc, str(tmp_path / "ok.sqlite")) is True


def test_bad_urls_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown store URL scheme 'mysql'"):
        open_store("mysql://x/y")
    with pytest.raises(StoreError, match=r"cannot connect to the store postgresql://u:\*\*\*@"):
        open_store("postgresql://u:secret@127.0.0.1:1/db")


def test_resolve_url_precedence(monkeypatch, tmp_path):
    from voxbench.results.store import default_path, resolve_url

    monkeypatch.delenv("VOXBENCH_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert resolve_url(None) == str(tmp_path / "voxbench" / "results.sqlite") == str(default_path())
    monkeypatch.setenv("VOXBENCH_STORE", "/x.sqlite")
    assert resolve_url(None) == "/x.sqlite" and resolve_url("y.sqlite") == "y.sqlite"
    monkeypatch.setenv("VOXBENCH_STORE", "off")
    assert resolve_url(None) is None


def test_documents_survive_both_backends_identically(postgres_url, tmp_path, real_doc):
    """What goes in comes back equal, whichever backend (JSONB reorders keys; the model does not
    care)."""
    got: list[ResultDocument] = []
    for url in (str(tmp_path / "a.sqlite"), postgres_url):
        with open_store(url) as store:
            store.add(real_doc)
            got.append(store.get(real_doc.run_id))
    assert got[0] == got[1] == real_doc


def test_gpu_figures_and_child_memory_are_stored_under_their_own_names(store_url, real_doc):
    doc = variant(real_doc, "gpu1")
    case = doc.cases[0]
    case.peak_gpu_allocated_mb, case.gpu_nvml_mb, case.peak_child_rss_mb = 150.0, 824.0, 311.0
    with open_store(store_url) as store:
        store.add(doc)
        got = {
            m: [p.value for p in store.case_series("sleep", case_id=case.id, metric=m)]
            for m in ("peak_gpu_allocated_mb", "gpu_nvml_mb", "peak_child_rss_mb")
        }
    assert got == {
        "peak_gpu_allocated_mb": [150.0],
        "gpu_nvml_mb": [824.0],
        "peak_child_rss_mb": [311.0],
    }
