"""Dashboard figures: the same tables as the dashboard's CSV export (engine.dashboard via the
dashboard's one page -> tables mapping), for supervisors of an office."""
from __future__ import annotations

from datetime import date

from engine import access, dashboard

from ..dashboard.filters import Params
from ..dashboard.views import page_data
from .base import bp, now, responses, services, spec, user
from .schemas import Dashboard, DashboardQuery, Table

PAGES = ("overview", "officers", "trends")


def _office_scope() -> int | None:
    """The dashboard's one rule (engine.access.dashboard_office): a supervisor sees their
    office, the regency admin every office."""
    return access.dashboard_office(access.Actor.of_view(user()), None)


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
        start, end = dashboard.default_period(at)
    start = start or end
    end = end or start
    if end < start:
        start, end = end, start
    filters = dashboard.Filters(office_id=_office_scope(), start=start, end=end)
    with services().sessions() as db:
        tables = page_data(page, Params(filters), at, db)["tables"]
    return Dashboard(page=page, start=start, end=end,
                     tables=[Table(name=name, columns=list(t.columns), rows=[[_cell(v) for v in r] for r in t.rows])
                             for name, t in tables.items()])
