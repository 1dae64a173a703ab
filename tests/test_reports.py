"""Reports an auditor asks for: the monthly 顾客投诉分类统计表, sign-off chains, SLA compliance.

Cases are real complaints opened and walked through the shipped complaint
workflow; the reports are read back through the CLI on both backends.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from caseflow.runtime.engine import Engine

BASE = {"customer_name": "李四", "phone": "13700002222", "address": "上海市徐汇区漕溪北路1号",
        "description": "问题描述", "severity": "normal"}


@pytest.fixture
def _after_the_complaints_were_received(clock):
    """These complaints are received up to 2025-04-01; an operator may not record a receipt in the future
    (docs/security.md), so the simulated clock starts after them."""
    clock.set("2025-04-02 09:00")


def complaint(engine: Engine, form_no: str, category: str, channel: str, received_at: str,
              **extra: str) -> str:
    sets = {**BASE, "form_no": form_no, "category": category, "channel": channel, "received_at": received_at,
            **extra}
    return engine.open("complaint", "wang.fang", sets)["id"]


def accept(engine: Engine, cid: str, dept: str) -> None:
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "accept", "wang.fang", {"responsible_dept": dept})


def find_cause(engine: Engine, cid: str) -> None:
    engine.advance(cid, "find_cause", "tang.liang", {"root_cause": "施工不规范", "responsible_person": "xu.peng",
                                                     "solution": "返工"})


def close_accepted(engine: Engine, cid: str) -> None:
    engine.advance(cid, "customer_accepts", "wang.fang", {"customer_signature": "李四"})
    engine.advance(cid, "assign_responsibility", "zheng.hai", {"responsibility_code": "B1"})
    engine.advance(cid, "decide_penalty", "zheng.hai", {"penalty_decision": "罚款200元", "penalty_fine": "200"})
    engine.advance(cid, "summarize", "zhou.jie", {"summary": "已处理"})


def close_invalid(engine: Engine, cid: str) -> None:
    engine.advance(cid, "assess", "wang.fang")
    engine.advance(cid, "reject", "wang.fang", {"assessment_note": "不属于质量问题"})
    engine.advance(cid, "close", "wang.fang", {"reply_note": "已婉转答复"})


@pytest.fixture
def march(engine: Engine, _after_the_complaints_were_received: None) -> dict[str, str]:
    """Four complaints received in March 2025 (Shanghai), one in February, one on 1 April at 00:30."""
    ids = {
        "quality_closed": complaint(engine, "TS-301", "quality", "phone", "2025-03-03T09:30"),
        "attitude_invalid": complaint(engine, "TS-302", "service_attitude", "store", "2025-03-05T14:00",
                                      severity="major"),
        "technical_open": complaint(engine, "TS-303", "technical", "visit", "2025-03-10T11:00"),
        "quality_open": complaint(engine, "TS-304", "quality", "on_site", "2025-03-31T23:59"),
        "february": complaint(engine, "TS-228", "sales", "phone", "2025-02-28T17:00"),
        "april": complaint(engine, "TS-401", "other", "phone", "2025-03-31T16:30:00Z"),   # 4月1日 00:30 上海
    }
    accept(engine, ids["quality_closed"], "engineering")
    find_cause(engine, ids["quality_closed"])
    engine.sign(ids["quality_closed"], "zheng.hai")
    close_accepted(engine, ids["quality_closed"])
    close_invalid(engine, ids["attitude_invalid"])
    accept(engine, ids["technical_open"], "tech_dept")
    accept(engine, ids["quality_open"], "site_supervisor")
    return ids


def counts(report: dict[str, Any], dimension: str) -> dict[Any, int]:
    dim = next(d for d in report["dimensions"] if d["field"] == dimension)
    return {row["value"]: row["count"] for row in dim["rows"]}


def test_complaint_statistics_count_the_complaints_received_in_the_month(march, run):
    r = run("--json", "report", "complaints", "--month", "2025-03")
    assert r.exit_code == 0, r.stderr
    report = r.json()
    assert (report["month"], report["total"], report["closed"], report["valid"]) == ("2025-03", 4, 2, 3)
    assert sorted(report["cases"]) == sorted(march[k] for k in ("quality_closed", "attitude_invalid",
                                                                 "technical_open", "quality_open"))
    assert counts(report, "category") == {"service_attitude": 1, "quality": 2, "technical": 1, "service": 0,
                                          "sales": 0, "other": 0}
    assert counts(report, "channel") == {"store": 1, "phone": 1, "visit": 1, "on_site": 1}
    assert counts(report, "responsible_dept") == {"engineering": 1, "site_supervisor": 1, "tech_dept": 1,
                                                  "sales_dept": 0, "design": 0, "materials": 0,
                                                  "customer_service": 0, None: 1}
    assert counts(report, "severity") == {"normal": 3, "major": 1}
    assert counts(report, "outcome") == {"in_progress": 2, "invalid": 1, "accepted": 1, "accepted_final": 0,
                                         "litigation": 0, "closed_other": 0}


def test_complaint_month_follows_received_at_in_shanghai_time(march, run):
    feb = run("--json", "report", "complaints", "--month", "2025-02").json()
    assert feb["cases"] == [march["february"]]
    apr = run("--json", "report", "complaints", "--month", "2025-04").json()
    assert apr["cases"] == [march["april"]]
    assert counts(apr, "category")["other"] == 1


def test_complaint_statistics_table_has_chinese_labels(march, run):
    r = run("report", "complaints", "--month", "2025-03")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert out.startswith("顾客投诉分类统计表  2025-03  客户投诉(complaint)\n受理 4 件，成立 3 件，已结案 2 件")
    for label in ("投诉类别", "产品(施工)质量", "服务态度", "投诉渠道", "监理现场", "责任部门", "工程部", "技术部",
                  "（未填）", "处理结果", "投诉不成立（已婉转答复）", "顾客接受处理方案", "处理中", "件数"):
        assert label in out, label


def test_complaint_statistics_as_csv_with_bom(march, run):
    r = run("report", "complaints", "--month", "2025-03", "--format", "csv", "--bom")
    assert r.stdout.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(r.stdout.lstrip("\ufeff"))))
    quality = next(x for x in rows if x["dimension"] == "category" and x["value"] == "quality")
    assert (quality["label_zh"], quality["count"], quality["dimension_zh"]) == ("产品(施工)质量", "2", "投诉类别")


def test_complaint_statistics_refuse_a_malformed_month(engine, run):
    r = run("report", "complaints", "--month", "2025-3")
    assert (r.exit_code, r.stderr.strip()) == (2, "error: --month '2025-3': expected YYYY-MM, e.g. 2025-03")


# -- sign-off chains ------------------------------------------------------------------------

def test_signoff_report_shows_who_signed_when_and_rejections_with_notes(engine, run, clock):
    approved = complaint(engine, "TS-310", "quality", "phone", "2025-03-03T09:00")
    accept(engine, approved, "engineering")
    find_cause(engine, approved)
    engine.sign(approved, "zheng.hai", note="同意")
    clock.set("2025-03-04 15:00")
    bounced = complaint(engine, "TS-311", "quality", "store", "2025-03-04T14:00")
    accept(engine, bounced, "engineering")
    find_cause(engine, bounced)
    engine.sign(bounced, "zheng.hai", reject=True, note="方案不完整，请补充工期")
    clock.set("2025-03-06 10:00")
    engine.advance(bounced, "revise", "zheng.hai", {"solution": "返工，7日内完成"})
    engine.sign(bounced, "li.qiang")

    rounds = run("--json", "report", "signoffs", "--workflow", "complaint").json()
    summary = [(x["case_id"], x["round"], x["outcome"], [s["by"] for s in x["signatures"]],
                (x["rejection"] or {}).get("by")) for x in rounds]
    assert summary == [(approved, 1, "approved", ["zheng.hai"], None),
                       (bounced, 1, "rejected", [], "zheng.hai"),
                       (bounced, 2, "approved", ["li.qiang"], None)]
    first = rounds[0]
    assert (first["event"], first["event_zh"], first["state_zh"]) == ("approve_solution", "经理批示处理方案",
                                                                      "提出处理方案")
    assert first["signatures"][0]["role"] == "cs_manager" and first["signatures"][0]["at_local"] == "2025-03-03 10:00"
    assert rounds[1]["rejection"]["note"] == "方案不完整，请补充工期" and rounds[1]["rejection"]["to"] == "proposing"

    later = run("--json", "report", "signoffs", "--since", "2025-03-05").json()
    assert [(x["case_id"], x["round"]) for x in later] == [(bounced, 2)]

    text = run("report", "signoffs").stdout
    assert f"{bounced}  经理批示处理方案(approve_solution)  第1轮  已驳回" in text
    assert "✘ 客服部经理  郑海(zheng.hai)  2025-03-04 15:00  驳回：方案不完整，请补充工期" in text
    assert "✔ 客服部经理  李强(li.qiang)  2025-03-06 10:00" in text


def test_signoff_report_lists_a_pending_round(engine, run):
    cid = complaint(engine, "TS-320", "quality", "phone", "2025-03-03T09:00")
    accept(engine, cid, "engineering")
    find_cause(engine, cid)
    rounds = run("--json", "report", "signoffs").json()
    assert rounds == []                                  # nobody has signed yet: no chain to audit
    engine.sign(cid, "zheng.hai", reject=True, note="重写")
    csv_rows = list(csv.DictReader(io.StringIO(run("report", "signoffs", "--format", "csv").stdout)))
    assert [(x["case_id"], x["action"], x["by"], x["note"]) for x in csv_rows] == [(cid, "rejected", "zheng.hai",
                                                                                   "重写")]


# -- SLA compliance -------------------------------------------------------------------------

def test_sla_report_counts_met_and_breached_clocks(engine, run, clock):
    on_time = complaint(engine, "TS-330", "quality", "phone", "2025-03-03T09:30")
    accept(engine, on_time, "engineering")                  # answered and forwarded within the hour
    complaint(engine, "TS-331", "quality", "phone", "2025-03-03T09:45")     # never answered
    clock.set("2025-03-06 10:00")
    r = run("--json", "report", "sla", "--workflow", "complaint", "--month", "2025-03")
    assert r.exit_code == 0, r.stderr
    respond = next(x for x in r.json() if x["sla"] == "respond_24h")
    assert (respond["met"], respond["breached"]) == (1, 1)
    table = run("report", "sla", "--workflow", "complaint", "--month", "2025-03").stdout
    assert "24小时内回应顾客" in table and "按时率%" in table
