"""Which properties of which definition were verified, to which bound, and when.

One small JSON file per (definition content, org digest) in `verified/` under the
cache directory (definition/cache.py: `$CASEFLOW_CACHE_DIR`, else
`$XDG_CACHE_HOME/caseflow`, else ~/.cache/caseflow; `off` keeps no records).
The content is `Definition.meaning`, the digest of the parsed YAML document: a
copy that differs only in comments, blank lines or layout (`caseflow init`
writes the shipped files with another editor modeline) reuses the record, and
anything that changes what the file says misses. Each record also names the
definition sha256 it was made for, which `caseflow workflows` and `verify`
show when it is not the file's own. The digest of the verifier's own source is
kept in the record: `validate` and `verify` reuse only a clean result of this
verifier, and a changed verifier searches again.

After the user's records, the shipped workflows' records that travel in the
package are consulted (verification/packaged.py `reusable`, `shown`). Records written before
content keys (named by the text's sha256, without `meaning`) are never read.

Bounded like the definition cache (definition/cache.py `prune`, run on every
save): another verifier's records and older-layout files go once they are a
day old, and at most MAX_RECORDS are kept, least recently used first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from caseflow.definition import cache
from caseflow.definition.model import Definition, Org

MAX_RECORDS = 256
_NAME = re.compile(r"[0-9a-f]{32}-[0-9a-f]{16}\.json")


def directory() -> Path | None:
    """Where records are kept (None: the cache is off)."""
    base = cache.directory()
    return None if base is None else base / "verified"


@lru_cache(maxsize=1)
def verifier_digest() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(here.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def org_digest(org: Org) -> str:
    people = {p.id: [sorted(p.roles), {k: str(v) for k, v in sorted(p.attributes.items())}]
              for p in org.people.values()}
    return hashlib.sha256(json.dumps(people, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _path(where: Path, meaning: str, org: str) -> Path:
    return where / f"{meaning[:32]}-{org}.json"


def save(d: Definition, org: str, entry: dict[str, Any]) -> None:
    """Write atomically (several validate runs may finish at once); a read-only cache is skipped. A clean
    result does not replace this verifier's clean result to a higher bound (`verify --fresh --bound 4`)."""
    where = directory()
    if where is None:
        return
    target = _path(where, d.meaning, org)
    kept = load(d, org)
    if kept and kept.get("verifier") == verifier_digest() and kept.get("ok") and entry.get("ok") \
            and kept.get("bound", 0) > entry.get("bound", 0):
        return                         # a clean proof to a higher bound says more than this one
    payload = {**entry, "workflow": d.workflow, "definition": d.sha256, "meaning": d.meaning, "org": org,
               "verifier": verifier_digest(), "verified_at": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        where.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=cache.TMP_PREFIX)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, ensure_ascii=False, indent=1)
        os.replace(tmp, target)
    except OSError:
        return
    cache.prune(where, _record_entry, keep=target.name, max_entries=MAX_RECORDS)


def load(d: Definition, org: str) -> dict[str, Any] | None:
    """The user's record for this definition's content and org (of any verifier), if there is one."""
    where = directory()
    if where is None or not d.meaning:
        return None
    path = _path(where, d.meaning, org)
    try:
        st = path.stat()
        if not (cache.private(where) and cache.private(path, st)):    # nobody else's claim that it was proven
            return None
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("meaning") != d.meaning or entry.get("org") != org:
        return None
    cache.touch_if_old(path, st)
    return entry


def fresh(d: Definition, org: str, bound: int) -> dict[str, Any] | None:
    """The user's clean result for this content, org and verifier, at least to `bound`."""
    entry = load(d, org)
    if entry and entry.get("verifier") == verifier_digest() and entry.get("ok") and entry.get("bound", 0) >= bound:
        return entry
    return None


def made_for(entry: dict[str, Any], sha: str) -> str:
    """How a record shown for the definition `sha` was made, when not plainly for it: for another text of
    the same content (' for definition 0123456789ab, the same content'), and/or packaged with caseflow."""
    made = entry.get("definition")
    text = f" for definition {made[:12]}, the same content" if made and made != sha else ""
    return text + (" (record shipped with caseflow)" if entry.get("packaged") else "")


def _record_entry(name: str, path: Path) -> bool | None:
    """For cache.prune: True this verifier's record; False another verifier's or the older layout's; None not ours."""
    if _NAME.fullmatch(name) is None:
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or "verifier" not in entry or "properties" not in entry:
        return None
    return entry.get("verifier") == verifier_digest() and "meaning" in entry
