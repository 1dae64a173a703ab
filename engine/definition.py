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
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jsonschema import Draft202012Validator, FormatChecker, exceptions as js_exc
from jsonschema.exceptions import best_match

from . import lint, values
from .errors import DefinitionError, DefinitionErrors
from .expressions import (MAX_EXPR_CHARS, Environment, ExpressionError, ExpressionTypeError, cel_type,
                          constant_type)
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
    checker.checks("date-time")(values.check_datetime_format)
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
        raise DefinitionErrors(_in_file_order(errors))
    compiler = _Compiler(src)
    definition = compiler.build()
    if compiler.errors:
        raise DefinitionErrors(_in_file_order(compiler.errors))
    return definition


def _in_file_order(errors: list[DefinitionError]) -> list[DefinitionError]:
    """Meaning errors are all equally bad: list them top to bottom, as a designer reads."""
    return _unique(sorted(errors, key=lambda e: (e.line, e.col)))


def check_schema(src: Source) -> None:
    """Phase 1: structure. One best message first, then all the others."""
    found = list(workflow_schema().iter_errors(src.data))
    if found:
        best = best_match(found)       # may be a sub-error from inside an anyOf: drop its parent
        rest = [e for e in found if e is not best and not _contains(e, best)]
        ordered = [best] + sorted(rest, key=lambda e: src.locate(list(e.absolute_path)))
        raise DefinitionErrors(_unique([_schema_error(src, e) for e in ordered]))
    # `data` and each event input are JSON Schemas themselves: check them against the metaschema.
    schemas: list[tuple[list[Any], str, Any]] = []
    if src.data.get("data") is not None:
        schemas.append((["data"], "data schema", src.data["data"]))
    for i, t in enumerate(src.data["transitions"]):
        for name, param in (t.get("input") or {}).items():
            schemas.append((["transitions", i, "input", name], f"input {name!r} of {t['event']!r}", param))
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    errors: list[DefinitionError] = []
    for prefix, what, schema in schemas:
        bad = list(meta.iter_errors(schema))
        if bad:
            best = best_match(bad)
            errors += [_data_schema_error(src, e, prefix, what) for e in [best] + [e for e in bad if e is not best]]
    if errors:
        raise DefinitionErrors(_unique(errors))


def _contains(parent: js_exc.ValidationError, child: js_exc.ValidationError) -> bool:
    todo = list(parent.context or [])
    while todo:
        e = todo.pop()
        if e is child:
            return True
        todo.extend(e.context or [])
    return False


def _unique(errors: list[DefinitionError]) -> list[DefinitionError]:
    seen: set[str] = set()
    out = []
    for e in errors:
        if str(e) not in seen:
            seen.add(str(e))
            out.append(e)
    return out


_JSON_TYPES = ["string", "integer", "number", "boolean", "object", "array", "null"]
_ID = "^[a-z][a-z0-9_]*$"


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else json.dumps(value, ensure_ascii=False,
                                                                             default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "empty"
    if isinstance(value, (date, datetime)):
        return "a date"
    return type(value).__name__


_EXPECT = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
           "object": "a mapping (key: value)", "array": "a list", "null": "nothing"}


def _schema_error(src: Source, err: js_exc.ValidationError) -> DefinitionError:
    path = list(err.absolute_path)
    what = lint.describe(src.data, path)
    key = next((str(p) for p in reversed(path) if isinstance(p, str)), None)
    where = f"{what}: {key}" if key and what != key and not what.endswith(f"{key!r}") else what
    schema, v = err.schema, err.validator
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(schema.get("properties", {})))
        allowed = list(schema.get("properties", {}))
        name = extra[0] if extra else "?"
        hint = lint.did_you_mean(name, allowed) or f"allowed keys: {', '.join(allowed)}"
        message = f"unknown top-level key {name!r}" if not path else f"{what} has unknown key {name!r}"
        return src.error(message, path + [name], key=True, hint=hint)
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else "?"
        return src.error(f"{what} is missing {missing!r}", path, key=bool(path), hint=_REQUIRED_HINTS.get(missing))
    if v == "pattern" and "working" in schema.get("pattern", ""):
        return src.error(f"{where}: {_short(err.instance)} is not a duration", path, hint=_duration_hint(err.instance))
    if v == "pattern" and schema.get("pattern") == _ID:
        fixed = re.sub(r"[^a-z0-9_]+", "_", str(err.instance).strip().lower()).strip("_")
        hint = "names are lower-case letters, digits and _, starting with a letter"
        if fixed and fixed[0].isalpha():
            hint += f": e.g. {fixed!r}"
        key_err = isinstance(err.instance, str) and bool(path) and path[-1] == err.instance
        return src.error(f"{_short(err.instance)} is not a valid name", path, key=key_err, hint=hint)
    if v == "pattern" and "%" in schema.get("pattern", ""):
        return src.error(f"{where}: {_short(err.instance)} is not a percentage from 1% to 99%", path,
                         hint='a warning comes before the deadline, which is 100%: e.g. "50%" or "80%"')
    if v == "pattern":
        return src.error(f"{where}: {_short(err.instance)} does not match {schema.get('pattern')}", path)
    if v == "maxLength" and schema.get("maxLength") == MAX_EXPR_CHARS:
        return src.error(f"{lint.describe_expr(src.data, path)}: expression is {len(err.instance):,} characters;"
                         f" the limit is {MAX_EXPR_CHARS:,}",
                         path, hint="split it into several guards, or move the rules into a decision table")
    if v == "type":
        return _type_error(src, path, where, err.instance, err.validator_value)
    if v == "enum":
        options = [str(o) for o in err.validator_value]
        hint = lint.did_you_mean(str(err.instance), options) or f"one of: {', '.join(options)}"
        return src.error(f"{where}: {_short(err.instance)} is not allowed", path, hint=hint)
    if v == "const":
        return src.error(f"{where} must be {_short(err.validator_value)}", path)
    if v in ("minItems", "minProperties", "minLength"):
        return src.error(f"{where} is empty", path, hint=_EMPTY_HINTS.get(key or "", None))
    if v == "oneOf" and path and isinstance(err.instance, dict) and "escalate" in str(schema):
        kinds = [k for k in ("escalate", "notify", "fire", "spawn") if k in err.instance]
        if kinds:
            return src.error(f"an action does exactly one thing, this one has {' and '.join(kinds)}", path,
                             hint="split it into one list item per action")
        return src.error("an action needs one of escalate, notify, fire or spawn", path)
    if v in ("anyOf", "oneOf"):
        return _any_of_error(src, path, where, err)
    return src.error(f"{where}: {err.message if len(err.message) < 120 else err.message[:117] + '…'}", path)


_REQUIRED_HINTS = {
    "to": "add to: STATE, the state this event leads to",
    "from": "add from: STATE (or a list of states)",
    "event": "add event: NAME, what operators type to fire it",
    "label_zh": "add label_zh: 中文名称",
    "within": 'add within: e.g. "24 hours" or "2 working days"',
    "start": "add start: {enter: STATE} or {event: EVENT}",
    "roles": "add roles: [ROLE, ...]",
    "rules": "add rules: [{when: ..., outcome: {...}}]",
    "states": "add states: {id: {label_zh: ..., initial: true}, ...}",
    "transitions": "add transitions: [{event: ..., from: ..., to: ..., roles: [...]}]",
}
_EMPTY_HINTS = {"roles": "list who may fire it, e.g. [cs_agent]", "states": "add at least one state",
                "transitions": "add at least one transition"}


def _type_error(src: Source, path: list[Any], where: str, value: Any, expected: Any) -> DefinitionError:
    want = expected if isinstance(expected, list) else [expected]
    wanted = " or ".join(_EXPECT.get(w, w) for w in want)
    hint = None
    node = src.node(path)
    raw = node.value if isinstance(node, yaml.ScalarNode) else None
    if isinstance(value, bool) and raw is not None and raw.lower() in ("yes", "no", "on", "off", "y", "n"):
        hint = f"YAML reads {raw} as a boolean; quote it: '{raw}'"
    elif isinstance(value, (date, datetime)):
        hint = f"YAML reads {raw} as a date; quote it: '{raw}'"
    elif value is None:
        hint = "the value is missing after the ':'"
    elif "string" in want and isinstance(value, (int, float)) and raw and "\n" not in raw:
        hint = f"quote it: '{raw}'"
    elif "array" in want and isinstance(value, str) and "\n" not in value and len(value) <= 60:
        hint = f"write a list: [{value}]"
    return src.error(f"{where} should be {wanted}, not {_kind(value)}", path, hint=hint)


def _any_of_error(src: Source, path: list[Any], where: str, err: js_exc.ValidationError) -> DefinitionError:
    """`from`, `when`, trigger lists…: explain with the closest alternative."""
    inner = [e for e in (err.context or []) if e.validator not in ("type",)]
    types = [e.validator_value for e in (err.context or []) if e.validator == "type"]
    if inner:
        deepest = best_match(inner)
        sub = list(deepest.absolute_path)
        if deepest.validator == "pattern" and deepest.schema.get("pattern") == _ID:
            return _schema_error(src, deepest)
        if sub != path:
            return _schema_error(src, deepest)
    if types:
        flat = sorted({t for ts in types for t in (ts if isinstance(ts, list) else [ts])})
        return _type_error(src, path, where, err.instance, flat)
    return src.error(f"{where}: {_short(err.instance)} is not valid here", path)


def _duration_hint(value: Any) -> str:
    text = str(value).strip().lower()
    fixed = re.sub(r"\s*(work(ing)?[ _-]?days?|business[ _-]?days?|工作日)$", " working days", text)
    fixed = re.sub(r"\s*(work(ing)?[ _-]?hours?|business[ _-]?hours?|工作小时)$", " working hours", fixed)
    fixed = re.sub(r"\s*(hrs?|h|小时)$", " hours", fixed)
    fixed = re.sub(r"\s*(mins?|m|分钟)$", " minutes", fixed)
    fixed = re.sub(r"\s*(d|天)$", " days", fixed)
    fixed = re.sub(r"\s*(个?月)$", " months", fixed)
    fixed = re.sub(r"\s*(年)$", " years", fixed)
    fixed = re.sub(r"^(\d+)\s+", r"\1 ", fixed)
    if fixed != text and _DURATION.match(fixed):
        return f"did you mean {fixed!r}?"
    return 'write N minutes|hours|days|weeks|months|years, or N working hours|working days, e.g. "24 hours"'


def _data_schema_error(src: Source, err: js_exc.ValidationError, prefix: list[Any],
                       what: str) -> DefinitionError:
    path = [*prefix, *err.absolute_path]
    if err.validator == "anyOf" and path[-1] == "type":
        name = str(err.instance)
        hint = lint.did_you_mean(name, _JSON_TYPES) or f"JSON Schema types: {', '.join(_JSON_TYPES)}"
        return src.error(f"{what}: unknown type {_short(err.instance)}", path, hint=hint)
    if err.validator == "type":
        return _type_error(src, path, f"{what}: " + ".".join(str(p) for p in err.absolute_path),
                           err.instance, err.validator_value)
    message = err.message if len(err.message) < 100 else err.message[:97] + "…"
    return src.error(f"{what}: {message}", path)


def parse_duration(text: str) -> Duration:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(text)
    return Duration(int(match.group(1)), match.group(3) + "s", bool(match.group(2)))


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
            open_roles=self._open_roles(transitions),
            states=states, initial=next(s.id for s in states.values() if s.initial),
            transitions=transitions, decisions=decisions, clocks=clocks, env=self.env)

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
