"""Mainland-China working-time calendar for SLA deadlines.

The statutory holidays and 调休 working days come from `chinese-calendar`,
whose dicts are copied (never mutated: adding one date to them would make
the whole year look "supported"). YAML overrides go on top. Everything is
folded once into a dense per-day table plus a sorted list of working-day
ordinals, so every query is a lookup or a `bisect`.

Days after the official data (and any years the YAML declares complete)
follow plain Mon–Fri; a deadline computed through them is `provisional`
and must be recomputed when the calendar is reloaded.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from caseflow.records import record

_US_PER_HOUR: Final = 3_600_000_000
_US_PER_MINUTE: Final = 60_000_000
# Years of plain Mon–Fri kept past the covered data; far beyond any SLA horizon.
_HORIZON_YEARS: Final = 10
_PERIOD_RE: Final = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_KEYS: Final = frozenset(
    {"label_zh", "timezone", "source", "working_hours", "holidays", "workdays", "complete_years"}
)


from caseflow.errors import CalendarError  # noqa: E402  (one error hierarchy)


@record(frozen=True)
class Deadline:
    """A computed deadline; `provisional` deadlines rely on estimated (Mon–Fri) days."""

    at: datetime
    provisional: bool


class BusinessCalendar:
    """Working days and working hours of one named calendar."""

    def __init__(
        self,
        name: str,
        tz: ZoneInfo,
        periods: list[tuple[int, int]],
        holidays: set[date],
        workdays: set[date],
        complete_years: set[int],
    ) -> None:
        self.name = name
        self.tz = tz
        self._periods = periods
        self._day_us = sum(end - start for start, end in periods)
        self._build_table(holidays, workdays, complete_years)

    # -- construction -----------------------------------------------------

    @classmethod
    def from_config(cls, name: str, config: dict[str, Any]) -> BusinessCalendar:
        """Build from one entry of calendars.yaml; errors name the calendar and key."""
        try:
            return cls._from_config(name, config)
        except CalendarError as exc:
            raise CalendarError(f"calendar {name!r}: {exc}") from None

    @classmethod
    def _from_config(cls, name: str, config: dict[str, Any]) -> BusinessCalendar:
        if not isinstance(config, dict):
            raise CalendarError("entry must be a mapping")
        for key in config:
            if key not in _KEYS:
                from difflib import get_close_matches  # only for a typo (not at start-up)
                close = get_close_matches(str(key), sorted(_KEYS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise CalendarError(f"unknown key {key!r}{hint}")
        if config.get("source", "chinese-calendar") != "chinese-calendar":
            raise CalendarError(f"source must be 'chinese-calendar', not {config['source']!r}")
        holidays = _parse_dates(config.get("holidays", []), "holidays")
        workdays = _parse_dates(config.get("workdays", []), "workdays")
        both = sorted(holidays & workdays)
        if both:
            raise CalendarError(f"{both[0]} is listed in both holidays and workdays")
        return cls(
            name,
            _parse_tz(config.get("timezone")),
            _parse_periods(config.get("working_hours")),
            holidays,
            workdays,
            _parse_years(config.get("complete_years", [])),
        )

    def _build_table(self, holidays: set[date], workdays: set[date], complete: set[int]) -> None:
        """Fold base data and overrides into one flag per day, plus working-day ordinals."""
        import chinese_calendar.constants as _cc  # only when a calendar is built, not when one is unpickled
        first_year = min(_cc.holidays).year
        last_year = max(_cc.holidays).year
        for year in sorted(complete):
            if year == last_year + 1:
                last_year = year
            elif year > last_year:
                raise CalendarError(
                    f"complete_years skips {last_year + 1}: coverage must continue without gaps"
                )
        self._covered_from = date(first_year, 1, 1)
        self._covered_until = date(last_year, 12, 31)
        self._first_ord = self._covered_from.toordinal()
        self._last_day = date(last_year + _HORIZON_YEARS, 12, 31)
        flags = bytearray(
            date.fromordinal(o).weekday() < 5
            for o in range(self._first_ord, self._last_day.toordinal() + 1)
        )
        self._flags = flags
        self._apply(dict.fromkeys(_cc.holidays, False) | dict.fromkeys(_cc.workdays, True))
        self._apply(dict.fromkeys(holidays, False) | dict.fromkeys(workdays, True))
        self._ords = [self._first_ord + i for i, flag in enumerate(flags) if flag]

    def _apply(self, days: dict[date, bool]) -> None:
        for day, working in days.items():
            self._flags[self._index(day)] = working

    def _index(self, day: date) -> int:
        index = day.toordinal() - self._first_ord
        if not 0 <= index < len(self._flags):
            raise CalendarError(
                f"{day} is outside the calendar's range {self._covered_from}..{self._last_day}"
            )
        return index

    # -- days -------------------------------------------------------------

    @property
    def hours_per_day(self) -> float:
        """Working hours in one working day (7.5 for 09:00-12:00 + 13:30-18:00)."""
        return self._day_us / _US_PER_HOUR

    def is_workday(self, day: date) -> bool:
        """True when `day` (a local date) is a working day."""
        return bool(self._flags[self._index(_as_date(day))])

    def is_provisional(self, day: date) -> bool:
        """True when `day` lies outside the official data and declared-complete years."""
        day = _as_date(day)
        return not self._covered_from <= day <= self._covered_until

    def covered_until(self) -> date:
        """Last day whose working status is official rather than estimated."""
        return self._covered_until

    # -- arithmetic -------------------------------------------------------

    def add_working_hours(self, start: datetime, hours: float | Decimal) -> Deadline:
        """The earliest instant at which `hours` of working time have elapsed since `start`.

        A start outside working hours begins counting at the next working
        period; a deadline that uses up a day exactly ends at that day's
        close (18:00), not at the next opening.
        """
        return self._add_us(start, _hours_to_us(hours))

    def add_working_days_elapsed(self, start: datetime, n: int) -> Deadline:
        """`n` working days as elapsed time: `n * hours_per_day` working hours."""
        return self._add_us(start, _non_negative(n, "n") * self._day_us)

    def end_of_nth_working_day(self, start: datetime, n: int) -> Deadline:
        """Close of business of the Nth working day after `start`'s local date.

        The time of day of `start` does not matter: day 1 is the first working
        day strictly after the local date, even when `start` is 08:00.
        """
        if _non_negative(n, "n") < 1:
            raise CalendarError(f"n must be at least 1, got {n}")
        local = self._local(start)
        self._index(local.date())
        position = bisect_right(self._ords, local.date().toordinal()) + n - 1
        day = self._working_day(position)
        return self._deadline(local.date(), day, self._periods[-1][1])

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after `start`'s local date up to and including `end`'s (0 if none)."""
        first, last = self._local(start).date(), self._local(end).date()
        for day in (first, last):
            self._index(day)
        after_first = bisect_right(self._ords, first.toordinal())
        return max(bisect_right(self._ords, last.toordinal()) - after_first, 0)

    def remaining_working_hours(self, now: datetime, due: datetime) -> float:
        """Working hours left from `now` until `due`; 0 once `due` has passed."""
        left = self._elapsed_us(self._local(due)) - self._elapsed_us(self._local(now))
        return max(left, 0) / _US_PER_HOUR

    # -- internals --------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        if not isinstance(moment, datetime):
            raise CalendarError(f"expected a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise CalendarError(
                f"naive datetime {moment.isoformat()} (timestamps must be timezone-aware)"
            )
        return moment.astimezone(self.tz)

    def _elapsed_us(self, local: datetime) -> int:
        """Working microseconds from the table start up to `local`: a monotone clock."""
        day = local.date()
        before = bisect_left(self._ords, day.toordinal()) * self._day_us
        if not self._flags[self._index(day)]:
            return before
        clock = _us_of_day(local.time())
        return before + sum(max(0, min(end, clock) - start) for start, end in self._periods)

    def _add_us(self, start: datetime, amount: int) -> Deadline:
        local = self._local(start)
        if amount == 0:
            return Deadline(start.astimezone(UTC), self.is_provisional(local.date()))
        target = self._elapsed_us(local) + amount
        position, into_day = divmod(target - 1, self._day_us)
        day = self._working_day(position)
        return self._deadline(local.date(), day, self._clock_at(into_day + 1))

    def _clock_at(self, into_day: int) -> int:
        """Time of day (µs) by which `into_day` µs (0 < x <= a day) of working time are used."""
        for start, end in self._periods:
            if into_day <= end - start:
                return start + into_day
            into_day -= end - start
        raise AssertionError("into_day exceeds the working day")

    def _working_day(self, position: int) -> date:
        if position >= len(self._ords):
            raise CalendarError(
                f"deadline falls after {self._last_day}, the end of calendar {self.name!r}"
            )
        return date.fromordinal(self._ords[position])

    def _deadline(self, first: date, last: date, clock_us: int) -> Deadline:
        """Build a UTC deadline; coverage is one interval, so checking the ends suffices."""
        local = datetime.combine(last, time(), tzinfo=self.tz) + timedelta(microseconds=clock_us)
        provisional = self.is_provisional(first) or self.is_provisional(last)
        return Deadline(local.astimezone(UTC), provisional)


def load_calendars(path: Path) -> dict[str, BusinessCalendar]:
    """Parse calendars.yaml; any problem is one CalendarError line prefixed by the file."""
    return calendars_from_text(None, path)


def calendars_from_text(text: str | None, path: Path | str = "calendars.yaml") -> dict[str, BusinessCalendar]:
    """Parse calendars (the file at `path`, or a stored `text`)."""
    from caseflow.definition.schema import check_document
    from caseflow.definition.source import parse_source, read_source  # same safety as workflow files
    from caseflow.errors import DefinitionError
    try:
        src = read_source(path) if text is None else parse_source(text.encode("utf-8"), str(path))
    except DefinitionError as exc:
        raise CalendarError(f"cannot read calendars: {exc}") from None
    document = src.data
    entries = document.get("calendars") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise CalendarError(f"{path}: expected a non-empty 'calendars:' mapping at the top level")
    try:
        calendars = {
            str(name): BusinessCalendar.from_config(str(name), cfg) for name, cfg in entries.items()
        }
    except CalendarError as exc:
        raise CalendarError(f"{path}: {exc}") from None
    problems = check_document(src, "calendars")     # what the checks above do not cover (schema of the file)
    if problems:
        raise CalendarError(str(problems[0]))
    return calendars


# -- config parsing helpers ---------------------------------------------------


def _parse_tz(value: Any) -> ZoneInfo:
    if not isinstance(value, str):
        raise CalendarError("timezone is required, e.g. 'Asia/Shanghai'")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"unknown timezone {value!r}") from None


def _parse_periods(value: Any) -> list[tuple[int, int]]:
    """Parse ["09:00-12:00", ...] into sorted, non-overlapping (start, end) µs-of-day pairs."""
    if not isinstance(value, list) or not value:
        raise CalendarError("working_hours must be a non-empty list like ['09:00-12:00']")
    periods = [_parse_period(item) for item in value]
    for (_, prev_end), (start, _) in zip(periods, periods[1:]):
        if start < prev_end:
            raise CalendarError("working_hours periods must be in order and must not overlap")
    return periods


def _parse_period(item: Any) -> tuple[int, int]:
    match = _PERIOD_RE.match(item) if isinstance(item, str) else None
    if not match:
        raise CalendarError(f"working_hours entry {item!r} is not 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = (h1 * 60 + m1) * _US_PER_MINUTE, (h2 * 60 + m2) * _US_PER_MINUTE
    if m1 > 59 or m2 > 59 or not 0 <= start < end <= 24 * _US_PER_HOUR:
        raise CalendarError(f"working_hours entry {item!r} is not a period within one day")
    return start, end


def _parse_dates(value: Any, key: str) -> set[date]:
    if not isinstance(value, list):
        raise CalendarError(f"{key} must be a list of YYYY-MM-DD dates")
    days: set[date] = set()
    for item in value:
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(item))
        except (TypeError, ValueError):
            raise CalendarError(f"{key} entry {item!r} is not a YYYY-MM-DD date") from None
    return days


def _parse_years(value: Any) -> set[int]:
    if not isinstance(value, list) or not all(type(y) is int for y in value):
        raise CalendarError("complete_years must be a list of years, e.g. [2027]")
    return set(value)


def _hours_to_us(hours: float | Decimal) -> int:
    """Convert hours to whole microseconds exactly (2.1 means 2.1, not its binary float)."""
    if isinstance(hours, bool) or not isinstance(hours, (int, float, Decimal)):
        raise CalendarError(f"hours must be a number, got {hours!r}")
    try:
        amount = (Decimal(str(hours)) * _US_PER_HOUR).to_integral_value(ROUND_HALF_EVEN)
        result = int(amount)
    except (InvalidOperation, ValueError, OverflowError):
        raise CalendarError(f"hours must be a finite number, got {hours!r}") from None
    if result < 0:
        raise CalendarError(f"hours must not be negative, got {hours}")
    return result


def _non_negative(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CalendarError(f"{what} must be an integer, got {value!r}")
    if value < 0:
        raise CalendarError(f"{what} must not be negative, got {value}")
    return value


def _as_date(day: date) -> date:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise CalendarError(f"expected a local date, got {day!r}")
    return day


def _us_of_day(clock: time) -> int:
    return ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond
