"""The office calendar: working time, holidays, overrides; the due time of a Mutu Baku."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from engine.calendar import WeeklySchedule, parse_iso_minutes
from engine.errors import FormInvalid, NotFound
from engine.models import CalendarOverride, Office
from engine.sla import due_time

from .base import bp, now, responses, services, spec, user
from .schemas import Calendar, CalendarQuery, DueQuery, DueTime, Holiday, OverrideItem


def _office_id() -> int:
    office_id = user().office_id
    if office_id is None:
        raise NotFound("the regency admin has no office calendar; use an office account")
    return office_id


@bp.get("/calendar")
@spec.validate(resp=responses({"HTTP_200": Calendar}), tags=["calendar"], operation_id="getCalendar")
def get_calendar(query: CalendarQuery):
    """The caller's office calendar: weekly schedule, the year's holidays (with cuti bersama when the
    office counts them) and the office's overrides."""
    office_id = _office_id()
    svc = services()
    year = query.year or now().year
    with svc.sessions() as db:
        office = db.get(Office, office_id)
        calendar = svc.runtime.calendars.get(db, office_id, office.calendar_revision)
        overrides = db.scalars(select(CalendarOverride).where(CalendarOverride.office_id == office_id)
                               .order_by(CalendarOverride.day)).all()
        schedule = WeeklySchedule.from_dict(office.schedule) if office.schedule else WeeklySchedule.default()
        body = Calendar(office=office.code, timezone=office.timezone, schedule=schedule.to_dict(),
                        include_cuti_bersama=office.include_cuti_bersama,
                        holidays=_holidays(calendar, year),
                        overrides=[OverrideItem(day=o.day, working=o.working, note=o.note) for o in overrides])
    return body


def _holidays(calendar, year: int) -> list[Holiday]:
    out, day = [], date(year, 1, 1)
    while day.year == year:
        name = calendar.holiday_name(day)
        if name:
            out.append(Holiday(day=day, name=name, working=calendar.is_working_day(day)))
        day += timedelta(days=1)
    return out


@bp.get("/calendar/due")
@spec.validate(resp=responses({"HTTP_200": DueTime}), tags=["calendar"], operation_id="computeDueTime")
def due(query: DueQuery):
    """When a step ready at `start` with this Mutu Baku falls due, counted in the office's working time."""
    if query.start.tzinfo is None:
        raise FormInvalid({"start": ["give the offset, e.g. 2026-12-01T08:00:00+07:00"]})
    if not 2000 <= query.start.year <= 2100:
        raise FormInvalid({"start": ["between the years 2000 and 2100"]})
    try:
        minutes = parse_iso_minutes(query.mutu_baku)
    except (ValueError, TypeError) as exc:
        raise FormInvalid({"mutu_baku": [str(exc)]}) from None
    if not 0 < minutes <= 60 * 24 * 366:
        raise FormInvalid({"mutu_baku": ["between one minute and a year / antara satu menit dan satu tahun"]})
    svc = services()
    with svc.sessions() as db:
        calendar = svc.runtime.calendars.get(db, _office_id())
    return DueTime(start=query.start, mutu_baku_minutes=minutes, due_at=due_time(calendar, query.start, minutes))
