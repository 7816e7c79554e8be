"""Events reported late: rules, exchange rates, months and reports go by when they happened."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickback.core.commission import period_bounds
from tests.conftest import Client, World
from tests.web.test_commissions import deal, ledger, month, old_click, send, statement

NOW = datetime.now(UTC).replace(microsecond=0)


def stamp(at: datetime) -> str:
    return at.isoformat()


@pytest.mark.parametrize(("deposit_days_after", "qualifies"), [(10, True), (40, False)])
def test_a_deposit_counts_by_when_it_was_made_not_when_it_was_reported(
    client: Client, world: World, deposit_days_after: int, qualifies: bool
) -> None:
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20", "window_days": 30}})
    registered = NOW - timedelta(days=60)
    click_id = old_click(client, world.alice_casino, registered - timedelta(minutes=5))
    reg = send(client, world, click_id=click_id, event="reg", player_id="P", event_time=stamp(registered))
    assert reg.json()["result"] == "accepted", reg.text

    made = registered + timedelta(days=deposit_days_after)
    # Reported today, long after the 30-day window closed: it counts when it was made.
    ftd = send(
        client, world, event="deposit", player_id="P", payout="25", txn_id="D", ts=str(int(made.timestamp()))
    )

    assert (ftd.json()["result"], ftd.json()["event"]) == ("accepted", "first_deposit")
    conversion = client.api("GET", f"/conversions/{ftd.json()['conversion_id']}")
    assert datetime.fromisoformat(conversion["event_at"]) == made
    assert datetime.fromisoformat(conversion["created_at"]) > NOW - timedelta(minutes=1)
    (player,) = client.items("/players")
    assert datetime.fromisoformat(player["registered_at"]) == registered
    assert datetime.fromisoformat(player["ftd_at"]) == made
    entries = ledger(client)
    if not qualifies:
        assert entries == []
        return
    (entry,) = entries
    # Booked in the month the player qualified, and approved: no hold in this deal.
    assert (entry["period"], entry["status"], entry["amount"]) == (
        made.strftime("%Y-%m"),
        "approved",
        "100.00",
    )


def test_a_hold_counts_from_the_qualifying_event(client: Client, world: World) -> None:
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "80", "ftd_min": "10", "hold_days": 14}})
    made = NOW - timedelta(days=20)
    click_id = old_click(client, world.alice_casino, made - timedelta(hours=1))
    send(
        client,
        world,
        click_id=click_id,
        event="reg",
        player_id="H",
        event_time=stamp(made - timedelta(hours=1)),
    )
    send(client, world, event="ftd", player_id="H", payout="10", txn_id="D", event_time=stamp(made))

    (entry,) = ledger(client)

    # The 14-day hold ended six days ago: nothing left to wait for.
    assert entry["status"] == "approved"
    assert datetime.fromisoformat(entry["hold_until"]) == made + timedelta(days=14)


def test_an_earlier_deposit_reported_later_becomes_the_first_deposit(client: Client, world: World) -> None:
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "50"}})
    start = NOW - timedelta(days=3)
    click_id = old_click(client, world.alice_casino, start)
    send(client, world, click_id=click_id, event="reg", player_id="E", event_time=stamp(start))
    later = send(
        client,
        world,
        event="deposit",
        player_id="E",
        payout="10",
        txn_id="D2",
        event_time=stamp(start + timedelta(days=2)),
    )
    earlier = send(
        client,
        world,
        event="deposit",
        player_id="E",
        payout="60",
        txn_id="D1",
        event_time=stamp(start + timedelta(days=1)),
    )

    assert (later.json()["event"], earlier.json()["event"]) == ("first_deposit", "first_deposit")
    events = {c["txn_id"]: c["event"] for c in client.items("/conversions") if c["txn_id"]}
    assert events == {"D1": "first_deposit", "D2": "deposit"}
    # The baseline is the real first deposit's: 60 ≥ 50 qualifies.
    (entry,) = ledger(client)
    assert entry["conversion_id"] == earlier.json()["conversion_id"]
    days = client.report(
        **{"from": (start + timedelta(days=1)).date().isoformat(), "to": NOW.date().isoformat()}
    )
    assert (days["totals"]["ftds"], days["totals"]["deposits"]) == (1, 2)


def test_a_late_ngr_report_is_converted_at_its_own_months_rate(client: Client, world: World) -> None:
    deal(client, world.casino, {"kind": "revshare", "revshare": {"percent": "50"}})
    month_ago = (NOW.replace(day=1) - timedelta(days=1)).replace(hour=12)
    click_id = old_click(client, world.alice_casino, month_ago - timedelta(days=20))
    send(
        client,
        world,
        click_id=click_id,
        event="reg",
        player_id="N",
        event_time=stamp(month_ago - timedelta(days=20)),
    )
    period = month_ago.strftime("%Y-%m")
    for day, rate in ((month_ago.replace(day=1), "0.5"), (NOW.replace(day=1), "0.8")):
        client.api(
            "POST",
            "/fx-rates",
            json={"base": "USD", "quote": "EUR", "day": day.date().isoformat(), "rate": rate},
        )

    reply = send(
        client, world, event="ngr", player_id="N", payout="1000", currency="USD", txn_id="N1", period=period
    )

    conversion = client.api("GET", f"/conversions/{reply.json()['conversion_id']}")
    assert (conversion["deal_amount"], conversion["fx_rate"]) == ("500.00", "0.5")
    (line,) = statement(client, world.alice, period)["lines"]
    assert (line["ngr"], line["revshare_earnings"]) == ("500.00", "250.00")


def test_reports_count_a_conversion_on_the_day_it_happened(client: Client, world: World) -> None:
    yesterday = NOW - timedelta(days=1)
    click_id = old_click(client, world.alice_sportsbook, yesterday - timedelta(hours=1))

    send(
        client,
        world,
        click_id=click_id,
        event="sale",
        payout="5",
        txn_id="S",
        date=yesterday.date().isoformat(),
    )

    day = yesterday.date().isoformat()
    assert client.report(**{"from": day, "to": day})["totals"]["conversions"] == 1
    assert client.report()["totals"]["conversions"] == 0
    assert "time the event happened" in client.report()["basis_note"]


@pytest.mark.parametrize(
    ("stated", "reason"),
    [
        ({"event_time": "30/11/2026"}, "invalid_event_time"),
        ({"timestamp": str(int((NOW + timedelta(hours=1)).timestamp()))}, "event_time_out_of_range"),
        ({"date": (NOW - timedelta(days=400)).date().isoformat()}, "event_time_out_of_range"),
        ({"event_time": stamp(NOW - timedelta(days=2))}, "event_before_click"),
    ],
)
def test_an_event_time_that_cannot_be_right_is_refused_with_its_reason(
    client: Client, world: World, stated: dict[str, Any], reason: str
) -> None:
    click_id = client.click(world.alice_sportsbook)
    client.flush()

    reply = send(client, world, click_id=click_id, event="sale", txn_id="X", **stated)

    assert (reply.status_code, reply.json()["reason"]) == (422, reason)
    (logged,) = client.items("/postbacks", **{"reason": reason})
    assert logged["detail"] == reply.json()["detail"]
    assert client.items("/conversions") == []


@pytest.mark.parametrize(
    ("clicked_months_ago", "period_after_click", "by", "reason"),
    [
        # The 11th of two months ago: the month before it ended ten days before the click.
        (2, -1, "player_id", "period_before_click"),
        (2, -2, "click_id", "period_before_click"),
        # After the click, but ended more than CLICKBACK_MAX_EVENT_AGE_DAYS (180) ago.
        (9, 1, "player_id", "period_too_old"),
        (2, 0, "player_id", None),
        (2, 1, "click_id", None),
    ],
)
def test_a_revenue_report_for_a_month_before_its_click_or_too_old_books_nothing(
    client: Client,
    world: World,
    clicked_months_ago: int,
    period_after_click: int,
    by: str,
    reason: str | None,
) -> None:
    deal(client, world.casino, {"kind": "revshare", "revshare": {"percent": "30"}})
    clicked = period_bounds(month(-clicked_months_ago))[0] + timedelta(days=10, hours=12)
    click_id = old_click(client, world.alice_casino, clicked)
    assert send(client, world, click_id=click_id, event="reg", player_id="N").json()["result"] == "accepted"
    period = month(period_after_click, clicked)
    named = {"player_id": "N"} if by == "player_id" else {"click_id": click_id}

    reply = send(client, world, event="ngr", payout="1000", txn_id="N1", period=period, **named)

    if reason is None:
        assert (reply.status_code, reply.json()["result"]) == (200, "accepted"), reply.text
        assert [e["period"] for e in ledger(client)] == [period]
        return
    assert (reply.status_code, reply.json()["reason"]) == (422, reason)
    assert reply.json()["detail"].startswith(period)
    (logged,) = client.items("/postbacks", reason=reason)
    assert (logged["detail"], logged["advertiser_id"]) == (reply.json()["detail"], world.northstar["id"])
    assert [c["event"] for c in client.items("/conversions")] == ["registration"]
    assert ledger(client) == []
    assert statement(client, world.alice, period)["lines"] == []
