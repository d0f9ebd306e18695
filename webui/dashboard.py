"""The supervisor SLA dashboard: overview, drill-down, per officer, trends, exports.

Every figure comes from engine.stats; this module only picks the office the user may see,
reads the filters, and renders or exports the same `stats.Table`s, so the screen, the CSV
and the XLSX always carry the same numbers. Office isolation is enforced here, on the
server: a supervisor's office filter is always their own office, whatever the URL says;
only an admin (no office) gets the regency view and may pick an office.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone

from babel.numbers import format_decimal
from flask import Blueprint, abort, render_template, request, Response, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from engine import stats
from engine.models import Office, ProcessDefinition, ProcessVersion, User, user_group

from . import current_services
from .auth import login_required

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

REFRESH_SECONDS = 60
PAGES = {
    "overview": ("offices", "overview"),
    "officers": ("officers", "officer_steps"),
    "trends": ("trends", "heatmap", "rework"),
    "drill": ("drill",),
}


# ---- who sees what -------------------------------------------------------------------------

def _office_scope() -> int | None:
    """The office whose figures this user may see; None = the whole regency (admins only)."""
    if current_user.has_role("admin"):
        return request.args.get("office", type=int)
    if current_user.has_role("supervisor") and current_user.office_id is not None:
        return current_user.office_id
    abort(403)


def _date_arg(name: str) -> date | None:
    value = request.args.get(name) or ""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _now() -> datetime:
    """The engine's clock (tests inject one there), as aware UTC."""
    now = current_services().runtime.clock()
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def _filters(now: datetime) -> stats.Filters:
    start, end = _date_arg("start"), _date_arg("end")
    default_start, default_end = stats.default_period(now)
    if start is None and end is None:
        start, end = default_start, default_end
    if start and end and end < start:
        start, end = end, start
    step = request.args.get("step") or None
    if step and not re.fullmatch(r"[A-Za-z_][\w.-]{0,199}", step):
        step = None
    return stats.Filters(office_id=_office_scope(), start=start, end=end,
                         process_key=request.args.get("process") or None, step=step,
                         officer_id=request.args.get("officer", type=int))


def _args(filters: stats.Filters, **extra) -> dict:
    """URL arguments that reproduce these filters (for links, refresh and exports)."""
    out = {"start": filters.start.isoformat() if filters.start else None,
           "end": filters.end.isoformat() if filters.end else None,
           "process": filters.process_key, "step": filters.step, "officer": filters.officer_id}
    if current_user.has_role("admin"):
        out["office"] = filters.office_id
    out.update(extra)
    return {k: v for k, v in out.items() if v not in (None, "")}


def _choices(session, filters: stats.Filters) -> dict:
    """Options of the filter form, limited to what the user may see."""
    defs = select(ProcessDefinition).order_by(ProcessDefinition.name)
    users = (select(User).where(User.active.is_(True), User.id.in_(select(user_group.c.user_id)))
             .order_by(User.full_name))
    if filters.office_id is not None:
        defs = defs.where(ProcessDefinition.office_id == filters.office_id)
        users = users.where(User.office_id == filters.office_id)
    definitions = session.scalars(defs).all()
    steps: dict[str, str] = {}
    for d in definitions:
        if filters.process_key and d.key != filters.process_key:
            continue
        version = session.get(ProcessVersion, d.latest_version_id) if d.latest_version_id else None
        for sid, s in sorted((version.steps if version else {}).items(), key=lambda kv: stats._step_order(kv[0])):
            steps.setdefault(sid, f"{sid} · {s.get('name', sid)}" if filters.process_key else sid)
    offices = session.scalars(select(Office).order_by(Office.code)).all() if current_user.has_role("admin") else []
    office_name = None
    if filters.office_id is not None:
        office = session.get(Office, filters.office_id)
        office_name = office.name if office else None
    return {"processes": [(d.key, d.name) for d in definitions], "steps": sorted(steps.items(),
            key=lambda kv: stats._step_order(kv[0])), "officers": [(u.id, u.full_name) for u in session.scalars(users)],
            "offices": [(o.id, o.name) for o in offices], "office_name": office_name}


# ---- labels and formatting -----------------------------------------------------------------
def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"



def labels() -> dict[str, str]:
    """Column headers, the same on screen and in the exports."""
    return {
        "office": _("Kantor"), "office_name": _("Nama kantor"), "process": _("SOP"), "step_no": _("Kode langkah"),
        "step": _("Langkah"), "mutu_baku": _("Mutu Baku (menit)"), "open": _("Terbuka"),
        "due_soon": _("Jatuh tempo ≤ 1 jam"), "late_open": _("Terlambat (terbuka)"), "paused": _("Dijeda"),
        "completed": _("Selesai"), "on_time": _("Tepat waktu"), "late_completed": _("Selesai terlambat"),
        "on_time_pct": _("Tepat waktu (%)"), "median_minutes": _("Median (menit kerja)"),
        "p90_minutes": _("P90 (menit kerja)"), "per_week": _("Selesai per minggu"), "officer": _("Pegawai"),
        "held": _("Dipegang"), "held_late": _("Dipegang, terlambat"), "week": _("Minggu"),
        "week_start": _("Mulai minggu"), "instances_started": _("Instans dimulai"),
        "instances_completed": _("Instans selesai"), "mon": _("Sen"), "tue": _("Sel"), "wed": _("Rab"),
        "thu": _("Kam"), "fri": _("Jum"), "sat": _("Sab"), "sun": _("Min"), "total": _("Jumlah"),
        "started": _("Instans dimulai"), "returns": _("Pengembalian (TIDAK)"),
        "instances_returned": _("Instans dikembalikan"), "return_pct": _("Instans dikembalikan (%)"),
        "instance": _("Instans"), "subject": _("Perihal"), "state": _("Status"), "person": _("Pemegang / pelaksana"),
        "ready_at": _("Siap (WIB)"), "due_at": _("Batas waktu (WIB)"), "completed_at": _("Selesai (WIB)"),
        "working_minutes": _("Durasi (menit kerja)"), "late": _("Terlambat"),
    }


def titles() -> dict[str, str]:
    return {
        "overview": _("Per langkah SOP"), "offices": _("Per kantor"), "officers": _("Per pegawai"),
        "officer_steps": _("Median per langkah per pegawai"), "trends": _("Per minggu"),
        "heatmap": _("Langkah terlambat per hari"), "rework": _("Pengembalian (TIDAK) per SOP"),
        "drill": _("Rincian"),
    }


def figure_titles() -> dict[str, str]:
    return {
        "open": _("Langkah terbuka"), "due_soon": _("Jatuh tempo dalam satu jam"),
        "late_open": _("Langkah terbuka yang terlambat"), "paused": _("Langkah dijeda"),
        "completed": _("Langkah selesai"), "on_time": _("Selesai tepat waktu"),
        "late_completed": _("Selesai terlambat"), "late": _("Langkah terlambat"),
        "returns": _("Pengembalian (TIDAK)"),
    }


def state_words() -> dict[str, str]:
    return {"ready": _("Terbuka"), "completed": _("Selesai"), "cancelled": _("Dibatalkan")}


def export_value(value):
    """The value written to CSV/XLSX: numbers stay numbers; yes/no and states become words."""
    if isinstance(value, bool):
        return _("ya") if value else _("tidak")
    return value


def fmt(value) -> str:
    """A table cell on screen: the exported number in the user's locale (16.0 -> '16,0')."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return export_value(value)
    if isinstance(value, float):
        return format_decimal(value, format="#,##0.0", locale=str(get_locale() or "id"))
    if isinstance(value, int):
        return format_decimal(value, format="#,##0", locale=str(get_locale() or "id"))
    return str(value)


@bp.app_template_global("dash_row")
def _dash_row(columns, row) -> dict:
    return dict(zip(columns, row))


@bp.app_template_filter("dash_fmt")
def _dash_fmt(value) -> str:
    return fmt(value)


# ---- the views' data -----------------------------------------------------------------------

def _page_data(page: str, filters: stats.Filters, now: datetime, session) -> dict:
    """The stats rows and the Tables for one page (the one place views and exports read)."""
    if page == "overview":
        rows = stats.overview(session, filters, now)
        tables = {"overview": stats.overview_table(rows)}
        data = {"rows": rows}
        if filters.office_id is None:
            offices = stats.office_summary(rows)
            tables = {"offices": stats.offices_table(offices), **tables}
            data["offices"] = offices
    elif page == "officers":
        rows = stats.officers(session, filters, now)
        tables = {"officers": stats.officers_table(rows), "officer_steps": stats.officer_steps_table(rows)}
        data = {"rows": rows}
    elif page == "trends":
        weeks = stats.trends(session, filters, now)
        heat = stats.late_heatmap(session, filters, now)
        rework = stats.rework(session, filters, now)
        tables = {"trends": stats.trends_table(weeks), "heatmap": stats.heatmap_table(heat),
                  "rework": stats.rework_table(rework)}
        data = {"weeks": weeks, "heat": heat, "rework": rework}
    elif page == "drill":
        figure = request.args.get("figure", "")
        if figure not in stats.FIGURES:
            abort(404)
        weekday = request.args.get("weekday", type=int)
        if weekday is not None and not 0 <= weekday <= 6:
            abort(404)
        result = stats.drill(session, filters, figure, now, weekday=weekday)
        table = stats.drill_table(result)
        words = state_words()
        table = stats.Table(table.name, table.columns,
                            [tuple(words.get(v, v) if c == "state" else v for c, v in zip(table.columns, r))
                             for r in table.rows])
        tables = {"drill": table}
        data = {"result": result, "figure": figure, "weekday": weekday}
    else:
        abort(404)
    data["tables"] = tables
    return data


def _drill_url(filters: stats.Filters, figure: str, **narrow) -> str:
    return url_for("dashboard.drill", **_args(filters, figure=figure, **narrow))


def _overview_links(filters: stats.Filters, rows: list[stats.StepRow]) -> list[dict]:
    """Per overview row: the drill-down URL behind each figure cell."""
    cols = {"open": "open", "due_soon": "due_soon", "late_open": "late_open", "paused": "paused",
            "completed": "completed", "on_time": "on_time", "late_completed": "late_completed"}
    out = []
    for r in rows:
        f = filters.narrowed(office_id=r.office_id, process_key=r.process_key, step=r.step)
        out.append({col: _drill_url(f, fig) for col, fig in cols.items() if getattr(r, col)})
    return out


def _column(table: stats.Table, name: str) -> list:
    i = table.columns.index(name)
    return [row[i] for row in table.rows]


def _week_filters(filters: stats.Filters, week_start: date) -> stats.Filters:
    """The period narrowed to one ISO week (never wider than the chosen period)."""
    start, end = week_start, week_start + timedelta(days=6)
    if filters.start and filters.start > start:
        start = filters.start
    if filters.end and filters.end < end:
        end = filters.end
    return filters.narrowed(start=start, end=end)


def _decorate(page: str, data: dict, filters: stats.Filters) -> dict:
    """Chart specs (drawn by dashboard.js from the Tables' own numbers) and drill-down links."""
    t = data["tables"]
    out: dict = {"charts": {}}
    if page == "overview":
        rows = data["rows"]
        regency = filters.office_id is None
        several = len({r.process_key for r in rows}) > 1
        # short labels that fit beside a bar: the table below carries the full names
        names = [(f"{r.office_code} · " if regency else "") + (f"{_short(r.process_name, 18)} · " if several else "")
                 + f"{r.step.removeprefix('step')}. {_short(r.step_name, 30)}" for r in rows]
        ov = t["overview"]
        out["charts"]["ontime"] = {"kind": "bar", "horizontal": True, "labels": names, "unit": "%", "max": 100,
                                   "datasets": [{"label": labels()["on_time_pct"],
                                                 "data": _column(ov, "on_time_pct")}]}
        out["charts"]["duration"] = {"kind": "bar", "horizontal": True, "labels": names, "unit": _("menit"),
                                     "datasets": [
                                         {"label": labels()["median_minutes"], "data": _column(ov, "median_minutes")},
                                         {"label": labels()["p90_minutes"], "data": _column(ov, "p90_minutes")},
                                         {"label": labels()["mutu_baku"], "data": _column(ov, "mutu_baku")}]}
    elif page == "officers":
        rows = data["rows"]
        tb = t["officers"]
        out["charts"]["officers"] = {"kind": "bar", "horizontal": True, "labels": _column(tb, "officer"), "unit": "",
                                     "datasets": [{"label": labels()["held"], "data": _column(tb, "held")},
                                                  {"label": labels()["completed"], "data": _column(tb, "completed")}]}
        links, step_links = [], []
        for r in rows:
            f = filters.narrowed(officer_id=r.user_id, office_id=r.office_id if filters.office_id is None
                                 and r.office_id is not None else filters.office_id)
            links.append({k: v for k, v in {"held": _drill_url(f, "open") if r.held else None,
                                            "held_late": _drill_url(f, "late_open") if r.held_late else None,
                                            "completed": _drill_url(f, "completed") if r.completed else None,
                                            "on_time": _drill_url(f, "on_time") if r.on_time else None}.items() if v})
            for st in r.steps:
                fs = f.narrowed(office_id=st.office_id, process_key=st.process_key, step=st.step)
                step_links.append({"completed": _drill_url(fs, "completed"),
                                   **({"on_time": _drill_url(fs, "on_time")} if st.on_time else {})})
        out.update(links=links, step_links=step_links)
    elif page == "trends":
        tb = t["trends"]
        out["charts"]["trends"] = {"kind": "combo", "labels": _column(tb, "week"),
                                   "datasets": [{"label": labels()["completed"], "data": _column(tb, "completed"),
                                                 "type": "bar", "axis": "count"},
                                                {"label": labels()["on_time_pct"], "data": _column(tb, "on_time_pct"),
                                                 "type": "line", "axis": "pct"}]}
        out["links"] = [{k: v for k, v in {
            "completed": _drill_url(_week_filters(filters, w.week_start), "completed") if w.completed else None,
            "on_time": _drill_url(_week_filters(filters, w.week_start), "on_time") if w.on_time else None,
            "late_completed": (_drill_url(_week_filters(filters, w.week_start), "late_completed")
                               if w.late_completed else None)}.items() if v} for w in data["weeks"]]
        out["links_heat"] = [[_drill_url(filters.narrowed(office_id=h.office_id, process_key=h.process_key,
                                                          step=h.step), "late", weekday=wd) for wd in range(7)]
                             for h in data["heat"]]
        out["links_rework"] = [{"returns": _drill_url(filters.narrowed(office_id=r.office_id,
                                                                       process_key=r.process_key, step=None),
                                                      "returns")} if r.returns else {} for r in data["rework"]]
        peak = max((n for h in data["heat"] for n in h.by_weekday), default=0)
        out["heat_level"] = lambda n: 0 if not n or not peak else min(4, 1 + int(3 * n / peak))
    elif page == "drill":
        out["links"] = [{"instance": url_for("instances.detail", instance_id=r.instance_id),
                         "subject": url_for("instances.detail", instance_id=r.instance_id)}
                        for r in data["result"].rows]
    out["weekday_cols"] = stats.WEEKDAYS
    return out


def _render(page: str, template: str, **context):
    services = current_services()
    now = _now()
    filters = _filters(now)
    with services.sessions() as session:
        data = _page_data(page, filters, now, session)
        choices = _choices(session, filters)
    context.update(data)
    context.update(_decorate(page, data, filters))
    fragment = bool(request.headers.get("HX-Request")) and request.args.get("fragment") == "1"
    return render_template(
        f"dashboard/_{template}_figures.html" if fragment else f"dashboard/{template}.html",
        page=page, filters=filters, choices=choices, now=now, labels=labels(), titles=titles(),
        figure_titles=figure_titles(), args=_args(filters), refresh_seconds=REFRESH_SECONDS,
        is_admin=current_user.has_role("admin"), drill_url=lambda fig, **kw: _drill_url(filters, fig, **kw),
        export_url=lambda fmt_, table=None: url_for("dashboard.export", page=page, fmt=fmt_,
                                                     **_args(filters, table=table, figure=request.args.get("figure"),
                                                             weekday=request.args.get("weekday"))),
        **context)


@bp.get("")
@login_required
def overview():
    return _render("overview", "overview", links_for=_overview_links)


@bp.get("/officers")
@login_required
def officers():
    return _render("officers", "officers")


@bp.get("/trends")
@login_required
def trends():
    return _render("trends", "trends")


@bp.get("/drill")
@login_required
def drill():
    return _render("drill", "drill", drill_limit=stats.DRILL_LIMIT)


# ---- exports -------------------------------------------------------------------------------

def _file_name(page: str, table: str | None, filters: stats.Filters, ext: str) -> str:
    period = f"{filters.start or 'awal'}_{filters.end or 'kini'}"
    return f"lajur-{page}{'-' + table if table and table != page else ''}-{period}.{ext}"


def _header(table: stats.Table) -> list[str]:
    names = labels()
    return [names.get(c, c) for c in table.columns]


def _csv(table: stats.Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_header(table))
    for row in table.rows:
        writer.writerow(["" if v is None else export_value(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: Excel then reads UTF-8 correctly


def _sheet_title(title: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "Sheet"
    name, n = base, 2
    while name in used:
        name = f"{base[:28]} {n}"
        n += 1
    used.add(name)
    return name


def _xlsx(tables: dict[str, stats.Table]) -> bytes:
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    names, used = titles(), set()
    for key, table in tables.items():
        ws = wb.create_sheet(_sheet_title(names.get(key, key), used))
        ws.append(_header(table))
        for row in table.rows:
            ws.append([export_value(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@bp.get("/export/<page>.<fmt>")
@login_required
def export(page: str, fmt: str):
    """A page's tables as CSV (one table, ?table=) or XLSX (every table a sheet)."""
    if page not in PAGES or fmt not in ("csv", "xlsx"):
        abort(404)
    services = current_services()
    now = _now()
    filters = _filters(now)
    with services.sessions() as session:
        tables = _page_data(page, filters, now, session)["tables"]
    if fmt == "csv":
        name = request.args.get("table") or next(iter(tables))
        if name not in tables:
            abort(404)
        body, mime = _csv(tables[name]), "text/csv; charset=utf-8"
    else:
        name, body = None, _xlsx(tables)
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, mimetype=mime, headers={
        "Content-Disposition": f'attachment; filename="{_file_name(page, name, filters, fmt)}"',
        "Cache-Control": "no-store"})
