"""What a supervisor narrows the dashboard to, and the default period.

Period: `Filters.start`/`end` are calendar dates in each office's own time zone (see
zones.py), both inclusive. Completed figures count steps whose `completed_at` falls in the
period; "open now", "due within the hour", "late" and "held" are a snapshot at `now` and
ignore the period.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .zones import DEFAULT_TZ, local_day


@dataclass(frozen=True)
class Filters:
    """What the supervisor narrowed the dashboard to; None means "no restriction"."""

    office_id: int | None = None
    start: date | None = None
    end: date | None = None
    process_key: str | None = None
    step: str | None = None
    officer_id: int | None = None

    def narrowed(self, **changes: Any) -> "Filters":
        return replace(self, **changes)


def default_period(now: datetime, weeks: int = 12, tz: str = DEFAULT_TZ) -> tuple[date, date]:
    """The last `weeks` ISO weeks up to today (in the office's zone `tz`), the dashboard's default."""
    today = local_day(now, tz)
    monday = today - timedelta(days=today.weekday())
    return monday - timedelta(weeks=weeks - 1), today


def utc(now: datetime) -> datetime:
    """`now` as aware UTC; a naive `now` is a programming error (whose clock would it be?)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(timezone.utc)


def weeks_in(filters: Filters) -> float | None:
    """The period's length in weeks (for "completed per week"); None when open-ended."""
    if filters.start is None or filters.end is None or filters.end < filters.start:
        return None
    return ((filters.end - filters.start).days + 1) / 7
