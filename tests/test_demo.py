"""`caseflow demo` is the README's first command: it must run clean on both backends."""

from __future__ import annotations

import re

from .conftest import case_row


def test_demo_walks_all_three_processes_to_their_ends(run, store):
    r = run("demo")
    assert r.exit_code == 0, r.stderr + r.stdout[-2000:]
    ids = dict.fromkeys(re.findall(r"\b(REF|COM|MEM|SEL|FOL)-[0-9A-F]{8}\b", r.stdout))
    states = {}
    for m in re.finditer(r"\b((?:REF|COM|MEM)-[0-9A-F]{8})\b", r.stdout):
        states[m.group(1)] = case_row(store, m.group(1))["state"]
    assert sorted(states.values()) == sorted(
        ["paid", "paid", "withdrawn", "closed", "closed", "active", "declined"]), states
    assert ids
    for heading in ("退单 refund", "投诉 complaint", "会员卡 member card", "顾客投诉分类统计表"):
        assert heading in r.stdout
    assert "✘ a second card for the same ID number is refused" in r.stdout
