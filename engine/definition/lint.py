"""Phase 2 of loading: the meaning of a schema-valid workflow file.

The schema cannot know that 'aproved' is not a state, that a state is
unreachable or that a role is not in org.yaml. These checks can, and they run
before any case does. Each error points at the offending value and suggests
the nearest known name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from caseflow.definition import kinds
from caseflow.definition.model import Org
from caseflow.errors import DefinitionError

if TYPE_CHECKING:       # lint's did_you_mean is used at run time; YAML is not (imported only to compile)
    from caseflow.definition.source import Source

# Moments every workflow has without declaring them: a case opened, a sign-off given or rejected,
# a case assigned, claimed or released (runtime/assignment.py).
BUILTIN_EVENTS = frozenset({"open", "sign", "reject", "assign", "claim", "release"})


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name a typo most likely meant, if any is close."""
    from difflib import get_close_matches  # only for a typo (not at start-up: issue #18)
    close = get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    close = closest(name, known)
    return f"did you mean {close!r}?" if close else None


def describe(doc: Any, path: list[Any]) -> str:
    """Name the thing at `path` the way a designer would: transition 'accept', SLA 'respond_24h'."""
    if not path or not isinstance(doc, dict):
        return "the workflow"
    head = path[0]
    if head == "transitions" and len(path) > 1 and isinstance(path[1], int):
        items = doc.get("transitions")
        t = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        event = t.get("event") if isinstance(t, dict) else None
        return f"transition {event!r}" if isinstance(event, str) else f"transition #{path[1] + 1}"
    if head == "states" and len(path) > 1:
        return f"state {path[1]!r}"
    if head in ("slas", "timers") and len(path) > 1 and isinstance(path[1], int):
        items = doc.get(head)
        c = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        name = c.get("name") if isinstance(c, dict) else None
        kind = "SLA" if head == "slas" else "timer"
        return f"{kind} {name!r}" if isinstance(name, str) else f"{kind} #{path[1] + 1}"
    if head in ("people", "roles", "calendars") and len(path) > 1:      # org.yaml, calendars.yaml
        return f"{ {'people': 'person', 'roles': 'role', 'calendars': 'calendar'}[head]} {path[1]!r}"
    if head == "decisions" and len(path) > 1:
        return f"decision {path[1]!r}"
    if head == "data" and len(path) > 2 and path[1] == "properties":
        return f"field {path[2]!r}"
    return str(head)


def describe_expr(doc: Any, path: list[Any]) -> str:
    """Name an expression by its role: guard of 'accept', effect on 'valid' of 'accept'…"""
    owner = describe(doc, path)
    if "actions" in path or "on_enter" in path or "on_breach" in path or "on_due" in path:
        key = next(k for k in ("actions", "on_enter", "on_breach", "on_due") if k in path)
        j = path[path.index(key) + 1] if len(path) > path.index(key) + 1 else 0
        if "spawn" in path:
            return f"spawn data {path[-1]!r} of {owner}"
        return f"condition of action {j + 1 if isinstance(j, int) else j} of {owner}"
    if path[:1] == ["transitions"] and "set" in path:
        return f"effect on {path[-1]!r} of {owner}"
    if path[:1] == ["transitions"]:
        return f"guard of {owner}"
    if path[:1] == ["decisions"] and "rules" in path:
        i = path[path.index("rules") + 1]
        return f"rule {i + 1 if isinstance(i, int) else i} of {owner}"
    if path[:1] == ["decisions"]:
        return f"count condition of {owner}"
    return f"condition of {owner}"


def _as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else ([value] if value is not None else [])


class _Lint:
    def __init__(self, src: Source, org: Org, calendars: set[str]) -> None:
        self.src, self.org, self.calendars = src, org, calendars
        self.doc: dict[str, Any] = src.data
        self.states: dict[str, Any] = self.doc["states"]
        self.fields: dict[str, Any] = self.doc.get("data", {}).get("properties", {}) or {}
        self.events = {t["event"] for t in self.doc["transitions"]}
        self.errors: list[DefinitionError] = []

    def err(self, message: str, path: list[Any], hint: str | None = None, key: bool = False) -> None:
        self.errors.append(self.src.error(message, path, hint=hint, key=key))

    def known(self, kind: str, name: str, pool: Iterable[str], path: list[Any], what: str,
              key: bool = False) -> bool:
        pool = list(pool)
        if name in pool:
            return True
        self.err(f"{what} unknown {kind} {name!r}", path, did_you_mean(name, pool) or _fallback(kind, pool),
                 key=key)
        return False

    def run(self) -> list[DefinitionError]:
        self.check_states()
        for i, t in enumerate(self.doc["transitions"]):
            self.check_transition(i, t)
        self.check_overlaps()
        self.check_fields()
        self.check_decisions()
        for kind in ("slas", "timers"):
            for i, c in enumerate(self.doc.get(kind, [])):
                self.check_clock(kind, i, c)
        if not self.errors:
            self.check_graph()
        return self.errors

    def check_open_roles(self) -> None:
        for j, role in enumerate(self.doc.get("open_roles", [])):
            self.known("role", role, self.org.roles, ["open_roles", j], "open_roles names")
        for j, role in enumerate(self.doc.get("read_roles", [])):
            self.known("role", role, self.org.roles, ["read_roles", j], "read_roles names")
        for j, f in enumerate(self.doc.get("open_accepts", [])):
            self.known("field", f, self.fields, ["open_accepts", j], "open_accepts names")
        for key in ("assign_roles", "assign_to"):
            for j, role in enumerate(self.doc.get(key, [])):
                self.known("role", role, self.org.roles, [key, j], f"{key} names")
        for j, f in enumerate(self.doc.get("summary", [])):
            self.known("field", f, self.fields, ["summary", j], "summary shows")

    def check_states(self) -> None:
        self.check_open_roles()
        initial = [s for s, v in self.states.items() if v.get("initial")]
        if not initial:
            self.err("no initial state", ["states"], "mark the state a case starts in with initial: true",
                     key=True)
        for extra in initial[1:]:
            self.err(f"more than one initial state: {initial[0]!r} and {extra!r}", ["states", extra, "initial"],
                     "a case starts in exactly one state; remove initial: true from the other")
        for sid, s in self.states.items():
            if s.get("initial") and s.get("final"):
                self.err(f"state {sid!r} cannot be both initial and final", ["states", sid, "final"])
            self.check_actions(s.get("on_enter"), ["states", sid, "on_enter"])
        tz = self.doc.get("timezone")
        if tz and not check_timezone(tz):
            self.err(f"unknown timezone {tz!r}", ["timezone"], "use an IANA name such as 'Asia/Shanghai'")
        cal = self.doc.get("calendar")
        if cal is not None:
            self.known("calendar", cal, self.calendars, ["calendar"], "workflow uses")

    def check_transition(self, i: int, t: dict[str, Any]) -> None:
        p: list[Any] = ["transitions", i]
        ev = t["event"]
        for j, src in enumerate(_as_list(t["from"])):
            sp = p + ["from"] + ([j] if isinstance(t["from"], list) else [])
            if self.known("state", src, self.states, sp, f"transition {ev!r} comes from") \
                    and self.states[src].get("final"):
                self.err(f"transition {ev!r} leaves {src!r}, which is a final state", sp,
                         "a final state ends the case; remove the transition, or the state's final: true")
        self.known("state", t["to"], self.states, p + ["to"], f"transition {ev!r} goes to")
        signoffs = t.get("signoffs")
        if not t.get("roles") and not t.get("system") and not signoffs:
            self.err(f"transition {ev!r} has no roles, so nobody may fire it", p + ["event"],
                     "add roles: [...] with who may fire it, or system: true for a timer event")
        if t.get("system") and t.get("roles"):
            self.err(f"system transition {ev!r} must not list roles", p + ["roles"], key=True,
                     hint="system events are fired by timers only; remove roles or system: true")
        for j, role in enumerate(t.get("roles", [])):
            self.known("role", role, self.org.roles, p + ["roles", j], f"transition {ev!r} allows")
        if signoffs:
            for j, role in enumerate(signoffs["roles"]):
                self.known("role", role, self.org.roles, p + ["signoffs", "roles", j], f"sign-off of {ev!r} needs")
            if "reject_to" in signoffs:
                self.known("state", signoffs["reject_to"], self.states, p + ["signoffs", "reject_to"],
                           f"sign-off of {ev!r} rejects to")
        inputs = t.get("input") or {}
        for key in ("accepts", "requires"):
            for j, f in enumerate(t.get(key, [])):
                self.known("field", f, self.fields, p + [key, j], f"transition {ev!r} {key}")
        not_by = t.get("not_by")
        for j, f in enumerate(_as_list(not_by) if not_by is not None else []):
            self.known("field", f, self.fields, p + ["not_by"] + ([j] if isinstance(not_by, list) else []),
                       f"transition {ev!r} not_by")
        for j, f in enumerate(t.get("input_required", [])):
            self.known("input", f, inputs, p + ["input_required", j], f"transition {ev!r} requires")
        for f in t.get("set") or {}:
            self.known("field", f, self.fields, p + ["set", f], f"transition {ev!r} sets", key=True)
        for j, d in enumerate(t.get("decide", [])):
            self.known("decision table", d, self.doc.get("decisions", {}), p + ["decide", j],
                       f"transition {ev!r} uses")
        self.check_actions(t.get("actions"), p + ["actions"])

    def check_actions(self, actions: list[dict[str, Any]] | None, path: list[Any]) -> None:
        who = describe(self.doc, path)
        for i, a in enumerate(actions or []):
            for name in kinds.names_in(a):
                kinds.KINDS[name].lint(self, a[name], path + [i, name], who)

    def check_overlaps(self) -> None:
        seen: dict[tuple[str, str], int] = {}
        for i, t in enumerate(self.doc["transitions"]):
            for src in _as_list(t["from"]):
                key = (t["event"], src)
                if key in seen:
                    first = self.doc["transitions"][seen[key]]
                    if not t.get("when") or not first.get("when"):
                        line = self.src.locate(["transitions", seen[key]])[0]
                        self.err(f"event {t['event']!r} from {src!r} is defined twice, and not both have a guard",
                                 ["transitions", i, "event"],
                                 f"the other is on line {line}; give each a 'when' guard so only one applies")
                else:
                    seen[key] = i

    def check_fields(self) -> None:
        for name, schema in self.fields.items():
            self.check_format(schema, ["data", "properties", name], f"field {name!r}")
        for i, t in enumerate(self.doc["transitions"]):
            for name, schema in (t.get("input") or {}).items():
                self.check_format(schema, ["transitions", i, "input", name], f"input {name!r} of {t['event']!r}")
        seen: dict[str, list[Any]] = {}
        for kind in ("slas", "timers"):
            for i, c in enumerate(self.doc.get(kind, [])):
                if c["name"] in seen:
                    line = self.src.locate(seen[c["name"]])[0]
                    self.err(f"clock name {c['name']!r} is used twice", [kind, i, "name"],
                             f"the other is on line {line}; SLAs and timers need distinct names")
                seen.setdefault(c["name"], [kind, i, "name"])
        for j, f in enumerate(self.doc.get("data", {}).get("required", [])):
            self.known("field", f, self.fields, ["data", "required", j], "data requires")
        for j, f in enumerate(self.doc.get("unique", [])):
            self.known("field", f, self.fields, ["unique", j], "unique names")

    def check_format(self, schema: Any, path: list[Any], what: str) -> None:
        fmt = schema.get("format") if isinstance(schema, dict) else None
        if fmt is not None and fmt not in _FORMATS:
            self.err(f"{what} has unknown format {fmt!r}", path + ["format"],
                     did_you_mean(fmt, _FORMATS) or "caseflow reads money, date-time and date")
        elif fmt in ("money", "date-time", "date") and schema.get("type") != "string":
            self.err(f"{what} has format {fmt!r} but is not type: string", path + ["format"],
                     f"write {{type: string, format: {fmt}}}")

    def check_decisions(self) -> None:
        for name, d in (self.doc.get("decisions") or {}).items():
            p: list[Any] = ["decisions", name]
            key = (d.get("count") or {}).get("key")
            if key:
                self.known("field", key, self.fields, p + ["count", "key"], f"decision {name!r} counts by")
            for i, rule in enumerate(d["rules"]):
                for out in rule["outcome"]:
                    self.known("field", out, self.fields, p + ["rules", i, "outcome", out],
                               f"rule {i + 1} of decision {name!r} sets", key=True)

    def check_clock(self, kind: str, i: int, c: dict[str, Any]) -> None:
        p: list[Any] = [kind, i]
        who = describe(self.doc, p)
        for part in ("start", "stop", "pause", "resume", "restart"):
            for key, pool, what in (("enter", self.states, "state"), ("leave", self.states, "state"),
                                    ("event", self.events | BUILTIN_EVENTS, "event")):
                raw = (c.get(part) or {}).get(key)
                for j, name in enumerate(_as_list(raw)):
                    sub = p + [part, key] + ([j] if isinstance(raw, list) else [])
                    self.known(what, name, pool, sub, f"{who} {_VERBS[part]} on{_MOMENTS[key]}")
        if "working" in c["within"] and "calendar" not in self.doc:
            cals = sorted(self.calendars)
            self.err(f"{who} counts working time, but the workflow names no calendar", p + ["within"],
                     f"add calendar: {cals[0] if cals else 'NAME'} at the top level; calendars are defined in "
                     "calendars.yaml")
        ff = c.get("from_field")
        if ff and self.known("field", ff, self.fields, p + ["from_field"], f"{c['name']!r} counts from"):
            if self.fields[ff].get("format") not in ("date-time", "date"):
                self.err(f"{who} counts from {ff!r}, which is not a date-time field", p + ["from_field"],
                         "from_field needs a field with format: date-time")
        if kind == "slas" and "on_due" in c:
            self.err(f"SLA {c['name']!r} uses on_due; SLAs use on_breach", p + ["on_due"], key=True)
        if kind == "timers" and "on_breach" in c:
            self.err(f"timer {c['name']!r} uses on_breach; timers use on_due", p + ["on_breach"], key=True)
        self.check_actions(c.get("on_breach") or c.get("on_due"), p + ["on_breach" if "on_breach" in c else "on_due"])

    def check_graph(self) -> None:
        edges: dict[str, set[str]] = {s: set() for s in self.states}
        for t in self.doc["transitions"]:
            for src in _as_list(t["from"]):
                edges[src].add(t["to"])
                if t.get("signoffs", {}).get("reject_to"):
                    edges[src].add(t["signoffs"]["reject_to"])
        initial = next((s for s, v in self.states.items() if v.get("initial")), None)
        if initial is None:
            return
        reached = _closure({initial}, edges)
        for sid in self.states:
            if sid not in reached:
                self.err(f"state {sid!r} is unreachable from the initial state {initial!r}", ["states", sid],
                         "add a transition into it, or remove it", key=True)
        finals = {s for s, v in self.states.items() if v.get("final")}
        if not finals:
            self.err("no final state", ["states"], "mark the state(s) a case ends in with final: true", key=True)
            return
        reverse: dict[str, set[str]] = {s: set() for s in self.states}
        for src, dests in edges.items():
            for d in dests:
                reverse[d].add(src)
        can_finish = _closure(finals, reverse)
        for sid in self.states:
            if sid in reached and sid not in can_finish:
                self.err(f"state {sid!r} is a dead end: no path from it to a final state", ["states", sid],
                         "add a transition out of it, or mark it final: true", key=True)


_FORMATS = ["money", "date-time", "date", "time", "email", "uri", "uuid", "duration", "hostname",
            "ipv4", "ipv6", "regex"]
_VERBS = {"start": "starts", "stop": "stops", "pause": "pauses", "resume": "resumes", "restart": "restarts"}
_MOMENTS = {"enter": " entering", "leave": " leaving", "event": ""}


def _fallback(kind: str, pool: list[str]) -> str | None:
    where = {"role": " in org.yaml", "calendar": " in calendars.yaml", "field": " under data.properties",
             "state": " under states"}.get(kind, "")
    if kind == "field":
        return "declare it under data.properties"
    if not pool:
        return f"no {kind}s are defined{where}"
    if len(pool) <= 8:
        return f"known {kind}s{where}: {', '.join(sorted(map(str, pool)))}"
    return f"{kind}s are defined{where}"


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def check(src: Source, org: Org, calendars: set[str]) -> list[DefinitionError]:
    return _Lint(src, org, calendars).run()


def check_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False
