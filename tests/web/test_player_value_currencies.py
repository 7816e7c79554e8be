"""What players are worth when their deal changes currency, over HTTP postbacks, on both databases:
each amount in the currency it was priced or booked in, never a sum across currencies
(docs/commissions.md, "Statements and player value")."""

from decimal import Decimal
from typing import Any

import pytest

from clickback.core.accounts import Role
from tests.conftest import Client, World
from tests.web.personas import add_user, sign_in
from tests.web.test_commissions import CPA_100, THIS_MONTH, deal, ledger, register, send
from tests.web.test_lists import walk

TO_USD = {"currency": "USD", "cpa": {"amount": "120"}}
MONEY_EVENTS = {
    "first_deposit": "deposits",
    "deposit": "deposits",
    "chargeback": "deposits",
    "net_revenue": "ngr",
}

Values = list[tuple[str, str, str, str]]


def values(player: dict[str, Any]) -> Values:
    """The player's amounts per currency: currency, deposits, NGR, CPA commission."""
    return [(v["currency"], v["deposits"], v["ngr"], v["commission"]) for v in player["by_currency"]]


def shown(player: dict[str, Any]) -> tuple[str | None, str, str, str]:
    return player["currency"], player["deposits"], player["ngr"], player["commission"]


def from_the_records(client: Client, player: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    """The player's amounts per currency as their conversions (pending or approved) and their CPA
    entries say, added up here."""
    sums: dict[str, dict[str, Decimal]] = {}

    def add(currency: str, column: str, amount: Decimal) -> None:
        each = sums.setdefault(currency, dict.fromkeys(("deposits", "ngr", "commission"), Decimal(0)))
        each[column] += amount

    for c in client.items("/conversions", player_id=player["player_id"]):
        if c["event"] in MONEY_EVENTS and c["status"] in ("pending", "approved") and c["deal_amount"]:
            sign = -1 if c["event"] == "chargeback" else 1
            add(c["deal_currency"], MONEY_EVENTS[c["event"]], sign * Decimal(c["deal_amount"]))
    for e in ledger(client, player=player["id"], kind="cpa"):
        add(e["currency"], "commission", Decimal(e["amount"]))
    return sums


def as_listed(player: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    """The player's by_currency, without the deal's currency where it only stands there (zero)."""
    return {
        v["currency"]: {k: Decimal(v[k]) for k in ("deposits", "ngr", "commission")}
        for v in player["by_currency"]
        if v["currency"] != player["currency"]
        or any(Decimal(v[k]) for k in ("deposits", "ngr", "commission"))
    }


def straddle(client: Client, world: World, player: str, affiliate: dict[str, Any] | None = None) -> None:
    """A player priced in EUR (a 40 EUR FTD qualifying for a 100 EUR CPA, -15 EUR NGR), then a
    50 USD deposit once the deal pays in USD."""
    deal(client, world.casino, CPA_100, affiliate)
    register(client, world, world.alice_casino, player)
    send(client, world, event="ftd", player_id=player, payout="40", txn_id=f"{player}-D1")
    send(client, world, event="ngr", player_id=player, payout="-15", txn_id=f"{player}-N1")
    deal(client, world.casino, TO_USD, affiliate)
    reply = send(
        client, world, event="deposit", player_id=player, payout="50", currency="USD", txn_id=f"{player}-D2"
    )
    assert reply.json()["result"] == "accepted", reply.text


@pytest.mark.parametrize("whose", ["offer", "affiliate"])
def test_a_players_amounts_straddling_a_deal_currency_change_stay_in_each_currency(
    client: Client, world: World, whose: str
) -> None:
    """The offer's default deal or the affiliate's own one moves from EUR to USD. Before, the
    player was worth 90.00 "USD" of deposits (40 EUR + 50 USD), -15.00 "USD" of NGR and 100.00
    "USD" of commission, all booked in EUR."""
    straddle(client, world, "S", world.alice if whose == "affiliate" else None)

    (player,) = client.items("/players", player_id="S")

    assert shown(player) == ("USD", "50.00", "0.00", "0.00")
    assert values(player) == [("USD", "50.00", "0.00", "0.00"), ("EUR", "40.00", "-15.00", "100.00")]
    assert as_listed(player) == from_the_records(client, player)


def test_a_cpa_reversed_after_the_change_nets_out_in_the_currency_it_was_booked_in(
    client: Client, world: World
) -> None:
    """The EUR first deposit is rejected once the deal pays in USD: its 100 EUR CPA is reversed in
    EUR. A USD deposit is then the first deposit and qualifies the player again, for the 100 EUR
    CPA they qualified for (the terms kept when they first qualified, not the deal's 120 USD).
    Before, the player showed -15.00 "USD" of NGR, reported in EUR, and 120.00 "USD" of
    commission from 100 EUR - 100 EUR + 120 USD."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "R")
    send(client, world, event="ftd", player_id="R", payout="40", txn_id="R-D1")
    send(client, world, event="ngr", player_id="R", payout="-15", txn_id="R-N1")
    deal(client, world.casino, TO_USD)
    reply = send(client, world, event="ftd", player_id="R", payout="40", txn_id="R-D1", status="rejected")
    assert reply.json()["result"] == "updated", reply.text
    send(client, world, event="deposit", player_id="R", payout="50", currency="USD", txn_id="R-D2")

    (player,) = client.items("/players", player_id="R")
    entries = ledger(client, player=player["id"])

    assert sorted((e["amount"], e["currency"]) for e in entries) == [
        ("-100.00", "EUR"),
        ("100.00", "EUR"),
        ("100.00", "EUR"),
    ]
    assert shown(player) == ("USD", "50.00", "0.00", "0.00")
    assert values(player) == [("USD", "50.00", "0.00", "0.00"), ("EUR", "0.00", "-15.00", "100.00")]
    assert as_listed(player) == from_the_records(client, player)


def test_cohorts_put_each_amount_on_its_currencys_row_and_count_players_once(
    client: Client, world: World
) -> None:
    """E was priced only in EUR, S on both sides of the change, U only in USD; all registered this
    month. Before, the cohort had one USD row adding 170 "USD" of deposits."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "E")
    send(client, world, event="ftd", player_id="E", payout="30", txn_id="E-D1")
    straddle(client, world, "S")
    register(client, world, world.alice_casino, "U")
    send(client, world, event="ftd", player_id="U", payout="50", currency="USD", txn_id="U-D1")

    cohorts = client.api("GET", "/players/cohorts")
    walked = walk(client, "/players", 1, lambda: None)

    # Players and FTDs are counted once, on their deal's currency; amounts where they were priced.
    assert [(c["cohort"], c["currency"], c["players"], c["ftds"]) for c in cohorts] == [
        (THIS_MONTH, "EUR", 0, 0),
        (THIS_MONTH, "USD", 3, 3),
    ]
    assert [(c["deposits"], c["ngr"], c["commission"]) for c in cohorts] == [
        ("70.00", "-15.00", "200.00"),
        ("100.00", "0.00", "120.00"),
    ]
    # A page holds players, each once, whatever the currencies of their amounts.
    assert {p["player_id"]: values(p) for p in walked} == {
        "E": [("USD", "0.00", "0.00", "0.00"), ("EUR", "30.00", "0.00", "100.00")],
        "S": [("USD", "50.00", "0.00", "0.00"), ("EUR", "40.00", "-15.00", "100.00")],
        "U": [("USD", "50.00", "0.00", "120.00")],
    }
    # The cohort's rows are its players' amounts, currency by currency.
    for currency, row in ((c["currency"], c) for c in cohorts):
        for column in ("deposits", "ngr", "commission"):
            in_players = sum(
                (Decimal(v[column]) for p in walked for v in p["by_currency"] if v["currency"] == currency),
                Decimal(0),
            )
            assert Decimal(row[column]) == in_players, (currency, column)


def test_a_player_in_one_currency_is_shown_as_before(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P")
    send(client, world, event="ftd", player_id="P", payout="40", txn_id="P-D1")
    send(client, world, event="deposit", player_id="P", payout="60", txn_id="P-D2")
    send(client, world, event="chargeback", player_id="P", payout="10", txn_id="P-D2")
    send(client, world, event="ngr", player_id="P", payout="25", txn_id="P-N1")
    register(client, world, world.alice_sportsbook, "N")  # an offer without a deal: no currency

    players = {p["player_id"]: p for p in client.items("/players")}
    cohorts = client.api("GET", "/players/cohorts")

    assert shown(players["P"]) == ("EUR", "90.00", "25.00", "100.00")
    assert values(players["P"]) == [("EUR", "90.00", "25.00", "100.00")]
    assert (shown(players["N"]), values(players["N"])) == ((None, "0.00", "0.00", "0.00"), [])
    assert [
        (c["currency"], c["players"], c["ftds"], c["deposits"], c["ngr"], c["commission"]) for c in cohorts
    ] == [
        (None, 1, 0, "0.00", "0.00", "0.00"),
        ("EUR", 1, 1, "90.00", "25.00", "100.00"),
    ]


def test_the_players_page_shows_each_currency_apart(client: Client, world: World) -> None:
    straddle(client, world, "S")
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])

    page = sign_in(client, "alice").get("/players")

    assert page.status_code == 200
    row = page.text[page.text.index("<td>S</td>") :].split("</tr>")[0]
    cells = [cell.split(">", 1)[1] for cell in row.split("</td>") if 'class="num"' in cell]
    assert cells == ["50.00 USD<br>40.00 EUR", "0.00 USD<br>-15.00 EUR", "0.00 USD<br>100.00 EUR"]
