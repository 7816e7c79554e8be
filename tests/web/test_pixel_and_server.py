"""A pixel's claim against the advertiser's own server over HTTP: the authenticated server is the
authority. A pixel conversion the server has not confirmed never blocks nor outweighs it: the
server naming another click (or player) rejects the pixel's conversion and records its own; a
confirmation without an amount takes what the server alone would have recorded."""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import Client, World
from tests.receiver import Receiver, receiving
from tests.web.test_pixel import click, conversions, told

CPA_100 = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}
OVERRIDDEN = "the advertiser's server named another click"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def two_clicks(client: Client, world: World, browser: httpx.Client) -> tuple[str, str]:
    """Alice's click (whoever fires the pixel: anyone can open her link) and Bob's (the real
    visitor's, whom the advertiser's server names), both landed."""
    alices, _ = click(browser, world.alice_casino)
    bobs, _ = click(browser, world.bob_casino)
    client.flush()
    return alices, bobs


def by_affiliate(client: Client) -> dict[int, dict[str, Any]]:
    return {row["key"]["affiliate"]: row for row in client.report(group_by="affiliate")["rows"]}


def test_a_pixel_squatting_a_transaction_id_does_not_refuse_the_servers_postback(
    client: Client, world: World, pixel: str, browser: httpx.Client, receiver: Receiver
) -> None:
    """Anyone who opened a tracking link can fire the public pixel with a guessed order ID: the
    advertiser's own postback for that order, on the real visitor's click, is still recorded,
    for the right affiliate, and the pixel's claim is rejected with the reason in its history;
    reports and outbound postbacks follow."""
    for affiliate in (world.alice, world.bob):
        body = {"affiliate_id": affiliate["id"], "url": receiver.url("/pb?st={status}")}
        client.api("POST", "/outbound/templates", json=body)
    alices, bobs = two_clicks(client, world, browser)
    squat = {"click_id": alices, "event": "first_deposit", "txn_id": "ORDER-5001", "payout": "7"}
    assert told(browser.get(pixel, params=squat)) == (200, "accepted", None)

    s2s = client.postback(
        click_id=bobs, event="first_deposit", txn_id="ORDER-5001", payout="100", token=world.token
    )

    assert (s2s.status_code, s2s.json()["result"]) == (200, "accepted"), s2s.text
    assert s2s.json()["status"] == "approved"
    server = client.api("GET", f"/conversions/{s2s.json()['conversion_id']}")
    assert (server["click_id"], server["affiliate_id"], server["payout"], server["channel"]) == (
        bobs,
        world.bob["id"],
        "100.00",
        "s2s",
    )
    (claim,) = client.items("/conversions", channel="pixel")
    claimed = client.api("GET", f"/conversions/{claim['id']}")
    assert (claimed["status"], claimed["click_id"], claimed["txn_id"]) == ("rejected", alices, "ORDER-5001")
    assert claimed["history"][-1]["from_status"] == "pending"
    assert claimed["history"][-1]["reason"].startswith(OVERRIDDEN)
    assert bobs in claimed["history"][-1]["reason"]
    # Reports: Alice's pending FTD left her figures; Bob's approved one is counted once.
    rows = by_affiliate(client)
    assert (rows[world.alice["id"]]["ftds"], rows[world.alice["id"]]["declined"]) == (0, 1)
    assert rows[world.alice["id"]]["ftd_amount"] in ({}, {"EUR": "0.00"})
    assert (rows[world.bob["id"]]["ftds"], rows[world.bob["id"]]["ftd_amount"]) == (1, {"EUR": "100.00"})
    # Alice's tracker was told of the pending claim, then of its rejection; Bob's of his FTD.
    told_to = sorted(
        (d["affiliate_id"], d["conversion_id"], d["status"]) for d in client.items("/outbound/deliveries")
    )
    assert told_to == sorted(
        [
            (world.alice["id"], claim["id"], "pending"),
            (world.alice["id"], claim["id"], "rejected"),
            (world.bob["id"], server["id"], "approved"),
        ]
    )
    # The server's retry is its own duplicate; the pixel fired again changes nothing.
    again = client.postback(
        click_id=bobs, event="first_deposit", txn_id="ORDER-5001", payout="100", token=world.token
    )
    assert (again.json()["result"], again.json()["conversion_id"]) == ("duplicate", server["id"])
    assert told(browser.get(pixel, params=squat))[1] == "rejected"
    assert len(conversions(client)) == 2


def test_a_pixels_player_never_takes_the_servers_player_nor_books_a_cpa(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """A pixel naming a player (any ID can be written on it) creates no player and books no
    commission: the player is the server's to name, on the click the server names."""
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    alices, bobs = two_clicks(client, world, browser)
    for fields in (
        {"event": "registration", "player_id": "P-100"},
        {"event": "first_deposit", "txn_id": "F-1", "payout": "500", "player_id": "P-100"},
    ):
        assert told(browser.get(pixel, params={"click_id": alices, **fields})) == (200, "accepted", None)
    assert client.items("/commissions") == []
    assert client.items("/players", player_id="P-100") == []

    s2s = {"click_id": bobs, "player_id": "P-100", "token": world.token}
    registered = client.postback(**s2s, event="registration")
    deposited = client.postback(**s2s, event="first_deposit", txn_id="F-1", payout="50")

    assert [r.json()["result"] for r in (registered, deposited)] == ["accepted", "accepted"], deposited.text
    (player,) = client.items("/players", player_id="P-100")
    assert (player["click_id"], player["affiliate_id"]) == (bobs, world.bob["id"])
    (cpa,) = client.items("/commissions", kind="cpa")
    assert (cpa["affiliate_id"], cpa["amount"]) == (world.bob["id"], "100.00")
    pixel_statuses = sorted((c["event"], c["status"]) for c in client.items("/conversions", channel="pixel"))
    assert pixel_statuses == [("first_deposit", "rejected"), ("registration", "rejected")]
    rows = by_affiliate(client)
    assert (rows[world.alice["id"]]["ftds"], rows[world.alice["id"]]["registrations"]) == (0, 0)
    assert (rows[world.bob["id"]]["ftds"], rows[world.bob["id"]]["qualified_cpas"]) == (1, 1)


def test_revshare_a_pixel_claimed_is_booked_only_for_the_affiliate_the_server_names(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """A pending pixel NGR report the server has not confirmed counts in no RevShare month
    (test_pixel_revshare.py); the server naming another click books it, once, for the server's."""
    deal = {"kind": "revshare", "revshare": {"percent": "50"}}
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=deal)
    alices, bobs = two_clicks(client, world, browser)
    claim = {"click_id": alices, "event": "net_revenue", "txn_id": "NGR-1", "payout": "1000"}
    assert told(browser.get(pixel, params=claim)) == (200, "accepted", None)
    assert earned(client) == {}

    s2s = client.postback(click_id=bobs, event="net_revenue", txn_id="NGR-1", payout="200", token=world.token)

    assert s2s.json()["result"] == "accepted", s2s.text
    assert earned(client) == {world.bob["id"]: Decimal(100)}
    rows = by_affiliate(client)
    assert rows[world.alice["id"]]["ngr"] in ({}, {"EUR": "0.00"})
    assert rows[world.bob["id"]]["ngr"] == {"EUR": "200.00"}


def earned(client: Client) -> dict[int, Decimal]:
    """RevShare booked so far, by affiliate (entries and their reversals summed)."""
    total: dict[int, Decimal] = {}
    for entry in client.items("/commissions", kind="revshare"):
        affiliate = entry["affiliate_id"]
        total[affiliate] = total.get(affiliate, Decimal(0)) + Decimal(entry["amount"])
    return total


def test_a_conversion_the_server_confirmed_still_conflicts_with_another_click_naming_it(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    alices, bobs = two_clicks(client, world, browser)
    fields = {"event": "first_deposit", "txn_id": "ORDER-6"}
    assert told(browser.get(pixel, params={"click_id": alices, **fields})) == (200, "accepted", None)
    confirmed = client.postback(click_id=alices, **fields, payout="30", token=world.token)
    assert confirmed.json()["result"] == "updated", confirmed.text

    other = client.postback(click_id=bobs, **fields, payout="30", token=world.token)

    assert (other.status_code, other.json()["reason"]) == (409, "transaction_conflict"), other.text
    assert other.json()["detail"] == f"ORDER-6: recorded on click {alices}"
    (conversion,) = conversions(client)
    assert (conversion["status"], conversion["click_id"]) == ("approved", alices)


def test_a_server_confirmation_without_an_amount_takes_the_offers_not_the_browsers(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    fired = {"click_id": click_id, "event": "registration", "txn_id": "R-77", "payout": "999"}
    assert told(browser.get(pixel, params=fired)) == (200, "accepted", None)

    s2s = client.postback(click_id=click_id, event="registration", txn_id="R-77", token=world.token)

    assert (s2s.json()["result"], s2s.json()["status"]) == ("updated", "approved"), s2s.text
    confirmed = client.api("GET", f"/conversions/{s2s.json()['conversion_id']}")
    # What the server's postback alone records: the offer's payout for a registration.
    assert (confirmed["payout"], confirmed["currency"]) == ("1.50", "EUR")
    (day,) = client.report(group_by="day")["rows"]
    assert day["revenue"] == {"EUR": "1.50"}


def test_a_deposit_confirmed_without_an_amount_keeps_no_browser_amount_for_the_cpa(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="P-9", token=world.token)
    fired = {"click_id": click_id, "event": "deposit", "txn_id": "Y9", "payout": "5000"}
    assert told(browser.get(pixel, params=fired)) == (200, "accepted", None)

    s2s = client.postback(click_id=click_id, event="deposit", txn_id="Y9", player_id="P-9", token=world.token)

    assert s2s.json()["result"] == "updated", s2s.text
    confirmed = client.api("GET", f"/conversions/{s2s.json()['conversion_id']}")
    assert (confirmed["event"], confirmed["payout"]) == ("first_deposit", "0.00")
    assert confirmed["deal_amount"] in (None, "0.00")
    assert client.items("/commissions", kind="cpa") == []
    (player,) = client.items("/players", player_id="P-9")
    assert player["qualified_at"] is None
