"""The shipped workflows' verification records, packaged with caseflow (workflows/verified.json).

So that `caseflow validate` and `verify` of the shipped files, or of `caseflow init`'s copies of
them, are instant on a machine that never verified them (a wheel install, a CI runner). They are
consulted after the user's own records (record.py) and serve a definition only when everything
they were made for is the same: the definition's content (`meaning`, the full digest), the org
digest, the verifier's digest, and a clean result (ok) to at least the bound asked for. Anything
else is a miss and the search runs as if there were no packaged record.

They cannot go stale silently: tests/verification/test_packaged.py fails, naming this command,
when a shipped workflow, org.yaml or the verifier changed and the file no longer matches:

    python -m caseflow.verification.packaged       # re-verifies the shipped workflows (~40 s), rewrites the file
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from caseflow.catalog import SHIPPED, Catalog
from caseflow.definition.model import Definition
from caseflow.verification import record

PATH = SHIPPED / "verified.json"
COMMAND = "python -m caseflow.verification.packaged"


@lru_cache(maxsize=1)
def records() -> dict[tuple[str, str], dict[str, Any]]:
    """(meaning, org digest) → record, as packaged; empty when the file is missing or unreadable."""
    try:
        found = json.loads(PATH.read_text(encoding="utf-8")).get("records", [])
    except (OSError, ValueError, AttributeError):
        return {}
    return {(r["meaning"], r["org"]): r for r in found
            if isinstance(r, dict) and isinstance(r.get("meaning"), str) and isinstance(r.get("org"), str)}


def lookup(meaning: str, org: str, bound: int) -> dict[str, Any] | None:
    """The packaged clean record for exactly this content and org, made by this verifier to at least `bound`."""
    found = records().get((meaning, org))
    if (found is None or found.get("meaning") != meaning or found.get("org") != org
            or found.get("verifier") != record.verifier_digest() or found.get("ok") is not True
            or not isinstance(found.get("bound"), int) or found["bound"] < bound):
        return None
    return {**found, "packaged": True}


def reusable(d: Definition, org: str, bound: int) -> dict[str, Any] | None:
    """A clean result to at least `bound` that `validate`/`verify` may use instead of a search: the user's
    record (record.fresh), else the packaged one."""
    return record.fresh(d, org, bound) or lookup(d.meaning, org, bound)


def shown(d: Definition, org: str) -> dict[str, Any] | None:
    """What `caseflow workflows` reports: the user's record (of any verifier), else the packaged one."""
    return record.load(d, org) or lookup(d.meaning, org, 0)


def problems(catalog: Catalog) -> list[str]:
    """Why the packaged records do not serve `catalog`'s workflows (the shipped ones: none, when current)."""
    from caseflow.verification.explorer import DEFAULT_BOUND  # (z3: not on `caseflow workflows`' path)
    org = record.org_digest(catalog.org)
    packed = {r["workflow"]: r for r in records().values()}
    out = []
    for workflow in catalog.current:
        d = catalog.current[workflow]
        r = packed.pop(workflow, None)
        if r is None:
            out.append(f"{workflow}: no packaged record")
            continue
        for what, made, now in (("the workflow file", r.get("meaning"), d.meaning), ("org.yaml", r.get("org"), org),
                                ("the verifier", r.get("verifier"), record.verifier_digest())):
            if made != now:
                out.append(f"{workflow}: {what} changed since the record was made")
        if r.get("ok") is not True or r.get("bound") != DEFAULT_BOUND:
            out.append(f"{workflow}: the record is not a clean result to bound {DEFAULT_BOUND}")
    out += [f"{workflow}: packaged, but not a shipped workflow" for workflow in sorted(packed)]
    return out


def build() -> dict[str, Any]:
    """Verify every shipped workflow afresh to DEFAULT_BOUND; the file's content."""
    from datetime import UTC, datetime

    from caseflow.verification import lints
    from caseflow.verification.check import verify
    from caseflow.verification.explorer import DEFAULT_BOUND
    from caseflow.verification.report import record_entry
    catalog = Catalog.load(SHIPPED)
    org = record.org_digest(catalog.org)
    out = []
    for workflow in catalog.current:
        d = catalog.current[workflow]
        entry = record_entry(verify(d, catalog.org, catalog, DEFAULT_BOUND), lints.check(d, catalog.org))
        out.append({**entry, "workflow": workflow, "definition": d.sha256, "meaning": d.meaning, "org": org,
                    "verifier": record.verifier_digest(),
                    "verified_at": datetime.now(UTC).isoformat(timespec="seconds")})
        print(f"{workflow}: ok={entry['ok']} {entry['properties']} ({entry['seconds']} s)", file=sys.stderr)
    return {"about": "Verification records of the shipped workflows (caseflow/verification/packaged.py): each "
                     "serves only the content, org and verifier digests it names. Regenerate: " + COMMAND,
            "records": out}


def main() -> int:
    content = build()
    failed = [r["workflow"] for r in content["records"] if not r["ok"]]
    if failed:
        print(f"not written: {', '.join(failed)} did not verify clean (caseflow verify shows why)", file=sys.stderr)
        return 1
    Path(PATH).write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
