"""Exact money, UTC times, and typed parsing of operator input.

Money is `Decimal` with two places, stored as a string, never a float; times
are aware and stored as UTC ISO 8601. Operators type strings (`--set
amount=12.50`), so parsing by the field's schema happens here, once, with an
error that names the field.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

MONEY_MAX = Decimal("1000000000000")   # 1e12 yuan: no real refund is larger
STRING_MAX = 10_000                    # every text: field values, event inputs, notes, strings in --data and rows
YEAR_MIN, YEAR_MAX = 1900, 2999        # dates and times (deadline arithmetic must not overflow)
JSON_MAX_DEPTH = 64                    # nesting of typed JSON (--set arrays/objects, --data, import rows)

# An amount: ASCII or full-width digits, at most one decimal point, commas only between groups of three.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９．，－", "0123456789.,-")
_AMOUNT = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
COMMA_HINT = "a comma only separates thousands, as in 1,200.50; write decimals with a point: 12.50"


def check_length(text: str, what: str, limit: int = STRING_MAX) -> str:
    """The one size limit for every text an operator gives; `what` names it, never its value."""
    if len(text) > limit:
        raise ValueProblem(f"{what} is {len(text):,} characters; the limit is {limit:,}")
    return text


def check_text(text: str, what: str) -> str:
    """Operator text must be storable everywhere: valid UTF-8, no NUL."""
    if "\x00" in text:
        raise ValueProblem(f"{what} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueProblem(f"{what} is not valid UTF-8 text") from None
    return text


class ValueProblem(ValueError):
    """A value does not fit its field; the message is operator-facing."""


def parse_money(text: str | int | Decimal) -> Decimal:
    """An amount in yuan, two places: `1,000.50`, `１２３`, `8.5`; `12,50` and `1,2,3` are refused; `-0` is 0."""
    if isinstance(text, str):
        raw = text.strip().translate(_FULL_WIDTH)
        if not _AMOUNT.fullmatch(raw):
            hint = COMMA_HINT if "," in raw else "write e.g. 1200.50"
            raise ValueProblem(f"{text!r} is not an amount ({hint})")
        raw = raw.replace(",", "")
    else:
        raw = str(text)
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ValueProblem(f"{text!r} is not an amount (write e.g. 1200.50)") from None
    if not amount.is_finite():
        raise ValueProblem(f"{text!r} is not a finite amount")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueProblem(f"{text!r} has more than 2 decimal places")
    if amount < 0:
        raise ValueProblem(f"{text!r} is negative; amounts are ≥ 0")
    if amount >= MONEY_MAX:
        raise ValueProblem(f"{text!r} is too large")
    return abs(amount.quantize(Decimal("0.01")))      # -0 and -0.00 are 0.00 (no negative zero stored)


def format_money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def to_fen(amount: Decimal) -> int:
    return int(amount * 100)


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def parse_datetime(text: str, tz: ZoneInfo | None = None) -> datetime:
    """ISO 8601 → aware UTC; a time without offset is read in `tz` (the workflow's zone)."""
    if isinstance(text, str):                  # a step reads the same stored times many times
        return _parse_text(text, tz)
    return _parse_datetime(text, tz)


@lru_cache(maxsize=512)
def _parse_text(text: str, tz: ZoneInfo | None) -> datetime:
    return _parse_datetime(text, tz)


def _parse_datetime(text: str, tz: ZoneInfo | None) -> datetime:
    try:
        value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueProblem(f"{text!r} is not an ISO 8601 time (e.g. 2025-01-24T17:00)") from None
    if not YEAR_MIN <= value.year <= YEAR_MAX:      # deadline arithmetic must not overflow
        raise ValueProblem(f"{text!r} is outside the years {YEAR_MIN}–{YEAR_MAX}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz or UTC)
    return value.astimezone(UTC)


_LAST_FORMATTED: tuple[datetime | None, str] = (None, "")     # a step formats its one `now` many times


def format_datetime(value: datetime) -> str:
    """The one stored time format: UTC, milliseconds, `Z` (`2025-03-03T02:00:00.000Z`).

    Fixed width, so stored times compare as text; rows written before this
    format (`…:00Z`, `….200000Z`) are still read by `parse_datetime`.
    """
    global _LAST_FORMATTED
    last = _LAST_FORMATTED
    if last[0] is value:               # (hashing an aware datetime for the cache asks its utcoffset)
        return last[1]
    text = _formatted(value)
    _LAST_FORMATTED = (value, text)
    return text


def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_formatted = lru_cache(maxsize=64)(_utc_text)


def format_now() -> str:
    """The real time now, as `format_datetime` stores it (milliseconds truncated, as isoformat does).

    Every audit row records it: the text up to the second is formatted once per second, the
    milliseconds appended (a quarter of `datetime.now(UTC).isoformat(...)`'s cost)."""
    global _LAST_SECOND
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    last = _LAST_SECOND
    if last[0] != seconds:
        last = _LAST_SECOND = (seconds, datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{last[1]}{ns // 1_000_000:03d}Z"


_LAST_SECOND: tuple[int, str] = (-1, "")


def sortable_time(value: object, fallback: str | None = None) -> str | None:
    """Fixed-width UTC text (`2025-03-03T02:00:00.000000Z`) that sorts as time does, for indexed columns.

    `value` is a stored ISO 8601 time; when it is missing or unreadable, `fallback` is used instead.
    """
    for text in (value, fallback):
        if isinstance(text, str) and text:
            found = _sortable(text)
            if found is not None:
                return found
    return None


@lru_cache(maxsize=512)
def _sortable(text: str) -> str | None:
    try:
        return parse_datetime(text).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueProblem:
        return None


def show_datetime(text: str | None, tz: ZoneInfo) -> str:
    """Stored UTC → the workflow's local time, for operators."""
    if not text:
        return ""
    return _shown(text, tz)


@lru_cache(maxsize=512)
def _shown(text: str, tz: ZoneInfo) -> str:
    return parse_datetime(text).astimezone(tz).strftime("%Y-%m-%d %H:%M")


_TRUE = {"true", "yes", "1", "是", "y"}
_FALSE = {"false", "no", "0", "否", "n"}


def parse_input(raw: str, schema: Mapping[str, Any], tz: ZoneInfo) -> Any:
    """An operator's string for one field → the stored JSON value, checked against its type."""
    kind, fmt = schema.get("type"), schema.get("format")
    check_text(raw, "value")
    check_length(raw, "value")
    if kind == "string" and fmt == "money":
        return format_money(parse_money(raw))
    if kind == "string" and fmt == "date-time":
        return format_datetime(parse_datetime(raw, tz))
    if kind == "string" and fmt == "date":
        return parse_date(raw)
    if kind == "integer":
        try:
            number = int(raw.strip())
        except ValueError:
            raise ValueProblem(f"{raw!r} is not a whole number") from None
        if abs(number) >= 2**63:
            raise ValueProblem(f"{raw!r} is out of range")
        return number
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueProblem(f"{raw!r} is not true or false")
    if kind == "number":
        try:
            real = float(raw)
        except ValueError:
            raise ValueProblem(f"{raw!r} is not a number") from None
        if not math.isfinite(real):
            raise ValueProblem(f"{raw!r} is not a finite number")
        return real
    if kind in ("array", "object"):
        return parse_json(raw)
    return raw


def parse_date(text: str) -> str:
    """A calendar date `YYYY-MM-DD` inside the supported years, as stored."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueProblem(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not YEAR_MIN <= day.year <= YEAR_MAX:
        raise ValueProblem(f"{text!r} is outside the years {YEAR_MIN}–{YEAR_MAX}")
    return day.isoformat()


def check_date_format(value: object) -> bool:
    """jsonschema FormatChecker hook for `format: date`: ISO and inside the supported years."""
    if not isinstance(value, str):
        return True
    try:
        return parse_date(value) == value
    except ValueProblem:
        return False


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            check_length(key, "a key", 256)
            raise ValueProblem(f"duplicate key {key!r} (JSON keeps only the last; give each field once)")
        out[key] = value
    return out


def nesting(text: str) -> int:
    """The deepest `[`/`{` nesting outside strings, without recursion; stops counting past the limit."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > JSON_MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(raw: str) -> Any:
    """A JSON value an operator typed (`--set` of an array or object field): bounded depth, no duplicate key."""
    if nesting(raw) > JSON_MAX_DEPTH:
        raise ValueProblem(f"nesting deeper than {JSON_MAX_DEPTH} levels")
    try:
        return json.loads(raw, object_pairs_hook=no_duplicates)
    except ValueProblem:
        raise
    except ValueError:
        raise ValueProblem(f"{raw!r} is not valid JSON") from None


def check_datetime_format(value: object) -> bool:
    """jsonschema FormatChecker hook for `format: date-time` (values from --data files too)."""
    if not isinstance(value, str):
        return True
    try:
        parse_datetime(value)
        return True
    except ValueProblem:
        return False


def check_money_format(value: object) -> bool:
    """jsonschema FormatChecker hook for `format: money`."""
    if not isinstance(value, str):
        return True
    try:
        return format_money(parse_money(value)) == value
    except ValueProblem:
        return False


# caseflow's own `format`s of a data schema: jsonschema's FormatChecker runs these (definition/schema.py),
# and so does the quick field check before it (definition/evaluate.py) without importing jsonschema.
FORMATS: dict[str, Callable[[object], bool]] = {"money": check_money_format, "date-time": check_datetime_format,
                                                "date": check_date_format}


def add_months(moment: datetime, months: int, tz: ZoneInfo) -> datetime:
    """Calendar months in a zone, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29), in UTC.

    The one month arithmetic: CEL's add_months and SLA clocks of months or years both use it.
    """
    local = moment.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return local.replace(year=year, month=month, day=min(local.day, last)).astimezone(UTC)
