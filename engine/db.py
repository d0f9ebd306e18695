"""Database engine and session factories: the process's sessionmaker, and `OneConnection`
(sessions on one connection with explicit transactions: a web request's, see webui/db.py).

SQLite (the embedded default) gets WAL, a busy timeout and foreign keys so that several
processes (web, worker, beat) can share one file. PostgreSQL connections keep their
prepared statements across rollbacks (a hook on psycopg internals, pinned: see below) and are checked for liveness without a round trip.
"""
from __future__ import annotations

import select
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import sessionmaker, Session

from . import jsoncodec


def make_engine(url: str, **kwargs) -> Engine:
    kwargs.setdefault("json_serializer", jsoncodec.dumps)  # the one JSON encoder, ORM and unit of work alike
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy emit BEGIN itself so a transaction takes the write lock early.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", lambda dbapi_conn, _record: keep_prepared_on_rollback(dbapi_conn))
    event.listen(engine, "checkout", check_alive)
    return engine


def check_alive(dbapi_conn, _record, _proxy) -> None:
    """Refuse a pooled connection the server has closed (a restart, an idle timeout, a DBA's
    pg_terminate_backend), without a round trip: SQLAlchemy then opens a fresh one.

    This replaces `pool_pre_ping`, whose SELECT on every checkout cost a round trip per
    transaction (~0.7 ms of CPU per step completion, client and server). A server that ends
    a session sends a message and closes the socket, so an idle connection whose socket is
    readable, or that psycopg already knows to be closed, is not used.

    poll() rather than select(): select() cannot watch a descriptor numbered 1024 or above (it
    raised for every connection, fresh ones too, in a process holding many sockets, and the
    checkout failed with "This connection is closed").
    """
    if dbapi_conn.closed or dbapi_conn.broken:
        raise DisconnectionError("connection closed")
    try:
        poller = select.poll()
        poller.register(dbapi_conn.fileno(), select.POLLIN)
        events = poller.poll(0)
    except (OSError, ValueError) as exc:
        raise DisconnectionError(str(exc)) from exc
    if events:  # an idle session has nothing to say unless the server is ending it (or hung up)
        raise DisconnectionError("the server closed this connection")


# The exact psycopg version the hook below was written for and tested with (pyproject.toml pins it).
PSYCOPG_TESTED = "3.3.9"


def keep_prepared_on_rollback(dbapi_conn) -> None:
    """Let a psycopg connection keep its prepared statements when a transaction rolls back.

    psycopg prepares a statement it has run five times, and forgets all of them (DEALLOCATE ALL)
    on every ROLLBACK, in case the transaction created something they refer to. Every read-only
    Session ends with a ROLLBACK (one per web request at least), so the engine's hot statements
    were planned afresh on each use: about 1 ms of PostgreSQL CPU per step completion, 40 % of
    its share. Lajur changes its schema only in migrations, and psycopg still forgets its
    statements after DROP, ALTER and DISCARD ALL, so keeping them across ROLLBACK is safe here.

    Why private internals: psycopg has no public option for this (its documented knobs,
    `prepare_threshold` and `prepared_max`, say when to prepare, not when to forget; a
    pipeline does not change it). So the hook replaces the connection's `_rollback_gen` with
    one that stops `_prepared.clear()` for the duration of the rollback. psycopg is pinned to
    the exact version it was checked against (PSYCOPG_TESTED, pyproject.toml); if the
    internals are not there the hook refuses loudly instead of silently doing nothing, and
    tests/test_hotpath.py checks both the version and that statements survive a ROLLBACK.
    """
    manager = getattr(dbapi_conn, "_prepared", None)
    rollback_gen = getattr(dbapi_conn, "_rollback_gen", None)
    if manager is None or rollback_gen is None or not hasattr(manager, "clear"):
        raise RuntimeError(f"psycopg {psycopg_version()} lacks the internals engine/db.py's "
                           f"keep_prepared_on_rollback uses (tested with {PSYCOPG_TESTED}); see its docstring")

    def rollback_keeping_prepared():
        manager.clear = lambda: False  # what the rollback calls; DROP/ALTER still clear outside it
        try:
            return (yield from rollback_gen())
        finally:
            del manager.clear

    dbapi_conn._rollback_gen = rollback_keeping_prepared


def psycopg_version() -> str:
    import psycopg
    return psycopg.__version__


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def utcnow() -> datetime:
    """The real clock (the engine's default; tests inject another into Runtime)."""
    return datetime.now(timezone.utc)


def as_utc(dt: datetime | None) -> datetime | None:
    """Datetimes read back from SQLite are naive; everything Lajur stores is UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


class WriteOutsideTransaction(RuntimeError):
    """ORM changes were flushed in a read Session of a `OneConnection`: writes belong in `begin()`."""


class _ReadSession(Session):
    """A read Session on a `OneConnection`: a change flushed here would commit statement by
    statement (PostgreSQL reads run in autocommit) or be rolled back unseen, so it is refused."""

    def flush(self, objects=None) -> None:
        if self.new or self.dirty or self.deleted:
            raise WriteOutsideTransaction("change rows in sessions.begin() (an engine service), not in a read session")
        super().flush(objects)


class OneConnection:
    """A session factory (the part of `sessionmaker` the engine uses) over ONE connection.

    A web request hands this to the engine services instead of the process's sessionmaker, so
    the user lookup, the reads of the page and the engine's write all run on one pool checkout
    (the pool's `checkout` event fires once per request: tests/test_one_connection.py). The
    connection is checked out at the first use and returned by `close()` (webui/db.py calls it
    when the request ends).

    Transactions are explicit:
    - **reads** (`connection()`, `sessions()`): on PostgreSQL the connection rests in autocommit,
      so every read statement is its own READ COMMITTED snapshot (what a read transaction in
      READ COMMITTED gives too) with no BEGIN/ROLLBACK round trips; on SQLite a transaction
      takes the write lock at BEGIN (engine.db.make_engine), so a read Session's transaction
      ends when it closes and callers of `connection()` end theirs after each block.
    - **a write** (`sessions.begin()`): first ends whatever read transaction the connection
      still has (a write never joins it silently), switches PostgreSQL out of autocommit, and
      runs one Session in its own BEGIN .. COMMIT (ROLLBACK on an exception); then autocommit
      again for the reads after it. A write inside a write is a programming error and raises.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.autocommit_reads = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._writing = False

    @property
    def checked_out(self) -> bool:
        return self._conn is not None

    def connection(self) -> Connection:
        """The connection (checked out now if it is not yet), ready for reads."""
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()
            conn = self._conn = self.engine.connect()
            if self.autocommit_reads:
                conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def __call__(self, **_kw) -> Session:
        """A read Session (use as `with sessions() as s:`); it refuses to flush changes."""
        return _ReadSession(bind=self.connection(), expire_on_commit=False)

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """One write transaction on the connection: `with sessions.begin() as s:` commits at the end."""
        if self._writing:
            raise RuntimeError("a write transaction is already open on this connection")
        conn = self.connection()
        if conn.in_transaction():
            conn.rollback()  # a read's transaction ends before the write begins
        if self.autocommit_reads:
            conn.execution_options(isolation_level=self.engine.dialect.default_isolation_level)
        self._writing = True
        try:
            with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                yield session
        finally:
            self._writing = False
            if self.autocommit_reads and not (conn.closed or conn.invalidated):
                if conn.in_transaction():
                    conn.rollback()
                conn.execution_options(isolation_level="AUTOCOMMIT")

    def close(self) -> None:
        """Return the connection to the pool (rolling back anything left open)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
