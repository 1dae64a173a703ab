"""Diagrams: DOT that Graphviz renders, Mermaid in standard stateDiagram-v2 syntax.

Both show the Chinese labels designers and managers read, who signs off a
transition, and where SLA clocks and timers run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from caseflow.catalog import SHIPPED, Catalog
from caseflow.cli.main import cli
from caseflow.definition.compile import definition_from_text, load_org
from caseflow.views.diagram import to_dot, to_mermaid

from .conftest import require_cjk_font, require_graphviz

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(SHIPPED)


def caseflow(*args: str) -> list[str]:
    """The installed console script, or the same entry point through this interpreter."""
    exe = shutil.which("caseflow", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                         os.environ.get("PATH", "")]))
    return [exe, *args] if exe else [sys.executable, "-c", "from caseflow.cli.main import main; main()", *args]


def diagram(*args: str) -> str:
    result = CliRunner().invoke(cli, ["--workflows", str(SHIPPED), "diagram", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_complaint_dot_piped_into_graphviz_gives_an_svg(tmp_path: Path) -> None:
    dot = require_graphviz()
    env = {**os.environ, "CASEFLOW_WORKFLOWS": str(SHIPPED)}
    made = subprocess.run(caseflow("diagram", "complaint", "--format", "dot"), cwd=tmp_path, env=env,
                          capture_output=True, timeout=120)
    assert made.returncode == 0, made.stderr.decode()
    rendered = subprocess.run([dot, "-Tsvg"], input=made.stdout, capture_output=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr.decode()
    svg = ET.fromstring(rendered.stdout)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"客户投诉 (complaint)", "受理", "结案", "投诉判断"} <= texts


def test_every_shipped_workflow_renders_with_graphviz(catalog: Catalog) -> None:
    dot = require_graphviz()
    for d in catalog.current.values():
        rendered = subprocess.run([dot, "-Tsvg"], input=to_dot(d, catalog.org).encode("utf-8"),
                                  capture_output=True, timeout=120)
        assert rendered.returncode == 0 and rendered.stdout.startswith(b"<?xml"), (d.workflow, rendered.stderr)
        assert not rendered.stderr, (d.workflow, rendered.stderr.decode())


def test_the_dot_diagram_font_has_chinese_glyphs_so_a_png_shows_the_labels(catalog: Catalog) -> None:
    text = to_dot(catalog.get("refund"), catalog.org)
    family = re.search(r'fontname="([^",]+)', text)
    assert family, "to_dot names its font"
    require_cjk_font(family.group(1))


def test_complaint_mermaid_shows_chinese_labels_signoff_and_sla(catalog: Catalog) -> None:
    text = diagram("complaint")
    assert text.startswith("stateDiagram-v2\n")
    d = catalog.get("complaint")
    for state in d.states.values():
        assert f'state "{state.label_zh} ({state.id})" as {state.id}' in text
    assert "    [*] --> received" in text
    assert "    closed --> [*]" in text
    assert ("    proposing --> implementing : 经理批示处理方案 (approve_solution) · ✍ sign-off 签字： 客服部经理"
            in text)
    assert "    proposing --> proposing : 驳回 sign-off rejected" in text
    assert "        ⏱ SLA 24小时内回应顾客： 24 hours" in text
    assert "        ⏱ SLA 2个工作小时内转交责任部门： 2 working hours" in text


def test_refund_signoff_chain_is_shown_in_order_with_chinese_roles() -> None:
    text = diagram("refund")
    assert ("signing --> approved : 逐级签字批准 (approve) · ✍ sign-off 签字： 经手人 → 装修中层 → 区主力 → "
            "公司领导 · distinct people") in text
    dot = diagram("refund", "--format", "dot")
    assert "✍ sign-off 签字: 经手人 → 装修中层 → 区主力 → 公司领导 · distinct people" in dot
    assert '"signing" -> "applying" [label="驳回 sign-off rejected", style=dotted' in dot


def test_member_card_timers_and_system_events_are_annotated() -> None:
    text = diagram("member_card")
    assert re.search(r"⏰ timer 会员卡有效期： 1 year → expire", text)
    dot = diagram("member_card", "--format", "dot")
    assert re.search(r'-> "expired" \[label="[^"]*⏰ system \(timer\)[^"]*", style=dashed\]', dot)


_MERMAID_LINE = re.compile(
    r"^(stateDiagram-v2"
    r"|    %% .*"
    r'|    state "[^"]+" as [A-Za-z_][A-Za-z0-9_]*'
    r"|    (\[\*\]|[A-Za-z_][A-Za-z0-9_]*) --> (\[\*\]|[A-Za-z_][A-Za-z0-9_]*)( : [^:;\"#{}]+)?"
    r"|    note right of [A-Za-z_][A-Za-z0-9_]*"
    r"|        [^:;\"#{}]*(：[^:;\"#{}]*)*"
    r"|    end note)$")


@pytest.mark.parametrize("workflow", ["complaint", "refund", "member_card"])
def test_mermaid_uses_only_standard_statediagram_statements(workflow: str) -> None:
    text = diagram(workflow)
    assert text.endswith("\n")
    bad = [line for line in text.splitlines() if not _MERMAID_LINE.match(line)]
    assert bad == []


def test_a_state_named_like_a_mermaid_keyword_is_renamed_in_mermaid_only() -> None:
    org = load_org(REPO / "tests" / "definitions" / "org.yaml")
    text = ("workflow: tiny\nlabel_zh: 小流程\nstates:\n  start: {label_zh: 开始, initial: true}\n"
            "  end: {label_zh: 结束, final: true}\ntransitions:\n"
            "  - {event: finish, label_zh: 完成, from: start, to: end, roles: [cs_agent]}\n")
    d = definition_from_text(text, org, [], "tiny.yaml")
    mermaid = to_mermaid(d, org)
    assert 'state "结束 (end)" as s_end' in mermaid and "start --> s_end : 完成 (finish)" in mermaid
    assert '"start" -> "end" [label="完成 (finish)\\nroles: 客服专员"];' in to_dot(d, org)
