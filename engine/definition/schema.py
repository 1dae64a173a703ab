"""Phase 1 of loading: the workflow file's JSON Schema, and messages a designer can act on.

jsonschema reports paths and its own wording; designers need the line and
column and a sentence about their file ("transition 'close' is missing 'to'",
"did you mean '2 working days'?"). `best_match` picks the headline error,
the others follow in file order.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema import exceptions as js_exc
from jsonschema.exceptions import best_match

from caseflow import values
from caseflow.definition import kinds, lint
from caseflow.definition.expressions import MAX_EXPR_CHARS
from caseflow.definition.source import Source
from caseflow.errors import DefinitionError, DefinitionErrors

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"    # package data: workflow, org, calendars
SCHEMA_PATH = SCHEMAS / "workflow.schema.json"


@lru_cache(maxsize=1)
def duration_grammar() -> re.Pattern[str]:
    """The one duration grammar: `$defs/duration` of the workflow schema. Working time is counted in
    minutes, hours and days, as the calendar does; `2 working weeks` is refused by both alike."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return re.compile(schema["$defs"]["duration"]["pattern"])


def workflow_schema() -> Draft202012Validator:
    """The workflow schema, its `$defs/action` rendered from the registry of action kinds."""
    return _workflow_schema(kinds.generation())


@lru_cache(maxsize=1)
def _workflow_schema(_generation: int) -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    schema["$defs"]["action"] = kinds.action_schema()
    return Draft202012Validator(schema)


@lru_cache(maxsize=4)
def document_schema(name: str) -> Draft202012Validator:
    """The schema of org.yaml ("org") or calendars.yaml ("calendars"), shipped beside the workflow's."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


def check_document(src: Source, name: str) -> list[DefinitionError]:
    """org.yaml or calendars.yaml against its schema: every error, the best first, with line and column."""
    found = list(document_schema(name).iter_errors(_plain(src.data)))
    if not found:
        return []
    best = best_match(found)
    rest = sorted((e for e in found if e is not best and not _contains(e, best)),
                  key=lambda e: src.locate(list(e.absolute_path)))
    return _unique([_schema_error(src, e) for e in [best, *rest]])


def _plain(value: Any) -> Any:
    """YAML's unquoted dates as the ISO text editors (and the schema) see."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    for name, check in values.FORMATS.items():
        checker.checks(name)(check)
    return checker


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
    if v == "oneOf" and path and isinstance(err.instance, dict) and schema == kinds.action_schema():
        found = kinds.names_in(err.instance)
        if found:
            return src.error(f"an action does exactly one thing, this one has {' and '.join(found)}", path,
                             hint="split it into one list item per action")
        return src.error(f"an action needs one of {kinds.one_of_names()}", path)
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
    wanted = " or ".join(str(_EXPECT.get(w, w)) for w in want)
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
    if fixed != text and duration_grammar().match(fixed):
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
