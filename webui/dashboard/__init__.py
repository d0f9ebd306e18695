"""The supervisor SLA dashboard: overview, drill-down, per officer, trends, exports.

Every figure comes from engine.dashboard; this package picks the office the user may see
and reads the filters (filters.py), renders the pages (views.py) and exports the same
`dashboard.Table`s (export.py), so the screen, the CSV and the XLSX always carry the same
numbers. The routes are here.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_login import current_user

from .. import current_services
from ..auth import login_required
from ..errors import render_error
from ..i18n import _
from . import evaluation
from . import export as files
from .filters import choices, link_args, parse
from .labels import figure_titles, fmt, labels, titles
from .views import PAGES, decorate, drill_url, page_data

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

REFRESH_SECONDS = 60


@bp.app_template_global("dash_row")
def _dash_row(columns, row) -> dict:
    return dict(zip(columns, row))


@bp.app_template_filter("dash_fmt")
def _dash_fmt(value) -> str:
    return fmt(value)


def _now() -> datetime:
    """The engine's clock (tests inject one there), as aware UTC."""
    now = current_services().runtime.clock()
    return now if now.tzinfo else now.replace(tzinfo=timezone.utc)


def _render(page: str, template: str):
    services = current_services()
    now = _now()
    with services.sessions() as session:
        params = parse(now, session)
        filters = params.filters
        options = choices(session, filters)
        data = page_data(page, params, now, session) if not params.errors else {}
    context = dict(page=page, filters=filters, choices=options, now=now, labels=labels(), titles=titles(),
                   figure_titles=figure_titles(), args=link_args(filters), refresh_seconds=REFRESH_SECONDS,
                   is_admin=current_user.has_role("admin"), errors=params.errors, raw=request.args,
                   figure=params.figure, weekday=params.weekday,
                   drill_url=lambda fig, **kw: drill_url(filters, fig, **kw),
                   export_url=lambda fmt_, table=None: url_for(
                       "dashboard.export", page=page, fmt=fmt_,
                       **link_args(filters, table=table, figure=params.figure, weekday=params.weekday,
                                   page=params.page if params.page > 1 else None)))
    if params.errors:  # the form with the messages beside the fields, nothing computed
        return render_template(f"dashboard/{template}.html", **context), 400
    context.update(data)
    context.update(decorate(page, data, filters))
    fragment = bool(request.headers.get("HX-Request")) and request.args.get("fragment") == "1"
    return render_template(f"dashboard/_{template}_figures.html" if fragment else f"dashboard/{template}.html",
                           **context)


def _page_view(page: str):
    @login_required
    def view():
        return _render(page, page)
    view.__name__ = page
    return view


for _page, _rule in (("overview", ""), ("officers", "/officers"), ("trends", "/trends"), ("drill", "/drill"),
                     ("evaluation", "/evaluation")):
    bp.add_url_rule(_rule, endpoint=_page, view_func=_page_view(_page), methods=["GET"])


@bp.get("/export/<page>.<fmt>")
@login_required
def export(page: str, fmt: str):
    """A page's tables as XLSX (every table a sheet) or CSV (one table, ?table=); the SOP
    evaluation also as its printed forms (PDF)."""
    if page not in PAGES or fmt not in ("csv", "xlsx", "pdf") or (fmt == "pdf" and page != "evaluation"):
        abort(404)
    services = current_services()
    now = _now()
    with services.sessions() as session:
        params = parse(now, session)
        data = page_data(page, params, now, session) if not params.errors else {}
        office_name = choices(session, params.filters).get("office_name") if fmt == "pdf" else None
    tables = data.get("tables", {})
    if params.errors:
        return render_error(400, title=_("Saringan tidak valid"), message=_("Ekspor tidak dibuat: %(e)s", e="; ".join(
            f"{k}: {v}" for k, v in params.errors.items())))
    if fmt == "pdf":
        name, body, mime = None, evaluation.pdf(data["evaluations"], params.filters, now, office_name), "application/pdf"
    elif fmt == "csv":
        name = request.args.get("table") or next(iter(tables))
        if name not in tables:
            abort(404)
        body, mime = files.to_csv(tables[name]), files.CSV_MIME
    else:
        name, body, mime = None, files.to_xlsx(tables), files.XLSX_MIME
    return Response(body, mimetype=mime, headers={
        "Content-Disposition": f'attachment; filename="{files.file_name(page, name, params.filters, fmt)}"',
        "Cache-Control": "no-store"})

