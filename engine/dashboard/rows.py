"""The dashboard's result rows: what each figure function returns.

Plain frozen dataclasses, so that the rollup path and the live path can be compared
with `==` (tests/test_dashboard_rollup.py does, figure by figure) and the web layer can
render and export them without knowing where they came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Sop:
    """A process definition (an office's SOP) with its latest version's steps in order."""

    definition_id: int
    office_id: int
    office_code: str
    office_name: str
    key: str
    name: str
    steps: tuple[tuple[str, str, float | None], ...]  # (bpmn_id, name, mutu_baku_minutes)
    tz: str = "Asia/Jakarta"  # the office's time zone

    def position(self, bpmn_id: str) -> tuple[int, str]:
        """Where a step sorts: its place in the SOP, steps of older versions after, by id."""
        for i, (sid, _, _) in enumerate(self.steps):
            if sid == bpmn_id:
                return i, ""
        return len(self.steps), bpmn_id

    def step_info(self, bpmn_id: str) -> tuple[str, float | None] | None:
        for sid, name, minutes in self.steps:
            if sid == bpmn_id:
                return name, minutes
        return None


@dataclass(frozen=True)
class StepRow:
    """One line of the overview: one step of one SOP of one office."""

    office_id: int
    office_code: str
    office_name: str
    process_key: str
    process_name: str
    step: str
    step_name: str
    mutu_baku_minutes: float | None
    open: int = 0
    due_soon: int = 0
    late_open: int = 0
    paused: int = 0
    completed: int = 0
    with_due: int = 0
    on_time: int = 0
    late_completed: int = 0
    on_time_rate: float | None = None
    median_minutes: float | None = None
    p90_minutes: float | None = None
    per_week: float | None = None


@dataclass(frozen=True)
class OfficeRow:
    """Regency view: one office's totals (sums of its StepRows; rates recomputed from counts)."""

    office_id: int
    office_code: str
    office_name: str
    open: int
    due_soon: int
    late_open: int
    completed: int
    with_due: int
    on_time: int
    late_completed: int
    on_time_rate: float | None


@dataclass(frozen=True)
class OfficerStep:
    process_key: str
    process_name: str
    office_id: int
    step: str
    step_name: str
    mutu_baku_minutes: float | None
    completed: int
    with_due: int
    on_time: int
    on_time_rate: float | None
    median_minutes: float | None


@dataclass(frozen=True)
class OfficerRow:
    """Workload of one officer: what they hold now and what they completed in the period."""

    user_id: int
    full_name: str
    office_id: int | None
    office_code: str
    held: int
    held_late: int
    completed: int
    with_due: int
    on_time: int
    on_time_rate: float | None
    steps: tuple[OfficerStep, ...] = ()


@dataclass(frozen=True)
class WeekRow:
    week_start: date  # the Monday (office-local)
    label: str  # ISO week, e.g. 2026-W05
    completed: int
    with_due: int
    on_time: int
    late_completed: int
    on_time_rate: float | None
    instances_started: int
    instances_completed: int


@dataclass(frozen=True)
class HeatRow:
    """Late steps of one SOP step by weekday (Mon..Sun) of their due time, office-local."""

    office_id: int
    office_code: str
    process_key: str
    process_name: str
    step: str
    step_name: str
    by_weekday: tuple[int, int, int, int, int, int, int]

    @property
    def total(self) -> int:
        return sum(self.by_weekday)


@dataclass(frozen=True)
class ReworkRow:
    office_id: int
    office_code: str
    process_key: str
    process_name: str
    started: int  # instances whose entry step first became ready in the period
    returns: int  # TIDAK returns (repeats of the entry step) in the period
    instances_returned: int  # distinct instances with at least one return in the period
    return_rate: float | None  # instances_returned / started


@dataclass(frozen=True)
class DrillRow:
    task_id: int
    instance_id: int
    subject: str
    instance_status: str
    office_code: str
    process_key: str
    process_name: str
    step: str
    step_name: str
    state: str
    person: str | None  # who completed it, or who holds it
    ready_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    working_minutes: float | None
    mutu_baku_minutes: float | None
    late: bool
    paused: bool
    tz: str = "Asia/Jakarta"  # the office's time zone, for showing the times


@dataclass(frozen=True)
class DrillResult:
    rows: list[DrillRow]
    total: int  # rows behind the figure; `rows` holds at most DRILL_LIMIT of them
    figure: str


def rate(good: int, total: int) -> float | None:
    return good / total if total else None
