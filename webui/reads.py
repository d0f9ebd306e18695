"""The small reads nearly every request makes, on one connection per request.

Every request loads the signed-in user; a step form post also reads the task's routing
columns, and a page reads the inbox tab counts and the unread badge. Through an ORM
Session each of these cost a pool checkout (with its ping), BEGIN, the statement and
ROLLBACK, and building the statement and its cache key anew: ~0.7 ms of CPU for the
one-row user lookup, ~0.9 ms for the tab counts.

Here each statement is built once (module constants with bind parameters, so SQLAlchemy
compiles it once) and runs on the request's read connection: checked out at the first
read, in autocommit on PostgreSQL (every read is one statement, so no BEGIN/ROLLBACK
round trips), and returned to the pool when the request ends. On SQLite a transaction
takes the write lock at BEGIN (engine.db), so there each block's transaction is ended
at once and nothing is held while the engine writes.

The rules are those of engine.queries (user_view, task_head, inbox_counts) and
engine.notifications.unread_count, which the CLI and the tests keep using.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from flask import current_app, g, has_request_context, request
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.engine import Connection

from engine.models import Group, HumanTask, Notification, Office, User, user_group
from engine.queries import COUNT_CAP, TaskHead, UserView

_USER = (
    select(User.id, User.username, User.full_name, User.office_id, Office.name, User.roles, User.locale,
           User.password_hash, Group.id, Group.name)
    .outerjoin(Office, Office.id == User.office_id)
    .outerjoin(user_group, user_group.c.user_id == User.id)
    .outerjoin(Group, Group.id == user_group.c.group_id)
    .where(User.id == bindparam("user_id"), User.active.is_(True)).order_by(Group.name))

_HEAD_COLUMNS = (HumanTask.id, HumanTask.instance_id, HumanTask.office_id, HumanTask.version_id, HumanTask.bpmn_id,
                 HumanTask.state, HumanTask.assignee_id, HumanTask.group_id)
_HEAD = select(*_HEAD_COLUMNS).where(HumanTask.id == bindparam("task_id"))
# The user and one task's head (columns 10-17, NULL when there is no such task) in one statement.
_USER_AND_HEAD = _USER.add_columns(*_HEAD_COLUMNS).outerjoin(HumanTask, HumanTask.id == bindparam("task_id"))

# Views that check the task's head right after loading the user (a step form post): the user
# loader reads both at once (see user_view).
HEAD_WITH_USER = frozenset({"tasks.submit"})

_UNREAD = select(func.count()).select_from(Notification).where(
    Notification.user_id == bindparam("user_id"), Notification.inapp.is_(True), Notification.read_at.is_(None))


def _counts_statement(supervisor: bool):
    """The four tab counts in one statement (see engine.queries.inbox_counts for why it is shaped so).

    Parameters: office_id, user_id, groups (the user's lane ids, expanded to literals-like
    bind values so the planner uses ix_human_task_group), now, cap.
    """
    ht = HumanTask
    user, groups = bindparam("user_id"), bindparam("groups", expanding=True)
    ready = and_(ht.office_id == bindparam("office_id"), ht.state == "ready")
    mine = select(ht.id).where(ready, ht.assignee_id == user)
    group = select(ht.id).where(ready, ht.assignee_id.is_(None), ht.group_id.in_(groups))
    scope = [] if supervisor else [or_(ht.assignee_id == user, and_(ht.assignee_id.is_(None), ht.group_id.in_(groups)))]
    overdue = select(ht.id).where(ready, ht.due_at < bindparam("now"), ht.paused_at.is_(None), *scope)
    completed = select(ht.id).where(ht.office_id == bindparam("office_id"), ht.state == "completed",
                                    ht.completed_by_id == user)

    def capped(query):
        # ORDER BY due_at keeps the planner on the (..., state, due_at) indexes
        inner = query.order_by(ht.due_at).limit(bindparam("cap")).subquery()
        return select(func.count()).select_from(inner).scalar_subquery()
    return select(capped(mine), capped(group), capped(overdue), capped(completed))


_COUNTS = {False: _counts_statement(False), True: _counts_statement(True)}


def init_app(app) -> None:
    services = app.extensions["lajur"]
    engine = services.engine
    autocommit = engine.dialect.name == "postgresql"
    app.extensions["lajur_reads"] = (engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine,
                                     autocommit)
    app.teardown_request(_release)
    app.teardown_appcontext(_release)


def _release(_exc=None) -> None:
    g.pop("_lajur_head", None)
    conn = g.pop("_lajur_reads", None)
    if conn is not None:
        conn.close()


@contextmanager
def connection() -> Iterator[Connection]:
    """The request's read connection (checked out on first use, returned when the request ends)."""
    engine, autocommit = current_app.extensions["lajur_reads"]
    conn = g.get("_lajur_reads")
    if conn is None:
        conn = g._lajur_reads = engine.connect()
    try:
        yield conn
    finally:
        if not autocommit and conn.in_transaction():
            conn.rollback()


def user_view(user_id: int) -> UserView | None:
    """The active user with office name and lane names (engine.queries.user_view), in one statement.

    For a view in HEAD_WITH_USER the same statement also reads the head of the request's
    task, which task_head() then returns without a second statement.
    """
    task_id = request.view_args.get("task_id") if has_request_context() and request.endpoint in HEAD_WITH_USER \
        else None
    with connection() as conn:
        if task_id is None:
            rows = conn.execute(_USER, {"user_id": user_id}).all()
        else:
            rows = conn.execute(_USER_AND_HEAD, {"user_id": user_id, "task_id": task_id}).all()
    if not rows:
        return None
    row = rows[0]
    if task_id is not None:
        g._lajur_head = (task_id, TaskHead(*row[10:]) if row[10] is not None else None)
    groups = [(r[8], r[9]) for r in rows if r[8] is not None]
    return UserView(id=row[0], username=row[1], full_name=row[2], office_id=row[3], office_name=row[4],
                    roles=frozenset(r for r in (row[5] or "").split(",") if r), locale=row[6] or "id",
                    groups=tuple(g[1] for g in groups), group_ids=frozenset(g[0] for g in groups),
                    password_hash=row[7])


def task_head(task_id: int) -> TaskHead | None:
    """The task's routing columns (engine.queries.task_head); read with the user when user_view() could."""
    read = g.pop("_lajur_head", None)
    if read is not None and read[0] == task_id:
        return read[1]
    with connection() as conn:
        row = conn.execute(_HEAD, {"task_id": task_id}).first()
    return TaskHead(*row) if row else None


def inbox_counts(user: UserView, now: datetime, cap: int = COUNT_CAP) -> dict[str, int]:
    """Counts of the four inbox tabs, each capped at `cap` (engine.queries.inbox_counts)."""
    params = {"office_id": user.office_id, "user_id": user.id, "groups": sorted(user.group_ids) or [-1],
              "now": now, "cap": cap}
    with connection() as conn:
        row = conn.execute(_COUNTS["supervisor" in user.roles], params).one()
    return {"mine": row[0], "group": row[1], "overdue": row[2], "completed": row[3]}


def unread_count(user_id: int) -> int:
    with connection() as conn:
        return conn.execute(_UNREAD, {"user_id": user_id}).scalar() or 0
