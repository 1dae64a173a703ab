"""Counterexamples made concrete, replayed through the real engine, and written as scripts.

A solver model of a violating node becomes a list of `Move`s: who (a real
person from org.yaml), when (`--now`), which event and which `--set` values.
`replay` runs them through `Engine` on a throw-away SQLite file, exactly as the
command line would; if the engine refuses any move, the finding is spurious
(the symbolic model was too generous, e.g. an over-approximated expression).
`script` prints the same moves as `caseflow` commands a person can run.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import z3

from caseflow import values
from caseflow.definition.model import Definition
from caseflow.errors import CaseflowError
from caseflow.verification.explorer import Explorer, Node
from caseflow.verification.literals import SYSTEM

NOTE = "verify: counterexample"


@dataclass
class Move:
    kind: str                      # open | advance | sign | reject | system
    event: str
    actor: str | None
    now: datetime
    sets: dict[str, str] = field(default_factory=dict)
    role: str | None = None
    state: str = ""                # the state the case is in afterwards

    def describe(self, d: Definition, people: Mapping[str, str]) -> str:
        who = f"{people.get(self.actor or '', self.actor)}({self.actor})" if self.actor else "系统"
        values_ = ", ".join(f"{k}={v}" for k, v in self.sets.items())
        values_ = f" [{values_}]" if values_ else ""
        if self.kind == "open":
            what = f"open {d.workflow}"
        elif self.kind in ("sign", "reject"):
            what = f"{self.kind} as {self.role}"
        elif self.kind == "system":
            what = f"system event {d.event_label(self.event)}"
        else:
            what = d.event_label(self.event)
        return f"{self.now.strftime('%Y-%m-%dT%H:%M:%SZ')} {who} {what}{values_} → {d.label(self.state)}"


def _value(ex: Explorer, model: z3.ModelRef, term: Any, kind: str, schema: Mapping[str, Any]) -> str:
    v = model.eval(term, model_completion=True)
    if kind == "bool":
        return "true" if z3.is_true(v) else "false"
    if kind == "real":
        return str(float(v.as_fraction())) if z3.is_rational_value(v) else "0"
    n = v.as_long() if z3.is_int_value(v) else 0
    if kind == "money":
        return values.format_money(values.from_fen(n))
    if kind == "ts":
        moment = datetime.fromtimestamp(n, UTC)
        if schema.get("format") == "date":
            return moment.astimezone(ex.d.tz).date().isoformat()
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "str":
        return ex.s.text_of(n)
    return str(n)


def _person(ex: Explorer, model: z3.ModelRef, term: Any) -> str:
    v = model.eval(term, model_completion=True)
    return ex.s.text_of(v.as_long()) if z3.is_int_value(v) else ""


def _moment(model: z3.ModelRef, term: Any) -> datetime:
    v = model.eval(term, model_completion=True)
    return datetime.fromtimestamp(v.as_long() if z3.is_int_value(v) else 0, UTC)


def concretize(ex: Explorer, node: Node, model: z3.ModelRef) -> list[Move]:
    """The node's path with the model's values: real people, amounts and times."""
    moves: list[Move] = []
    for step in node.trace:
        sets: dict[str, str] = {}
        for name, (given, term, kind) in {**step.sets, **step.inputs}.items():
            if z3.is_true(model.eval(given, model_completion=True)):
                schema = ex.d.fields.get(name) if name in step.sets else \
                    (step.transition.inputs.get(name, {}) if step.transition else {})
                sets[name] = _value(ex, model, term, kind, schema or {})
        actor = _person(ex, model, step.actor) if step.actor is not None else None
        kind = step.kind
        moves.append(Move(kind, step.event, None if actor == SYSTEM else actor, _moment(model, step.now), sets,
                          step.role, step.dest))
    return moves


# -- replay -------------------------------------------------------------------------------------

@dataclass
class Replay:
    ok: bool
    reason: str = ""
    case_id: str = ""
    at: int = -1


class _Definitions(Mapping[str, Definition]):
    """The catalog's workflows with one definition replaced by the one being verified."""

    def __init__(self, base: Mapping[str, Definition], d: Definition) -> None:
        self.base, self.d = base, d

    def __getitem__(self, key: str) -> Definition:
        return self.d if key == self.d.workflow else self.base[key]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self.base) | {self.d.workflow}))

    def __len__(self) -> int:
        return len(set(self.base) | {self.d.workflow})

    def sha_of(self, workflow: str) -> str | None:
        if workflow == self.d.workflow:
            return self.d.sha256
        return getattr(self.base, "sha_of", lambda _: None)(workflow)


def replay(d: Definition, catalog: Any, moves: list[Move],
           confirm: Callable[[Any, str], str | None] | None = None) -> Replay:
    """Run the moves through the real engine on a temporary SQLite database.

    `confirm(engine, case_id)` then checks the violation itself is visible in the
    engine (returns why not, or None). Nothing outside the temporary file changes.
    """
    from caseflow.catalog import Catalog
    from caseflow.runtime import actions
    from caseflow.runtime.engine import Engine
    from caseflow.store.database import Store
    cat = Catalog(catalog.directory, catalog.org, catalog.calendars, catalog.org_sha)
    cat.current = _Definitions(catalog.current, d)  # type: ignore[assignment]
    cat._by_sha[d.sha256] = d
    with tempfile.TemporaryDirectory(prefix="caseflow-verify-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'replay.db'}")
        store.migrate(simulation=True)             # a simulation database: only there is a clock believed
        clock = {"now": moves[0].now}
        engine = Engine(store, cat, lambda: clock["now"])
        case_id = ""
        try:
            for i, m in enumerate(moves):
                clock["now"] = m.now
                try:
                    if m.kind == "open":
                        case_id = engine.open(d.workflow, m.actor, m.sets, note=NOTE)["id"]
                    elif m.kind == "advance":
                        engine.advance(case_id, m.event, m.actor, m.sets, NOTE)
                    elif m.kind in ("sign", "reject"):
                        engine.sign(case_id, m.actor, m.kind == "reject", NOTE)
                    else:
                        with store.write() as conn:
                            if not actions.fire_system(engine, conn, case_id, m.event, m.now, NOTE):
                                return Replay(False, f"system event {m.event} was not possible", case_id, i)
                except CaseflowError as exc:
                    return Replay(False, f"step {i + 1} ({m.event}) refused: {exc}", case_id, i)
                state = engine.read_case(case_id).state
                if state != m.state:
                    return Replay(False, f"step {i + 1} ({m.event}) ended in {state}, not {m.state}", case_id, i)
            why = confirm(engine, case_id) if confirm else None
            return Replay(why is None, why or "", case_id, len(moves))
        finally:
            store.engine.dispose()


# -- scripts ------------------------------------------------------------------------------------

def script(d: Definition, moves: list[Move], workflows_dir: Path, title: str) -> str:
    """A POSIX shell script of `caseflow` commands that replays the counterexample."""
    src = Path(d.path)
    lines = ["#!/bin/sh", f"# {title}", "# Replays a counterexample found by `caseflow verify` on a fresh SQLite file.",
             "set -eu", 'WF=$(mktemp -d)',
             f"cp {shlex.quote(str(workflows_dir.resolve()))}/*.yaml \"$WF\"/",
             f"cp {shlex.quote(str(src.resolve()))} \"$WF\"/{d.workflow}.yaml",
             'export CASEFLOW_WORKFLOWS="$WF"',
             'export CASEFLOW_DB="sqlite:///$WF/counterexample.db"',
             "caseflow --simulation db init >/dev/null      # --now is honoured only on a simulation database"]
    for m in moves:
        now = m.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        sets = "".join(f" --set {shlex.quote(f'{k}={v}')}" for k, v in m.sets.items())
        head = f"caseflow --now {now}" + (f" --as {shlex.quote(m.actor)}" if m.actor else "")
        if m.kind == "open":
            lines.append(f"CASE=$({head} open {d.workflow}{sets})")
        elif m.kind == "advance":
            lines.append(f'{head} advance "$CASE" {m.event}{sets}')
        elif m.kind == "sign":
            lines.append(f'{head} sign "$CASE"')
        elif m.kind == "reject":
            lines.append(f'{head} sign "$CASE" --reject --note {shlex.quote(NOTE)}')
        else:
            lines.append(f"# system event {m.event} (a timer or SLA fires it; time is not modelled):")
            lines.append(f"{head} sla run")
    lines.append(f'caseflow --as {shlex.quote(moves[0].actor or "")} show "$CASE"')
    return "\n".join(lines) + "\n"
