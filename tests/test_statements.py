"""The engine's SQL is built from the tables of engine/models.py (engine/sqltx.py, engine/uow.py):
every statement it has built, after the whole life of an instance has run through the engine,
is prepared by the real database migrated by Alembic, so a statement and its table cannot
disagree unnoticed (and tests/test_migrations.py keeps the models and the migrations equal)."""
from datetime import date

import pytest
from sqlalchemy import text

from engine import uow
from engine.sqltx import DIALECTS, Stmt

from .helpers import open_task, work_step
from .sopdata import DPMK, STEP_DATA
from .test_sla import at, wib


def _run_every_kind_of_change(services, demo):
    """Start, claim, unclaim, reassign, draft, pause, resume, complete, calendar change, timers, tick."""
    rt = services.runtime
    at(services, wib(2026, 11, 23, 8, 0))
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Semua perubahan")
    task = open_task(services, iid)
    rt.claim(demo["dpmk.penerima"], task.id)
    rt.save_draft(demo["dpmk.penerima"], task.id, {"catatan": "draf"})
    rt.unclaim(demo["dpmk.penerima"], task.id)
    rt.set_pause_mode(None, "dpmk", "immediate")
    rt.pause(demo["dpmk.penerima"], task.id, "Menunggu")
    rt.set_override(None, "dpmk", date(2026, 11, 24), False, "rapat")
    rt.resume(demo["dpmk.penerima"], task.id, "Lanjut")
    rt.claim(demo["dpmk.penerima"], task.id)
    rt.complete(demo["dpmk.penerima"], task.id, STEP_DATA[(DPMK, "step1")])
    at(services, wib(2026, 11, 30, 8, 0))
    rt.run_due_timers()
    rt.deadline_tick(services.settings, lambda ids: None)
    work_step(services, demo, DPMK, iid, "step2")


def test_every_statement_is_prepared_by_the_migrated_database(services, demo):
    _run_every_kind_of_change(services, demo)
    dialect = services.engine.dialect.name
    statements = [s for s in Stmt.built if s.only in (None, dialect)]
    assert len(statements) > 20
    with services.engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        for stmt in statements:
            sql, defaults = stmt.sql(dialect)
            names = stmt.core.compile(dialect=DIALECTS[dialect]).params
            cur = dbapi.cursor()
            try:
                cur.execute("EXPLAIN " + sql, {**{k: None for k in names}, **defaults})
            except Exception as exc:  # the message names the statement and the database's complaint
                pytest.fail(f"{sql!r} does not fit the migrated schema: {exc}")
            finally:
                cur.close()
            if dialect == "postgresql":
                conn.rollback()


def test_a_statement_naming_a_column_its_table_lacks_fails_when_built():
    with pytest.raises(Exception):
        uow.task_update(("no_such_column",), ()).sql("sqlite")
    with pytest.raises(KeyError):
        uow.task_update(("state",), ("no_such_column",))
