"""One web request checks out at most one database connection (webui/db.py, engine.db.OneConnection).

The pool's `checkout` event is counted around each request, on SQLite and PostgreSQL: the
user loader, the page's reads and the engine service that writes all share one connection,
and a write runs in its own transaction on it.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from engine.db import OneConnection, WriteOutsideTransaction
from engine.models import HumanTask, User

from .test_web import app, login, users  # noqa: F401 (fixtures)
from .test_dashboard_figures import history  # noqa: F401 (fixture)
from .test_web_fastpath import _step2, _step2_form


@contextmanager
def checkouts(services):
    counted: list[int] = []
    listener = lambda *_args: counted.append(1)  # noqa: E731
    event.listen(services.engine, "checkout", listener)
    try:
        yield counted
    finally:
        event.remove(services.engine, "checkout", listener)


def test_inbox_step_page_and_completion_use_one_connection_each(app, services, users):
    task_id = _step2(app, services)
    client = login(app, "dpmk.kasubbag")
    form = _step2_form(services, users, task_id)
    with checkouts(services) as inbox:
        response = client.get("/inbox?tab=group")
    assert response.status_code == 200 and f"/tasks/{task_id}".encode() in response.data
    assert len(inbox) == 1
    with checkouts(services) as page:
        response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    assert len(page) == 1
    with checkouts(services) as post:
        response = client.post(f"/tasks/{task_id}", data=form)
    assert response.status_code == 302, response.data[:800]
    assert len(post) == 1
    with services.sessions() as session:  # the write committed on that one connection
        task = session.get(HumanTask, task_id)
        assert task.state == "completed" and task.completed_by_id == users["dpmk.kasubbag"]


def test_other_pages_and_posts_use_at_most_one_connection(app, services, users):
    task_id = _step2(app, services)
    kasubbag = login(app, "dpmk.kasubbag")
    sekdin = login(app, "dpmk.sekdin")
    requests = [
        (kasubbag, "post", f"/tasks/{task_id}/claim", {}),
        (kasubbag, "post", f"/tasks/{task_id}/claim", {"tab": "mine"}),  # htmx-less again: no change
        (kasubbag, "post", f"/tasks/{task_id}", {"action": "draft"}),
        (kasubbag, "post", f"/tasks/{task_id}/unclaim", {}),
        (kasubbag, "get", "/start", None),
        (kasubbag, "get", "/notifications/", None),
        (kasubbag, "get", "/profile", None),
        (kasubbag, "post", "/profile", {"locale": "en"}),
        (kasubbag, "post", "/profile", {"section": "channels", "channels": ["inapp"]}),
        (sekdin, "get", "/dashboard", None),
        (sekdin, "get", "/inbox/panel?tab=overdue", None),
    ]
    for client, method, url, data in requests:
        with checkouts(services) as counted:
            response = getattr(client, method)(url, data=data) if data is not None else getattr(client, method)(url)
        assert response.status_code in (200, 302), (url, response.status_code, response.data[:500])
        assert len(counted) <= 1, (method, url, len(counted))
    with services.sessions() as session:
        assert session.scalar(select(User.locale).where(User.id == users["dpmk.kasubbag"])) == "en"


def test_a_write_never_joins_a_read_transaction(services, users):
    db = OneConnection(services.engine)
    try:
        with db() as reading:
            reading.get(User, users["dpmk.penerima"])
            with db.begin() as writing:  # ends the read's transaction first, then its own BEGIN .. COMMIT
                writing.get(User, users["dpmk.penerima"]).full_name = "Nama Baru"
            assert not db.connection().in_transaction() or services.engine.dialect.name == "sqlite"
        with pytest.raises(RuntimeError), db.begin():
            with db.begin():
                pass
        with pytest.raises(WriteOutsideTransaction), db() as reading:  # a read session refuses to write
            reading.get(User, users["dpmk.penerima"]).full_name = "Tanpa Transaksi"
            reading.flush()
    finally:
        db.close()
    with services.sessions() as session:  # only the write's change was committed
        assert session.get(User, users["dpmk.penerima"]).full_name == "Nama Baru"


def test_a_failed_write_rolls_back_and_the_connection_reads_on(services, users):
    db = OneConnection(services.engine)
    try:
        with pytest.raises(ZeroDivisionError), db.begin() as writing:
            writing.get(User, users["dpmk.penerima"]).full_name = "Tidak Jadi"
            writing.flush()
            1 / 0
        with db() as reading:
            assert reading.get(User, users["dpmk.penerima"]).full_name != "Tidak Jadi"
    finally:
        db.close()


def test_the_dashboard_builds_its_rollup_on_the_same_connection(services, history):
    """The first dashboard request over past days builds their rollup blocks (a write inside a
    read page): on the request's connection, committed, with no second checkout."""
    import json

    from engine.models import StatsBlock
    from webui import create_app

    from .test_dashboard_figures import NOW
    services.runtime.clock = lambda: NOW
    app = create_app(services=services, config={"TESTING": True, "WTF_CSRF_ENABLED": False,
                                                 "RATELIMIT_ENABLED": False})
    passwords = json.loads((services.settings.data_dir / "demo-logins.json").read_text())
    client = app.test_client()
    assert client.post("/login", data={"username": "dpmk.sekdin", "password": passwords["dpmk.sekdin"]}).status_code == 302
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StatsBlock)) == 0
    with checkouts(services) as counted:
        response = client.get("/dashboard?start=2026-03-02&end=2026-03-15")
    assert response.status_code == 200
    assert len(counted) == 1
    if services.engine.dialect.name == "postgresql":  # SQLite builds it in the page's own read transaction
        with services.sessions() as session:
            assert session.scalar(select(func.count()).select_from(StatsBlock)) > 0
