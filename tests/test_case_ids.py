"""A new case's id is drawn at random (32 bits): an id that is taken already costs the open a new draw, not
an exit 3 — among 100,000 cases two alike are more likely than not."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from caseflow.errors import ConcurrentChange
from caseflow.runtime import engine as engine_module
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import attempts, audit, case_queue, cases

from .conftest import audit_rows, case_row
from .helpers import COMPLAINT


def _counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (cases, audit, case_queue, attempts)}


def _draws(monkeypatch: pytest.MonkeyPatch, ids: list[str]) -> list[str]:
    drawn: list[str] = []

    def draw(workflow: str) -> str:
        drawn.append(ids[len(drawn)])
        return drawn[-1]
    monkeypatch.setattr(engine_module, "new_case_id", draw)
    return drawn


def test_an_open_that_draws_a_taken_id_opens_under_a_new_one(engine: Engine, store: Store,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    taken = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    before, first = _counts(store), case_row(store, taken)
    drawn = _draws(monkeypatch, [taken, "COM-0000FRESH"])
    opened = engine.open("complaint", "wang.fang", {**COMPLAINT, "form_no": "TS-2025-002"})
    assert drawn == [taken, "COM-0000FRESH"] and opened["id"] == "COM-0000FRESH"
    assert case_row(store, taken) == first                      # the case that held the id is untouched
    assert case_row(store, opened["id"])["data"] != first["data"]
    assert [r["kind"] for r in audit_rows(store, opened["id"])][0] == "open"
    after = _counts(store)
    assert after["cases"] == before["cases"] + 1 and after["attempts"] == before["attempts"]


def test_an_id_taken_every_time_is_refused_as_a_race_and_writes_nothing(engine: Engine, store: Store,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    taken = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    before = _counts(store)
    drawn = _draws(monkeypatch, [taken] * 3)
    with pytest.raises(ConcurrentChange):
        engine.open("complaint", "wang.fang", {**COMPLAINT, "form_no": "TS-2025-003"})
    assert len(drawn) == 3
    after: dict[str, Any] = _counts(store)
    assert {k: after[k] for k in ("cases", "audit", "case_queue")} == \
        {k: before[k] for k in ("cases", "audit", "case_queue")}
    assert after["attempts"] == before["attempts"] + 1          # the refusal is in the attempts log
