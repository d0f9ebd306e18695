"""Office working-time calendar for Mutu Baku (service-time) deadlines.

An SOP step's Mutu Baku ("waktu") is stated in *working* time: a 2-hour step
handed over at 15:30 on a Friday is not late on Saturday. This module turns
"start + N working minutes" into a wall-clock instant and back.

Basis (Perpres 21/2023 on civil-servant working hours): a 5-day week of
37.5 hours excluding breaks, starting 07:30 local time, with a longer break on
Friday for Friday prayers. Public holidays and cuti bersama (joint leave, the
``government`` category of the ``holidays`` package) are days off. Kabupaten
Bantul is in WIB (Asia/Jakarta).

Pure Python on purpose (stdlib + ``holidays`` only): the engine, the Celery
workers and the web UI all import it, and it must be trivially testable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from types import MappingProxyType
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "WORKING_DAY_MINUTES",
    "OfficeCalendar",
    "WeeklySchedule",
    "WorkPeriod",
    "parse_iso_minutes",
]

#: Minutes in one working day as used by :func:`parse_iso_minutes` for ``P1D``:
#: 37.5 h / 5 days = 7.5 h = 450 minutes (Perpres 21/2023).
WORKING_DAY_MINUTES = 450

#: How many consecutive days without working time
#: :meth:`OfficeCalendar.add_working_time` tolerates before concluding the
#: calendar has no working time (instead of looping forever).
_MAX_SEARCH_DAYS = 3 * 366

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _minutes_of(t: time) -> int:
    return t.hour * 60 + t.minute


def _parse_hhmm(value: object, where: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"{where}: expected a time as 'HH:MM' (00:00-23:59), got {value!r}")
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


@dataclass(frozen=True)
class WorkPeriod:
    """One continuous stretch of office time on a day, in local wall-clock time.

    Breaks are not modelled explicitly: they are the gaps between periods.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("WorkPeriod times must be naive local times")
        if self.start.second or self.start.microsecond or self.end.second or self.end.microsecond:
            raise ValueError("WorkPeriod times must be whole minutes")
        if not self.start < self.end:
            raise ValueError(
                f"work period start {self.start:%H:%M} must be before end {self.end:%H:%M}"
            )

    @property
    def minutes(self) -> int:
        return _minutes_of(self.end) - _minutes_of(self.start)


@dataclass(frozen=True)
class WeeklySchedule:
    """Office hours per weekday (0=Monday .. 6=Sunday); missing days are off.

    Validated on construction so a bad schedule fails when it is configured,
    not when a deadline is computed months later.
    """

    days: Mapping[int, tuple[WorkPeriod, ...]]

    def __post_init__(self) -> None:
        normalised: dict[int, tuple[WorkPeriod, ...]] = {}
        for weekday, periods in self.days.items():
            if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
                raise ValueError(f"weekday must be an int 0 (Mon) .. 6 (Sun), got {weekday!r}")
            periods = tuple(periods)
            for p in periods:
                if not isinstance(p, WorkPeriod):
                    raise ValueError(f"weekday {weekday}: expected WorkPeriod, got {p!r}")
            for prev, cur in zip(periods, periods[1:]):
                if cur.start < prev.start:
                    raise ValueError(
                        f"weekday {weekday}: periods must be sorted by start time "
                        f"({cur.start:%H:%M} comes after {prev.start:%H:%M})"
                    )
                if cur.start < prev.end:
                    raise ValueError(
                        f"weekday {weekday}: period {cur.start:%H:%M}-{cur.end:%H:%M} overlaps "
                        f"{prev.start:%H:%M}-{prev.end:%H:%M}"
                    )
            if periods:
                normalised[weekday] = periods
        # Read-only view so the frozen dataclass is really immutable.
        object.__setattr__(self, "days", MappingProxyType(normalised))

    @classmethod
    def default(cls) -> WeeklySchedule:
        """Perpres 21/2023 week: Mon-Thu 07:30-16:00, Fri 07:30-16:30, 37.5 h net.

        Mon-Thu break 12:00-13:00 (7.5 h/day); Friday break 11:30-13:00 for
        Friday prayers (also 7.5 h), hence the later Friday close.
        """
        mon_thu = (WorkPeriod(time(7, 30), time(12, 0)), WorkPeriod(time(13, 0), time(16, 0)))
        fri = (WorkPeriod(time(7, 30), time(11, 30)), WorkPeriod(time(13, 0), time(16, 30)))
        return cls({0: mon_thu, 1: mon_thu, 2: mon_thu, 3: mon_thu, 4: fri})

    def to_dict(self) -> dict[str, list[list[str]]]:
        """JSON-friendly form: ``{"0": [["07:30", "12:00"], ...], ...}``."""
        return {
            str(weekday): [[f"{p.start:%H:%M}", f"{p.end:%H:%M}"] for p in periods]
            for weekday, periods in sorted(self.days.items())
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> WeeklySchedule:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming the bad entry."""
        if not isinstance(d, Mapping):
            raise ValueError(f"schedule must be a mapping of weekday -> periods, got {type(d).__name__}")
        days: dict[int, tuple[WorkPeriod, ...]] = {}
        for key, raw_periods in d.items():
            try:
                weekday = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"weekday key must be '0' (Mon) .. '6' (Sun), got {key!r}") from None
            if not 0 <= weekday <= 6 or str(weekday) != str(key).strip():
                raise ValueError(f"weekday key must be '0' (Mon) .. '6' (Sun), got {key!r}")
            if weekday in days:
                raise ValueError(f"weekday {weekday} given more than once")
            if not isinstance(raw_periods, (list, tuple)):
                raise ValueError(f"weekday {weekday}: periods must be a list of [start, end] pairs")
            periods = []
            for i, pair in enumerate(raw_periods):
                where = f"weekday {weekday} period {i}"
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise ValueError(f"{where}: expected [start, end], got {pair!r}")
                start, end = _parse_hhmm(pair[0], where), _parse_hhmm(pair[1], where)
                if not start < end:
                    raise ValueError(f"{where}: start {pair[0]} must be before end {pair[1]}")
                periods.append(WorkPeriod(start, end))
            days[weekday] = tuple(periods)
        return cls(days)

    def weekly_minutes(self) -> int:
        return sum(p.minutes for periods in self.days.values() for p in periods)


class OfficeCalendar:
    """Working days and hours of one office, in its local time zone.

    All public methods accept aware datetimes in any zone and return aware UTC
    datetimes, so callers can store results without caring about WIB.
    """

    def __init__(
        self,
        schedule: WeeklySchedule | None = None,
        tz: str = "Asia/Jakarta",
        extra_days_off: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
        include_cuti_bersama: bool = True,
    ) -> None:
        self.schedule = schedule if schedule is not None else WeeklySchedule.default()
        self.tz = ZoneInfo(tz)
        self.extra_days_off = frozenset(extra_days_off)
        self.extra_working_days = frozenset(extra_working_days)
        both = self.extra_days_off & self.extra_working_days
        if both:
            raise ValueError(
                "dates cannot be both extra day off and extra working day: "
                + ", ".join(sorted(d.isoformat() for d in both))
            )
        self.include_cuti_bersama = include_cuti_bersama
        categories = ("public", "government") if include_cuti_bersama else ("public",)
        # No `years=`: the holidays object fills years in lazily on lookup.
        self._holidays = holidays.country_holidays("ID", categories=categories)
        # A working day forced on a weekday without hours borrows Monday's
        # hours (or the first scheduled weekday's, if Monday is empty too).
        days = self.schedule.days
        self._fallback_periods: tuple[WorkPeriod, ...] = days.get(0) or next(
            (days[w] for w in sorted(days)), ()
        )

    # -- days --------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        return bool(self._periods_on(d))

    def holiday_name(self, d: date) -> str | None:
        """Name of the public holiday / cuti bersama on ``d`` (office extra days off have none)."""
        return self._holidays.get(d)

    def _periods_on(self, d: date) -> tuple[WorkPeriod, ...]:
        if d in self.extra_working_days:
            return self.schedule.days.get(d.weekday()) or self._fallback_periods
        periods = self.schedule.days.get(d.weekday(), ())
        if not periods or d in self.extra_days_off or d in self._holidays:
            return ()
        return periods

    def spans_on(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working periods of local date ``d`` as (start, end) UTC instants."""
        return self._utc_spans(d)

    def _utc_spans(self, d: date) -> list[tuple[datetime, datetime]]:
        """The day's working periods as UTC instants (UTC so that subtraction is
        real elapsed time even in zones with DST)."""
        tz = self.tz
        return [
            (
                datetime.combine(d, p.start, tz).astimezone(timezone.utc),
                datetime.combine(d, p.end, tz).astimezone(timezone.utc),
            )
            for p in self._periods_on(d)
        ]

    def _local_date(self, at: datetime) -> date:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"datetime must be timezone-aware, got naive {at.isoformat()}")
        return at.astimezone(self.tz).date()

    # -- time arithmetic ---------------------------------------------------

    def add_working_time(self, start: datetime, minutes: float) -> datetime:
        """Instant (aware UTC) when ``minutes`` of working time have elapsed from ``start``.

        Counting starts at ``start`` if that is inside a working period, else at
        the next period start. A span that ends exactly at a period's end
        returns that end (e.g. 16:00), not the next morning. ``minutes == 0``
        gives the next working instant. Walks day by day, so long spans cost
        O(days), never O(minutes).
        """
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
            raise ValueError(f"minutes must be a number, got {minutes!r}")
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"minutes must be a finite number >= 0, got {minutes!r}")
        day = self._local_date(start)
        if not self.schedule.days and not self.extra_working_days:
            raise ValueError("calendar has no working hours: the weekly schedule is empty")
        cur = start.astimezone(timezone.utc)
        remaining = timedelta(minutes=minutes)
        idle_days = 0  # consecutive days without usable working time
        while idle_days <= _MAX_SEARCH_DAYS:
            spans = self._utc_spans(day)
            idle_days = 0 if spans and spans[-1][1] > cur else idle_days + 1
            for p_start, p_end in spans:
                if p_end <= cur:
                    continue
                seg_start = max(cur, p_start)
                available = p_end - seg_start
                if remaining <= available:
                    return seg_start + remaining
                remaining -= available
                cur = p_end
            day += timedelta(days=1)
        raise ValueError(
            f"no working time found within {_MAX_SEARCH_DAYS} days after {cur.isoformat()}; "
            "does the calendar have any working hours?"
        )

    def working_minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in ``[start, end)``; 0 if ``end <= start``.

        Inverse of :meth:`add_working_time`: for ``s`` inside working time,
        ``working_minutes_between(s, add_working_time(s, m)) == m``.
        """
        self._local_date(end)  # validates awareness
        if end <= start:
            return 0.0
        s, e = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        day, last = self._local_date(start), self._local_date(end)
        total = timedelta()
        while day <= last:
            for p_start, p_end in self._utc_spans(day):
                lo, hi = max(s, p_start), min(e, p_end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total / timedelta(minutes=1)

    def next_working_instant(self, at: datetime) -> datetime:
        """``at`` itself (as UTC) if inside working time, else the next period start."""
        return self.add_working_time(at, 0)


_ISO_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$"
)


def parse_iso_minutes(expr: str) -> float:
    """Convert an ISO-8601 duration (``PT120M``, ``PT2H``, ``PT1H30M``, ``PT90S``,
    ``P1D``) to minutes of working time.

    SpiffWorkflow timer text is a Python expression, so the value may arrive
    wrapped in single or double quotes; those are stripped.

    ``P1D`` means one *working* day = :data:`WORKING_DAY_MINUTES` (450 minutes,
    37.5 h / 5), not 24 wall-clock hours: Mutu Baku is counted in working time,
    and "1 hari" in an SOP means one office day. Years, months and weeks are
    rejected because their length in working time is not meaningful for an
    SOP step; write them as days.
    """
    if not isinstance(expr, str):
        raise ValueError(f"ISO-8601 duration must be a string, got {type(expr).__name__}")
    text = expr.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    text = text.upper()
    match = _ISO_DURATION.match(text)
    if not match:
        date_part = text[1:].split("T", 1)[0] if text.startswith("P") else ""
        if any(unit in date_part for unit in "YMW"):
            raise ValueError(
                f"ISO-8601 duration {expr!r}: years, months and weeks are not supported "
                "for working time; use days (P1D = 450 working minutes), hours or minutes"
            )
        raise ValueError(
            f"invalid ISO-8601 duration {expr!r}; expected e.g. PT120M, PT2H, PT1H30M, PT90S or P1D"
        )
    parts = match.groupdict()
    if all(v is None for v in parts.values()) or text.endswith("T"):
        raise ValueError(f"ISO-8601 duration {expr!r} has no components; expected e.g. PT120M")

    def num(key: str) -> float:
        value = parts[key]
        return float(value.replace(",", ".")) if value is not None else 0.0

    return (
        num("days") * WORKING_DAY_MINUTES
        + num("hours") * 60
        + num("minutes")
        + num("seconds") / 60
    )
