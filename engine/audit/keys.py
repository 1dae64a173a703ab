"""The audit key: HMAC over each log row's hash, under a key the database owner does not hold.

A plain sha256 chain proves rows were not changed *by someone who did not
recompute the hashes*; anyone with write access can append rows (or rewrite a
tail) with fresh hashes and a matching case row. With a key configured
(`CASEFLOW_AUDIT_KEY_FILE`: a file readable by the application and the
auditor, not by the database's owner), every row also carries
`mac = HMAC-SHA256(key, hash)`, and `audit verify` with the same key names
every row whose MAC is missing or wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import lru_cache
from pathlib import Path

from caseflow.errors import UsageError

KEY_ENV = "CASEFLOW_AUDIT_KEY_FILE"
MIN_KEY_BYTES = 16


@lru_cache(maxsize=8)
def _read(path: str, mtime: float) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{KEY_ENV}: cannot read the audit key file {path}: {exc.strerror}") from None
    key = raw.strip()
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"{KEY_ENV}: the audit key in {path} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def audit_key() -> bytes | None:
    """The configured key, or None (unkeyed mode). Read again when the file changes."""
    path = os.environ.get(KEY_ENV)
    if not path:
        return None
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise UsageError(f"{KEY_ENV}: cannot read the audit key file {path}: {exc.strerror}") from None
    return _read(path, mtime)


def mac(key: bytes | None, digest: str) -> str | None:
    """HMAC-SHA256(key, the row's hex hash) in hex; None without a key."""
    if key is None:
        return None
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def mac_ok(key: bytes, digest: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(mac(key, digest) or "", stored)


def key_id(key: bytes) -> str:
    """A short public name for a key (so two auditors can tell they hold the same one)."""
    return hashlib.sha256(b"caseflow-audit-key-id:" + key).hexdigest()[:12]


__all__ = ["audit_key", "mac", "mac_ok", "key_id", "KEY_ENV"]
