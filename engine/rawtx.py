"""Plain SQL on the DBAPI connection of a Session's transaction, for the engine's hot path.

Why this exists: completing a step runs about ten small statements, and SQLAlchemy's
execution machinery (statement construction, cache keys, execution context, result
wrapping) costs several times the CPU PostgreSQL spends running them. The hot path
(`Runtime.complete` and the task mirror every state change shares) therefore writes its
SQL once, as text, and runs it on the connection the Session already holds, so it stays
in the Session's transaction: one commit covers the ORM work and these statements.

On PostgreSQL a batch of statements is sent in one psycopg pipeline: one network round
trip for the lot, and psycopg prepares statements it sees repeatedly. SQLite runs in the
process, so a batch there is just a loop.

The SQL is written once with `%(name)s` parameters (psycopg's style) and handed to
sqlite3 as `:name`. Values are adapted the way SQLAlchemy stores them, so rows written
here read back the same through the ORM: dicts and lists as JSON, datetimes as UTC
(`timestamptz` on PostgreSQL; SQLAlchemy's naive `YYYY-MM-DD HH:MM:SS.ffffff` text on
SQLite).
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterable, Sequence

import orjson
from psycopg.types.json import Json
from sqlalchemy.orm import Session

from .db import as_utc

_PARAM = re.compile(r"%\((\w+)\)s")


def _dumps(value) -> bytes:
    """JSON for the documents the hot path writes (the workflow state is ~13 KB a step):
    orjson takes a tenth of the stdlib's time. Non-string keys become strings, as json.dumps
    makes them."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


@lru_cache(maxsize=256)
def _sqlite_text(sql: str) -> str:
    return _PARAM.sub(r":\1", sql)


class RawTx:
    """The Session's current connection, for statements written as SQL text."""

    def __init__(self, session: Session):
        connection = session.connection()
        self.postgres = connection.dialect.name == "postgresql"
        self._dbapi = connection.connection.driver_connection

    # ---- values --------------------------------------------------------------------------
    def _adapt(self, value: Any) -> Any:
        if isinstance(value, (dict, list)):
            return Json(value, dumps=_dumps) if self.postgres else _dumps(value).decode()
        if isinstance(value, datetime) and not self.postgres:
            utc = value.astimezone(timezone.utc) if value.tzinfo else value
            return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def _params(self, params: dict) -> dict:
        return {k: self._adapt(v) for k, v in params.items()}

    def _sql(self, sql: str) -> str:
        return sql if self.postgres else _sqlite_text(sql)

    def when(self, value) -> datetime | None:
        """A datetime column as read here: aware UTC on both databases."""
        return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)

    def document(self, value) -> Any:
        """A JSON column as read here (psycopg parses it already; sqlite3 gives text)."""
        return json.loads(value) if isinstance(value, str) else value

    # ---- statements ----------------------------------------------------------------------
    def one(self, sql: str, params: dict) -> tuple | None:
        """The first row of a statement that returns at most a few."""
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def all(self, sql: str, params: dict) -> list[tuple]:
        cur = self._dbapi.cursor()
        try:
            cur.execute(self._sql(sql), self._params(params))
            return cur.fetchall()
        finally:
            cur.close()

    def batch(self, statements: Iterable[tuple[str, dict | Sequence[dict]]]) -> list[tuple[int, list | None]]:
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
                for sql, params in statements:
                    if isinstance(params, dict):
                        cur.execute(_sqlite_text(sql), self._params(params))
                        rows = cur.fetchall() if cur.description else None
                    else:
                        cur.executemany(_sqlite_text(sql), [self._params(p) for p in params])
                        rows = None
                    results.append((cur.rowcount, rows))
            finally:
                cur.close()
            return results
        cursors = []
        try:
            with self._dbapi.pipeline():
                for sql, params in statements:
                    cur = self._dbapi.cursor()
                    cursors.append(cur)
                    if isinstance(params, dict):
                        cur.execute(sql, self._params(params))
                    else:
                        cur.executemany(sql, [self._params(p) for p in params])
            for cur in cursors:
                results.append((cur.rowcount, cur.fetchall() if cur.description else None))
        finally:
            for cur in cursors:
                cur.close()
        return results
