"""End to end over HTTP: entities → click → offer URL → postback → conversion → report."""

from datetime import UTC, datetime

from tests.conftest import Client, World


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_click_then_postback_shows_in_conversion_and_report(client: Client, world: World) -> None:
    click_id = client.click(world.alice_casino, sub1="fb-ads", sub2="creative 7", source="facebook")
    client.flush()

    reply = client.postback(
        click_id=click_id,
        event="first_deposit",
        payout="75.25",
        currency="usd",
        txn_id="T-1",
        token=world.token,
    )

    assert reply.status_code == 200
    body = reply.json()
    assert body["result"] == "accepted"
    conversion = client.api("GET", f"/conversions/{body['conversion_id']}")
    assert conversion["affiliate_id"] == world.alice["id"]
    assert conversion["offer_id"] == world.casino["id"]
    assert conversion["campaign"] == "spring"
    assert (conversion["sub1"], conversion["sub2"]) == ("fb-ads", "creative 7")
    assert (conversion["payout"], conversion["currency"]) == ("75.25", "USD")
    assert conversion["status"] == "approved"
    report = client.report(group_by="affiliate_id,sub1")
    (row,) = report["rows"]
    assert row["key"] == {"affiliate": world.alice["id"], "sub1": "fb-ads"}
    assert (row["clicks"], row["unique_clicks"], row["bot_clicks"]) == (1, 1, 0)
    assert (row["conversions"], row["ftds"], row["declined"]) == (1, 1, 0)
    # The player's deposit is theirs; what the advertiser pays for it is the offer's price.
    assert (row["ftd_amount"], row["revenue"]) == ({"USD": "75.25"}, {"EUR": "50.00"})


def test_offer_default_payout_applies_when_postback_names_none(client: Client, world: World) -> None:
    click_id = client.click(world.bob_casino)
    client.flush()

    body = client.postback(click_id=click_id, event="ftd", token=world.token).json()

    conversion = client.api("GET", f"/conversions/{body['conversion_id']}")
    assert (conversion["event"], conversion["payout"], conversion["currency"]) == (
        "first_deposit",
        "50.00",
        "EUR",
    )


def test_report_groups_clicks_and_conversions_by_day_offer_and_affiliate(
    client: Client, world: World
) -> None:
    for _ in range(3):
        client.click(world.alice_casino, sub1="a")
    bob_click = client.click(world.bob_casino, sub1="b")
    client.click(world.alice_sportsbook)
    client.flush()
    client.postback(click_id=bob_click, event="registration", token=world.token)

    by_offer = client.report(group_by="day,offer_id")
    by_affiliate = client.report(group_by="affiliate_id")

    assert [(r["key"]["day"], r["key"]["offer"], r["clicks"]) for r in by_offer["rows"]] == [
        (today(), world.casino["id"], 4),
        (today(), world.sportsbook["id"], 1),
    ]
    rows = {r["key"]["affiliate"]: r for r in by_affiliate["rows"]}
    assert rows[world.alice["id"]]["clicks"] == 4
    assert (rows[world.bob["id"]]["conversions"], rows[world.bob["id"]]["registrations"]) == (1, 1)
    assert rows[world.bob["id"]]["revenue"] == {"EUR": "1.50"}
    assert by_affiliate["totals"]["clicks"] == 5
    assert "clicks at their click time" in by_affiliate["basis_note"]


def test_report_outside_the_date_range_is_empty(client: Client, world: World) -> None:
    client.click(world.alice_casino)
    client.flush()

    report = client.report(**{"from": "2020-01-01", "to": "2020-01-31"})

    assert report["rows"] == []
    assert report["totals"]["clicks"] == 0
