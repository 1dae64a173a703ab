"""What a database remembers about itself: simulation or live, and the org chart versions it ran under.

Both tables are append-only (revision 0004). The mode is written once, when the
database is created; the org chart in force is the last `orgs` row, written the
first time an Engine uses the database and then only by `caseflow org apply`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.records import record
from caseflow.store import reads
from caseflow.store.tables import orgs, settings

SIMULATION, LIVE = "simulation", "live"



@record(frozen=True)
class OrgVersion:
    id: int
    sha256: str
    org_text: str
    calendars_text: str
    applied_at: str
    applied_by: str
    os_user: str | None
    note: str | None


def mode(conn: Connection) -> str | None:
    row = reads.first(conn, reads.MODE)            # driver SQL: read by every command (store/reads.py)
    return row[0] if row else None


def record_mode(conn: Connection, simulation: bool, at: str) -> None:
    conn.execute(settings.insert().values(key="mode", value=SIMULATION if simulation else LIVE, created_at=at))


def org_in_force(conn: Connection) -> tuple[int, str] | None:
    """(id, sha256) of the org version in force, or None before the first use."""
    row = reads.first(conn, reads.LAST_ORG)
    return (row[0], row[1]) if row else None


def org_version(conn: Connection, version_id: int | None = None) -> OrgVersion | None:
    query = sa.select(orgs)
    query = query.where(orgs.c.id == version_id) if version_id else query.order_by(orgs.c.id.desc()).limit(1)
    row = conn.execute(query).first()
    return OrgVersion(**{k: v for k, v in row._mapping.items()}) if row else None


def org_versions(conn: Connection) -> list[OrgVersion]:
    return [OrgVersion(**dict(r._mapping)) for r in conn.execute(sa.select(orgs).order_by(orgs.c.id))]


def record_org(conn: Connection, *, sha256: str, org_text: str, calendars_text: str, at: str, by: str,
               os_user: str | None, note: str | None) -> int:
    result = conn.execute(orgs.insert().values(sha256=sha256, org_text=org_text, calendars_text=calendars_text,
                                               applied_at=at, applied_by=by, os_user=os_user, note=note))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


__all__ = ["SIMULATION", "LIVE", "OrgVersion", "mode", "record_mode", "org_in_force", "org_version",
           "org_versions", "record_org"]
