"""The instance list (`/instances`): find any instance one may see, filter, sort, page, export.

Supervisors list their office's instances, admins every office's, staff the instances they
started or worked on (engine/access.py's `instance_list_scope`, applied by the engine's
one query, engine/instance_list.py, which the API's list uses too). Filters: SOP, current
step, status, late, officer, start date range and subject text; sorted newest or oldest
first or by the soonest due time; keyset pages. The CSV/XLSX export takes the same query
string and writes the same rows through the dashboard's one-`Table` export (Excel-friendly
CSV for the Indonesian locale). Bad input is a message beside its field (HTTP 400), never
a guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from engine import access
from engine.instance_list import (SORTS, STATUSES, InstanceFilters, cursor_of, instances_table, list_instances,
                                  open_steps)
from engine.dashboard import ordered_steps
from engine.dashboard.zones import day_bounds
from engine.models import Office, ProcessDefinition, ProcessVersion, User

from . import current_services
from .auth import login_required
from .dashboard.export import CSV_MIME, XLSX_MIME, to_csv, to_xlsx
from .dashboard.filters import MAX_TEXT, date_arg
from .errors import render_error
from .i18n import _

bp = Blueprint("instance_list", __name__)

PAGE = 25
EXPORT_MAX = 5000
WIB = ZoneInfo("Asia/Jakarta")
_STEP = re.compile(r"[A-Za-z_][\w.-]{0,199}")
_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
_USERNAME = re.compile(r"[\w.@+-]{1,64}")
_NO_DUE = "-"


def status_words() -> dict[str, str]:
    return {"running": _("Berjalan"), "completed": _("Selesai"), "incident": _("Insiden"), "error": _("Galat")}


def sort_words() -> dict[str, str]:
    return {"new": _("Terbaru dimulai"), "old": _("Terlama dimulai (umur)"), "due": _("Batas waktu terdekat")}


@dataclass
class Query:
    filters: InstanceFilters
    sort: str = "new"
    after: tuple | None = None
    errors: dict[str, str] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


def _text(name: str, errors: dict, pattern: re.Pattern | None = None, message: str | None = None) -> str | None:
    value = (request.args.get(name) or "").strip() or None
    if value is None:
        return None
    if "\x00" in value or len(value) > MAX_TEXT:
        errors[name] = _("Nilai tidak valid (karakter terlarang atau lebih dari %(n)s karakter).", n=MAX_TEXT)
        return None
    if pattern is not None and not pattern.fullmatch(value):
        errors[name] = message or _("Nilai tidak valid.")
        return None
    return value


def _after(sort: str, errors: dict) -> tuple | None:
    """The keyset cursor of the next-page link: "<id>", or "<due ISO or ->_<id>" for "due"."""
    value = (request.args.get("after") or "").strip()
    if not value:
        return None
    try:
        if sort == "due":
            due, _sep, ident = value.rpartition("_")
            moment = datetime(9999, 12, 31, tzinfo=timezone.utc) if due == _NO_DUE else datetime.fromisoformat(due)
            if moment.tzinfo is None or not 0 < int(ident) < 2 ** 63:
                raise ValueError(value)
            return moment, int(ident)
        if not re.fullmatch(r"\d{1,19}", value) or not 0 < int(value) < 2 ** 63:
            raise ValueError(value)
        return (int(value),)
    except (ValueError, OverflowError):
        errors["after"] = _("Penanda halaman tidak valid; mulai dari halaman pertama.")
        return None


def encode_after(row, sort: str) -> str:
    key = cursor_of(row, sort)
    if sort == "due":
        due = _NO_DUE if key[0].year == 9999 else key[0].isoformat()
        return f"{due}_{key[1]}"
    return str(key[0])


def parse() -> Query:
    """The filters of this request, with a message per bad field."""
    errors: dict[str, str] = {}
    process = _text("process", errors, _KEY, _("Kode SOP tidak valid."))
    step = _text("step", errors)
    if step and ":" in step:  # the step picker's "<SOP key>:<step id>" names both
        key, step = step.split(":", 1)
        if process and key != process:
            errors["step"] = _("Langkah ini bukan langkah SOP yang dipilih.")
        process = process or (key if _KEY.fullmatch(key) else None)
    if step and not _STEP.fullmatch(step):
        errors["step"] = _("Kode langkah tidak valid.")
        step = None
    status = _text("status", errors)
    if status and status not in STATUSES:
        errors["status"] = _("Status tidak dikenal.")
        status = None
    late_arg = (request.args.get("late") or "").strip()
    late = {"": None, "1": True, "0": False}.get(late_arg, "bad")
    if late == "bad":
        errors["late"] = _("Pilih ya atau tidak.")
        late = None
    start, end = date_arg("from", errors), date_arg("to", errors)
    if start and end and end < start:
        start, end = end, start
    office_id = None
    if current_user.has_role("admin"):
        raw_office = (request.args.get("office") or "").strip()
        if raw_office:
            if re.fullmatch(r"\d{1,9}", raw_office):
                office_id = int(raw_office)
            else:
                errors["office"] = _("Kantor tidak valid.")
    sort = request.args.get("sort") or "new"
    if sort not in SORTS:
        errors["sort"] = _("Urutan tidak dikenal.")
        sort = "new"
    started_from, started_to = day_bounds(start, end, WIB.key)
    filters = InstanceFilters(
        process=process, status=status, late=late, step=step, office_id=office_id,
        started_from=started_from, started_to=started_to,
        subject=_text("q", errors), officer=_text("officer", errors, _USERNAME, _("Nama pengguna tidak valid.")))
    return Query(filters, sort, _after(sort, errors), errors, dict(request.args))


def link_args(query: Query, **extra) -> dict:
    """Query arguments that reproduce the filters (next page, export, the dashboard's links)."""
    args = {k: v for k, v in query.raw.items() if k in ("process", "step", "status", "late", "from", "to", "q",
                                                        "officer", "sort", "office") and v}
    args.update(extra)
    return {k: v for k, v in args.items() if v not in (None, "")}


def choices(session, scope: str, office_id: int | None) -> dict:
    """The filter form's options by name (SOPs, their steps grouped by SOP, officers), limited
    to the offices the user may see."""
    defs = select(ProcessDefinition).order_by(ProcessDefinition.name)
    users = select(User.username, User.full_name).where(User.active.is_(True), User.kind == "person") \
        .order_by(User.full_name)
    if scope != "all" or office_id is not None:
        office = current_user.office_id if scope != "all" else office_id
        defs = defs.where(ProcessDefinition.office_id == office)
        users = users.where(User.office_id == office)
    definitions = session.scalars(defs).all()
    latest = {v.id: v.steps for v in session.scalars(select(ProcessVersion).where(
        ProcessVersion.id.in_([d.latest_version_id for d in definitions if d.latest_version_id] or [-1])))}
    groups = []
    for d in definitions:
        groups.append((d.name, [(f"{d.key}:{sid}", f"{s.get('no') or i}. {s.get('name') or sid}")
                                for i, (sid, s) in enumerate(ordered_steps(latest.get(d.latest_version_id)), 1)]))
    return {"processes": [(d.key, d.name) for d in definitions], "step_groups": groups,
            "officers": [(u, n) for u, n in session.execute(users)] if scope != "own" else [],
            "offices": [(o.id, o.name) for o in session.scalars(select(Office).order_by(Office.name))]
            if scope == "all" else []}


def _now() -> datetime:
    now = current_services().runtime.clock()
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


@bp.get("/instances")
@login_required
def index():
    services = current_services()
    query = parse()
    now = _now()
    rows, steps, more = [], {}, False
    scope = access.instance_list_scope(access.Actor.of_view(current_user))
    with services.sessions() as session:
        options = choices(session, scope, query.filters.office_id)
        if not query.errors:
            rows = list_instances(session, current_user.id, query.filters, now, limit=PAGE + 1, sort=query.sort,
                                  after=query.after)
            more = len(rows) > PAGE
            rows = rows[:PAGE]
            steps = open_steps(session, [r.id for r in rows], now)
    step_value = (f"{query.filters.process}:{query.filters.step}" if query.filters.process and query.filters.step
                  else query.filters.step or "")
    html = render_template(
        "instances/list.html", rows=rows, steps=steps, query=query, filters=query.filters, errors=query.errors,
        choices=options, scope=scope, now=now, statuses=status_words(), sorts=sort_words(), step_value=step_value,
        next_url=url_for("instance_list.index", **link_args(query, after=encode_after(rows[-1], query.sort)))
        if more else None,
        first_url=url_for("instance_list.index", **link_args(query)) if query.after else None,
        export_url=lambda fmt: url_for("instance_list.export", fmt=fmt, **link_args(query)))
    return html, 400 if query.errors else 200


@bp.get("/instances/export.<fmt>")
@login_required
def export(fmt: str):
    """Every instance matching the filters (up to EXPORT_MAX), as CSV or XLSX."""
    if fmt not in ("csv", "xlsx"):
        return render_error(404, title=_("Tidak ditemukan"), message=_("Format ekspor tidak dikenal."))
    services = current_services()
    query = parse()
    query.errors.pop("after", None)
    if query.errors:
        return render_error(400, title=_("Saringan tidak valid"), message=_("Ekspor tidak dibuat: %(e)s", e="; ".join(
            f"{k}: {v}" for k, v in query.errors.items())))
    now = _now()
    rows, after = [], None
    with services.sessions() as session:
        while len(rows) < EXPORT_MAX:
            page = list_instances(session, current_user.id, query.filters, now, limit=100, sort=query.sort,
                                  after=after)
            rows.extend(page)
            if len(page) < 100:
                break
            after = cursor_of(page[-1], query.sort)
        rows = rows[:EXPORT_MAX]
        steps = {}
        for i in range(0, len(rows), 500):  # bounded IN lists (SQLite's variable limit)
            steps.update(open_steps(session, [r.id for r in rows[i:i + 500]], now))
    table = instances_table(rows, steps)
    words = status_words()
    state = table.columns.index("state")
    table = type(table)(table.name, table.columns,
                        [tuple(words.get(v, v) if i == state else v for i, v in enumerate(r)) for r in table.rows])
    if fmt == "csv":
        body, mime = to_csv(table), CSV_MIME
    else:
        body, mime = to_xlsx({"instances": table}), XLSX_MIME
    stamp = now.astimezone(WIB).strftime("%Y%m%d-%H%M")
    return Response(body, mimetype=mime, headers={
        "Content-Disposition": f'attachment; filename="lajur-instans-{stamp}.{fmt}"', "Cache-Control": "no-store"})
