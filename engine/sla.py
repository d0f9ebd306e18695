"""The SLA clock: due times in the office's working time.

One due time everywhere: computed here when a step becomes ready, stored on the human
task, written into the step's BPMN timer, and shown by every adapter.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .calendar import OfficeCalendar, WeeklySchedule
from .models import CalendarOverride, Office


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
