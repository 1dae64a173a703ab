"""Deny by default: every transition of every shipped workflow refuses every role it does not list.

The table is built from the shipped definitions and org.yaml, so a new
transition or role is covered without touching this file. For each (workflow,
event, source state) the allowed roles are the union over its candidate
transitions (a guarded alternative may allow other roles); every role outside
that set is tried through a person who holds it and none of the allowed ones.
Timer-only (system) transitions refuse everyone; sign-off transitions refuse
everyone through `advance` and, through `sign`, everyone without a sign-off role.

The case is put in the source state by inserting its row directly (the role
check comes before requires, guards and data, so no data is needed); the
refusal must be RoleNotAllowed and leave that row without any audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from caseflow.catalog import SHIPPED, Catalog
from caseflow.definition.model import Person
from caseflow.errors import RoleNotAllowed
from caseflow.runtime.engine import Engine
from caseflow.store.tables import attempts, cases

from .support import chain_problems, note, snapshot

CATALOG = Catalog.load(SHIPPED)
PEOPLE = sorted(CATALOG.org.people.values(), key=lambda p: p.id)
ROLES = sorted(CATALOG.org.roles)


@dataclass(frozen=True)
class Row:
    workflow: str
    event: str
    source: str
    how: str                      # advance | sign
    allowed: frozenset[str]       # roles that may do it this way (empty: nobody)

    def __str__(self) -> str:
        return f"{self.workflow}:{self.source}:{self.how} {self.event}"


def table() -> list[Row]:
    rows: dict[tuple[str, str, str, str], Row] = {}
    for wf, d in sorted(CATALOG.current.items()):
        for t in d.transitions:
            for src in t.sources:
                cands = d.candidates(t.event, src)
                people_may = frozenset().union(*[c.roles for c in cands if not c.system and not c.signoffs])
                rows.setdefault((wf, t.event, src, "advance"), Row(wf, t.event, src, "advance", people_may))
                if t.signoffs:
                    rows.setdefault((wf, t.event, src, "sign"), Row(wf, t.event, src, "sign",
                                                                  frozenset(t.signoffs.roles)))
    return list(rows.values())


def outsiders(allowed: frozenset[str]) -> list[tuple[str, Person | None]]:
    """(role, a person holding it and no allowed role) for every role not allowed."""
    out = []
    for role in ROLES:
        if role in allowed:
            continue
        holder = next((p for p in PEOPLE if role in p.roles and not (p.roles & allowed)), None)
        out.append((role, holder))
    return out


TABLE = table()


def test_the_table_covers_every_transition():
    covered = {(r.workflow, r.event, r.source) for r in TABLE}
    for wf, d in CATALOG.current.items():
        for t in d.transitions:
            assert {(wf, t.event, s) for s in t.sources} <= covered
    assert len(CATALOG.current) >= 3 and len(ROLES) >= 10


def place(engine: Engine, workflow: str, state: str, n: int) -> str:
    """A case of `workflow` in `state`, written directly (for the role check only: no data, no log)."""
    d = CATALOG.current[workflow]
    cid = f"{workflow[:3].upper()}-ROLE{n:05d}"
    now = "2025-03-03T02:00:00Z"
    with engine.store.write() as conn:
        engine.register(conn, d, engine.now())
        conn.execute(cases.insert().values(id=cid, workflow=workflow, definition=d.sha256, state=state,
                                           data="{}", signoffs="[]", version=1, parent_case=None,
                                           created_at=now, updated_at=now))
    return cid


def test_every_transition_refuses_every_role_it_does_not_list(engine, store):
    checked = uncheckable = 0
    misses: list[str] = []
    for n, row in enumerate(TABLE):
        cid = place(engine, row.workflow, row.source, n)
        before = snapshot(store, cid)
        assert before[1] == []
        for role, person in outsiders(row.allowed):
            if person is None:           # every holder of this role also holds an allowed one
                uncheckable += 1
                continue
            try:
                if row.how == "advance":
                    engine.advance(cid, row.event, person.id)
                else:
                    engine.sign(cid, person.id)
            except RoleNotAllowed:
                pass
            except Exception as exc:  # noqa: BLE001 - collect every miss, then fail once
                misses.append(f"{row}: {role} ({person.id}) got {type(exc).__name__}: {exc}")
            else:
                misses.append(f"{row}: {role} ({person.id}) was ALLOWED")
            checked += 1
            assert snapshot(store, cid) == before, f"{row}: refusing {person.id} changed the case"
    note("roles", transitions=len(TABLE), refusals_checked=checked, role_pairs_without_a_pure_holder=uncheckable)
    assert misses == [], "\n".join(misses[:30])
    with store.engine.connect() as conn:
        logged = conn.execute(sa.select(sa.func.count()).select_from(attempts)
                              .where(attempts.c.error == "RoleNotAllowed")).scalar()
    assert logged == checked, "every refusal is recorded in the attempts log"
    assert chain_problems(store) == []       # placed cases have no log by design: only the chains


def test_every_listed_role_passes_the_role_check(engine, store):
    """The converse, so the table cannot pass by refusing everyone: an allowed role is never RoleNotAllowed."""
    passed = 0
    for n, row in enumerate(TABLE):
        for role in sorted(row.allowed):
            person = next(p for p in PEOPLE if role in p.roles)
            cid = place(engine, row.workflow, row.source, 100_000 + n * 100 + ROLES.index(role))
            try:
                if row.how == "advance":
                    engine.advance(cid, row.event, person.id)
                else:
                    engine.sign(cid, person.id)
            except RoleNotAllowed as exc:
                if row.how == "sign" and "the next sign-off is by" in str(exc):
                    continue             # sequential sign-offs: a later signer must wait their turn
                pytest.fail(f"{row}: {role} ({person.id}) was refused: {exc}")
            except Exception:  # noqa: BLE001 - guards, required fields: past the role check
                pass
            passed += 1
    note("roles", allowed_roles_checked=passed)
