"""An offer's attribution window, and warnings on accepted conversions, through the server."""

from datetime import timedelta

from sqlalchemy import update

from clickback.service.clock import utcnow
from clickback.store.tables import clicks
from tests.conftest import Client, World


def clicked_days_ago(client: Client, click_id: str, days: int) -> None:
    """The stored click made `days` ago, as a click of last week whose conversion comes now."""

    async def run() -> None:
        async with client.node.runtime.db.write() as conn:
            moment = utcnow() - timedelta(days=days)
            await conn.execute(update(clicks).where(clicks.c.click_id == click_id).values(clicked_at=moment))

    client.node.call(run)


def test_a_conversion_after_the_offers_window_is_refused_with_its_reason(
    client: Client, world: World
) -> None:
    offer = client.api("PUT", f"/offers/{world.casino['id']}/attribution", json={"days": 7})
    assert offer["attribution_days"] == 7
    old, recent = client.click(world.alice_casino), client.click(world.alice_casino)
    client.flush()
    clicked_days_ago(client, old, 8)
    clicked_days_ago(client, recent, 6)

    refused = client.postback(click_id=old, event="registration", token=world.token)
    assert refused.status_code == 422
    assert refused.json()["reason"] == "attribution_window_passed"
    assert refused.json()["detail"] == "8 days after the click; the offer's window is 7 days"
    assert (
        client.postback(click_id=recent, event="registration", token=world.token).json()["result"]
        == "accepted"
    )

    client.api("PUT", f"/offers/{world.casino['id']}/attribution", json={"days": None})
    again = client.postback(click_id=old, event="registration", txn_id="r2", token=world.token)
    assert again.json()["result"] == "accepted"


def test_a_window_out_of_range_is_refused(client: Client, world: World) -> None:
    path = f"/api/offers/{world.casino['id']}/attribution"
    assert client.http.put(path, headers=client.auth, json={"days": 0}).status_code == 422


def test_warnings_are_kept_on_the_conversion_said_in_the_reply_and_diagnosed(
    client: Client, world: World
) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    # The casino offer pays 50 for a first deposit; the advertiser sends 45 and a misspelt name.
    reply = client.postback(
        click_id=cid, event="first_deposit", payout="45", curency="EUR", token=world.token
    )
    body = reply.json()
    assert body["result"] == "accepted"
    assert body["warnings"] == [
        "payout_differs: sent 45, the offer pays 50 for first_deposit",
        "misspelt_parameter: 'curency' was ignored, did you mean 'currency'?",
    ]
    (conversion,) = client.items("/conversions")
    assert conversion["warnings"] == body["warnings"]
    plain = client.postback(click_id=cid, event="registration", token=world.token).json()
    assert "warnings" not in plain

    found = client.api("GET", "/diagnosis", params={"advertiser_id": world.northstar["id"]})
    by_code = {f["code"]: f for f in found["findings"]}
    assert by_code["payout_differs"]["count"] == 1
    assert by_code["misspelt_parameter"]["subject"] == "curency"


def test_a_payout_in_another_currency_is_warned_of_as_such(client: Client, world: World) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    # The casino offer pays 50 EUR for a first deposit; the advertiser sends dollars.
    same_figure = client.postback(
        click_id=cid, event="first_deposit", payout="50", currency="USD", txn_id="d1", token=world.token
    ).json()
    smaller = client.postback(
        click_id=cid, event="first_deposit", payout="10", currency="USD", txn_id="d2", token=world.token
    ).json()
    euros = client.postback(
        click_id=cid, event="first_deposit", payout="50", currency="EUR", txn_id="d3", token=world.token
    ).json()

    assert same_figure["warnings"] == [
        "payout_differs: sent 50 USD, the offer pays 50 EUR for first_deposit (another currency)"
    ]
    # Not "sent 10, the offer pays 50": ten dollars are not ten euros.
    assert smaller["warnings"] == [
        "payout_differs: sent 10 USD, the offer pays 50 EUR for first_deposit (another currency)"
    ]
    assert euros["result"] == "accepted" and "warnings" not in euros
