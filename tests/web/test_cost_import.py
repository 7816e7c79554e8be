"""Importing spend (issue 16; docs/reports.md, "Importing spend"): a CSV of cost per day and link
(and sub ID) spread over the matching clicks, a re-import replacing the figures, every wrong line
refused with nothing applied, and the reports from every store agreeing afterwards."""

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from clickback.core.model import Click, Link, Traits
from clickback.store.clicks import write_batch
from clickback.store.weeks import sum_weeks
from tests.conftest import Client, World

# A week over (Monday to Sunday), whose sums store.weeks keeps once summed.
MONDAY = date(2026, 11, 16)
DAY = MONDAY + timedelta(days=2)
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"


def send(client: Client, csv_text: str, **params: str) -> httpx.Response:
    headers = {**client.auth, "content-type": "text/csv"}
    return client.http.post("/api/costs/import", content=csv_text.encode(), params=params, headers=headers)


def imported(client: Client, csv_text: str, **params: str) -> dict[str, Any]:
    reply = send(client, csv_text, **params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def money(amounts: dict[str, Any] | None) -> dict[str, Decimal]:
    return {c: Decimal(str(a)) for c, a in (amounts or {}).items() if Decimal(str(a))}


def write_clicks(client: Client, link: Link, specs: list[tuple[datetime, str, str, str]]) -> None:
    """Clicks written in the past by the click writer's own store function: (time, sub1,
    country, bot reason)."""
    runtime = client.node.runtime
    made = [
        Click(
            runtime.tracker.codec.mint(at),
            at,
            link.id,
            link.affiliate_id,
            link.offer_id,
            link.campaign,
            (sub1, "", "", "", ""),
            "push",
            "lp1",
            "203.0.113.9",
            UA,
            "",
            Traits(country, "", "", None, "desktop", "Windows", "Chrome", bot),
            f"visitor-{n}",
        )
        for n, (at, sub1, country, bot) in enumerate(specs)
    ]
    window = runtime.settings.unique_window_ms
    assert client.node.call(lambda: write_batch(runtime.db, made, {}, window)) == len(made)


def report(client: Client, first: date, last: date, **params: str) -> dict[str, Any]:
    reply: dict[str, Any] = client.api(
        "GET",
        "/reports",
        params={"from": first.isoformat(), "to": last.isoformat(), "limit": "1000"} | params,
    )
    return reply


def by_sub1(reply: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    return {row["key"]["sub1"]: money(row["click_cost"]) for row in reply["rows"]}


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_spend_is_spread_over_the_matching_clicks_and_a_reimport_replaces_it(
    client: Client, world: World
) -> None:
    link = client.node.runtime.catalog.current.links_by_code[world.alice_casino]
    write_clicks(
        client,
        link,
        [
            (at(9), "a", "DE", ""),
            (at(10), "a", "DE", ""),
            (at(11), "a", "AT", "crawler"),
            (at(12), "b", "DE", ""),
        ],
    )
    first = imported(
        client,
        f"day,link,sub1,cost,currency\n{DAY},{world.alice_casino},a,1.00,EUR\n{DAY},{link.id},b,0.50,EUR\n",
    )
    assert (first["lines"], first["clicks"], first["unmatched"]) == (2, 4, [])
    assert money(first["total"]) == {"EUR": Decimal("1.5")}
    reply = report(client, DAY, DAY, group_by="sub1")
    assert by_sub1(reply) == {"a": {"EUR": Decimal(1)}, "b": {"EUR": Decimal("0.5")}}  # 1.00 over 3: exact
    assert money(reply["totals"]["bot_cost"]) == {"EUR": Decimal("0.3333")}  # the crawler's share
    assert money(reply["totals"]["cpc"]) == {"EUR": Decimal("0.5")}  # 1.50 over 3 human clicks

    # Corrected figures for the same day and link: they replace, not add; the line for all the
    # link's clicks spreads over every one of them.
    again = imported(client, f"day,link,cost\n{DAY},{world.alice_casino},2.00\n", currency="USD")
    assert again["clicks"] == 4
    reply = report(client, DAY, DAY, group_by="sub1")
    assert by_sub1(reply) == {"a": {"USD": Decimal("1.5")}, "b": {"USD": Decimal("0.5")}}
    listed = client.items("/costs/imports", link_id=str(link.id))
    assert [(r["subs"], r["cost"], r["currency"], r["clicks"]) for r in listed] == [
        ({}, "2.00", "USD", 4),
        ({"sub1": "b"}, "0.50", "EUR", 1),
        ({"sub1": "a"}, "1.00", "EUR", 3),
    ]


def test_an_import_replaces_a_cost_models_figures_on_its_days_only(client: Client, world: World) -> None:
    link_id = client.node.runtime.catalog.current.links_by_code[world.alice_casino].id
    client.api("PUT", f"/links/{link_id}/cost", json={"model": "cpc", "currency": "EUR", "amount": "0.10"})
    client.click(world.alice_casino)
    client.click(world.alice_casino)
    client.flush()
    today = datetime.now(UTC).date()
    assert money(client.report()["totals"]["click_cost"]) == {"EUR": Decimal("0.2")}
    imported(client, f"day,link,cost,currency\n{today},{world.alice_casino},0.07,EUR\n")
    assert money(client.report()["totals"]["click_cost"]) == {"EUR": Decimal("0.07")}
    client.click(world.alice_casino)  # a click after the import: the model's price again
    client.flush()
    assert money(client.report()["totals"]["click_cost"]) == {"EUR": Decimal("0.17")}


def test_days_are_the_zones_and_a_line_without_clicks_is_reported_back(client: Client, world: World) -> None:
    link = client.node.runtime.catalog.current.links_by_code[world.bob_casino]
    # 23:30 UTC is already the next day in Berlin.
    write_clicks(client, link, [(at(8), "x", "DE", ""), (at(23, 30), "x", "DE", "")])
    reply = imported(
        client,
        f"day,link,cost,currency,sub1\n{DAY},{link.id},0.40,EUR,x\n{DAY},{link.id},9.99,EUR,nobody\n",
        zone="Europe/Berlin",
    )
    assert reply["clicks"] == 1
    assert [(u["line"], u["cost"], u["link"]) for u in reply["unmatched"]] == [(3, "9.99", str(link.id))]
    berlin = report(client, DAY, DAY + timedelta(days=1), zone="Europe/Berlin", group_by="day")
    assert [money(r["click_cost"]) for r in berlin["rows"]] == [{"EUR": Decimal("0.4")}, {}]


def test_a_wrong_line_refuses_the_whole_file_naming_it(client: Client, world: World) -> None:
    code = world.alice_casino
    good = f"{DAY},{code},1.00,EUR"
    for text, line, field in [
        ("day,link,cost,currency\n", "line 0", "file"),
        ("day,link,price\n", "line 1", "header"),
        ("day,cost\n", "line 1", "header"),
        (f"day,link,cost,currency\n{good}\n2026-13-01,{code},1,EUR\n", "line 3", "day"),
        (f"day,link,cost,currency\n{good}\n{DAY},nolink,1,EUR\n", "line 3", "link"),
        (f"day,link,cost,currency\n{good}\n{DAY},{world.bob_casino},-1,EUR\n", "line 3", "cost"),
        (f"day,link,cost,currency\n{good}\n{DAY},{world.bob_casino},1e3,EUR\n", "line 3", "cost"),
        (f"day,link,cost,currency\n{good}\n{DAY},{world.bob_casino},1,EURO\n", "line 3", "currency"),
        (f"day,link,cost\n{DAY},{code},1\n", "line 2", "currency"),  # none given, no default
        (f"day,link,cost,currency\n{good}\n{good}\n", "line 3", "line"),  # twice
        (f"day,link,cost,currency\n{good}\n{DAY},{code}\n", "line 3", "line"),
        (f"day,link,cost,currency,sub1\n{good},a\n{DAY},{code},1,EUR,\n", "line 3", "line"),  # overlap
        (f"day,link,cost,currency,sub1\n{good},{'s' * 300}\n", "line 2", "sub1"),
    ]:
        reply = send(client, text)
        assert reply.status_code == 422, (text, reply.text)
        assert reply.json()["detail"][0]["loc"] == ["body", line, field], (text, reply.json())
    # The same link by its code and by its id: one line's spend was lost until 2026-12-06.
    link_id = next(link["id"] for link in client.items("/links") if link["code"] == code)
    twice = send(client, f"day,link,cost,currency\n{good}\n{DAY},{link_id},2.00,EUR\n")
    assert twice.status_code == 422 and twice.json()["detail"][0]["loc"] == ["body", "line 3", "line"]
    bad_zone = send(client, f"day,link,cost,currency\n{good}\n", zone="Mars/Olympus")
    assert bad_zone.status_code == 422 and bad_zone.json()["detail"][0]["loc"] == ["query", "zone"]
    not_utf8 = client.http.post(
        "/api/costs/import",
        content=b"day,link,cost\n\xff\xfe",
        headers={**client.auth, "content-type": "text/csv"},
    )
    assert not_utf8.status_code == 422
    assert client.items("/costs/imports") == []  # nothing was applied


def test_every_store_agrees_after_an_import_into_a_week_already_summed(client: Client, world: World) -> None:
    links = client.node.runtime.catalog.current.links_by_code
    casino, sportsbook = links[world.alice_casino], links[world.alice_sportsbook]
    for n, link in enumerate((casino, sportsbook)):
        write_clicks(
            client,
            link,
            [
                (
                    at(h, n * 7, MONDAY + timedelta(days=d)),
                    f"s{h % 3}",
                    ("DE", "AT")[h % 2],
                    "bot" if h == 5 else "",
                )
                for d in range(7)
                for h in range(1, 24, 4)
            ],
        )
    runtime = client.node.runtime
    assert client.node.call(lambda: sum_weeks(runtime.db, int(time.time()))) >= 1
    imported(
        client,
        "day,link,sub1,cost,currency\n"
        f"{DAY},{casino.code},s0,3.00,EUR\n{DAY},{casino.code},s1,0.0007,EUR\n"
        f"{DAY + timedelta(days=1)},{sportsbook.code},s2,5.55,USD\n",
    )
    sunday = MONDAY + timedelta(days=6)
    weeks = report(client, MONDAY, sunday, group_by="sub1")  # the week's sums (values rollup)
    days = report(client, MONDAY, sunday, group_by="day,sub1")  # each day's rows
    raw = report(client, MONDAY, sunday, group_by="sub1,country")  # the raw tables
    assert (weeks["source"], raw["source"]) == ("values", "raw")
    expected = {"EUR": Decimal("3.0007"), "USD": Decimal("5.55")}
    for reply in (weeks, days, raw):
        assert money(reply["totals"]["click_cost"]) == expected, reply["source"]
    from_days: dict[str, dict[str, Decimal]] = {}
    for row in days["rows"]:
        for c, a in money(row["click_cost"]).items():
            sub = from_days.setdefault(row["key"]["sub1"], {})
            sub[c] = sub.get(c, Decimal(0)) + a
    assert by_sub1(weeks) == {k: from_days.get(k, {}) for k in by_sub1(weeks)}
