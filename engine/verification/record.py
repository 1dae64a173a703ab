"""Which properties of which definition version were verified, to which bound, and when.

One small JSON file per (definition sha256, org digest) under the cache directory
(`CASEFLOW_CACHE_DIR`, default ~/.cache/caseflow/verified). `caseflow workflows`
reads it; `validate` reuses a clean result instead of searching again. The key
includes a digest of the verifier's own source, so a changed verifier re-verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from caseflow.definition.model import Org


def cache_dir() -> Path:
    base = os.environ.get("CASEFLOW_CACHE_DIR")
    return Path(base) if base else Path.home() / ".cache" / "caseflow"


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


def _path(sha: str, org: str) -> Path:
    return cache_dir() / "verified" / f"{sha[:32]}-{org}.json"


def save(sha: str, org: str, entry: dict[str, Any]) -> None:
    """Write atomically (several validate runs may finish at once); a read-only cache is skipped."""
    target = _path(sha, org)
    payload = {**entry, "verifier": verifier_digest(), "verified_at": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, ensure_ascii=False, indent=1)
        os.replace(tmp, target)
    except OSError:
        return


def load(sha: str, org: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(_path(sha, org).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def fresh(sha: str, org: str, bound: int) -> dict[str, Any] | None:
    """A clean result for this version, org and verifier, at least to `bound`."""
    entry = load(sha, org)
    if entry and entry.get("verifier") == verifier_digest() and entry.get("ok") and entry.get("bound", 0) >= bound:
        return entry
    return None
