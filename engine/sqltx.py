"""SQLAlchemy Core statements, compiled once per dialect, run on a Session's DBAPI connection.

Why this exists: a step completion runs about ten small statements, and SQLAlchemy's
execution machinery (cache keys, execution context, result wrapping) costs several times
the CPU PostgreSQL spends running them. So the engine's statements are built from the Core
tables of engine/models.py (a renamed or missing column fails at import or in
tests/test_statements.py, never in production), compiled once per dialect (`Stmt.sql`), and
run directly on the connection the Session already holds: same transaction, one COMMIT.

On PostgreSQL a batch of statements goes out in one psycopg pipeline (one network round
trip); SQLite runs in the process, so a batch there is a loop. Values are adapted the way
SQLAlchemy stores them, so rows written here read back the same through the ORM: JSON
through engine.jsoncodec, datetimes as UTC (`timestamptz` on PostgreSQL; SQLAlchemy's naive
`YYYY-MM-DD HH:MM:SS.ffffff` text on SQLite).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Sequence
from weakref import WeakSet

from psycopg.types.json import Json
from sqlalchemy.dialects.postgresql import psycopg as _pg
from sqlalchemy.dialects.sqlite import pysqlite as _sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from . import jsoncodec
from .db import as_utc

DIALECTS = {"postgresql": _pg.dialect(), "sqlite": _sqlite.dialect(paramstyle="named")}


class Stmt:
    """A Core statement with its SQL text per dialect, compiled on first use and kept.

    Literal values in the statement (`state == 'ready'`) become bound parameters with
    defaults, merged under the caller's parameters."""

    __slots__ = ("core", "only", "_compiled", "__weakref__")

    # Every statement built so far, so tests/test_statements.py can check each against the
    # migrated schema (it is a registry of immutable things, not state anything depends on).
    built: "WeakSet[Stmt]" = WeakSet()

    def __init__(self, core: ClauseElement, only: str | None = None):
        self.core, self.only = core, only  # `only`: the one dialect the statement is for
        self._compiled: dict[str, tuple[str, dict]] = {}
        Stmt.built.add(self)

    def sql(self, dialect: str) -> tuple[str, dict]:
        found = self._compiled.get(dialect)
        if found is None:
            compiled = self.core.compile(dialect=DIALECTS[dialect])
            defaults = {k: v for k, v in compiled.params.items() if v is not None}
            found = self._compiled[dialect] = (str(compiled), defaults)
        return found

    def __repr__(self) -> str:
        return f"Stmt({self.core})"


class SqlTx:
    """The Session's current connection, for `Stmt`s."""

    def __init__(self, session: Session):
        connection = session.connection()
        self.dialect = connection.dialect.name
        self.postgres = self.dialect == "postgresql"
        self._dbapi = connection.connection.driver_connection

    # ---- values --------------------------------------------------------------------------
    def _adapt(self, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            return Json(value, dumps=jsoncodec.dumps_bytes) if self.postgres else jsoncodec.dumps(value)
        if isinstance(value, datetime) and not self.postgres:
            utc = value.astimezone(timezone.utc) if value.tzinfo else value
            return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def _params(self, defaults: dict, params: dict) -> dict:
        adapted = {k: self._adapt(v) for k, v in params.items()}
        return {**defaults, **adapted} if defaults else adapted

    @staticmethod
    def when(value) -> datetime | None:
        """A datetime column as read here: aware UTC on both databases."""
        return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)

    @staticmethod
    def document(value) -> Any:
        """A JSON column as read here (psycopg parses it already; sqlite3 gives text)."""
        return jsoncodec.loads(value) if isinstance(value, (str, bytes)) else value

    # ---- statements ----------------------------------------------------------------------
    def one(self, stmt: Stmt, params: dict) -> tuple | None:
        """The first row of a statement that returns at most a few."""
        rows = self.all(stmt, params)
        return rows[0] if rows else None

    def all(self, stmt: Stmt, params: dict) -> list[tuple]:
        sql, defaults = stmt.sql(self.dialect)
        cur = self._dbapi.cursor()
        try:
            cur.execute(sql, self._params(defaults, params))
            return cur.fetchall()
        finally:
            cur.close()

    def batch(self, statements: Iterable[tuple[Stmt, dict | Sequence[dict]]]) -> list[tuple[int, list | None]]:
        """Run the statements in order, in one round trip on PostgreSQL.

        Returns (rowcount, rows) per statement: rows are the fetched result of a statement that
        returns some (a SELECT, or RETURNING), else None. A statement given a list of parameter
        dicts runs once per dict (for writes only; its rowcount is then the sum)."""
        statements = list(statements)
        if not statements:
            return []
        results = []
        if not self.postgres:
            cur = self._dbapi.cursor()
            try:
                for stmt, params in statements:
                    sql, defaults = stmt.sql(self.dialect)
                    if isinstance(params, dict):
                        cur.execute(sql, self._params(defaults, params))
                        rows = cur.fetchall() if cur.description else None
                    else:
                        cur.executemany(sql, [self._params(defaults, p) for p in params])
                        rows = None
                    results.append((cur.rowcount, rows))
            finally:
                cur.close()
            return results
        cursors = []
        try:
            with self._dbapi.pipeline():
                for stmt, params in statements:
                    sql, defaults = stmt.sql(self.dialect)
                    cur = self._dbapi.cursor()
                    cursors.append(cur)
                    if isinstance(params, dict):
                        cur.execute(sql, self._params(defaults, params))
                    else:
                        cur.executemany(sql, [self._params(defaults, p) for p in params])
            for cur in cursors:
                results.append((cur.rowcount, cur.fetchall() if cur.description else None))
        finally:
            for cur in cursors:
                cur.close()
        return results
