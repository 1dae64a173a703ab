"""The registry of action kinds: `escalate`, `notify`, `fire`, `spawn`, one object each.

An action is one list item under a state's `on_enter`, a transition's
`actions`, or a clock's `on_breach`/`on_warn`/`on_due`, e.g. `{notify:
cs_supervisor, message: 投诉已转交}`. Each kind owns everything about itself:

- `fragment` (and `siblings`): its JSON Schema, spliced into `$defs/action` of
  the workflow schema the loader validates against (`action_schema`);
  `tests/test_kinds.py` checks that schemas/workflow.schema.json says the same;
- `lint`: its cross-reference checks (a role that exists, a system event);
- `compile`: the YAML item to a frozen `Action`;
- `run`: what it does when it runs, through the `ActionRun` the runtime hands it
  (record an audit row, write the outbox, open a linked case);
- `entry_kind` and `label_zh`: the audit row it writes and its Chinese label.

To add a kind: a subclass here and one `register(...)` line, then the fragment
in schemas/workflow.schema.json (docs/architecture.md, "add an action kind").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from caseflow.definition.expressions import Compiled, from_cel
from caseflow.definition.model import Action, Definition

if TYPE_CHECKING:
    from caseflow.definition.lint import _Lint

Path = list[Any]
CompileExpr = Callable[..., Compiled | None]     # (text, path, want=...) -> compiled, or None after an error


class ActionRun(Protocol):
    """What an action may touch while it runs: the runtime's side of the seam (runtime/actions.py)."""

    definition: Definition
    case_id: str
    actor: str
    now: datetime

    def evaluate(self, expr: Compiled) -> Any: ...
    def record(self, kind: str, event: str, changes: dict[str, Any], note: str | None) -> None: ...
    def outbox(self, role: str, message: str) -> None: ...
    def workflow(self, workflow: str) -> Definition: ...
    def open_linked(self, definition: Definition, data: dict[str, Any]) -> str: ...


class ActionKind:
    name: ClassVar[str]                       # the YAML key
    entry_kind: ClassVar[str]                 # the audit row's kind
    label_zh: ClassVar[str]                   # the audit row's label for operators
    fragment: ClassVar[dict[str, Any]]        # JSON Schema of the key's value
    siblings: ClassVar[dict[str, Any]] = {}   # other keys this kind allows beside it (e.g. message)

    def lint(self, linter: _Lint, value: Any, path: Path, who: str) -> None:
        """Cross-reference checks after the schema phase (`path` points at the value)."""

    def compile(self, item: dict[str, Any], expr: CompileExpr, path: Path, when: Compiled | None) -> Action:
        return Action(self.name, item[self.name], item.get("message"), when)

    def run(self, action: Action, run: ActionRun) -> None:
        raise NotImplementedError


class Escalate(ActionKind):
    name, entry_kind, label_zh = "escalate", "escalation", "升级上报"
    fragment = {"type": "string", "description": "Record an escalation (Chinese text) in the audit log."}

    def run(self, action: Action, run: ActionRun) -> None:
        run.record(self.entry_kind, "escalate", {}, action.value)


class Notify(ActionKind):
    name, entry_kind, label_zh = "notify", "notify", "通知"
    fragment = {"$ref": "#/$defs/id", "description": "Role to notify through the outbox."}
    siblings = {"message": {"type": "string"}}

    def lint(self, linter: _Lint, value: Any, path: Path, who: str) -> None:
        linter.known("role", value, linter.org.roles, path, f"{who} notifies")

    def run(self, action: Action, run: ActionRun) -> None:
        text = action.message or f"{run.definition.label_zh} {run.case_id}"
        run.outbox(action.value, text)
        run.record(self.entry_kind, "notify", {"role": action.value}, text)


class Fire(ActionKind):
    """Records the event; runtime/actions.py fires it after the row is written (rows of kind `fire`)."""

    name, entry_kind, label_zh = "fire", "fire", "系统触发"
    fragment = {"$ref": "#/$defs/id", "description": "A system event to fire on the case."}

    def lint(self, linter: _Lint, value: Any, path: Path, who: str) -> None:
        if linter.known("event", value, linter.events, path, f"{who} fires"):
            if not any(t.get("system") for t in linter.doc["transitions"] if t["event"] == value):
                linter.err(f"{who} fires {value!r}, which people fire, not a system event", path,
                           f"mark the {value!r} transition system: true and remove its roles")

    def run(self, action: Action, run: ActionRun) -> None:
        run.record(self.entry_kind, action.value, {}, None)


class Spawn(ActionKind):
    name, entry_kind, label_zh = "spawn", "spawn", "派生案件"
    fragment = {"type": "object", "additionalProperties": False, "required": ["workflow"],
                "properties": {"workflow": {"$ref": "#/$defs/id"},
                               "data": {"type": "object", "additionalProperties": {"$ref": "#/$defs/expr"}}}}

    def compile(self, item: dict[str, Any], expr: CompileExpr, path: Path, when: Compiled | None) -> Action:
        data = {k: expr(v, path + ["spawn", "data", k]) for k, v in item["spawn"].get("data", {}).items()}
        return Action("spawn", item["spawn"]["workflow"], None, when, {k: v for k, v in data.items() if v})

    def run(self, action: Action, run: ActionRun) -> None:
        child_def = run.workflow(action.value)
        data = {k: from_cel(run.evaluate(expr), child_def.fields.get(k, {}), run.definition.tz)
                for k, expr in action.spawn_data.items()}
        child = run.open_linked(child_def, data)
        run.record(self.entry_kind, action.value, {"case": child}, child_def.label_zh)


KINDS: dict[str, ActionKind] = {}
_generation = [0]          # bumped on every change, so a cached schema validator is rebuilt


def register(kind: ActionKind) -> ActionKind:
    KINDS[kind.name] = kind
    _generation[0] += 1
    return kind


def unregister(name: str) -> None:
    del KINDS[name]
    _generation[0] += 1


@contextmanager
def registered(kind: ActionKind) -> Iterator[ActionKind]:
    """A kind for the duration of a block (tests)."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.name)


def generation() -> int:
    return _generation[0]


for _kind in (Escalate(), Notify(), Fire(), Spawn()):
    register(_kind)


def kind_of(item: dict[str, Any]) -> ActionKind:
    """The kind of an action item that passed the schema phase (exactly one kind key)."""
    return next(k for name, k in KINDS.items() if name in item)


def names_in(item: dict[str, Any]) -> list[str]:
    return [name for name in KINDS if name in item]


def one_of_names() -> str:
    """`escalate, notify, fire or spawn`."""
    names = list(KINDS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def labels() -> dict[str, str]:
    """Audit row kind → its Chinese label, for every kind's rows."""
    return {k.entry_kind: k.label_zh for k in KINDS.values()}


def action_schema() -> dict[str, Any]:
    """`$defs/action` of the workflow schema, rendered from the registry."""
    properties: dict[str, Any] = {"when": {"$ref": "#/$defs/expr"}}
    for k in KINDS.values():
        properties[k.name] = k.fragment
        properties.update(k.siblings)
    return {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": properties,
            "oneOf": [{"required": [name]} for name in KINDS]}
