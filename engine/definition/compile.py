"""Load a workflow file: safe YAML → JSON Schema → lint → compiled `Definition`.

Two phases, like SpiffWorkflow's XSD-then-parser: the schema catches shape
errors, `lint` catches meaning errors (unknown names, unreachable states) and
compiling type-checks every CEL expression against the `data` schema. Every
error carries file:line:col so a designer finds it before any case runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from caseflow.definition import access, kinds, lint
from caseflow.definition.expressions import Environment, ExpressionError, ExpressionTypeError, cel_type, constant_type
from caseflow.definition.model import (
    Action,
    Clock,
    Decision,
    Definition,
    Duration,
    Guard,
    Org,
    Person,
    Role,
    Signoffs,
    State,
    Transition,
    Trigger,
    meaning_of,
    sha256_of,
)
from caseflow.definition.source import Source, parse_source, read_source
from caseflow.errors import DefinitionError, DefinitionErrors


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
    from caseflow.definition.schema import check_schema  # jsonschema: only when a file is compiled
    check_schema(src)
    errors = lint.check(src, org, calendars)
    if errors:
        raise DefinitionErrors(_in_file_order(errors))
    compiler = _Compiler(src)
    definition = compiler.build()
    if compiler.errors:
        raise DefinitionErrors(_in_file_order(compiler.errors))
    return definition


def _in_file_order(errors: list[DefinitionError]) -> list[DefinitionError]:
    """Meaning errors are all equally bad: list them top to bottom, as a designer reads."""
    from caseflow.definition.schema import _unique
    return _unique(sorted(errors, key=lambda e: (e.line, e.col)))


def parse_duration(text: str) -> Duration:
    """`24 hours`, `1 month`, `2 working days` (the schema's grammar, schema.duration_grammar)."""
    from caseflow.definition.schema import duration_grammar
    if not duration_grammar().match(text):
        raise ValueError(text)
    amount, unit = text.split(" ", 1)
    working = unit.startswith("working ")
    return Duration(int(amount), unit.removeprefix("working ").removesuffix("s") + "s", working)


def _a(type_name: str) -> str:
    return ("an " if type_name[:1] in "aeiou" else "a ") + type_name


def _field_kind(schema: dict[str, Any]) -> str:
    return str(schema.get("format") if schema.get("format") in ("money", "date-time", "date") else schema.get("type"))


_FIELD_KINDS = {
    "money": ("money", 'write an amount: yuan(300), yuan("12.50") or another money field'),
    "date-time": ("a date-time", "write now, or another date-time field"),
    "date": ("a date", "write now, or another date field"),
    "string": ("text", "text needs quotes inside the YAML string, e.g. \"'after_work'\""),
    "integer": ("an int", "write a whole number or an int expression"),
    "boolean": ("a bool", "write true, false or a condition"),
    "array": ("a list", None),
    "object": ("a mapping", None),
}


class _Compiler:
    """Phase 3: build the frozen Definition, compiling every expression."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.doc: dict[str, Any] = src.data
        self.meaning = meaning_of(src.data)          # before anything reads the document
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
        self.inputs: dict[str, Any] | None = None     # the current transition's inputs

    def expr(self, text: str, path: list[Any], want: str | None = None, field: str | None = None) -> Any:
        from cel_expr_python import cel
        want_type = cel.Type.BOOL if want == "bool" else (cel_type(self.fields[field]) if field else None)
        try:
            compiled = self.env.compile(text, want=want_type)
        except ExpressionTypeError as exc:
            self.errors.append(self._type_error(text, path, exc, field))
            return None
        except ExpressionError as exc:
            line, col = self.src.position_in(path, exc.line, exc.col)
            self.errors.append(DefinitionError(f"{lint.describe_expr(self.doc, path)}: {exc.message}",
                                               file=self.src.path, line=line, col=col, hint=exc.hint))
            return None
        if self.inputs is not None:
            self._check_inputs(compiled.names, text, path)
        return compiled

    def _check_inputs(self, names: frozenset[str], text: str, path: list[Any]) -> None:
        """An expression may read only the inputs its own transition declares."""
        for name in sorted(n for n in names if n.startswith("input.")):
            short = name.removeprefix("input.")
            if self.inputs is not None and short not in self.inputs:
                found = re.search(r"\binput\s*\.\s*" + re.escape(short) + r"\b", text)
                before = text[:found.start()] if found else ""
                line, col = self.src.position_in(path, before.count("\n") + 1,
                                                 len(before) - (before.rfind("\n") + 1) + 1)
                self.errors.append(DefinitionError(
                    f"{lint.describe_expr(self.doc, path)}: this transition has no input {short!r}",
                    file=self.src.path, line=line, col=col,
                    hint=lint.did_you_mean(short, self.inputs) or "declare it under this transition's input:"))

    def _type_error(self, text: str, path: list[Any], exc: ExpressionTypeError,
                    field: str | None) -> DefinitionError:
        what = lint.describe_expr(self.doc, path)
        got = _a(exc.got)
        if field is None:
            short = text if len(text) <= 30 and "\n" not in text else "…"
            example = {"int": f"{short} > 0", "double": f"{short} > 0", "string": f"{short} == 'major'",
                       "timestamp": f"{short} < now"}.get(exc.got)
            message = f"{what} must be true or false, but gives {got}"
            hint = f"compare it, e.g. {example}" if example else None
        else:
            kind, hint = _FIELD_KINDS.get(_field_kind(self.fields[field]), (exc.want, None))
            message = f"{what} gives {got}, but {field!r} is {kind}"
        line, col = self.src.position_in(path, 1, 1)
        return DefinitionError(message, file=self.src.path, line=line, col=col, hint=hint)

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
            out.append(kinds.kind_of(a).compile(a, self.expr, path + [i], when))
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
        open_roles = self._open_roles(transitions)
        return Definition(
            workflow=doc["workflow"], label_zh=doc["label_zh"], sha256=sha256_of(text), text=text,
            path=self.src.path, tz=ZoneInfo(doc.get("timezone", "Asia/Shanghai")),
            calendar=doc.get("calendar"), data_schema=doc.get("data", {"type": "object"}),
            fields=self.fields, constants=doc.get("constants", {}), unique=tuple(doc.get("unique", [])),
            open_roles=open_roles,
            states=states, initial=next(s.id for s in states.values() if s.initial),
            transitions=transitions, decisions=decisions, clocks=clocks, env=self.env,
            open_accepts=access.open_accepts(doc, self.fields, transitions, decisions),
            read_roles=access.read_roles(doc, open_roles, states, transitions, clocks),
            assign_roles=frozenset(doc.get("assign_roles", [])), assign_to=tuple(doc.get("assign_to", [])),
            summary=tuple(doc.get("summary") or doc.get("data", {}).get("required", [])[:3]), meaning=self.meaning)

    def _open_roles(self, transitions: tuple[Transition, ...]) -> frozenset[str]:
        """Who may open a case: declared, or whoever may work its first step (deny by default)."""
        if "open_roles" in self.doc:
            return frozenset(self.doc["open_roles"])
        initial = next(sid for sid, s in self.doc["states"].items() if s.get("initial"))
        return frozenset().union(*(t.roles for t in transitions if initial in t.sources and not t.system))

    def transition(self, i: int, t: dict[str, Any]) -> Transition:
        path: list[Any] = ["transitions", i]
        self.inputs = dict(t.get("input") or {})
        try:
            return self._transition(i, t, path)
        finally:
            self.inputs = None

    def _transition(self, i: int, t: dict[str, Any], path: list[Any]) -> Transition:
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
            signoffs=signoffs, not_by=tuple(_as_list(t.get("not_by"))),
            assignee_only=bool(t.get("assignee_only")), inbox=t.get("inbox", True) is not False)

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
            actions=self.actions(c.get("on_breach") or c.get("on_due"),
                                 path + ["on_breach" if "on_breach" in c else "on_due"]),
            **trig)


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _trigger(raw: dict[str, Any] | None) -> Trigger:
    if not raw:
        return Trigger()
    def _set(v: Any) -> frozenset[str]:
        return frozenset(v if isinstance(v, list) else [v]) if v else frozenset()
    return Trigger(_set(raw.get("enter")), _set(raw.get("leave")), _set(raw.get("event")))


RESERVED_PEOPLE = frozenset({"system"})     # the engine's own actor (timers, spawned cases)
ROLE_FLAGS = ("can_unmask", "can_audit", "can_apply_org", "can_migrate")


def load_org(path: str | Path) -> Org:
    """people and roles from org.yaml; roles may be declared or only used."""
    return org_from_source(read_source(path))


def org_from_text(text: str, display: str = "org.yaml") -> Org:
    """An org chart version stored in the database."""
    return org_from_source(parse_source(text.encode("utf-8"), display))


def org_from_source(src: Source) -> Org:
    doc = src.data if isinstance(src.data, dict) else {}
    errors: list[DefinitionError] = []
    roles: dict[str, Role] = {}
    for rid, r in (doc.get("roles") or {}).items():
        r = r or {}
        roles[str(rid)] = Role(str(rid), str(r.get("label_zh", rid)),
                               *(bool(r.get(flag)) for flag in ROLE_FLAGS))
    people: dict[str, Person] = {}
    raw_people = doc.get("people")
    if not isinstance(raw_people, dict) or not raw_people:
        raise DefinitionErrors([src.error("org.yaml needs a 'people' mapping: id → {name, roles}")])
    for pid, p in raw_people.items():
        if str(pid) in RESERVED_PEOPLE:
            errors.append(src.error(f"person id {pid!r} is reserved for the engine's own actions",
                                    ["people", pid], hint="choose another id"))
            continue
        if not isinstance(p, dict) or not isinstance(p.get("roles"), list) or "name" not in p:
            errors.append(src.error(f"person {pid!r} needs 'name' and a list of 'roles'", ["people", pid]))
            continue
        for i, role in enumerate(p["roles"]):
            if roles and role not in roles:
                errors.append(src.error(f"person {pid!r} has unknown role {role!r}", ["people", pid, "roles", i],
                                        hint=lint.did_you_mean(role, roles)))
        attrs = {k: v for k, v in p.items() if k not in ("name", "roles")}
        people[str(pid)] = Person(str(pid), str(p["name"]), frozenset(p["roles"]), attrs)
    if not errors:
        from caseflow.definition.schema import check_document  # jsonschema: only when org.yaml is read

        errors = check_document(src, "org")      # the checks above say it better; the schema says the rest
    if errors:
        raise DefinitionErrors(errors)
    for person in people.values():
        for role in person.roles:
            roles.setdefault(role, Role(role, role, False))
    return Org(people, roles)


__all__ = ["load_definition", "definition_from_text", "load_org", "org_from_text", "parse_duration", "sha256_of",
           "yaml"]
