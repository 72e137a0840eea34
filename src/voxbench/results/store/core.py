"""The store itself: one implementation over either dialect.

A run is a row of ``runs`` holding the whole result document (JSON) plus the columns queries
filter on, and one row of ``cases`` per case with its key and headline metrics. Raw samples stay
in the document, which is the contract: :meth:`Store.get` gives it back unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from voxbench.errors import ConfigError
from voxbench.results.keys import keyed_levels
from voxbench.results.metrics import BY_NAME
from voxbench.results.store.dialects import Dialect, StoreError
from voxbench.results.store.schema import CASE_COLUMNS, METRICS, migrate

if TYPE_CHECKING:
    from voxbench.results.document import Case, ResultDocument
    from voxbench.results.metrics import Metric

# error_count is a key column of every row; the catalogue says how a case or a level counts them
_ERRORS = BY_NAME["errors"]

RUN_COLUMNS = (
    "run_id",
    "created_at",
    "finished_at",
    "machine_id",
    "hostname",
    "git_commit",
    "git_dirty",
    "scenario",
    "voxbench_version",
    "schema_version",
    "gpus",
    "source",
    "added_at",
    "doc_sha256",
    "document",
    "status",
)


@dataclass(frozen=True)
class AddResult:
    """What :meth:`Store.add` did: ``added`` a new run, ``replaced`` a changed document with the
    same run id (e.g. a finished run over its interrupted copy), found it ``unchanged``, or
    ``kept`` the complete run stored over a partial copy of it (an older one, say)."""

    run_id: str
    status: Literal["added", "replaced", "unchanged", "kept"]
    cases: int


@dataclass(frozen=True)
class RunInfo:
    """One stored run, without its document."""

    run_id: str
    created_at: str
    machine_id: str
    git_commit: str | None
    scenario: str
    voxbench_version: str | None
    gpus: str
    source: str | None
    cases: int
    engines: tuple[str, ...]
    status: str = "complete"  # the document's: complete, interrupted, or running (killed)

    @property
    def partial(self) -> bool:
        """Whether the stored run lacks planned cases (interrupted or killed; --resume it)."""
        return self.status != "complete"


@dataclass(frozen=True)
class SeriesPoint:
    """One case's value of one metric in one run, for history."""

    run_id: str
    created_at: str
    git_commit: str | None
    machine_id: str
    case_id: str
    engine: str
    workload: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    mode: str | None = None  # the case's executor mode: worker or in-process


def parse_when(text: str) -> str:
    """A time filter as the store's ISO 8601 UTC text: ``YYYY-MM-DD``, a full ISO timestamp, or
    an age such as ``7d``, ``12h``, ``30m`` (before now)."""
    text = text.strip()
    age = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([dhm])", text)
    if age:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[age.group(2)]
        when = dt.datetime.now(dt.UTC) - dt.timedelta(**{unit: float(age.group(1))})
    else:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"bad time {text!r}: use YYYY-MM-DD, an ISO timestamp or an age like 7d, 12h"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


def _canonical(doc: ResultDocument) -> str:
    return json.dumps(doc.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _metric_values(
    found: Iterable[tuple[Metric, float | None, tuple[float, float] | None]],
) -> list[float | None]:
    """The metric columns of one row (``schema.METRIC_COLUMNS``) from (metric, value, interval)
    in catalogue order."""
    out: list[float | None] = []
    for m, value, interval in found:
        out.append(value)
        if m.ci_columns:
            out += [interval[0], interval[1]] if interval else [None, None]
    return out


def _case_row(run_id: str, position: int, c: Case) -> tuple[Any, ...]:
    return (
        *(run_id, c.id, position, c.engine, c.workload, c.input_id),
        json.dumps(c.params, sort_keys=True, default=str),
        *(c.device, c.batch_size, c.mode, c.iterations, c.latency_ms.n if c.latency_ms else 0),
        int(_ERRORS.of_case(c) or 0),
        *_metric_values((m, m.of_case(c), m.ci_of_case(c)) for m in METRICS.values()),
    )


def _load_rows(doc: ResultDocument) -> list[tuple[Any, ...]]:
    """A load run's levels as case rows: engine ``load``, one case per level, the level's key as
    case id and its label as input."""
    if doc.load is None:
        return []
    target, workload = doc.load.target, doc.load.workload
    rows = []
    for i, (key, lv) in enumerate(keyed_levels(doc.load)):
        params = {"target": target, "kind": lv.kind, "value": lv.value}
        rows.append(
            (
                *(doc.run_id, key, i, "load", workload, lv.label),
                json.dumps(params, sort_keys=True, default=str),
                *("remote", 1, "load", None, lv.requests, int(_ERRORS.of_level(lv) or 0)),
                *_metric_values((m, m.of_level(lv), None) for m in METRICS.values()),
            )
        )
    return rows


class Store:
    """Result documents in SQLite or PostgreSQL. Open it with :func:`voxbench.results.store.open_store`;
    use it as a context manager or call :meth:`close`."""

    def __init__(self, db: Dialect) -> None:
        self.db = db
        try:
            self.schema_version = migrate(db)
        except StoreError:
            db.close()
            raise
        except Exception as exc:
            db.close()
            raise StoreError(f"cannot prepare the store {db.url}: {exc}") from exc

    @property
    def url(self) -> str:
        """The store's URL (password redacted) or file path."""
        return self.db.url

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.name

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- writing -------------------------------------------------------------------------------

    def add(self, doc: ResultDocument, source: str | None = None) -> AddResult:
        """Record one run in one transaction: its ``runs`` row and every ``cases`` row, or
        nothing (a kill half-way leaves the store as it was). Adding the same document again
        changes nothing; a different document with the same run id replaces the stored one (a
        finished run over its interrupted copy), except that a partial copy never replaces the
        complete run."""
        text = _canonical(doc)
        sha = hashlib.sha256(text.encode()).hexdigest()
        env = doc.environment
        cases = [_case_row(doc.run_id, i, c) for i, c in enumerate(doc.cases)] + _load_rows(doc)
        run_row = (
            doc.run_id,
            doc.created_at,
            doc.finished_at,
            env.machine_id,
            env.hostname,
            env.git_commit,
            env.git_dirty,
            doc.scenario,
            doc.voxbench_version,
            doc.schema_version,
            ", ".join(g.name for g in env.gpus),
            source,
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            sha,
            text,
            doc.status,
        )
        status: Literal["added", "replaced", "unchanged", "kept"] = "added"
        with self.db.transaction():
            found = self.db.query(
                "SELECT doc_sha256, status FROM runs WHERE run_id = ?", (doc.run_id,)
            )
            if found and found[0][0] == sha:
                return AddResult(doc.run_id, "unchanged", len(cases))
            if found and found[0][1] == "complete" and doc.status != "complete":
                return AddResult(doc.run_id, "kept", len(cases))
            if found:
                status = "replaced"
                self.db.execute("DELETE FROM cases WHERE run_id = ?", (doc.run_id,))
                self.db.execute("DELETE FROM runs WHERE run_id = ?", (doc.run_id,))
            marks = ", ".join("?" for _ in RUN_COLUMNS)
            self.db.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({marks})", run_row
            )
            if cases:
                marks = ", ".join("?" for _ in CASE_COLUMNS)
                self.db.executemany(
                    f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES ({marks})", cases
                )
        return AddResult(doc.run_id, status, len(cases))

    def delete(self, run_id: str) -> bool:
        """Remove one run; True when it was there."""
        with self.db.transaction():
            found = self.db.query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,))
            self.db.execute("DELETE FROM cases WHERE run_id = ?", (run_id,))
            self.db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        return bool(found)

    # -- reading -------------------------------------------------------------------------------

    def has(self, run_id: str) -> bool:
        """Whether the run is stored."""
        return bool(self.db.query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))

    def get(self, run_id: str) -> ResultDocument:
        """The stored document of ``run_id``; a unique prefix of a run id also works.
        Raises ConfigError when no run (or several) match."""
        from voxbench.results.document import ResultDocument

        rows = self.db.query("SELECT document FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            rows = self.db.query(
                "SELECT document FROM runs WHERE run_id LIKE ? ESCAPE '!' ORDER BY run_id LIMIT 2",
                (re.sub(r"([!%_])", r"!\1", run_id) + "%",),
            )
            if len(rows) > 1:
                raise ConfigError(f"run id {run_id!r} is ambiguous in the store {self.url}")
        if not rows:
            raise ConfigError(f"no run {run_id!r} in the store {self.url}")
        value = rows[0][0]
        if isinstance(value, str):
            return ResultDocument.model_validate_json(value)
        return ResultDocument.model_validate(value)  # PostgreSQL JSONB comes back parsed

    def _run_filter(
        self,
        engine: str | None,
        machine: str | None,
        since: str | None,
        until: str | None,
        scenario: str | None,
        run_ids: list[str] | None = None,
    ) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if engine:
            where.append("r.run_id IN (SELECT run_id FROM cases WHERE engine = ?)")
            params.append(engine)
        if machine:
            where.append("r.machine_id = ?")
            params.append(machine)
        if since:
            where.append("r.created_at >= ?")
            params.append(parse_when(since))
        if until:
            where.append("r.created_at <= ?")
            params.append(parse_when(until))
        if scenario:
            where.append("r.scenario = ?")
            params.append(scenario)
        if run_ids is not None:
            where.append(f"r.run_id IN ({', '.join('?' for _ in run_ids) or 'NULL'})")
            params.extend(run_ids)
        return (" WHERE " + " AND ".join(where)) if where else "", params

    def runs(
        self,
        *,
        engine: str | None = None,
        machine: str | None = None,
        since: str | None = None,
        until: str | None = None,
        scenario: str | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        """Stored runs, newest first, filtered by engine, machine, time (see :func:`parse_when`)
        and scenario."""
        where, params = self._run_filter(engine, machine, since, until, scenario)
        sql = (
            "SELECT r.run_id, r.created_at, r.machine_id, r.git_commit, r.scenario, "
            "r.voxbench_version, r.gpus, r.source, r.status FROM runs r"
            f"{where} ORDER BY r.created_at DESC, r.seq DESC"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self.db.query(sql, params)
        engines: dict[str, list[str]] = {r[0]: [] for r in rows}
        counts: dict[str, int] = dict.fromkeys(engines, 0)
        if rows:
            ids = list(engines)
            for run_id, eng, n in self.db.query(
                "SELECT run_id, engine, COUNT(*) FROM cases WHERE run_id IN "
                f"({', '.join('?' for _ in ids)}) GROUP BY run_id, engine ORDER BY engine",
                ids,
            ):
                engines[run_id].append(eng)
                counts[run_id] += int(n)
        return [
            RunInfo(
                run_id=r[0],
                created_at=r[1],
                machine_id=r[2],
                git_commit=r[3],
                scenario=r[4],
                voxbench_version=r[5],
                gpus=r[6] or "",
                source=r[7],
                cases=counts[r[0]],
                engines=tuple(engines[r[0]]),
                status=r[8],
            )
            for r in rows
        ]

    def case_rows(
        self,
        *,
        engine: str | None = None,
        machine: str | None = None,
        since: str | None = None,
        until: str | None = None,
        scenario: str | None = None,
        run_ids: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """One flat row per stored case (run columns + case key + headline metrics), oldest run
        first: what CSV and Parquet exports hold. ``engine`` keeps only that engine's cases."""
        where, params = self._run_filter(None, machine, since, until, scenario, run_ids)
        if engine:
            where += (" AND " if where else " WHERE ") + "c.engine = ?"
            params.append(engine)
        run_cols = (
            "created_at",
            "machine_id",
            "git_commit",
            "scenario",
            "voxbench_version",
            "gpus",
        )
        case_cols = CASE_COLUMNS[1:]
        sql = (
            f"SELECT r.run_id, {', '.join('r.' + c for c in run_cols)}, "
            f"{', '.join('c.' + c for c in case_cols)} "
            f"FROM cases c JOIN runs r ON r.run_id = c.run_id{where} "
            "ORDER BY r.created_at, r.seq, c.position"
        )
        names = ("run_id", *run_cols, *case_cols)
        out = []
        for row in self.db.query(sql, params):
            d = dict(zip(names, row, strict=True))
            if not isinstance(d["params"], str):
                d["params"] = json.dumps(d["params"], sort_keys=True)
            out.append(d)
        return out

    def run_ids(
        self,
        *,
        engine: str | None = None,
        machine: str | None = None,
        since: str | None = None,
        until: str | None = None,
        scenario: str | None = None,
    ) -> Iterator[str]:
        """Run ids matching the filters, oldest first."""
        for info in reversed(
            self.runs(engine=engine, machine=machine, since=since, until=until, scenario=scenario)
        ):
            yield info.run_id

    def case_series(
        self,
        engine: str,
        *,
        metric: str = "latency_ms",
        workload: str | None = None,
        case_id: str | None = None,
        machine: str | None = None,
        since: str | None = None,
    ) -> list[SeriesPoint]:
        """One metric of an engine's cases over the stored runs, oldest first (by the run's
        ``created_at``), skipping runs where the metric is missing. ``metric`` is a key of
        :data:`voxbench.results.store.METRICS` (the catalogue's stored metrics)."""
        if metric not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}: choose from {', '.join(METRICS)}")
        column, ci = METRICS[metric].column, METRICS[metric].ci_columns
        sql = (
            "SELECT r.run_id, r.created_at, r.git_commit, r.machine_id, c.case_id, c.engine, "
            f"c.workload, c.{column}, "
            + (f"c.{ci[0]}, c.{ci[1]}" if ci else "NULL, NULL")
            + ", c.n, c.mode FROM cases c JOIN runs r ON r.run_id = c.run_id "
            f"WHERE c.engine = ? AND c.{column} IS NOT NULL"
        )
        params: list[Any] = [engine]
        for col, value in (("c.workload", workload), ("c.case_id", case_id)):
            if value:
                sql += f" AND {col} = ?"
                params.append(value)
        if machine:
            sql += " AND r.machine_id = ?"
            params.append(machine)
        if since:
            sql += " AND r.created_at >= ?"
            params.append(parse_when(since))
        sql += " ORDER BY r.created_at, r.seq, c.position"
        return [
            SeriesPoint(
                run_id=r[0],
                created_at=r[1],
                git_commit=r[2],
                machine_id=r[3],
                case_id=r[4],
                engine=r[5],
                workload=r[6],
                value=float(r[7]),
                ci_low=r[8],
                ci_high=r[9],
                n=r[10],
                mode=r[11],
            )
            for r in self.db.query(sql, params)
        ]
