"""YAML and CEL safety: a workflow directory can be wrong, never dangerous.

No YAML tag may construct an object or run code; aliases, file size and
nesting are bounded (billion laughs, self-referencing aliases, generated
files); every refusal is a DefinitionError naming file:line:col, in bounded
time. The same holds for org.yaml and calendars.yaml, which sit in the same
directory and are read by every command. CEL guards are bounded in size and
nesting at load and in cost at run time: a costly guard fails closed.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from caseflow.catalog import SHIPPED, Catalog
from caseflow.cli.main import cli
from caseflow.definition.source import parse_source
from caseflow.errors import CaseflowError, DefinitionError, DefinitionErrors, GuardFailed
from caseflow.runtime.engine import Engine

from ..helpers import open_refund
from .support import driver_env, note, snapshot

LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): \S[^\n]*$")
pytestmark = pytest.mark.timeout(60)


def refused(text: str, name: str = "refund.yaml") -> DefinitionError:
    """Load `text` as a workflow file: it must be refused with a located one-line error, quickly."""
    started = time.monotonic()
    with pytest.raises((DefinitionError, DefinitionErrors)) as info:
        cat = Catalog.load(SHIPPED)
        from caseflow.definition.compile import compile_source
        compile_source(parse_source(text.encode("utf-8"), name), cat.org, set(cat.calendars))
    took = time.monotonic() - started
    err = info.value.errors[0] if isinstance(info.value, DefinitionErrors) else info.value
    assert LOCATED.match(str(err)) and err.file == name, str(err)
    note("yaml safety", documents_refused=1)
    assert took < 20, f"refusing took {took:.1f}s"
    return err


REFUND = (SHIPPED / "refund.yaml").read_text(encoding="utf-8")


def with_label(value: str) -> tuple[str, int]:
    """refund.yaml with its top-level label_zh replaced; returns (text, that line number)."""
    lines = REFUND.splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if line.startswith("label_zh:"))
    lines[i] = f"label_zh: {value}\n"
    return "".join(lines), i + 1


# -- no object construction ----------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/object/apply:builtins.exec ['open(\"{marker}\", \"w\")']",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:caseflow.definition.model.Role {{id: x, label_zh: x, can_unmask: true}}",
    "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
    "!custom value",
    "!!binary dG91Y2g=",
    "!!set {{a, b}}",
])
def test_no_yaml_tag_constructs_an_object_or_runs_code(tmp_path, payload):
    marker = tmp_path / "pwned"
    text, line = with_label(payload.format(marker=marker))
    err = refused(text)
    assert err.line == line
    assert not marker.exists()
    # the same through the command line, and in org.yaml which every command reads
    wf = tmp_path / "workflows"
    shutil.copytree(SHIPPED, wf)
    (wf / "refund.yaml").write_text(text, encoding="utf-8")
    r = CliRunner().invoke(cli, ["--workflows", str(wf), "validate", str(wf / "refund.yaml")],
                           catch_exceptions=False)
    assert r.exit_code == 1 and r.stdout.startswith(f"{wf / 'refund.yaml'}:{line}:"), r.output
    org = (SHIPPED / "org.yaml").read_text(encoding="utf-8").replace(
        "  wang.fang:    {name: 王芳,", f"  wang.fang:    {{name: {payload.format(marker=marker)},", 1)
    (wf / "refund.yaml").write_text(REFUND, encoding="utf-8")
    (wf / "org.yaml").write_text(org, encoding="utf-8")
    with pytest.raises((DefinitionError, DefinitionErrors)):
        Catalog.load(wf)
    assert not marker.exists()
    note("yaml safety", tags_refused=1)


# -- aliases, size, nesting -----------------------------------------------------------------------

def billion_laughs(levels: int = 9) -> str:
    text = 'lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, levels + 1):
        text += f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]\n"
    return text


@pytest.mark.parametrize("where", ["document", "constants", "state label"])
def test_billion_laughs_is_refused_quickly(where):
    bomb = billion_laughs()
    if where == "document":
        text = bomb
    elif where == "constants":
        text = REFUND.replace("\ndata:\n", "\nconstants:\n" + "".join(f"  {line}\n" for line in bomb.splitlines())
                              + "\ndata:\n", 1)
    else:
        text = bomb + REFUND.replace("label_zh: 申请退单", "label_zh: *lol9", 1)
    refused(text)


@pytest.mark.parametrize("text", [
    "a: &a [*a]\n",
    "a: &a {b: *a}\n",
    "base: &b {x: 1}\nm: &m {<<: [*b, *b, *b]}\nn: {<<: [*m, *m, *m, *m]}\n",
])
def test_self_referencing_and_merged_aliases_are_refused_or_bounded(text):
    refused(text)


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path):
    from caseflow.definition.source import MAX_BYTES, read_source
    path = tmp_path / "refund.yaml"
    path.write_text(REFUND + "#" * (MAX_BYTES + 1) + "\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as info:
        read_source(path, "refund.yaml")
    assert str(info.value).startswith("refund.yaml:1:1: file is ")


@pytest.mark.parametrize("shape", ["block mappings", "flow lists", "flow mappings"])
def test_deep_nesting_is_refused_not_a_recursion_error(shape):
    from caseflow.definition.source import MAX_DEPTH
    deep = {"block mappings": "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "x",
            "flow lists": "a: " + "[" * 200_000 + "]" * 200_000,
            "flow mappings": "a: " + "{a: " * 100_000 + "1" + "}" * 100_000}[shape]
    refused(deep)


def test_many_values_within_the_size_limit_are_bounded():
    from caseflow.definition.source import MAX_BYTES
    values = "".join(f"  - {i}\n" for i in range(MAX_BYTES // 10))
    refused(REFUND + "x_generated:\n" + values)


# -- the other files of a workflows directory --------------------------------------------------------

CALENDARS = (SHIPPED / "calendars.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("change", ["deep nesting", "duplicate key", "python tag", "billion laughs"])
def test_calendars_yaml_is_read_as_safely_as_a_workflow(tmp_path, launcher, change):
    """Every command reads calendars.yaml: a bad one is a located `error:` line, never a traceback or a hang.

    Run as a real process with a memory cap and a time limit: the failure mode is a hang."""
    text = {"deep nesting": CALENDARS.replace("holidays: []", "holidays: " + "[" * 50_000 + "]" * 50_000),
            "duplicate key": CALENDARS.replace("    holidays: []\n", "    holidays: []\n    holidays: [2025-05-06]\n"),
            "python tag": CALENDARS.replace("holidays: []", "holidays: !!python/object/apply:os.getpid []"),
            "billion laughs": billion_laughs() + CALENDARS.replace("holidays: []", "holidays: *lol9")}[change]
    wf = tmp_path / "workflows"
    shutil.copytree(SHIPPED, wf)
    (wf / "calendars.yaml").write_text(text, encoding="utf-8")
    env = driver_env("sqlite:///" + str(tmp_path / "unused.db"), tmp_path, None, wf, DRIVER_MAX_MEMORY_MB=1024)
    [r] = launcher.finish([launcher.start(["validate"], env)], timeout=10)
    note("yaml safety", calendar_files_tried=1)
    out = (r.stdout + r.stderr).strip()
    assert r.rc in (1, 2), (r.rc, out[:500])
    assert "Traceback" not in out and "internal error" not in out, out[:500]
    where = re.search(r"calendars\.yaml:(\d+):(\d+): ", out)
    assert where, f"no calendars.yaml:line:col in {out[:500]!r}"


# -- CEL: size, nesting, cost ------------------------------------------------------------------------

def guarded(tmp_path: Path, expr: str) -> Path:
    """The shipped workflows with one more guard on refund's start_before_work."""
    wf = tmp_path / "workflows"
    shutil.copytree(SHIPPED, wf)
    text = REFUND.replace('      - expr: "!work_started"\n',
                          f'      - expr: "{expr}"\n        message: 成本测试\n      - expr: "!work_started"\n', 1)
    assert text != REFUND
    (wf / "refund.yaml").write_text(text, encoding="utf-8")
    return wf


@pytest.mark.parametrize("expr, says", [
    (" && ".join(["amount_paid >= 0"] * 150), "characters; the limit is"),
    ("(" * 100 + "true" + ")" * 100, "nested too deeply"),
    ("[" * 60 + "]" * 60 + " == []", "nested too deeply"),
])
def test_oversized_or_overnested_guards_fail_validate_at_their_line(tmp_path, expr, says):
    wf = guarded(tmp_path, expr)
    line = next(i for i, t in enumerate((wf / "refund.yaml").read_text().splitlines(), 1) if "成本测试" in t) - 1
    r = CliRunner().invoke(cli, ["--workflows", str(wf), "validate", str(wf / "refund.yaml")], catch_exceptions=False)
    assert r.exit_code == 1, r.output
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"{wf / 'refund.yaml'}:{line}:") and says in first, first
    note("yaml safety", expressions_refused=1)


TEN = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"


@pytest.mark.parametrize("expr", [
    f"{TEN}.all(a, {TEN}.all(b, {TEN}.all(c, {TEN}.all(d, {TEN}.all(e, {TEN}.all(f, true))))))",
    f"{TEN}.exists(a, {TEN}.exists(b, {TEN}.exists(c, {TEN}.exists(d, {TEN}.exists(e, a + b + c + d + e < 0)))))",
    f"size({TEN}.map(a, {TEN}.map(b, {TEN}.map(c, {TEN}.map(d, {TEN}.map(e, {TEN})))))) > 0",
    "'" + "a" * 60 + "!'.matches('(a+)+$')",
])
def test_a_costly_guard_is_refused_at_load_or_fails_closed_quickly(tmp_path, store, clock, expr):
    wf = guarded(tmp_path, expr)
    try:
        engine = Engine(store, Catalog.load(wf), clock)
    except (DefinitionError, DefinitionErrors) as exc:
        assert LOCATED.match(str(exc)), str(exc)          # refused at load: fine, and located
        note("yaml safety", costly_guards_refused_at_load=1)
        return
    cid = open_refund(engine)
    before = snapshot(store, cid)
    started = time.monotonic()
    with pytest.raises(CaseflowError) as info:
        engine.advance(cid, "start_before_work", "wang.fang")
    assert time.monotonic() - started < 10
    assert isinstance(info.value, GuardFailed) and "成本测试" in str(info.value), str(info.value)
    assert snapshot(store, cid) == before
    note("yaml safety", costly_guards_failed_closed=1)
