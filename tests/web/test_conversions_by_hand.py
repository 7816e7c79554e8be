"""Conversions changed by hand: the same lifecycle and ledger rules as a postback's status change
(commission reversed once), audited, and a conversion's page showing what lies behind it."""

from collections.abc import Iterator
from typing import Any

import pytest

from clickback.core.accounts import Role
from tests.conftest import Client, World
from tests.receiver import Receiver, receiving
from tests.web.personas import Keys, add_user, sign_in
from tests.web.test_outbound import eventually, query_of

CPA_100 = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def ftd(client: Client, world: World) -> int:
    """Alice's player P-1: registered, then a first deposit qualifying a CPA of 100."""
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    click_id = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="reg", player_id="P-1", token=world.token)
    reply = client.postback(event="ftd", player_id="P-1", payout="25", txn_id="D-1", token=world.token)
    assert reply.json()["result"] == "accepted", reply.text
    return int(reply.json()["conversion_id"])


def change(client: Client, conversion: int, status: str, reason: str, key: str | None = None) -> Any:
    headers = Keys.header(key) if key else client.auth
    return client.http.post(
        f"/api/conversions/{conversion}/status", json={"status": status, "reason": reason}, headers=headers
    )


def cpa_sum(client: Client) -> float:
    return sum(float(e["amount"]) for e in client.items("/commissions", kind="cpa"))


def test_a_rejection_by_hand_reverses_the_cpa_once_and_is_audited(client: Client, world: World) -> None:
    conversion = ftd(client, world)
    assert cpa_sum(client) == 100
    boss = add_user(client, "boss", Role.MANAGER)

    rejected = change(client, conversion, "rejected", "fraud: same IP x50", boss)
    assert rejected.status_code == 200, rejected.text
    assert cpa_sum(client) == 0
    # Cancelling the rejected conversion reverses nothing more.
    assert change(client, conversion, "cancelled", "closed", boss).status_code == 200
    assert cpa_sum(client) == 0
    assert len(client.items("/commissions", kind="cpa")) == 2

    entries = client.items("/audit", entity_kind="conversion", entity_id=conversion)
    assert [(e["actor"], e["before"], e["after"], e["reason"]) for e in entries] == [
        ("boss", {"status": "rejected"}, {"status": "cancelled"}, "closed"),
        ("boss", {"status": "approved"}, {"status": "rejected"}, "fraud: same IP x50"),
    ]


def test_a_change_by_hand_needs_a_reason_and_a_possible_move(client: Client, world: World) -> None:
    conversion = ftd(client, world)
    for status, reason, expected in (
        ("rejected", "", 422),
        ("rejected", "x" * 513, 422),
        ("pending", "why", 422),
        ("approved", "already", 409),
    ):
        assert change(client, conversion, status, reason).status_code == expected, (status, reason)
    assert client.items("/audit", entity_kind="conversion") == []
    assert cpa_sum(client) == 100


def test_a_conversions_page_shows_its_postbacks_entries_and_deliveries_to_each_their_own(
    client: Client, world: World, receiver: Receiver
) -> None:
    template = {"affiliate_id": world.alice["id"], "url": receiver.url("/pb?st={status}"), "events": ["ftd"]}
    client.api("POST", "/outbound/templates", json=template)
    conversion = ftd(client, world)
    change(client, conversion, "rejected", "chargeback")
    receiver.wait_for(2)
    keys = {
        "manager": client.auth,
        "alice": Keys.header(add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])),
        "northstar": Keys.header(
            add_user(client, "northstar", Role.ADVERTISER, advertiser_id=world.northstar["id"])
        ),
    }
    # Both sent and their attempts recorded (the dispatcher writes them after the answer).
    eventually(
        lambda: (
            {d["state"] for d in client.api("GET", f"/conversions/{conversion}")["deliveries"]}
            == {"delivered"}
        )
    )
    seen: dict[str, dict[str, Any]] = {}
    for who, headers in keys.items():
        response = client.http.get(f"/api/conversions/{conversion}", headers=headers)
        assert response.status_code == 200, response.text
        seen[who] = response.json()

    full = seen["manager"]
    assert [h["to_status"] for h in full["history"]] == ["approved", "rejected"]
    assert full["history"][-1]["reason"] == "chargeback"
    assert [p["conversion_id"] for p in full["postbacks"]] == [conversion]
    assert [e["amount"] for e in full["commissions"]] == ["100.00", "-100.00"]
    assert {d["status"] for d in full["deliveries"]} == {"approved", "rejected"}
    assert seen["alice"]["postbacks"] == [] and len(seen["alice"]["commissions"]) == 2
    assert seen["northstar"]["commissions"] == seen["northstar"]["deliveries"] == []
    assert len(seen["northstar"]["postbacks"]) == 1


def test_conversions_are_searched_by_player_transaction_affiliate_and_status(
    client: Client, world: World
) -> None:
    conversion = ftd(client, world)
    for params in (
        {"player_id": "P-1", "event": "first_deposit"},
        {"txn_id": "D-1"},
        {"affiliate_id": world.alice["id"], "status": "approved", "event": "first_deposit"},
        {"offer_id": world.casino["id"], "txn_id": "D-1"},
    ):
        assert [c["id"] for c in client.items("/conversions", **params)] == [conversion], params
    assert client.items("/conversions", txn_id="D-1", status="rejected") == []
    assert client.items("/conversions", affiliate_id=world.bob["id"]) == []


def test_a_manager_rejects_a_conversion_on_its_page_and_the_others_cannot(
    client: Client, world: World
) -> None:
    conversion = ftd(client, world)
    add_user(client, "boss", Role.MANAGER)
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    boss, alice = sign_in(client, "boss"), sign_in(client, "alice")
    page = f"/conversions/{conversion}"

    # Her page shows no form; a form posted as her changes nothing, token or not.
    assert 'data-form="status"' not in alice.get(page).text
    assert alice.post(page, {"status": "rejected", "reason": "mine"}).status_code == 403
    # A manager's form without the session's token, or with no reason: refused, nothing changed.
    assert boss.post(page, {"status": "rejected", "reason": "fraud"}, csrf=False).status_code == 403
    empty = boss.post(page, {"status": "rejected", "reason": "  "})
    assert empty.status_code == 400 and "reason" in empty.text
    assert boss.post(page, {"status": "lost", "reason": "x"}).status_code == 400
    assert client.api("GET", f"/conversions/{conversion}")["status"] == "approved"

    done = boss.post(page, {"status": "rejected", "reason": "<b>fraud</b>"})
    assert done.status_code == 303 and done.headers["location"] == page
    assert client.api("GET", f"/conversions/{conversion}")["status"] == "rejected"
    shown = boss.get(page).text
    assert "&lt;b&gt;fraud&lt;/b&gt;" in shown and "<b>fraud" not in shown  # the reason, as text
    # The ledger followed, as for the API's change: the CPA reversed.
    assert sum(float(e["amount"]) for e in client.items("/commissions", kind="cpa")) == 0
    [entry] = client.items("/audit", entity_kind="conversion", entity_id=conversion)
    assert entry["actor"].startswith("boss") and entry["after"]["status"] == "rejected"

    # A change the lifecycle refuses: the page again, with why.
    again = boss.post(page, {"status": "rejected", "reason": "twice"})
    assert again.status_code == 409 and "rejected already" in again.text


def test_a_qualified_cpa_rejected_by_hand_is_disallowed_and_approved_again_is_paid_again(
    client: Client, world: World
) -> None:
    first_deposit = ftd(client, world)
    [qualified] = client.items("/conversions", player_id="P-1", event="qualified_cpa")
    assert cpa_sum(client) == 100

    # The operator refuses the CPA: the ledger reverses it; the deposit that qualified stands.
    assert change(client, qualified["id"], "rejected", "operator: bonus abuse").status_code == 200
    assert cpa_sum(client) == 0
    assert client.api("GET", f"/conversions/{first_deposit}")["status"] == "approved"
    [reversal] = [e for e in client.items("/commissions", kind="cpa") if e["reverses_id"]]
    assert float(reversal["amount"]) == -100 and "by hand" in reversal["detail"]
    # A later deposit does not book it again: the player qualified once.
    client.postback(event="dep", player_id="P-1", payout="30", txn_id="D-2", token=world.token)
    assert cpa_sum(client) == 0

    # A dispute won: approved again, the CPA is booked again, once.
    assert change(client, qualified["id"], "approved", "dispute won").status_code == 200
    assert cpa_sum(client) == 100
    assert change(client, qualified["id"], "approved", "twice").status_code == 409
    assert sorted(float(e["amount"]) for e in client.items("/commissions", kind="cpa")) == [-100, 100, 100]
    # Cancelled for good: reversed again, and nothing reopens it.
    assert change(client, qualified["id"], "cancelled", "operator closed the account").status_code == 200
    assert cpa_sum(client) == 0
    assert client.api("GET", f"/conversions/{qualified['id']}")["status"] == "cancelled"


def reversed_by_the_rules(client: Client, world: World, receiver: Receiver) -> tuple[int, dict[str, Any]]:
    """P-1's first deposit and qualified_cpa, the deposit then declined: the rules reversed the
    CPA (its qualified_cpa rejected), and Alice's tracker was told approved, then rejected."""
    template = {"affiliate_id": world.alice["id"], "url": receiver.url("/pb?st={status}&p={payout}")}
    client.api("POST", "/outbound/templates", json=template | {"events": ["qualified_cpa"]})
    first_deposit = ftd(client, world)
    [qualified] = client.items("/conversions", player_id="P-1", event="qualified_cpa")
    client.postback(
        event="ftd", player_id="P-1", payout="25", txn_id="D-1", status="rejected", token=world.token
    )
    assert client.api("GET", f"/conversions/{qualified['id']}")["status"] == "rejected"
    assert cpa_sum(client) == 0
    receiver.deliveries(2)
    return first_deposit, qualified


def test_a_qualified_cpa_whose_rules_do_not_hold_is_not_approved_by_hand(
    client: Client, world: World, receiver: Receiver
) -> None:
    """Its status and the ledger agree: approved, it is paid; while the rules do not hold, the
    ledger pays nothing, so approving it is refused, naming the rule not met."""
    first_deposit, qualified = reversed_by_the_rules(client, world, receiver)

    refused = change(client, qualified["id"], "approved", "operator says it qualified")

    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        "the CPA's rules do not hold now (first deposit ≥ 20.00 EUR: missing): the ledger would "
        "pay nothing; it can be approved once they hold"
    )
    shown = client.api("GET", f"/conversions/{qualified['id']}")
    assert (shown["status"], [h["to_status"] for h in shown["history"]]) == (
        "rejected",
        ["approved", "rejected"],
    )
    assert cpa_sum(client) == 0
    assert client.items("/audit", entity_kind="conversion") == []
    # Disallowed by hand too: approving it still needs the rules to hold.
    assert change(client, qualified["id"], "rejected", "bonus abuse").status_code == 200
    assert change(client, qualified["id"], "approved", "dispute won").status_code == 409
    # Once they hold (the deposit's dispute won), approving it pays it, once.
    client.postback(
        event="ftd", player_id="P-1", payout="25", txn_id="D-1", status="approved", token=world.token
    )
    assert client.api("GET", f"/conversions/{first_deposit}")["status"] == "approved"
    assert cpa_sum(client) == 0  # disallowed by hand: the rules alone do not book it
    assert change(client, qualified["id"], "approved", "dispute won").status_code == 200
    assert cpa_sum(client) == 100
    statuses = [query_of(g.target)["st"] for g in receiver.deliveries(3)]
    assert statuses == ["approved", "rejected", "approved"]  # never approved while unpaid
    assert len(client.api("GET", f"/conversions/{qualified['id']}")["deliveries"]) == 3


def test_an_advertisers_postback_approving_a_qualified_cpa_whose_rules_do_not_hold_is_refused(
    client: Client, world: World, receiver: Receiver
) -> None:
    """As a person's approval: approved, a CPA is paid, so a postback approving the player's
    qualified_cpa while the ledger would pay nothing is refused with a reason, and nothing moves;
    once the rules hold, clickback approves it itself."""
    first_deposit, qualified = reversed_by_the_rules(client, world, receiver)

    refused = client.postback(event="qualified_cpa", player_id="P-1", status="approved", token=world.token)

    assert refused.status_code == 409, refused.text
    assert (refused.json()["reason"], refused.json()["detail"]) == (
        "cpa_rules_not_met",
        "the CPA's rules do not hold now (first deposit ≥ 20.00 EUR: missing): the ledger would "
        "pay nothing; it can be approved once they hold",
    )
    [logged] = client.items("/postbacks", reason="cpa_rules_not_met")
    assert (logged["result"], logged["http_status"]) == ("rejected", 409)
    assert client.api("GET", f"/conversions/{qualified['id']}")["status"] == "rejected"
    assert cpa_sum(client) == 0
    # The rules hold again (the deposit's dispute won): the CPA is booked and approved, once.
    client.postback(
        event="ftd", player_id="P-1", payout="25", txn_id="D-1", status="approved", token=world.token
    )
    assert client.api("GET", f"/conversions/{first_deposit}")["status"] == "approved"
    assert client.api("GET", f"/conversions/{qualified['id']}")["status"] == "approved"
    assert cpa_sum(client) == 100
    statuses = [query_of(g.target)["st"] for g in receiver.deliveries(3)]
    assert statuses == ["approved", "rejected", "approved"]
