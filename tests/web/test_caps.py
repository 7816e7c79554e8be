"""Conversion caps (ADR 17): under the cap a CPA qualification is paid; at it, still; past it the
qualification is recorded, marked over_cap, not paid, and the affiliate's tracker is told."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from alembic import command

from clickback.store.migrate import alembic_config, upgrade
from tests.conftest import Client, World
from tests.receiver import Receiver, receiving

# Any first deposit qualifies: one postback makes a paid player.
CPA_10 = {"kind": "cpa", "cpa": {"amount": "10", "require_registration": False, "ftd_min": "20"}}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def qualify(client: Client, world: World, link: str, player: str) -> None:
    click_id = client.click(link)
    client.flush()
    reply = client.postback(
        click_id=click_id, event="ftd", player_id=player, payout="50", txn_id=player, token=world.token
    )
    assert reply.json()["result"] == "accepted", reply.text


def paid(client: Client, world: World) -> list[dict[str, Any]]:
    return client.items("/commissions", kind="cpa", affiliate_id=world.alice["id"])


def cpas(client: Client, **params: Any) -> list[dict[str, Any]]:
    return client.items("/conversions", event="qualified_cpa", **params)


def test_under_and_at_the_cap_are_paid_past_it_recorded_unpaid_and_announced(
    client: Client, world: World, receiver: Receiver
) -> None:
    offer = world.casino["id"]
    client.api("PUT", f"/offers/{offer}/deal", json=CPA_10)
    cap = client.api("PUT", f"/offers/{offer}/cap", json={"total": 2})
    assert (cap["affiliate_id"], cap["total"], cap["daily"], cap["counted"]) == (None, 2, None, 0)
    template = {
        "affiliate_id": world.alice["id"],
        "url": receiver.url("/pb?p={payout}&cap={cap_status}"),
        "events": ["qualified_cpa"],
    }
    client.api("POST", "/outbound/templates", json=template)

    for n in range(3):
        qualify(client, world, world.alice_casino, f"P-{n}")

    assert [e["amount"] for e in paid(client, world)] == ["10.00", "10.00"]
    over = cpas(client, over_cap=True)
    assert len(over) == 1 and len(cpas(client)) == 3
    assert (over[0]["payout"], over[0]["player_id"]) == ("0.00", "P-2")
    assert "over_cap" in over[0]["warnings"]
    [cap] = client.items(f"/offers/{offer}/caps")
    assert cap["counted"] == 2
    # The postback log says so on the first deposit that made the player qualify past the cap.
    logged = {p["conversion_id"]: p["detail"] for p in client.items("/postbacks")}
    ftd = client.items("/conversions", event="first_deposit", player_id="P-2")[0]["id"]
    assert logged[ftd].startswith("over_cap: ")
    assert sum("over_cap" in d for d in logged.values()) == 1
    got = sorted(
        parse_qs(urlsplit(g.target).query, keep_blank_values=True)["cap"][0] for g in receiver.deliveries(3)
    )
    assert got == ["", "", "over_cap"]


def test_an_affiliates_own_daily_cap_leaves_the_others_paid(client: Client, world: World) -> None:
    offer = world.casino["id"]
    client.api("PUT", f"/offers/{offer}/deal", json=CPA_10)
    client.api("PUT", f"/offers/{offer}/caps/{world.alice['id']}", json={"daily": 1, "zone": "Europe/Berlin"})

    for n in range(2):
        qualify(client, world, world.alice_casino, f"A-{n}")
        qualify(client, world, world.bob_casino, f"B-{n}")

    assert len(paid(client, world)) == 1
    assert len(client.items("/commissions", kind="cpa", affiliate_id=world.bob["id"])) == 2
    assert [c["affiliate_id"] for c in cpas(client, over_cap=True)] == [world.alice["id"]]
    [cap] = client.items(f"/offers/{offer}/caps")
    assert (cap["today"], cap["zone"]) == (1, "Europe/Berlin")
    [entry] = client.items("/audit", entity_kind="cap")
    assert entry["after"]["daily"] == 1 and entry["before"] is None


def test_a_lead_offer_caps_its_paid_registrations(client: Client, world: World) -> None:
    """A CPL offer is a CPA deal whose rule is the registration alone: its cap counts leads."""
    offer = world.casino["id"]
    lead = {"kind": "cpa", "cpa": {"amount": "3", "require_registration": True}}
    client.api("PUT", f"/offers/{offer}/deal", json=lead)
    client.api("PUT", f"/offers/{offer}/cap", json={"daily": 2})

    for n in range(3):
        click_id = client.click(world.alice_casino)
        client.flush()
        reply = client.postback(
            click_id=click_id, event="registration", player_id=f"L-{n}", txn_id=f"L-{n}", token=world.token
        )
        assert reply.json()["result"] == "accepted", reply.text

    assert [e["amount"] for e in paid(client, world)] == ["3.00", "3.00"]
    assert [c["player_id"] for c in cpas(client, over_cap=True)] == ["L-2"]
    assert len(client.items("/conversions", event="registration")) == 3  # every lead recorded


def test_a_reversed_payment_does_not_free_its_slot(client: Client, world: World) -> None:
    offer = world.casino["id"]
    client.api("PUT", f"/offers/{offer}/deal", json=CPA_10)
    client.api("PUT", f"/offers/{offer}/cap", json={"total": 1})
    qualify(client, world, world.alice_casino, "P-1")
    ftd = client.items("/conversions", event="first_deposit", player_id="P-1")[0]["id"]
    client.api("POST", f"/conversions/{ftd}/status", json={"status": "rejected", "reason": "fraud"})
    assert sum(float(e["amount"]) for e in paid(client, world)) == 0

    qualify(client, world, world.alice_casino, "P-2")

    assert [c["player_id"] for c in cpas(client, over_cap=True)] == ["P-2"]
    assert sum(float(e["amount"]) for e in paid(client, world)) == 0
    # The unpaid qualification whose first deposit is rejected is rejected too; nothing reversed.
    ftd = client.items("/conversions", event="first_deposit", player_id="P-2")[0]["id"]
    client.api("POST", f"/conversions/{ftd}/status", json={"status": "rejected", "reason": "fraud"})
    assert [c["status"] for c in cpas(client, over_cap=True)] == ["rejected"]
    assert len(paid(client, world)) == 2  # P-1's entry and its reversal


def test_a_bad_cap_is_refused_naming_its_field(client: Client, world: World) -> None:
    for body, field in (
        ({"total": -1}, "total"),
        ({"daily": 10**10}, "daily"),
        ({"zone": "Mars/Olympus"}, "zone"),
        ({"event": "deposit"}, "event"),
        ({"zone": "x" * 65}, "zone"),
    ):
        response = client.http.put(f"/api/offers/{world.casino['id']}/cap", json=body, headers=client.auth)
        assert response.status_code == 422 and field in response.text, (body, response.text)
    missing = client.http.put("/api/offers/99999/cap", json={"total": 1}, headers=client.auth)
    assert missing.status_code == 404
    assert client.items("/audit", entity_kind="cap") == []


def test_reports_count_every_qualification_and_commission_only_what_was_paid(
    client: Client, world: World
) -> None:
    """ADR 17: the reports show the advertiser's volume (over-cap qualifications included), the
    ledger what is paid; a qualification rejected counts no more, paid or not."""
    offer = world.casino["id"]
    client.api("PUT", f"/offers/{offer}/deal", json=CPA_10)
    client.api("PUT", f"/offers/{offer}/cap", json={"daily": 2, "total": 10})
    for n in range(6):
        qualify(client, world, world.alice_casino, f"P-{n}")
    assert (len(cpas(client)), len(cpas(client, over_cap=True))) == (6, 4)

    def figures() -> list[tuple[int, dict[str, str]]]:
        # By offer from the rollups; by two sub IDs from the raw tables: the same figures.
        by_offer, raw = client.report(group_by="offer"), client.report(group_by="sub1,sub2")
        assert (by_offer["source"], raw["source"]) == ("values", "raw")
        [offer_row], [raw_row] = by_offer["rows"], raw["rows"]
        return [(r["qualified_cpas"], r["cpa_commission"]) for r in (offer_row, raw_row)]

    assert figures() == [(6, {"EUR": "20.00"})] * 2
    # One paid and one over-cap qualification rejected (their first deposits declined).
    for player in ("P-0", "P-5"):
        ftd = client.items("/conversions", event="first_deposit", player_id=player)[0]["id"]
        client.api("POST", f"/conversions/{ftd}/status", json={"status": "rejected", "reason": "fraud"})
    assert figures() == [(4, {"EUR": "10.00"})] * 2
    # The paid one's first deposit approved again: qualified and paid again.
    ftd = client.items("/conversions", event="first_deposit", player_id="P-0")[0]["id"]
    client.api("POST", f"/conversions/{ftd}/status", json={"status": "approved", "reason": "dispute won"})
    assert figures() == [(5, {"EUR": "20.00"})] * 2


def test_migration_0026_recounts_the_rollups_qualified_cpas(client: Client, world: World) -> None:
    """Rollups written before 0026 counted CPA entries less reversals (0026's downgrade counts
    them so again); 0026 counts every standing qualification, as the raw tables do."""
    offer = world.casino["id"]
    client.api("PUT", f"/offers/{offer}/deal", json=CPA_10)
    client.api("PUT", f"/offers/{offer}/cap", json={"total": 2})
    for n in range(4):
        qualify(client, world, world.alice_casino, f"P-{n}")
    ftd = client.items("/conversions", event="first_deposit", player_id="P-0")[0]["id"]
    client.api("POST", f"/conversions/{ftd}/status", json={"status": "rejected", "reason": "fraud"})
    db = client.node.runtime.db

    def migrated(revision: str) -> tuple[int, int]:
        async def run() -> None:
            async with db.write() as conn:
                await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))

        client.node.call(run if revision != "head" else lambda: upgrade(db))
        # By offer from the rollups; by two sub IDs from the raw tables.
        by_offer, raw = client.report(group_by="offer"), client.report(group_by="sub1,sub2")
        return by_offer["rows"][0]["qualified_cpas"], raw["rows"][0]["qualified_cpas"]

    assert migrated("0025") == (1, 3)  # P-1 paid (P-0's CPA reversed); P-2, P-3 past the cap
    assert migrated("head") == (3, 3)
