"""Tables: what the screen shows and the exports write.

One `Table` per view feeds the HTML, the CSV and the XLSX, so the three can never disagree.
Numbers are rounded here once; times are shown in each office's own time zone.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .rows import DrillResult, HeatRow, OfficeRow, OfficerRow, ReworkRow, StepRow, WeekRow
from .zones import zone

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Table:
    """A rendered view: column ids (the web layer translates them) and display values."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple]


def pct(r: float | None) -> float | None:
    """An on-time rate as shown: percent with one decimal."""
    return None if r is None else round(r * 100, 1)


def minutes(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def local_time(dt: datetime | None, tz: str) -> str | None:
    return None if dt is None else dt.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M")


def overview_table(rows: list[StepRow]) -> Table:
    return Table("overview", ("office", "process", "step_no", "step", "mutu_baku", "open", "due_soon", "late_open",
                              "paused", "completed", "on_time", "late_completed", "on_time_pct", "median_minutes",
                              "p90_minutes", "per_week"),
                 [(r.office_code, r.process_name, r.step, r.step_name, minutes(r.mutu_baku_minutes), r.open,
                   r.due_soon, r.late_open, r.paused, r.completed, r.on_time, r.late_completed, pct(r.on_time_rate),
                   minutes(r.median_minutes), minutes(r.p90_minutes), r.per_week) for r in rows])


def offices_table(rows: list[OfficeRow]) -> Table:
    return Table("offices", ("office", "office_name", "open", "due_soon", "late_open", "completed", "on_time",
                             "late_completed", "on_time_pct"),
                 [(r.office_code, r.office_name, r.open, r.due_soon, r.late_open, r.completed, r.on_time,
                   r.late_completed, pct(r.on_time_rate)) for r in rows])


def officers_table(rows: list[OfficerRow]) -> Table:
    return Table("officers", ("office", "officer", "held", "held_late", "completed", "on_time", "on_time_pct"),
                 [(r.office_code, r.full_name, r.held, r.held_late, r.completed, r.on_time, pct(r.on_time_rate))
                  for r in rows])


def officer_steps_table(rows: list[OfficerRow]) -> Table:
    return Table("officer_steps", ("office", "officer", "process", "step_no", "step", "mutu_baku", "completed",
                                   "on_time", "on_time_pct", "median_minutes"),
                 [(r.office_code, r.full_name, s.process_name, s.step, s.step_name, minutes(s.mutu_baku_minutes),
                   s.completed, s.on_time, pct(s.on_time_rate), minutes(s.median_minutes))
                  for r in rows for s in r.steps])


def trends_table(rows: list[WeekRow]) -> Table:
    return Table("trends", ("week", "week_start", "completed", "on_time", "late_completed", "on_time_pct",
                            "instances_started", "instances_completed"),
                 [(r.label, r.week_start.isoformat(), r.completed, r.on_time, r.late_completed, pct(r.on_time_rate),
                   r.instances_started, r.instances_completed) for r in rows])


def heatmap_table(rows: list[HeatRow]) -> Table:
    return Table("heatmap", ("office", "process", "step_no", "step", *WEEKDAYS, "total"),
                 [(r.office_code, r.process_name, r.step, r.step_name, *r.by_weekday, r.total) for r in rows])


def rework_table(rows: list[ReworkRow]) -> Table:
    return Table("rework", ("office", "process", "started", "returns", "instances_returned", "return_pct"),
                 [(r.office_code, r.process_name, r.started, r.returns, r.instances_returned, pct(r.return_rate))
                  for r in rows])


def drill_table(result: DrillResult) -> Table:
    return Table("drill", ("instance", "subject", "office", "process", "step_no", "step", "state", "person",
                           "ready_at", "due_at", "completed_at", "working_minutes", "mutu_baku", "late"),
                 [(r.instance_id, r.subject, r.office_code, r.process_name, r.step, r.step_name, r.state, r.person,
                   local_time(r.ready_at, r.tz), local_time(r.due_at, r.tz), local_time(r.completed_at, r.tz),
                   minutes(r.working_minutes), minutes(r.mutu_baku_minutes), r.late) for r in result.rows])
