"""Getting documents into and out of the store, and naming a run on the command line.

- :func:`find_documents` walks result folders for ``results.json`` files (and takes JSON files
  holding one document or a list of them: what ``store export --format json`` writes).
- :func:`import_paths` adds them all to a store.
- :func:`export` writes a selection as JSON (a list of whole documents: re-importable), CSV or
  Parquet (one row per case with the run's columns: for spreadsheets and dataframes).
- :func:`resolve_run` turns ``BASE``/``CANDIDATE``-style arguments into a document: a run folder,
  a ``results.json``, a run id (or unique prefix) in the store, or ``latest`` / ``latest~N``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError

if TYPE_CHECKING:
    from voxbench.results.document import ResultDocument
    from voxbench.results.store.core import Store

EXPORT_FORMATS = ("json", "csv", "parquet")


def _documents_in_file(path: Path) -> list[ResultDocument]:
    """One document, or a JSON list of documents, from one file (size, JSON and schema version
    checked as :mod:`voxbench.results.doc_checks` says)."""
    from voxbench.results.doc_checks import read_json
    from voxbench.results.document import document_from_data, load_document

    if path.name == "results.json":
        return [load_document(path)]
    data = read_json(path)
    if not isinstance(data, list):
        return [document_from_data(data, str(path))]
    return [document_from_data(item, f"{path}[{n}]") for n, item in enumerate(data)]


def find_documents(paths: list[Path]) -> Iterator[tuple[Path, ResultDocument]]:
    """Every result document under ``paths``: folders are searched recursively for
    ``results.json``; a file is read as one document or a JSON list of documents."""
    for path in paths:
        if path.is_dir():
            files = sorted(path.rglob("results.json"))
            if not files:
                raise ConfigError(f"no results.json under {path}")
            for f in files:
                for doc in _documents_in_file(f):
                    yield f, doc
        elif path.is_file():
            for doc in _documents_in_file(path):
                yield path, doc
        else:
            raise ConfigError(f"no such file or folder: {path}")


@dataclass
class ImportSummary:
    """Counts of what ``store import`` did."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # complete in the store; a partial copy given


def import_paths(store: Store, paths: list[Path]) -> ImportSummary:
    """Add every document found under ``paths`` (each run in its own transaction)."""
    summary = ImportSummary()
    for source, doc in find_documents(paths):
        result = store.add(doc, source=str(source.resolve()))
        getattr(summary, result.status).append(result.run_id)
    return summary


def export(
    store: Store,
    fmt: str,
    out: Path | None,
    *,
    engine: str | None = None,
    machine: str | None = None,
    since: str | None = None,
    until: str | None = None,
    run_ids: list[str] | None = None,
) -> tuple[int, int]:
    """Write the selected runs to ``out`` (None: stdout; not for Parquet). Returns
    (runs, case rows) written. JSON keeps whole documents; CSV and Parquet one row per case."""
    import sys

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: choose from {', '.join(EXPORT_FORMATS)}")
    if fmt == "parquet" and out is None:
        raise ConfigError("--format parquet needs -o FILE (it is binary)")
    if run_ids is None:
        ids = list(store.run_ids(engine=engine, machine=machine, since=since, until=until))
    else:
        ids = [store.get(r).run_id for r in run_ids]
    if fmt == "json":
        docs = [store.get(r).model_dump(mode="json") for r in ids]
        text = json.dumps(docs, indent=2) + "\n"
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8")
        return len(docs), sum(len(d["cases"]) for d in docs)
    rows = store.case_rows(engine=engine, run_ids=ids) if ids else []
    if fmt == "csv":
        _write_csv(rows, out)
    else:
        _write_parquet(rows, out)  # type: ignore[arg-type]
    return len({r["run_id"] for r in rows}), len(rows)


def _columns() -> list[str]:
    from voxbench.results.store.schema import CASE_COLUMNS

    run_cols = ["created_at", "machine_id", "git_commit", "scenario", "voxbench_version", "gpus"]
    return ["run_id", *run_cols, *CASE_COLUMNS[1:]]


def _write_csv(rows: list[dict[str, Any]], out: Path | None) -> None:
    import csv
    import io
    import sys

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    if out is None:
        sys.stdout.write(buf.getvalue())
    else:
        out.write_text(buf.getvalue(), encoding="utf-8")


def _write_parquet(rows: list[dict[str, Any]], out: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet export needs pyarrow: pip install 'voxbench[store]'") from None
    from voxbench.results.store.schema import METRIC_COLUMNS

    floats = set(METRIC_COLUMNS)
    ints = {"position", "batch_size", "iterations", "n", "error_count"}
    fields = [
        pa.field(c, pa.float64() if c in floats else pa.int64() if c in ints else pa.string())
        for c in _columns()
    ]
    schema = pa.schema(fields)
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, out)


_LATEST = re.compile(r"latest(?:~(\d+))?")


def resolve_run(ref: str, store_url: str | None = None) -> tuple[ResultDocument, str]:
    """A document from a run folder, a results.json / exported JSON file, a run id (or unique
    prefix) in the store, or ``latest`` / ``latest~N`` (the N-th newest stored run). Returns the
    document and a short label of where it came from."""
    from voxbench.results.document import load_document

    path = Path(ref)
    if path.is_dir() and not (path / "results.json").is_file():
        found = sorted(path.rglob("results.json"))
        if len(found) == 1:
            return load_document(found[0]), str(found[0].parent)
        raise ConfigError(f"{path} holds {len(found)} result documents, not one: name a run folder")
    if path.is_dir() or path.is_file():
        if path.is_file() and path.name != "results.json":
            docs = _documents_in_file(path)
            if len(docs) != 1:
                raise ConfigError(f"{path} holds {len(docs)} result documents, not one")
            return docs[0], str(path)
        return load_document(path), str(path if path.is_dir() else path.parent)
    if "/" in ref or ref.endswith(".json"):
        raise ConfigError(f"no such run folder or file: {ref}")
    from voxbench.results.store import open_store

    with open_store(store_url) as store:
        latest = _LATEST.fullmatch(ref)
        if latest:
            back = int(latest.group(1) or 0)
            infos = store.runs(limit=back + 1)
            if len(infos) <= back:
                raise ConfigError(f"{ref}: the store {store.url} holds {len(infos)} runs")
            return store.get(infos[back].run_id), f"{ref} = {infos[back].run_id}"
        doc = store.get(ref)
        return doc, doc.run_id
