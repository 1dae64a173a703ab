"""CLI conventions: global options anywhere, bare `caseflow` is help, env vars in --help."""

from __future__ import annotations

import click
from click.testing import CliRunner

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
