"""The completion hot path (Core statements on the Session's connection, engine/sqltx.py + uow.py):
what it writes reads back the same through the ORM on both databases, a completion while the
clock is paused closes the pause, and PostgreSQL keeps its prepared statements across the
ROLLBACK that ends every read-only Session."""
import inspect
import os
import time

import psycopg
import pytest
from sqlalchemy import select, text

from engine.db import make_engine
from engine.models import AuditEvent, Deadline, HumanTask, TaskPause

from .conftest import PG_ADMIN_URL
from .helpers import open_task
from .sopdata import DPMK, STEP_DATA
from .test_sla import at, aware, wib

ADMIN = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


def test_completion_while_paused_closes_the_pause_and_rows_read_back(services, demo):
    rt = services.runtime
    penerima = demo["dpmk.penerima"]
    at(services, wib(2026, 11, 23, 8, 0))  # Monday
    iid = rt.start(penerima, DPMK, "Selesai saat jeda")
    task = open_task(services, iid)
    at(services, wib(2026, 11, 23, 9, 0))
    rt.set_pause_mode(None, "dpmk", "immediate")
    rt.pause(penerima, task.id, "Menunggu foto")
    at(services, wib(2026, 11, 23, 10, 30))
    (next_id,) = rt.complete(penerima, task.id, STEP_DATA[(DPMK, "step1")])
    with services.sessions() as session:
        done = session.get(HumanTask, task.id)
        # 60 working minutes before the pause; the 90 paused minutes do not count
        assert done.working_minutes == pytest.approx(60)
        assert done.state == "completed" and done.paused_at is None and done.pause_reason is None
        assert done.assignee_id == penerima and done.completed_by_id == penerima
        assert aware(done.claimed_at) == wib(2026, 11, 23, 8, 0)  # held by its starter since the start
        assert aware(done.completed_at) == wib(2026, 11, 23, 10, 30)
        assert done.data["nomor_agenda"] == "001/DPMK/2026"  # issued from the Buku Agenda, not typed
        pause = session.scalar(select(TaskPause).where(TaskPause.human_task_id == task.id))
        assert pause.resume_reason == "completed" and pause.resumed_by_id == penerima
        assert aware(pause.resumed_at) == wib(2026, 11, 23, 10, 30)
        statuses = {d.status for d in session.scalars(select(Deadline).where(Deadline.human_task_id == task.id))}
        assert statuses == {"cancelled"}
        # the next step, written by the mirror: times are the clock's, the due time 15 working minutes on
        step2 = session.get(HumanTask, next_id)
        assert aware(step2.ready_at) == wib(2026, 11, 23, 10, 30)
        assert aware(step2.due_at) == wib(2026, 11, 23, 10, 45)
        assert step2.state == "ready" and step2.bpmn_id == "step2" and step2.group_id is not None
        levels = {d.level for d in session.scalars(select(Deadline).where(Deadline.human_task_id == next_id))}
        assert levels == {"warn", "breach"}
        kinds = [e.kind for e in session.scalars(select(AuditEvent).where(AuditEvent.instance_id == iid)
                                                 .order_by(AuditEvent.id))]
    assert kinds[-2:] == ["task_completed", "task_ready"]


def test_psycopg_is_the_exact_version_the_prepared_statement_hook_was_written_for():
    """engine/db.py keep_prepared_on_rollback patches psycopg internals: an upgrade must fail
    here first, so the hook is re-checked (then update PSYCOPG_TESTED and the pin together)."""
    from engine.db import PSYCOPG_TESTED
    assert psycopg.__version__ == PSYCOPG_TESTED, (
        f"psycopg {psycopg.__version__} is not {PSYCOPG_TESTED}: re-check engine/db.py keep_prepared_on_rollback")
    # the rollback clears the prepared statements through `_prepared.clear()`, which the hook suspends
    assert "self._prepared.clear()" in inspect.getsource(psycopg.Connection._rollback_gen)


def test_prepared_statements_survive_read_only_sessions(pg_url):
    """Without the hook in engine/db.py each read-only Session's ROLLBACK makes psycopg forget
    every prepared statement, so a statement run once per unit of work is never prepared."""
    engine = make_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
                         if pg_url.startswith("postgresql://") else pg_url, pool_size=1, max_overflow=0)
    try:
        for _ in range(8):
            with engine.connect() as conn:  # read-only: ends with ROLLBACK
                conn.execute(text("SELECT count(*) FROM office WHERE id > :n"), {"n": 0}).scalar()
        with engine.connect() as conn:
            prepared = conn.execute(text(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM office WHERE id >%'")).scalar()
        assert prepared == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has no server to end a session
def test_a_connection_the_server_closed_is_replaced_without_an_error(services, demo):
    """No pre-ping SELECT: a pooled connection the server ended is noticed at checkout."""
    rt = services.runtime
    rt.list_tasks(demo["dpmk.penerima"], "mine")  # a pooled connection exists now
    with services.engine.connect() as conn:
        pids = {conn.execute(text("SELECT pg_backend_pid()")).scalar()}
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)  # the server's goodbye reaches the socket
    iid = rt.start(demo["dpmk.penerima"], DPMK, "Setelah koneksi diputus")
    assert open_task(services, iid).bpmn_id == "step1"


def test_a_connection_on_a_high_descriptor_is_used(pg_url):
    """A process holding many sockets (a web node under load, the regency bench's client) gets
    database connections on descriptors >= 1024, which select() cannot watch: the checkout check
    must still accept them (it refused every one, fresh ones too, before it used poll())."""
    resource = pytest.importorskip("resource")
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("the open-files limit is under 1,200 here")
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    engine = make_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
                         if pg_url.startswith("postgresql://") else pg_url, pool_size=1, max_overflow=0)
    try:
        for _ in range(3):  # the first checkout opens the connection, the next ones reuse it
            with engine.connect() as conn:
                assert conn.connection.dbapi_connection.fileno() >= 1024
                assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
        for fd in fillers:
            os.close(fd)
