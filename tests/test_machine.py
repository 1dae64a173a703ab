"""transitions does the deciding: the Machine's conditions are the compiled guards, `show` asks it
what is possible, and nothing it raises can abort a sweep."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from caseflow.definition.evaluate import scope
from caseflow.errors import CaseflowError, GuardFailed, WrongState
from caseflow.runtime.machine import machine_for

NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)


def test_the_machines_conditions_are_the_guards(shipped_catalog):
    d = shipped_catalog.get("refund")
    t = next(t for t in d.transitions if t.event == "start_before_work")
    m = machine_for(d)
    data = {"work_started": True, "amount_paid": "100.00", "contract_amount": "1000.00"}
    act, ctx = scope(d, data, NOW, "wang.fang")
    with pytest.raises(GuardFailed) as info:
        m.fire("requested", t, act, ctx, case_id="REF-1")
    assert info.value.guard == "!work_started" and info.value.reason == "已开工的订单须走已开工退单流程"
    assert m.failing("requested", t, act, ctx) == ("!work_started", "已开工的订单须走已开工退单流程")
    act, ctx = scope(d, {**data, "work_started": False}, NOW, "wang.fang")
    assert m.failing("requested", t, act, ctx) is None
    assert m.fire("requested", t, act, ctx, case_id="REF-1") == "terminating"


def test_nothing_but_a_caseflow_refusal_leaves_the_machine(shipped_catalog):
    """Every transition fired from every state of every shipped workflow moves or is a WrongState:
    no RuntimeError or MachineError can reach the sweeper (which reports CaseflowErrors per timer)."""
    fired = refused = 0
    for name in shipped_catalog.current:
        d = shipped_catalog.get(name)
        m = machine_for(d)
        for state in d.states:
            for t in d.transitions:
                for reject in (False, True):
                    try:
                        m.fire(state, t, case_id="X", reject=reject)
                        fired += 1
                    except CaseflowError as exc:
                        assert isinstance(exc, WrongState), exc
                        assert "is not possible in" in str(exc)
                        refused += 1
    assert fired and refused


def test_a_move_without_guards_is_remembered_and_guards_are_asked_every_time(shipped_catalog):
    """A firing that evaluates no guard is asked of transitions once per (state, transition): the second
    answer is the first, without the machine; a guarded one goes to the machine each time, so a guard
    that held for one case still refuses the next."""
    d = shipped_catalog.get("refund")
    m = machine_for(d)
    plain = next(t for t in d.transitions if not t.guards and not t.system and t.sources)
    state = plain.sources[0]
    first = m.fire(state, plain, case_id="REF-1")
    triggered = []
    event = m._machine.events[plain.event]
    original = event.trigger
    event.trigger = lambda model: triggered.append(model) or original(model)    # type: ignore[method-assign]
    try:
        assert m.fire(state, plain, case_id="REF-2") == first
        assert triggered == []                                   # remembered: the machine was not asked
        with pytest.raises(WrongState):                          # a state it cannot move from is still refused
            m.fire(next(s for s in d.states if s not in plain.sources), plain, case_id="REF-3")
    finally:
        event.trigger = original                                 # type: ignore[method-assign]
    guarded = next(t for t in d.transitions if t.event == "start_before_work")
    ok, ctx = scope(d, {"work_started": False, "amount_paid": "100.00", "contract_amount": "1000.00"},
                    NOW, "wang.fang")
    assert m.fire("requested", guarded, ok, ctx, case_id="REF-4") == "terminating"
    bad, ctx = scope(d, {"work_started": True, "amount_paid": "100.00", "contract_amount": "1000.00"},
                     NOW, "wang.fang")
    with pytest.raises(GuardFailed):
        m.fire("requested", guarded, bad, ctx, case_id="REF-5")
