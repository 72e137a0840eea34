"""The results store: every run's result document, kept for compare, history and export.

SQLite by default (one file, nothing to install), PostgreSQL for a shared team history
(``postgresql://...``, needs ``psycopg``: ``pip install 'voxbench[store]'``). Both backends share
one implementation (:mod:`voxbench.results.store.core`) over a thin dialect layer
(:mod:`voxbench.results.store.dialects`); the schema is versioned and migrated on open
(:mod:`voxbench.results.store.schema`).

The whole public API::

    from voxbench.results.store import open_store, record

    with open_store(url) as store:          # url None: $VOXBENCH_STORE or the default SQLite file
        store.add(doc, source="path/or/label")   # one transaction; re-adding a run id is idempotent
        doc = store.get(run_id)                 # the full ResultDocument
        infos = store.runs(engine="sleep", since="2026-01-01", limit=20)   # newest first
        points = store.case_series("sleep", metric="latency_ms", workload="short")

    record(doc, url)   # add, but never raise: a warning on stderr instead (for run/load/micro)

Where the store is (``resolve_url``): the ``--store`` option, else ``$VOXBENCH_STORE``, else
``$XDG_DATA_HOME/voxbench/results.sqlite`` (``~/.local/share/voxbench/results.sqlite``). A value
of ``off`` (or ``none``) in ``$VOXBENCH_STORE`` turns recording off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError
from voxbench.results.store.dialects import StoreError
from voxbench.results.store.schema import METRICS

if TYPE_CHECKING:
    from voxbench.results.document import ResultDocument
    from voxbench.results.store.core import AddResult, RunInfo, SeriesPoint, Store

__all__ = [
    "METRICS",
    "STORE_ENV",
    "AddResult",
    "RunInfo",
    "SeriesPoint",
    "Store",
    "StoreError",
    "default_path",
    "open_store",
    "record",
    "resolve_url",
]

STORE_ENV = "VOXBENCH_STORE"
_OFF = {"off", "none", "no", "0", "false"}


def default_path() -> Path:
    """``$XDG_DATA_HOME/voxbench/results.sqlite``, or ``~/.local/share/voxbench/results.sqlite``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voxbench" / "results.sqlite"


def resolve_url(url: str | None = None) -> str | None:
    """The store to use: ``url``, else ``$VOXBENCH_STORE``, else the default SQLite file.

    Returns None when recording is turned off (``$VOXBENCH_STORE=off``); an explicit ``url``
    always wins over the environment.
    """
    if url:
        return url
    env = os.environ.get(STORE_ENV, "").strip()
    if env.lower() in _OFF:
        return None
    return env or str(default_path())


def open_store(url: str | None = None) -> Store:
    """Open (creating and migrating if needed) the store at ``url``.

    ``url``: ``postgresql://...`` / ``postgres://...``, ``sqlite:///path``, or a plain file path;
    None resolves through :func:`resolve_url` (and fails if recording is turned off).
    """
    from voxbench.results.store.core import Store
    from voxbench.results.store.dialects import connect

    resolved = resolve_url(url)
    if resolved is None:
        raise ConfigError(f"no store: ${STORE_ENV} is {os.environ.get(STORE_ENV)!r}; pass --store")
    return Store(connect(resolved))


def record(doc: ResultDocument, url: str | None = None, *, source: str | None = None) -> bool:
    """Add ``doc`` to the store without ever raising: on failure print one warning line to
    stderr and return False. Returns True when the run is in the store, False when it is not
    (failure, or recording turned off)."""
    try:
        resolved = resolve_url(url)
        if resolved is None:
            return False
        with open_store(resolved) as store:
            store.add(doc, source=source)
        return True
    except Exception as exc:  # a store failure must never lose a run
        print(
            f"voxbench: warning: run {doc.run_id} not recorded in the store: {exc}",
            file=sys.stderr,
        )
        return False


def __getattr__(name: str) -> Any:
    """Lazy re-exports, so importing the package stays cheap."""
    if name in ("Store", "RunInfo", "SeriesPoint", "AddResult"):
        from voxbench.results.store import core

        return getattr(core, name)
    raise AttributeError(name)
