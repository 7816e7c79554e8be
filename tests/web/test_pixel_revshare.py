"""A pixel conversion is a claim (docs/pixel.md): anyone who opens an affiliate's link can fire
it, with any amount. Until the advertiser's server confirms it or a person approves it, it counts
in no RevShare month, neither its NGR nor as an FTD of a tier; confirmed or approved, it counts
as any conversion does, and leaves the month when it is rejected."""

from decimal import Decimal
from typing import Any

import httpx
import pytest

from clickback.core.commission import period_bounds
from tests.conftest import Client, World
from tests.web.test_commissions import (
    LONG_AGO,
    THIS_MONTH,
    deal,
    month,
    old_click,
    register,
    send,
    statement,
)
from tests.web.test_pixel import click, told
from tests.web.test_revshare_currency import rate

# 20% of the month's NGR, 40% once the month has two first deposits.
BY_FTDS = {
    "kind": "revshare",
    "revshare": {"percent": "20", "tiers": [{"threshold": "2", "percent": "40"}], "tier_basis": "ftds"},
}


def booked(client: Client, affiliate: dict[str, Any]) -> Decimal:
    """The RevShare booked for the affiliate this month (entries and reversals summed)."""
    entries = client.items(
        "/commissions", affiliate_id=affiliate["id"], kind="revshare", period=THIS_MONTH, limit=1000
    )
    return sum((Decimal(e["amount"]) for e in entries), Decimal(0))


def month_figures(client: Client, affiliate: dict[str, Any]) -> tuple[str, int, str, str]:
    (line,) = statement(client, affiliate)["lines"]
    return line["ngr"], line["ftds"], line["revshare_percent"], line["revshare_earnings"]


def real_month(client: Client, world: World) -> None:
    """Alice's player, reported by the advertiser's server: one first deposit, NGR 1000 (20%)."""
    deal(client, world.casino, BY_FTDS)
    register(client, world, world.alice_casino, "P-1")
    send(client, world, event="first_deposit", player_id="P-1", txn_id="D-1", payout="50")
    send(client, world, event="ngr", player_id="P-1", txn_id="N-1", payout="1000")
    assert month_figures(client, world.alice) == ("1000.00", 1, "20", "200.00")


def claim(client: Client, world: World, pixel: str, browser: httpx.Client, **fields: str) -> tuple[str, int]:
    """Alice opens her own link and fires the pixel with `fields`: the click ID and the pending
    conversion it recorded."""
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    assert told(browser.get(pixel, params={"click_id": click_id, **fields})) == (200, "accepted", None)
    (found,) = client.items("/conversions", click_id=click_id)
    assert (found["channel"], found["status"]) == ("pixel", "pending")
    return click_id, int(found["id"])


def test_a_forged_pixel_ngr_adds_nothing_to_the_revshare_month(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    real_month(client, world)

    _, forged = claim(client, world, pixel, browser, event="net_revenue", txn_id="X-1", payout="100000")

    assert month_figures(client, world.alice) == ("1000.00", 1, "20", "200.00")
    assert booked(client, world.alice) == Decimal("200.00")
    # Still there to review, pending, in the conversions list.
    pending = client.items("/conversions", channel="pixel", status="pending")
    assert [c["id"] for c in pending] == [forged]


def test_forged_pixel_first_deposits_do_not_raise_the_tier(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    real_month(client, world)

    for n in range(3):
        claim(client, world, pixel, browser, event="first_deposit", txn_id=f"F-{n}", payout="20")

    assert month_figures(client, world.alice) == ("1000.00", 1, "20", "200.00")
    assert booked(client, world.alice) == Decimal("200.00")


@pytest.mark.parametrize("status", ["approved", "pending"])
def test_a_pixel_ngr_the_server_confirms_counts_with_the_servers_amount(
    client: Client, world: World, pixel: str, browser: httpx.Client, status: str
) -> None:
    """A confirmation that leaves it pending confirms it all the same (docs/pixel.md)."""
    real_month(client, world)
    click_id, forged = claim(client, world, pixel, browser, event="net_revenue", txn_id="X-1", payout="9000")

    confirmed = send(client, world, click_id=click_id, event="ngr", txn_id="X-1", payout="500", status=status)

    assert (confirmed.json()["result"], confirmed.json()["conversion_id"]) == ("updated", forged), (
        confirmed.text
    )
    assert month_figures(client, world.alice) == ("1500.00", 1, "20", "300.00")
    assert booked(client, world.alice) == Decimal("300.00")


def test_a_persons_approval_makes_pixel_claims_count(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    real_month(client, world)
    _, ngr = claim(client, world, pixel, browser, event="net_revenue", txn_id="X-1", payout="250")
    _, ftd = claim(client, world, pixel, browser, event="first_deposit", txn_id="F-1", payout="20")

    client.api("POST", f"/conversions/{ngr}/status", json={"status": "approved", "reason": "checked"})
    assert month_figures(client, world.alice) == ("1250.00", 1, "20", "250.00")
    client.api("POST", f"/conversions/{ftd}/status", json={"status": "approved", "reason": "checked"})

    # Two FTDs: the month's whole NGR at 40%.
    assert month_figures(client, world.alice) == ("1250.00", 2, "40", "500.00")
    assert booked(client, world.alice) == Decimal("500.00")


def test_a_confirmed_pixel_ngr_rejected_later_leaves_the_month(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    real_month(client, world)
    click_id, _ = claim(client, world, pixel, browser, event="net_revenue", txn_id="X-1", payout="9000")
    send(client, world, click_id=click_id, event="ngr", txn_id="X-1", payout="500")
    assert booked(client, world.alice) == Decimal("300.00")

    rejected = send(client, world, click_id=click_id, event="ngr", txn_id="X-1", status="rejected")

    assert rejected.json()["result"] == "updated", rejected.text
    assert month_figures(client, world.alice) == ("1000.00", 1, "20", "200.00")
    assert booked(client, world.alice) == Decimal("200.00")


def test_a_pixel_rejected_by_hand_before_anyone_confirmed_it_moves_nothing(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    real_month(client, world)
    _, forged = claim(client, world, pixel, browser, event="net_revenue", txn_id="X-1", payout="9000")

    client.api("POST", f"/conversions/{forged}/status", json={"status": "rejected", "reason": "forged"})

    assert month_figures(client, world.alice) == ("1000.00", 1, "20", "200.00")
    assert booked(client, world.alice) == Decimal("200.00")


def test_a_pixel_after_the_servers_postback_changes_nothing(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    real_month(client, world)
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    send(client, world, click_id=click_id, event="ngr", txn_id="X-1", payout="500")
    assert booked(client, world.alice) == Decimal("300.00")

    again = {"click_id": click_id, "event": "net_revenue", "txn_id": "X-1", "payout": "9000"}
    assert told(browser.get(pixel, params=again)) == (200, "duplicate", "duplicate")

    assert month_figures(client, world.alice) == ("1500.00", 1, "20", "300.00")
    assert booked(client, world.alice) == Decimal("300.00")


def test_pixel_registration_claims_add_no_player_to_the_statement(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """A pixel makes no player (its player_id is not kept): its registrations, claims, are no
    players of the month's statement, however many and whatever player_id they wrote."""
    real_month(client, world)

    for n in range(2):
        claim(client, world, pixel, browser, event="registration", txn_id=f"R-{n}", player_id=f"X-{n}")

    (line,) = statement(client, world.alice)["lines"]
    assert line["players"] == 1


def test_a_confirmation_stating_another_month_is_converted_at_the_rate_of_the_claims_month(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """The pixel claimed NGR for two months ago; the advertiser's server confirms it with its own
    amount, in USD, for last month. The report counts in the month it was recorded for, so its
    amount is that month's: at the rate of its last day (EUR→USD 1.25: 400 EUR), not of the month
    the confirmation stated (2: 250 EUR)."""
    claimed, stated = month(-2), month(-1)
    rate(client, "EUR", "USD", "1.25")
    rate(client, "EUR", "USD", "2", period_bounds(stated)[0].date())
    deal(client, world.casino, {"kind": "revshare", "revshare": {"percent": "20"}})
    click_id = old_click(client, world.alice_casino, LONG_AGO)
    fields = {"event": "net_revenue", "txn_id": "X-1", "payout": "9000", "period": claimed}
    assert told(browser.get(pixel, params={"click_id": click_id, **fields})) == (200, "accepted", None)

    confirmed = send(
        client,
        world,
        click_id=click_id,
        event="ngr",
        txn_id="X-1",
        payout="500",
        currency="USD",
        period=stated,
    )

    assert confirmed.json()["result"] == "updated", confirmed.text
    (found,) = client.items("/conversions", click_id=click_id)
    assert (found["period"], found["deal_amount"], found["deal_currency"]) == (claimed, "400.00", "EUR")
    (line,) = statement(client, world.alice, claimed)["lines"]
    assert (line["ngr"], line["revshare_earnings"]) == ("400.00", "80.00")
