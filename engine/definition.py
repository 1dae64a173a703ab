"""Load a workflow file: safe YAML → JSON Schema → lint → compiled `Definition`.

Two phases, like SpiffWorkflow's XSD-then-parser: the schema catches shape
errors, `lint` catches meaning errors (unknown names, unreachable states) and
compiling type-checks every CEL expression against the `data` schema. Every
error carries file:line:col so a designer finds it before any case runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jsonschema import Draft202012Validator, FormatChecker, exceptions as js_exc
from jsonschema.exceptions import best_match

from . import lint, values
from .errors import DefinitionError, DefinitionErrors
from .expressions import Environment, ExpressionError, cel_type, constant_type
from .model import (Action, Clock, Decision, Definition, Duration, Guard, Org,
                    Person, Role, Signoffs, State, Transition, Trigger)
from .source import Source, parse_source, read_source

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "workflow.schema.json"
_DURATION = re.compile(r"^([1-9][0-9]*) (working )?(minute|hour|day|week|month|year)s?$")


@lru_cache(maxsize=1)
def workflow_schema() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("money")(values.check_money_format)
    return checker


def load_definition(path: str | Path, org: Org, calendars: Iterable[str] = (),
                    display: str | None = None) -> Definition:
    """Read, check and compile one workflow file; raise DefinitionErrors."""
    return compile_source(read_source(path, display), org, set(calendars))


def definition_from_text(text: str, org: Org, calendars: Iterable[str], display: str) -> Definition:
    """Rebuild a stored definition version (its text is kept in the database)."""
    return compile_source(parse_source(text.encode("utf-8"), display), org, set(calendars))


def compile_source(src: Source, org: Org, calendars: set[str]) -> Definition:
    if not isinstance(src.data, dict):
        raise DefinitionErrors([src.error("a workflow file must be a mapping with "
                                          "'workflow', 'label_zh', 'states' and 'transitions'")])
    check_schema(src)
    errors = lint.check(src, org, calendars)
    if errors:
        raise DefinitionErrors(errors)
    compiler = _Compiler(src)
    definition = compiler.build()
    if compiler.errors:
        raise DefinitionErrors(compiler.errors)
    return definition


def check_schema(src: Source) -> None:
    """Phase 1: structure. One best message first, all of them available."""
    validator = workflow_schema()
    found = list(validator.iter_errors(src.data))
    if found:
        best = best_match(found)
        ordered = [best] + [e for e in found if e is not best]
        raise DefinitionErrors([_schema_error(src, e) for e in ordered])
    data_schema = src.data.get("data")
    if data_schema is not None:
        try:
            Draft202012Validator.check_schema(data_schema)
        except js_exc.SchemaError as exc:
            path = ["data", *exc.absolute_path]
            raise DefinitionErrors([src.error(f"invalid data schema: {exc.message}", path)]) from None


def _schema_error(src: Source, err: js_exc.ValidationError) -> DefinitionError:
    path = list(err.absolute_path)
    message, hint = err.message, None
    if err.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", err.message.split("(")[-1])
        allowed = list(err.schema.get("properties", {}))
        if extra:
            path = path + [extra[0]]
            message = f"unknown key {extra[0]!r}"
            hint = lint.did_you_mean(extra[0], allowed) or f"allowed: {', '.join(allowed)}"
            return src.error(message, path, key=True, hint=hint)
    if err.validator == "pattern" and "duration" in str(err.schema.get("description", "")):
        message = f"bad duration {err.instance!r}"
        hint = 'write e.g. "24 hours", "7 days", "2 working hours" or "2 working days"'
    elif err.validator == "pattern" and err.schema.get("pattern") == "^[a-z][a-z0-9_]*$":
        message = f"bad id {err.instance!r}"
        hint = "ids are lower-case letters, digits and _, starting with a letter"
    elif err.validator == "oneOf" and path and path[-2:-1] and isinstance(err.instance, dict):
        message = "an action needs exactly one of escalate, notify, fire or spawn"
    elif err.validator == "required":
        message = err.message.replace("is a required property", "is required")
    elif err.validator == "type":
        message = f"{_where(path)}{err.message}"
    elif err.validator in ("anyOf", "oneOf"):
        message = f"{_where(path)}{err.instance!r} is not valid here"
    return src.error(message, path, hint=hint)


def _where(path: list[Any]) -> str:
    named = [p for p in path if isinstance(p, str)]
    return f"{named[-1]}: " if named else ""


def parse_duration(text: str) -> Duration:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(text)
    return Duration(int(match.group(1)), match.group(3) + "s", bool(match.group(2)))


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Compiler:
    """Phase 3: build the frozen Definition, compiling every expression."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.doc: dict[str, Any] = src.data
        self.errors: list[DefinitionError] = []
        self.fields: dict[str, Any] = dict(self.doc.get("data", {}).get("properties", {}))
        variables = {name: cel_type(schema) for name, schema in self.fields.items()}
        for name, value in self.doc.get("constants", {}).items():
            variables[name] = constant_type(value)
        for t in self.doc["transitions"]:
            for name, schema in (t.get("input") or {}).items():
                variables[f"input.{name}"] = cel_type(schema)
        variables.update({"now": cel_type({"type": "string", "format": "date-time"}),
                          "actor": cel_type({"type": "string"}), "count": cel_type({"type": "integer"})})
        self.env = Environment(variables)

    def expr(self, text: str, path: list[Any], want: str | None = None, field: str | None = None):
        from cel_expr_python import cel
        want_type = cel.Type.BOOL if want == "bool" else (cel_type(self.fields[field]) if field else None)
        try:
            return self.env.compile(text, want=want_type)
        except ExpressionError as exc:
            self.errors.append(self._expr_error(text, path, exc))
            return None

    def _expr_error(self, text: str, path: list[Any], exc: ExpressionError) -> DefinitionError:
        line, col = self.src.locate(path)
        node_line = self.src.text.splitlines()[line - 1] if line - 1 < len(self.src.text.splitlines()) else ""
        quoted = col - 1 < len(node_line) and node_line[col - 1] in "\"'"
        if col - 1 < len(node_line) and node_line[col - 1] in "|>":
            body = self.src.text.splitlines()[line + exc.line - 1] if line + exc.line - 1 < len(self.src.text.splitlines()) else ""
            line, col = line + exc.line, len(body) - len(body.lstrip()) + exc.col
        elif exc.line == 1:
            col = col + (1 if quoted else 0) + exc.col - 1
        else:
            line += exc.line - 1
            col = exc.col
        return DefinitionError(f"in {text!r}: {exc.message}", file=self.src.path, line=line, col=col)

    def guards(self, raw: Any, path: list[Any]) -> tuple[Guard, ...]:
        if raw is None:
            return ()
        items = raw if isinstance(raw, list) else [raw]
        out = []
        for i, item in enumerate(items):
            p = path + ([i] if isinstance(raw, list) else [])
            text, message = (item, None) if isinstance(item, str) else (item["expr"], item.get("message"))
            if isinstance(item, dict):
                p = p + ["expr"]
            compiled = self.expr(text, p, want="bool")
            if compiled:
                out.append(Guard(compiled, message))
        return tuple(out)

    def actions(self, raw: list[dict[str, Any]] | None, path: list[Any]) -> tuple[Action, ...]:
        out = []
        for i, a in enumerate(raw or []):
            when = self.expr(a["when"], path + [i, "when"], want="bool") if "when" in a else None
            kind = next(k for k in ("escalate", "notify", "fire", "spawn") if k in a)
            if kind == "spawn":
                data = {k: self.expr(v, path + [i, "spawn", "data", k])
                        for k, v in a["spawn"].get("data", {}).items()}
                out.append(Action("spawn", a["spawn"]["workflow"], None, when,
                                  {k: v for k, v in data.items() if v}))
            else:
                out.append(Action(kind, a[kind], a.get("message"), when))
        return tuple(out)

    def build(self) -> Definition:
        doc = self.doc
        states = {sid: State(sid, s["label_zh"], bool(s.get("initial")), bool(s.get("final")),
                             self.actions(s.get("on_enter"), ["states", sid, "on_enter"]))
                  for sid, s in doc["states"].items()}
        transitions = tuple(self.transition(i, t) for i, t in enumerate(doc["transitions"]))
        decisions = {name: self.decision(name, d) for name, d in doc.get("decisions", {}).items()}
        clocks = tuple(self.clock(kind, i, c) for kind in ("slas", "timers")
                       for i, c in enumerate(doc.get(kind, [])))
        text = self.src.text
        return Definition(
            workflow=doc["workflow"], label_zh=doc["label_zh"], sha256=sha256_of(text), text=text,
            path=self.src.path, tz=ZoneInfo(doc.get("timezone", "Asia/Shanghai")),
            calendar=doc.get("calendar"), data_schema=doc.get("data", {"type": "object"}),
            fields=self.fields, constants=doc.get("constants", {}), unique=tuple(doc.get("unique", [])),
            states=states, initial=next(s.id for s in states.values() if s.initial),
            transitions=transitions, decisions=decisions, clocks=clocks, env=self.env)

    def transition(self, i: int, t: dict[str, Any]) -> Transition:
        path: list[Any] = ["transitions", i]
        effects = tuple((f, c) for f, text in (t.get("set") or {}).items()
                        if (c := self.expr(text, path + ["set", f], field=f)))
        s = t.get("signoffs")
        signoffs = Signoffs(tuple(s["roles"]), s.get("order", "sequential"),
                            s.get("distinct_people", True), s.get("reject_to")) if s else None
        sources = t["from"] if isinstance(t["from"], list) else [t["from"]]
        roles = set(t.get("roles", [])) | (set(s["roles"]) if s else set())
        return Transition(
            index=i, event=t["event"], label_zh=t.get("label_zh", t["event"]), sources=tuple(sources),
            to=t["to"], roles=frozenset(roles), system=bool(t.get("system")),
            accepts=tuple(t.get("accepts", [])), inputs=dict(t.get("input", {})),
            input_required=tuple(t.get("input_required", [])), requires=tuple(t.get("requires", [])),
            guards=self.guards(t.get("when"), path + ["when"]), effects=effects,
            decide=tuple(t.get("decide", [])), actions=self.actions(t.get("actions"), path + ["actions"]),
            signoffs=signoffs)

    def decision(self, name: str, d: dict[str, Any]) -> Decision:
        path: list[Any] = ["decisions", name]
        count = d.get("count") or {}
        when = self.expr(count["when"], path + ["count", "when"], want="bool") if "when" in count else None
        rules = tuple((c, r["outcome"]) for i, r in enumerate(d["rules"])
                      if (c := self.expr(r["when"], path + ["rules", i, "when"], want="bool")))
        return Decision(name, d.get("label_zh", name), count.get("key"), count.get("period"), when, rules)

    def clock(self, kind: str, i: int, c: dict[str, Any]) -> Clock:
        path: list[Any] = [kind, i]
        trig = {k: _trigger(c.get(k)) for k in ("start", "stop", "pause", "resume", "restart")}
        return Clock(
            name=c["name"], label_zh=c.get("label_zh", c["name"]), kind="sla" if kind == "slas" else "timer",
            from_field=c.get("from_field"),
            when=self.expr(c["when"], path + ["when"], want="bool") if "when" in c else None,
            within=parse_duration(c["within"]), working_days=c.get("working_days", "elapsed"),
            warn_at=tuple(int(w.rstrip("%")) for w in c.get("warn_at", [])),
            actions=self.actions(c.get("on_breach") or c.get("on_due"), path + ["on_breach" if "on_breach" in c else "on_due"]),
            **trig)


def _trigger(raw: dict[str, Any] | None) -> Trigger:
    if not raw:
        return Trigger()
    def _set(v: Any) -> frozenset[str]:
        return frozenset(v if isinstance(v, list) else [v]) if v else frozenset()
    return Trigger(_set(raw.get("enter")), _set(raw.get("leave")), _set(raw.get("event")))


def load_org(path: str | Path) -> Org:
    """people and roles from org.yaml; roles may be declared or only used."""
    src = read_source(path)
    doc = src.data if isinstance(src.data, dict) else {}
    errors: list[DefinitionError] = []
    roles: dict[str, Role] = {}
    for rid, r in (doc.get("roles") or {}).items():
        r = r or {}
        roles[str(rid)] = Role(str(rid), str(r.get("label_zh", rid)), bool(r.get("can_unmask")))
    people: dict[str, Person] = {}
    raw_people = doc.get("people")
    if not isinstance(raw_people, dict) or not raw_people:
        raise DefinitionErrors([src.error("org.yaml needs a 'people' mapping: id → {name, roles}")])
    for pid, p in raw_people.items():
        if not isinstance(p, dict) or not isinstance(p.get("roles"), list) or "name" not in p:
            errors.append(src.error(f"person {pid!r} needs 'name' and a list of 'roles'", ["people", pid]))
            continue
        for i, role in enumerate(p["roles"]):
            if roles and role not in roles:
                errors.append(src.error(f"person {pid!r} has unknown role {role!r}", ["people", pid, "roles", i],
                                        hint=lint.did_you_mean(role, roles)))
        attrs = {k: v for k, v in p.items() if k not in ("name", "roles")}
        people[str(pid)] = Person(str(pid), str(p["name"]), frozenset(p["roles"]), attrs)
    if errors:
        raise DefinitionErrors(errors)
    for person in people.values():
        for role in person.roles:
            roles.setdefault(role, Role(role, role, False))
    return Org(people, roles)


def check_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


__all__ = ["load_definition", "definition_from_text", "load_org", "parse_duration", "sha256_of",
           "workflow_schema", "format_checker", "yaml"]
