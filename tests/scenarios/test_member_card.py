"""会员卡 — the rules of processes.md §3, one test per rule (source 001 §七, items 2–18).

Every refusal is checked for the exception class, the exact operator line and an
unchanged case row and audit log (style.md §8). Clocks (the one-year expiry, the
7-day lost-card window, the 30-day upgrade window, the one-month reactivation
window, the 90-working-day points clearing and the monthly/yearly jobs) are
tested in test_deadlines.py; here a timer's effect is reproduced by firing its
system event directly, as the sweeper does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from caseflow.errors import GuardFailed, InvalidData, MissingFields, RoleNotAllowed, UsageError, WrongState
from caseflow.runtime.actions import fire_system
from caseflow.store.tables import attempts as attempts_log

from ..conftest import audit_rows, snapshot
from .common import case_count, notices, refused

HOLDER = {"name": "李娜", "id_number": "110101199001011234", "birth_date": "1990-01-01",
          "phone": "13900000001", "tier": "vip"}
OTHER = {"name": "王磊", "id_number": "140105198506061111", "birth_date": "1985-06-06", "phone": "13900000002"}
THRESHOLD = {"vip": "300.00", "gold": "6000.00", "platinum": "10000.00"}
RATE = {"vip": 1, "gold": 2, "platinum": 3}
DESK = "xie.na"            # 谢娜, 贵宾厅


# -- helpers --------------------------------------------------------------------------------

def apply_for(engine, **holder: str) -> str:
    """An application: who is applying (name, phone); the rest is given at issue [processes.md §3]."""
    person = {**HOLDER, **holder}
    return engine.open("member_card", DESK, {"name": person["name"], "phone": person["phone"]})["id"]


def issue(engine, cid: str, tier: str = "vip", **sets: str) -> None:
    """Issue with the tier, birth date and ID number (HOLDER's unless given) and the tier's threshold."""
    engine.advance(cid, "issue", DESK, {"tier": tier, "birth_date": HOLDER["birth_date"],
                                        "id_number": HOLDER["id_number"], "member_id": f"M-{cid}",
                                        "card_no": f"C-{cid}", "same_day_cash": THRESHOLD[tier],
                                        "in_person": "true", **sets})


def card(engine, tier: str = "vip", **holder: str) -> str:
    cid = apply_for(engine, **holder)
    person = {**HOLDER, **holder}
    issue(engine, cid, tier, birth_date=person["birth_date"], id_number=person["id_number"])
    return cid


def buy(engine, cid: str, amount: str, cash: str | None = None, special: bool = False,
        promotion: bool = False, items: int = 1) -> int:
    """One purchase with the card (all in cash unless `cash` names the cash part); returns the points."""
    before = engine.read_case(cid).data["points"]
    engine.advance(cid, "purchase", DESK, {"amount": amount, **({"cash_amount": cash} if cash else {}),
                                           "special_goods": str(special).lower(),
                                           "promotion": str(promotion).lower(), "items": str(items)})
    return engine.read_case(cid).data["points"] - before


def attempts(store, cid: str) -> list[tuple[str, str, str]]:
    """(event, error, actor) of the case's refused attempts, oldest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(attempts_log).where(attempts_log.c.case_id == cid)
                            .order_by(attempts_log.c.id))
        return [(r.event, r.error, r.actor) for r in rows]


def timer_fires(engine, cid: str, event: str) -> None:
    """What a due timer does: fire its system event on the case (the clocks are test_deadlines.py's)."""
    with engine.store.write() as conn:
        assert fire_system(engine, conn, cid, event, engine.now(), f"timer: {event}")


def data(engine, cid: str, *keys: str) -> tuple[Any, ...]:
    d = engine.read_case(cid).data
    return tuple(d.get(k) for k in keys)


# -- canonical ids -----------------------------------------------------------------------------

SPEC_EDGES = {   # processes.md §3 "States and events": (state, event) → target
    ("applied", "issue"): "active", ("applied", "decline"): "declined",
    **{("active", e): "active" for e in ("purchase", "redeem", "return_goods", "upgrade", "update_contact",
                                         "transfer")},
    ("active", "report_lost"): "lost", ("active", "report_damaged"): "replacing", ("active", "expire"): "expired",
    ("active", "withdraw"): "cancelled", ("active", "revoke"): "cancelled",
    ("lost", "replace"): "replacing", ("replacing", "collect"): "active",
    ("expired", "renew"): "active", ("expired", "upgrade"): "active", ("expired", "lapse"): "cancelled",
    ("inactive", "reactivate"): "active",
}
SPEC_INPUTS = {"issue": {"same_day_cash", "in_person"},
               "purchase": {"amount", "special_goods", "promotion", "items", "cash_amount"},
               "redeem": {"points"}, "return_goods": {"amount", "points"}, "reactivate": {"same_day_cash"}}
SPEC_FIELDS = {"member_id", "name", "id_number", "birth_date", "phone", "tier", "points", "points_earned",
               "points_redeemed", "issued_at", "expires_at", "last_purchase_at", "year_spend", "lost_reported_at",
               "fees_charged"}


def test_member_card_uses_the_canonical_ids_with_chinese_labels(engine):
    d = engine.catalog.get("member_card")
    edges = {(s, t.event): t.to for t in d.transitions for s in t.sources}
    assert {k: edges.get(k) for k in SPEC_EDGES} == SPEC_EDGES
    assert sorted(s for s, st in d.states.items() if st.final) == ["cancelled", "declined"]
    assert all(st.label_zh for st in d.states.values()) and all(t.label_zh for t in d.transitions)
    inputs = {t.event: set(t.inputs) for t in d.transitions if t.event in SPEC_INPUTS}
    assert all(SPEC_INPUTS[e] <= inputs[e] for e in SPEC_INPUTS), inputs
    assert SPEC_FIELDS <= set(d.fields)
    assert d.fields["tier"]["enum"] == ["vip", "gold", "platinum"]
    assert "id_number" in d.unique                                                # 每人限申办一张
    assert next(t for t in d.transitions if t.event == "expire").system           # fired by the expiry timer


# -- the tier table ---------------------------------------------------------------------------

def test_tier_table_thresholds_discounts_and_rates_match_the_rules(engine):
    """The constants the guards and effects use are the §3 tier table [001 §七.4, 6, 7, 10, 11]."""
    c = engine.catalog.get("member_card").constants
    assert c["apply_threshold"] == {"vip": 300, "gold": 6000, "platinum": 10000}
    assert c["discount_pct"] == {"vip": 95, "gold": 90, "platinum": 88}      # applied by the till
    assert (c["ordinary_unit_yuan"], c["ordinary_points"]) == (10, {"vip": 1, "gold": 2, "platinum": 3})
    assert (c["special_unit_yuan"], c["special_points"]) == (50, {"vip": 1, "gold": 2, "platinum": 3})
    assert c["upgrade_threshold"] == {"vip": 1000, "gold": 6000}
    assert c["renewal_keep_spend"] == {"vip": 0, "gold": 10000, "platinum": 20000}
    assert (c["redeem_unit_points"], c["redeem_unit_yuan"]) == (100, 10)
    assert (c["wholesale_min_yuan"], c["wholesale_min_items"], c["reactivate_min_cash"]) == (5000, 5, 200)


# -- issuing --------------------------------------------------------------------------------

@pytest.mark.parametrize("tier", ["vip", "gold", "platinum"])
def test_issue_needs_adult_in_person_with_id_and_tier_threshold_same_day_cash(engine, store, tier):
    """The §3 `issue` guards, on the tier, birth date and ID number given with the event."""
    def attempt(cid: str, **sets: str) -> Callable[[], Any]:
        return lambda: issue(engine, cid, tier, **sets)

    cid = apply_for(engine)
    refused(store, cid, attempt(cid, birth_date="2007-03-04"), GuardFailed,     # 18 tomorrow (today is 2025-03-03)
            f"case {cid}: cannot issue in state applied: 申办人须年满18周岁")
    refused(store, cid, attempt(cid, id_number=""), MissingFields,
            f"case {cid}: cannot issue in state applied: missing required: id_number (set with --set id_number=…)")
    refused(store, cid, attempt(cid, birth_date="2007-03-03", in_person="false"), GuardFailed,
            f"case {cid}: cannot issue in state applied: 限本人当日现场办理，不接受代办")
    short = f"{float(THRESHOLD[tier]) - 0.01:.2f}"
    refused(store, cid, attempt(cid, birth_date="2007-03-03", same_day_cash=short), GuardFailed,
            f"case {cid}: cannot issue in state applied: 当日现金累积购物金额未达到该卡种的申办标准")
    refused(store, cid, lambda: engine.advance(cid, "issue", DESK, {"member_id": "M-1", "card_no": "C-1",
                                                                    "in_person": "true"}),
            MissingFields, f"case {cid}: cannot issue in state applied: missing required: tier, birth_date, "
                           f"id_number, input same_day_cash (set with --set tier=…)")
    issue(engine, cid, tier, birth_date="2007-03-03")               # 18 today, exactly the threshold
    after = engine.read_case(cid)
    assert (after.state, after.data["tier"], after.data["birth_date"], after.data["id_number"]) == (
        "active", tier, "2007-03-03", HOLDER["id_number"])


def test_tier_birth_date_and_id_number_are_given_and_checked_at_issue_not_at_open(engine, store, run):
    """processes.md §3 "Event inputs": `issue`: tier, same_day_cash, birth_date, id_number, in_person.

    The application is opened with who applies (name, phone); the tier, birth date
    and ID number come with `issue`, when the desk checks the ID in person [001 §七.3–5]."""
    d = engine.catalog.get("member_card")
    assert d.open_accepts == {"name", "phone"}
    issuing = next(t for t in d.transitions if t.event == "issue")
    assert {"tier", "birth_date", "id_number"} <= set(issuing.accepts) & set(issuing.requires)
    before = case_count(store)
    for field, value in (("tier", "gold"), ("birth_date", HOLDER["birth_date"]), ("id_number", HOLDER["id_number"])):
        with pytest.raises(UsageError) as early:
            engine.open("member_card", DESK, {"name": HOLDER["name"], "phone": HOLDER["phone"], field: value})
        assert str(early.value) == (f"--set {field}: not accepted by opening a member_card case "
                                    "(it accepts: name, phone)")
    assert case_count(store) == before

    # from the command line, as an operator does it (`issue --set tier=…` used to exit 2)
    opened = run("--as", DESK, "--json", "open", "member_card", "--set", "name=李娜", "--set", "phone=13900000001")
    assert opened.exit_code == 0, opened.stderr
    cid = json.loads(opened.stdout)["id"]
    wrong = run("--as", DESK, "advance", cid, "issue", "--set", "tier=diamond", "--set", "birth_date=1990-01-01",
                "--set", f"id_number={HOLDER['id_number']}", "--set", "member_id=M-1", "--set", "card_no=C-1",
                "--set", "same_day_cash=300", "--set", "in_person=true")
    assert (wrong.exit_code, wrong.stderr.strip()) == (
        2, "error: --set tier: 'diamond' is not one of vip, gold, platinum")
    future = run("--as", DESK, "advance", cid, "issue", "--set", "tier=vip", "--set", "birth_date=2099-01-01",
                 "--set", f"id_number={HOLDER['id_number']}", "--set", "member_id=M-1", "--set", "card_no=C-1",
                 "--set", "same_day_cash=300", "--set", "in_person=true")
    assert (future.exit_code, future.stderr.strip()) == (
        1, f"error: case {cid}: cannot issue in state applied: birth_date 2099-01-01 lies in the future "
           f"(the effective time is 2025-03-03T02:00:00.000Z; at most 0:05:00 ahead)")
    assert engine.read_case(cid).state == "applied"
    ok = run("--as", DESK, "advance", cid, "issue", "--set", "tier=gold", "--set", "birth_date=1990-01-01",
             "--set", f"id_number={HOLDER['id_number']}", "--set", "member_id=M-1", "--set", "card_no=C-1",
             "--set", "same_day_cash=6000", "--set", "in_person=true")
    assert ok.exit_code == 0, ok.stderr
    issued = engine.read_case(cid)
    assert (issued.state, issued.data["tier"], issued.data["birth_date"]) == ("active", "gold", "1990-01-01")
    assert [r["event"] for r in audit_rows(store, cid) if r["kind"] == "transition"] == ["issue"]


def test_card_is_valid_one_year_from_issue_and_starts_with_no_points(engine, store):
    cid = card(engine)
    assert data(engine, cid, "issued_at", "expires_at", "points", "year_spend", "fees_charged") == (
        "2025-03-03T02:00:00.000Z", "2026-03-03T02:00:00.000Z", 0, "0.00", "0.00")


def test_declined_application_is_closed_with_a_reason(engine, store):
    cid = apply_for(engine)
    refused(store, cid, lambda: engine.advance(cid, "decline", DESK), MissingFields,
            f"case {cid}: cannot decline in state applied: missing required: decline_reason "
            f"(set with --set decline_reason=…)")
    engine.advance(cid, "decline", DESK, {"decline_reason": "代办，非本人到场"})
    assert engine.read_case(cid).state == "declined"


def test_one_card_per_person(engine, store):
    """每人限申办一张 [§七.16.2]: an ID number belongs to one open card, checked at issue (unique key)."""
    first, second = apply_for(engine), apply_for(engine)          # the same person may apply twice …
    issue(engine, first)
    refused(store, second, lambda: issue(engine, second, "gold"), InvalidData,   # … but gets one card
            f"case {second}: cannot issue in state applied: id_number already belongs to open case {first}")
    assert attempts(store, second)[-1][:2] == ("issue", "InvalidData")
    engine.advance(second, "decline", DESK, {"decline_reason": "每人限申办一张"})

    # a card number is one card's too
    other = apply_for(engine, **OTHER)
    refused(store, other, lambda: issue(engine, other, id_number=OTHER["id_number"], birth_date=OTHER["birth_date"],
                                        card_no=f"C-{first}"), InvalidData,
            f"case {other}: cannot issue in state applied: card_no already belongs to open case {first}")

    # once the card is void, the person may have a card again
    engine.advance(first, "withdraw", DESK, {"cancel_reason": "会员申请退出"})
    again = card(engine, "gold")
    assert engine.read_case(again).state == "active"


TO_OTHER = {"transferor_id_number": HOLDER["id_number"], "new_name": OTHER["name"],
            "new_id_number": OTHER["id_number"], "new_birth_date": OTHER["birth_date"], "new_phone": OTHER["phone"]}


def test_a_card_cannot_be_transferred_to_someone_who_already_has_one(engine, store):
    mine = card(engine)
    theirs = card(engine, **OTHER)
    before = snapshot(store, mine)
    with pytest.raises(InvalidData) as caught:
        engine.advance(mine, "transfer", DESK, TO_OTHER)
    assert (caught.value.case_id, caught.value.reason) == (mine, f"id_number already belongs to open case {theirs}")
    assert snapshot(store, mine) == before


def test_a_unique_clash_names_the_event_and_the_cards_state(engine, store):
    mine = card(engine)
    theirs = card(engine, **OTHER)
    refused(store, mine, lambda: engine.advance(mine, "transfer", DESK, TO_OTHER), InvalidData,
            f"case {mine}: cannot transfer in state active: id_number already belongs to open case {theirs}")
    other = apply_for(engine)
    refused(store, other, lambda: issue(engine, other, id_number="370102199202022222", card_no=f"C-{mine}"),
            InvalidData,
        f"case {other}: cannot issue in state applied: card_no already belongs to open case {mine}")


# -- points ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tier", ["vip", "gold", "platinum"])
def test_points_per_full_10_yuan_by_tier_remainder_dropped(engine, store, tier):
    cid = card(engine, tier)
    earned = [buy(engine, cid, amount) for amount in ("9.99", "19.99", "15.00", "15.00", "100.00")]
    assert earned == [0, RATE[tier], RATE[tier], RATE[tier], 10 * RATE[tier]]      # 15+15 is not 3 units
    assert data(engine, cid, "points", "points_earned", "year_spend") == (
        13 * RATE[tier], 13 * RATE[tier], "159.98")


@pytest.mark.parametrize("tier", ["vip", "gold", "platinum"])
def test_special_goods_earn_per_full_50_yuan(engine, store, tier):
    cid = card(engine, tier)
    earned = [buy(engine, cid, amount, special=True) for amount in ("49.99", "99.99", "150.00")]
    assert earned == [0, RATE[tier], 3 * RATE[tier]]


def test_promotion_goods_and_wholesale_earn_no_points(engine, store):
    cid = card(engine)
    assert buy(engine, cid, "1000.00", promotion=True) == 0                        # 活动期间特价商品
    assert buy(engine, cid, "5000.00", items=5) == 0                               # 批发/团购: ≥5000 AND ≥5 件
    assert buy(engine, cid, "5000.00", items=4) == 500                             # 4 件 is not wholesale
    assert buy(engine, cid, "4999.99", items=5) == 499                             # under 5000 is not wholesale
    assert data(engine, cid, "year_spend") == ("15999.99",)                      # all of it is still spend


def test_only_the_cash_part_of_a_purchase_earns_points(engine, store):
    """非纯现金消费只有现金部分积分 [§七.9.2]; processes.md §3: `cash_amount` (cash part, if not all cash)."""
    cid = card(engine)
    assert buy(engine, cid, "500.00", cash="209.99") == 20                         # 非纯现金消费: cash part only
    assert buy(engine, cid, "500.00") == 50                                        # all in cash: no cash_amount
    assert buy(engine, cid, "500.00", cash="500.00") == 50                         # the same, said explicitly
    purchases = [r for r in audit_rows(store, cid) if r["event"] == "purchase"]
    assert "cash_amount" not in json.loads(purchases[1]["changes"])["@input"]        # the log shows what was given
    refused(store, cid, lambda: buy(engine, cid, "100.00", cash="100.01"), GuardFailed,
            f"case {cid}: cannot purchase in state active: 现金部分须在0与消费金额之间")
    refused(store, cid, lambda: buy(engine, cid, "0.00"), GuardFailed,
            f"case {cid}: cannot purchase in state active: 消费金额和件数必须大于0")


def test_redeem_only_multiples_of_100_and_not_todays_points(engine, store, clock):
    cid = card(engine)
    buy(engine, cid, "2000.00")                                                     # 200 points on day 1

    def redeem(points: str) -> Callable[[], Any]:
        return lambda: engine.advance(cid, "redeem", DESK, {"points": points})

    refused(store, cid, redeem("100"), GuardFailed,
            f"case {cid}: cannot redeem in state active: 可用积分不足（当日取得的积分次日后方可抵值）")
    clock.advance(days=1)
    buy(engine, cid, "1000.00")                                                     # +100 today: 300 in all
    for bad in ("150", "0", "-100"):
        refused(store, cid, redeem(bad), GuardFailed,
                f"case {cid}: cannot redeem in state active: 积分抵值只可以是100分的整数倍")
    refused(store, cid, redeem("300"), GuardFailed,
            f"case {cid}: cannot redeem in state active: 可用积分不足（当日取得的积分次日后方可抵值）")
    engine.advance(cid, "redeem", DESK, {"points": "200"})
    assert data(engine, cid, "points", "points_redeemed", "redeemed_value") == (100, 200, "20.00")  # 100 分 = 10 元
    refused(store, cid, redeem("100"), GuardFailed,
            f"case {cid}: cannot redeem in state active: 可用积分不足（当日取得的积分次日后方可抵值）")
    clock.advance(days=1)
    engine.advance(cid, "redeem", DESK, {"points": "100"})
    assert data(engine, cid, "points", "redeemed_value") == (0, "30.00")


def test_return_deducts_points_and_shortfall_is_paid_in_cash(engine, store, clock):
    cid = card(engine)
    buy(engine, cid, "1500.00")                                                     # 150 points
    engine.advance(cid, "return_goods", DESK, {"amount": "500.00", "points": "50"})
    assert data(engine, cid, "points", "cash_due", "year_spend") == (100, "0.00", "1000.00")
    clock.advance(days=1)
    engine.advance(cid, "redeem", DESK, {"points": "100"})                          # spent them all
    engine.advance(cid, "return_goods", DESK, {"amount": "1000.00", "points": "100"})
    assert data(engine, cid, "points", "cash_due", "points_earned", "upgrade_points", "year_spend") == (
        0, "10.00", 0, 0, "0.00")                                                   # 100 分 short = 10 元 cash
    refused(store, cid, lambda: engine.advance(cid, "return_goods", DESK, {"amount": "10.00", "points": "-1"}),
            GuardFailed, f"case {cid}: cannot return_goods in state active: 退货金额须大于0，扣减积分不能为负数")


# -- upgrades -------------------------------------------------------------------------------

def test_vip_card_upgrades_to_gold_at_1000_points(engine, store, clock):
    cid = card(engine)
    buy(engine, cid, "9990.00")                                                     # 999 points
    refused(store, cid, lambda: engine.advance(cid, "upgrade", DESK, {"card_no": "G-1"}), GuardFailed,
            f"case {cid}: cannot upgrade in state active: 累计消费积分未达到升级标准（赠送积分不计）")
    buy(engine, cid, "10.00")
    clock.advance(days=40)
    engine.advance(cid, "upgrade", DESK, {"card_no": "G-1"})
    assert engine.read_case(cid).state == "active"
    assert data(engine, cid, "tier", "card_no", "points", "expires_at", "year_spend") == (
        "gold", "G-1", 1000, "2026-04-12T02:00:00.000Z", "0.00")                       # points move to the new card


def test_gold_upgrades_to_platinum_at_6000(engine, store):
    cid = card(engine, "gold")
    buy(engine, cid, "29999.99")                                                    # 5998 points at 2 per 10 yuan
    refused(store, cid, lambda: engine.advance(cid, "upgrade", DESK), GuardFailed,
            f"case {cid}: cannot upgrade in state active: 累计消费积分未达到升级标准（赠送积分不计）")
    buy(engine, cid, "10.00")
    engine.advance(cid, "upgrade", DESK, {"card_no": "P-1"})
    assert data(engine, cid, "tier", "points") == ("platinum", 6000)
    buy(engine, cid, "100000.00")
    refused(store, cid, lambda: engine.advance(cid, "upgrade", DESK), GuardFailed,
            f"case {cid}: cannot upgrade in state active: 累计消费积分未达到升级标准（赠送积分不计）")


def test_bonus_points_do_not_count_toward_upgrade(engine, store, clock):
    cid = card(engine)
    buy(engine, cid, "5000.00")                                                     # 500 earned
    engine.advance(cid, "grant_bonus", DESK, {"points": "600"})                     # 赠送积分
    assert data(engine, cid, "points", "upgrade_points", "points_bonus") == (1100, 500, 600)
    refused(store, cid, lambda: engine.advance(cid, "upgrade", DESK), GuardFailed,
            f"case {cid}: cannot upgrade in state active: 累计消费积分未达到升级标准（赠送积分不计）")
    clock.advance(days=1)
    engine.advance(cid, "redeem", DESK, {"points": "1100"})                         # but they can be spent
    assert data(engine, cid, "points", "redeemed_value") == (0, "110.00")


# -- lost, damaged, replaced ----------------------------------------------------------------

def test_lost_card_replaced_in_person_with_fee(engine, store, clock):
    cid = card(engine)
    buy(engine, cid, "800.00")
    engine.advance(cid, "report_lost", DESK)
    assert data(engine, cid, "lost_reported_at") == ("2025-03-03T02:00:00.000Z",)
    clock.advance(days=2)

    def replace(in_person: str, shown: str) -> Callable[[], Any]:
        return lambda: engine.advance(cid, "replace", DESK, {"in_person": in_person, "id_number_shown": shown})

    refused(store, cid, replace("false", HOLDER["id_number"]), GuardFailed,
            f"case {cid}: cannot replace in state lost: 须本人持有效身份证件办理")
    refused(store, cid, replace("true", OTHER["id_number"]), GuardFailed,
            f"case {cid}: cannot replace in state lost: 出示的证件与持卡人不符")
    replace("true", HOLDER["id_number"])()
    assert (engine.read_case(cid).state, data(engine, cid, "fees_charged")) == ("replacing", ("10.00",))
    assert ("finance", "补卡工本手续费已收取，请入账") in notices(store, cid)

    def collect(number: str) -> Callable[[], Any]:
        return lambda: engine.advance(cid, "collect", DESK, {"new_card_no": number})

    refused(store, cid, collect("C-NEW"), GuardFailed, f"case {cid}: cannot collect in state replacing: 新会员卡隔日领取")
    clock.advance(days=1)
    refused(store, cid, collect(f"C-{cid}"), GuardFailed,
            f"case {cid}: cannot collect in state replacing: 补办的新卡须使用新卡号")
    collect("C-NEW")()
    assert engine.read_case(cid).state == "active"
    assert data(engine, cid, "card_no", "points", "expires_at", "fees_charged") == (
        "C-NEW", 80, "2026-03-03T02:00:00.000Z", "10.00")                              # points and validity kept


def test_damaged_card_is_replaced_with_fee_and_gold_cards_free(engine, store, clock):
    vip = card(engine)
    engine.advance(vip, "report_damaged", DESK, {"in_person": "true", "id_number_shown": HOLDER["id_number"]})
    gold = card(engine, "gold", **OTHER)
    engine.advance(gold, "report_damaged", DESK, {"in_person": "true", "id_number_shown": OTHER["id_number"]})
    assert [(engine.read_case(c).state, data(engine, c, "fees_charged")[0]) for c in (vip, gold)] == [
        ("replacing", "10.00"), ("replacing", "0.00")]                               # 金卡损坏、丢失可免费补办 [§七.8.2 G]
    assert notices(store, gold) == []


# -- changes of holder ------------------------------------------------------------------------

def test_transfer_needs_both_ids_and_keeps_points(engine, store):
    cid = card(engine, "gold")
    buy(engine, cid, "700.00")
    to = {"transferor_id_number": HOLDER["id_number"], "new_name": OTHER["name"],
          "new_id_number": OTHER["id_number"], "new_birth_date": OTHER["birth_date"], "new_phone": OTHER["phone"]}

    def transfer(**change: str) -> Callable[[], Any]:
        return lambda: engine.advance(cid, "transfer", DESK, {**to, **change})

    refused(store, cid, transfer(transferor_id_number="000000000000000000"), GuardFailed,
            f"case {cid}: cannot transfer in state active: 转让者证件与持卡人不符")
    refused(store, cid, transfer(new_id_number=""), MissingFields,
            f"case {cid}: cannot transfer in state active: missing required: input new_id_number "
            f"(set with --set new_id_number=…)")
    refused(store, cid, transfer(new_id_number=HOLDER["id_number"]), GuardFailed,
            f"case {cid}: cannot transfer in state active: 须提供受让者本人的有效证件")
    refused(store, cid, transfer(new_birth_date="2010-01-01"), GuardFailed,
            f"case {cid}: cannot transfer in state active: 受让者须年满18周岁")
    before = data(engine, cid, "tier", "points", "expires_at", "card_no")
    transfer()()
    assert data(engine, cid, "tier", "points", "expires_at", "card_no") == before == ("gold", 140,
                                                                                       "2026-03-03T02:00:00.000Z",
                                                                                       f"C-{cid}")
    assert data(engine, cid, "name", "id_number", "previous_holder_name", "previous_id_number") == (
        OTHER["name"], OTHER["id_number"], HOLDER["name"], HOLDER["id_number"])
    # the previous holder is free to apply for a card of their own
    assert engine.read_case(apply_for(engine)).state == "applied"


def test_card_changes_holder_only_through_the_transfer_event(engine, store):
    """§七.16.2 不得转借或转让 versus §七.15.2: we follow 15.2, and only the transfer event.

    The holder's ID number and birth date are first given at `issue` (from 申请, once) [processes.md §3]."""
    d = engine.catalog.get("member_card")
    holder_fields = {"name", "id_number", "birth_date"}
    changing = sorted({t.event for t in d.transitions
                       if holder_fields & (set(t.accepts) | {k for k, _ in t.effects})})
    assert changing == ["issue", "transfer"]
    assert [t.sources for t in d.transitions if t.event == "issue"] == [("applied",)]
    cid = card(engine)
    refused(store, cid, lambda: engine.advance(cid, "update_contact", DESK, {"name": OTHER["name"]}), UsageError,
            "--set name: not accepted by event 'update_contact' (it accepts: address, phone)")
    engine.advance(cid, "update_contact", DESK, {"phone": "13900009999", "address": "太原市迎泽大街1号"})
    assert data(engine, cid, "name", "phone") == (HOLDER["name"], "13900009999")


# -- renewal and reactivation -----------------------------------------------------------------

@pytest.mark.parametrize("tier, spend, renewed_as", [
    ("vip", "300.00", "vip"),
    ("gold", "9999.99", "vip"), ("gold", "10000.00", "gold"),
    ("platinum", "19999.99", "gold"), ("platinum", "20000.00", "platinum")])
def test_renewal_downgrades_by_year_spend(engine, store, clock, tier, spend, renewed_as):
    cid = card(engine, tier)
    buy(engine, cid, spend)
    clock.advance(days=365)
    timer_fires(engine, cid, "expire")
    assert engine.read_case(cid).state == "expired"
    flagged = ("vip_desk", "本期消费未达保级标准，续卡时将自动降级") in notices(store, cid)
    assert flagged == (renewed_as != tier)                                         # the yearly downgrade flag
    refused(store, cid, lambda: engine.advance(cid, "renew", "wang.fang"), RoleNotAllowed,
            f"case {cid}: cannot renew in state expired: wang.fang has none of the roles allowed: 贵宾厅(vip_desk)")
    engine.advance(cid, "renew", DESK)
    assert engine.read_case(cid).state == "active"
    assert data(engine, cid, "tier", "expires_at", "year_spend") == (renewed_as, "2027-03-03T02:00:00.000Z", "0.00")


def test_expired_card_not_renewed_lapses_and_is_void(engine, store, clock):
    cid = card(engine, "gold")
    clock.advance(days=365)
    timer_fires(engine, cid, "expire")
    engine.advance(cid, "lapse", DESK, {"cancel_reason": "会员未续卡"})
    assert engine.read_case(cid).state == "cancelled"
    refused(store, cid, lambda: buy(engine, cid, "100.00"), WrongState,
            f"case {cid}: cannot purchase in state cancelled: 持卡消费积分(purchase) is not possible in "
            f"作废(cancelled); the case is closed")


def test_reactivate_needs_same_day_cash_200(engine, store, clock):
    cid = card(engine)                                                              # a 贵宾卡 never used
    clock.advance(days=365)
    timer_fires(engine, cid, "deactivate")
    assert engine.read_case(cid).state == "inactive"
    assert ("vip_desk", "贵宾卡一年内未使用已失效，一个月内当日消费满200元可重新激活") in notices(store, cid)
    clock.advance(days=10)

    def reactivate(cash: str, in_person: str = "true") -> Callable[[], Any]:
        return lambda: engine.advance(cid, "reactivate", DESK, {"same_day_cash": cash, "in_person": in_person})

    refused(store, cid, reactivate("199.99"), GuardFailed,
            f"case {cid}: cannot reactivate in state inactive: 当日现金累计消费未满200元")
    refused(store, cid, reactivate("200.00", "false"), GuardFailed,
            f"case {cid}: cannot reactivate in state inactive: 须凭失效贵宾卡、当日收银条及有效身份证件办理")
    reactivate("200.00")()
    assert engine.read_case(cid).state == "active"
    assert data(engine, cid, "tier", "expires_at") == ("vip", "2027-03-13T02:00:00.000Z")      # a new year from today


# -- ending a membership --------------------------------------------------------------------

def test_member_may_withdraw_and_cs_manager_may_revoke(engine, store):
    leaving = card(engine)
    refused(store, leaving, lambda: engine.advance(leaving, "withdraw", DESK), MissingFields,
            f"case {leaving}: cannot withdraw in state active: missing required: cancel_reason "
            f"(set with --set cancel_reason=…)")
    engine.advance(leaving, "withdraw", DESK, {"cancel_reason": "会员要求终止服务"})
    assert engine.read_case(leaving).state == "cancelled"

    abusive = card(engine, **OTHER)
    refused(store, abusive, lambda: engine.advance(abusive, "revoke", DESK, {"cancel_reason": "违反会员章程"}),
            RoleNotAllowed, f"case {abusive}: cannot revoke in state active: {DESK} has none of the roles allowed: "
                            f"客服部经理(cs_manager)")
    engine.advance(abusive, "revoke", "zheng.hai", {"cancel_reason": "转借会员卡，违反会员章程"})
    assert engine.read_case(abusive).state == "cancelled"


# -- roles ----------------------------------------------------------------------------------

def test_whoever_fires_a_member_card_event_must_hold_an_allowed_role(engine, store):
    cid = apply_for(engine)
    issuing = {"tier": "vip", "birth_date": HOLDER["birth_date"], "id_number": HOLDER["id_number"],
               "member_id": "M-1", "card_no": "C-1", "same_day_cash": "300", "in_person": "true"}
    refused(store, cid, lambda: engine.advance(cid, "issue", "wang.fang", issuing),
            RoleNotAllowed, f"case {cid}: cannot issue in state applied: wang.fang has none of the roles allowed: "
                            f"贵宾厅(vip_desk)")
    engine.advance(cid, "issue", "sun.li", issuing)                                 # 孙丽: cs_assistant AND vip_desk
    refused(store, cid, lambda: engine.advance(cid, "expire", DESK), RoleNotAllowed,
            f"case {cid}: cannot expire in state active: 会员卡到期(expire) is fired by timers only")
    assert [r["actor"] for r in audit_rows(store, cid) if r["kind"] == "transition"] == ["sun.li"]
