"""An imported case is stored exactly as a single `Engine.open` stores it: the same rows in cases, audit,
timers, sla_windows, case_queue and outbox (ids, hashes and the real time of writing aside), its work-queue
order (due_at, created_at) right, and nothing of a refused row — whatever the batch around it did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from caseflow.catalog import Catalog
from caseflow.runtime import batch_sqlite, batch_writes, bulk
from caseflow.runtime.bulk import Row, import_cases
from caseflow.runtime.engine import Engine
from caseflow.store.database import Store
from caseflow.store.tables import audit, case_keys, case_queue, cases, outbox, sla_windows, timers

from .conftest import Clock
from .test_import import _cards_taken_at_open

COMPLAINT = {"form_no": "TS-1", "customer_name": "张三", "phone": "13812345678", "address": "上海市浦东新区世纪大道100号",
             "channel": "phone", "category": "quality", "description": "卫生间防水层漏水", "severity": "normal",
             "received_at": "2025-03-03T09:30"}
CARD = {"name": "李娜", "birth_date": "1990-01-01", "phone": "13900000001", "tier": "vip"}
UNSTORED = {"id", "case_id", "hash", "prev_hash", "mac", "recorded_at", "audit_hash"}   # differ per case


def _rows(store: Store, table: sa.Table, case_id: str) -> list[dict[str, Any]]:
    key = table.c.id if table is cases else table.c.case_id
    order = [c for c in (table.c.get("seq"), table.c.get("name"), table.c.get("queue"), table.c.get("clock"),
                         table.c.get("field"), table.c.get("role")) if c is not None]
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(table).where(key == case_id).order_by(*order))
        return [{k: v for k, v in r._mapping.items() if k not in UNSTORED} for r in found]


def _stored(store: Store, case_id: str, *, unique: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything stored of a case, the values of its unique fields left out (each case has its own)."""
    out: dict[str, Any] = {t.name: _rows(store, t, case_id) for t in (cases, audit, timers, sla_windows,
                                                                       case_queue, outbox)}
    text = repr(out)
    for name in unique:
        for value in {str(r["value"]) for r in _rows(store, case_keys, case_id) if r["field"] == name}:
            text = text.replace(value, "<unique>")
    return {"text": text}


def _truth(store: Store, case_id: str) -> list[tuple[str, str | None, str | None]]:
    """The queue order a case's rows should carry: its nearest running SLA deadline, its created_at."""
    with store.engine.connect() as conn:
        due = conn.execute(sa.select(sa.func.min(timers.c.due_at)).where(
            timers.c.case_id == case_id, timers.c.kind == "sla",
            timers.c.status.in_(["running", "breached"]))).scalar()
        created = conn.execute(sa.select(cases.c.created_at).where(cases.c.id == case_id)).scalar()
        queues = conn.execute(sa.select(case_queue.c.queue).where(case_queue.c.case_id == case_id)
                              .order_by(case_queue.c.queue)).scalars().all()
    return [(q, due, created) for q in queues]


def _queue_order(store: Store, case_id: str) -> list[tuple[str, str | None, str | None]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            sa.select(case_queue.c.queue, case_queue.c.due_at, case_queue.c.created_at)
            .where(case_queue.c.case_id == case_id).order_by(case_queue.c.queue))]


def test_an_imported_complaint_is_stored_as_a_single_open_stores_it(engine: Engine, store: Store) -> None:
    single = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    major = engine.open("complaint", "wang.fang", {**COMPLAINT, "severity": "major"})["id"]   # escalates, notifies
    rows = [Row(2, sets=COMPLAINT), Row(3, sets={**COMPLAINT, "severity": "huge"}),       # refused: not an enum value
            Row(4, sets={**COMPLAINT, "severity": "major"}),
            Row(5, sets={**COMPLAINT, "received_at": "2025-03-03T08:00"}), Row(6, sets=COMPLAINT)]
    report = import_cases(engine, "complaint", "wang.fang", iter(rows), batch=3)
    assert [r["line"] for r in report.refused] == [3]
    ids = {r["line"]: r["id"] for r in report.opened}
    assert _stored(store, ids[2]) == _stored(store, single) == _stored(store, ids[6])
    assert _stored(store, ids[4]) == _stored(store, major)
    for case_id in ids.values():
        order = _queue_order(store, case_id)
        assert order and order == _truth(store, case_id)
        assert all(due is not None and created is not None for _, due, created in order)
    assert _queue_order(store, ids[5]) != _queue_order(store, ids[2])       # its own received_at: its own deadline


def test_a_transaction_that_sends_its_rows_several_times_stores_the_same(engine: Engine, store: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's held rows go to the database every SEND_EVERY rows, inside the one transaction."""
    monkeypatch.setattr(batch_writes, "SEND_EVERY", 2)
    single = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    rows = [Row(n, sets=COMPLAINT) for n in range(2, 5)] + [Row(5, sets={**COMPLAINT, "channel": "fax"})] \
        + [Row(n, sets=COMPLAINT) for n in range(6, 9)]
    report = import_cases(engine, "complaint", "wang.fang", iter(rows), batch=10)
    assert [r["line"] for r in report.refused] == [5] and report.batches == 1
    for r in report.opened:
        assert _stored(store, r["id"]) == _stored(store, single)
        assert _queue_order(store, r["id"]) == _truth(store, r["id"])


def test_an_imported_card_with_unique_fields_is_stored_as_a_single_open_stores_it(store: Store, clock: Clock,
                                                                                  tmp_path: Path) -> None:
    engine = Engine(store, Catalog.load(_cards_taken_at_open(tmp_path)), clock)
    single = engine.open("member_card", "xie.na", {**CARD, "id_number": "110101199001011234"})["id"]
    rows = [Row(2, sets={**CARD, "id_number": "110101199001011235"}),
            Row(3, sets={**CARD, "id_number": "110101199001011235"}),          # refused: the value is taken
            Row(4, sets={**CARD, "id_number": "110101199001011236"})]
    report = import_cases(engine, "member_card", "xie.na", iter(rows), batch=2)
    assert [r["line"] for r in report.refused] == [3]
    ids = [r["id"] for r in report.opened]
    for case_id in ids:
        assert _stored(store, case_id, unique=("id_number",)) == _stored(store, single, unique=("id_number",))
        assert _queue_order(store, case_id) == _truth(store, case_id)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar() == 3


def test_a_queue_row_written_with_a_wrong_order_is_put_right_by_the_database(engine: Engine, store: Store) -> None:
    """Revision 0011 leaves a new queue row alone only when its order is already the right one."""
    case_id = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    right = _truth(store, case_id)
    wrong = [("late", "2099-01-01T00:00:00.000Z", right[0][2]), ("early", None, right[0][2]),
             ("nameless", right[0][1], None), ("given", right[0][1], right[0][2])]
    with store.engine.begin() as conn:
        conn.execute(case_queue.delete().where(case_queue.c.case_id == case_id))
        conn.execute(case_queue.insert(), [{"case_id": case_id, "queue": q, "workflow": "complaint", "due_at": due,
                                            "created_at": created} for q, due, created in wrong])
    assert _queue_order(store, case_id) == _truth(store, case_id)
    assert {due for _, due, _ in _queue_order(store, case_id)} == {right[0][1]}


def _triggers(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            found = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
        else:
            found = conn.exec_driver_sql("SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c "
                                         "ON c.oid = t.tgrelid WHERE c.relnamespace = current_schema()::regnamespace "
                                         "AND NOT t.tgisinternal ORDER BY t.tgname")
        return [(r[0], r[1]) for r in found]


def test_the_queue_triggers_are_in_force_after_an_import_and_after_a_failed_batch(
        engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a batch sets the work-queue triggers aside while it writes (batch_sqlite.queue_order_by_batch):
    they are back, as they were, once it commits or fails, and every later writer's order is kept by them."""
    before = _triggers(store)
    assert {"case_queue_order", "cases_queue_order", "timers_queue_order_ins"} <= {n for n, _ in before}
    report = import_cases(engine, "complaint", "wang.fang", iter([Row(2, sets=COMPLAINT), Row(3, sets=COMPLAINT)]))
    assert _triggers(store) == before
    opened = bulk.case_actions.open_case
    calls = []

    def failing(*args: Any, **kwargs: Any) -> str:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the disk went away")
        return opened(*args, **kwargs)
    monkeypatch.setattr(bulk.case_actions, "open_case", failing)
    with pytest.raises(RuntimeError):
        import_cases(engine, "complaint", "wang.fang", iter([Row(2, sets=COMPLAINT), Row(3, sets=COMPLAINT)]))
    monkeypatch.undo()
    assert _triggers(store) == before
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar() == 2     # the batch undone
    case_id = report.opened[0]["id"]
    was = _truth(store, case_id)
    engine.advance(case_id, "assess", "chen.jing")             # a step: the triggers keep its order
    assert _queue_order(store, case_id) == _truth(store, case_id) != was


def test_an_import_draws_case_ids_no_case_has(engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A case id has 32 bits: among 100,000 cases a drawn one is likely taken. An import draws its batch's
    ids first — one block, 17 apart — and skips any a stored case has."""
    taken = engine.open("complaint", "wang.fang", COMPLAINT)["id"]
    number = int(taken.split("-")[1], 16)
    bases = iter([number])                       # the block starts on the taken id
    monkeypatch.setattr(bulk, "_block_base", lambda span: next(bases))
    report = import_cases(engine, "complaint", "wang.fang", iter([Row(2, sets=COMPLAINT), Row(3, sets=COMPLAINT)]))
    ids = sorted(r["id"] for r in report.opened)
    assert ids == [f"COM-{number + 17:08X}", f"COM-{number + 34:08X}"] and not report.refused    # skipped, then on
    assert _stored(store, ids[0]) == _stored(store, ids[1]) == _stored(store, taken)


def test_no_id_of_an_import_is_another_with_one_digit_mistyped_or_two_swapped(engine: Engine) -> None:
    """An import's ids are neighbours (their index entries too), yet an operator who mistypes one hex digit
    of an id, or swaps two neighbouring ones, finds no other case of the import: as with random ids."""
    report = import_cases(engine, "complaint", "wang.fang", iter([Row(i, sets=COMPLAINT) for i in range(2, 302)]))
    ids = {r["id"] for r in report.opened}
    assert len(ids) == 300 and not report.refused
    numbers = sorted(int(i.split("-")[1], 16) for i in ids)
    assert numbers[-1] - numbers[0] == 299 * bulk.ID_STEP          # one block
    digits = "0123456789ABCDEF"
    for case_id in ids:
        prefix, hexes = case_id.split("-")
        typos = {hexes[:k] + d + hexes[k + 1:] for k in range(8) for d in digits} | \
                {hexes[:k] + hexes[k + 1] + hexes[k] + hexes[k + 2:] for k in range(7)}
        assert {f"{prefix}-{t}" for t in typos if t != hexes} & ids == set(), case_id


def test_an_import_gives_back_its_connection_with_the_settings_it_had(
        engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a batch keeps its statement journals in memory and a larger page cache
    (batch_sqlite.BATCH_SETTINGS); on PostgreSQL it begins a transaction on the action's connection,
    which is in autocommit. The connection the next action gets has its own settings back, after a
    batch that commits and after one that fails."""
    sqlite = store.backend.one_writer

    def settings_of(conn: Any) -> list[Any]:
        if sqlite:
            return [conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name, _ in batch_sqlite.BATCH_SETTINGS]
        return [conn.get_isolation_level()]

    def settings() -> list[Any]:
        with store.action() as conn:                 # the connection the next action is given
            return settings_of(conn)
    before = settings()
    assert before != [2, -65536]                   # (SQLite's defaults: a file, about 2 MB of pages)
    seen: list[list[Any]] = []
    opened = bulk.case_actions.open_case

    def watching(*args: Any, **kwargs: Any) -> str:
        seen.append(settings_of(args[1].conn))     # the batch's own connection, inside its transaction
        if len(seen) == 4:                          # the second row of the second batch
            raise RuntimeError("the disk went away")
        return opened(*args, **kwargs)
    monkeypatch.setattr(bulk.case_actions, "open_case", watching)
    import_cases(engine, "complaint", "wang.fang", iter([Row(2, sets=COMPLAINT), Row(3, sets=COMPLAINT)]))
    assert settings() == before
    with pytest.raises(RuntimeError):
        import_cases(engine, "complaint", "wang.fang", iter([Row(2, sets=COMPLAINT), Row(3, sets=COMPLAINT)]))
    assert settings() == before
    assert seen == [[2, -65536] if sqlite else [before[0]]] * 4     # MEMORY is 2
    with store.engine.connect() as conn:           # the failed batch left nothing: its rows were one transaction
        assert conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar() == 2
