"""What the scenario tests read back: refusals that change nothing, the path, the outbox, the log."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from caseflow.store.tables import cases, outbox

from ..conftest import audit_rows, snapshot


def refused(store, cid: str, action: Callable[[], Any], error: type[Exception], message: str) -> Exception:
    """Run an action that must be refused; prove the case and its audit log did not change."""
    before = snapshot(store, cid)
    with pytest.raises(error) as caught:
        action()
    assert str(caught.value) == message
    assert snapshot(store, cid) == before
    return caught.value


def path_taken(store, cid: str) -> list[str]:
    """The states the case went through, from its audit log."""
    return [r["to_state"] for r in audit_rows(store, cid) if r["kind"] in ("open", "transition")]


def notices(store, cid: str) -> list[tuple[str, str]]:
    """(role, message) of every notification in the outbox for the case."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.role, outbox.c.message).where(outbox.c.case_id == cid)
                            .order_by(outbox.c.id))
        return [tuple(r) for r in rows]


def escalations(store, cid: str) -> list[str]:
    return [r["note"] for r in audit_rows(store, cid) if r["kind"] == "escalation"]


def decisions(store, cid: str) -> list[dict[str, Any]]:
    return [json.loads(r["changes"]) for r in audit_rows(store, cid) if r["kind"] == "decision"]


def case_count(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one()
