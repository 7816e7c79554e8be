"""Stop or scale (issue 16; docs/reports.md, "Stop or scale"): placements that lose money after
spending enough, dearest loss first; placements with a good return and room to grow."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickback.core.placements import stop_or_scale
from tests.conftest import Client, World
from tests.web.test_commissions import deal


def placements(client: Client, **params: str) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    reply: dict[str, Any] = client.api(
        "GET", "/reports/stop-or-scale", params={"from": today, "to": today, "currency": "EUR"} | params
    )
    return reply


def test_losers_to_stop_and_winners_to_scale_by_sub1_in_one_currency(client: Client, world: World) -> None:
    today = datetime.now(UTC).date().isoformat()
    client.api("POST", "/fx-rates", json={"base": "USD", "quote": "EUR", "day": today, "rate": "0.9"})
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}})
    link_id = next(link["id"] for link in client.items("/links") if link["code"] == world.alice_casino)
    client.api("PUT", f"/links/{link_id}/cost", json={"model": "source", "currency": "EUR"})
    # (sub1, clicks, each click's cost, players who make a first deposit)
    plan = [
        ("loser", 10, {"cost": "10"}, 0),
        ("usd-loser", 6, {"cost": "10", "cost_currency": "USD"}, 0),
        ("small-loser", 2, {"cost": "5"}, 0),
        ("winner", 2, {"cost": "10"}, 1),
        ("break-even", 5, {"cost": "20"}, 1),
    ]
    players = []
    for sub1, clicks, cost, buyers in plan:
        ids = [client.click(world.alice_casino, sub1=sub1, **cost) for _ in range(clicks)]
        players += [(click_id, f"{sub1}-{n}") for n, click_id in enumerate(ids[:buyers])]
    client.flush()
    for click_id, player in players:
        client.postback(click_id=click_id, event="registration", player_id=player, token=world.token)
        client.postback(
            event="first_deposit", player_id=player, payout="50", txn_id=player, token=world.token
        )

    reply = placements(client)
    assert (reply["by"], reply["currency"]) == ("sub1", "EUR")
    stop = [(p["key"]["sub1"], p["cost"], p["profit"], p["roi"]) for p in reply["stop"]]
    assert stop == [("loser", "100.00", "-100.00", "-1.0000"), ("usd-loser", "54.00", "-54.00", "-1.0000")]
    scale = [(p["key"]["sub1"], p["roi"], p["profit_share"], p["spend_share"]) for p in reply["scale"]]
    assert scale == [("winner", "4.0000", "1.0000", "0.0704")]  # 20 of 284 spent, all 80 of profit

    # A network buying the traffic itself earns the advertiser's price: 1.50 a registration and
    # 50 a first deposit (the casino's listed prices).
    network = placements(client, earnings="revenue")
    assert network["earnings"] == "revenue"
    assert [(p["key"]["sub1"], p["earned"], p["roi"]) for p in network["scale"]] == [
        ("winner", "51.50", "1.5750")
    ]
    assert [p["key"]["sub1"] for p in network["stop"]] == ["loser", "usd-loser", "break-even"]

    stricter = placements(client, min_spend="5", max_roi="0.5", target_roi="5")
    assert [p["key"]["sub1"] for p in stricter["stop"]] == ["loser", "usd-loser", "small-loser", "break-even"]
    assert stricter["scale"] == []


def test_what_it_cannot_answer_is_a_422_naming_the_parameter(client: Client, world: World) -> None:
    today = datetime.now(UTC).date().isoformat()
    link_id = next(link["id"] for link in client.items("/links") if link["code"] == world.alice_casino)
    client.api("PUT", f"/links/{link_id}/cost", json={"model": "cpc", "currency": "USD", "amount": "1"})
    client.click(world.alice_casino)
    client.flush()
    base = {"from": today, "to": today, "currency": "EUR"}
    for params, field in [
        ({}, "currency"),  # no USD to EUR rate recorded
        ({"by": "day"}, "by"),
        ({"by": "nonsense"}, "group_by"),
        ({"max_roi": "-5"}, "max_roi"),
        ({"currency": "EURO"}, "currency"),
    ]:
        reply = client.http.get("/api/reports/stop-or-scale", params=base | params, headers=client.auth)
        assert reply.status_code == 422, (params, reply.text)
        assert reply.json()["detail"][0]["loc"][-1] == field, (params, reply.json())


def test_stop_or_scale_ranks_by_money_lost_and_by_return() -> None:
    def row(
        name: str, clicks: int, cost: str, commission: str
    ) -> tuple[dict[str, str | int], dict[str, object]]:
        money = {
            "cost": {"EUR": Decimal(cost)},
            "commission": {"EUR": Decimal(commission)} if commission else {},
        }
        return {"sub1": name}, {"clicks": clicks, **money}

    rows = [
        row("a", 100, "200", "50"),  # loses 150
        row("b", 100, "300", "0"),  # loses 300
        row("c", 10, "40", "0"),  # loses 40, spent below the threshold
        row("d", 50, "100", "1000"),  # ROI 9
        row("e", 10, "10", "40"),  # ROI 3
        row("f", 500, "1000", "1350"),  # ROI 0.35, but 61 % of the spend for 27 % of the profit
        row("g", 5, "0", "10"),  # spent nothing: no ROI, in neither list
    ]
    found = stop_or_scale(
        rows, "EUR", min_spend=Decimal(50), max_roi=Decimal(0), target_roi=Decimal("0.3"), limit=10
    )
    assert [p.key["sub1"] for p in found.stop] == ["b", "a"]
    assert [p.key["sub1"] for p in found.scale] == ["d", "e"]
    assert found.stop[0].roi == Decimal(-1) and found.scale[0].roi == Decimal(9)
    one = stop_or_scale(rows, "EUR", min_spend=Decimal(0), max_roi=Decimal(0), target_roi=Decimal(0), limit=1)
    assert [p.key["sub1"] for p in one.stop] == ["b"] and len(one.scale) == 1
