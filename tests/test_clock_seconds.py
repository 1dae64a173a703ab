"""A started clock's row values are worked out per whole second of its start and of `now`
(sla/clocks.py `started`): exactly what the moments themselves give, fractions of a second and all."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from caseflow.catalog import Catalog
from caseflow.sla.clock_time import ts
from caseflow.sla.clocks import plan_fresh, schedule, started
from caseflow.values import parse_datetime

from .conftest import SHIPPED

CATALOG = Catalog.load(SHIPPED)
CLOCKS = [(d, c) for name in ("complaint", "refund", "member_card") for d in [CATALOG.get(name)] for c in d.clocks]


def _edge() -> datetime:
    """The first midnight the shipped calendar does not cover: where a deadline turns provisional and
    `now` is compared with that midnight."""
    calendar = CATALOG.calendar_for(CLOCKS[0][0])
    assert calendar is not None
    return datetime.combine(calendar.covered_until() + timedelta(days=1), time(), calendar.tz)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(range(len(CLOCKS))), st.integers(-40 * 86400, 40 * 86400), st.integers(0, 999_999),
       st.integers(-3, 3), st.integers(0, 999_999))
def test_a_started_clock_is_what_its_moments_give_to_the_microsecond(which: int, start_s: int, start_us: int,
                                                                   now_s: int, now_us: int) -> None:
    d, clock = CLOCKS[which]
    calendar = CATALOG.calendar_for(d)
    start = (_edge() + timedelta(seconds=start_s, microseconds=start_us)).astimezone(UTC)
    now = (_edge() + timedelta(seconds=now_s, microseconds=now_us)).astimezone(UTC)   # around the midnight
    values, note = started(clock, calendar, d.tz, start, now, "started")
    # what the moments themselves give: the row keeps the start in whole seconds; `now` unrounded
    plan = plan_fresh(clock, calendar, d.tz, parse_datetime(ts(start)))
    expected = schedule(plan, calendar, 0, now)
    assert values["started_at"] == ts(start)
    assert {k: values[k] for k in expected} == expected
    assert ("provisional" in note) == plan.due.provisional
