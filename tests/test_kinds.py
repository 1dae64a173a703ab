"""The registry of action kinds: the schema file agrees with it, and a new kind needs only itself."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from caseflow.audit.query import KIND_ZH
from caseflow.catalog import Catalog
from caseflow.definition import kinds
from caseflow.definition.kinds import ActionKind, ActionRun
from caseflow.definition.model import Action
from caseflow.definition.schema import SCHEMA_PATH
from caseflow.errors import DefinitionErrors
from caseflow.runtime.engine import Engine
from tests.conftest import SHIPPED
from tests.helpers import COMPLAINT


def test_the_schema_file_says_what_the_registry_says():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$defs"]["action"] == kinds.action_schema()
    assert list(kinds.KINDS) == ["escalate", "notify", "fire", "spawn"]


def test_every_kind_has_its_label_in_the_audit_rendering():
    for k in kinds.KINDS.values():
        assert k.label_zh and KIND_ZH[k.entry_kind] == k.label_zh
    assert kinds.one_of_names() == "escalate, notify, fire or spawn"


# -- a kind this test adds, as the recipe in docs/architecture.md does -------------------------

class Tag(ActionKind):
    """`{tag: 文本}`: a row of kind `tag` in the audit log."""

    name, entry_kind, label_zh = "tag", "tag", "标记"
    fragment = {"type": "string", "minLength": 1, "description": "Mark the case in the audit log."}

    def run(self, action: Action, run: ActionRun) -> None:
        run.record(self.entry_kind, "tag", {}, action.value)


@pytest.fixture
def tagged(tmp_path):
    folder = tmp_path / "workflows"
    shutil.copytree(SHIPPED, folder)
    path = folder / "complaint.yaml"
    text = path.read_text(encoding="utf-8")
    marked = text.replace("    actions:\n      # 《客户问题处理表》转给相关问题处理部门 [002 §4.5.2]\n",
                          "    actions:\n      - {tag: 投诉成立}\n", 1)
    assert marked != text
    path.write_text(marked, encoding="utf-8")
    return folder


def test_a_kind_registered_from_outside_is_validated_compiled_run_and_labelled(tagged, store, clock, run):
    with kinds.registered(Tag()):
        engine = Engine(store, Catalog.load(tagged), clock)
        cid = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
        engine.advance(cid, "assess", "wang.fang")
        engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
        rows: list[dict[str, Any]] = run("--json", "audit", "--case", cid, workflows=tagged).json()
        tag = [r for r in rows if r["kind"] == "tag"]
        assert [(r["event_zh"], r["note"]) for r in tag] == [("标记", "投诉成立")]
        assert "tag" in kinds.action_schema()["properties"]
    # without the kind the same file is refused, in the designer's terms
    with pytest.raises(DefinitionErrors) as info:
        Catalog.load(tagged).get("complaint")
    assert "tag" in str(info.value)


def test_an_action_with_no_kind_names_every_registered_kind(tagged):
    path = tagged / "complaint.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("{tag: 投诉成立}", "{message: 无}"), encoding="utf-8")
    with pytest.raises(DefinitionErrors, match="an action needs one of escalate, notify, fire or spawn"):
        Catalog.load(tagged).get("complaint")
    with kinds.registered(Tag()):
        with pytest.raises(DefinitionErrors, match="an action needs one of escalate, notify, fire, spawn or tag"):
            Catalog.load(tagged).get("complaint")
