"""One pytransitions Machine per definition version, never one per case.

`transitions` is an implementation detail of this module. We build the
machine once (auto_transitions off, so no unguarded `to_<state>` bypass;
callbacks never given as strings, so nothing is imported from YAML) and fire
events on a throw-away context object, the pattern its FAQ recommends for
many models: ~8 µs per event, nothing attached, nothing to leak.

Guards are evaluated by the runtime before firing, so a refusal can say which
guard failed; the machine only enforces that the event is valid from the
state and that the chosen alternative is the one the runtime picked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from transitions import Machine, MachineError

from caseflow.definition.model import Definition, Transition

logging.getLogger("transitions").setLevel(logging.WARNING)


@dataclass
class _Context:
    """The model transitions mutates: a state and which alternative we chose."""

    state: str
    chosen: int = -1


def _is_chosen(index: int):
    def check(event) -> bool:  # noqa: ANN001 - transitions' EventData
        return event.model.chosen == index
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
                                         conditions=[_is_chosen(t.index)])
            if t.signoffs and t.signoffs.reject_to:
                self._machine.add_transition(f"reject::{t.event}", list(t.sources),
                                             t.signoffs.reject_to, conditions=[_is_chosen(t.index)])

    def fire(self, state: str, transition: Transition, *, reject: bool = False) -> str:
        """Move from `state` through `transition`; return the new state."""
        ctx = _Context(state, transition.index)
        name = f"reject::{transition.event}" if reject else transition.event
        try:
            moved = self._machine.events[name].trigger(ctx)
        except (MachineError, KeyError) as exc:
            raise RuntimeError(f"machine refused {name} from {state}: {exc}") from None
        if not moved:
            raise RuntimeError(f"machine refused {name} from {state}")
        return ctx.state

    def triggers(self, state: str) -> list[str]:
        return [t for t in self._machine.get_triggers(state) if not t.startswith("reject::")]


@lru_cache(maxsize=64)
def machine_for(definition: Definition) -> CaseMachine:
    """The cached machine of a definition version (keyed by the frozen Definition)."""
    return CaseMachine(definition)
