"""The thin layer between the store and its two databases: SQLite and PostgreSQL.

Everything the store says is written once, in SQL with ``?`` placeholders and four type names in
its DDL (``{FLOAT}``, ``{JSON}``, ``{BOOL}``, and ``{SERIAL_PK}``: an auto-incremented key); a
dialect turns placeholders and types into its own, opens transactions, and serialises migrations
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from voxbench.errors import ConfigError, VoxbenchError

SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10
MIGRATION_LOCK_KEY = 0x766F78  # "vox": the advisory lock id PostgreSQL migrations take


class StoreError(VoxbenchError):
    """The store cannot be opened, read or written (one line: the URL and the cause)."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


class Dialect:
    """One open connection, speaking one database's SQL."""

    name = ""
    types: ClassVar[dict[str, str]] = {}

    def __init__(self, url: str) -> None:
        self.url = redact_url(url)

    def sql(self, statement: str) -> str:
        """The statement with the dialect's placeholders and type names."""
        return statement.format(**self.types) if "{" in statement else statement

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back when it raises.
        ``exclusive`` serialises it against other writers (used for migrations)."""
        raise NotImplementedError
        yield  # pragma: no cover

    def table_exists(self, table: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SQLiteDialect(Dialect):
    """SQLite through the standard library; autocommit mode with explicit transactions."""

    name = "sqlite"
    types: ClassVar[dict[str, str]] = {
        "FLOAT": "REAL",
        "JSON": "TEXT",
        "BOOL": "INTEGER",
        "SERIAL_PK": "INTEGER PRIMARY KEY AUTOINCREMENT",
    }

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                str(path), timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the SQLite store {path}: {exc}") from None

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self.sql(statement), tuple(params))

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(self.sql(statement), rows)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(self.sql(statement), tuple(params)).fetchall()

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[None]:
        # IMMEDIATE takes the write lock at once: two writers queue (busy timeout) instead of
        # failing on a lock upgrade half-way through.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def table_exists(self, table: str) -> bool:
        return bool(
            self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        )

    def close(self) -> None:
        self.conn.close()


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3, in autocommit mode with explicit transactions."""

    name = "postgresql"
    types: ClassVar[dict[str, str]] = {
        "FLOAT": "DOUBLE PRECISION",
        "JSON": "JSONB",
        "BOOL": "BOOLEAN",
        "SERIAL_PK": "BIGSERIAL PRIMARY KEY",
    }

    def __init__(self, url: str) -> None:
        super().__init__(url)
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                "a PostgreSQL store needs psycopg: pip install 'voxbench[store]'"
            ) from None
        self._psycopg = psycopg
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"cannot connect to the store {self.url}: {cause}") from None

    def sql(self, statement: str) -> str:
        return super().sql(statement).replace("?", "%s")

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self.sql(statement), tuple(params))

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self.sql(statement), list(rows))

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(self.sql(statement), tuple(params)).fetchall()

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[None]:
        with self.conn.transaction():
            if exclusive:
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            yield

    def table_exists(self, table: str) -> bool:
        return bool(self.query("SELECT to_regclass(?) IS NOT NULL", (table,))[0][0])

    def close(self) -> None:
        self.conn.close()


def connect(url: str) -> Dialect:
    """A dialect for a store URL: ``postgresql://`` / ``postgres://``, ``sqlite:///PATH``,
    ``sqlite:PATH`` or a plain file path."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDialect(url)
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        path = rest[2:] if rest.startswith("//") else rest  # sqlite:///abs -> /abs
        if not path:
            raise ConfigError(f"store URL {url!r} names no file")
        return SQLiteDialect(Path(path).expanduser())
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"unknown store URL scheme {scheme!r}: use a file path, sqlite:///PATH or postgresql://..."
        )
    return SQLiteDialect(Path(url).expanduser())
