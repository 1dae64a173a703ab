"""`caseflow init` and `caseflow schema`: a first directory that validates, schemas editors can find."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from caseflow.catalog import SHIPPED
from caseflow.cli.main import cli
from caseflow.definition.compile import load_org
from caseflow.errors import CalendarError, DefinitionErrors
from caseflow.sla.calendar import load_calendars

MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def invoke(*args: str, cwd: Path) -> tuple[int, str, str]:
    """The CLI in-process, run from `cwd` (init writes relative to it)."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        r = CliRunner().invoke(cli, list(args), env={"CASEFLOW_WORKFLOWS": None, "CASEFLOW_DB": None},
                               catch_exceptions=False)
    finally:
        os.chdir(old)
    return r.exit_code, r.stdout, r.stderr


def test_init_writes_a_directory_that_validates_and_whose_modelines_point_at_files_there(tmp_path):
    code, out, err = invoke("init", "wf", cwd=tmp_path)
    assert code == 0, err
    assert "next: caseflow --workflows wf validate" in out
    yamls = sorted(p.name for p in (tmp_path / "wf").glob("*.yaml"))
    assert yamls == sorted(p.name for p in SHIPPED.glob("*.yaml"))
    for path in (tmp_path / "wf").glob("*.yaml"):
        target = MODELINE.match(path.read_text(encoding="utf-8").splitlines()[0])
        assert target, path.name
        assert (path.parent / target.group(1)).is_file(), (path.name, target.group(1))
    code, out, err = invoke("--workflows", "wf", "validate", cwd=tmp_path)
    assert (code, out, err) == (0, "", "ok: 5 workflow file(s) valid\n")


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path):
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "org.yaml").write_text("mine\n", encoding="utf-8")
    code, out, err = invoke("init", "wf", cwd=tmp_path)
    assert (code, out) == (1, "")
    assert err == ("error: wf/org.yaml already exists; nothing was written (use --force to overwrite)\n")
    assert [p.name for p in (tmp_path / "wf").iterdir()] == ["org.yaml"]
    assert invoke("init", "wf", "--force", cwd=tmp_path)[0] == 0
    assert (tmp_path / "wf" / "org.yaml").read_text(encoding="utf-8").startswith("# yaml-language-server")


@pytest.mark.parametrize("kind", ["workflow", "org", "calendars"])
def test_schema_prints_the_shipped_json_schema(tmp_path, kind):
    code, out, _ = invoke("schema", kind, cwd=tmp_path)
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert out == (SHIPPED.parent / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8")


def test_schema_without_argument_is_the_workflow_schema(tmp_path):
    assert invoke("schema", cwd=tmp_path)[1] == invoke("schema", "workflow", cwd=tmp_path)[1]


@pytest.mark.parametrize("kind", ["org", "calendars"])
def test_shipped_org_and_calendars_pass_a_third_party_json_schema_checker(kind):
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile",
                           str(SHIPPED.parent / "schemas" / f"{kind}.schema.json"), str(SHIPPED / f"{kind}.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = (SHIPPED / f"{kind}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# yaml-language-server: $schema=../schemas/{kind}.schema.json"


def test_org_yaml_is_checked_against_its_schema_with_line_and_column(tmp_path):
    text = (SHIPPED / "org.yaml").read_text(encoding="utf-8").replace(
        "wang.fang:    {name: 王芳, roles: [cs_agent], employment: regular}",
        "wang.fang:    {name: 王芳, roles: [cs_agent], employment: trial}")
    (tmp_path / "org.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionErrors) as caught:
        load_org(tmp_path / "org.yaml")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "employment: trial" in t)
    assert str(caught.value) == (f"{tmp_path / 'org.yaml'}:{line}:59: person 'wang.fang': employment: 'trial' "
                                 "is not allowed (one of: probation, regular)")


def test_calendars_yaml_is_checked_against_its_schema_with_line_and_column(tmp_path):
    text = (SHIPPED / "calendars.yaml").read_text(encoding="utf-8").replace("label_zh: 客服部工作时间", "label_zh: 5")
    (tmp_path / "calendars.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError) as caught:
        load_calendars(tmp_path / "calendars.yaml")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "label_zh: 5" in t)
    assert str(caught.value) == (f"{tmp_path / 'calendars.yaml'}:{line}:15: calendar 'cn_office': label_zh "
                                 "should be text, not a number (quote it: '5')")
