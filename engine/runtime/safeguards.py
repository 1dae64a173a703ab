"""Rules no designer has to remember: what may be given at open, conflicts of interest, and time.

- Opening is deny-by-default: only `open_accepts` fields (definition/access.py), by `--set` or `--data`.
- `not_by: FIELD`: the person named in that field may not fire, sign or reject the transition.
- No action takes effect before the case's last effective time, and no time an operator gives
  lies more than FUTURE_SKEW after the effective time (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from caseflow.errors import ConflictOfInterest, TimeRefused, UsageError
from caseflow.values import ValueProblem, format_datetime, parse_datetime

if TYPE_CHECKING:
    from caseflow.definition.model import Definition, Transition
    from caseflow.runtime.snapshot import Snapshot

FUTURE_SKEW = timedelta(minutes=5)     # clocks of two machines disagree a little; not by hours


def check_open_fields(d: Definition, keys: Iterable[str], source: str) -> None:
    """Fields from a `--data` file must be among `open_accepts` too (`--set` is checked by split_sets)."""
    refused = sorted(k for k in keys if k not in d.open_accepts)
    if refused:
        raise UsageError(f"{source}: {', '.join(refused)} not accepted when opening a {d.workflow} case "
                         f"(it accepts: {', '.join(sorted(d.open_accepts))})")


def check_not_by(snap: Snapshot, t: Transition, data: Mapping[str, Any], actor: str) -> None:
    for name in t.not_by:
        if actor in (snap.data.get(name), data.get(name)):
            label = snap.definition.fields.get(name, {}).get("label_zh", name)
            raise ConflictOfInterest(snap.id, t.event, snap.state,
                                     f"{actor} is the {label}({name}) of this case and may not decide about "
                                     "themselves (not_by)")


def check_not_before(snap: Snapshot, event: str, now: datetime) -> None:
    last = parse_datetime(snap.updated_at)
    if now < last:
        raise TimeRefused(snap.id, event, snap.state, f"the effective time {format_datetime(now)} is before the "
                                                      f"case's last action at {snap.updated_at}")


def check_not_future(d: Definition, values: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]],
                     now: datetime, case_id: str, event: str, state: str) -> None:
    """Operator-given date-time and date values may not lie in the future (beyond FUTURE_SKEW)."""
    limit = now + FUTURE_SKEW
    for name, value in values.items():
        fmt = schemas.get(name, {}).get("format")
        if not isinstance(value, str) or fmt not in ("date-time", "date"):
            continue
        try:
            later = parse_datetime(value, d.tz) > limit if fmt == "date-time" else \
                date.fromisoformat(value) > limit.astimezone(d.tz).date()
        except (ValueProblem, ValueError):
            continue                      # not a time at all: the data schema refuses it, with its own message
        if later:
            raise TimeRefused(case_id, event, state, f"{name} {value} lies in the future (the effective time is "
                                                     f"{format_datetime(now)}; at most {FUTURE_SKEW} ahead)")


__all__ = ["FUTURE_SKEW", "check_open_fields", "check_not_by", "check_not_before", "check_not_future"]
