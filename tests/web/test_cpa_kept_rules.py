"""A booked CPA keeps the rules and the amount it was booked under, whatever the deal is now,
over HTTP postbacks and changes by hand, on both databases: a rejection, a chargeback, a person
rejecting or approving the qualified_cpa are judged by them. A player who never qualified is
judged by the deal in force."""

from decimal import Decimal

from alembic import command
from sqlalchemy import select

from clickback.store.migrate import alembic_config, upgrade
from clickback.store.tables import players
from tests.conftest import Client, World
from tests.web.test_commissions import (
    CPA_100,
    cpa_total,
    deal,
    ledger,
    qualified_cpa,
    qualified_status,
    register,
    send,
    t1,
)
from tests.web.test_conversions_by_hand import change

REVSHARE_ONLY = {"kind": "revshare", "cpa": None, "revshare": {"percent": "25"}}
FTD_20 = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}


def qualified_id(client: Client) -> int:
    return int(qualified_cpa(client)["id"])


def test_a_first_deposit_rejected_after_the_deal_became_revshare_only_reverses_the_cpa(
    client: Client, world: World
) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    t1(client, world)
    assert cpa_total(client) == 100
    deal(client, world.casino, REVSHARE_ONLY)

    t1(client, world, "rejected")

    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "rejected")
    reversal = ledger(client, kind="cpa")[0]
    assert (reversal["amount"], reversal["currency"]) == ("-100.00", "EUR")
    # The dispute won: the CPA it was booked under is booked again, once.
    t1(client, world, "approved")
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    assert sorted(Decimal(e["amount"]) for e in ledger(client, kind="cpa")) == [-100, 100, 100]


def test_a_chargeback_after_the_first_deposit_minimum_was_raised_is_judged_by_the_booked_one(
    client: Client, world: World
) -> None:
    """Booked on a first deposit of 30 against a minimum of 20; the minimum is then 100. A
    chargeback of 1 leaves 29 ≥ 20: the CPA stands. One of 10 more leaves 19: reversed."""
    deal(client, world.casino, FTD_20)
    register(client, world, world.alice_casino, "H1")
    send(client, world, event="deposit", player_id="H1", payout="30", txn_id="H1D")
    assert cpa_total(client) == 100
    deal(client, world.casino, {"cpa": {"ftd_min": "100", "amount": "150"}})

    send(client, world, event="chargeback", player_id="H1", payout="1", txn_id="CB1")

    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    send(client, world, event="chargeback", player_id="H1", payout="10", txn_id="CB2")
    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "rejected")
    # The second one's dispute won: booked again at the amount it was booked at, not the deal's now.
    send(client, world, event="chargeback", player_id="H1", payout="10", txn_id="CB2", status="rejected")
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    assert sorted(Decimal(e["amount"]) for e in ledger(client, kind="cpa")) == [-100, 100, 100]


def test_a_qualified_cpa_rejected_by_hand_after_the_deal_became_revshare_only_is_reversed(
    client: Client, world: World
) -> None:
    """Its status and the ledger agree both ways: rejected by hand, the CPA is reversed;
    approved again, it is booked again under the rules and amount it was booked under."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    t1(client, world)
    deal(client, world.casino, REVSHARE_ONLY)
    qualified = qualified_id(client)

    assert change(client, qualified, "rejected", "bonus abuse").status_code == 200

    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "rejected")
    assert change(client, qualified, "approved", "dispute won").status_code == 200
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    # While its rules do not hold (its first deposit declined), approving it is refused.
    t1(client, world, "rejected")
    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "rejected")
    refused = change(client, qualified, "approved", "operator says it qualified")
    assert refused.status_code == 409 and "first deposit ≥ 20.00 EUR: missing" in refused.text


def test_a_qualified_cpa_approved_by_hand_again_is_judged_by_the_rules_it_was_booked_under(
    client: Client, world: World
) -> None:
    """A first deposit of 50 met the minimum of 20; the deal now asks 100. Rejected by hand,
    then approved (a dispute won): its rules still hold, so it is approved and booked again."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    t1(client, world)
    deal(client, world.casino, {"cpa": {"ftd_min": "100"}})
    qualified = qualified_id(client)
    assert change(client, qualified, "rejected", "bonus abuse").status_code == 200

    approved = change(client, qualified, "approved", "dispute won")

    assert approved.status_code == 200, approved.text
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")


def test_0032_keeps_the_deal_in_force_for_the_players_who_qualified_before_it(
    client: Client, world: World
) -> None:
    """Before 0032 no terms were kept: the players who qualified take the CPA terms of the deal in
    force at the upgrade (the affiliate's own, else the offer's default), so a deal changed after
    it no longer reaches them; a player who never qualified takes none (the deal in force judges
    them, as it did)."""
    deal(client, world.casino, FTD_20)
    deal(client, world.casino, {"cpa": {"amount": "150", "ftd_min": "10"}}, affiliate=world.bob)
    for link, player in ((world.alice_casino, "A"), (world.bob_casino, "B"), (world.alice_casino, "N")):
        register(client, world, link, player)
    for player in ("A", "B"):
        send(client, world, event="deposit", player_id=player, payout="30", txn_id=f"{player}-D")
    assert cpa_total(client) == 250
    db = client.node.runtime.db

    async def downgraded() -> None:
        async with db.write() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0031"))

    async def kept() -> dict[str, tuple[str | None, bool]]:
        async with db.read() as conn:
            p = players.c
            rows = await conn.execute(select(p.player_id, p.cpa_currency, p.cpa_terms))
            return {r.player_id: (r.cpa_currency, r.cpa_terms is not None) for r in rows}

    client.node.call(downgraded)
    client.node.call(lambda: upgrade(db))

    assert client.node.call(kept) == {"A": ("EUR", True), "B": ("EUR", True), "N": (None, False)}
    raised = {"cpa": {"ftd_min": "100"}}
    deal(client, world.casino, raised)
    deal(client, world.casino, raised, affiliate=world.bob)
    for player in ("A", "B"):
        send(client, world, event="chargeback", player_id=player, payout="1", txn_id=f"{player}-CB")
    assert cpa_total(client) == 250
    # 19 left: below A's kept minimum of 20 (the offer's), not B's of 10 (Bob's own deal).
    for player in ("A", "B"):
        send(client, world, event="chargeback", player_id=player, payout="10", txn_id=f"{player}-CB2")
    assert cpa_total(client) == 150
