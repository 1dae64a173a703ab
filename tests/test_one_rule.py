"""Rules that used to be written twice now live in one place and say the same everywhere."""

from __future__ import annotations

import pytest

from tests.conftest import snapshot
from tests.helpers import open_complaint

REFUSED = ("error: wang.fang may not see personal data unmasked: no role with can_unmask "
           "in org.yaml (holds: 客服专员(cs_agent))")


@pytest.mark.parametrize("command", [("show",), ("history",), ("audit", "--case")])
def test_unmask_is_one_rule_with_one_message_and_always_recorded(engine, store, run, command):
    cid = open_complaint(engine)
    before = snapshot(store, cid)
    r = run("--as", "wang.fang", *command, cid, "--unmask")
    assert (r.exit_code, r.stdout, r.stderr.strip()) == (1, "", REFUSED)
    assert snapshot(store, cid) == before
    tried = run("audit", "--attempts", "--format", "json").json()
    assert [(t["actor"], t["event"], t["error"]) for t in tried] == [("wang.fang", "unmask", "NotPermitted")]
