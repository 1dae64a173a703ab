"""Who may see personal data unmasked: one rule for `show`, `history` and `audit`.

Only a person holding a role with `can_unmask` in org.yaml may; a refusal is
itself recorded in the attempts log (event `unmask`) before it is raised, and
what was shown is recorded by the caller as an `unmask` row of the case.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from caseflow.audit import chain
from caseflow.definition.model import Person
from caseflow.errors import NotPermitted
from caseflow.values import format_datetime

if TYPE_CHECKING:
    from caseflow.catalog import Catalog
    from caseflow.store.database import Store


class UnmaskHost(Protocol):
    """What the rule needs (an `Engine` is one): not the whole Engine as a service locator."""

    catalog: Catalog
    store: Store
    os_user: str

    def now(self) -> datetime: ...


def check_unmask(engine: UnmaskHost, person: Person, what: str, case_id: str | None = None) -> None:
    """Raise NotPermitted (recorded) unless `person` may see personal data unmasked."""
    org = engine.catalog.org
    if any(org.roles[r].can_unmask for r in person.roles if r in org.roles):
        return
    held = ", ".join(org.role_label(r) for r in sorted(person.roles)) or "none"
    exc = NotPermitted(person.id, "see personal data unmasked", f"no role with can_unmask in org.yaml (holds: {held})")
    with engine.store.write() as conn:
        chain.append_attempt(conn, case_id=case_id, workflow=None, event="unmask", actor=person.id,
                             error=type(exc).__name__, reason=f"{what}: {exc}",
                             effective_at=format_datetime(engine.now()), os_user=engine.os_user)
    raise exc
