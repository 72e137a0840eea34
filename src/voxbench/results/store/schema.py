"""The store's schema, as an ordered list of migrations.

``schema_version`` holds one row per applied migration. Opening a store applies every missing
migration in order, each in its own transaction together with its ``schema_version`` row, under
an exclusive lock, so two processes opening a fresh store at once cannot both migrate it. A
store written by a newer voxbench (a version this one does not know) is refused, never altered.

Append new migrations to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import datetime as dt

from voxbench.results.metrics import CATALOGUE, Metric
from voxbench.results.store.dialects import Dialect, StoreError

METRICS: dict[str, Metric] = {m.name: m for m in CATALOGUE if m.column}
"""The metrics kept per case in the ``cases`` table (those of the catalogue with a ``column``),
by name: what ``Store.case_series`` and ``voxbench history`` accept."""

# A cases row: the case key and counts, then each stored metric's value (and its interval where
# it has ``ci_columns``) in catalogue order. A metric column the migrations below do not create
# needs a new migration (``ALTER TABLE cases ADD COLUMN name {FLOAT}``).
KEY_COLUMNS = (
    "run_id",
    "case_id",
    "position",
    "engine",
    "workload",
    "input_id",
    "params",
    "device",
    "batch_size",
    "mode",
    "iterations",
    "n",
    "error_count",
)
METRIC_COLUMNS = tuple(
    col for m in METRICS.values() for col in (m.column, *(m.ci_columns or ())) if col is not None
)
CASE_COLUMNS = KEY_COLUMNS + METRIC_COLUMNS
LEGACY_COLUMNS = ("peak_gpu_mb",)
"""Columns of the ``cases`` table that no metric writes any more, kept for the rows recorded
before: ``peak_gpu_mb`` held torch's allocator peak or NVML's figure, which one the run's document
says (``peak_gpu_scope``); those are now ``peak_gpu_allocated_mb`` and ``gpu_nvml_mb``."""

# (version, statements). Types in braces are filled in by the dialect. ``runs.seq`` orders runs
# added within the same second (``created_at`` has one-second resolution).
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE runs (
                seq {SERIAL_PK},
                run_id TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL,
                finished_at TEXT,
                machine_id TEXT NOT NULL,
                hostname TEXT,
                git_commit TEXT,
                git_dirty {BOOL},
                scenario TEXT NOT NULL,
                voxbench_version TEXT,
                schema_version TEXT,
                gpus TEXT,
                source TEXT,
                added_at TEXT NOT NULL,
                doc_sha256 TEXT NOT NULL,
                document {JSON} NOT NULL
            )""",
            "CREATE INDEX runs_created_at ON runs (created_at)",
            "CREATE INDEX runs_machine ON runs (machine_id, created_at)",
            """CREATE TABLE cases (
                run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
                case_id TEXT NOT NULL,
                position INTEGER NOT NULL,
                engine TEXT NOT NULL,
                workload TEXT NOT NULL,
                input_id TEXT NOT NULL,
                params {JSON} NOT NULL,
                device TEXT NOT NULL,
                batch_size INTEGER NOT NULL,
                mode TEXT,
                iterations INTEGER,
                n INTEGER,
                error_count INTEGER NOT NULL,
                latency_median_ms {FLOAT},
                latency_ci_low_ms {FLOAT},
                latency_ci_high_ms {FLOAT},
                latency_p95_ms {FLOAT},
                rtf {FLOAT},
                rtfx {FLOAT},
                ttfa_median_ms {FLOAT},
                peak_rss_mb {FLOAT},
                peak_gpu_mb {FLOAT},
                cold_start_ms {FLOAT},
                items_per_second {FLOAT},
                chars_per_second {FLOAT},
                PRIMARY KEY (run_id, case_id)
            )""",
            "CREATE INDEX cases_engine ON cases (engine, workload)",
        ],
    ),
    # GPU memory under two names (torch's allocator, NVML), and the children's peak RSS. The
    # column peak_gpu_mb stays, for runs recorded before: it held either figure.
    (
        2,
        [
            "ALTER TABLE cases ADD COLUMN peak_child_rss_mb {FLOAT}",
            "ALTER TABLE cases ADD COLUMN peak_gpu_allocated_mb {FLOAT}",
            "ALTER TABLE cases ADD COLUMN gpu_nvml_mb {FLOAT}",
        ],
    ),
    # Text answers: speech recognition accuracy and LLM token timing.
    (
        3,
        [
            "ALTER TABLE cases ADD COLUMN ttft_median_ms {FLOAT}",
            "ALTER TABLE cases ADD COLUMN tokens_per_second {FLOAT}",
            "ALTER TABLE cases ADD COLUMN itl_median_ms {FLOAT}",
            "ALTER TABLE cases ADD COLUMN wer {FLOAT}",
            "ALTER TABLE cases ADD COLUMN cer {FLOAT}",
        ],
    ),
    # Partial runs: an interrupted run is recorded with what it measured, marked as such, and
    # its complete document (voxbench ... --resume) replaces it. Runs recorded before without
    # finished_at (imported interrupted folders) are partial too.
    (
        4,
        [
            "ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'",
            "UPDATE runs SET status = 'interrupted' WHERE finished_at IS NULL",
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]


def current_version(db: Dialect) -> int:
    """The highest applied migration; 0 for an empty database."""
    if not db.table_exists("schema_version"):
        return 0
    row = db.query("SELECT MAX(version) FROM schema_version")[0]
    return int(row[0] or 0)


def migrate(db: Dialect, migrations: list[tuple[int, list[str]]] | None = None) -> int:
    """Apply the missing migrations in order; returns the version the store is at.

    Raises StoreError when the store is newer than every migration this voxbench knows.
    """
    steps = MIGRATIONS if migrations is None else migrations
    latest = steps[-1][0] if steps else 0
    with db.transaction(exclusive=True):
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
    version = current_version(db)
    if version > latest:
        raise StoreError(
            f"the store {db.url} has schema version {version}, newer than this voxbench knows "
            f"({latest}): upgrade voxbench"
        )
    for number, statements in steps:
        if number <= version:
            continue
        with db.transaction(exclusive=True):
            if current_version(db) >= number:  # another process applied it meanwhile
                continue
            for statement in statements:
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (number, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
            )
        version = number
    return version
