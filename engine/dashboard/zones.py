"""Local time of the offices: every date and weekday the dashboard shows is the office's own.

A period "1..15 March" means those calendar days in the office's time zone (`Office.timezone`,
Asia/Jakarta unless set), and a week or a weekday is taken there too. PostgreSQL converts with
the zone name (`timezone(name, ts)`), so any zone is exact. SQLite has no time zone data: it
adds the zone's UTC offset, which is exact for zones without daylight saving time: all three
Indonesian zones (WIB, WITA, WIT) and most of Asia; `Zones.sqlite_offset` refuses a zone whose
offset changes, so a wrong figure cannot pass silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, and_, case, cast, extract, func, literal, or_

DEFAULT_TZ = "Asia/Jakarta"  # the model's default for Office.timezone


def zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or DEFAULT_TZ)


def day_start(d: date, tz: str) -> datetime:
    """The UTC instant a local calendar day begins."""
    return datetime.combine(d, time(0), zone(tz)).astimezone(timezone.utc)


def day_bounds(a: date | None, b: date | None, tz: str) -> tuple[datetime | None, datetime | None]:
    """[lo, hi) in UTC for the local days a..b (inclusive); None = open on that side."""
    return (None if a is None else day_start(a, tz), None if b is None else day_start(b + timedelta(days=1), tz))


def local_day(at: datetime, tz: str) -> date:
    return at.astimezone(zone(tz)).date()


@dataclass(frozen=True)
class Zones:
    """The time zone of each office in scope, and SQL for local dates and weekdays."""

    by_office: dict[int, str]

    def of(self, office_id: int | None) -> str:
        return self.by_office.get(office_id, DEFAULT_TZ) if office_id is not None else self.single or DEFAULT_TZ

    @property
    def single(self) -> str | None:
        """The one zone of every office in scope, or None when they differ."""
        names = set(self.by_office.values())
        return next(iter(names)) if len(names) == 1 else (DEFAULT_TZ if not names else None)

    def groups(self) -> dict[str, list[int]]:
        """Offices by zone (most scopes have one group)."""
        out: dict[str, list[int]] = {}
        for office, tz in sorted(self.by_office.items()):
            out.setdefault(tz, []).append(office)
        return out

    @staticmethod
    def sqlite_offset(tz: str) -> str:
        """The SQLite date modifier for a zone with a fixed offset ("+7 hours" style in minutes)."""
        z = zone(tz)
        offsets = {z.utcoffset(datetime(y, m, 1)) for y in (2000, 2020, 2030) for m in (1, 7)}
        if len(offsets) != 1:
            raise ValueError(f"time zone {tz!r} has daylight saving time: use PostgreSQL for its dashboard")
        minutes = int(offsets.pop().total_seconds() // 60)
        return f"{minutes:+d} minutes"

    def _per_office(self, office_col, value_of):
        """One SQL value per zone: a literal for one zone, a CASE over the office otherwise."""
        single = self.single
        if single is not None:
            return literal(value_of(single))
        return case({o: value_of(tz) for o, tz in self.by_office.items()}, value=office_col,
                    else_=value_of(DEFAULT_TZ))

    def local_date(self, col, office_col, pg: bool):
        """The office-local calendar date of a UTC timestamp column."""
        if pg:
            return cast(func.timezone(self._per_office(office_col, str), col), Date)
        return func.date(col, self._per_office(office_col, self.sqlite_offset))

    def local_weekday(self, col, office_col, pg: bool):
        """0 = Monday .. 6 = Sunday, office-local."""
        if pg:
            return cast(extract("isodow", func.timezone(self._per_office(office_col, str), col)), Integer) - 1
        return (cast(func.strftime("%w", col, self._per_office(office_col, self.sqlite_offset)), Integer) + 6) % 7

    def period_conds(self, col, office_col, start: date | None, end: date | None) -> list:
        """`col` inside the local days start..end of each row's office."""
        if start is None and end is None:
            return []
        groups = self.groups()

        def bounds(tz: str) -> list:
            lo, hi = day_bounds(start, end, tz)
            return [c for c in ((col >= lo) if lo is not None else None, (col < hi) if hi is not None else None)
                    if c is not None]
        if len(groups) <= 1:
            return bounds(self.single or DEFAULT_TZ)
        return [or_(*[and_(office_col.in_(ids), *bounds(tz)) for tz, ids in groups.items()])]
