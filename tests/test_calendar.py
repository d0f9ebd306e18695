"""Tests for engine.calendar: working-time arithmetic against real Indonesian holidays.

Holiday facts used below (holidays package, country "ID"):
- 2026-06-01 Mon  Pancasila Day (public); Fri 2026-05-29 and Tue 2026-06-02 are working days.
- 2026-08-17 Mon  Independence Day (public).
- 2025-08-17 Sun  Independence Day; 2025-08-18 Mon is cuti bersama (category "government").
The first tests pin these facts, so a holidays data change fails loudly and clearly.
"""

from __future__ import annotations

import time as _time
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from engine.calendar import (
    WORKING_DAY_MINUTES,
    OfficeCalendar,
    WeeklySchedule,
    WorkPeriod,
    parse_iso_minutes,
)

WIB = ZoneInfo("Asia/Jakarta")


def wib(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=WIB)


@pytest.fixture(scope="module")
def cal() -> OfficeCalendar:
    return OfficeCalendar()


# -- holiday facts the scenarios rely on -------------------------------------


def test_holiday_facts_from_holidays_package():
    public = holidays.country_holidays("ID", years=[2025, 2026], categories=("public",))
    both = holidays.country_holidays("ID", years=[2025, 2026], categories=("public", "government"))
    assert date(2026, 6, 1) in public and date(2026, 6, 1).weekday() == 0
    assert date(2026, 5, 29) not in both and date(2026, 6, 2) not in both
    assert date(2026, 8, 17) in public
    assert date(2025, 8, 18) in both and date(2025, 8, 18) not in public
    assert date(2025, 8, 15) not in both and date(2025, 8, 19) not in both


def test_holiday_name_and_is_working_day(cal):
    assert "Pancasila" in cal.holiday_name(date(2026, 6, 1))
    assert cal.holiday_name(date(2026, 6, 2)) is None
    assert not cal.is_working_day(date(2026, 6, 1))  # holiday Monday
    assert cal.is_working_day(date(2026, 6, 2))  # ordinary Tuesday
    assert not cal.is_working_day(date(2026, 6, 6))  # Saturday
    assert not cal.is_working_day(date(2026, 6, 7))  # Sunday


# -- schedule ------------------------------------------------------------------


def test_default_schedule_is_37_5_hours_a_week():
    sched = WeeklySchedule.default()
    assert sched.weekly_minutes() == 2250
    assert set(sched.days) == {0, 1, 2, 3, 4}
    assert sched.to_dict()["0"] == [["07:30", "12:00"], ["13:00", "16:00"]]
    assert sched.to_dict()["4"] == [["07:30", "11:30"], ["13:00", "16:30"]]
    assert WORKING_DAY_MINUTES == 2250 // 5


def test_from_dict_round_trip():
    raw = {
        "0": [["08:00", "12:00"], ["13:00", "15:00"]],
        "2": [["08:00", "12:00"]],
        "5": [["08:00", "11:00"]],
    }
    sched = WeeklySchedule.from_dict(raw)
    assert sched.to_dict() == raw
    assert WeeklySchedule.from_dict(sched.to_dict()) == sched
    assert sched.weekly_minutes() == 360 + 240 + 180
    assert sched.days[5] == (WorkPeriod(time(8, 0), time(11, 0)),)
    default = WeeklySchedule.default()
    assert WeeklySchedule.from_dict(default.to_dict()) == default


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"0": [["08:00", "12:00"], ["11:00", "14:00"]]}, "overlaps"),
        ({"0": [["13:00", "15:00"], ["08:00", "12:00"]]}, "sorted"),
        ({"0": [["12:00", "08:00"]]}, "before"),
        ({"0": [["08:00", "08:00"]]}, "before"),
        ({"0": [["7:30", "12:00"]]}, "HH:MM"),
        ({"0": [["25:00", "26:00"]]}, "HH:MM"),
        ({"0": [["08:60", "12:00"]]}, "HH:MM"),
        ({"0": [["08:00"]]}, "[start, end]"),
        ({"7": [["08:00", "12:00"]]}, "weekday"),
        ({"mon": [["08:00", "12:00"]]}, "weekday"),
        ({"0": "08:00-12:00"}, "list"),
    ],
)
def test_from_dict_rejects_bad_input(raw, fragment):
    with pytest.raises(ValueError) as exc:
        WeeklySchedule.from_dict(raw)
    assert fragment in str(exc.value)


# -- add_working_time ------------------------------------------------------------


def test_friday_before_holiday_monday_is_due_tuesday(cal):
    # 60 min left on Friday (until 16:30), Mon 2026-06-01 is Pancasila Day,
    # so the remaining 60 min run from Tuesday 07:30.
    due = cal.add_working_time(wib(2026, 5, 29, 15, 30), 120)
    assert due == wib(2026, 6, 2, 8, 30)
    assert due.tzinfo is timezone.utc


def test_span_over_lunch_break(cal):
    assert cal.is_working_day(date(2026, 6, 8))
    assert cal.add_working_time(wib(2026, 6, 8, 11, 0), 120) == wib(2026, 6, 8, 14, 0)


def test_start_before_office_opens(cal):
    assert cal.add_working_time(wib(2026, 6, 2, 6, 0), 30) == wib(2026, 6, 2, 8, 0)


def test_start_on_saturday(cal):
    assert cal.add_working_time(wib(2026, 6, 6, 10, 0), 60) == wib(2026, 6, 8, 8, 30)


def test_start_during_break(cal):
    assert cal.add_working_time(wib(2026, 6, 8, 12, 15), 30) == wib(2026, 6, 8, 13, 30)
    # Friday break is longer (11:30-13:00).
    assert cal.add_working_time(wib(2026, 6, 5, 11, 45), 30) == wib(2026, 6, 5, 13, 30)


def test_start_after_office_closes(cal):
    assert cal.add_working_time(wib(2026, 6, 8, 17, 0), 10) == wib(2026, 6, 9, 7, 40)


def test_span_ending_exactly_at_close_stays_that_day(cal):
    assert cal.add_working_time(wib(2026, 6, 8, 15, 0), 60) == wib(2026, 6, 8, 16, 0)


def test_zero_minutes(cal):
    inside = wib(2026, 6, 8, 9, 0)
    assert cal.add_working_time(inside, 0) == inside
    assert cal.next_working_instant(inside) == inside
    assert cal.next_working_instant(wib(2026, 6, 8, 16, 0)) == wib(2026, 6, 9, 7, 30)
    assert cal.next_working_instant(wib(2026, 6, 8, 12, 0)) == wib(2026, 6, 8, 13, 0)
    assert cal.next_working_instant(wib(2026, 5, 29, 16, 30)) == wib(2026, 6, 2, 7, 30)
    assert cal.next_working_instant(inside).tzinfo is timezone.utc


def test_multi_day_span_over_weekend_and_holiday(cal):
    # Thu 450 + Fri 450 = 900; Sat, Sun, Mon 2026-08-17 (Independence Day) skipped;
    # last 100 min on Tuesday from 07:30.
    due = cal.add_working_time(wib(2026, 8, 13, 7, 30), 1000)
    assert due == wib(2026, 8, 18, 9, 10)


def test_cuti_bersama_skipped_only_when_included():
    start = wib(2025, 8, 15, 15, 30)  # Friday; Sun 17 Aug, Mon 18 Aug cuti bersama
    with_cuti = OfficeCalendar()
    without = OfficeCalendar(include_cuti_bersama=False)
    assert with_cuti.add_working_time(start, 120) == wib(2025, 8, 19, 8, 30)
    assert without.add_working_time(start, 120) == wib(2025, 8, 18, 8, 30)
    assert "Joint Holiday" in with_cuti.holiday_name(date(2025, 8, 18))
    assert without.holiday_name(date(2025, 8, 18)) is None
    assert not with_cuti.is_working_day(date(2025, 8, 18))
    assert without.is_working_day(date(2025, 8, 18))


def test_office_extra_day_off():
    cal = OfficeCalendar(extra_days_off=[date(2026, 6, 8)])  # an ordinary Monday
    assert not cal.is_working_day(date(2026, 6, 8))
    assert cal.holiday_name(date(2026, 6, 8)) is None
    assert cal.add_working_time(wib(2026, 6, 5, 15, 30), 120) == wib(2026, 6, 9, 8, 30)


def test_office_extra_working_day_on_saturday_uses_monday_hours():
    cal = OfficeCalendar(extra_working_days=[date(2026, 6, 6)])
    assert cal.is_working_day(date(2026, 6, 6))
    assert cal.add_working_time(wib(2026, 6, 5, 15, 30), 120) == wib(2026, 6, 6, 8, 30)
    # Monday hours: lunch break 12:00-13:00, close 16:00.
    assert cal.add_working_time(wib(2026, 6, 6, 11, 0), 120) == wib(2026, 6, 6, 14, 0)
    assert cal.working_minutes_between(wib(2026, 6, 6), wib(2026, 6, 7)) == 450


def test_extra_working_day_overrides_holiday():
    cal = OfficeCalendar(extra_working_days=[date(2026, 6, 1)])  # Pancasila Day
    assert cal.is_working_day(date(2026, 6, 1))
    assert cal.add_working_time(wib(2026, 5, 29, 15, 30), 120) == wib(2026, 6, 1, 8, 30)


def test_same_date_as_day_off_and_working_day_rejected():
    with pytest.raises(ValueError, match="both"):
        OfficeCalendar(extra_days_off=[date(2026, 6, 6)], extra_working_days=[date(2026, 6, 6)])


def test_custom_schedule():
    sched = WeeklySchedule.from_dict(
        {str(d): [["08:00", "12:00"]] for d in range(6)}  # Mon-Sat mornings
    )
    cal = OfficeCalendar(schedule=sched)
    assert cal.add_working_time(wib(2026, 6, 5, 11, 0), 120) == wib(2026, 6, 6, 9, 0)
    assert cal.add_working_time(wib(2026, 6, 6, 11, 0), 120) == wib(2026, 6, 8, 9, 0)


def test_empty_schedule_raises():
    cal = OfficeCalendar(schedule=WeeklySchedule({}))
    with pytest.raises(ValueError, match="no working"):
        cal.add_working_time(wib(2026, 6, 8, 9, 0), 10)


def test_bad_arguments(cal):
    with pytest.raises(ValueError, match="aware"):
        cal.add_working_time(datetime(2026, 6, 8, 9, 0), 10)
    with pytest.raises(ValueError):
        cal.add_working_time(wib(2026, 6, 8, 9, 0), -1)
    with pytest.raises(ValueError):
        cal.add_working_time(wib(2026, 6, 8, 9, 0), float("nan"))


# -- timezone ------------------------------------------------------------------


def test_utc_input_gives_same_answer_as_wib(cal):
    wib_start = wib(2026, 5, 29, 15, 30)
    utc_start = datetime(2026, 5, 29, 8, 30, tzinfo=timezone.utc)
    assert utc_start == wib_start
    due_utc = cal.add_working_time(utc_start, 120)
    due_wib = cal.add_working_time(wib_start, 120)
    assert due_utc == due_wib == datetime(2026, 6, 2, 1, 30, tzinfo=timezone.utc)
    assert due_utc.utcoffset() == timedelta(0) and due_wib.utcoffset() == timedelta(0)
    # 23:00 UTC Sunday is already 06:00 WIB Monday: the WIB date decides.
    assert cal.add_working_time(datetime(2026, 6, 7, 23, 0, tzinfo=timezone.utc), 30) == wib(
        2026, 6, 8, 8, 0
    )


# -- working_minutes_between -----------------------------------------------------


def test_working_minutes_between_concrete(cal):
    assert cal.working_minutes_between(wib(2026, 5, 29, 15, 30), wib(2026, 6, 2, 8, 30)) == 120
    assert cal.working_minutes_between(wib(2026, 8, 13, 7, 30), wib(2026, 8, 18, 9, 10)) == 1000
    assert cal.working_minutes_between(wib(2026, 6, 8), wib(2026, 6, 15)) == 2250
    assert cal.working_minutes_between(wib(2026, 6, 6), wib(2026, 6, 8)) == 0  # weekend
    assert cal.working_minutes_between(wib(2026, 6, 8, 12), wib(2026, 6, 8, 13)) == 0  # lunch


def test_working_minutes_between_end_not_after_start(cal):
    t = wib(2026, 6, 8, 9, 0)
    assert cal.working_minutes_between(t, t) == 0
    assert cal.working_minutes_between(t, t - timedelta(hours=5)) == 0


@pytest.mark.parametrize(
    "start",
    [
        wib(2026, 5, 29, 15, 30),  # Friday before holiday Monday
        wib(2026, 8, 14, 9, 45),  # Friday before Independence Day Monday
        wib(2025, 8, 15, 16, 0),  # Friday before cuti bersama Monday
        wib(2026, 6, 8, 7, 30),  # opening time
        wib(2026, 6, 5, 13, 0),  # after Friday prayers break
    ],
)
@pytest.mark.parametrize("minutes", [1, 5, 30, 59.5, 120, 450, 1000, 2250, 10_000])
def test_inverse_consistency(cal, start, minutes):
    due = cal.add_working_time(start, minutes)
    assert cal.working_minutes_between(start, due) == pytest.approx(minutes, abs=1e-6)


def test_fast_enough_for_every_task_start(cal):
    start = wib(2026, 6, 8, 10, 0)
    n = 500
    t0 = _time.perf_counter()
    for i in range(n):
        cal.add_working_time(start, 5 + i % 116)
    assert (_time.perf_counter() - t0) / n < 1e-3


# -- parse_iso_minutes -----------------------------------------------------------


@pytest.mark.parametrize(
    "expr, minutes",
    [
        ("PT120M", 120),
        ("PT2H", 120),
        ("PT1H30M", 90),
        ("PT90S", 1.5),
        ("P1D", 450),
        ("P2DT1H", 960),
        ("'PT30M'", 30),
        ('"PT2H"', 120),
        ("  'P1D' ", 450),
        ("pt15m", 15),
        ("PT0.5H", 30),
    ],
)
def test_parse_iso_minutes(expr, minutes):
    assert parse_iso_minutes(expr) == pytest.approx(minutes)


@pytest.mark.parametrize(
    "expr", ["PT", "P", "P1M", "P1Y", "P1W", "abc", "", "PT1H30", "P1DT", "-PT5M", "'PT5M\"", 120]
)
def test_parse_iso_minutes_rejects(expr):
    with pytest.raises(ValueError):
        parse_iso_minutes(expr)


def test_parse_iso_minutes_month_message_is_clear():
    with pytest.raises(ValueError, match="months"):
        parse_iso_minutes("P1M")
