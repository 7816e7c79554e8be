"""Every list endpoint: cursor pages that stay put while rows are inserted, filters, refusals."""

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from clickback.store.tables import players
from tests.conftest import Client, World
from tests.web.test_commissions import CPA_100, LONG_AGO, THIS_MONTH, deal, month, register, send

LISTS = [
    "/advertisers",
    "/offers",
    "/affiliates",
    "/links",
    "/postbacks",
    "/conversions",
    "/commissions",
    "/players",
    "/fx-rates",
]


def walk(client: Client, path: str, limit: int, insert: Callable[[], object], **params: Any) -> list[Any]:
    """Every row of a list, `limit` to a page, with `insert` run between the first page and the
    second. Each page but the last is full."""
    rows: list[Any] = []
    cursor = None
    while True:
        page = client.api(
            "GET", path, params=params | {"limit": limit} | ({"cursor": cursor} if cursor else {})
        )
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["items"]) <= limit
            assert len(rows) > limit, "one page only: nothing was inserted between pages"
            return rows
        assert len(page["items"]) == limit
        if len(rows) == limit:
            insert()


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in rows]


def test_catalog_lists_page_oldest_first_and_filter_by_status_and_owner(client: Client, world: World) -> None:
    for kind, item in (
        ("advertisers", world.southgate),
        ("affiliates", world.bob),
        ("offers", world.rival_offer),
    ):
        client.api("PUT", f"/{kind}/{item['id']}/status", json={"status": "paused"})
    links = client.items("/links")
    client.api("PUT", f"/links/{links[1]['id']}/status", json={"status": "paused"})
    made: list[Any] = []

    def new(kind: str, body: dict[str, Any]) -> Callable[[], None]:
        return lambda: made.append(client.api("POST", kind, json=body))

    advertisers = walk(client, "/advertisers", 1, new("/advertisers", {"name": "Late Gaming"}))
    offers = walk(client, "/offers", 2, new("/offers", world_offer(world, "Late Casino")))
    affiliates = walk(client, "/affiliates", 1, new("/affiliates", {"name": "Late Media"}))
    link_body = {"affiliate_id": world.bob["id"], "offer_id": world.sportsbook["id"]}
    walked_links = walk(client, "/links", 3, new("/links", link_body))

    # Oldest first: what was inserted while paging comes last, once; nothing shifted.
    assert ids(advertisers) == [world.northstar["id"], world.southgate["id"], made[0]["id"]]
    assert ids(offers) == [world.casino["id"], world.sportsbook["id"], world.rival_offer["id"], made[1]["id"]]
    assert ids(affiliates) == [world.alice["id"], world.bob["id"], made[2]["id"]]
    assert ids(walked_links) == [*ids(links), made[3]["id"]]
    assert walked_links[0]["url"].endswith(walked_links[0]["code"])

    def names(path: str, **params: Any) -> list[str]:
        return [r["name"] for r in client.items(path, **params)]

    def link_ids(**params: Any) -> list[int]:
        return ids(client.items("/links", **params))

    assert names("/advertisers", status="paused") == ["Southgate Bets"]
    assert names("/advertisers", status="active") == ["Northstar Gaming", "Late Gaming"]
    assert names("/affiliates", status="paused") == ["Bob Traffic"]
    assert names("/offers", advertiser_id=world.northstar["id"]) == [
        "Northstar Casino",
        "Northstar Sportsbook",
        "Late Casino",
    ]
    assert names("/offers", advertiser_id=world.southgate["id"], status="paused") == ["Southgate Poker"]
    assert names("/offers", advertiser_id=world.southgate["id"], status="active") == []
    assert link_ids(affiliate_id=world.alice["id"]) == [links[0]["id"], links[2]["id"]]
    assert link_ids(offer_id=world.casino["id"]) == [links[0]["id"], links[1]["id"]]
    assert link_ids(affiliate_id=world.bob["id"], offer_id=world.casino["id"]) == [links[1]["id"]]
    assert link_ids(status="paused") == [links[1]["id"]]
    assert link_ids(affiliate_id=world.bob["id"], status="active") == [links[3]["id"], made[3]["id"]]

    # An offer's deals: the default first, then affiliates' own; an envelope like every list.
    deal(client, world.casino, CPA_100, affiliate=world.bob)
    deal(client, world.casino, CPA_100)
    path = f"/offers/{world.casino['id']}/deals"
    walked = walk(client, path, 1, lambda: deal(client, world.casino, CPA_100, affiliate=world.alice))
    # Alice's deal sorts after the first page's end: it shows in its place, nothing moves.
    assert [d["affiliate_id"] for d in walked] == [None, world.alice["id"], world.bob["id"]]
    assert client.api("GET", path)["next_cursor"] is None
    assert len(client.items(path)) == 3


def world_offer(world: World, name: str) -> dict[str, Any]:
    return {
        "advertiser_id": world.northstar["id"],
        "name": name,
        "url_template": "https://late.example.com/?cid={click_id}",
        "currency": "EUR",
    }


def test_conversions_and_the_postback_log_page_newest_first_and_filter(client: Client, world: World) -> None:
    fb = client.click(world.alice_casino, sub1="fb")
    tt = client.click(world.bob_casino, sub1="tt")
    sports = client.click(world.alice_sportsbook)
    rival = client.click(world.rival_link)
    client.flush()
    token, rival_token = world.token, world.southgate["token"]
    for params in (
        {"click_id": fb, "event": "registration", "player_id": "P-1", "token": token},
        {"player_id": "P-1", "event": "deposit", "payout": "20", "txn_id": "T-1", "status": "pending"},
        {"click_id": tt, "event": "registration", "player_id": "P-2", "token": token},
        {"click_id": sports, "event": "sale", "txn_id": "T-2", "status": "rejected", "token": token},
        {"click_id": rival, "event": "registration", "token": rival_token},
    ):
        reply = client.postback(**({"token": token} | params))
        assert reply.json()["result"] == "accepted", reply.text
    a, b, c, d, e = reversed(client.items("/conversions"))

    walked = walk(client, "/conversions", 2, lambda: send(client, world, click_id=fb, event="vip_level"))
    log = client.items("/postbacks")
    walked_log = walk(client, "/postbacks", 2, lambda: send(client, world, click_id=fb, event="nope"))

    # Newest first: a row inserted after the first page was read is simply not on later pages.
    assert ids(walked) == ids([e, d, c, b, a])
    assert ids(walked_log) == ids(log) and len(log) == 6
    alice_casino = next(x["id"] for x in client.items("/links") if x["code"] == world.alice_casino)

    def found(**params: Any) -> set[int]:
        return {r["id"] for r in client.items("/conversions", **params) if r["event"] != "vip_level"}

    assert found(click_id=fb) == {a["id"], b["id"]}
    assert found(advertiser_id=world.southgate["id"]) == {e["id"]}
    assert found(affiliate_id=world.bob["id"]) == {c["id"], e["id"]}
    assert found(offer_id=world.sportsbook["id"]) == {d["id"]}
    assert found(link_id=alice_casino) == {a["id"], b["id"]}
    assert found(event="registration") == {a["id"], c["id"], e["id"]}
    assert found(event="first_deposit", status="pending") == {b["id"]}
    assert found(status="rejected") == {d["id"]}
    assert found(player_id="P-1") == {a["id"], b["id"]}
    assert found(txn_id="T-2") == {d["id"]}
    assert found(sub1="tt") == {c["id"]}
    assert found(affiliate_id=world.alice["id"], event="registration") == {a["id"]}
    # `from` and `to`: a date is its whole UTC day; a datetime `to` is itself left out.
    day = datetime.fromisoformat(c["created_at"]).date()
    assert found(**{"from": day.isoformat(), "to": day.isoformat()}) >= {c["id"]}
    assert found(to=str(day - timedelta(days=1))) == set()
    assert found(**{"from": str(day + timedelta(days=1))}) == set()
    assert found(**{"from": c["created_at"]}) == {c["id"], d["id"], e["id"]}
    assert found(to=c["created_at"]) == {a["id"], b["id"]}
    assert found(**{"from": b["created_at"], "to": d["created_at"]}) == {b["id"], c["id"]}


def test_commission_ledger_pages_newest_first_and_filters(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    deal(
        client,
        world.casino,
        {"cpa": {"amount": "150", "hold_days": 14, "ftd_min": None}},
        affiliate=world.bob,
    )
    deal(client, world.sportsbook, {"revshare": {"percent": "25"}})
    register(client, world, world.alice_casino, "A")
    register(client, world, world.bob_casino, "B")
    register(client, world, world.alice_sportsbook, "S", clicked_at=LONG_AGO)
    alice_ftd = send(client, world, event="ftd", player_id="A", payout="30", txn_id="D-A").json()
    send(client, world, event="ftd", player_id="B", payout="30", txn_id="D-B")
    send(client, world, event="ngr", player_id="S", payout="400", period=month(-2), txn_id="N-S")
    send(client, world, event="ftd", player_id="A", txn_id="D-A", status="rejected")
    # Bob's deal asks for no deposit: his player qualified on registering.
    reversal, ngr, alice_cpa, bob_cpa = client.items("/commissions")
    late = (world.alice_casino, "L")

    walked = walk(client, "/commissions", 1, lambda: send_ftd(client, world, *late))

    assert ids(walked) == ids([reversal, ngr, alice_cpa, bob_cpa])
    assert (alice_cpa["status"], bob_cpa["status"], ngr["status"]) == ("reversed", "pending", "approved")
    player = {p["player_id"]: p["id"] for p in client.items("/players")}

    def found(**params: Any) -> list[int]:
        return [r["id"] for r in client.items("/commissions", **params) if r["player"] != player["L"]]

    assert found(affiliate_id=world.bob["id"]) == [bob_cpa["id"]]
    assert found(offer_id=world.sportsbook["id"]) == [ngr["id"]]
    assert found(player=player["A"]) == [reversal["id"], alice_cpa["id"]]
    # The FTD's arrival booked the CPA, its rejection the reversal.
    assert found(conversion_id=alice_ftd["conversion_id"]) == [reversal["id"], alice_cpa["id"]]
    assert found(kind="revshare") == [ngr["id"]]
    assert found(kind="cpa", status="approved") == [reversal["id"]]
    assert found(status="pending") == [bob_cpa["id"]]
    assert found(status="reversed") == [alice_cpa["id"]]
    assert found(period=month(-2)) == [ngr["id"]]
    assert found(period=THIS_MONTH, affiliate_id=world.alice["id"]) == [reversal["id"], alice_cpa["id"]]
    day = datetime.fromisoformat(ngr["created_at"]).date()
    assert found(**{"from": str(day), "to": str(day)}) == ids([reversal, ngr, alice_cpa, bob_cpa])
    assert found(**{"from": str(day + timedelta(days=1))}) == []
    assert found(**{"from": ngr["created_at"]}) == [reversal["id"], ngr["id"]]
    assert found(to=ngr["created_at"]) == [alice_cpa["id"], bob_cpa["id"]]


def send_ftd(client: Client, world: World, link: str, player: str) -> None:
    register(client, world, link, player)
    send(client, world, event="ftd", player_id=player, payout="50", txn_id="D-" + player)


def test_players_page_oldest_first_filter_and_group_into_cohorts(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    send_ftd(client, world, world.alice_casino, "A")  # qualifies
    register(client, world, world.bob_casino, "B")
    register(client, world, world.alice_sportsbook, "S")
    rival = client.click(world.rival_link)
    client.flush()
    client.postback(click_id=rival, event="registration", player_id="R", token=world.southgate["token"])
    # S registered in January 2020, first seen then; R comes from Germany.
    january = datetime(2020, 1, 10, 12, tzinfo=UTC)
    moved = (
        update(players).where(players.c.player_id == "S").values(registered_at=january, first_seen_at=january)
    )
    client.node.call(lambda: execute(client, moved))
    client.node.call(
        lambda: execute(client, update(players).where(players.c.player_id == "R").values(country="DE"))
    )
    a, _, s, _ = client.items("/players")
    late = (world.bob_casino, "L")

    walked = walk(client, "/players", 3, lambda: register(client, world, *late))

    assert [p["player_id"] for p in walked] == ["A", "B", "S", "R", "L"]
    assert (s["cohort"], a["cohort"]) == ("2020-01", THIS_MONTH)

    def found(path: str = "/players", **params: Any) -> list[str]:
        return [p["player_id"] for p in client.items(path, **params) if p["player_id"] != "L"]

    assert found(advertiser_id=world.southgate["id"]) == ["R"]
    assert found(affiliate_id=world.alice["id"]) == ["A", "S"]
    assert found(offer_id=world.casino["id"]) == ["A", "B"]
    assert found(player_id="B") == ["B"]
    assert found(country="DE") == ["R"]
    assert found(cohort="2020-01") == ["S"]
    assert found(qualified="true") == ["A"]
    assert found(qualified="false") == ["B", "S", "R"]
    assert found(to="2020-01-10") == ["S"]
    assert found(**{"from": "2020-01-11"}) == ["A", "B", "R"]
    assert found(**{"from": "2020-01-10T12:00:00Z", "to": "2020-01-10T12:00:01Z"}) == ["S"]
    assert found(affiliate_id=world.alice["id"], qualified="false") == ["S"]

    def cohorts(**params: Any) -> list[tuple[str, str | None, int, int]]:
        return [
            (c["cohort"], c["currency"], c["players"], c["ftds"])
            for c in client.api("GET", "/players/cohorts", params=params)
        ]

    # A cohort has a row per currency: the casino's deal pays in EUR, the other offers have none.
    assert cohorts() == [("2020-01", None, 1, 0), (THIS_MONTH, None, 1, 0), (THIS_MONTH, "EUR", 3, 1)]
    assert cohorts(affiliate_id=world.alice["id"]) == [("2020-01", None, 1, 0), (THIS_MONTH, "EUR", 1, 1)]
    assert cohorts(cohort=THIS_MONTH, qualified="false", country="DE") == [(THIS_MONTH, None, 1, 0)]
    assert cohorts(to="2019-12-31") == []


async def execute(client: Client, statement: Any) -> None:
    async with client.node.runtime.db.write() as conn:
        await conn.execute(statement)


def test_exchange_rates_page_by_pair_then_newest_day(client: Client) -> None:
    def put(base: str, quote: str, day: str) -> None:
        client.api("POST", "/fx-rates", json={"base": base, "quote": quote, "day": day, "rate": "1.5"})

    for base, quote, day in (
        ("EUR", "USD", "2026-03-01"),
        ("EUR", "USD", "2026-03-03"),
        ("USD", "EUR", "2026-03-01"),
        ("EUR", "GBP", "2026-03-02"),
        ("EUR", "USD", "2026-03-02"),
        ("EUR", "GBP", "2026-03-01"),
    ):
        put(base, quote, day)

    def inserted() -> None:
        put("EUR", "AUD", "2026-03-01")  # before the first page's end: not seen
        put("EUR", "USD", "2026-02-01")  # after it: seen in its place

    walked = walk(client, "/fx-rates", 2, inserted)

    assert [(r["base"], r["quote"], r["day"]) for r in walked] == [
        ("EUR", "GBP", "2026-03-02"),
        ("EUR", "GBP", "2026-03-01"),
        ("EUR", "USD", "2026-03-03"),
        ("EUR", "USD", "2026-03-02"),
        ("EUR", "USD", "2026-03-01"),
        ("EUR", "USD", "2026-02-01"),
        ("USD", "EUR", "2026-03-01"),
    ]
    assert walked[0]["rate"] == "1.5"

    def days(**params: Any) -> list[str]:
        return [f"{r['base']}{r['quote']} {r['day'][5:]}" for r in client.items("/fx-rates", **params)]

    assert days(base="USD") == ["USDEUR 03-01"]
    assert days(quote="GBP") == ["EURGBP 03-02", "EURGBP 03-01"]
    assert days(base="EUR", quote="USD", **{"from": "2026-03-02"}) == ["EURUSD 03-03", "EURUSD 03-02"]
    assert days(quote="USD", to="2026-03-01") == ["EURUSD 03-01", "EURUSD 02-01"]
    assert days(**{"from": "2026-03-02", "to": "2026-03-02"}) == ["EURGBP 03-02", "EURUSD 03-02"]


def cursor_of(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_lists_refuse_bad_cursors_limits_and_filters(client: Client, world: World) -> None:
    def status(path: str, **params: Any) -> int:
        return client.http.get("/api" + path, params=params, headers=client.auth).status_code

    def cursor_refused(path: str, cursor: str) -> bool:
        response = client.http.get("/api" + path, params={"cursor": cursor}, headers=client.auth)
        return response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "cursor"]

    deals = f"/offers/{world.casino['id']}/deals"
    bad_cursors = ["!!", "x" * 201, "bm90IGpzb24", cursor_of({"id": 1}), cursor_of([1, 2, 3, 4])]
    bad_cursors += [cursor_of(v) for v in ([2**31], ["1"], [True], [1.5], [None], ["EUR", "USD", "03-2026"])]
    for path in [*LISTS, deals]:
        assert [c for c in bad_cursors if not cursor_refused(path, c)] == [], path
        assert (status(path, limit=1001), status(path, limit=0), status(path, limit=1000)) == (422, 422, 200)
        assert status(path, afiliate_id=1) == 422, "a misspelt filter is refused, not ignored"

    for path, params in (
        ("/advertisers", {"status": "deleted"}),
        ("/links", {"affiliate_id": 0}),
        ("/postbacks", {"result": "maybe"}),
        ("/postbacks", {"reason": "nope"}),
        ("/conversions", {"status": "paid"}),
        ("/conversions", {"sub1": "x" * 256}),
        ("/conversions", {"event": "a\x00b"}),
        ("/commissions", {"kind": "bonus"}),
        ("/commissions", {"status": "paid"}),
        ("/commissions", {"period": "2026-13"}),
        ("/players", {"country": "Germany"}),
        ("/players", {"qualified": "maybe"}),
        ("/players/cohorts", {"cohort": "26-01"}),
        ("/fx-rates", {"base": "eur"}),
    ):
        assert status(path, **params) == 422, (path, params)

    # `from` after `to`, and the ends of the calendar: a refusal or an empty page, never a failure.
    for path in ("/conversions", "/commissions", "/players", "/players/cohorts", "/fx-rates"):
        assert status(path, **{"from": "2026-02-01", "to": "2026-01-31"}) == 422, path
        for edge in ("0001-01-01", "9999-12-31"):
            assert status(path, **{"from": edge}) == status(path, to=edge) == 200, (path, edge)
    for path in ("/conversions", "/commissions", "/players"):
        assert status(path, **{"from": "2026-01-01T10:00:00Z", "to": "2026-01-01T10:00:00Z"}) == 422
        assert status(path, **{"from": "0001-01-01T00:00:00+01:00"}) == 422
        assert status(path, to="9999-12-31T23:00:00-05:00") == 422
        assert status(path, **{"from": "yesterday"}) == 422
        assert client.items(path, **{"from": "9999-12-31T23:59:59.999999Z"}) == []
    assert status("/postbacks", since="0001-01-01T00:00:00+01:00") == 422
    assert client.items("/postbacks", until="0001-01-01T00:00:00Z") == []
