"""Files named on the command line: workflow directories, `-o` outputs (issue #14, Input).

A workflows directory with a symlink to /dev/zero, a FIFO or a directory named
x.yaml used to exhaust memory, hang or exit 70; two files declaring one
workflow id were both listed; `audit -o` overwrote the live database. Each
command now reads regular files only, bounded, with the same checks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from caseflow.catalog import SHIPPED
from caseflow.store.database import Store

from ..conftest import snapshot
from .hostile import expect

MAKERS = {
    "a symlink to /dev/zero": (lambda p: p.symlink_to("/dev/zero"), "is not a regular file (a device); workflow "
                                                                       "files are plain files"),
    "a FIFO": (lambda p: os.mkfifo(p), "is not a regular file (a FIFO); workflow files are plain files"),
    "a directory": (lambda p: p.mkdir(), "is a directory, not a workflow file"),
}


def _workflows(tmp_path: Path) -> Path:
    wf = tmp_path / "wf"
    shutil.copytree(SHIPPED, wf)
    return wf


@pytest.mark.parametrize("kind", sorted(MAKERS))
@pytest.mark.parametrize("command", [("workflows",), ("--as", "wang.fang", "list"), ("diagram", "refund")])
def test_a_workflow_directory_entry_that_is_not_a_regular_file_is_refused_by_every_command(run, tmp_path, kind,
                                                                                             command):
    wf = _workflows(tmp_path)
    make, why = MAKERS[kind]
    make(wf / "x.yaml")
    expect(run(*command, workflows=wf), 2, f"error: {os.path.relpath(wf / 'x.yaml')}:1:1: {why}\n")


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_validate_names_the_entry_and_exits_1(run, tmp_path, kind):
    wf = _workflows(tmp_path)
    make, why = MAKERS[kind]
    make(wf / "x.yaml")
    r = run("validate", "--no-verify", workflows=wf)
    assert (r.exit_code, r.stdout) == (1, f"{wf / 'x.yaml'}:1:1: {why}\n")


@pytest.mark.parametrize("name", ["org.yaml", "calendars.yaml"])
def test_an_org_or_calendar_file_swapped_for_a_device_is_refused(run, tmp_path, name):
    wf = _workflows(tmp_path)
    (wf / name).unlink()
    (wf / name).symlink_to("/dev/zero")
    expect(run("--as", "wang.fang", "list", workflows=wf), 2,
           f"error: {os.path.relpath(wf / name)}:1:1: is not a regular file (a device); workflow files are plain "
           "files\n")


def test_a_huge_workflow_file_is_refused_while_reading(run, tmp_path):
    wf = _workflows(tmp_path)
    with (wf / "big.yaml").open("w") as f:
        f.write("workflow: big\n" + "#" * 5_000_000)
    expect(run("--as", "wang.fang", "list", workflows=wf), 2,
           starts=f"error: {os.path.relpath(wf / 'big.yaml')}:1:1: file is 5,000,014 bytes; workflow files are "
                  "limited to 1,000,000")


def test_two_files_with_one_workflow_id_are_refused_naming_both(run, tmp_path):
    wf = _workflows(tmp_path)
    (wf / "refund_copy.yaml").write_text((SHIPPED / "refund.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    copy, original = os.path.relpath(wf / "refund_copy.yaml"), os.path.relpath(wf / "refund.yaml")
    line = (f"workflow id 'refund' is also declared by {original} (each workflow lives in one file named after "
            "its id; remove or rename one)")
    expect(run("workflows", workflows=wf), 2, f"error: {copy}:1:1: {line}\n")
    expect(run("--as", "wang.fang", "list", workflows=wf), 2, f"error: {copy}:1:1: {line}\n")
    r = run("validate", "--no-verify", workflows=wf)
    assert (r.exit_code, r.stdout) == (1, f"{wf / 'refund_copy.yaml'}:1:1: workflow id 'refund' is also declared "
                                          f"by {wf / 'refund.yaml'} (each workflow lives in one file named after "
                                          "its id; remove or rename one)\n")


def test_a_person_id_longer_than_the_actor_column_is_refused_in_org_yaml(run, tmp_path):
    wf = _workflows(tmp_path)
    org = (wf / "org.yaml").read_text(encoding="utf-8")
    long_id = "u" * 70
    org = org.replace("  wang.fang:", f"  {long_id}:    {{name: 长, roles: [cs_agent]}}\n  wang.fang:", 1)
    (wf / "org.yaml").write_text(org, encoding="utf-8")
    expect(run("--as", long_id, "list", workflows=wf), 2, starts=f"error: {os.path.relpath(wf / 'org.yaml')}:")


# -- -o ----------------------------------------------------------------------------------------------

def _refund(run) -> str:  # noqa: ANN001
    r = run("--as", "wang.fang", "--json", "open", "refund", "--set", "order_no=D1", "--set", "customer_name=王",
            "--set", "contract_amount=1", "--set", "amount_paid=1", "--set", "work_started=false")
    assert r.exit_code == 0, r.stderr
    return r.json()["id"]


@pytest.mark.parametrize("command", [("audit", "--format", "csv"), ("export", "--format", "csv"),
                                     ("export", "--format", "ocel")])
def test_output_never_overwrites_the_database(tmp_path, clock, migrated, command):
    """SQLite only: a PostgreSQL database is no file -o could name (its run covers existing files below)."""
    from ..conftest import run as make_run
    database = tmp_path / "caseflow.db"
    run = make_run.__wrapped__(f"sqlite:///{database}", clock, migrated)
    cid = _refund(run)
    store = Store(f"sqlite:///{database}")
    before = snapshot(store, cid)
    for target in (str(database), f"{database}-wal", os.path.relpath(database)):
        for force in ((), ("--force",)):
            expect(run("--as", "jiang.wen", *command, "-o", target, *force), 2,
                   f"error: -o {target}: that is the database itself; write the output somewhere else\n")
    assert snapshot(store, cid) == before
    store.engine.dispose()


@pytest.mark.parametrize("command", [("audit", "--format", "csv"), ("export", "--format", "xes"),
                                     ("export", "--format", "ocel")])
def test_output_refuses_an_existing_file_unless_forced(run, tmp_path, command):
    _refund(run)
    out = tmp_path / ("log.sqlite" if "ocel" in command else "log.out")
    out.write_text("keep")
    expect(run("--as", "jiang.wen", *command, "-o", str(out)), 2,
           f"error: -o {out}: the file exists; add --force to replace it\n")
    assert out.read_text() == "keep"
    r = run("--as", "jiang.wen", *command, "-o", str(out), "--force")
    assert (r.exit_code, r.stderr) == (0, f"wrote {out}\n")
    assert out.read_bytes() != b"keep"
