"""Read-only queries the web app needs beyond the Runtime's API.

They read mirrored tables only (never a workflow) and are written so that each one is
served by an index on `human_task`: the inbox with 100,000 open tasks has to answer in a
few milliseconds on an old office PC's server.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from .db import as_utc
from .inbox import TaskRow, returns_of
from .sla import open_left, overdue_sql

from .models import (Group, HumanTask, Office, ProcessDefinition, ProcessInstance, ProcessVersion, User,
                     user_group)


@dataclass(frozen=True)
class UserView:
    """What every page needs about the signed-in user, detached from any session."""

    id: int
    username: str
    full_name: str
    office_id: int | None
    office_name: str | None
    roles: frozenset[str]
    locale: str
    groups: tuple[str, ...]
    group_ids: frozenset[int]
    password_hash: str
    session_epoch: int = 0  # bumped on logout and password change (engine.accounts.end_sessions)


# Statements built once (bind parameters, so SQLAlchemy compiles each once): they run on
# nearly every request. `conn` below is a Session or a Connection.
_USER = (
    select(User.id, User.username, User.full_name, User.office_id, Office.name, User.roles, User.locale,
           User.password_hash, Group.id, Group.name, User.session_epoch)
    .outerjoin(Office, Office.id == User.office_id)
    .outerjoin(user_group, user_group.c.user_id == User.id)
    .outerjoin(Group, Group.id == user_group.c.group_id)
    .where(User.id == bindparam("user_id"), User.active.is_(True)).order_by(Group.name))
_HEAD_COLUMNS = (HumanTask.id, HumanTask.instance_id, HumanTask.office_id, HumanTask.version_id, HumanTask.bpmn_id,
                 HumanTask.state, HumanTask.assignee_id, HumanTask.group_id)
_HEAD = select(*_HEAD_COLUMNS).where(HumanTask.id == bindparam("task_id"))
# the user and one task's head (columns 11-18, NULL when there is no such task) in one statement
_USER_AND_HEAD = _USER.add_columns(*_HEAD_COLUMNS).outerjoin(HumanTask, HumanTask.id == bindparam("task_id"))


def _user_from_rows(rows) -> UserView | None:
    if not rows:
        return None
    row = rows[0]
    groups = [(r[8], r[9]) for r in rows if r[8] is not None]
    return UserView(id=row[0], username=row[1], full_name=row[2], office_id=row[3], office_name=row[4],
                    roles=frozenset(r for r in (row[5] or "").split(",") if r), locale=row[6] or "id",
                    groups=tuple(g[1] for g in groups), group_ids=frozenset(g[0] for g in groups),
                    password_hash=row[7], session_epoch=row[10])


def user_view(conn, user_id: int) -> UserView | None:
    """The active user with office name and lane names, in one round trip (runs on every request)."""
    return _user_from_rows(conn.execute(_USER, {"user_id": user_id}).all())


def user_view_with_head(conn, user_id: int, task_id: int) -> tuple[UserView | None, "TaskHead | None"]:
    """user_view and task_head in one round trip (a step form post needs both at once)."""
    rows = conn.execute(_USER_AND_HEAD, {"user_id": user_id, "task_id": task_id}).all()
    head = TaskHead(*rows[0][11:]) if rows and rows[0][11] is not None else None
    return _user_from_rows(rows), head


COUNT_CAP = 1000


def _counts_statement(supervisor: bool):
    """The four inbox tab counts in one statement, each capped (shown as "1000+").

    Each count is its own scalar subquery so the planner can use a different index for
    each (assignee, group, office+due, completed_by); one combined FILTER scan would read
    every open task of the office. The cap bounds the work: counting 25,000 overdue tasks
    exactly costs ~15 ms on every poll and tells a person nothing more than "over 1000".
    The lane ids are bound one value each (expanding), not a subquery: with a subquery the
    planner cannot use ix_human_task_group. Same rules as engine.inbox.task_select.
    """
    ht = HumanTask
    user, groups = bindparam("user_id"), bindparam("groups", expanding=True)
    ready = and_(ht.office_id == bindparam("office_id"), ht.state == "ready")
    mine = select(ht.id).where(ready, ht.assignee_id == user)
    group = select(ht.id).where(ready, ht.assignee_id.is_(None), ht.group_id.in_(groups))
    scope = [] if supervisor else [or_(ht.assignee_id == user, and_(ht.assignee_id.is_(None), ht.group_id.in_(groups)))]
    overdue = select(ht.id).where(ready, overdue_sql(ht, bindparam("now")), *scope)
    completed = select(ht.id).where(ht.office_id == bindparam("office_id"), ht.state == "completed",
                                    ht.completed_by_id == user)

    def capped(query):
        # ORDER BY due_at keeps the planner on the (..., state, due_at) indexes: with a bare
        # LIMIT it may choose a sequential scan that reads the other offices' rows first
        inner = query.order_by(ht.due_at).limit(bindparam("cap")).subquery()
        return select(func.count()).select_from(inner).scalar_subquery()
    return select(capped(mine), capped(group), capped(overdue), capped(completed))


_COUNTS = {False: _counts_statement(False), True: _counts_statement(True)}


def inbox_counts(conn, user: UserView, now: datetime, cap: int = COUNT_CAP) -> dict[str, int]:
    """Counts of the four inbox tabs in one round trip, each capped at `cap`."""
    params = {"office_id": user.office_id, "user_id": user.id, "groups": sorted(user.group_ids) or [-1],
              "now": now, "cap": cap}
    row = conn.execute(_COUNTS["supervisor" in user.roles], params).one()
    return {"mine": row[0], "group": row[1], "overdue": row[2], "completed": row[3]}


def task_row(session: Session, task_id: int, calendars=None, now: datetime | None = None) -> TaskRow | None:
    """One task as an inbox line (for redrawing a single row after claim/unclaim); with the
    runtime's CalendarCache and `now`, its working minutes left as in `inbox.list_tasks`."""
    ht = HumanTask
    r = session.execute(
        select(ht, ProcessInstance.subject, ProcessDefinition.key, ProcessDefinition.name, User.full_name)
        .join(ProcessInstance, ProcessInstance.id == ht.instance_id)
        .join(ProcessVersion, ProcessVersion.id == ht.version_id)
        .join(ProcessDefinition, ProcessDefinition.id == ProcessVersion.definition_id)
        .outerjoin(User, User.id == ht.assignee_id)
        .where(ht.id == task_id)).first()
    if r is None:
        return None
    t = r[0]
    return TaskRow(id=t.id, instance_id=t.instance_id, subject=r[1], process_key=r[2], process_name=r[3],
                   bpmn_id=t.bpmn_id, name=t.name, lane=t.lane, state=t.state, assignee_id=t.assignee_id,
                   assignee=r[4],
                   ready_at=as_utc(t.ready_at), due_at=as_utc(t.due_at), completed_at=as_utc(t.completed_at),
                   mutu_baku_minutes=t.mutu_baku_minutes, paused=t.paused_at is not None,
                   returned=returns_of(session, [(t.instance_id, t.id)]).get(t.id) if t.state == "ready" else None,
                   left_minutes=open_left(calendars.get(session, t.office_id), t.state, t.due_at,
                                          t.paused_at is not None, now)
                   if calendars is not None and now is not None and t.state == "ready" else None)


@dataclass(frozen=True)
class TaskHead:
    """The few columns of a task needed to route a request, without the JSON payloads."""

    id: int
    instance_id: int
    office_id: int
    version_id: int
    bpmn_id: str
    state: str
    assignee_id: int | None
    group_id: int | None


def task_head(conn, task_id: int) -> TaskHead | None:
    row = conn.execute(_HEAD, {"task_id": task_id}).first()
    return TaskHead(*row) if row else None


def sop_cards(session: Session, definition_ids: list[int]) -> dict[int, dict]:
    """definition id -> {sop, steps, version} of its latest version, for the start page."""
    if not definition_ids:
        return {}
    rows = session.execute(
        select(ProcessDefinition.id, ProcessVersion.sop, ProcessVersion.steps, ProcessVersion.version)
        .join(ProcessVersion, ProcessVersion.id == ProcessDefinition.latest_version_id)
        .where(ProcessDefinition.id.in_(definition_ids)))
    return {r[0]: {"sop": r[1], "steps": r[2], "version": r[3]} for r in rows}


def open_task_ids(session: Session, instance_id: int, user_id: int) -> list[int]:
    """Open steps of an instance in one of the user's lanes (where to go after starting it)."""
    groups = select(user_group.c.group_id).where(user_group.c.user_id == user_id)
    return list(session.scalars(select(HumanTask.id).where(
        HumanTask.instance_id == instance_id, HumanTask.state == "ready",
        HumanTask.group_id.in_(groups)).order_by(HumanTask.id)))


def user_names(session: Session, user_ids: set[int]) -> dict[int, str]:
    ids = [i for i in user_ids if i is not None]
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())
