"""Dashboard figures: the same tables as the dashboard's CSV export (engine.stats via the
dashboard's one page -> tables mapping), for supervisors of an office."""
from __future__ import annotations

from datetime import date

from engine import stats
from engine.errors import Forbidden

from .. import dashboard as web_dashboard
from .base import bp, now, responses, services, spec, user
from .schemas import Dashboard, DashboardQuery, Table

PAGES = ("overview", "officers", "trends")


def _office_scope() -> int | None:
    """The dashboard's rule (webui.dashboard._office_scope): a supervisor sees their office,
    the regency admin every office."""
    me = user()
    if "admin" in me.roles:
        return None
    if "supervisor" in me.roles and me.office_id is not None:
        return me.office_id
    raise Forbidden("the dashboard is for supervisors")


def _cell(value):
    if isinstance(value, date):
        return value.isoformat()
    return value


@bp.get("/dashboard/<any(overview, officers, trends):page>")
@spec.validate(resp=responses({"HTTP_200": Dashboard}), tags=["dashboard"], operation_id="getDashboard")
def figures(page: str, query: DashboardQuery):
    """A dashboard page's tables (overview, officers, trends) for a period (default: the last 12 weeks)."""
    at = now()
    start, end = query.start, query.end
    if start is None and end is None:
        start, end = stats.default_period(at)
    start = start or end
    end = end or start
    if end < start:
        start, end = end, start
    filters = stats.Filters(office_id=_office_scope(), start=start, end=end)
    with services().sessions() as db:
        tables = web_dashboard._page_data(page, filters, at, db)["tables"]
    return Dashboard(page=page, start=start, end=end,
                     tables=[Table(name=name, columns=list(t.columns), rows=[[_cell(v) for v in r] for r in t.rows])
                             for name, t in tables.items()])
