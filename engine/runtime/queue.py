"""The work queues a case is in, stored in `case_queue` on every write so the inbox is one indexed query.

A case is in the queue of
- `@USER`, its assignee (while it is open);
- every role that may give the sign-off it waits for: the next role of a sequential chain,
  every unsigned role of an `order: any` one (assigned or not: sign-offs are the signers');
- while nobody holds it: every role of a to-do event from its state (`inbox: true`, not a
  timer's, not a sign-off) — or `~person` when a guard `actor == FIELD` reserves the event
  for the person FIELD names — unless a *stable* guard already rules the event out — the same
  tests `caseflow show` makes (views/cases.py `_missing`): with no field missing and no event
  input required every guard counts; with fields missing only guards over fields already
  set; with inputs required none;
- while nobody holds it: the workflow's `assign_roles`, when one of those to-do events is
  `assignee_only` (the case waits for someone to be given it).

A guard is stable when its value can only change through a write of the case: it reads
neither `now`, `actor` nor event inputs, and calls no function of the clock or of the org
chart (`days_since`, `working_days_since`, `person_attr`). Other guards are taken to hold
here, so the stored queues are a superset of what `show` offers; the inbox describes each
row with `show`'s code and drops the rare rest (a guard of time, a signer who already
signed in another role, a person the transition excludes).

Each row also carries the inbox's order: the case's nearest pending SLA deadline (`due_at`,
the earliest of its running or breached SLA clocks, NULL when none; what `show` lists) and
its `created_at`. The database keeps them (revision 0010_queue_order's row triggers): a new
queue row takes them from `timers` and `cases`, and any write of a timer's due_at, status or
kind rewrites its case's rows — in the writing statement, whichever code writes it (a step's
last statement on PostgreSQL, the sweep, assignment, `migrate run`, import). The runtime
writes nothing more for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.definition.evaluate import missing_fields, scope
from caseflow.definition.expressions import Compiled, ExpressionError
from caseflow.definition.model import Definition, Guard, Transition
from caseflow.runtime.turns import eligible_signers
from caseflow.store.tables import case_queue

INSERT_QUEUE = case_queue.insert()          # built once; bulk import batches these rows
_DELETE_QUEUE = case_queue.delete().where(case_queue.c.case_id == sa.bindparam("case_id"))
_UNSTABLE_CALLS = re.compile(r"\b(days_since|working_days_since|person_attr)\s*\(")
_ACTOR_IS = re.compile(r"^\s*(?:actor\s*==\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*==\s*actor)\s*$")
_IS_SET = re.compile(r"""is_set\(\s*['"]([^'"]+)['"]\s*\)""")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)   # `now` for stable guards, which never read it


def assignee_queue(user: str) -> str:
    """The queue of the cases assigned to `user` (and only those: the inbox lists it first)."""
    return f"@{user}"


def person_queue(user: str) -> str:
    """The queue of the unassigned cases an event is reserved for `user` in (a guard `actor == FIELD`)."""
    return f"~{user}"


def stable(guard: Guard) -> bool:
    return _stable(guard.expr)


def _stable(expr: Compiled) -> bool:
    names, text = expr.names, expr.text
    return not ({"now", "actor"} & names or any(n.startswith("input.") for n in names)
                or _UNSTABLE_CALLS.search(text) or text.count("is_set(") != len(_IS_SET.findall(text)))


_STABLE_READS: dict[tuple[str, str], tuple[str, ...] | None] = {}


def stable_reads(d: Definition, expr: Compiled) -> tuple[str, ...] | None:
    """The fields a stable expression's value depends on (its names and `is_set('…')` arguments; with the
    definition's constants that is all it reads), None for an expression that is not stable."""
    key = (d.sha256, expr.text)
    if key not in _STABLE_READS:
        _STABLE_READS[key] = _reads_of(expr) if _stable(expr) else None
    return _STABLE_READS[key]


def _reads_of(expr: Compiled) -> tuple[str, ...]:
    """The names an expression reads: its variables and the fields `is_set('…')` asks about."""
    return tuple(sorted(set(expr.names) | set(_IS_SET.findall(expr.text))))


@dataclass(frozen=True)
class _ToDo:
    """A to-do transition from a state, with what the queue computation needs of it (worked out once)."""

    t: Transition
    guards: tuple[Guard, ...]          # its stable guards
    pinned: str | None                 # FIELD of a guard `actor == FIELD`
    reads: tuple[tuple[str, ...], ...]  # per guard: the fields its value depends on (names and is_set('…'))


_TODO: dict[tuple[str, str], tuple[tuple[_ToDo, ...], bool]] = {}


def _todo(d: Definition, state: str) -> tuple[tuple[_ToDo, ...], bool]:
    """(to-do transitions from `state`, whether one is assignee_only), cached per definition and state."""
    key = (d.sha256, state)
    if key not in _TODO:
        todo = []
        for t in d.transitions_from(state):
            if t.inbox and not t.system and not t.signoffs:
                guards = tuple(g for g in t.guards if stable(g))
                reads = tuple(_reads_of(g.expr) for g in guards)
                todo.append(_ToDo(t, guards, _pinned_field(d, t), reads))
        _TODO[key] = (tuple(todo), any(x.t.assignee_only for x in todo))
    return _TODO[key]


_QUOTED = re.compile(r"""['"]([A-Za-z_]\w*)['"]""")
_READS: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def reads_of(d: Definition, state: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(fields whose being given, fields whose values) decide what `show` says of the events from `state`:
    the fields its transitions require, and every field their guards name — as a variable, or quoted
    as a function's argument (`is_set('f')`). The rest of a case's data cannot change it. (`show` gives
    no event inputs, so a guard that reads a required input is never evaluated: its fields do not count.)"""
    key = (d.sha256, state)
    if key not in _READS:
        ts = [t for t in d.transitions_from(state) if not t.system]
        names: set[str] = set()
        for t in ts:
            needed = {f"input.{i}" for i in t.input_required}
            for g in t.guards:
                if not needed & g.expr.names:
                    names |= g.expr.names | set(_QUOTED.findall(g.expr.text))
        _READS[key] = (tuple(sorted({f for t in ts for f in t.requires})), tuple(sorted(names & set(d.fields))))
    return _READS[key]


_ROLES: dict[str, frozenset[str]] = {}


def queue_roles(d: Definition) -> frozenset[str]:
    """Every role a queue of a case of `d` can be (what `queues` can return but @users), cached per definition."""
    if d.sha256 not in _ROLES:
        found: set[str] = set()
        for state, st in d.states.items():
            if st.final:
                continue
            signing = d.signoff_transition(state)
            if signing is not None and signing.signoffs is not None:
                found.update(signing.signoffs.roles)
            todo, assignable = _todo(d, state)
            for x in todo:
                found.update(x.t.roles)
            if assignable:
                found.update(d.assign_roles)
        _ROLES[d.sha256] = frozenset(found)
    return _ROLES[d.sha256]


def same_queues(d: Definition, state: str, dest: str, before: Mapping[str, Any], after: Mapping[str, Any],
                signoffs: Sequence[Mapping[str, Any]], now_signed: Sequence[Mapping[str, Any]]) -> bool:
    """Surely the same queues after a step (no need to work them out twice): it stays in its state with
    the same sign-offs, and each of the state's to-dos that reads a field the step changed puts the case
    in the same queues before and after (the other to-dos read nothing it changed)."""
    if state != dest or signoffs != now_signed:
        return False
    changed = {f for f in _depends_on(d, state) if before.get(f) != after.get(f)}
    if not changed:
        return True
    todo, _ = _todo(d, state)
    was, now = _Scope(d, before), _Scope(d, after)
    return all(_gives(x, before, was) == _gives(x, after, now)
               for x, reads in zip(todo, _reads_per_todo(d, state)) if reads & changed)


_DEPENDS: dict[tuple[str, str], tuple[str, ...]] = {}
_PER_TODO: dict[tuple[str, str], tuple[frozenset[str], ...]] = {}


def _reads_per_todo(d: Definition, state: str) -> tuple[frozenset[str], ...]:
    """Per to-do of `state` (in `_todo`'s order): its required fields, the fields its stable guards read,
    and the field that pins it to a person."""
    key = (d.sha256, state)
    if key not in _PER_TODO:
        todo, _ = _todo(d, state)
        _PER_TODO[key] = tuple(frozenset(x.t.requires) | {f for r in x.reads for f in r}
                               | ({x.pinned} if x.pinned else set()) for x in todo)
    return _PER_TODO[key]


def _depends_on(d: Definition, state: str) -> tuple[str, ...]:
    """The fields `queues` reads in `state`: what any of its to-dos reads (`_reads_per_todo`)."""
    key = (d.sha256, state)
    if key not in _DEPENDS:
        _DEPENDS[key] = tuple(sorted(set().union(*_reads_per_todo(d, state))))
    return _DEPENDS[key]


def queues(d: Definition, state: str, data: Mapping[str, Any], signoffs: Sequence[Mapping[str, Any]],
           assignee: str | None) -> frozenset[str]:
    """Every queue (role id, or @user) a case of `d` in this state with this data is in."""
    if d.states[state].final:
        return frozenset()
    out: set[str] = set()
    if assignee is not None:
        out.add(assignee_queue(assignee))
    signing = d.signoff_transition(state)
    if signing is not None and signing.signoffs is not None and len(signoffs) < len(signing.signoffs.roles):
        out.update(eligible_signers(signing, signoffs))
    if assignee is None:
        todo, assignable = _todo(d, state)
        if todo:
            lazy = _Scope(d, data)
            for x in todo:
                out.update(_gives(x, data, lazy))
            if assignable:
                out.update(d.assign_roles)
    return frozenset(out)


def _pinned_field(d: Definition, t: Transition) -> str | None:
    """The FIELD of a guard `actor == FIELD`: the event is reserved for the person FIELD names (e.g. the
    responsible person's own self-review), so it is in that person's queue instead of every role holder's."""
    for guard in t.guards:
        m = _ACTOR_IS.match(guard.expr.text)
        if m and (m.group(1) or m.group(2)) in d.fields:
            return m.group(1) or m.group(2)
    return None


class _Scope:
    """What stable guards see (built on first need), and their outcomes, remembered by the values they read."""

    def __init__(self, d: Definition, data: Mapping[str, Any]) -> None:
        self.d, self.data = d, data
        self._built: tuple[dict[str, Any], Any] | None = None

    def knows(self, names: frozenset[str]) -> bool:
        """Are all these names set (fields given, or constants)?"""
        return all(n in self.d.constants or self.data.get(n) is not None for n in names)

    def outcome(self, x: _ToDo, i: int, guard: Guard) -> bool | None:
        """True / False, or None when it cannot be evaluated (an unset field, an error)."""
        key = (self.d.sha256, x.t.index, i, tuple(repr(self.data.get(n)) for n in x.reads[i]))
        if key not in _OUTCOMES:
            if self._built is None:
                self._built = scope(self.d, self.data, _EPOCH, "")
            act, ctx = self._built
            try:
                _OUTCOMES[key] = guard.expr.evaluate(act, ctx) is True
            except ExpressionError:
                _OUTCOMES[key] = None
            if len(_OUTCOMES) > 50_000:
                _OUTCOMES.clear()
        return _OUTCOMES[key]


_OUTCOMES: dict[tuple[Any, ...], bool | None] = {}


def _gives(x: _ToDo, data: Mapping[str, Any], lazy: _Scope) -> frozenset[str]:
    """The queues to-do `x` puts an unassigned case in: its roles', or the queue of the person it is
    reserved for (a guard `actor == FIELD`); none if it is not open to them."""
    if not _open_to_roles(x, data, lazy):
        return frozenset()
    person = data.get(x.pinned) if x.pinned else None
    return frozenset([person_queue(person)]) if isinstance(person, str) and person else x.t.roles


def _open_to_roles(x: _ToDo, data: Mapping[str, Any], lazy: _Scope) -> bool:
    """Could a holder of t's roles find t ready, needing fields, or to claim? (`show`'s tests, stable guards)"""
    t = x.t
    gone = [g for g in missing_fields(t, data, {}) if not g.startswith("input ")]
    if not gone and t.input_required:
        return True                               # `show` checks no guard before the inputs are given
    for i, guard in enumerate(x.guards):
        if gone and not lazy.knows(guard.expr.names):
            continue                              # reads a field not given yet: `show` does not judge it
        ok = lazy.outcome(x, i, guard)
        if ok is None and gone:
            continue
        if ok is not True:
            return False                          # false, or failing closed as the engine's guard does
    return True


def rows(d: Definition, case_id: str, found: Iterable[str]) -> list[dict[str, str]]:
    return [{"case_id": case_id, "queue": q, "workflow": d.workflow} for q in sorted(found)]


def store_new(conn: Connection, d: Definition, case_id: str, state: str, data: Mapping[str, Any],
              signoffs: Sequence[Mapping[str, Any]], assignee: str | None) -> None:
    """A new case's queues (open, import)."""
    new = rows(d, case_id, queues(d, state, data, signoffs, assignee))
    if new:
        conn.execute(INSERT_QUEUE, new)


def refresh(conn: Connection, d: Definition, case_id: str, before: frozenset[str], after: frozenset[str]) -> None:
    """Rewrite a case's queues when a write changed them (inside the write's transaction)."""
    if before == after:
        return
    conn.execute(_DELETE_QUEUE, {"case_id": case_id})
    if after:
        conn.execute(INSERT_QUEUE, rows(d, case_id, after))


__all__ = ["queues", "same_queues", "queue_roles", "reads_of", "store_new", "refresh", "eligible_signers",
           "assignee_queue", "person_queue", "stable", "stable_reads", "INSERT_QUEUE"]
