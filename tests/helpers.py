"""Walking cases through the shipped workflows, for tests that need one in a given state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from caseflow.catalog import Catalog
from caseflow.errors import StaleCase
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store

REFUND = {"order_no": "D2025-0310", "customer_name": "王建国", "contract_amount": "80000.00",
          "amount_paid": "20000.00"}
SIGNERS = [("lin.xiao", "handler"), ("gao.feng", "middle_manager"), ("liang.yong", "district_lead"),
           ("zhang.wei", "company_leader")]


def open_refund(engine: Engine, work_started: bool = False, **extra: str) -> str:
    sets = {**REFUND, "work_started": "true" if work_started else "false", **extra}
    return engine.open("refund", "wang.fang", sets)["id"]


def refund_to_signing(engine: Engine, refund_amount: str = "20000.00") -> str:
    """Path A (before work starts) up to 逐级签字."""
    cid = open_refund(engine)
    engine.advance(cid, "start_before_work", "wang.fang")
    engine.advance(cid, "sign_termination", "lin.xiao")
    engine.advance(cid, "explain", "lin.xiao", {"reason": "客户资金周转困难", "responsibility": "客户原因"})
    engine.advance(cid, "apply", "lin.xiao", {"refund_amount": refund_amount})
    return cid


def sign_all(engine: Engine, cid: str, signers: list[tuple[str, str]] = SIGNERS) -> list[dict[str, Any]]:
    return [engine.sign(cid, who) for who, _ in signers]


COMPLAINT = {"form_no": "TS-2025-001", "customer_name": "张三", "phone": "13812345678",
             "address": "上海市浦东新区世纪大道100号", "channel": "phone", "category": "quality",
             "description": "卫生间防水层漏水", "severity": "normal", "received_at": "2025-03-03T10:00"}


def open_complaint(engine: Engine, **extra: str) -> str:
    return engine.open("complaint", "wang.fang", {**COMPLAINT, **extra})["id"]


def race_two(store: Store, catalog: Catalog, clock: Any, act: Callable[[Engine], Any]) -> list[Any]:
    """Two engines run `act` at once, both held at the write until both have planned (the same version):
    each one's result, or the StaleCase it got."""
    barrier = threading.Barrier(2, timeout=20)
    results: dict[int, object] = {}

    def worker(i: int) -> None:
        eng = Engine(store, catalog, clock, before_write=lambda _snap: barrier.wait())
        try:
            results[i] = act(eng)
        except StaleCase as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return list(results.values())
