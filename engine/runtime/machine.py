"""One pytransitions Machine per definition version, never one per case.

`transitions` is an implementation detail of this module. We build the
machine once (auto_transitions off, so no unguarded `to_<state>` bypass;
callbacks never given as strings, so nothing is imported from YAML) and fire
events on a throw-away context object, the pattern its FAQ recommends for
many models: nothing attached, nothing to leak.

The machine does the deciding work: each transition's conditions are the
alternative the runtime chose and then its compiled guards, evaluated on the
CEL activation the context carries. A guard that does not hold is kept on the
context, so the refusal still names it (GuardFailed). `possible` asks the same
machine which events may fire now (`show`, work queues). A refusal by the
machine is a `WrongState` (a CaseflowError), never a RuntimeError or
MachineError, so it cannot abort an SLA sweep. docs/architecture.md has the
decision and its measured cost per step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from transitions import Machine, MachineError
from transitions.core import EventData

from caseflow.definition.evaluate import failing_guard
from caseflow.definition.expressions import EvalContext
from caseflow.definition.model import Definition, Transition
from caseflow.errors import GuardFailed, WrongState

logging.getLogger("transitions").setLevel(logging.WARNING)


@dataclass
class _Context:
    """The model transitions mutates: a state, which alternative we chose, what the guards see."""

    state: str
    chosen: int = -1
    act: Mapping[str, Any] | None = None
    ctx: EvalContext | None = None
    failed: tuple[str, str] | None = None      # (guard text, description) of the guard that did not hold


def _is_chosen(index: int):
    def check(event) -> bool:  # noqa: ANN001 - transitions' EventData
        return event.model.chosen == index
    return check


def _guards_hold(t: Transition):
    """The transition's compiled guards as a condition (a reject has none: it skips the guards)."""
    def check(event) -> bool:  # noqa: ANN001 - transitions' EventData
        model = event.model
        if model.act is None or model.ctx is None:   # no activation given: guards already decided
            return True
        model.failed = failing_guard(t, model.act, model.ctx)
        return model.failed is None
    return check


class CaseMachine:
    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        self._machine = Machine(
            model=None,
            states=list(definition.states),
            initial=definition.initial,
            auto_transitions=False,
            send_event=True,
            name=f"{definition.workflow}@{definition.sha256[:12]}",
        )
        for t in definition.transitions:
            self._machine.add_transition(t.event, list(t.sources), t.to,
                                         conditions=[_is_chosen(t.index)] + ([_guards_hold(t)] if t.guards else []))
            if t.signoffs and t.signoffs.reject_to:
                self._machine.add_transition(f"reject::{t.event}", list(t.sources),
                                             t.signoffs.reject_to, conditions=[_is_chosen(t.index)])
        # (state, transition, reject) → the state the machine moved to, for firings that evaluate no guard:
        # then the machine's answer depends on nothing else, and the definition is frozen.
        self._moved: dict[tuple[str, int, bool], str] = {}

    def fire(self, state: str, transition: Transition, act: Mapping[str, Any] | None = None,
             ctx: EvalContext | None = None, *, case_id: str = "", reject: bool = False) -> str:
        """Move from `state` through `transition`, its guards evaluated on (`act`, `ctx`); the new state.

        Raises GuardFailed naming the first guard that does not hold, WrongState if the machine
        has no such move from `state`. A firing that evaluates no guard (the transition has none, a
        reject, or no activation given) is asked of the machine once per (state, transition); its
        answer is remembered.
        """
        key = (state, transition.index, reject)
        remembered = act is None or reject or not transition.guards
        if remembered and key in self._moved:
            return self._moved[key]
        model = _Context(state, transition.index, act, ctx)
        name = f"reject::{transition.event}" if reject else transition.event
        try:
            moved = self._machine.events[name].trigger(model)
        except (MachineError, KeyError) as exc:
            raise WrongState(case_id, transition.event, state,
                             f"{self.definition.event_label(transition.event)} is not possible in "
                             f"{self.definition.label(state)} ({type(exc).__name__})") from None
        if not moved and model.failed is not None:
            raise GuardFailed(case_id, transition.event, state, model.failed[1], guard=model.failed[0])
        if not moved:
            raise WrongState(case_id, transition.event, state,
                             f"{self.definition.event_label(transition.event)} is not possible in "
                             f"{self.definition.label(state)}")
        if remembered:
            self._moved[key] = model.state
        return model.state

    def failing(self, state: str, transition: Transition, act: Mapping[str, Any],
                ctx: EvalContext) -> tuple[str, str] | None:
        """Would `transition` fire from `state` now? None if so, else the failing guard (text, description).

        Asks the machine without moving anything (transitions' `may_` check on a throw-away model).
        """
        model = _Context(state, transition.index, act, ctx)
        event = self._machine.events.get(transition.event)
        probe = EventData(self._machine.get_state(state), event, self._machine, model, (), {})
        if event is None or not any(all(c.check(probe) for c in t.conditions)
                                    for t in event.transitions.get(state, [])):
            return model.failed or ("", "not possible")
        return None

    def triggers(self, state: str) -> list[str]:
        return [t for t in self._machine.get_triggers(state) if not t.startswith("reject::")]



@lru_cache(maxsize=64)
def machine_for(definition: Definition) -> CaseMachine:
    """The cached machine of a definition version (keyed by the frozen Definition)."""
    return CaseMachine(definition)
