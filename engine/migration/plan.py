"""A migration plan: which open cases of one version move to another, and how.

The plan is a YAML file a person reviews (`caseflow migrate plan` writes one):
the state map (default: the state of the same id), what happens to sign-offs
collected so far and to running clocks, data transforms in CEL over OLD's
fields, a case filter, and what happens to cases that cannot migrate. It is
checked like a workflow file: the JSON Schema phase (schemas/migration.schema.json),
then every name and expression, each error at file:line:col.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseflow.definition.expressions import Compiled, ExpressionError, ExpressionTypeError, cel_type
from caseflow.definition.lint import did_you_mean
from caseflow.definition.model import Definition, sha256_of
from caseflow.definition.source import Source, parse_source, read_source
from caseflow.errors import DefinitionError, DefinitionErrors

DEFAULTS = {"signoffs": "keep", "clocks": "recompute", "lands_elsewhere": "stay", "cannot_migrate": "stay"}


@dataclass(frozen=True)
class Plan:
    """A checked plan; `sha256` names its text (what the audit rows and the runs table record)."""

    workflow: str
    old: Definition
    new: Definition
    states: Mapping[str, str | None]           # every non-final OLD state → NEW state or None
    signoffs: str                               # keep | clear
    clocks: str                                 # recompute | keep
    transforms: Mapping[str, Compiled]          # NEW field → expression over OLD's fields
    filter: Compiled | None
    lands_elsewhere: str                        # stay | move
    cannot_migrate: str                         # stay | refuse
    text: str
    sha256: str
    path: str = ""
    dropped: tuple[str, ...] = field(default=())   # OLD fields NEW lacks and no transform keeps
    same_fields: frozenset[str] = frozenset()      # fields both versions declare alike (valid under OLD: under NEW)

    def target(self, old_state: str) -> str | None:
        return self.states.get(old_state)


def plan_text(old: Definition, new: Definition, new_file: str, open_cases: Mapping[str, int]) -> str:
    """The reviewable plan for moving `old`'s open cases to `new` (`open_cases`: OLD state → count)."""
    lines = [
        "# caseflow migration plan. Review it, then: caseflow migrate run THIS_FILE --dry-run",
        f"migration: {old.workflow}",
        f"from: {old.sha256}        # {sum(open_cases.values())} open case(s) on this version",
        "to:",
        f"  file: {_quote(new_file)}",
        f"  sha256: {new.sha256}    # the file must still hash to this when the plan runs",
        "",
        "# Where a case in each state of OLD goes in NEW (default: the state of the same id).",
        "# A state NEW lacks maps to null: its cases cannot migrate unless you name a state here.",
        "# A case migrates only if its logged history, replayed under NEW, ends in this state.",
        "states:",
    ]
    for s in old.states.values():
        if s.final:
            continue
        to = s.id if s.id in new.states and not new.states[s.id].final else None
        n = open_cases.get(s.id, 0)
        note = f"{s.label_zh}, {n} open" + ("" if to else "; no such open state in NEW")
        lines.append(f"  {s.id}: {to if to else 'null'}    # {note}")
    lines += [
        "",
        "# Sign-offs collected so far: keep (replayed under NEW: a signature its sign-off step does",
        "# not ask for, or asks for in another order, makes the history forbidden) or clear (dropped",
        "# at migration; the signers sign again under NEW).",
        "signoffs: keep",
        "",
        "# Running clocks: recompute (NEW's SLAs counted from where each clock started in the",
        "# replayed history; clocks NEW lacks are cancelled) or keep (a running clock keeps its",
        "# deadline; clocks only NEW has start as the history says).",
        "clocks: recompute",
        "",
    ]
    old_fields, new_fields = set(old.fields), set(new.fields)
    added = sorted(new_fields - old_fields)
    dropped = sorted(old_fields - new_fields)
    lines.append("# NEW field: CEL expression over OLD's fields. Fields of the same name are copied;")
    lines.append("# fields NEW lacks are dropped" + (f" ({', '.join(dropped)})." if dropped else "."))
    lines.append("transforms: {}")
    for name in added:
        guess = next((o for o in dropped if _similar(o, name, old, new)), None)
        lines.append(f"#   {name}: {_quote(guess)}    # only NEW has {name}; a rename of {guess}?" if guess
                     else f"#   {name}: ...    # only NEW has {name}")
    lines += [
        "",
        "# Only cases for which this CEL expression over OLD's fields holds (default: every open case).",
        "filter: \"true\"",
        "",
        "# A history that replays under NEW but ends in another state than `states` says:",
        "# stay (on OLD) or move (to the state its history reaches under NEW).",
        "lands_elsewhere: stay",
        "",
        "# Cases that cannot migrate: stay (on OLD; they go on working) or refuse (nothing migrates).",
        "cannot_migrate: stay",
        "",
    ]
    return "\n".join(lines)


def _similar(old_name: str, new_name: str, old: Definition, new: Definition) -> bool:
    """A renamed field: same type and format, and a close name or the same label."""
    a, b = old.fields[old_name], new.fields[new_name]
    if (a.get("type"), a.get("format")) != (b.get("type"), b.get("format")):
        return False
    return a.get("label_zh") == b.get("label_zh") or did_you_mean(new_name, [old_name]) is not None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- loading --------------------------------------------------------------------------------

def load_plan(path: str | Path, old_of: Any, new_loader: Any) -> Plan:
    """Read and check a plan file.

    `old_of(workflow, sha)` returns the stored OLD version (or raises NotFound);
    `new_loader(path)` compiles the NEW file (raises DefinitionErrors).
    """
    src = read_source(path)
    return check_plan(src, Path(path).parent, old_of, new_loader)


def plan_from_text(text: str, display: str, base: Path, old_of: Any, new_loader: Any) -> Plan:
    return check_plan(parse_source(text.encode("utf-8"), display), base, old_of, new_loader)


def check_plan(src: Source, base: Path, old_of: Any, new_loader: Any) -> Plan:
    from caseflow.definition.schema import check_document
    if not isinstance(src.data, dict):
        raise DefinitionErrors([src.error("a migration plan is a mapping with 'migration', 'from' and 'to' "
                                          "(caseflow migrate plan WORKFLOW --to FILE writes one)")])
    errors = check_document(src, "migration")
    if errors:
        raise DefinitionErrors(errors)
    doc = src.data
    old = old_of(doc["migration"], doc["from"])
    if old is None:
        raise DefinitionErrors([src.error(f"no stored version {doc['from'][:12]} of workflow "
                                          f"{doc['migration']!r}: which cases should move?", ["from"])])
    new_path = Path(doc["to"]["file"])
    if not new_path.is_absolute():
        new_path = base / new_path
    if not new_path.is_file():
        raise DefinitionErrors([src.error(f"new version file {doc['to']['file']} not found (relative to "
                                          f"the plan's folder {base})", ["to", "file"])])
    new_text = new_path.read_text(encoding="utf-8")
    if sha256_of(new_text) != doc["to"]["sha256"]:
        raise DefinitionErrors([src.error(f"{doc['to']['file']} changed since the plan was written (it hashes to "
                                          f"{sha256_of(new_text)[:12]}, the plan says "
                                          f"{doc['to']['sha256'][:12]}); review the plan again",
                                          ["to", "sha256"],
                                          hint="caseflow migrate plan writes a fresh one")])
    new = new_loader(new_path)
    if new.workflow != old.workflow:
        raise DefinitionErrors([src.error(f"{doc['to']['file']} is workflow {new.workflow!r}, the plan "
                                          f"migrates {old.workflow!r}", ["to", "file"])])
    errors = []
    states: dict[str, str | None] = {s.id: s.id if s.id in new.states and not new.states[s.id].final else None
                                     for s in old.states.values() if not s.final}
    for key, value in (doc.get("states") or {}).items():
        if key not in states:
            what = "a final state (closed cases do not migrate)" if key in old.states else "not a state of OLD"
            errors.append(src.error(f"states: {key!r} is {what}", ["states", key], key=True,
                                    hint=did_you_mean(key, states)))
            continue
        if value is not None and (value not in new.states or new.states[value].final):
            what = "a final state of NEW" if value in new.states else "not a state of NEW"
            open_new = [s for s in new.states if not new.states[s].final]
            errors.append(src.error(f"states: {key} → {value!r}: {what}", ["states", key],
                                    hint=did_you_mean(value, open_new)))
            continue
        states[key] = value
    transforms: dict[str, Compiled] = {}
    for name, text in (doc.get("transforms") or {}).items():
        if name not in new.fields:
            errors.append(src.error(f"transforms: {name!r} is not a field of NEW", ["transforms", name],
                                    key=True, hint=did_you_mean(name, new.fields)))
            continue
        compiled = _compile(src, old, text, ["transforms", name], cel_type(new.fields[name]), errors,
                            f"transform {name}")
        if compiled is not None:
            transforms[name] = compiled
    flt = None
    if doc.get("filter") is not None:
        from cel_expr_python import cel
        flt = _compile(src, old, doc["filter"], ["filter"], cel.Type.BOOL, errors, "filter")
    if errors:
        raise DefinitionErrors(errors)
    dropped = tuple(sorted(set(old.fields) - set(new.fields)))
    same = frozenset(f for f in old.fields if f not in transforms and new.fields.get(f) == old.fields[f])
    return Plan(old.workflow, old, new, states, doc.get("signoffs", DEFAULTS["signoffs"]),
                doc.get("clocks", DEFAULTS["clocks"]), transforms, flt,
                doc.get("lands_elsewhere", DEFAULTS["lands_elsewhere"]),
                doc.get("cannot_migrate", DEFAULTS["cannot_migrate"]), src.text, plan_sha(src.text), src.path,
                dropped, same)


def _compile(src: Source, old: Definition, text: str, path: list[Any], want: Any,
             errors: list[DefinitionError], what: str) -> Compiled | None:
    """An expression over OLD's fields, type-checked; an error points at its token in the plan."""
    try:
        return old.env.compile(text, want=want)
    except ExpressionTypeError as exc:
        errors.append(src.error(f"{what}: {exc.message}", path))
    except ExpressionError as exc:
        line, col = src.position_in(path, exc.line, exc.col)
        errors.append(DefinitionError(f"{what}: {exc.message}", file=src.path, line=line, col=col, hint=exc.hint))
    return None


def plan_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["Plan", "plan_text", "load_plan", "plan_from_text", "check_plan", "plan_sha", "DEFAULTS"]
