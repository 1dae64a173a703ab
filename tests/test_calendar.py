"""The working-time calendar against the official 2025 schedule and SLA rules.

Where the installed chinese-calendar's data ends (LAST, a year) is read from the package, never
assumed: a new release of it that adds a year moves every boundary below with it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseflow.catalog import SHIPPED
from caseflow.sla.calendar import BusinessCalendar, CalendarError, Deadline, load_calendars

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDARS_YAML = SHIPPED / "calendars.yaml"
OFFICE: dict[str, Any] = {
    "label_zh": "客服部工作时间",
    "timezone": "Asia/Shanghai",
    "source": "chinese-calendar",
    "working_hours": ["09:00-12:00", "13:30-18:00"],
    "holidays": [],
    "workdays": [],
}


FIRST = min(chinese_calendar.holidays).year       # the years the installed package covers
LAST = max(chinese_calendar.holidays).year
NEXT = LAST + 1                                    # the first year without official data
HORIZON = LAST + 10                                # how far the calendar computes at all (provisionally)
WORKDAYS_OF_LAST = chinese_calendar.get_workdays(date(LAST, 1, 1), date(LAST, 12, 31))
LAST_WORKDAY = WORKDAYS_OF_LAST[-1]
# The last start whose 90th working day still falls in LAST (so its deadline is official).
LAST_OFFICIAL_90_START = WORKDAYS_OF_LAST[-90] - timedelta(days=1)


def weekdays_of_next(count: int, skip: tuple[date, ...] = ()) -> list[date]:
    """The first `count` Monday–Friday days of NEXT: how days without data are counted."""
    out, day = [], date(NEXT, 1, 1)
    while len(out) < count:
        if day.weekday() < 5 and day not in skip:
            out.append(day)
        day += timedelta(days=1)
    return out


def at_day(day: date, hour: int, minute: int = 0) -> datetime:
    return sh(day.year, day.month, day.day, hour, minute)


def sh(*args: int) -> datetime:
    """A Shanghai wall-clock time."""
    return datetime(*args, tzinfo=SHANGHAI)


def local(deadline: Deadline) -> datetime:
    return deadline.at.astimezone(SHANGHAI)


def office(**overrides: Any) -> BusinessCalendar:
    return BusinessCalendar.from_config("cn_office", {**OFFICE, **overrides})


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return load_calendars(CALENDARS_YAML)["cn_office"]


# -- the shipped calendars.yaml ---------------------------------------------


def test_shipped_calendars_yaml_defines_cn_office(cal: BusinessCalendar) -> None:
    assert cal.name == "cn_office"
    assert cal.tz.key == "Asia/Shanghai"
    assert cal.hours_per_day == 7.5
    assert cal.covered_until() == date(LAST, 12, 31)


# -- working days: statutory holidays and 调休 ---------------------------------


@pytest.mark.parametrize("day", [date(2025, 10, d) for d in range(1, 9)])
def test_national_day_2025_is_oct_1_to_8_off(cal: BusinessCalendar, day: date) -> None:
    assert not cal.is_workday(day)


@pytest.mark.parametrize("day", [date(2025, 1, 28) + timedelta(days=i) for i in range(8)])
def test_spring_festival_2025_is_jan_28_to_feb_4_off(cal: BusinessCalendar, day: date) -> None:
    assert not cal.is_workday(day)


@pytest.mark.parametrize(
    "day",
    [date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)],
)
def test_tiaoxiu_weekend_days_of_2025_are_working_days(cal: BusinessCalendar, day: date) -> None:
    assert day.weekday() >= 5
    assert cal.is_workday(day)


def test_ordinary_weekend_is_off_and_weekday_is_working(cal: BusinessCalendar) -> None:
    assert not cal.is_workday(date(2025, 3, 8))
    assert cal.is_workday(date(2025, 3, 10))


def test_every_day_from_2025_to_the_last_covered_year_matches_chinese_calendar(cal: BusinessCalendar) -> None:
    day = date(2025, 1, 1)
    while day <= date(LAST, 12, 31):
        assert cal.is_workday(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_package_data_is_not_mutated_by_overrides() -> None:
    before = (dict(chinese_calendar.constants.holidays), dict(chinese_calendar.constants.workdays))
    office(holidays=["2025-03-10"], workdays=["2025-03-08"], complete_years=[NEXT])
    assert (chinese_calendar.constants.holidays, chinese_calendar.constants.workdays) == before


# -- working hours ---------------------------------------------------------------


def test_two_hours_from_friday_before_spring_festival_end_on_the_tiaoxiu_sunday(
    cal: BusinessCalendar,
) -> None:
    deadline = cal.add_working_hours(sh(2025, 1, 24, 17, 0), 2)
    assert local(deadline) == sh(2025, 1, 26, 10, 0)
    assert deadline.provisional is False


def test_lunch_break_is_not_counted(cal: BusinessCalendar) -> None:
    assert local(cal.add_working_hours(sh(2025, 3, 10, 11, 0), 2)) == sh(2025, 3, 10, 14, 30)


def test_start_during_lunch_counts_from_afternoon_opening(cal: BusinessCalendar) -> None:
    assert local(cal.add_working_hours(sh(2025, 3, 10, 12, 40), 1)) == sh(2025, 3, 10, 14, 30)


def test_start_on_a_holiday_counts_from_next_working_morning(cal: BusinessCalendar) -> None:
    assert local(cal.add_working_hours(sh(2025, 10, 3, 15, 0), 1)) == sh(2025, 10, 9, 10, 0)


def test_start_after_close_counts_from_next_working_morning(cal: BusinessCalendar) -> None:
    deadline = cal.add_working_hours(sh(2025, 3, 10, 20, 0), Decimal("0.5"))
    assert local(deadline) == sh(2025, 3, 11, 9, 30)


def test_using_up_a_day_exactly_ends_at_close_not_next_opening(cal: BusinessCalendar) -> None:
    assert local(cal.add_working_hours(sh(2025, 3, 10, 9, 0), 7.5)) == sh(2025, 3, 10, 18, 0)


def test_zero_hours_is_the_start_itself(cal: BusinessCalendar) -> None:
    start = sh(2025, 3, 8, 20, 0)
    assert cal.add_working_hours(start, 0).at == start


def test_fractional_hours_are_exact(cal: BusinessCalendar) -> None:
    assert local(cal.add_working_hours(sh(2025, 3, 10, 9, 0), 0.1)) == sh(2025, 3, 10, 9, 6)


def test_results_are_aware_utc(cal: BusinessCalendar) -> None:
    at = cal.add_working_hours(sh(2025, 3, 10, 9, 0), 1).at
    assert at.tzinfo is UTC
    assert at == datetime(2025, 3, 10, 2, 0, tzinfo=UTC)


def test_utc_input_is_converted_to_shanghai_before_counting(cal: BusinessCalendar) -> None:
    # 2025-03-09 23:00 UTC is Monday 07:00 in Shanghai: counting starts at 09:00.
    start = datetime(2025, 3, 9, 23, 0, tzinfo=UTC)
    assert local(cal.add_working_hours(start, 1)) == sh(2025, 3, 10, 10, 0)


# -- "within N working days": the two conventions ------------------------------------


def test_two_working_days_elapsed_across_national_day(cal: BusinessCalendar) -> None:
    assert local(cal.add_working_days_elapsed(sh(2025, 9, 30, 16, 0), 2)) == sh(2025, 10, 10, 16, 0)


def test_end_of_second_working_day_across_national_day(cal: BusinessCalendar) -> None:
    assert local(cal.end_of_nth_working_day(sh(2025, 9, 30, 16, 0), 2)) == sh(2025, 10, 10, 18, 0)


def test_end_of_nth_working_day_ignores_start_time_of_day(cal: BusinessCalendar) -> None:
    early = cal.end_of_nth_working_day(sh(2025, 9, 30, 0, 5), 1)
    assert local(early) == sh(2025, 10, 9, 18, 0)


def test_end_of_nth_working_day_needs_n_of_at_least_one(cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError) as caught:
        cal.end_of_nth_working_day(sh(2025, 3, 10, 9, 0), 0)
    assert str(caught.value) == "n must be at least 1, got 0"


def test_ninety_working_days_after_a_2025_date(cal: BusinessCalendar) -> None:
    start = sh(2025, 3, 3, 10, 0)
    deadline = cal.end_of_nth_working_day(start, 90)
    assert local(deadline) == sh(2025, 7, 11, 18, 0)
    assert len(chinese_calendar.get_workdays(date(2025, 3, 4), date(2025, 7, 11))) == 90
    assert cal.working_days_between(start, deadline.at) == 90
    assert cal.working_days_between(start, deadline.at - timedelta(days=1)) == 89
    assert deadline.provisional is False


def test_ninety_working_days_elapsed_equals_675_working_hours(cal: BusinessCalendar) -> None:
    start = sh(2025, 3, 3, 10, 0)
    assert cal.add_working_days_elapsed(start, 90) == cal.add_working_hours(start, 675)
    assert local(cal.add_working_days_elapsed(start, 90)) == sh(2025, 7, 11, 10, 0)


def test_working_days_between_skips_national_day(cal: BusinessCalendar) -> None:
    assert cal.working_days_between(sh(2025, 9, 30, 16, 0), sh(2025, 10, 9, 8, 0)) == 1
    assert cal.working_days_between(sh(2025, 9, 30, 16, 0), sh(2025, 10, 8, 23, 0)) == 0
    assert cal.working_days_between(sh(2025, 10, 9, 9, 0), sh(2025, 9, 30, 9, 0)) == 0


def test_remaining_working_hours_counts_only_working_time(cal: BusinessCalendar) -> None:
    due = cal.add_working_hours(sh(2025, 1, 24, 17, 0), 2).at
    assert cal.remaining_working_hours(sh(2025, 1, 25, 12, 0), due) == 1.0
    assert cal.remaining_working_hours(sh(2025, 1, 26, 9, 30), due) == 0.5
    assert cal.remaining_working_hours(sh(2025, 1, 27, 9, 0), due) == 0


# -- provisional deadlines beyond the official data ----------------------------------


def test_working_hours_into_the_first_uncovered_year_are_provisional(cal: BusinessCalendar) -> None:
    deadline = cal.add_working_hours(at_day(LAST_WORKDAY, 17, 0), 2)
    assert local(deadline) == at_day(weekdays_of_next(1)[0], 10, 0)
    assert deadline.provisional is True
    assert cal.add_working_hours(at_day(LAST_WORKDAY, 9, 0), 2).provisional is False


def test_a_deadline_beyond_the_calendar_horizon_is_refused(cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError) as caught:
        cal.end_of_nth_working_day(sh(HORIZON, 12, 1, 9, 0), 90)
    assert str(caught.value) == f"deadline falls after {HORIZON}-12-31, the end of calendar 'cn_office'"


def test_dates_before_the_data_are_refused(cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError) as caught:
        cal.end_of_nth_working_day(sh(FIRST - 1, 6, 2, 9, 0), 1)
    assert str(caught.value) == (f"{FIRST - 1}-06-02 is outside the calendar's range "
                                 f"{FIRST}-01-01..{HORIZON}-12-31")


def test_a_deadline_in_the_first_uncovered_year_is_provisional(cal: BusinessCalendar) -> None:
    deadline = cal.end_of_nth_working_day(at_day(LAST_WORKDAY, 10, 0), 1)
    first = weekdays_of_next(1)[0]
    assert local(deadline) == at_day(first, 18, 0)  # the new year's holidays are not known yet
    assert deadline.provisional is True
    assert cal.is_provisional(first)
    assert not cal.is_provisional(date(LAST, 12, 31))


def test_the_last_start_with_an_official_90_working_day_deadline(cal: BusinessCalendar) -> None:
    official = cal.end_of_nth_working_day(at_day(LAST_OFFICIAL_90_START, 10, 0), 90)
    assert not official.provisional and local(official).date() == LAST_WORKDAY
    assert cal.end_of_nth_working_day(at_day(LAST_OFFICIAL_90_START + timedelta(days=1), 10, 0), 90).provisional


def test_days_after_coverage_are_plain_monday_to_friday(cal: BusinessCalendar) -> None:
    day = date(NEXT, 1, 1)
    for _ in range(14):
        assert cal.is_workday(day) == (day.weekday() < 5), day
        day += timedelta(days=1)


def test_complete_years_make_the_next_year_official() -> None:
    new_year = weekdays_of_next(1)[0]
    cal = office(holidays=[new_year.isoformat()], complete_years=[NEXT])
    assert cal.covered_until() == date(NEXT, 12, 31)
    deadline = cal.end_of_nth_working_day(at_day(LAST_WORKDAY, 10, 0), 1)
    assert local(deadline) == at_day(weekdays_of_next(1, skip=(new_year,))[0], 18, 0)
    assert deadline.provisional is False


def test_one_override_date_does_not_make_its_year_official() -> None:
    cal = office(holidays=[f"{NEXT}-01-01"])
    assert cal.covered_until() == date(LAST, 12, 31)
    assert cal.is_provisional(date(NEXT, 3, 1))


# -- YAML overrides ------------------------------------------------------------------------


def test_override_holiday_is_honoured() -> None:
    cal = office(holidays=["2025-03-10"])
    assert not cal.is_workday(date(2025, 3, 10))
    assert local(cal.add_working_hours(sh(2025, 3, 7, 17, 0), 2)) == sh(2025, 3, 11, 10, 0)


def test_override_working_day_is_honoured() -> None:
    cal = office(workdays=[date(2025, 3, 8)])
    assert cal.is_workday(date(2025, 3, 8))
    assert local(cal.add_working_hours(sh(2025, 3, 7, 17, 0), 2)) == sh(2025, 3, 8, 10, 0)


def test_override_can_restore_a_statutory_holiday_as_working() -> None:
    cal = office(workdays=["2025-10-08"])
    assert local(cal.end_of_nth_working_day(sh(2025, 9, 30, 16, 0), 1)) == sh(2025, 10, 8, 18, 0)


def test_overrides_in_yaml_file_are_honoured(tmp_path: Path) -> None:
    path = tmp_path / "calendars.yaml"
    path.write_text(
        "calendars:\n"
        "  cn_office:\n"
        "    timezone: Asia/Shanghai\n"
        '    working_hours: ["09:00-12:00", "13:30-18:00"]\n'
        "    holidays: [2025-03-10]\n"
        "    workdays: ['2025-03-15']\n",
        encoding="utf-8",
    )
    cal = load_calendars(path)["cn_office"]
    assert not cal.is_workday(date(2025, 3, 10))
    assert cal.is_workday(date(2025, 3, 15))


# -- refusals ------------------------------------------------------------------------------


def test_naive_datetime_is_refused(cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError) as caught:
        cal.add_working_hours(datetime(2025, 3, 10, 9, 0), 1)
    assert str(caught.value) == (
        "naive datetime 2025-03-10T09:00:00 (timestamps must be timezone-aware)"
    )


@pytest.mark.parametrize(
    "method", ["end_of_nth_working_day", "add_working_days_elapsed"]
)
def test_naive_datetime_is_refused_by_day_arithmetic(cal: BusinessCalendar, method: str) -> None:
    with pytest.raises(CalendarError):
        getattr(cal, method)(datetime(2025, 3, 10, 9, 0), 1)


def test_naive_datetime_is_refused_by_comparisons(cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError):
        cal.working_days_between(sh(2025, 3, 10, 9, 0), datetime(2025, 3, 12))
    with pytest.raises(CalendarError):
        cal.remaining_working_hours(datetime(2025, 3, 10), sh(2025, 3, 12, 9, 0))


def test_negative_hours_are_refused(cal: BusinessCalendar) -> None:
    with pytest.raises(CalendarError) as caught:
        cal.add_working_hours(sh(2025, 3, 10, 9, 0), -1)
    assert str(caught.value) == "hours must not be negative, got -1"


def test_calendar_error_is_a_value_error() -> None:
    assert issubclass(CalendarError, ValueError)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"working_hours": ["9-12"]},
            "calendar 'cn_office': working_hours entry '9-12' is not 'HH:MM-HH:MM'",
        ),
        (
            {"working_hours": ["13:30-18:00", "09:00-12:00"]},
            "calendar 'cn_office': working_hours periods must be in order and must not overlap",
        ),
        (
            {"working_hours": ["12:00-09:00"]},
            "calendar 'cn_office': working_hours entry '12:00-09:00' is not a period within one day",
        ),
        ({"timezone": "Asia/Shanghia"}, "calendar 'cn_office': unknown timezone 'Asia/Shanghia'"),
        (
            {"holidays": ["2025-13-01"]},
            "calendar 'cn_office': holidays entry '2025-13-01' is not a YYYY-MM-DD date",
        ),
        (
            {"holidays": ["2025-03-08"], "workdays": ["2025-03-08"]},
            "calendar 'cn_office': 2025-03-08 is listed in both holidays and workdays",
        ),
        ({"holiday": []}, "calendar 'cn_office': unknown key 'holiday' (did you mean 'holidays'?)"),
        ({"source": "holidays"}, "calendar 'cn_office': source must be 'chinese-calendar', not 'holidays'"),
        (
            {"complete_years": [NEXT + 1]},
            f"calendar 'cn_office': complete_years skips {NEXT}: coverage must continue without gaps",
        ),
    ],
)
def test_bad_calendar_config_is_one_clear_line(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CalendarError) as caught:
        office(**overrides)
    assert str(caught.value) == message


def test_bad_calendars_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "calendars.yaml"
    path.write_text("calendars:\n  cn_office:\n    timezone: Asia/Shanghai\n", encoding="utf-8")
    with pytest.raises(CalendarError) as caught:
        load_calendars(path)
    assert str(caught.value) == (
        f"{path}: calendar 'cn_office': working_hours must be a non-empty list like ['09:00-12:00']"
    )


def test_calendars_file_without_calendars_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calendars.yaml"
    path.write_text("cn_office: {}\n", encoding="utf-8")
    with pytest.raises(CalendarError) as caught:
        load_calendars(path)
    assert str(caught.value) == f"{path}: expected a non-empty 'calendars:' mapping at the top level"


# -- property: agrees with a naive period-by-period walker --------------------------------

PLAIN_OFFICE = BusinessCalendar.from_config("cn_office", OFFICE)
PERIODS = [((9, 0), (12, 0)), ((13, 30), (18, 0))]


def walk(start: datetime, hours: Decimal) -> datetime:
    """Reference oracle: step through each period of each chinese_calendar working day."""
    remaining = timedelta(hours=float(hours))
    moment = start.astimezone(SHANGHAI)
    day = moment.date()
    while True:
        if chinese_calendar.is_workday(day):
            for (h1, m1), (h2, m2) in PERIODS:
                opens = sh(day.year, day.month, day.day, h1, m1)
                closes = sh(day.year, day.month, day.day, h2, m2)
                begin = max(opens, moment)
                if begin >= closes:
                    continue
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
        moment = sh(day.year, day.month, day.day, 0, 0)


starts = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime.combine(LAST_OFFICIAL_90_START, datetime.max.time())
).map(lambda naive: naive.replace(tzinfo=SHANGHAI))
quarter_hours = st.integers(min_value=1, max_value=4 * 400).map(lambda q: Decimal(q) / 4)


@settings(max_examples=400, deadline=None)
@given(start=starts, hours=quarter_hours)
def test_add_working_hours_matches_naive_walker(start: datetime, hours: Decimal) -> None:
    calendar = PLAIN_OFFICE
    deadline = calendar.add_working_hours(start, hours)
    assert deadline.at == walk(start, hours)
    assert deadline.provisional is False
    assert calendar.remaining_working_hours(start, deadline.at) == float(hours)


@settings(max_examples=200, deadline=None)
@given(start=starts, n=st.integers(min_value=1, max_value=90))
def test_end_of_nth_working_day_is_n_working_days_later(start: datetime, n: int) -> None:
    calendar = PLAIN_OFFICE
    deadline = calendar.end_of_nth_working_day(start, n)
    due_day = local(deadline).date()
    assert chinese_calendar.is_workday(due_day)
    assert len(chinese_calendar.get_workdays(start.date() + timedelta(days=1), due_day)) == n
    assert calendar.working_days_between(start, deadline.at) == n
