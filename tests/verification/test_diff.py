"""`caseflow diff`: structural changes by id, the guard witness and the shortest behavioural difference."""

from __future__ import annotations

import json

from click.testing import CliRunner

from caseflow.cli.main import cli


def test_diff_of_a_changed_guard_shows_it_its_witness_and_the_first_refused_action() -> None:
    r = CliRunner().invoke(cli, ["--workflows", "workflows", "diff", "--json", "refund",
                                 "tests/verification/mutants/strict_refund.yaml"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [(c["kind"], c["id"], c["change"]) for c in out["changes"]] == [
        ("transition", "apply (applying → signing).guards", "changed")]
    [w] = out["guard_witnesses"]
    assert w["allowed_by"] == "old" and w["inputs"]["refund_amount"] == w["data"]["amount_paid"]
    behaviour = out["behaviour"]
    assert behaviour["accepted_by"] == "old" and behaviour["action"] == "apply"
    assert behaviour["moves"][-1]["event"] == "apply" and behaviour["moves"][0]["kind"] == "open"


def test_a_version_has_no_difference_with_itself() -> None:
    r = CliRunner().invoke(cli, ["--workflows", "workflows", "diff", "--bound", "4", "refund",
                                 "workflows/refund.yaml"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "(no structural change)" in r.stdout and "behaviour: no difference within bound 4" in r.stdout
