"""CLI conventions: global options anywhere, bare `caseflow` is help, env vars in --help."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from caseflow.catalog import SHIPPED
from caseflow.cli.main import cli

REFUND = ["--set", "order_no=D-1", "--set", "customer_name=王建国", "--set", "contract_amount=86000",
          "--set", "amount_paid=20000", "--set", "work_started=false"]


def test_global_options_after_the_subcommand_mean_the_same_as_before_it(run):
    case_id = run("open", "refund", *REFUND, "--as", "wang.fang").stdout.strip()
    after = run("show", case_id, "--json", "--as", "wang.fang")
    before = run("--as", "wang.fang", "--json", "show", case_id)
    assert after.exit_code == before.exit_code == 0, after.stderr + before.stderr
    assert after.json() == before.json()
    assert after.json()["id"] == case_id


def test_a_global_option_after_the_subcommand_wins_over_one_before_it(run):
    case_id = run("--as", "wang.fang", "open", "refund", *REFUND).stdout.strip()
    r = run("--as", "nobody", "show", case_id, "--as", "wang.fang")
    assert r.exit_code == 0, r.stderr
    r = run("--as", "wang.fang", "show", case_id, "--as", "nobody")
    assert (r.exit_code, r.stderr) == (1, "error: unknown user 'nobody': not in org.yaml\n")


def test_global_options_work_after_nested_subcommands(run):
    r = run("sla", "run", "--json")
    assert r.exit_code == 0, r.stderr
    assert "fired" in r.json() or isinstance(r.json(), dict)


def test_bare_caseflow_prints_its_help_and_exits_0():
    r = CliRunner().invoke(cli, [])
    assert r.exit_code == 0
    assert r.stdout.startswith("Usage: caseflow [OPTIONS] COMMAND [ARGS]...")
    assert "error:" not in r.stdout + r.stderr
    assert "Commands:" in r.stdout


def test_every_help_names_the_environment_variable_of_each_global_option():
    def walk(group: click.Group, path: list[str]):
        yield path
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                yield from walk(command, path + [name])
            else:
                yield path + [name]
    for path in walk(cli, []):
        text = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200).stdout
        for var in ("CASEFLOW_DB", "CASEFLOW_WORKFLOWS", "CASEFLOW_USER", "CASEFLOW_NOW"):
            assert f"[env var: {var}]" in text, (path, var)


# -- list -----------------------------------------------------------------------------------------

def test_list_has_headers_local_time_and_masked_summary(run):
    case_id = run("--as", "wang.fang", "open", "refund", *REFUND).stdout.strip()
    r = run("list")
    assert r.exit_code == 0, r.stderr
    head, rule, row = r.stdout.splitlines()
    assert head.split() == ["案件", "流程", "状态", "摘要", "更新时间"]
    assert set(rule) <= {"-", " "}
    assert row.split() == [case_id, "退单", "申请退单(requested)", "D-1", "王**", "2025-03-03", "10:00"]
    assert run("--json", "list").json()[0]["summary"] == {"order_no": "D-1", "customer_name": "王**"}


def test_list_columns_line_up_with_chinese_text(run):
    run("--as", "wang.fang", "open", "refund", *REFUND)
    r = run("--as", "zhao.min", "open", "complaint", "--set", "form_no=TS-1", "--set", "customer_name=张三丰",
            "--set", "phone=13900000000", "--set", "channel=phone", "--set", "category=quality",
            "--set", "description=漏水", "--set", "severity=normal", "--set", "received_at=2025-03-03T09:00")
    assert r.exit_code == 0, r.stderr
    from rich.cells import cell_len
    lines = run("list").stdout.splitlines()
    starts = {cell_len(line[:line.index("2025-")]) for line in lines[2:]}
    assert len(starts) == 1, lines            # the time column starts at the same terminal column


def test_list_accepts_a_state_label_and_refuses_an_unknown_state_with_a_suggestion(run):
    case_id = run("--as", "wang.fang", "open", "refund", *REFUND).stdout.strip()
    assert [r["id"] for r in run("--json", "list", "--state", "申请退单").json()] == [case_id]
    r = run("list", "--workflow", "refund", "--state", "requestd")
    assert (r.exit_code, r.stdout) == (4, "")
    assert r.stderr == "error: state \"requestd (did you mean 'requested'?)\" not found\n"
    r = run("list", "--state", "展开调差")
    assert r.exit_code == 4 and "did you mean '展开调查'?" in r.stderr
    r = run("list", "--workflow", "refnd")
    assert r.exit_code == 4 and "did you mean 'refund'?" in r.stderr


def test_list_limit(run):
    for _ in range(3):
        run("--as", "wang.fang", "open", "refund", *REFUND)
    r = run("--json", "list", "--limit", "2")
    assert len(r.json()) == 2
    assert run("list", "--limit", "2").stderr == "(showing the 2 most recent; there may be more: --limit N)\n"


def test_open_names_every_missing_required_field_in_one_refusal(run):
    r = run("--as", "wang.fang", "open", "refund", "--set", "order_no=D-1")
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr == ("error: cannot open refund: data would be invalid: 'customer_name', 'contract_amount', "
                        "'amount_paid', 'work_started' are required properties\n")


# -- completion -----------------------------------------------------------------------------------

def complete(args: list[str], incomplete: str, env: dict[str, str], monkeypatch) -> list[str]:
    from click.shell_completion import ShellComplete
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from caseflow.cli.app import PREPARE
    for prepare in PREPARE:
        prepare(cli)
    return [c.value for c in ShellComplete(cli, {}, "caseflow", "_CASEFLOW_COMPLETE").get_completions(args, incomplete)]


def test_tab_completes_workflows_cases_events_possible_now_and_users(run, db_url, monkeypatch):
    case_id = run("--as", "wang.fang", "open", "refund", *REFUND).stdout.strip()
    env = {"CASEFLOW_DB": db_url, "CASEFLOW_WORKFLOWS": str(SHIPPED)}
    assert complete(["open"], "", env, monkeypatch) == ["complaint", "followup_visit", "member_card", "refund",
                                                        "self_review"]
    assert complete(["list", "--workflow"], "me", env, monkeypatch) == ["member_card"]
    assert complete(["show"], "REF", env, monkeypatch) == [case_id]
    assert complete(["advance", case_id], "", env, monkeypatch) == ["start_before_work", "start_after_work",
                                                                    "withdraw"]
    assert complete(["--as"], "wang", env, monkeypatch) == ["wang.fang"]
    assert complete(["show", case_id, "--as"], "zh", env, monkeypatch) == ["zhao.min", "zhou.jie", "zheng.hai",
                                                                          "zhang.wei"]


def test_tab_never_creates_a_database_or_prints_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"CASEFLOW_DB": f"sqlite:///{tmp_path / 'none.db'}", "CASEFLOW_WORKFLOWS": str(tmp_path / "nowhere")}
    assert complete(["show"], "", env, monkeypatch) == []
    assert complete(["open"], "", env, monkeypatch) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_each_shell(shell):
    r = CliRunner().invoke(cli, ["completion", shell])
    assert r.exit_code == 0
    assert "_CASEFLOW_COMPLETE" in r.stdout and f"{shell}_complete" in r.stdout


# -- demo -----------------------------------------------------------------------------------------

def test_demo_twice_in_one_directory_gives_two_fresh_databases(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"CASEFLOW_DB": None, "CASEFLOW_WORKFLOWS": None, "CASEFLOW_USER": None, "CASEFLOW_NOW": None}
    first = CliRunner().invoke(cli, ["demo"], env=env, catch_exceptions=False)
    second = CliRunner().invoke(cli, ["demo"], env=env, catch_exceptions=False)
    assert (first.exit_code, second.exit_code) == (0, 0), first.stderr + second.stderr
    assert first.stdout.splitlines()[0] == "demo database: sqlite:///caseflow-demo-1.db (a fresh file for this run)"
    assert "done: 6 cases in sqlite:///caseflow-demo-2.db" in second.stdout
    assert "next: caseflow --db sqlite:///caseflow-demo-2.db --as wang.fang show REF-" in second.stdout
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["caseflow-demo-1.db", "caseflow-demo-2.db"]


def test_demo_on_a_named_database_that_has_cases_refuses_before_changing_anything(run):
    run("--as", "wang.fang", "open", "refund", *REFUND)
    before = run("--json", "list").json()
    r = run("demo")
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr.startswith("error: the demo needs an empty database; ") and "already has 1 case(s)" in r.stderr
    assert run("--json", "list").json() == before


def test_validate_json_after_the_subcommand_as_docs_format_md_says(tmp_path):
    bad = tmp_path / "refund.yaml"
    bad.write_text((SHIPPED / "refund.yaml").read_text(encoding="utf-8").replace("to: paid", "to: payed"),
                   encoding="utf-8")
    r = CliRunner().invoke(cli, ["--workflows", str(SHIPPED), "validate", str(bad), "--json"])
    assert r.exit_code == 1
    errors = json.loads(r.stdout)
    assert errors and {"file", "line", "col", "message", "hint"} <= set(errors[0])
