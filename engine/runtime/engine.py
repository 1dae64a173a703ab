"""The Engine: open, advance, sign — each one database transaction.

Every action reads a snapshot, decides everything on it (role, required
fields, guards, sign-offs, effects, data schema) and only then writes: the new
state with an optimistic version check, plus its audit rows, in one commit.
A refusal raises before the write, so the case and its log stay exactly as
they were; the refusal itself goes to the separate attempts log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.audit import chain as audit
from caseflow.catalog import Catalog
from caseflow.definition.evaluate import (
    apply_effects,
    missing_fields,
    schema_problem,
    scope,
    split_sets,
    stamp,
    typed_data,
)
from caseflow.definition.expressions import EvalContext
from caseflow.definition.lint import did_you_mean
from caseflow.definition.model import Definition, Person, Transition, sha256_of
from caseflow.errors import (
    CaseflowError,
    ConcurrentChange,
    EvidenceMismatch,
    IdentityMismatch,
    InvalidData,
    MissingFields,
    NotFound,
    NotPermitted,
    RoleNotAllowed,
    SimulatedTime,
    StaleCase,
    TransitionRefused,
    UnknownUser,
    UsageError,
    WrongState,
)
from caseflow.masking import mask_text
from caseflow.runtime import identity, safeguards
from caseflow.runtime.snapshot import Change, Snapshot, new_case_id
from caseflow.runtime.turns import next_signer_role
from caseflow.store import driver_sql, reads
from caseflow.store.database import Store
from caseflow.store.tables import definitions
from caseflow.values import ValueProblem


class Engine:
    """The library API; the CLI is a thin layer over it."""

    def __init__(self, store: Store, catalog: Catalog, clock: Callable[[], datetime] | None = None,
                 before_write: Callable[[Snapshot], None] | None = None) -> None:
        self.store = store
        self.os_user = identity.os_user()
        found = identity.standing(store)
        self.simulation = found.simulation
        if clock is not None and not self.simulation:
            raise SimulatedTime(store.shown_url)
        self.login = found.login                # live PostgreSQL: the person comes from the login
        self.clock = clock or (lambda: datetime.now(UTC))
        if found.org is not None and found.org[1] == catalog.org_sha:
            self.catalog, (self.org_id, self.org_sha) = catalog, found.org
        else:
            self.catalog, self.org_id, self.org_sha = identity.catalog_in_force(
                store, catalog, stamp(self.clock()), self.os_user)
        self.before_write = before_write      # a hook for tests and instrumentation
        self._stored: set[str] = set()         # definition versions known to be in the database

    # -- helpers ----------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def person(self, user: str | None) -> Person:
        """The acting person: `--as` among the org chart in force; on live PostgreSQL, the login."""
        org = self.catalog.org
        if self.login is not None:
            mapped = org.by_login(self.login)
            if mapped is None:
                raise UnknownUser(user, f"database login {self.login!r} is not a person in the org chart in "
                                        "force (db_login in org.yaml)")
            if user and user != mapped.id:
                raise IdentityMismatch(user, self.login, mapped.id)
            return mapped
        if not user or user not in org.people:
            raise UnknownUser(user)
        return org.people[user]

    def identify(self, user: str | None, what: str) -> Person:
        """`person`, for commands that are not case actions (reads too): a refusal is recorded."""
        with self._recording(what, None, user):
            return self.person(user)

    def definition_of(self, conn: Connection, sha: str) -> Definition:
        def load(s: str) -> tuple[str, str]:
            row = reads.definition_text(conn, s)
            if sha256_of(row.text) != s:      # an edited old version must not run old cases
                raise EvidenceMismatch("", "load", "", f"the stored text of definition version {s[:12]} "
                                       f"does not hash to its key: it was edited in the database "
                                       f"(run caseflow audit verify)")
            return row.text, row.path
        return self.catalog.version(sha, load)

    def snapshot(self, conn: Connection, case_id: str, step: bool = False) -> Snapshot:
        """The case as stored; `step`: the read a step decides on (driver_sql.read_for_step)."""
        row = driver_sql.read_for_step(conn, case_id)[0] if step else driver_sql.read_case(conn, case_id)
        if row is None:
            raise NotFound("case", case_id)
        return Snapshot.of_row(row, self.definition_of(conn, row.definition))  # type: ignore[attr-defined]  # CaseRow: a namedtuple of CASE_COLUMNS

    def person_attr(self, person: str, key: str) -> Any:
        p = self.catalog.org.people.get(person)
        return None if p is None else ({"name": p.name} | dict(p.attributes)).get(key)

    def scope(self, definition: Definition, data: Mapping[str, Any], now: datetime, actor: str,
              inputs: Mapping[str, Any] | None = None,
              input_schemas: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[dict[str, Any], EvalContext]:
        """What an expression sees on this case (definition/evaluate.py `scope`), with the catalog's
        working days and person attributes."""
        return scope(definition, data, now, actor, inputs=inputs, input_schemas=input_schemas,
                     working_days=self.working_days(definition), person_attr=self.person_attr)

    def working_days(self, definition: Definition) -> Callable[[datetime, datetime], int] | None:
        cal = self.catalog.calendar_for(definition)
        return cal.working_days_between if cal else None

    @contextmanager
    def _recording(self, event: str, case_id: str | None, actor: str | None,
                   workflow: str | None = None) -> Iterator[None]:
        """Record refused and denied attempts (and lost races, exit 3) in the attempts log, then re-raise."""
        try:
            yield
        except (TransitionRefused, UnknownUser, NotFound, UsageError, NotPermitted, StaleCase,
                ConcurrentChange) as exc:
            now = self.now()
            try:
                with self.store.write() as conn:
                    audit.append_attempt(conn, case_id=case_id, workflow=workflow, event=event,
                                         actor=actor or "", error=type(exc).__name__,
                                         reason=mask_text(str(exc)) or "", effective_at=stamp(now),
                                         os_user=self.os_user)
            except CaseflowError:
                pass
            raise

    def attempting(self, event: str, case_id: str | None, actor: str | None,
                   workflow: str | None = None) -> AbstractContextManager[None]:
        """For callers that refuse before the engine sees the input (a bad --data file): the refusal
        is recorded in the attempts log like the engine's own."""
        return self._recording(event, case_id, actor, workflow)

    # -- open -------------------------------------------------------------------------------
    def open(self, workflow: str, actor: str | None, sets: Mapping[str, str] | None = None,
             data: Mapping[str, Any] | None = None, note: str | None = None) -> dict[str, Any]:
        with self._recording("open", None, actor, workflow):
            audit.check_note(note)
            definition, person, initial = self.plan_open(workflow, actor, sets or {}, data or {})
            now = self.now()
            safeguards.check_not_future(definition, initial, definition.fields, now, "", f"open {workflow}",
                                        definition.initial)
            from caseflow.runtime import actions as case_actions  # the write side: reads never import it
            for attempt in range(_ID_DRAWS):
                case_id = new_case_id(workflow)
                try:
                    with self.store.action() as conn, self.store.write(conn) as tx, driver_sql.opening(tx):
                        case_actions.open_case(self, tx, definition, initial, person, now, note, None,
                                               one_write=True, case_id=case_id)
                    break
                except ConcurrentChange:
                    # A case id has 32 random bits: among 100,000 cases two alike are more likely than not.
                    # The write was rolled back; if the id was the taken value, open under a new one.
                    if attempt == _ID_DRAWS - 1 or self.read_case_or_none(case_id) is None:
                        raise
        return {"id": case_id, "workflow": workflow, "state": definition.initial}

    def check_opener(self, workflow: str, actor: str | None) -> None:
        """Refuse (and record it in the attempts log) unless this person may open this workflow."""
        with self._recording("open", None, actor, workflow):
            self._opener(workflow, actor)

    def _opener(self, workflow: str, actor: str | None) -> tuple[Definition, Person]:
        person = self.person(actor)
        definition = self.catalog.get(workflow)
        if not (person.roles & definition.open_roles):
            allowed = ", ".join(self.catalog.org.role_label(r) for r in sorted(definition.open_roles))
            raise RoleNotAllowed("", f"open {workflow}", definition.initial,
                                 f"{person.id} has none of the roles allowed: {allowed}",
                                 allowed_roles=tuple(sorted(definition.open_roles)))
        return definition, person

    def plan_open(self, workflow: str, actor: str | None, sets: Mapping[str, str],
                  data: Mapping[str, Any]) -> tuple[Definition, Person, dict[str, Any]]:
        """Everything `open` decides before writing: who, which workflow, the initial data (`--set` wins)."""
        definition, person = self._opener(workflow, actor)
        fields, _ = split_sets(definition, None, sets)
        safeguards.check_open_fields(definition, data, "--data")
        return definition, person, {**typed_data(definition, data), **fields}

    def register(self, conn: Connection, definition: Definition, now: datetime) -> None:
        """Store the definition text once, so cases can always run under their own version."""
        if definition.sha256 in self._stored:
            return
        exists = conn.execute(sa.select(definitions.c.sha256)
                              .where(definitions.c.sha256 == definition.sha256)).first()
        if exists:           # committed by an earlier transaction: append-only, so it stays
            self._stored.add(definition.sha256)
        else:       # insert-or-ignore: the first opens of a new version may race
            conn.execute(self.store.backend.insert_or_ignore(
                definitions, ["sha256"], sha256=definition.sha256, workflow=definition.workflow,
                text=definition.text, path=definition.path, created_at=stamp(now)))

    # -- advance ----------------------------------------------------------------------------
    def advance(self, case_id: str, event: str, actor: str | None, sets: Mapping[str, str] | None = None,
                note: str | None = None) -> dict[str, Any]:
        with self._recording(event, case_id, actor):
            person = self.person(actor)
            audit.check_note(note)
            now = self.now()
            with self.store.action() as conn:          # one connection: the read, then the write
                snap = self.snapshot(conn, case_id, step=True)
                safeguards.check_not_before(snap, event, now)
                change = self.plan(snap, event, person, sets or {}, note, now)
                self.write(change, now, note, conn=conn)
        return {"id": case_id, "workflow": snap.workflow, "event": event, "from": snap.state,
                "state": change.dest}

    def plan(self, snap: Snapshot, event: str, person: Person, sets: Mapping[str, str],
             note: str | None, now: datetime) -> Change:
        """Choose the transition and decide every change; raise a refusal if not allowed."""
        d = snap.definition
        candidates = d.candidates(event, snap.state)
        if not candidates:
            raise self._no_such_event(snap, event)
        refusals: list[TransitionRefused] = []
        for t in candidates:
            try:
                return self._plan_one(snap, t, person, sets, note, now)
            except TransitionRefused as exc:
                refusals.append(exc)
        # Alternatives the person may fire explain better than ones they may not.
        relevant = [r for r in refusals if not isinstance(r, RoleNotAllowed)]
        if relevant:
            raise relevant[0]
        if len(candidates) > 1 and not any(t.system or t.signoffs for t in candidates):
            roles = sorted(set().union(*(t.roles for t in candidates)))
            allowed = ", ".join(self.catalog.org.role_label(r) for r in roles)
            raise RoleNotAllowed(snap.id, event, snap.state, f"{person.id} has none of the roles allowed: {allowed}",
                                 allowed_roles=tuple(roles))
        raise refusals[0]

    def _no_such_event(self, snap: Snapshot, event: str) -> TransitionRefused:
        d = snap.definition
        here = sorted({t.event for t in d.transitions_from(snap.state) if not t.system})
        if any(t.event == event for t in d.transitions):
            reason = f"{d.event_label(event)} is not possible in {d.label(snap.state)}"
        else:
            hint = did_you_mean(event, {t.event for t in d.transitions})
            reason = f"unknown event {event!r}" + (f" ({hint})" if hint else "")
        reason += f"; possible now: {', '.join(here)}" if here else "; the case is closed"
        return WrongState(snap.id, event, snap.state, reason, possible=tuple(here))

    def _plan_one(self, snap: Snapshot, t: Transition, person: Person, sets: Mapping[str, str],
                  note: str | None, now: datetime, *, signing: bool = False) -> Change:
        d = snap.definition
        if t.system:
            raise RoleNotAllowed(snap.id, t.event, snap.state, f"{d.event_label(t.event)} is fired by timers only")
        if t.signoffs and not signing:
            nxt = next_signer_role(t, snap.signoffs)
            raise RoleNotAllowed(snap.id, t.event, snap.state,
                                 f"needs sign-offs; next: {self.catalog.org.role_label(nxt)} "
                                 f"(use: caseflow sign {snap.id})", allowed_roles=(nxt,))
        if not signing and not (person.roles & t.roles):
            allowed = ", ".join(self.catalog.org.role_label(r) for r in sorted(t.roles))
            raise RoleNotAllowed(snap.id, t.event, snap.state,
                                 f"{person.id} has none of the roles allowed: {allowed}",
                                 allowed_roles=tuple(sorted(t.roles)))
        if t.assignee_only:
            from caseflow.runtime.assignment import check_assignee
            check_assignee(snap, t, person.id)
        fields, inputs = split_sets(d, t, sets)
        safeguards.check_not_future(d, fields, d.fields, now, snap.id, t.event, snap.state)
        safeguards.check_not_future(d, inputs, t.inputs, now, snap.id, t.event, snap.state)
        return self.decide(snap, t, {**snap.data, **fields}, inputs, person.id, now)

    def decide(self, snap: Snapshot, t: Transition, data: dict[str, Any], inputs: dict[str, Any],
               actor: str, now: datetime, *, reject: bool = False) -> Change:
        """Check requires and guards, apply effects, validate: the part shared by people and timers."""
        from caseflow.runtime.machine import machine_for  # a step's; a read (`show`) does not load transitions
        d = snap.definition
        safeguards.check_not_by(snap, t, data, actor)
        if not reject:
            gone = missing_fields(t, data, inputs)
            if gone:
                raise MissingFields(snap.id, t.event, snap.state, f"missing required: {', '.join(gone)}"
                                    f" (set with --set {gone[0].removeprefix('input ')}=…)", missing=tuple(gone))
            if t.guards or t.effects:
                act, ctx = self.scope(d, data, now, actor, inputs, t.inputs)
                dest = machine_for(d).fire(snap.state, t, act, ctx, case_id=snap.id)   # the guards: GuardFailed
                try:
                    data = {**data, **apply_effects(d, t, act, ctx)}
                except ValueProblem as exc:
                    raise InvalidData(snap.id, t.event, snap.state, str(exc)) from None
            else:               # no guard to check, no effect to compute: nothing would read a scope
                dest = machine_for(d).fire(snap.state, t, case_id=snap.id)
        else:
            dest = machine_for(d).fire(snap.state, t, case_id=snap.id, reject=True)
        problem = schema_problem(d, data, before=snap.data)
        if problem:
            raise InvalidData(snap.id, t.event, snap.state, f"data would be invalid: {problem}")
        return Change(snap, t, dest, data, [], [], inputs, actor)

    def write(self, change: Change, now: datetime, note: str | None, kind: str = "transition",
              conn: Connection | None = None) -> None:
        """Commit a planned change; `conn`: the action's connection its snapshot was read on."""
        if self.before_write:
            self.before_write(change.snap)
        from caseflow.runtime import actions as case_actions
        try:
            with self.store.write(conn) as tx:
                case_actions.commit(self, tx, change, now, note, kind)
        except driver_sql.ClocksMoved:   # PostgreSQL: a sweep moved its clocks since it read them; nothing written
            with self.store.write(conn) as tx, driver_sql.clocks_locked(tx):
                case_actions.commit(self, tx, change, now, note, kind)

    # -- sign -------------------------------------------------------------------------------
    def sign(self, case_id: str, actor: str | None, reject: bool = False,
             note: str | None = None) -> dict[str, Any]:
        with self._recording("reject" if reject else "sign", case_id, actor):
            person = self.person(actor)
            audit.check_note(note)
            now = self.now()
            with self.store.action() as conn:
                row, evidence = driver_sql.read_for_step(conn, case_id, signoffs=True)     # one statement
                if row is None:
                    raise NotFound("case", case_id)
                snap = Snapshot.of_row(row, self.definition_of(conn, row.definition))  # type: ignore[attr-defined]
                # rows of a later version (a signature racing this one) are not counted: see proved_signoffs
                proved = audit.signoffs_of(evidence, snap.version)
                if proved is not None and [_sig(s) for s in proved] != [_sig(s) for s in snap.signoffs]:
                    raise EvidenceMismatch(case_id, "reject" if reject else "sign", snap.state,
                                           "the sign-offs in the case row are not the ones its audit log records; "
                                           "nothing was signed (run caseflow audit verify)")
                safeguards.check_not_before(snap, "reject" if reject else "sign", now)
                from caseflow.runtime.actions import plan_signature
                change, kind = plan_signature(self, snap, person, reject, note, now)
                self.write(change, now, note, kind, conn=conn)
        return {"id": case_id, "workflow": snap.workflow, "state": change.dest,
                "signoffs": change.signoffs, "fired": kind == "transition"}

    # -- reads ------------------------------------------------------------------------------
    def read_case(self, case_id: str) -> Snapshot:
        with self.store.read() as conn:
            return self.snapshot(conn, case_id)

    def read_case_or_none(self, case_id: str) -> Any:
        """The stored case row, or None (no definition loaded: only whether the id is taken)."""
        with self.store.read() as conn:
            return driver_sql.read_case(conn, case_id)


_ID_DRAWS = 3            # case ids drawn for one open before a taken one is reported (exit 3)


def _sig(s: Any) -> tuple[Any, Any, Any]:
    return (s.get("role"), s.get("by"), s.get("at")) if isinstance(s, dict) else (None, None, None)


__all__ = ["Engine", "Snapshot", "Change", "new_case_id"]
