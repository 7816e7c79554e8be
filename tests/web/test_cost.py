"""Traffic cost end to end: a link's cost model, clicks and postbacks over HTTP, the cost, CPC,
profit and ROI in reports (issue 16; docs/reports.md, "Traffic cost")."""

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from clickback.store.tables import links
from tests.conftest import Client, World, make_world
from tests.web.test_commissions import deal
from tests.web.test_traffic_quality import GOOGLEBOT, LONDON_IP, geo_node

__all__ = ["geo_node"]  # a fixture, used by name


def link_id(client: Client, code: str) -> int:
    return int(next(link["id"] for link in client.items("/links") if link["code"] == code))


def set_cost(client: Client, code: str, **model: Any) -> dict[str, Any]:
    link: dict[str, Any] = client.api("PUT", f"/links/{link_id(client, code)}/cost", json=model)
    return link


def money(amounts: dict[str, Any] | None) -> dict[str, Decimal]:
    return {c: Decimal(str(a)) for c, a in (amounts or {}).items()}


def by_key(report: dict[str, Any], name: str) -> dict[Any, dict[str, Any]]:
    return {row["key"][name]: row for row in report["rows"]}


def test_cpc_by_country_charges_each_click_its_countrys_price_and_bots_only_if_told(geo_node: Client) -> None:
    client = geo_node
    world = make_world(client)
    set_cost(
        client,
        world.alice_casino,
        model="cpc",
        currency="EUR",
        amount="0.05",
        countries={"GB": "0.08"},
        bots=False,
    )
    link = f"/c/{world.alice_casino}"
    for _ in range(2):
        assert client.http.get(link, headers={"x-forwarded-for": LONDON_IP}).status_code == 302
    client.http.get(link, headers={"x-forwarded-for": "8.8.8.8"})
    client.http.get(link, headers={"x-forwarded-for": LONDON_IP, "user-agent": GOOGLEBOT})
    client.flush()

    rows = by_key(client.report(group_by="country"), "country")
    assert money(rows["GB"]["click_cost"]) == {"EUR": Decimal("0.16")}
    assert money(rows["GB"]["cpc"]) == {"EUR": Decimal("0.08")}
    assert rows["GB"]["bot_clicks"] == 1 and money(rows["GB"]["bot_cost"]) == {}  # not charged
    assert money(rows["US"]["click_cost"]) == {"EUR": Decimal("0.05")}
    assert money(client.report()["totals"]["cost"]) == {"EUR": Decimal("0.21")}


def test_cpm_charges_a_thousandth_a_click_bots_included_unless_the_model_changes(
    client: Client, world: World
) -> None:
    set_cost(client, world.bob_casino, model="cpm", currency="USD", amount="2.5")
    for _ in range(3):
        client.click(world.bob_casino)
    client.http.get(f"/c/{world.bob_casino}", headers={"user-agent": GOOGLEBOT})
    client.flush()
    totals = client.report()["totals"]
    assert money(totals["click_cost"]) == {"USD": Decimal("0.01")}
    assert money(totals["bot_cost"]) == {"USD": Decimal("0.0025")}
    assert money(totals["cpc"]) == {"USD": Decimal("0.0033")}  # 0.01 over 3 human clicks

    changed = set_cost(client, world.bob_casino, model="cpm", currency="USD", amount="2.5", bots=False)
    assert changed["cost"]["bots"] is False
    client.http.get(f"/c/{world.bob_casino}", headers={"user-agent": GOOGLEBOT})
    client.flush()
    assert money(client.report()["totals"]["bot_cost"]) == {"USD": Decimal("0.0025")}  # unchanged


def test_a_cost_passed_by_the_source_is_taken_and_a_wrong_one_refused_with_the_click_kept(
    client: Client, world: World
) -> None:
    set_cost(client, world.alice_sportsbook, model="source", currency="EUR")
    link = f"/c/{world.alice_sportsbook}"
    good = [("a", {"cost": "0.05"}), ("b", {"cost": "0.1", "cost_currency": "USD"})]
    hostile = [
        ("neg", {"cost": "-1"}, "invalid_cost"),
        ("huge", {"cost": "1000000000"}, "invalid_cost"),
        ("text", {"cost": "abc"}, "invalid_cost"),
        ("macro", {"cost": "{cost}"}, "invalid_cost"),
        ("cur", {"cost": "0.1", "cost_currency": "XYZ"}, "invalid_cost_currency"),
    ]
    for sub1, params in good:
        reply = client.http.get(link, params={"sub1": sub1, **params})
        assert reply.status_code == 302 and "x-clickback-reason" not in reply.headers
    for sub1, params, reason in hostile:
        reply = client.http.get(link, params={"sub1": sub1, **params})
        assert reply.status_code == 302, reply.text  # the visitor still goes to the offer
        assert reply.headers["x-clickback-reason"] == reason
    client.flush()

    rows = by_key(client.report(group_by="sub1"), "sub1")
    assert money(rows["a"]["click_cost"]) == {"EUR": Decimal("0.05")}
    assert money(rows["b"]["click_cost"]) == {"USD": Decimal("0.1")}
    for sub1, _, _ in hostile:
        assert rows[sub1]["clicks"] == 1 and money(rows[sub1]["click_cost"]) == {}  # kept, without a cost
    today = datetime.now(UTC).date().isoformat()
    refused = client.api("GET", "/reports/refused-clicks", params={"from": today, "to": today})
    assert {(r["reason"], r["clicks"]) for r in refused} == {
        ("invalid_cost", 4),
        ("invalid_cost_currency", 1),
    }
    assert {r["code"] for r in refused} == {world.alice_sportsbook}


def test_cpa_cost_is_paid_per_payable_conversion_of_its_event_and_roi_follows(
    client: Client, world: World
) -> None:
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}})
    set_cost(client, world.alice_casino, model="cpa", currency="EUR", amount="40", event="first_deposit")
    players = []
    for n in range(2):
        click_id = client.click(world.alice_casino, sub1=f"p{n}")
        players.append((click_id, f"P{n}"))
    client.flush()
    for click_id, player in players:
        client.postback(click_id=click_id, event="registration", player_id=player, token=world.token)
        ftd = client.postback(
            event="first_deposit", player_id=player, payout="50", txn_id=f"{player}-D", token=world.token
        )
        assert ftd.status_code == 200, ftd.text
    totals = client.report()["totals"]
    assert money(totals["conversion_cost"]) == {"EUR": Decimal(80)}
    assert money(totals["cost_per_ftd"]) == {"EUR": Decimal(40)}
    assert money(totals["cpa_commission"]) == {"EUR": Decimal(200)}
    assert money(totals["traffic_profit"]) == {"EUR": Decimal(120)}
    assert money(totals["roi"]) == {"EUR": Decimal("1.5")}

    # A rejected deposit costs nothing (and its CPA is reversed).
    client.postback(
        event="first_deposit", player_id="P1", txn_id="P1-D", status="rejected", token=world.token
    )
    totals = client.report()["totals"]
    assert money(totals["conversion_cost"]) == {"EUR": Decimal(40)}
    assert money(totals["roi"]) == {"EUR": Decimal("1.5")}  # (100 - 40) / 40


def test_a_partners_revshare_costs_its_percent_of_every_commission_reversals_too(
    client: Client, world: World
) -> None:
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}})
    shown = set_cost(client, world.alice_casino, model="revshare", percent="25")
    assert shown["cost"]["percent"] == "25" and shown["cost"]["currency"] == ""
    click_id = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="P", token=world.token)
    client.postback(event="first_deposit", player_id="P", payout="50", txn_id="D", token=world.token)
    totals = client.report()["totals"]
    assert money(totals["cpa_commission"]) == {"EUR": Decimal(100)}
    assert money(totals["conversion_cost"]) == {"EUR": Decimal(25)}
    assert money(totals["roi"]) == {"EUR": Decimal(3)}

    # The deposit rejected: the CPA is reversed, and so is the partner's share of it.
    client.postback(event="first_deposit", player_id="P", txn_id="D", status="rejected", token=world.token)
    totals = client.report()["totals"]
    assert money(totals["cpa_commission"]) == {} and money(totals["conversion_cost"]) == {}


def test_no_cost_means_empty_roi_and_cpc_not_errors(client: Client, world: World) -> None:
    client.click(world.alice_casino)
    client.flush()
    totals = client.report()["totals"]
    assert totals["roi"] is None and totals["cpc"] == {} and totals["cost"] == {}


def test_cost_models_are_checked_and_shown_on_the_link(client: Client, world: World) -> None:
    alice_casino = link_id(client, world.alice_casino)
    path = f"/api/links/{alice_casino}/cost"
    # Each refused naming the field at fault (the loc of FastAPI's 422).
    for body, field in [
        ({"model": "cpm", "currency": "EUR", "amount": "2.55"}, "amount"),  # a click finer than 0.0001
        ({"model": "cpm", "currency": "EUR", "amount": "2", "countries": {"DE": "3"}}, "countries"),
        ({"model": "cpa", "currency": "EUR", "amount": "10"}, "event"),  # which event?
        ({"model": "cpc", "amount": "0.1"}, "currency"),
        ({"model": "cpc", "currency": "EURO", "amount": "0.1"}, "currency"),
        ({"model": "cpc", "currency": "EUR", "amount": "-0.1"}, "amount"),
        ({"model": "bid", "currency": "EUR", "amount": "0.1"}, "model"),
        ({"model": "cpc", "currency": "EUR", "amount": "0.1", "countries": {"de": "1"}}, "countries"),
        ({"model": "cpc", "currency": "EUR", "amount": "0.1", "extra": 1}, "extra"),
        ({"model": "revshare", "percent": "25.001"}, "percent"),
        ({"model": "revshare", "percent": "20", "currency": "EUR"}, "currency"),
    ]:
        reply = client.http.put(path, json=body, headers=client.auth)
        assert reply.status_code == 422, (body, reply.text)
        assert field in reply.json()["detail"][0]["loc"], (body, reply.json())
    assert client.api("GET", f"/links/{alice_casino}")["cost"] is None  # nothing kept

    shown = set_cost(
        client, world.alice_casino, model="cpc", currency="EUR", amount="0.05", countries={"DE": "0.08"}
    )
    assert shown["cost"] == {
        "model": "cpc",
        "currency": "EUR",
        "amount": "0.05",
        "countries": {"DE": "0.08"},
        "event": "",
        "percent": "0",
        "bots": True,
    }
    assert set_cost(client, world.alice_casino, model="none")["cost"] is None
    created = client.api(
        "POST",
        "/links",
        json={
            "affiliate_id": world.bob["id"],
            "offer_id": world.sportsbook["id"],
            "cost": {"model": "source", "currency": "USD"},
        },
    )
    assert created["cost"]["model"] == "source" and created["cost"]["currency"] == "USD"


def test_the_csv_has_cost_columns_per_currency(client: Client, world: World) -> None:
    set_cost(client, world.alice_casino, model="cpc", currency="EUR", amount="0.05")
    client.click(world.alice_casino, sub1="=cmd|' /C calc'!A0")
    client.flush()
    today = datetime.now(UTC).date().isoformat()
    reply = client.http.get(
        "/api/reports",
        params={"from": today, "to": today, "group_by": "sub1", "format": "csv"},
        headers=client.auth,
    )
    table = list(csv.DictReader(io.StringIO(reply.text)))
    assert table[0]["click_cost EUR"] == "0.05" and table[0]["cpc EUR"] == "0.05"
    assert table[0]["roi EUR"] == "-1.00"  # spent, earned nothing
    assert table[0]["sub1"].startswith("'=")  # formula injection defused


def test_a_stored_model_that_cannot_be_applied_stops_no_click(
    client: Client, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # As a model saved under other rules would be: the catalog still loads, the link still redirects.
    link = link_id(client, world.alice_casino)

    async def store_bad() -> None:
        async with client.node.runtime.db.write() as conn:
            bad = json.dumps({"kind": "cpm", "currency": "EUR", "amount": "2.55"})
            await conn.execute(update(links).where(links.c.id == link).values(cost=bad))
        await client.node.runtime.catalog.reload()

    client.node.call(store_bad)
    assert f"link {link}: its cost model cannot be applied" in caplog.text
    client.click(world.alice_casino)
    client.flush()
    assert client.report()["totals"]["clicks"] == 1
