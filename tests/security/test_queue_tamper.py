"""The work queues are evidence too: a case hidden from an inbox, put in a queue it is not for, or
invented in one is named by `audit verify` (audit/queue_check.py), with the queue."""

from __future__ import annotations

from caseflow.audit.verify import verify
from caseflow.runtime.queue import queues

from ..helpers import open_complaint, refund_to_signing
from .tamper import caught, sql, tampering


def test_the_work_queues_of_cases_at_every_kind_of_step_verify_ok(engine, store, shipped_catalog):
    open_complaint(engine)
    refund_to_signing(engine)            # waiting for signers: the signers' queues
    report = verify(store, catalog=shipped_catalog, queues=queues)
    assert report.problems == []


def test_a_case_deleted_from_a_work_queue_is_named_with_the_queue(engine, store, shipped_catalog):
    cid = open_complaint(engine)
    with tampering(store) as conn:
        sql(conn, "DELETE FROM case_queue WHERE case_id = :cid AND queue = 'cs_agent'", cid=cid)
    report = caught(store, where=cid, kind="queue", catalog=shipped_catalog, queues=queues)
    assert [str(p) for p in report.problems] == [
        f"{cid}: case {cid} is missing from the work queue cs_agent its state gives it: no inbox of that queue "
        f"shows it"]


def test_a_case_put_in_a_queue_it_is_not_for_is_named(engine, store, shipped_catalog):
    cid = open_complaint(engine)
    with tampering(store) as conn:
        sql(conn, "INSERT INTO case_queue (case_id, queue, workflow) VALUES (:cid, '@li.na', 'complaint')", cid=cid)
    report = caught(store, where=cid, kind="queue", catalog=shipped_catalog, queues=queues)
    assert [str(p) for p in report.problems] == [
        f"{cid}: case {cid} is in the work queue @li.na, which its state, data and assignee do not give it"]


def test_a_case_invented_in_a_work_queue_is_named(engine, store, shipped_catalog, run):
    open_complaint(engine)
    with tampering(store) as conn:
        sql(conn, "INSERT INTO case_queue (case_id, queue, workflow) VALUES ('COM-00000001', 'cs_agent', "
                  "'complaint')")
    report = caught(store, where="COM-00000001", kind="queue", catalog=shipped_catalog, queues=queues)
    assert [str(p) for p in report.problems] == [
        "COM-00000001: the work queues hold case COM-00000001, which has no case row"]
    r = run("--as", "jiang.wen", "audit", "verify")
    assert r.exit_code == 1 and "the work queues hold case COM-00000001, which has no case row" in r.stdout


def test_without_the_queue_rules_the_work_queues_are_not_judged(engine, store, shipped_catalog):
    """The Python API checks the queues when it is given the runtime's rules (the CLI always gives them)."""
    cid = open_complaint(engine)
    with tampering(store) as conn:
        sql(conn, "DELETE FROM case_queue WHERE case_id = :cid", cid=cid)
    assert verify(store, catalog=shipped_catalog).ok
    assert not verify(store, catalog=shipped_catalog, queues=queues).ok
