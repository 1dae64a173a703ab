"""Rules that used to be written twice now live in one place and say the same everywhere."""

from __future__ import annotations

import json
import shutil

import pytest
import sqlalchemy as sa

from caseflow.catalog import Catalog
from caseflow.definition.compile import parse_duration
from caseflow.definition.schema import SCHEMA_PATH, duration_grammar
from caseflow.errors import DefinitionErrors
from caseflow.runtime.engine import Engine
from caseflow.store.tables import timers
from tests.conftest import SHIPPED, snapshot
from tests.helpers import open_complaint

REFUSED = ("error: wang.fang may not see personal data unmasked: no role with can_unmask "
           "in org.yaml (holds: 客服专员(cs_agent))")


@pytest.mark.parametrize("command", [("show",), ("history",), ("audit", "--case")])
def test_unmask_is_one_rule_with_one_message_and_always_recorded(engine, store, run, command):
    cid = open_complaint(engine)
    before = snapshot(store, cid)
    r = run("--as", "wang.fang", *command, cid, "--unmask")
    assert (r.exit_code, r.stdout, r.stderr.strip()) == (1, "", REFUSED)
    assert snapshot(store, cid) == before
    tried = run("audit", "--attempts", "--format", "json").json()
    assert [(t["actor"], t["event"], t["error"]) for t in tried] == [("wang.fang", "unmask", "NotPermitted")]


def test_a_clock_condition_sees_what_a_guard_sees(tmp_path, store, clock):
    """One builder for every evaluation: a clock's `when` may use person_attr like a guard may."""
    folder = tmp_path / "workflows"
    shutil.copytree(SHIPPED, folder)
    path = folder / "complaint.yaml"
    text = path.read_text(encoding="utf-8")
    changed = text.replace("    start: {enter: received}\n    stop: {leave: assessing}\n",
                           "    start: {enter: received}\n    stop: {leave: assessing}\n"
                           "    when: \"person_attr('wang.fang', 'employment') == 'regular'\"\n", 1)
    assert changed != text
    path.write_text(changed, encoding="utf-8")
    engine = Engine(store, Catalog.load(folder), clock)
    cid = open_complaint(engine)
    with store.read() as conn:
        names = set(conn.execute(sa.select(timers.c.name).where(timers.c.case_id == cid)).scalars())
    assert "respond_24h" in names


@pytest.mark.parametrize("text, parsed", [("24 hours", (24, "hours", False)), ("1 month", (1, "months", False)),
                                          ("2 working days", (2, "days", True)),
                                          ("1 working hour", (1, "hours", True)), ("3 weeks", (3, "weeks", False)),
                                          ("30 working minutes", (30, "minutes", True))])
def test_durations_the_schema_accepts_the_loader_parses(text, parsed):
    d = parse_duration(text)
    assert (d.amount, d.unit, d.working) == parsed
    assert duration_grammar().match(text)


@pytest.mark.parametrize("text", ["2 working weeks", "1 working month", "0 days", "24 hrs", " 24 hours"])
def test_one_duration_grammar_refuses_the_same_everywhere(text):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert duration_grammar().pattern == schema["$defs"]["duration"]["pattern"]
    assert not duration_grammar().match(text)
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_working_week_is_refused_with_the_designers_message(tmp_path):
    folder = tmp_path / "workflows"
    shutil.copytree(SHIPPED, folder)
    path = folder / "complaint.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("within: 2 working days", "within: 2 working weeks", 1),
                    encoding="utf-8")
    with pytest.raises(DefinitionErrors, match="'2 working weeks' is not a duration"):
        Catalog.load(folder).get("complaint")
