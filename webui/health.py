"""`/readyz`: can this web node serve (database and broker reachable)? Beside `/healthz`
(the process is alive), for a load balancer or an orchestrator: a node whose database is
gone answers 503 and is taken out of rotation instead of failing every request.

No login (it reveals only "ok" or which dependency failed), never cached, and bounded:
each check has a short timeout, so a hung dependency cannot hold the worker.
"""
from __future__ import annotations

from flask import Blueprint
from kombu import Connection
from sqlalchemy import text

from . import current_services
from .db import get_db

bp = Blueprint("health", __name__)

TIMEOUT = 2.0  # seconds per dependency


def _database() -> str | None:
    try:
        get_db().connection().execute(text("SELECT 1"))  # the request's one connection (webui/db.py)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"database: {exc.__class__.__name__}"


def _broker() -> str | None:
    url = current_services().settings.broker_url
    try:
        with Connection(url, connect_timeout=TIMEOUT) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"broker: {exc.__class__.__name__}"


@bp.get("/readyz")
def readyz():
    failures = [f for f in (_database(), _broker()) if f]
    body = "ok" if not failures else "not ready: " + "; ".join(failures)
    return body, 503 if failures else 200, {"Content-Type": "text/plain; charset=utf-8",
                                            "Cache-Control": "no-store"}
