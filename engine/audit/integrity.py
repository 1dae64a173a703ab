"""The evidence around the chains: definition texts, guards on the log tables, anchors outside the database.

- every stored definition text must hash to its key (an edited old version
  would otherwise run old cases under rules nobody approved), and every audit
  row's and case row's definition must exist;
- every stored org chart version (org.yaml + calendars.yaml, table `orgs`) must
  hash to its key (an edited text gives people roles, or moves holidays, that
  nobody applied), and every audit row's `org` must be a stored version;
- the append-only triggers must be in place (and enabled, on PostgreSQL), and
  no role but the owner may UPDATE, DELETE or TRUNCATE the log tables;
- checkpoint digests kept outside the database (an anchor file, one JSON
  object per line, appended by `audit checkpoint --anchor`) must all still be
  in the checkpoint chain: deleting checkpoints, or rewriting the whole
  chain, is then seen.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from caseflow.definition.model import sha256_of
from caseflow.errors import UsageError
from caseflow.store.backend import backend_of
from caseflow.store.tables import audit, cases, checkpoints, definitions, orgs

LOG_TABLES = ("audit", "attempts", "checkpoints")
GUARDED = LOG_TABLES + ("orgs", "settings")      # append-only by trigger (revisions 0001 and 0004)
ANCHOR_ENV = "CASEFLOW_ANCHOR_FILE"


@dataclass(frozen=True)
class Finding:
    where: str
    seq: int | None
    kind: str
    message: str


def check_definitions(conn: Connection) -> list[Finding]:
    out: list[Finding] = []
    known: set[str] = set()
    for d in conn.execute(sa.select(definitions.c.sha256, definitions.c.workflow, definitions.c.text)):
        known.add(d.sha256)
        if sha256_of(d.text) != d.sha256:
            out.append(Finding("definitions", None, "definition",
                               f"stored text of {d.workflow} version {d.sha256[:12]} does not hash to its key "
                               f"(the definition was edited in the database)"))
    used = conn.execute(sa.select(audit.c.definition, sa.func.min(audit.c.case_id).label("case_id"))
                        .group_by(audit.c.definition))
    for r in used:
        if r.definition not in known:
            out.append(Finding(r.case_id, None, "definition",
                               f"audit rows name definition version {r.definition[:12]}, which no stored "
                               f"definition has (forged rows, or the definition row was deleted)"))
    for c in conn.execute(sa.select(cases.c.id, cases.c.definition)):
        if c.definition not in known:
            out.append(Finding(c.id, None, "definition",
                               f"case row names definition version {c.definition[:12]}, which is not stored"))
    return out


def check_orgs(conn: Connection) -> list[Finding]:
    from caseflow.catalog import org_version
    out: list[Finding] = []
    known: set[str] = set()
    for o in conn.execute(sa.select(orgs.c.id, orgs.c.sha256, orgs.c.org_text, orgs.c.calendars_text)
                          .order_by(orgs.c.id)):
        known.add(o.sha256)
        if org_version(o.org_text, o.calendars_text) != o.sha256:
            out.append(Finding("orgs", o.id, "org",
                               f"stored org chart version {o.id} ({o.sha256[:12]}) does not hash to its key "
                               f"(its org.yaml or calendars.yaml text was edited in the database)"))
    used = conn.execute(sa.select(audit.c.org, sa.func.min(audit.c.case_id).label("case_id"))
                        .where(audit.c.org.is_not(None)).group_by(audit.c.org))
    for r in used:
        if r.org not in known:
            out.append(Finding(r.case_id, None, "org",
                               f"audit rows name org chart version {r.org[:12]}, which no stored org chart has "
                               f"(forged rows, or the org version was deleted)"))
    return out


def check_guards(conn: Connection) -> list[Finding]:
    """Append-only triggers present (and enabled); no write grants on the log tables but the owner's."""
    backend = backend_of(conn)
    out: list[Finding] = []
    expected = {name for table in GUARDED for name in backend.append_only_triggers(table)}
    missing = sorted(expected - backend.enabled_triggers(conn))
    if missing:
        out.append(Finding("guards", None, "guards",
                           f"append-only trigger(s) missing or disabled: {', '.join(missing)} (the log tables "
                           f"can be rewritten)"))
    for grantee, table, privilege in backend.write_grants(conn, GUARDED):
        out.append(Finding("guards", None, "guards",
                           f"role {grantee} may {privilege} {table}: the log is append-only"))
    return out


# -- anchors: checkpoint digests kept outside the database ------------------------------------

def anchor_path(given: str | None) -> Path | None:
    text = given or os.environ.get(ANCHOR_ENV)
    return Path(text) if text else None


def write_anchor(path: Path, checkpoint: dict[str, Any]) -> None:
    """Append one line; the file is the operator's (another disk, a WORM share, a mail archive)."""
    line = json.dumps({k: checkpoint[k] for k in ("id", "digest", "created_at", "cases", "mac")
                       if k in checkpoint}, sort_keys=True)
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as exc:
        raise UsageError(f"--anchor: cannot append to {path}: {exc.strerror}") from None


def read_anchor(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--anchor: cannot read {path}: {exc.strerror}") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise UsageError(f"--anchor: {path} line {n} is not a checkpoint record") from None
        if not isinstance(item, dict) or not isinstance(item.get("id"), int) or not isinstance(item.get("digest"), str):
            raise UsageError(f"--anchor: {path} line {n} is not a checkpoint record")
        out.append(item)
    return out


def check_anchor(conn: Connection, anchored: list[dict[str, Any]]) -> list[Finding]:
    have = {r.id: r.digest for r in conn.execute(sa.select(checkpoints.c.id, checkpoints.c.digest))}
    out: list[Finding] = []
    top = max(have, default=0)
    gone = [a for a in anchored if a["id"] not in have]
    if gone:
        ids = ", ".join(str(a["id"]) for a in gone[:5]) + (" …" if len(gone) > 5 else "")
        out.append(Finding("checkpoints", gone[0]["id"], "shrunk",
                           f"checkpoint chain shrank: {len(gone)} anchored checkpoint(s) missing ({ids}); "
                           f"the database has {len(have)}, the last at id {top}"))
    for a in anchored:
        if a["id"] in have and have[a["id"]] != a["digest"]:
            out.append(Finding("checkpoints", a["id"], "rewritten",
                               f"checkpoint {a['id']} differs from its anchored digest {a['digest'][:16]}… "
                               f"(the checkpoint chain was rewritten)"))
    return out


__all__ = ["Finding", "check_definitions", "check_orgs", "check_guards", "check_anchor", "read_anchor", "write_anchor",
           "anchor_path"]


def head_problems(case: dict[str, Any], rows: list[dict[str, Any]]) -> list[tuple[int | None, str, str]]:
    """(seq, kind, message) if the chain head kept on the case row (`audit_seq`, `audit_hash`, revision
    0008_chain_head) is not the case's last audit row: the next action would chain onto the wrong row."""
    seq, digest = case.get("audit_seq"), case.get("audit_hash")
    if seq is None or not rows:
        return []
    last = rows[-1]
    if (seq, digest) == (last["seq"], last["hash"]):
        return []
    return [(last["seq"], "head", f"the case row's chain head (row {seq}) is not its last audit row "
                                  f"(row {last['seq']}): rows were appended or deleted behind the engine's back, "
                                  f"or the case row was edited")]
