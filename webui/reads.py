"""The small reads nearly every request makes, on one connection per request.

Every request loads the signed-in user; a step form post also reads the task's routing
columns, and a page reads the inbox tab counts and the unread badge. Through an ORM
Session each of these cost a pool checkout (with its ping), BEGIN, the statement and
ROLLBACK, and building the statement and its cache key anew: ~0.7 ms of CPU for the
one-row user lookup, ~0.9 ms for the tab counts.

Here each statement is built once (module constants with bind parameters, so SQLAlchemy
compiles it once) and runs on the request's one connection (webui/db.py), the same one the
views and the engine services use: in autocommit on PostgreSQL (every read is one
statement, so no BEGIN/ROLLBACK round trips). On SQLite a transaction takes the write lock
at BEGIN (engine.db), so there each block's transaction is ended at once and nothing is
held while the engine writes.

The statements and their rules are engine.queries' (user_view, user_view_with_head,
task_head, inbox_counts) and engine.notifications.unread_count; this module only decides
which connection they run on.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from flask import g, has_request_context, request
from sqlalchemy.engine import Connection

from engine import notifications, queries
from engine.queries import COUNT_CAP, TaskHead, UserView

from .db import get_db

# Views that check the task's head right after loading the user (a step form post): the user
# loader reads both at once (see user_view).
HEAD_WITH_USER = frozenset({"tasks.submit"})


@contextmanager
def connection() -> Iterator[Connection]:
    """The request's connection (webui/db.py), for one block of reads."""
    db = get_db()
    conn = db.connection()
    try:
        yield conn
    finally:
        if not db.autocommit_reads and conn.in_transaction():
            conn.rollback()


def user_view(user_id: int) -> UserView | None:
    """The active user (engine.queries.user_view). For a view in HEAD_WITH_USER the same
    statement also reads the head of the request's task, which task_head() then returns."""
    task_id = request.view_args.get("task_id") if has_request_context() and request.endpoint in HEAD_WITH_USER \
        else None
    with connection() as conn:
        if task_id is None:
            return queries.user_view(conn, user_id)
        user, head = queries.user_view_with_head(conn, user_id, task_id)
    g._lajur_head = (task_id, head)
    return user


def task_head(task_id: int) -> TaskHead | None:
    """The task's routing columns (engine.queries.task_head); read with the user when user_view() could."""
    read = g.pop("_lajur_head", None)
    if read is not None and read[0] == task_id:
        return read[1]
    with connection() as conn:
        return queries.task_head(conn, task_id)


def inbox_counts(user: UserView, now: datetime, cap: int = COUNT_CAP) -> dict[str, int]:
    with connection() as conn:
        return queries.inbox_counts(conn, user, now, cap)


def unread_count(user_id: int) -> int:
    with connection() as conn:
        return notifications.unread_count(conn, user_id)
