"""Who may act, as whom, and when (issue #13, docs/security.md): each attack from outside, on both databases.

Every test here failed on the main before #13: a forged org.yaml took effect, an unknown user read
everything, `--now` moved a live database's clock, an operator opened a complaint with the penalty
already decided, the responsible person waived their own self-review, `received_at` lay in 2036.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from caseflow.catalog import SHIPPED, Catalog
from caseflow.cli.main import cli
from caseflow.errors import SimulatedTime
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import attempts, audit, orgs

from .conftest import Result, audit_rows, snapshot
from .helpers import COMPLAINT, open_complaint, open_refund

COMPLAINT_SETS = {k: v for k, v in COMPLAINT.items()}


def attempts_of(store: Store) -> list[tuple[str, str, str]]:
    with store.engine.connect() as conn:
        return [(r.actor, r.event, r.error) for r in conn.execute(sa.select(attempts).order_by(attempts.c.id))]


def live_run(db_url: str, *args: str, user: str = "", workflows: Path = SHIPPED, **env: str) -> Result:
    """The CLI on a database that is *not* a simulation (no CASEFLOW_SIMULATION, no CASEFLOW_NOW)."""
    from click.testing import CliRunner
    r = CliRunner().invoke(cli, list(args), env={"CASEFLOW_DB": db_url, "CASEFLOW_WORKFLOWS": str(workflows),
                                                 "CASEFLOW_USER": user, "CASEFLOW_NOW": None,
                                                 "CASEFLOW_SIMULATION": None, **env}, catch_exceptions=False)
    return Result(r.exit_code, r.stdout, r.stderr)


@dataclass
class Live:
    """A live database (created without --simulation) set up as docs/security.md says: on PostgreSQL the
    owner runs `db init --grant`, and each person works under a login role of their own that owns nothing."""

    owner: Store
    workflows: Path
    prefix: str
    logins: list[str] = field(default_factory=list)

    def url(self, person: str) -> str:
        if not self.owner.backend.has_logins:
            return self.owner.url
        return sa.engine.make_url(self.owner.url).set(username=login_of(self.prefix, person)).render_as_string(
            hide_password=False)

    def engine(self, person: str) -> Engine:
        return Engine(Store(self.url(person)), Catalog.load(self.workflows))

    def run(self, person: str, *args: str, user: str | None = None) -> Result:
        return live_run(self.url(person), *args, user=person if user is None else user, workflows=self.workflows)


def login_of(prefix: str, person: str) -> str:
    return f"{prefix}_{person.replace('.', '_')}"


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[Live]:
    prefix = f"cf{secrets.token_hex(3)}"
    folder = tmp_path / "office"
    shutil.copytree(SHIPPED, folder)
    org = (folder / "org.yaml").read_text(encoding="utf-8")
    org = re.sub(r"^  ([a-z]+\.[a-z]+): +\{", lambda m: f"  {m[1]}: {{db_login: {login_of(prefix, m[1])}, ", org,
                 flags=re.MULTILINE)
    (folder / "org.yaml").write_text(org, encoding="utf-8")
    owner = Store(db_url)
    people = list(Catalog.load(folder).org.people)
    if owner.backend.has_logins:
        with owner.engine.begin() as conn:
            conn.execute(sa.text(f"CREATE ROLE {prefix}_app NOLOGIN"))
            for person in people:
                conn.execute(sa.text(f"CREATE ROLE {login_of(prefix, person)} LOGIN IN ROLE {prefix}_app"))
    args = ["db", "init"] + (["--grant", f"{prefix}_app"] if owner.backend.has_logins else [])
    r = live_run(db_url, *args, workflows=folder)
    assert r.exit_code == 0, r.stderr
    yield Live(owner, folder, prefix, people)
    owner.engine.dispose()
    if owner.backend.has_logins:
        with owner.engine.begin() as conn:
            for role in [login_of(prefix, p) for p in people] + [f"{prefix}_app"]:
                conn.execute(sa.text(f"DROP OWNED BY {role}"))
                conn.execute(sa.text(f"DROP ROLE {role}"))
        owner.engine.dispose()


def forged(tmp_path: Path) -> Path:
    """A workflows directory whose org.yaml makes `boss` hold every role, plus invented signers."""
    folder = tmp_path / "forged"
    shutil.copytree(SHIPPED, folder)
    roles = sorted(Catalog.load(SHIPPED).org.roles)
    people = "\n".join(f"  fake{i}: {{name: 假{i}, roles: [{', '.join(roles)}], employment: regular}}"
                       for i in range(3))
    org = (folder / "org.yaml").read_text(encoding="utf-8")
    org = org.replace("people:\n", f"people:\n  boss: {{name: 老板, roles: [{', '.join(roles)}], "
                                   f"employment: regular}}\n{people}\n", 1)
    (folder / "org.yaml").write_text(org, encoding="utf-8")
    return folder


# -- identity ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["nobody", ""])
@pytest.mark.parametrize("command", [["list"], ["audit"], ["sla", "run"], ["audit", "checkpoint"],
                                     ["audit", "verify"], ["report", "sla", "--month", "2025-03"]])
def test_an_unknown_or_empty_user_is_refused_for_every_command_reads_included(engine, store, run, who, command):
    cid = open_complaint(engine)
    before = snapshot(store, cid)
    r = run("--as", who, *command)
    expected = "error: no user given: pass --as USER or set CASEFLOW_USER" if not who else \
        "error: unknown user 'nobody': not in org.yaml"
    assert (r.exit_code, r.stdout, r.stderr.strip()) == (1, "", expected)
    assert snapshot(store, cid) == before
    assert attempts_of(store)[-1] == (who, " ".join(command[:2]) if command[0] != "report" else "report sla",
                                      "UnknownUser")


def test_system_is_reserved_in_org_yaml(tmp_path):
    folder = tmp_path / "wf"
    shutil.copytree(SHIPPED, folder)
    org = (folder / "org.yaml").read_text(encoding="utf-8")
    (folder / "org.yaml").write_text(org.replace("people:\n", "people:\n  system: {name: 系统, roles: [auditor]}\n", 1),
                                     encoding="utf-8")
    from caseflow.errors import DefinitionErrors
    with pytest.raises(DefinitionErrors, match="person id 'system' is reserved for the engine's own actions"):
        Catalog.load(folder)


def test_every_row_records_the_os_account_and_the_org_version(engine, store):
    import getpass
    cid = open_complaint(engine)
    [row] = audit_rows(store, cid)[:1]
    with store.engine.connect() as conn:
        version = conn.execute(sa.select(orgs.c.sha256)).scalar_one()
    assert (row["actor"], row["os_user"], row["org"]) == ("wang.fang", getpass.getuser(), version)
    assert version == engine.catalog.org_sha


# -- the org chart in force ----------------------------------------------------------------------

def test_a_forged_org_yaml_changes_nobodys_roles_in_an_existing_database(engine, store, run, tmp_path):
    cid = open_refund(engine)
    before = snapshot(store, cid)
    fake = forged(tmp_path)
    r = run("--as", "boss", "advance", cid, "start_before_work", workflows=fake)
    assert (r.exit_code, r.stderr.strip()) == (1, "error: unknown user 'boss': not in org.yaml")
    r = run("--as", "boss", "open", "refund", "--set", "order_no=D-9", "--set", "customer_name=王",
            "--set", "contract_amount=1000", "--set", "amount_paid=1000", "--set", "work_started=false",
            workflows=fake)
    assert r.exit_code == 1
    assert snapshot(store, cid) == before
    # nor can anyone but a holder of can_apply_org put it in force
    r = run("--as", "boss", "org", "apply", workflows=fake)
    assert (r.exit_code, r.stderr.strip()) == (1, "error: unknown user 'boss': not in org.yaml")
    r = run("--as", "zheng.hai", "org", "apply", workflows=fake)
    assert r.exit_code == 1
    assert r.stderr.strip() == ("error: zheng.hai may not apply an org chart: no role with can_apply_org in the "
                                "org chart in force (holds: 客服部经理(cs_manager))")
    assert attempts_of(store)[-1] == ("zheng.hai", "org apply", "NotPermitted")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orgs)).scalar_one() == 1


def test_org_apply_by_an_authorised_person_is_recorded_and_takes_effect(engine, store, run, tmp_path):
    fake = forged(tmp_path)
    r = run("--as", "zhang.wei", "--json", "org", "apply", "--note", "新组织架构", workflows=fake)
    assert r.exit_code == 0, r.stderr
    applied = r.json()
    assert applied["changed"] is True and applied["version"] == 2
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(orgs).where(orgs.c.id == 2)).one()
    assert (row.applied_by, row.note, row.sha256) == ("zhang.wei", "新组织架构", applied["sha256"])
    opened = run("--as", "boss", "open", "complaint", "--set", "form_no=TS-1", "--set", "customer_name=张三",
                 "--set", "phone=13812345678", "--set", "channel=phone", "--set", "category=quality",
                 "--set", "description=漏水", "--set", "severity=normal", "--set", "received_at=2025-03-03T10:00")
    assert opened.exit_code == 0, opened.stderr
    [first] = audit_rows(store, opened.stdout.strip())[:1]
    assert first["org"] == applied["sha256"]


# -- time ----------------------------------------------------------------------------------------

def test_now_on_a_live_database_is_refused(live):
    cid = live.engine("wang.fang").open("refund", "wang.fang", {
        "order_no": "D-1", "customer_name": "王建国", "contract_amount": "1000", "amount_paid": "1000",
        "work_started": "false"})["id"]
    before = snapshot(live.owner, cid)
    r = live.run("jiang.wen", "--now", "2030-01-01T00:00Z", "sla", "run")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("error: --now is only honoured on simulation databases; ")
    assert snapshot(live.owner, cid) == before
    ran = live.run("jiang.wen", "--json", "sla", "run")
    assert (ran.exit_code, ran.json()["handled"]) == (0, 0)           # the real clock: nothing is due yet
    with pytest.raises(SimulatedTime, match="only honoured on simulation databases"):
        Engine(Store(live.url("wang.fang")), Catalog.load(live.workflows), clock=lambda: None)


def test_simulation_is_fixed_at_creation(live):
    r = live.run("jiang.wen", "--simulation", "db", "init")
    assert r.exit_code == 2
    assert "--simulation applies only when a database is created" in r.stderr and "is a live database" in r.stderr


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)   # PostgreSQL logins and roles only
def test_on_live_postgresql_the_person_is_the_login_and_a_different_as_is_refused(live):
    assert live.owner.backend.has_logins
    r = live.run("wang.fang", "--json", "open", "refund", "--set", "order_no=D-2", "--set", "customer_name=王",
                 "--set", "contract_amount=1000", "--set", "amount_paid=1000", "--set", "work_started=false",
                 user="")
    assert r.exit_code == 0, r.stderr                                # no --as: she is who she logged in as
    assert audit_rows(live.owner, r.json()["id"])[0]["actor"] == "wang.fang"
    r = live.run("wang.fang", "list", user="jiang.wen")
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"error: --as jiang.wen refused: database login '{login_of(live.prefix, 'wang.fang')}'"
                                " is wang.fang; on PostgreSQL each operator acts under their own login")


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)   # PostgreSQL logins and roles only
def test_the_runtime_role_can_neither_disable_triggers_nor_rewrite_the_log(live):
    assert live.owner.backend.has_logins
    cid = live.engine("wang.fang").open("refund", "wang.fang", {
        "order_no": "D-3", "customer_name": "王建国", "contract_amount": "1000", "amount_paid": "1000",
        "work_started": "false"})["id"]
    runtime = sa.create_engine(live.url("wang.fang"))
    for statement in ["ALTER TABLE audit DISABLE TRIGGER USER", "ALTER TABLE audit DISABLE TRIGGER ALL",
                      "UPDATE audit SET actor = 'nobody'", "DELETE FROM audit", "TRUNCATE audit",
                      "DROP TABLE audit CASCADE", "UPDATE orgs SET applied_by = 'x'",
                      "INSERT INTO settings (key, value, created_at) VALUES ('x', 'y', 'z')"]:
        with runtime.connect() as conn, pytest.raises(sa.exc.ProgrammingError) as refused:
            conn.execute(sa.text(statement))
        assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value), statement
    runtime.dispose()
    assert [r["actor"] for r in audit_rows(live.owner, cid)] == ["wang.fang"]
    ok = live.run("jiang.wen", "--json", "audit", "verify")
    assert ok.exit_code == 0, ok.stdout + ok.stderr


# -- opening: deny by default ----------------------------------------------------------------------

DOWNSTREAM = {"responsible_person": "wang.fang", "penalty_tier": "none", "penalty_decision": "免于处罚",
              "customer_signature": "张三", "summary": "已处理"}


@pytest.mark.parametrize("field_name", sorted(DOWNSTREAM))
def test_opening_a_complaint_with_a_field_a_later_step_owns_is_refused(engine, store, run, field_name):
    r = run("--as", "wang.fang", "open", "complaint", *[a for k, v in COMPLAINT_SETS.items()
                                                         for a in ("--set", f"{k}={v}")],
            "--set", f"{field_name}={DOWNSTREAM[field_name]}")
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr.startswith(f"error: --set {field_name}: not accepted by opening a complaint case")
    assert r.stderr.strip().endswith("it accepts: address, category, channel, customer_name, description, form_no, "
                                     "phone, received_at, severity)")
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one() == 0
    assert attempts_of(store)[-1] == ("wang.fang", "open", "UsageError")


def test_a_data_file_may_not_prefill_downstream_fields_either(engine, store, tmp_path):
    from caseflow.errors import UsageError
    with pytest.raises(UsageError, match=r"--data: penalty_decision, responsible_person not accepted when "
                                         r"opening a complaint case \(it accepts: address, category, "):
        engine.open("complaint", "wang.fang", COMPLAINT_SETS,
                    {"responsible_person": "wang.fang", "penalty_decision": "免于处罚"})


@pytest.mark.parametrize(("workflow", "accepted"), [
    ("complaint", {"form_no", "customer_name", "phone", "address", "channel", "category", "description",
                   "severity", "received_at"}),
    ("refund", {"order_no", "customer_name", "contract_amount", "amount_paid", "work_started"}),
    ("member_card", {"name", "phone"}),      # tier, birth date, ID number: at issue (processes.md §3)
    ("self_review", {"form_no", "responsible_person", "root_cause"}),
    ("followup_visit", {"form_no", "customer_name", "phone", "category", "complaint_valid"}),
])
def test_each_shipped_workflow_accepts_at_open_only_what_nothing_downstream_writes(shipped_catalog, workflow,
                                                                                   accepted):
    d = shipped_catalog.get(workflow)
    assert d.open_accepts == accepted
    downstream = {f for t in d.transitions for f in t.accepts} | {f for t in d.transitions for f, _ in t.effects}
    assert not (d.open_accepts & downstream) - set(d.data_schema.get("required", []))


# -- conflict of interest ------------------------------------------------------------------------------

def test_the_responsible_person_may_not_waive_their_own_self_review(engine, store):
    from caseflow.errors import ConflictOfInterest
    parent = open_complaint(engine)
    cid = engine.open("self_review", "zhou.jie", {"form_no": "TS-1", "responsible_person": "zheng.hai"})["id"]
    before = snapshot(store, cid)
    with pytest.raises(ConflictOfInterest) as refused:
        engine.advance(cid, "waive", "zheng.hai", {"waive_reason": "本人免交"})
    assert str(refused.value) == (f"case {cid}: cannot waive in state pending: zheng.hai is the "
                                  "责任人（员工账号）(responsible_person) of this case and may not decide about "
                                  "themselves (not_by)")
    assert snapshot(store, cid) == before
    assert attempts_of(store)[-1] == ("zheng.hai", "waive", "ConflictOfInterest")
    assert engine.advance(cid, "waive", "li.qiang", {"waive_reason": "施工队责任，按合同处理"})["state"] == "waived"
    assert parent


def test_a_manager_named_responsible_may_not_approve_classify_or_penalise_his_own_complaint(engine, store):
    from caseflow.errors import ConflictOfInterest
    cid = open_complaint(engine)
    engine.advance(cid, "assess", "chen.jing")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "customer_service"})
    engine.advance(cid, "find_cause", "zhou.jie", {"root_cause": "经理处理不当", "responsible_person": "zheng.hai",
                                                    "solution": "致歉并补偿"})
    with pytest.raises(ConflictOfInterest, match="zheng.hai is the 责任人"):
        engine.sign(cid, "zheng.hai")
    with pytest.raises(ConflictOfInterest):
        engine.sign(cid, "zheng.hai", reject=True, note="不同意")
    engine.sign(cid, "li.qiang")
    engine.advance(cid, "customer_accepts", "wang.fang", {"customer_signature": "张三"})
    with pytest.raises(ConflictOfInterest):
        engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": "C"})
    engine.advance(cid, "assign_responsibility", "li.qiang", {"responsibility_code": "C"})
    with pytest.raises(ConflictOfInterest):
        engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "本人免罚"})
    assert engine.advance(cid, "decide_penalty", "li.qiang", {"penalty_decision": "罚款500元",
                                                              "penalty_fine": "500"})["state"] == "reviewing"


# -- time ----------------------------------------------------------------------------------------------

def test_received_at_in_the_future_is_refused(engine, store, clock):
    from caseflow.errors import TimeRefused
    with pytest.raises(TimeRefused, match=r"received_at 2036-03-03T02:00:00(\.000)?Z lies in the future"):
        engine.open("complaint", "wang.fang", {**COMPLAINT_SETS, "received_at": "2036-03-03T10:00"})
    assert attempts_of(store)[-1] == ("wang.fang", "open", "TimeRefused")
    clock.advance(minutes=1)                                # a little clock skew is fine
    assert engine.open("complaint", "wang.fang", {**COMPLAINT_SETS, "received_at": "2025-03-03T10:05"})["id"]


def test_no_action_takes_effect_before_the_cases_last_action(engine, store, clock):
    from caseflow.errors import TimeRefused
    cid = open_complaint(engine)
    clock.advance(hours=30)
    engine.advance(cid, "assess", "chen.jing")
    before = snapshot(store, cid)
    clock.advance(hours=-29)                                # a backdated accept would make both SLAs "met"
    with pytest.raises(TimeRefused, match="is before the case's last action at"):
        engine.advance(cid, "accept", "wang.fang", {"responsible_dept": "engineering"})
    assert snapshot(store, cid) == before


# -- reads ---------------------------------------------------------------------------------------------

CARD = {"name": "李娜", "phone": "13900000001"}


def test_a_role_reads_only_the_workflows_it_works_on(engine, store, run):
    card = engine.open("member_card", "xie.na", CARD)["id"]
    complaint = open_complaint(engine)
    r = run("--as", "fu.qiang", "show", card)                    # 市场销售部 has no part in member cards
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr.strip() == ("error: fu.qiang may not read member_card cases: none of its read_roles "
                                "(holds: 市场销售部(sales_dept))")
    assert attempts_of(store)[-1] == ("fu.qiang", "show", "NotPermitted")
    assert run("--as", "fu.qiang", "history", card).exit_code == 1
    assert run("--as", "fu.qiang", "list", "--workflow", "member_card").exit_code == 1
    listed = run("--as", "fu.qiang", "--json", "list").json()
    assert [c["id"] for c in listed] == [complaint]              # complaints may be forwarded to sales
    assert run("--as", "fu.qiang", "show", complaint).exit_code == 0
    assert {c["id"] for c in run("--as", "jiang.wen", "--json", "list").json()} == {card, complaint}
    assert run("--as", "jiang.wen", "show", card).exit_code == 0  # the auditor (can_audit) reads everything


@pytest.mark.parametrize("command", [["audit"], ["audit", "--format", "csv"], ["audit", "verify"],
                                     ["audit", "checkpoint"], ["report", "sla", "--month", "2025-03"],
                                     ["report", "signoffs"], ["sla", "status"]])
def test_the_audit_log_and_its_exports_need_can_audit(engine, store, run, command):
    open_complaint(engine)
    r = run("--as", "zheng.hai", *command)
    assert (r.exit_code, r.stdout) == (1, "")
    assert r.stderr.startswith("error: zheng.hai may not ") and r.stderr.strip().endswith(
        "no role with can_audit in org.yaml (holds: 客服部经理(cs_manager))")
    assert attempts_of(store)[-1][0::2] == ("zheng.hai", "NotPermitted")
    assert run("--as", "jiang.wen", *command).exit_code == 0
