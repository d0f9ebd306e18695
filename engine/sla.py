"""The SLA clock: due times in the office's working time.

One due time everywhere: computed here when a step becomes ready, stored on the human
task, written into the step's BPMN timer, and shown by every adapter.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from .calendar import OfficeCalendar, WeeklySchedule
from .db import as_utc
from .models import CalendarOverride, Office, TaskPause


class CalendarCache:
    """Office calendars keyed by (office, revision): rebuilt only when an admin changes one."""

    def __init__(self):
        self._by_office: dict[int, tuple[int, OfficeCalendar]] = {}

    def get(self, session: Session, office_id: int, revision: int | None = None) -> OfficeCalendar:
        """The office's calendar; `revision`, when the caller already read it, saves a query."""
        cached = self._by_office.get(office_id)
        if cached and revision is not None and cached[0] == revision:
            return cached[1]
        office = session.get(Office, office_id)
        if cached and cached[0] == office.calendar_revision:
            return cached[1]
        overrides = session.scalars(select(CalendarOverride).where(CalendarOverride.office_id == office_id)).all()
        calendar = OfficeCalendar(
            schedule=WeeklySchedule.from_dict(office.schedule) if office.schedule else None,
            tz=office.timezone,
            extra_days_off=[o.day for o in overrides if not o.working],
            extra_working_days=[o.day for o in overrides if o.working],
            include_cuti_bersama=office.include_cuti_bersama,
        )
        self._by_office[office_id] = (office.calendar_revision, calendar)
        return calendar


def due_time(calendar: OfficeCalendar, ready_at: datetime, minutes: float | None,
             paused_minutes: float = 0.0) -> datetime | None:
    if minutes is None:
        return None
    return calendar.add_working_time(ready_at, minutes + paused_minutes)


def due_of(calendar: OfficeCalendar, ready_at: datetime, minutes: float | None, fraction: float,
           paused: float) -> datetime:
    """When `fraction` of a step's Mutu Baku is used up, its clock having stood still `paused` minutes."""
    return calendar.add_working_time(as_utc(ready_at), fraction * (minutes or 0) + paused)


_PAUSES = TaskPause.__table__


def paused_minutes(session: Session, task_id: int, calendar: OfficeCalendar) -> float:
    """Working minutes the step's clock stood still (closed pauses), under the current calendar."""
    pauses = session.execute(select(_PAUSES.c.paused_at, _PAUSES.c.resumed_at).where(
        _PAUSES.c.human_task_id == task_id, _PAUSES.c.resumed_at.is_not(None))).all()
    return sum(calendar.working_minutes_between(as_utc(a), as_utc(b)) for a, b in pauses)


# ---- late and overdue: the one definition, in Python and in SQL ------------------------------
# An open step is overdue when its due time has passed and its clock is not paused (a paused
# step is "held", never late). A completed step was finished late when it was completed
# after its due time. A step without a Mutu Baku (no due time) is never late.

def is_overdue(state: str, due_at: datetime | None, paused_at: datetime | None, now: datetime) -> bool:
    return state == "ready" and due_at is not None and paused_at is None and as_utc(due_at) < now


def overdue_sql(c, now):
    """`is_overdue` as SQL; `c` is HumanTask, its table's `.c`, or an alias's `.c`; `now` a value or bindparam."""
    return and_(c.state == "ready", c.paused_at.is_(None), c.due_at < now)


def is_finished_late(due_at: datetime | None, completed_at: datetime | None) -> bool:
    return due_at is not None and completed_at is not None and as_utc(completed_at) > as_utc(due_at)


def finished_late_sql(c):
    """`is_finished_late` as SQL (NULL, i.e. not late, without a due time)."""
    return c.completed_at > c.due_at


def working_left(calendar: OfficeCalendar, due_at: datetime | None, now: datetime) -> float | None:
    """Working minutes until the due time (negative: overdue by that much): the figure the
    Mutu Baku counts, which is not the wall-clock time when a break or the evening falls between."""
    if due_at is None:
        return None
    if due_at >= now:
        return calendar.working_minutes_between(now, due_at)
    return -calendar.working_minutes_between(due_at, now)


def open_left(calendar: OfficeCalendar, state: str, due_at: datetime | None, paused: bool,
              now: datetime) -> float | None:
    """Working minutes left on an open step whose clock runs (None when done, paused or without a
    Mutu Baku): the one figure every SLA badge shows, on the step page and in the inbox alike."""
    if state != "ready" or paused or due_at is None:
        return None
    return working_left(calendar, as_utc(due_at), now)


def off_clock(calendar: OfficeCalendar, start: datetime, end: datetime, limit: int = 4) -> list[tuple[datetime, datetime]]:
    """The stretches between `start` and `end` the Mutu Baku clock does not count (a lunch break,
    the evening, a day off), as (from, to) instants, the first `limit` of them: why a 120-minute
    step started at 11:00 is due at 14:00."""
    if end <= start:
        return []
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    day = start.astimezone(calendar.tz).date()
    last = end.astimezone(calendar.tz).date()
    while day <= last and len(gaps) < limit:
        for a, b in calendar.spans_on(day):
            if b <= cursor or a >= end:
                continue
            if a > cursor:
                gaps.append((cursor, a))
            cursor = max(cursor, b)
        day += timedelta(days=1)
    return gaps[:limit]
