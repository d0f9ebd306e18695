"""The request's one database connection, Flask-tutorial style: `get_db()` and a teardown.

Everything a request does with the database goes through one `engine.db.OneConnection`:
the user loader and the small reads (webui/reads.py), the views' read sessions, and the
engine services that write. `current_services()` (webui/__init__.py) hands the views a copy
of the process's Services whose `sessions` is this request's factory and whose `runtime`
is bound to it (`Runtime.bound`), so a view calls the engine exactly as before and one
request checks out at most one connection (tests/test_one_connection.py counts them).
The connection is checked out at the first use, so a request that reads nothing (static
files, /healthz) checks out none, and is returned to the pool when the request ends.
"""
from __future__ import annotations

import dataclasses

from flask import current_app, g

from engine.db import OneConnection
from engine.services import Services


def get_db() -> OneConnection:
    """The request's connection and session factory (created on first use)."""
    db = g.get("_lajur_db")
    if db is None:
        db = g._lajur_db = OneConnection(current_app.extensions["lajur"].engine)
    return db


def request_services() -> Services:
    """The process's Services, with the session factory and the runtime of this request."""
    bound = g.get("_lajur_services")
    if bound is None:
        services: Services = current_app.extensions["lajur"]
        db = get_db()
        bound = g._lajur_services = dataclasses.replace(services, sessions=db, runtime=services.runtime.bound(db))
    return bound


def close_db(_exc=None) -> None:
    g.pop("_lajur_services", None)
    db = g.pop("_lajur_db", None)
    if db is not None:
        db.close()


def init_app(app) -> None:
    app.teardown_request(close_db)
    app.teardown_appcontext(close_db)
