"""Who is acting, under which org chart, on what kind of database (docs/security.md).

- The person comes from `--as`, but only among the people of the org chart *stored in
  the database*; on a live PostgreSQL database it comes from the login (`session_user`,
  mapped by `db_login` in org.yaml) and an `--as` that differs is refused.
- The OS account that ran the command is recorded beside the person on every row.
- The org chart in force is the last one stored (`orgs`); a different org.yaml in
  `--workflows` changes nothing until `caseflow org apply` puts it in force.
- A fixed clock (`--now`) is honoured only on a database created as a simulation.
"""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from caseflow.catalog import Catalog, org_version
from caseflow.definition.evaluate import stamp
from caseflow.errors import NotPermitted, StorageError
from caseflow.records import record
from caseflow.store import settings as db_settings
from caseflow.store.database import Store

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

SYSTEM = "system"        # the engine's own actor; reserved in org.yaml


def os_user() -> str:
    """The OS account running this process (recorded beside the acting person)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return os.environ.get("USER") or os.environ.get("USERNAME") or f"uid:{os.getuid()}"


@record(frozen=True)
class Standing:
    """What the database says about itself, read once per Engine."""

    simulation: bool
    org: tuple[int, str] | None          # (version id, sha256) in force, None before first use
    login: str | None                    # the PostgreSQL login on a live database, else None


def standing(store: Store) -> Standing:
    try:
        with store.read() as conn:
            found = db_settings.mode(conn)
            org = db_settings.org_in_force(conn)
            login = None
            if store.backend.has_logins and found != db_settings.SIMULATION:
                login = store.backend.session_login(conn)
    except sa.exc.ProgrammingError as exc:
        raise StorageError(f"database {store.shown_url} is not initialised ({str(exc.orig).splitlines()[0]}); run "
                           "`caseflow db init` (or Store.migrate())") from None
    return Standing(found == db_settings.SIMULATION, org, login)


def catalog_in_force(store: Store, catalog: Catalog, at: str, who: str) -> tuple[Catalog, int, str]:
    """The catalog under the stored org chart; the first use of a database stores the given one."""
    with store.read() as conn:
        current = db_settings.org_version(conn)
    if current is None:
        with store.write() as conn:
            current = db_settings.org_version(conn)
            if current is None:
                sha = org_version(catalog.org_text, catalog.calendars_text)
                version = db_settings.record_org(conn, sha256=sha, org_text=catalog.org_text,
                                                 calendars_text=catalog.calendars_text, at=at, by=SYSTEM,
                                                 os_user=who, note="first use of the database")
                return catalog, version, sha
    return catalog.in_force(current.org_text, current.calendars_text), current.id, current.sha256




def apply_org(engine: Engine, catalog: Catalog, user: str | None, note: str | None = None) -> dict[str, Any]:
    """Put `catalog`'s org chart and calendars in force: only by a person of the chart in force holding
    a role with `can_apply_org`; the new version, who applied it and the OS account are recorded."""
    with engine._recording("org apply", None, user):
        person = engine.person(user)
        if not engine.catalog.org.may(person, "can_apply_org"):
            held = ", ".join(engine.catalog.org.role_label(r) for r in sorted(person.roles)) or "none"
            raise NotPermitted(person.id, "apply an org chart", f"no role with can_apply_org in the org chart "
                                                                f"in force (holds: {held})")
        sha = org_version(catalog.org_text, catalog.calendars_text)
        with engine.store.write() as conn:
            current = db_settings.org_in_force(conn)
            if current is not None and current[1] == sha:
                return {"version": current[0], "sha256": sha, "changed": False}
            version = db_settings.record_org(conn, sha256=sha, org_text=catalog.org_text,
                                             calendars_text=catalog.calendars_text, at=stamp(engine.now()),
                                             by=person.id, os_user=engine.os_user, note=note)
            from caseflow.runtime.rejudge import due_again
            due_again(conn, engine.now())       # the next sla run looks at every provisional deadline again
    return {"version": version, "sha256": sha, "changed": True, "previous": current[1] if current else None}


__all__ = ["SYSTEM", "os_user", "Standing", "standing", "catalog_in_force", "apply_org"]

