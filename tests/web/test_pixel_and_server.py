"""A pixel's claim against the advertiser's own server over HTTP: the authenticated server is the
authority. A confirmation without an amount takes what the server alone would have recorded."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import BROWSER_UA, Client, World
from tests.receiver import Receiver, receiving
from tests.web.test_pixel import click, told

CPA_100 = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}
OVERRIDDEN = "the advertiser's server named another click"


@pytest.fixture
def pixel(client: Client, world: World) -> str:
    offer = client.api("PUT", f"/offers/{world.casino['id']}/pixel", json={"enabled": True})
    return str(offer["pixel_url"]).partition("?")[0].removeprefix("http://127.0.0.1")


@pytest.fixture
def browser(client: Client) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=client.node.base_url, headers={"user-agent": BROWSER_UA}) as http:
        yield http


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
    return {row["affiliate"]: row for row in client.report(group_by="affiliate")["rows"]}


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
