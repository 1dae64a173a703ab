"""Errors as data: refusals carry their facts as fields and still print the one line they always did."""

from __future__ import annotations

import pytest

from caseflow.errors import GuardFailed, MissingFields, NotFound, RoleNotAllowed, WrongState
from tests.helpers import open_complaint, open_refund


def test_not_found_suggests_the_close_name(shipped_catalog, run):
    with pytest.raises(NotFound) as info:
        shipped_catalog.get("refnd")
    assert (info.value.kind, info.value.name, info.value.suggestion) == ("workflow", "refnd", "refund")
    assert str(info.value) == "workflow 'refnd' not found (did you mean 'refund'?)"
    r = run("--as", "wang.fang", "open", "refnd")
    assert (r.exit_code, r.stderr.strip()) == (4, "error: workflow 'refnd' not found (did you mean 'refund'?)")
    with pytest.raises(NotFound) as far:
        shipped_catalog.get("zzzz")
    assert far.value.suggestion is None and str(far.value) == "workflow 'zzzz' not found"


def test_a_failing_guard_is_named_as_a_field(engine):
    cid = open_refund(engine, work_started=True)
    with pytest.raises(GuardFailed) as info:
        engine.advance(cid, "start_before_work", "wang.fang")
    assert info.value.guard == "!work_started"
    assert str(info.value) == (f"case {cid}: cannot start_before_work in state requested: "
                               "已开工的订单须走已开工退单流程")


def test_missing_fields_and_allowed_roles_are_fields(engine):
    cid = open_complaint(engine)
    engine.advance(cid, "assess", "wang.fang")
    with pytest.raises(MissingFields) as missing:
        engine.advance(cid, "accept", "wang.fang")
    assert missing.value.missing == ("responsible_dept",)
    assert str(missing.value).endswith("missing required: responsible_dept (set with --set responsible_dept=…)")
    with pytest.raises(RoleNotAllowed) as role:
        engine.advance(cid, "accept", "tang.liang", {"responsible_dept": "engineering"})
    assert set(role.value.allowed_roles) == {"cs_agent", "cs_supervisor"}
    assert "has none of the roles allowed" in str(role.value)


def test_wrong_state_lists_the_possible_events(engine):
    cid = open_complaint(engine)
    with pytest.raises(WrongState) as info:
        engine.advance(cid, "acept", "wang.fang")
    assert info.value.possible == ("assess",)
    assert str(info.value) == (f"case {cid}: cannot acept in state received: unknown event 'acept' "
                               "(did you mean 'accept'?); possible now: assess")
