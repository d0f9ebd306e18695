"""The dashboard's filter form: its options, its query parameters read and checked at the
edge, and the links that reproduce them.

Bad input is a field error (HTTP 400 with the message beside the field), never a silent
default and never a database error: dates outside 2000..2099 (a year-1 date cannot even be
converted to UTC), integers outside 1..2^63-1 (PostgreSQL's bigint), NUL bytes and overlong
text. Office isolation is enforced here, on the server: a supervisor's office filter is
always their own office, whatever the URL says; only an admin (no office) gets the regency
view and may pick an office.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import abort, request
from flask_login import current_user
from sqlalchemy import select

from engine import access, dashboard
from engine.errors import Forbidden
from engine.dashboard.zones import DEFAULT_TZ
from engine.models import Office, ProcessDefinition, ProcessVersion, User, user_group

from ..i18n import _

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
MAX_ID = 2 ** 63 - 1
MAX_TEXT = 200
_STEP = re.compile(r"[A-Za-z_][\w.-]{0,199}")


@dataclass
class Params:
    """The parsed query: filters, the drill-down's figure/weekday/page, and field errors."""

    filters: dashboard.Filters
    figure: str | None = None
    weekday: int | None = None
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)


def office_scope(errors: dict[str, str]) -> int | None:
    """The office whose figures this user may see; None = the whole regency (admins only)."""
    requested = _int("office", errors)  # checked for everyone, used for an admin only
    try:
        return access.dashboard_office(access.Actor.of_view(current_user), requested)
    except Forbidden:
        abort(403)


def _text(name: str, errors: dict[str, str]) -> str | None:
    value = request.args.get(name) or None
    if value is None:
        return None
    if "\x00" in value or len(value) > MAX_TEXT:
        errors[name] = _("Nilai tidak valid (karakter terlarang atau lebih dari %(n)s karakter).", n=MAX_TEXT)
        return None
    return value


def _int(name: str, errors: dict[str, str], lo: int = 1, hi: int = MAX_ID) -> int | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{1,19}", value) or not lo <= int(value) <= hi:
        errors[name] = _("Harus bilangan bulat antara %(lo)s dan %(hi)s.", lo=lo, hi=hi)
        return None
    return int(value)


def date_arg(name: str, errors: dict[str, str]) -> date | None:
    """A date query parameter (YYYY-MM-DD, within FIRST_DAY..LAST_DAY); a bad one goes to `errors`."""
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        day = None
    if day is None:
        errors[name] = _("Tanggal tidak valid; gunakan format TTTT-BB-HH.")
    elif not FIRST_DAY <= day <= LAST_DAY:
        errors[name] = _("Tanggal harus antara %(a)s dan %(b)s.", a=FIRST_DAY.isoformat(), b=LAST_DAY.isoformat())
        day = None
    return day


def office_zone(session, office_id: int | None) -> str:
    """The time zone the default period is counted in: the office's, or the regency default."""
    tz = session.scalar(select(Office.timezone).where(Office.id == office_id)) if office_id is not None else None
    return tz or DEFAULT_TZ


def parse(now: datetime, session) -> Params:
    """The filters of this request, with a message per bad field (nothing is guessed)."""
    errors: dict[str, str] = {}
    office_id = office_scope(errors)
    start, end = date_arg("start", errors), date_arg("end", errors)
    if start is None and end is None and not ({"start", "end"} & set(errors)):
        start, end = dashboard.default_period(now, tz=office_zone(session, office_id))
    if start and end and end < start:
        start, end = end, start
    process = _text("process", errors)
    step = _text("step", errors)
    if step and ":" in step:  # the step picker's "<SOP key>:<step id>" names both
        process, step = step.split(":", 1)
    if step and not _STEP.fullmatch(step):
        errors["step"] = _("Kode langkah tidak valid.")
        step = None
    filters = dashboard.Filters(office_id=office_id, start=start, end=end, process_key=process, step=step,
                                officer_id=_int("officer", errors))
    figure = _text("figure", errors)
    return Params(filters, figure, _int("weekday", errors, lo=0, hi=6), _int("page", errors, hi=1_000_000) or 1,
                  errors)


def link_args(filters: dashboard.Filters, **extra) -> dict:
    """URL arguments that reproduce these filters (for links, refresh and exports)."""
    out = {"start": filters.start.isoformat() if filters.start else None,
           "end": filters.end.isoformat() if filters.end else None,
           "process": filters.process_key, "step": filters.step, "officer": filters.officer_id}
    if current_user.has_role("admin"):
        out["office"] = filters.office_id
    out.update(extra)
    return {k: v for k, v in out.items() if v not in (None, "")}


def choices(session, filters: dashboard.Filters) -> dict:
    """Options of the filter form, limited to what the user may see, by name (not by code):
    SOPs, their steps as "1. Terima berita" grouped by SOP, officers and (admins) offices."""
    defs = select(ProcessDefinition).order_by(ProcessDefinition.name)
    users = (select(User).where(User.active.is_(True), User.id.in_(select(user_group.c.user_id)))
             .order_by(User.full_name))
    if filters.office_id is not None:
        defs = defs.where(ProcessDefinition.office_id == filters.office_id)
        users = users.where(User.office_id == filters.office_id)
    definitions = session.scalars(defs).all()
    latest = {v.id: v.steps for v in session.scalars(select(ProcessVersion).where(
        ProcessVersion.id.in_([d.latest_version_id for d in definitions if d.latest_version_id] or [-1])))}
    step_groups = []  # (SOP name, [(value "<key>:<step>", "1. name", selected)])
    for d in definitions:
        if filters.process_key and d.key != filters.process_key:
            continue
        options = [(f"{d.key}:{sid}", f"{s.get('no') or i}. {s.get('name') or sid}",
                    filters.step == sid and filters.process_key in (None, d.key))
                   for i, (sid, s) in enumerate(dashboard.ordered_steps(latest.get(d.latest_version_id)), 1)]
        step_groups.append((d.name, options))
    offices = session.scalars(select(Office).order_by(Office.name)).all() if current_user.has_role("admin") else []
    office_name = None
    if filters.office_id is not None:
        office = session.get(Office, filters.office_id)
        office_name = office.name if office else None
    return {"processes": [(d.key, d.name) for d in definitions], "step_groups": step_groups,
            "officers": [(u.id, u.full_name) for u in session.scalars(users)],
            "offices": [(o.id, o.name) for o in offices], "office_name": office_name}
