"""What each dashboard page shows: the engine's rows and Tables for a page, the drill-down
links behind every figure, and the chart specs (drawn by dashboard.js from the Tables' own
numbers, so a chart never disagrees with its table)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import abort, url_for
from flask_login import current_user

from engine import dashboard

from ..i18n import _
from . import evaluation
from .filters import Params, link_args
from .labels import labels, state_words

PAGES = {
    "overview": ("offices", "overview"),
    "officers": ("officers", "officer_steps"),
    "trends": ("trends", "heatmap", "rework"),
    "drill": ("drill",),
    "evaluation": ("sop_summary", "monitoring", "evaluation"),
}


def page_data(page: str, params: Params, now: datetime, session) -> dict:
    """The rows and the Tables for one page (the one place views and exports read)."""
    filters = params.filters
    if page == "overview":
        rows = dashboard.overview(session, filters, now)
        tables = {"overview": dashboard.overview_table(rows)}
        data = {"rows": rows}
        if filters.office_id is None:
            offices = dashboard.office_summary(rows)
            tables = {"offices": dashboard.offices_table(offices), **tables}
            data["offices"] = offices
    elif page == "officers":
        rows = dashboard.officers(session, filters, now)
        tables = {"officers": dashboard.officers_table(rows), "officer_steps": dashboard.officer_steps_table(rows)}
        data = {"rows": rows}
    elif page == "trends":
        weeks = dashboard.trends(session, filters, now)
        heat = dashboard.late_heatmap(session, filters, now)
        rework = dashboard.rework(session, filters, now)
        tables = {"trends": dashboard.trends_table(weeks), "heatmap": dashboard.heatmap_table(heat),
                  "rework": dashboard.rework_table(rework)}
        data = {"weeks": weeks, "heat": heat, "rework": rework}
    elif page == "evaluation":
        evaluations = dashboard.evaluate(session, filters, now)
        tables = evaluation.tables(evaluations)
        data = {"evaluations": evaluations}
    elif page == "drill":
        if params.figure not in dashboard.FIGURES:
            abort(404)
        result = dashboard.drill(session, filters, params.figure, now, weekday=params.weekday,
                                 offset=(params.page - 1) * dashboard.DRILL_LIMIT)
        table = dashboard.drill_table(result)
        words = state_words()
        table = dashboard.Table(table.name, table.columns,
                                [tuple(words.get(v, v) if c == "state" else v for c, v in zip(table.columns, r))
                                 for r in table.rows])
        tables = {"drill": table}
        data = {"result": result, "figure": params.figure, "weekday": params.weekday, "page_no": params.page,
                "drill_limit": dashboard.DRILL_LIMIT}
    else:
        abort(404)
    data["tables"] = tables
    return data


def drill_url(filters: dashboard.Filters, figure: str, **narrow) -> str:
    return url_for("dashboard.drill", **link_args(filters, figure=figure, **narrow))


def instance_list_url(row: dashboard.StepRow, late: bool = False) -> str:
    """The instance list (webui/instance_list.py) narrowed to the instances whose open step is
    this row's step (and, for the late count, that have a late step): what an open count counts."""
    args = {"step": f"{row.process_key}:{row.step}", "late": "1" if late else None}
    if current_user.has_role("admin"):
        args["office"] = row.office_id
    return url_for("instance_list.index", **{k: v for k, v in args.items() if v is not None})


def overview_links(filters: dashboard.Filters, rows: list[dashboard.StepRow]) -> list[dict]:
    """Per overview row: the URL behind each figure cell. The open and late-open counts lead to
    the instance list with the matching filters; the others to the step drill-down."""
    cols = ("due_soon", "paused", "completed", "on_time", "late_completed")
    out = []
    for r in rows:
        f = filters.narrowed(office_id=r.office_id, process_key=r.process_key, step=r.step)
        links = {col: drill_url(f, col) for col in cols if getattr(r, col)}
        if r.open:
            links["open"] = instance_list_url(r)
        if r.late_open:
            links["late_open"] = instance_list_url(r, late=True)
        out.append(links)
    return out


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def _column(table: dashboard.Table, name: str) -> list:
    i = table.columns.index(name)
    return [row[i] for row in table.rows]


def _week_filters(filters: dashboard.Filters, week_start: date) -> dashboard.Filters:
    """The period narrowed to one ISO week (never wider than the chosen period)."""
    start, end = week_start, week_start + timedelta(days=6)
    if filters.start and filters.start > start:
        start = filters.start
    if filters.end and filters.end < end:
        end = filters.end
    return filters.narrowed(start=start, end=end)


def _overview(data: dict, filters: dashboard.Filters) -> dict:
    rows, ov = data["rows"], data["tables"]["overview"]
    several = len({r.process_key for r in rows}) > 1
    regency = filters.office_id is None
    # short labels that fit beside a bar: the table below carries the full names
    names, seen = [], {}
    for r in rows:  # rows come in SOP order: number the steps per SOP, whatever their ids
        seen[(r.office_id, r.process_key)] = n = seen.get((r.office_id, r.process_key), 0) + 1
        names.append((f"{r.office_code.upper()} · " if regency else "")
                     + (f"{_short(r.process_name, 18)} · " if several else "") + f"{n}. {_short(r.step_name, 30)}")
    words = labels()
    return {"charts": {
        "ontime": {"kind": "bar", "horizontal": True, "labels": names, "unit": "%", "max": 100,
                   "datasets": [{"label": words["on_time_pct"], "data": _column(ov, "on_time_pct")}]},
        "duration": {"kind": "bar", "horizontal": True, "labels": names, "unit": _("menit"), "datasets": [
            {"label": words["median_minutes"], "data": _column(ov, "median_minutes")},
            {"label": words["p90_minutes"], "data": _column(ov, "p90_minutes")},
            {"label": words["mutu_baku"], "data": _column(ov, "mutu_baku")}]}},
        "links": overview_links(filters, rows), "show_sop": several or regency, "show_office": regency}


def _officers(data: dict, filters: dashboard.Filters) -> dict:
    tb = data["tables"]["officers"]
    words = labels()
    links, step_links = [], []
    for r in data["rows"]:
        f = filters.narrowed(officer_id=r.user_id, office_id=r.office_id if filters.office_id is None
                             and r.office_id is not None else filters.office_id)
        links.append({k: v for k, v in {"held": drill_url(f, "open") if r.held else None,
                                        "held_late": drill_url(f, "late_open") if r.held_late else None,
                                        "completed": drill_url(f, "completed") if r.completed else None,
                                        "on_time": drill_url(f, "on_time") if r.on_time else None}.items() if v})
        for st in r.steps:
            fs = f.narrowed(office_id=st.office_id, process_key=st.process_key, step=st.step)
            step_links.append({"completed": drill_url(fs, "completed"),
                               **({"on_time": drill_url(fs, "on_time")} if st.on_time else {})})
    return {"charts": {"officers": {
        "kind": "bar", "horizontal": True, "labels": _column(tb, "officer"), "unit": "",
        "datasets": [{"label": words["held"], "data": _column(tb, "held")},
                     {"label": words["completed"], "data": _column(tb, "completed")}]}},
        "links": links, "step_links": step_links}


def _trends(data: dict, filters: dashboard.Filters) -> dict:
    tb = data["tables"]["trends"]
    words = labels()

    def week_links(w: dashboard.WeekRow) -> dict:
        f = _week_filters(filters, w.week_start)
        return {fig: drill_url(f, fig) for fig in ("completed", "on_time", "late_completed") if getattr(w, fig)}
    peak = max((n for h in data["heat"] for n in h.by_weekday), default=0)
    return {"charts": {"trends": {
        "kind": "combo", "labels": _column(tb, "week"),
        "datasets": [{"label": words["completed"], "data": _column(tb, "completed"), "type": "bar", "axis": "count"},
                     {"label": words["on_time_pct"], "data": _column(tb, "on_time_pct"), "type": "line",
                      "axis": "pct"}]}},
        "links": [week_links(w) for w in data["weeks"]],
        "links_heat": [[drill_url(filters.narrowed(office_id=h.office_id, process_key=h.process_key, step=h.step),
                                  "late", weekday=wd) for wd in range(7)] for h in data["heat"]],
        "links_rework": [{"returns": drill_url(filters.narrowed(office_id=r.office_id, process_key=r.process_key,
                                                                step=None), "returns")} if r.returns else {}
                         for r in data["rework"]],
        "heat_level": lambda n: 0 if not n or not peak else min(4, 1 + int(3 * n / peak))}


def decorate(page: str, data: dict, filters: dashboard.Filters) -> dict:
    """Chart specs and drill-down links for a page."""
    if page == "overview":
        out = _overview(data, filters)
    elif page == "officers":
        out = _officers(data, filters)
    elif page == "trends":
        out = _trends(data, filters)
    elif page == "evaluation":
        out = {"charts": {}, "links": [], "step_action": evaluation.step_action,
               "assessment_word": evaluation.assessment_word, "answer_word": evaluation.answer_word,
               "basis": evaluation.criterion_basis, "questions": evaluation.criterion_words(),
               "on_time_target": round(dashboard.evaluation.ON_TIME_TARGET * 100),
               "min_samples": dashboard.evaluation.MIN_SAMPLES}
    else:
        out = {"charts": {}, "links": [{"instance": url_for("instances.detail", instance_id=r.instance_id),
                                        "subject": url_for("instances.detail", instance_id=r.instance_id)}
                                       for r in data["result"].rows]}
    out["weekday_cols"] = dashboard.WEEKDAYS
    return out
