"""The workflow file format: golden messages for broken files, and the shipped files.

Every file in tests/definitions/invalid/ is a small, realistic workflow with
one mistake a process designer really makes; its sibling .err holds the one
line `caseflow validate` must print for it (practice 10: a worse message is a
visible diff). The same line must come out of the library and of the CLI, and
nothing may end in a Python traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from caseflow.cli.main import cli
from caseflow.definition.compile import definition_from_text, load_definition, load_org
from caseflow.definition.model import Definition
from caseflow.definition.source import MAX_BYTES, MAX_DEPTH, parse_source
from caseflow.errors import DefinitionError, DefinitionErrors
from caseflow.sla.calendar import load_calendars

REPO = Path(__file__).resolve().parent.parent
DEFS = Path("tests/definitions")                 # as typed on the command line, from the repo root
INVALID = sorted((REPO / DEFS / "invalid").glob("*.yaml"))
SHIPPED_WORKFLOWS = ["complaint", "refund", "member_card"]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in messages are shown as given; give them relative to the repo root."""
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("CASEFLOW_WORKFLOWS", raising=False)


@pytest.fixture(scope="module")
def org():  # noqa: ANN201
    return load_org(REPO / DEFS / "org.yaml")


@pytest.fixture(scope="module")
def calendars() -> set[str]:
    return set(load_calendars(REPO / DEFS / "calendars.yaml"))


def validate(*args: str) -> tuple[int, list[str], str]:
    """`caseflow validate` in-process: exit code, stdout lines, stderr."""
    result = CliRunner().invoke(cli, ["--workflows", str(DEFS), "validate", *args], catch_exceptions=False)
    return result.exit_code, result.stdout.splitlines(), result.stderr


def load_errors(path: Path | str, org, calendars: set[str]) -> list[str]:  # noqa: ANN001
    try:
        load_definition(path, org, calendars, display=str(path))
    except DefinitionErrors as exc:
        return [str(e) for e in exc.errors]
    except DefinitionError as exc:
        return [str(exc)]
    return []


def expected_line(path: Path) -> str:
    return path.with_suffix(".err").read_text(encoding="utf-8").rstrip("\n")


# -- golden files ------------------------------------------------------------------------


def test_golden_set_covers_at_least_thirty_mistakes_each_with_its_message() -> None:
    assert len(INVALID) >= 30
    errs = sorted((REPO / DEFS / "invalid").glob("*.err"))
    assert [p.stem for p in errs] == [p.stem for p in INVALID]
    for p in errs:
        lines = p.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1, f"{p.name} must hold exactly one line"
        assert lines[0].startswith(f"{DEFS}/invalid/{p.stem}.yaml:"), p.name


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_definition_fails_with_its_golden_message(path: Path, org, calendars: set[str]) -> None:  # noqa: ANN001
    shown = DEFS / "invalid" / path.name
    errors = load_errors(shown, org, calendars)
    assert errors == [expected_line(path)]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_validate_prints_the_golden_line_and_exits_1(path: Path) -> None:
    code, lines, stderr = validate(f"{DEFS}/invalid/{path.name}")
    assert code == 1
    assert lines == [expected_line(path)]
    assert "Traceback" not in stderr and "internal error" not in stderr


def test_file_over_one_megabyte_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "generated.yaml"
    with big.open("w", encoding="utf-8") as fh:      # 10 MB of otherwise valid YAML
        fh.write("workflow: generated\nlabel_zh: 生成的流程\n")
        line = "# " + "x" * 1021 + "\n"
        for _ in range(10 * 1024):
            fh.write(line)
    size = big.stat().st_size
    assert size > 10_000_000
    expected = (f"{big}:1:1: file is {size:,} bytes; workflow files are limited to {MAX_BYTES:,} "
                "(is this the right file? a workflow is a few KB)")
    code, lines, _ = validate(str(big))
    assert (code, lines) == (1, [expected])


def test_deeply_nested_flow_collections_do_not_overflow_the_parser() -> None:
    for raw in (b"a: " + b"[" * 100_000 + b"]" * 100_000, b"a: " + b"{b: " * 50_000 + b"1" + b"}" * 50_000):
        with pytest.raises(DefinitionError) as caught:
            parse_source(raw, "deep.yaml")
        err = caught.value
        assert (err.line, err.message) == (1, f"nesting deeper than {MAX_DEPTH} levels")


# -- YAML safety and positions -------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    (b"states:\n  open: {label_zh: a}\n  open: {label_zh: b}\n",
     "x.yaml:3:3: duplicate key 'open' (first defined on line 2; YAML would silently keep only the last one)"),
    (b"states:\n  off: {label_zh: a}\n",
     "x.yaml:2:3: key 'off' is read by YAML as a boolean (YAML 1.1 reads yes/no/on/off as booleans)"
     " (quote it: 'off')"),
    (b"a: &x [1, *x]\n",
     "x.yaml:1:4: this value contains an alias to itself (a workflow file cannot be recursive; remove the alias)"),
    (b"a: b\x07c\n",
     "x.yaml:1:5: control character U+0007 is not allowed (delete it (often pasted in from another program))"),
    (b"a: 1\n---\nb: 2\n",
     "x.yaml:2:1: a second YAML document in the same file (one workflow per file; remove the '---' line)"),
    (b"when: \"severity == 'major'\n",
     "x.yaml:1:7: quoted string is never closed (add the closing quote)"),
    (b"a: !!binary aGVsbG8=\n",
     "x.yaml:1:4: YAML tag '!!binary' is not allowed "
     "(workflow files hold plain values only: text, numbers, booleans, lists and mappings)"),
])
def test_unsafe_or_ambiguous_yaml_is_pointed_at(raw: bytes, expected: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_source(raw, "x.yaml")
    assert str(caught.value) == expected


def test_merge_keys_and_a_byte_order_mark_are_fine() -> None:
    src = parse_source("\ufeffbase: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n".encode(), "x.yaml")
    assert src.data == {"base": {"x": 1}, "other": {"x": 1, "y": 2}}


MINI = """\
workflow: mini
label_zh: 迷你
data:
  type: object
  properties:
    severity: {{type: string, enum: [normal, major]}}
    amount: {{type: string, format: money}}
    note: {{type: string}}
states:
  open: {{label_zh: 开, initial: true}}
  done: {{label_zh: 完, final: true}}
transitions:
  - event: finish
    from: open
    to: done
    roles: [cs_agent]
    when: {when}
"""


@pytest.mark.parametrize("when, expected, token", [
    ('"severity == \'major\' and amount > 0"', "syntax error: unexpected 'and'", "and"),
    ("severity == 'major' && amont > 0", "unknown name 'amont'", "amont"),
    ('"amount > 12.5"', "'>' cannot compare int with double", ">"),
    ("|\n      severity == 'major' &&\n        size(note) > 0 ||\n        note.startswith('x')",
     "unknown method 'startswith()'", "startswith"),
    (">-\n      severity == 'major' &&\n      amount >= yuan(300) &&\n      severity > 2",
     "'>' cannot compare string with int", "> 2"),
    ("'note != ''x'' && severity = ''major'''", "syntax error: unexpected '='", "= ''major"),
])
def test_expression_errors_point_at_the_token_inside_the_yaml(when: str, expected: str, token: str,
                                                              org, calendars: set[str]) -> None:  # noqa: ANN001
    text = MINI.format(when=when)
    with pytest.raises(DefinitionErrors) as caught:
        definition_from_text(text, org, calendars, "mini.yaml")
    err = caught.value.errors[0]
    assert err.message == f"guard of transition 'finish': {expected}"
    assert text.splitlines()[err.line - 1][err.col - 1:].startswith(token)


# -- every error, best first ---------------------------------------------------------------


def test_validate_lists_every_error_one_per_line_in_file_order(tmp_path: Path) -> None:
    text = (REPO / DEFS / "invalid" / "unknown_role.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "refund.yaml"
    broken.write_text(text.replace("to: signing", "to: signin").replace("requires: [payment_ref]",
                                                                          "requires: [payment_no]"),
                      encoding="utf-8")
    code, lines, _ = validate(str(broken))
    assert code == 1
    assert lines == [
        f"{broken}:59:9: transition 'apply' goes to unknown state 'signin' (did you mean 'signing'?)",
        f"{broken}:81:13: transition 'pay' allows unknown role 'finace' (did you mean 'finance'?)",
        f"{broken}:83:16: transition 'pay' requires unknown field 'payment_no' (did you mean 'payment_ref'?)",
    ]
    assert validate("--all", str(broken))[1] == lines
    assert validate("--first", str(broken))[1] == lines[:1]


def test_schema_errors_come_best_first_then_in_file_order(tmp_path: Path) -> None:
    text = (REPO / DEFS / "invalid" / "missing_to.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "complaint.yaml"
    broken.write_text(text.replace("within: 24 hours", "within: 24 hrs").replace("calendar: cn_office",
                                                                                 "calender: cn_office"),
                      encoding="utf-8")
    code, lines, _ = validate(str(broken))
    assert code == 1
    assert lines == [
        f"{broken}:6:1: unknown top-level key 'calender' (did you mean 'calendar'?)",
        f"{broken}:63:5: transition 'close' is missing 'to' (add to: STATE, the state this event leads to)",
        f"{broken}:74:13: SLA 'respond_24h': within: '24 hrs' is not a duration (did you mean '24 hours'?)",
    ]


def test_validate_json_gives_errors_as_fields() -> None:
    result = CliRunner().invoke(cli, ["--json", "--workflows", str(DEFS), "validate",
                                      f"{DEFS}/invalid/unknown_role.yaml"], catch_exceptions=False)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [{
        "file": f"{DEFS}/invalid/unknown_role.yaml", "line": 81, "col": 13,
        "message": "transition 'pay' allows unknown role 'finace'", "hint": "did you mean 'finance'?"}]


def test_validate_names_a_missing_file_without_a_traceback() -> None:
    code, lines, _ = validate("tests/definitions/invalid/no_such_file.yaml")
    assert (code, lines) == (1, ["tests/definitions/invalid/no_such_file.yaml:1:1: "
                                 "cannot read file: No such file or directory"])


# -- the shipped workflows ---------------------------------------------------------------


@pytest.mark.timeout(1200)        # validate also proves the shipped properties (once per run: the record is reused)
def test_shipped_workflows_validate(shipped_verification) -> None:
    # verified once for the run (conftest.py); a violated property is never recorded as clean, so
    # validate would search again and report it here
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "workflows").glob("*.yaml"))
    result = CliRunner().invoke(cli, ["--workflows", "workflows", "validate", *files], catch_exceptions=False)
    assert result.stdout == ""
    assert result.exit_code == 0
    whole = CliRunner().invoke(cli, ["--workflows", "workflows", "validate"], catch_exceptions=False)
    assert (whole.exit_code, whole.stdout) == (0, "")


def test_shipped_workflows_pass_a_third_party_json_schema_checker() -> None:
    files = [f"workflows/{name}.yaml" for name in SHIPPED_WORKFLOWS]
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile",
                           "schemas/workflow.schema.json", *files],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", SHIPPED_WORKFLOWS)
def test_shipped_workflows_point_editors_at_the_schema(name: str) -> None:
    first = (REPO / "workflows" / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/workflow.schema.json"


# -- identity and immutability -----------------------------------------------------------


def _shipped(name: str) -> tuple[str, Definition]:
    org = load_org(REPO / "workflows" / "org.yaml")
    cals = load_calendars(REPO / "workflows" / "calendars.yaml")
    text = (REPO / "workflows" / f"{name}.yaml").read_text(encoding="utf-8")
    return text, definition_from_text(text, org, cals, f"workflows/{name}.yaml")


def test_a_definition_is_identified_by_the_sha256_of_its_text() -> None:
    text, d = _shipped("refund")
    assert d.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    org = load_org(REPO / "workflows" / "org.yaml")
    cals = load_calendars(REPO / "workflows" / "calendars.yaml")
    same = definition_from_text(text, org, cals, "elsewhere.yaml")
    assert same.sha256 == d.sha256
    i = text.index("label_zh: 退单")
    edited = text[:i] + text[i:].replace("退单", "退款", 1)       # one character
    other = definition_from_text(edited, org, cals, "workflows/refund.yaml")
    assert other.sha256 != d.sha256
    assert load_definition(REPO / "workflows" / "refund.yaml", org, cals).sha256 == d.sha256


def test_a_definition_is_frozen() -> None:
    _, d = _shipped("complaint")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.initial = "closed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del d.initial  # type: ignore[misc]
    assert d.initial == "received"
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.transitions[0].to = "closed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.states["received"].final = True  # type: ignore[misc]
    assert isinstance(d.transitions, tuple)


def test_validate_requires_the_file_name_to_be_the_workflow_id(tmp_path: Path) -> None:
    copy = tmp_path / "refund_v2.yaml"
    copy.write_text((REPO / "workflows" / "refund.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    line = next(i for i, text in enumerate(copy.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("workflow:"))
    result = CliRunner().invoke(cli, ["--workflows", "workflows", "validate", str(copy)], catch_exceptions=False)
    assert (result.exit_code, result.stdout.splitlines()) == (1, [
        f"{copy}:{line}:11: workflow id 'refund' must match the file name (rename the file to refund.yaml)"])
