"""The drill-down: the steps behind one figure of the overview, officers or trends pages,
with their instances (so the page can link to each)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from ..db import as_utc
from ..models import User
from .filters import Filters, utc
from .rows import DrillResult, DrillRow
from .scope import (
    completed_conds, due_soon, entry_rows, ht, in_period, is_late, is_pg, late_completed, late_conds, late_open,
    on_time, open_conds, pi, resolve,
)

FIGURES = ("open", "due_soon", "late_open", "paused", "completed", "on_time", "late_completed",
           "late", "returns")
DRILL_LIMIT = 500


def drill(session: Session, filters: Filters, figure: str, now: datetime, *, weekday: int | None = None,
          limit: int = DRILL_LIMIT, offset: int = 0) -> DrillResult:
    """The steps behind one figure.

    `figure` is one of FIGURES; narrow `filters` (process_key, step, officer_id, start/end)
    to the cell the user clicked. `weekday` (0 = Monday) narrows "late" to a heatmap cell;
    `offset` skips that many rows (pages of `limit`).
    """
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}")
    now = utc(now)
    scope = resolve(session, filters)
    if scope.empty:
        return DrillResult([], 0, figure)
    if figure in ("open", "due_soon", "late_open", "paused"):
        conds = open_conds(filters, scope)
        conds.append({"open": true(), "due_soon": due_soon(now), "late_open": late_open(now),
                      "paused": ht.c.paused_at.is_not(None)}[figure])
        order = [ht.c.due_at, ht.c.id]
    elif figure in ("completed", "on_time", "late_completed"):
        conds = completed_conds(filters, scope)
        if figure == "on_time":
            conds.append(on_time())
        elif figure == "late_completed":
            conds.append(late_completed())
        order = [ht.c.completed_at.desc(), ht.c.id.desc()]
    elif figure == "late":
        conds = [*scope.conds, *late_conds(filters, scope, now)]
        if weekday is not None:
            conds.append(scope.zones.local_weekday(ht.c.due_at, ht.c.office_id, is_pg(session)) == int(weekday))
        order = [ht.c.due_at.desc(), ht.c.id.desc()]
    else:  # returns
        s = entry_rows(filters, scope)
        conds = [ht.c.id.in_(select(s.c.id).where(s.c.rn > 1, *in_period(s.c.ready_at, filters, scope,
                                                                          s.c.office_id)))]
        order = [ht.c.ready_at.desc(), ht.c.id.desc()]

    total = session.scalar(select(func.count()).select_from(ht).where(*conds))
    person = func.coalesce(ht.c.completed_by_id, ht.c.assignee_id)
    q = (select(ht, pi.c.subject, pi.c.status.label("instance_status"), User.full_name)
         .select_from(ht.join(pi, pi.c.id == ht.c.instance_id).outerjoin(User, User.id == person))
         .where(*conds).order_by(*order).offset(offset).limit(limit))
    rows = []
    for r in session.execute(q):
        sop = scope.sops.get(scope.version_def.get(r.version_id))
        if sop is None:
            continue
        due, done = as_utc(r.due_at), as_utc(r.completed_at)
        rows.append(DrillRow(r.id, r.instance_id, r.subject, r.instance_status, sop.office_code, sop.key, sop.name,
                             r.bpmn_id, r.name, r.state, r.full_name, as_utc(r.ready_at), due, done,
                             r.working_minutes, r.mutu_baku_minutes, is_late(due, done, r.paused_at, now),
                             r.paused_at is not None, sop.tz))
    return DrillResult(rows, int(total or 0), figure)
