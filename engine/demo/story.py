"""`caseflow demo`: sample cases through all three shipped processes, narrated.

It drives the same library API operators use (no shortcuts), on a simulated
clock so SLAs can breach in seconds, and prints each step with the Chinese
labels an operator sees — including refusals, which are part of the story.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from caseflow.demo.card import member_card_story
from caseflow.errors import CaseflowError, DemoNeedsEmptyDatabase
from caseflow.runtime.engine import Engine
from caseflow.views.reports import complaint_statistics, render_complaint_statistics

SH = ZoneInfo("Asia/Shanghai")


class Narrator:
    """Runs steps on the engine and prints what happened, one line each."""

    def __init__(self, engine: Engine, echo: Callable[[str], None], start: datetime) -> None:
        self.engine, self.echo = engine, echo
        self.now = start
        engine.clock = lambda: self.now
        self.org = engine.catalog.org
        self.unexpected: list[str] = []     # refusals the story did not mean to show

    def _refused(self, line: str, expected: bool) -> bool:
        self.echo(line)
        if not expected:
            self.unexpected.append(line)
        return False

    def wait(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def at(self, local: str) -> None:
        self.now = datetime.fromisoformat(local).replace(tzinfo=SH).astimezone(UTC)

    def _who(self, user: str) -> str:
        p = self.org.people.get(user)
        return f"{p.name}({user})" if p else user

    def _stamp(self) -> str:
        return self.now.astimezone(SH).strftime("%m-%d %a %H:%M")

    def title(self, text: str) -> None:
        self.echo(f"\n== {text} ==")

    def say(self, text: str) -> None:
        self.echo(f"   {text}")

    def open(self, workflow: str, user: str, **sets: Any) -> str:
        r = self.engine.open(workflow, user, {k: str(v) for k, v in sets.items()})
        d = self.engine.catalog.get(workflow)
        self.echo(f"  [{self._stamp()}] {self._who(user)} 新建 {d.label_zh} {r['id']} → {d.label(r['state'])}")
        return r["id"]

    def do(self, cid: str, event: str, user: str, note: str | None = None, refused: bool = False,
           **sets: Any) -> bool:
        d = self.engine.read_case(cid).definition
        try:
            r = self.engine.advance(cid, event, user, {k: str(v) for k, v in sets.items()}, note)
        except CaseflowError as exc:
            return self._refused(f"  [{self._stamp()}] ✘ {self._who(user)} {d.event_label(event)}: 拒绝 — {exc}",
                                 refused)
        self.echo(f"  [{self._stamp()}] {self._who(user)} {d.event_label(event)} → {d.label(r['state'])}")
        return True

    def sign(self, cid: str, user: str, reject: bool = False, note: str | None = None,
             refused: bool = False) -> bool:
        try:
            r = self.engine.sign(cid, user, reject, note)
        except CaseflowError as exc:
            return self._refused(f"  [{self._stamp()}] ✘ {self._who(user)} 签字: 拒绝 — {exc}", refused)
        d = self.engine.read_case(cid).definition
        verb = "驳回" if reject else "签字"
        tail = f" «{note}»" if note else ""
        self.echo(f"  [{self._stamp()}] {self._who(user)} {verb}{tail} → {d.label(r['state'])}")
        return True

    def field(self, cid: str, *names: str) -> str:
        data = self.engine.read_case(cid).data
        return ", ".join(f"{n}={data.get(n)}" for n in names)

    def sweep(self, case_id: str | None = None) -> None:
        """Fire due timers, as cron would with `caseflow sla run`, and show what they recorded."""
        from caseflow.runtime.sweep import sweep
        report = sweep(self.engine, self.now)
        self.say(f"⏱ caseflow sla run @ {self._stamp()}: {report.breached} breached, {report.fired} timers fired, "
                 f"{report.warnings} warnings")
        if case_id:
            from caseflow.audit.chain import history
            from caseflow.definition.evaluate import stamp
            with self.engine.store.read() as conn:
                rows = [r for r in history(conn, case_id) if r["kind"] in ("escalation", "notify", "sla")
                        and r["effective_at"] == stamp(self.now)]
            for r in rows:
                self.say(f"  {case_id} [{r['kind']}] {r['note'] or r['event']}")


def fresh_database(directory: Path) -> Path:
    """A new, empty SQLite file for one demo run: caseflow-demo-1.db, -2.db, … (created, so runs never share)."""
    for i in itertools.count(1):
        path = directory / f"caseflow-demo-{i}.db"
        try:
            path.open("x").close()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def check_empty(engine: Engine) -> None:
    """The demo tells its story from the start: an explicit --db must hold no cases yet."""
    import sqlalchemy as sa

    from caseflow.store.tables import cases
    with engine.store.read() as conn:
        found = conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one()
    if found:
        raise DemoNeedsEmptyDatabase(engine.store.shown_url, found)


def run_demo(engine: Engine, echo: Callable[[str], None]) -> tuple[dict[str, list[str]], list[str]]:
    """Run every demo story; return the case ids per workflow and any unexpected refusals."""
    n = Narrator(engine, echo, datetime(2025, 9, 26, 1, 0, tzinfo=UTC))
    ids: dict[str, list[str]] = {"refund": [], "complaint": [], "member_card": []}
    stories = [_refund_before_work, _refund_after_work, _refund_withdrawn, _complaint_escalates,
               _complaint_major_and_invalid, _member_card]
    for story in stories:
        story(n, ids)
    _report(n, ids)
    return ids, n.unexpected


def _refund_before_work(n: Narrator, ids: dict[str, list[str]]) -> None:
    n.title("退单 refund — 未开工退单, a signer rejects, then four distinct people sign in order")
    cid = n.open("refund", "wang.fang", order_no="D2025-0926-01", customer_name="王建国",
                 contract_amount="86000.00", amount_paid="20000.00", work_started="false")
    ids["refund"].append(cid)
    n.do(cid, "start_after_work", "wang.fang", refused=True)
    n.do(cid, "start_before_work", "wang.fang")
    n.do(cid, "sign_termination", "lin.xiao", termination_note="终止协议 ZZ-0926")
    n.do(cid, "explain", "lin.xiao", reason="客户资金周转困难", responsibility="客户原因，非公司责任")
    n.do(cid, "apply", "lin.xiao", refund_amount="20000.00")
    n.sign(cid, "gao.feng", refused=True)
    n.sign(cid, "lin.xiao")
    n.wait(hours=2)
    n.sign(cid, "gao.feng", reject=True, note="设计费应扣除，请重填金额")
    n.do(cid, "apply", "lin.xiao", refund_amount="18500.00", override_note="扣除设计费1500元")
    for who in ("lin.xiao", "gao.feng", "liang.yong"):
        n.wait(hours=3)
        n.sign(cid, who)
    n.sign(cid, "liang.yong", refused=True)
    n.sign(cid, "zhang.wei")
    n.do(cid, "pay", "cao.ying", payment_ref="PAY-88231")
    n.say("refund_amount: " + n.field(cid, "refund_amount"))


def _refund_after_work(n: Narrator, ids: dict[str, list[str]]) -> None:
    n.title("退单 refund — 已开工退单: site measure, final charge, refund = paid − charge")
    cid = n.open("refund", "chen.jing", order_no="D2025-0926-02", customer_name="李美华",
                 contract_amount="120000.00", amount_paid="60000.00", work_started="true")
    ids["refund"].append(cid)
    n.do(cid, "start_after_work", "chen.jing")
    n.do(cid, "measure", "song.tao", completed_work_value="21350.50")
    n.do(cid, "confirm_charge", "tang.liang", final_charge="23800.50")
    n.say("computed: " + n.field(cid, "final_charge", "refund_amount"))
    n.do(cid, "sign_termination", "huang.lei")
    n.do(cid, "explain", "huang.lei", reason="业主对木工质量不满", responsibility="监理未按规范验收",
         responsibility_code="B5", responsible_person="han.bing")
    n.say("penalty decision table: " + n.field(cid, "penalty_tier", "penalty_zh"))
    n.do(cid, "apply", "huang.lei", refund_amount="36200.00", refused=True)
    n.do(cid, "apply", "huang.lei", refund_amount="36199.50")
    for who in ("huang.lei", "luo.jun", "liang.yong", "ma.zhiyuan"):
        n.wait(hours=1)
        n.sign(cid, who)
    n.do(cid, "pay", "peng.xue", payment_ref="PAY-88232")


def _refund_withdrawn(n: Narrator, ids: dict[str, list[str]]) -> None:
    n.title("退单 refund — the customer withdraws before approval")
    cid = n.open("refund", "wang.fang", order_no="D2025-0926-03", customer_name="赵强",
                 contract_amount="50000.00", amount_paid="5000.00", work_started="false")
    ids["refund"].append(cid)
    n.do(cid, "start_before_work", "wang.fang")
    n.do(cid, "withdraw", "wang.fang", withdraw_reason="客户决定继续装修")


def _complaint_escalates(n: Narrator, ids: dict[str, list[str]]) -> None:
    n.title("投诉 complaint — customer rejects the solution; middle management decides; closed")
    n.at("2025-09-29 16:30")
    cid = n.open("complaint", "wang.fang", form_no="TS-2025-0929", customer_name="张三",
                 phone="13812345678", address="上海市浦东新区世纪大道100号", channel="phone",
                 category="quality", description="卫生间防水层漏水，楼下邻居天花板受潮", severity="normal",
                 received_at="2025-09-29T16:30")
    ids["complaint"].append(cid)
    n.do(cid, "assess", "wang.fang")
    n.wait(minutes=40)
    n.do(cid, "accept", "wu.ting", responsible_dept="engineering")
    n.say("the department has 2 working days; National Day (Oct 1–8) is off, so it is due Thu Oct 9 17:10")
    n.at("2025-10-09 17:30")
    n.sweep(cid)
    n.do(cid, "find_cause", "tang.liang", root_cause="防水层施工未做闭水试验", responsible_person="feng.gang",
         solution="重做防水并赔偿邻居天花板修复费")
    _self_review(n, cid)
    n.do(cid, "approve_solution", "zheng.hai", refused=True)
    n.sign(cid, "zheng.hai", note="同意方案")
    n.do(cid, "customer_rejects", "wang.fang", customer_feedback="客户要求全额退还卫生间工程款")
    n.do(cid, "final_offer", "gao.feng", final_solution="重做防水、赔偿邻居并减免卫生间工程款30%")
    n.do(cid, "customer_accepts", "lin.xiao", customer_signature="张三（已签字）")
    n.do(cid, "assign_responsibility", "zheng.hai", responsibility_code="B1")
    n.say("penalty decision table: " + n.field(cid, "penalty_tier", "penalty_zh"))
    n.do(cid, "decide_penalty", "zheng.hai", penalty_decision="罚款500元")
    n.do(cid, "summarize", "zhou.jie", summary="防水闭水试验纳入工程验收清单")


def _self_review(n: Narrator, complaint_id: str) -> None:
    """The responsible person's written self-review, a linked case: two reviewers, revise until accepted."""
    import sqlalchemy as sa

    from caseflow.store.tables import cases
    with n.engine.store.read() as conn:
        rid = conn.execute(sa.select(cases.c.id).where(cases.c.parent_case == complaint_id,
                                                       cases.c.workflow == "self_review")).scalar()
    if not rid:
        return
    n.say(f"linked case {rid}: 责任人书面检查 (self-review)")
    n.do(rid, "submit", "feng.gang", review_text="未按规范做闭水试验，今后严格执行")
    n.sign(rid, "li.qiang", reject=True, note="检查不深刻，请补充整改措施")
    n.do(rid, "resubmit", "feng.gang", review_text="未做闭水试验；整改：每个卫生间闭水48小时并拍照存档")
    n.sign(rid, "zheng.hai")
    n.sign(rid, "zheng.hai", refused=True)
    n.sign(rid, "li.qiang")


def _complaint_major_and_invalid(n: Narrator, ids: dict[str, list[str]]) -> None:
    n.title("投诉 complaint — a major complaint is reported to the company leader on receipt")
    n.at("2025-10-13 10:00")
    cid = n.open("complaint", "liu.yang", form_no="TS-2025-1013", customer_name="钱多多",
                 phone="13900001111", channel="store", category="service_attitude",
                 description="设计师态度恶劣，当众争吵", severity="major", received_at="2025-10-13T10:00")
    ids["complaint"].append(cid)
    n.say("outbox: company_leader notified; audit: escalation recorded")
    n.do(cid, "assess", "liu.yang")
    n.do(cid, "reject", "wu.ting", assessment_note="经核实为沟通误会，不属有效投诉")
    n.do(cid, "close", "liu.yang", reply_note="已向顾客婉转说明并致歉")


def _member_card(n: Narrator, ids: dict[str, list[str]]) -> None:
    member_card_story(n, ids)


def _report(n: Narrator, ids: dict[str, list[str]]) -> None:
    for month in ("2025-09", "2025-10"):
        n.title(f"顾客投诉分类统计表 — complaint statistics, {month}")
        stats = complaint_statistics(n.engine, month)
        for line in render_complaint_statistics(stats).splitlines():
            n.say(line)
