"""A breach of a provisional deadline is marked provisional in the log and judged again once the calendar
covers it: kept, moved, or withdrawn with the reason (runtime/rejudge.py; issue #14's New Year's Day).

The complaint's 2-working-day clock accepted on the last working day but one of the last year the
installed chinese-calendar covers falls due on the first weekday of the next year (GUESS), a Mon–Fri
guess; once that day is known to be a holiday the real deadline is the next weekday (REAL).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from caseflow.audit.verify import verify
from caseflow.catalog import SHIPPED, Catalog
from caseflow.runtime.engine import Engine
from caseflow.runtime.identity import apply_org
from caseflow.runtime.sweep import sweep
from caseflow.store.tables import sla_windows

from .conftest import audit_rows
from .test_sla import GUESS, LAST, NEXT, REAL, accepted_at_year_end, at, timer

CLOCK = "dept_result_2wd"


def calendar_arrives(engine: Engine, clock, tmp_path: Path, holidays: list[date]) -> Engine:  # noqa: ANN001
    """The next year's calendar put in force with `org apply` (as the issue's calendars.yaml update)."""
    folder = tmp_path / f"cal-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(SHIPPED, folder)
    text = (folder / "calendars.yaml").read_text(encoding="utf-8")
    text = text.replace("    holidays: []", f"    holidays: [{', '.join(map(str, holidays))}]")
    text = text.replace("    complete_years: []", f"    complete_years: [{NEXT}]")
    (folder / "calendars.yaml").write_text(text, encoding="utf-8")
    apply_org(engine, Catalog.load(folder), "zhang.wei", f"{NEXT} holidays published")
    return Engine(engine.store, Catalog.load(folder), clock)


def breached_provisionally(engine: Engine, clock) -> str:  # noqa: ANN001
    cid = accepted_at_year_end(engine, clock)
    clock.set(f"{GUESS} 10:01")
    assert sweep(engine, engine.now()).breached >= 1      # (the wall-clock 24 h solution clock too)
    assert timer(engine.store, cid, CLOCK)["status"] == "breached"
    return cid


def clock_rows(store, cid: str) -> list[dict[str, Any]]:  # noqa: ANN001
    return [r for r in audit_rows(store, cid) if r["kind"] == "sla" and r["event"] == CLOCK]


def window(store, cid: str) -> dict[str, Any]:  # noqa: ANN001
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(sla_windows).where(sla_windows.c.case_id == cid, sla_windows.c.clock == CLOCK)
                           .order_by(sla_windows.c.id.desc())).first()
    return dict(row._mapping)


def changes(row: dict[str, Any]) -> dict[str, Any]:
    import json
    return json.loads(row["changes"])


def test_a_breach_of_a_provisional_deadline_is_marked_provisional_and_looked_at_again(engine, store, clock):
    cid = breached_provisionally(engine, clock)
    breach = clock_rows(store, cid)[-1]
    assert changes(breach) == {"status": ["running", "breached"], "provisional": True}
    assert breach["note"].startswith(f"breached: 责任部门2个工作日内返回处理结果 was due {GUESS} 10:00 (provisional: "
                                     f"the holiday calendar does not cover the days after {LAST}-12-31 yet; "
                                     f"re-judged when it does)"), breach["note"]
    row = timer(store, cid, CLOCK)
    assert (row["status"], row["provisional"], row["next_at"]) == ("breached", True, at(f"{GUESS} 11:01"))
    clock.set(f"{GUESS} 11:02")                        # the calendar still does not cover it: look again later
    report = sweep(engine, engine.now())
    assert (report.rescheduled, report.rejudged) == (1, 0)
    assert timer(store, cid, CLOCK)["next_at"] == at(f"{GUESS} 12:02")
    assert len(clock_rows(store, cid)) == 2            # started, breached: nothing new in the log
    assert verify(store).ok


def test_a_breach_the_new_calendar_undoes_is_withdrawn_and_the_clock_runs_on(engine, store, clock, tmp_path):
    cid = breached_provisionally(engine, clock)
    escalations = [r for r in audit_rows(store, cid) if r["kind"] == "escalation"]
    updated = calendar_arrives(engine, clock, tmp_path, [GUESS])          # New Year's Day is a holiday
    clock.set(f"{GUESS} 10:05")
    assert sweep(updated, updated.now()).rejudged == 1                    # the next sla run after org apply
    row = clock_rows(store, cid)[-1]
    assert changes(row) == {"provisional": [True, False], "due_at": [at(f"{GUESS} 10:00"), at(f"{REAL} 10:00")],
                            "status": ["breached", "running"], "rejudged": "withdrawn"}
    assert row["note"] == (f"breach withdrawn: the holiday calendar now puts the deadline at {REAL} 10:00 (the "
                           f"provisional one was {GUESS} 10:00); the clock runs on; what on_breach did stays in the log")
    t = timer(store, cid, CLOCK)
    assert (t["status"], t["due_at"], t["provisional"]) == ("running", at(f"{REAL} 10:00"), False)
    assert (window(store, cid)["breached_at"], window(store, cid)["due_at"]) == (None, at(f"{REAL} 10:00"))
    assert [r for r in audit_rows(store, cid) if r["kind"] == "escalation"] == escalations    # they happened
    clock.set(f"{REAL} 10:01")
    assert sweep(updated, updated.now()).breached == 1                    # the real deadline, firm this time
    assert changes(clock_rows(store, cid)[-1]) == {"status": ["running", "breached"]}
    assert verify(store).ok


def test_a_breach_the_new_calendar_confirms_is_kept(engine, store, clock, tmp_path):
    cid = breached_provisionally(engine, clock)
    updated = calendar_arrives(engine, clock, tmp_path, [])               # the guessed working day was right
    clock.set(f"{GUESS} 10:05")
    assert sweep(updated, updated.now()).rejudged == 1
    row = clock_rows(store, cid)[-1]
    assert changes(row) == {"provisional": [True, False], "rejudged": "kept"}
    assert row["note"] == f"breach confirmed: the holiday calendar confirms the deadline {GUESS} 10:00"
    t = timer(store, cid, CLOCK)
    assert (t["status"], t["provisional"], t["next_at"]) == ("breached", False, None)
    assert sweep(updated, updated.now()).handled == 0
    assert verify(store).ok


def test_a_breach_judged_after_the_real_deadline_also_passed_is_kept_and_moved(engine, store, clock, tmp_path):
    cid = breached_provisionally(engine, clock)
    updated = calendar_arrives(engine, clock, tmp_path, [GUESS])
    clock.set(f"{REAL} 10:30")                        # the data came, but the case missed the real deadline too
    assert sweep(updated, updated.now()).rejudged == 1
    row = clock_rows(store, cid)[-1]
    assert changes(row) == {"provisional": [True, False], "due_at": [at(f"{GUESS} 10:00"), at(f"{REAL} 10:00")],
                            "rejudged": "moved"}
    assert row["note"] == (f"breach kept, deadline moved: {GUESS} 10:00 → {REAL} 10:00 (now confirmed by the holiday "
                           f"calendar); it had passed by {REAL} 10:30")
    assert timer(store, cid, CLOCK)["status"] == "breached"
    assert window(store, cid)["breached_at"] is not None
    assert verify(store).ok


def test_a_clock_stopped_in_time_after_a_provisional_breach_ends_met_once_the_calendar_says_so(
        engine, store, clock, tmp_path):
    cid = breached_provisionally(engine, clock)
    clock.set(f"{GUESS} 12:00")
    engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "防水层施工不规范", "responsible_person": "xu.peng",
                                                     "solution": "返工重做防水"})
    assert timer(store, cid, CLOCK)["status"] == "late"
    assert window(store, cid)["outcome"] == "breached"
    updated = calendar_arrives(engine, clock, tmp_path, [GUESS])
    clock.set(f"{GUESS} 12:05")
    assert sweep(updated, updated.now()).rejudged == 1
    row = clock_rows(store, cid)[-1]
    assert changes(row)["status"] == ["late", "met"] and changes(row)["rejudged"] == "withdrawn"
    assert row["note"].endswith(f"the clock had stopped at {GUESS} 12:00, in time: met; what on_breach did stays "
                                f"in the log")
    assert (timer(store, cid, CLOCK)["status"], timer(store, cid, CLOCK)["next_at"]) == ("met", None)
    assert (window(store, cid)["outcome"], window(store, cid)["breached_at"]) == ("met", None)
    assert verify(store).ok
