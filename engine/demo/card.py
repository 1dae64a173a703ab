"""The member-card story of `caseflow demo`: application → purchases → upgrade → lost → replaced."""

from __future__ import annotations

from typing import TYPE_CHECKING

from caseflow.errors import CaseflowError

if TYPE_CHECKING:
    from caseflow.demo.story import Narrator


def member_card_story(n: Narrator, ids: dict[str, list[str]]) -> None:
    n.title("会员卡 member card — application, points, upgrade to gold, lost and replaced")
    n.at("2025-10-14 10:00")
    cid = n.open("member_card", "xie.na", name="周晓梅", phone="13700002222")
    ids["member_card"].append(cid)
    # the tier, birth date and ID number are given and checked at issue (processes.md §3)
    n.do(cid, "issue", "xie.na", tier="vip", birth_date="1990-01-01", id_number="310101199001011234",
         member_id="M-0001", card_no="VIP-100001", same_day_cash="280.00", in_person="true", refused=True)
    n.do(cid, "issue", "xie.na", tier="vip", birth_date="1990-01-01", id_number="310101199001011234",
         member_id="M-0001", card_no="VIP-100001", same_day_cash="350.00", in_person="true")
    n.do(cid, "purchase", "xie.na", amount="6009.90", special_goods="false",      # all in cash
         promotion="false", items="3")
    n.say("points (1 per full 10 yuan, remainder dropped): " + n.field(cid, "points", "upgrade_points"))
    n.do(cid, "redeem", "xie.na", points="100", refused=True)
    n.wait(days=1)
    n.do(cid, "redeem", "xie.na", points="100")
    n.do(cid, "purchase", "xie.na", amount="1000.00", special_goods="false", promotion="true", items="1")
    n.say("promotion goods earn nothing: " + n.field(cid, "points"))
    n.do(cid, "purchase", "xie.na", amount="4500.00", cash_amount="4000.00", special_goods="false",
         promotion="false", items="2")
    n.say("only the cash part (4000.00 of 4500.00) earns points: " + n.field(cid, "points", "upgrade_points"))
    n.do(cid, "upgrade", "xie.na", card_no="GOLD-200001")
    n.say("tier: " + n.field(cid, "tier", "upgrade_points", "expires_at"))
    n.wait(days=20)
    n.do(cid, "report_lost", "sun.li")
    n.do(cid, "replace", "sun.li", in_person="true", id_number_shown="310101199001019999", refused=True)
    n.do(cid, "replace", "sun.li", in_person="true", id_number_shown="310101199001011234")
    n.do(cid, "collect", "sun.li", new_card_no="GOLD-200777", refused=True)
    n.wait(days=1)
    n.do(cid, "collect", "sun.li", new_card_no="GOLD-200777")
    n.say("after replacement: " + n.field(cid, "card_no", "points", "fees_charged"))
    _one_card_per_person(n)


def _one_card_per_person(n: Narrator) -> None:
    """每人限申办一张: the same person applies again; the ID number is refused at issue."""
    again = n.open("member_card", "yuan.yuan", name="周晓梅", phone="13700002222")
    try:
        n.engine.advance(again, "issue", "yuan.yuan", {
            "tier": "gold", "birth_date": "1990-01-01", "id_number": "310101199001011234",
            "member_id": "M-0002", "card_no": "GOLD-200002", "same_day_cash": "6000.00", "in_person": "true"})
    except CaseflowError as exc:      # the refusal is the point of the story
        n.say(f"✘ a second card for the same ID number is refused — {exc}")
    n.do(again, "decline", "yuan.yuan", decline_reason="每人限申办一张")
