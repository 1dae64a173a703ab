"""One case judged against a plan: its logged history replayed under NEW.

A case may migrate when NEW could have produced its history (the compliance
criterion of Rinderle, Reichert and Dadam's ADEPT work): every logged action —
each event, signature and rejection — is tried on NEW in the state NEW has
reached, by the same person, at the same time, on the data reconstructed from
the log (the row's before values plus what the operator set, with the plan's
transforms applied). The verdict:

- `migratable`: every action replays and NEW ends in the state the plan maps to;
- `elsewhere`: every action replays but NEW ends in another state (`landed`);
- `forbidden`: NEW refuses an action (`refused`: its row, event and why);
- `invalid`: the history replays but the transformed data breaks NEW's schema,
  or a transform fails;
- `filtered`: the plan's filter excludes the case.

A case migrated before is replayed from its last `migrate` row (the history
before it was judged then). Guards read the data as the row found it; the data
the case ends with is the logged data, not NEW's effects recomputed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from caseflow.definition.evaluate import failing_guard, holds, missing_fields, schema_problem
from caseflow.definition.expressions import ExpressionError, from_cel
from caseflow.definition.model import Definition, Transition
from caseflow.migration.clocks import ClockReplay, Target
from caseflow.migration.plan import Plan
from caseflow.values import parse_datetime

if TYPE_CHECKING:
    from caseflow.runtime.engine import Engine

ACTION_KINDS = frozenset({"open", "transition", "signoff", "reject", "migrate"})
FIELD_KINDS = frozenset({"open", "transition", "reject", "signoff", "migrate"})
VERDICTS = ("migratable", "elsewhere", "forbidden", "invalid", "filtered")
VERDICT_ZH = {"migratable": "可迁移", "elsewhere": "落在其他状态", "forbidden": "新版本不允许其历史",
              "invalid": "数据不符合新版本", "filtered": "不在筛选范围"}


@dataclass
class Refusal:
    seq: int
    event: str
    actor: str
    reason: str

    def line(self) -> str:
        return f"row {self.seq} {self.event} by {self.actor}: {self.reason}"


@dataclass
class Verdict:
    case_id: str
    version: int                      # the case version judged (the optimistic check at write time)
    state: str                        # OLD state now
    verdict: str
    target: str | None                # the plan's NEW state for `state`
    landed: str | None = None         # where the replay under NEW ends
    refused: Refusal | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)          # NEW data
    signoffs: list[dict[str, Any]] = field(default_factory=list)
    clocks: dict[str, Target] = field(default_factory=dict)
    old_data: dict[str, Any] = field(default_factory=dict)        # the case row's data and sign-offs now
    old_signoffs: list[dict[str, Any]] = field(default_factory=list)
    had_timers: bool = True           # the case had timers rows when judged (none: the move need not read them)

    def moves(self, plan: Plan) -> bool:
        return self.verdict == "migratable" or (self.verdict == "elsewhere" and plan.lands_elsewhere == "move")

    @property
    def destination(self) -> str | None:
        return self.target if self.verdict == "migratable" else self.landed

    def as_dict(self) -> dict[str, Any]:
        return {"case": self.case_id, "state": self.state, "verdict": self.verdict, "target": self.target,
                "landed": self.landed, "version": self.version,
                "refused": None if self.refused is None else {"seq": self.refused.seq, "event": self.refused.event,
                                                              "actor": self.refused.actor,
                                                              "reason": self.refused.reason},
                "reason": self.reason, "signoffs": len(self.signoffs),
                "clocks": [t.as_dict() for t in self.clocks.values()]}

    def line(self) -> str:
        head = f"{self.case_id} {self.state}: {self.verdict}"
        if self.verdict == "migratable":
            return f"{head} → {self.target}"
        if self.verdict == "elsewhere":
            return f"{head}: history ends in {self.landed}, the plan says {self.target}"
        if self.refused is not None:
            return f"{head}: {self.refused.line()}"
        return f"{head}: {self.reason}"


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _loads(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def transform(plan: Plan, engine: Engine, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    """OLD data in NEW's terms: same-named fields copied, the plan's transforms evaluated; _Refused on failure."""
    new = plan.new
    out = {k: v for k, v in data.items() if k in new.fields}
    if plan.transforms:
        act, ctx = engine.scope(plan.old, data, at, "system")
        for name, expr in plan.transforms.items():
            try:
                out[name] = from_cel(expr.evaluate(act, ctx), new.fields[name], new.tz)
            except ExpressionError as exc:
                if exc.message.endswith("is not set"):
                    out.pop(name, None)
                else:
                    raise _Refused(f"transform {name} = {expr.text!r} failed: {exc.message}") from None
    return out


class _Replay:
    """The state NEW reaches, step by step."""

    def __init__(self, plan: Plan, engine: Engine) -> None:
        self.plan, self.engine = plan, engine
        self.new: Definition = plan.new
        self.state: str = plan.new.initial
        self.signoffs: list[dict[str, Any]] = []
        self.pending: Transition | None = None      # a sign-off NEW completed: it fires before the next action
        self.clocks = ClockReplay(plan.new, engine.catalog.calendar_for(plan.new), engine.person_attr)

    def roles_of(self, actor: str, row: dict[str, Any]) -> frozenset[str]:
        person = self.engine.catalog.org.people.get(actor)
        return person.roles if person is not None else frozenset(_loads(row["roles"]) or [])

    def fire_pending(self, data: dict[str, Any], at: datetime) -> None:
        if self.pending is not None:
            t, self.pending = self.pending, None
            self.clocks.step(t.event, self.state, t.to, data, at)
            self.state, self.signoffs = t.to, []

    def guards(self, t: Transition, data: dict[str, Any], inputs: dict[str, Any], actor: str, at: datetime) -> None:
        for f in t.not_by:
            if data.get(f) == actor:
                raise _Refused(f"{actor} is named in {f} and may not {t.event} (not_by)")
        gone = missing_fields(t, data, inputs)
        if gone:
            raise _Refused(f"NEW requires {', '.join(gone)} for {t.event}")
        act, ctx = self.engine.scope(self.new, data, at, actor, inputs, t.inputs)
        failing = failing_guard(t, act, ctx)
        if failing is not None:
            raise _Refused(f"NEW's guard refuses: {failing[1]}")

    def event(self, row: dict[str, Any], data: dict[str, Any], inputs: dict[str, Any], at: datetime) -> None:
        event, actor = row["event"], row["actor"]
        candidates = self.new.candidates(event, self.state)
        if not candidates:
            raise _Refused(f"{self.new.event_label(event)} is not possible in {self.new.label(self.state)} under NEW")
        why: list[str] = []
        for t in candidates:
            try:
                if t.signoffs is not None:
                    done = {s["role"] for s in self.signoffs}
                    lacking = [r for r in t.signoffs.roles if r not in done]
                    if lacking:
                        raise _Refused(f"NEW needs the sign-off of {', '.join(lacking)} first")
                elif actor == "system":
                    if not t.system:
                        raise _Refused(f"{t.event} is not a system event under NEW")
                elif t.system:
                    raise _Refused(f"{t.event} is fired by timers only under NEW")
                elif not (self.roles_of(actor, row) & t.roles):
                    raise _Refused(f"{actor} has none of NEW's roles for {t.event}: {', '.join(sorted(t.roles))}")
                self.guards(t, data, inputs, actor, at)
            except _Refused as exc:
                why.append(exc.reason)
                continue
            self.clocks.step(event, self.state, t.to, data, at)
            self.state, self.signoffs = t.to, []          # every transition clears the sign-offs
            return
        raise _Refused(why[0])

    def sign(self, row: dict[str, Any], data: dict[str, Any], at: datetime, *, reject: bool) -> None:
        t = self.new.signoff_transition(self.state)
        if t is None or t.signoffs is None:
            raise _Refused(f"nothing to sign in {self.new.label(self.state)} under NEW")
        role = (_loads(row["roles"]) or [None])[0]
        so = t.signoffs
        remaining = [r for r in so.roles if r not in [s["role"] for s in self.signoffs]]
        eligible = remaining[:1] if so.order == "sequential" else remaining
        if role not in eligible:
            wanted = " or ".join(eligible) or "nobody"
            raise _Refused(f"signed as {role}; NEW's next sign-off in {self.state} is by {wanted}")
        if so.distinct_people and any(s["by"] == row["actor"] for s in self.signoffs):
            raise _Refused(f"{row['actor']} already signed; NEW needs a different person for each sign-off")
        if reject:
            if not so.reject_to:
                raise _Refused(f"NEW's sign-off in {self.state} cannot be rejected")
            self.clocks.step("reject", self.state, so.reject_to, data, at)
            self.state, self.signoffs = so.reject_to, []
            return
        self.guards(t, data, {}, row["actor"], at)
        self.signoffs.append({"role": role, "by": row["actor"], "at": row["effective_at"]})
        if len(self.signoffs) >= len(so.roles):
            self.pending = t
        else:
            self.clocks.step("sign", self.state, self.state, data, at)


def _start(rows: list[dict[str, Any]]) -> int:
    """Index of the last `migrate` row (a checkpoint), or 0."""
    return max((i for i, r in enumerate(rows) if r["kind"] == "migrate"), default=0)


def judge(plan: Plan, engine: Engine, case: dict[str, Any], rows: list[dict[str, Any]],
          timers: list[Any] = (), now: datetime | None = None) -> Verdict:  # type: ignore[assignment]
    """The verdict for one open case of `plan.old` (`rows`: its audit rows ordered by seq)."""
    state = case["state"]
    target = plan.target(state)
    verdict = Verdict(case["id"], case["version"], state, "forbidden", target)
    now = now or engine.now()
    current = _loads(case["data"])
    verdict.old_data, verdict.old_signoffs = current, _loads(case["signoffs"]) or []
    verdict.had_timers = bool(timers)
    if plan.filter is not None and not holds(plan.filter, *engine.scope(plan.old, current, now, "system")):
        verdict.verdict, verdict.reason = "filtered", "the plan's filter excludes it"
        return verdict
    replay = _Replay(plan, engine)
    start = _start(rows)
    clear_after = max((i for i, r in enumerate(rows) if r["kind"] in ("open", "transition", "reject", "migrate")),
                      default=0)
    data: dict[str, Any] = {}
    try:
        for i, row in enumerate(rows):
            kind = row["kind"]
            if kind not in ACTION_KINDS:
                continue
            changes = _loads(row["changes"]) or {}
            before = dict(data)
            for k, v in changes.items():
                if not k.startswith("@") and isinstance(v, list) and len(v) == 2:
                    if v[1] is None:
                        data.pop(k, None)
                    else:
                        data[k] = v[1]
            if i < start:
                continue
            at = parse_datetime(row["effective_at"])
            if kind == "signoff" and plan.signoffs == "clear" and i > clear_after:
                continue                              # collected in the current state: dropped by the plan
            try:
                if kind == "migrate":
                    _from_checkpoint(replay, plan, row, changes, data, timers)
                    continue
                if kind == "open":
                    replay.state = plan.new.initial
                    replay.clocks.step("open", None, plan.new.initial, transform(plan, engine, data, at), at)
                    continue
                if kind == "transition" and replay.pending is not None and replay.pending.event == row["event"]:
                    replay.pending = None                 # the logged firing of the step NEW completed too
                replay.fire_pending(transform(plan, engine, before, at), at)
                if kind == "transition":
                    sets = _operator_sets(plan.old, row, before, data)
                    inputs = changes.get("@input") or {}
                    replay.event(row, transform(plan, engine, {**before, **sets}, at), inputs, at)
                elif kind in ("signoff", "reject"):
                    replay.sign(row, transform(plan, engine, before, at), at, reject=kind == "reject")
            except _Refused as exc:
                verdict.refused = Refusal(row["seq"], row["event"], row["actor"], exc.reason)
                return verdict
        replay.fire_pending(transform(plan, engine, data, now), now)
        new_data = transform(plan, engine, current, now)
    except _Refused as exc:
        verdict.verdict, verdict.reason = "invalid", exc.reason
        return verdict
    verdict.landed = replay.state
    verdict.data, verdict.signoffs, verdict.clocks = new_data, replay.signoffs, replay.clocks.targets()
    unchanged = {k: current[k] for k in plan.same_fields if k in current}     # valid when stored, same rules
    problem = schema_problem(plan.new, new_data, before=unchanged)
    if problem:
        verdict.verdict, verdict.reason = "invalid", f"data would be invalid under NEW: {problem}"
    elif target is None:
        verdict.verdict = "elsewhere" if replay.state else "forbidden"
        verdict.reason = f"the plan maps {state} to no state of NEW"
    else:
        verdict.verdict = "migratable" if replay.state == target else "elsewhere"
    return verdict


def _operator_sets(old: Definition, row: dict[str, Any], before: dict[str, Any],
                   after: dict[str, Any]) -> dict[str, Any]:
    """What the operator set with --set: the changed fields OLD's transition accepts (effects excluded)."""
    accepts = {f for t in old.candidates(row["event"], row["from_state"] or "") for f in t.accepts}
    return {k: after.get(k) for k in accepts if after.get(k) != before.get(k)}


def _from_checkpoint(replay: _Replay, plan: Plan, row: dict[str, Any], changes: dict[str, Any],
                     data: dict[str, Any], timers: list[Any]) -> None:
    """Start from a previous migration: its state (mapped by this plan), signatures and running clocks."""
    to = plan.target(row["to_state"])
    if to is None:
        raise _Refused(f"migrated before into {row['to_state']}, which the plan maps to no state of NEW")
    replay.state = to
    meta = changes.get("@migration") or {}
    sigs = meta.get("signoffs")
    replay.signoffs = list(sigs[1]) if isinstance(sigs, list) and len(sigs) == 2 and plan.signoffs == "keep" else []
    for t in timers:
        replay.clocks.seed(t.name, t.status, t.started_at)


__all__ = ["Verdict", "Refusal", "judge", "transform", "VERDICTS", "VERDICT_ZH"]
