"""Who may call what, and what they see: API keys of users, the guard's refusals, tenants scoped
to their own rows (the whole route table: test_access_matrix.py)."""

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from starlette.requests import Request
from starlette.types import Message

from clickback.core.accounts import Access, Role, new_key
from clickback.service.accounts import Accounts
from clickback.store import accounts as rows
from clickback.store.db import connect
from clickback.web.access import ACCESS
from clickback.web.guard import ApiGuard
from clickback.web.ops import metrics
from tests.conftest import Client, World
from tests.web.personas import PASSWORD, Keys, add_user, make_keys
from tests.web.test_reports import link_of, write_click


@pytest.fixture
def keys(client: Client, world: World) -> Keys:
    return make_keys(client, world)


def get(client: Client, key: str, path: str, **params: object) -> tuple[int, object]:
    response = client.http.get("/api" + path, headers=Keys.header(key), params=params)  # type: ignore[arg-type]
    json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if json else response.text


def test_a_users_key_acts_as_the_user_until_revoked(client: Client, world: World, keys: Keys) -> None:
    assert get(client, keys.manager, "/advertisers")[0] == 200
    assert get(client, keys.alice, "/advertisers")[0] == 403
    user = client.node.call(lambda: rows.user_by_login(client.node.runtime.db, "boss"))
    assert user is not None
    client.node.call(lambda: rows.revoke_keys(client.node.runtime.db, user["id"], datetime.now(UTC)))
    status, body = get(client, keys.manager, "/advertisers")
    assert status == 401 and body == {"detail": "missing or wrong API key"}


def test_a_refused_role_is_refused_before_its_body_is_read(client: Client, world: World, keys: Keys) -> None:
    # Over the body cap: a manager gets 413 for it, an affiliate 403 before a byte is read.
    big = b"x" * (1024 * 1024 + 1)
    headers = {"content-type": "application/json"}
    as_alice = client.http.post("/api/advertisers", content=big, headers=headers | Keys.header(keys.alice))
    as_boss = client.http.post("/api/advertisers", content=big, headers=headers | Keys.header(keys.manager))
    assert as_alice.status_code == 403
    assert as_alice.json() == {"detail": "this route is not open to the affiliate role"}
    assert as_boss.status_code == 413


def test_an_affiliate_sees_only_their_own_links(client: Client, world: World, keys: Keys) -> None:
    everyone = client.items("/links")
    alices = [link["id"] for link in everyone if link["affiliate_id"] == world.alice["id"]]
    bobs = [link["id"] for link in everyone if link["affiliate_id"] == world.bob["id"]]

    status, page = get(client, keys.alice, "/links", affiliate_id=world.bob["id"])
    assert status == 200
    assert [link["id"] for link in page["items"]] == alices  # type: ignore[index]
    assert get(client, keys.alice, f"/links/{alices[0]}")[0] == 200
    status, body = get(client, keys.alice, f"/links/{bobs[0]}")
    # Bob's link is as absent for Alice as a link that does not exist.
    assert (status, body) == (404, {"detail": f"links {bobs[0]} does not exist"})
    assert get(client, keys.alice, "/links/999999") == (404, {"detail": "links 999999 does not exist"})


def test_an_affiliates_statement_of_another_is_not_found(client: Client, world: World, keys: Keys) -> None:
    period = datetime.now(UTC).strftime("%Y-%m")
    assert get(client, keys.alice, f"/statements/{world.alice['id']}/{period}")[0] == 200
    assert get(client, keys.alice, f"/statements/{world.bob['id']}/{period}")[0] == 404
    assert get(client, keys.bob, f"/statements/{world.bob['id']}/{period}")[0] == 200


def test_an_affiliates_report_is_of_their_traffic_without_the_networks_figures(
    client: Client, world: World, keys: Keys
) -> None:
    # Every click costs: each placement has spent, and is judged in stop-or-scale.
    for link in client.items("/links"):
        client.api(
            "PUT", f"/links/{link['id']}/cost", json={"model": "cpc", "currency": "EUR", "amount": "0.5"}
        )
    cid = client.click(world.alice_casino, sub1="a")
    client.click(world.bob_casino, sub1="b")
    client.click(world.bob_casino, sub1="b")
    client.flush()
    accepted = client.postback(
        click_id=cid, event="first_deposit", payout="50", txn_id="t1", token=world.token
    )
    assert accepted.status_code == 200, accepted.text
    today = datetime.now(UTC).date().isoformat()

    manager = client.report(group_by="affiliate")
    assert manager["totals"]["clicks"] == 3 and manager["totals"]["revenue"] == {"EUR": "50.00"}
    status, mine = get(
        client,
        keys.alice,
        "/reports",
        **{"from": today, "to": today, "group_by": "affiliate", "affiliate": world.bob["id"]},
    )
    assert status == 200
    assert [row["key"] for row in mine["rows"]] == [{"affiliate": world.alice["id"]}]  # type: ignore[index]
    assert mine["totals"]["clicks"] == 1  # type: ignore[index]
    for name in ("revenue", "profit", "revenue_profit", "revenue_roi"):
        assert mine["totals"][name] == {} and mine["rows"][0][name] == {}  # type: ignore[index]
    # Nor sorted by them, however the key is written ("+revenue" gave the order away until 2026-12-06).
    for sort in ("-revenue", "+revenue", " +profit", "clicks,-+revenue_roi"):
        assert get(client, keys.alice, "/reports", **{"from": today, "to": today, "sort": sort})[0] == 422
    # Every placement that spent anything and returns less than 1000 times it: "stop".
    span = {"from": today, "to": today, "currency": "EUR", "min_spend": "0", "max_roi": "1000"}
    everyone = client.api("GET", "/reports/stop-or-scale", params=span)
    assert sorted(p["key"]["sub1"] for p in everyone["stop"]) == ["a", "b"]
    status, placements = get(client, keys.alice, "/reports/stop-or-scale", **span, affiliate=world.bob["id"])
    assert status == 200 and placements["earnings"] == "commission"  # type: ignore[index]
    assert [p["key"]["sub1"] for p in placements["stop"]] == ["a"]  # type: ignore[index]
    assert get(client, keys.alice, "/reports/stop-or-scale", **span, earnings="revenue")[0] == 422
    status, csv = get(client, keys.alice, "/reports", **{"from": today, "to": today, "format": "csv"})
    head, *rows = str(csv).splitlines()
    assert status == 200 and "clicks" in head and "commission EUR" in head
    assert "revenue" not in head and "profit EUR" not in head.split(",")
    assert rows[-1].split(",")[0] == "total" and len(rows) == 2  # one day, then the totals
    manager_csv = client.http.get(
        "/api/reports", params={"from": today, "to": today, "format": "csv"}, headers=client.auth
    )
    assert "revenue EUR" in manager_csv.text.splitlines()[0]


def test_an_affiliates_report_is_in_their_own_currencies_not_the_networks(
    client: Client, world: World, keys: Keys
) -> None:
    # Alice's traffic is in EUR; USD is only on Bob's link to another advertiser's offer.
    dollars = {
        "advertiser_id": world.southgate["id"],
        "name": "Southgate Dollars",
        "url_template": "https://poker.example.net/?cid={click_id}",
        "currency": "USD",
    }
    offer = client.api("POST", "/offers", json=dollars)
    bobs = client.api("POST", "/links", json={"affiliate_id": world.bob["id"], "offer_id": offer["id"]})
    alices_click, bobs_click = client.click(world.alice_casino), client.click(bobs["code"])
    client.flush()
    for click_id, payout, currency, token in (
        (alices_click, "50", "EUR", world.token),
        (bobs_click, "40", "USD", world.southgate["token"]),
    ):
        reply = client.postback(
            click_id=click_id, event="sale", payout=payout, currency=currency, txn_id="t1", token=token
        )
        assert reply.status_code == 200, reply.text
    today = datetime.now(UTC).date().isoformat()
    span = {"from": today, "to": today, "group_by": "offer"}

    status, mine = get(client, keys.alice, "/reports", **span)
    status_in_eur, in_eur = get(client, keys.alice, "/reports", **span, currency="EUR")
    _, csv = get(client, keys.alice, "/reports", **span, format="csv")
    manager = client.report(**span)
    no_rate = client.http.get("/api/reports", params={**span, "currency": "EUR"}, headers=client.auth)

    assert status == 200 and mine["currencies"] == ["EUR"]  # type: ignore[index]
    assert status_in_eur == 200, in_eur  # no USD→EUR rate needed: Alice has no USD
    assert in_eur["currencies"] == ["EUR"]  # type: ignore[index]
    assert "USD" not in str(csv).splitlines()[0]
    assert manager["currencies"] == ["EUR", "USD"]
    assert no_rate.status_code == 422
    assert "USD→EUR" in no_rate.text and "POST /api/fx-rates" in no_rate.text


def test_an_affiliates_campaign_is_of_their_own_links_when_another_uses_its_name(
    client: Client, world: World, keys: Keys
) -> None:
    for code in (world.alice_casino, world.bob_casino):
        client.api("PATCH", f"/links/{link_of(client, code)['id']}", json={"campaign": "shared"})
    client.click(world.alice_casino)
    for _ in range(2):
        client.click(world.bob_casino)
    client.flush()
    today = datetime.now(UTC).date().isoformat()
    span = {"from": today, "to": today}

    assert [(r["key"], r["clicks"]) for r in client.report(group_by="campaign")["rows"]] == [
        ({"campaign": "shared"}, 3)
    ]
    for params in ({"group_by": "campaign"}, {"group_by": "campaign", "campaign": "shared"}):
        status, mine = get(client, keys.alice, "/reports", **span, **params)
        assert status == 200
        assert [(r["key"], r["clicks"]) for r in mine["rows"]] == [({"campaign": "shared"}, 1)]  # type: ignore[index]
        assert mine["totals"]["clicks"] == 1  # type: ignore[index]


def test_an_advertiser_sees_their_offers_and_conversions_without_affiliates_earnings(
    client: Client, world: World, keys: Keys
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json={"kind": "cpa", "cpa": {"amount": "100"}})
    cid = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=cid, event="first_deposit", payout="60", txn_id="d1", token=world.token)
    conversion = client.items("/conversions")[0]
    assert conversion["deal_currency"] == "EUR" and conversion["deal_amount"] == "60.00"

    status, offers = get(client, keys.northstar, "/offers")
    assert status == 200
    assert {o["id"] for o in offers["items"]} == {world.casino["id"], world.sportsbook["id"]}  # type: ignore[index]
    assert get(client, keys.southgate, f"/offers/{world.casino['id']}")[0] == 404
    assert get(client, keys.southgate, f"/offers/{world.casino['id']}/integration")[0] == 404
    assert get(client, keys.northstar, f"/offers/{world.casino['id']}/integration.md")[0] == 200

    status, seen = get(client, keys.northstar, f"/conversions/{conversion['id']}")
    assert status == 200
    assert seen["deal_amount"] is None and seen["deal_currency"] is None  # type: ignore[index]
    assert get(client, keys.southgate, f"/conversions/{conversion['id']}")[0] == 404
    assert get(client, keys.southgate, "/conversions")[1] == {"items": [], "next_cursor": None}
    assert len(get(client, keys.northstar, "/postbacks")[1]["items"]) == 1  # type: ignore[index]
    assert get(client, keys.southgate, "/postbacks", advertiser_id=world.northstar["id"])[1]["items"] == []  # type: ignore[index]
    assert get(client, keys.southgate, "/diagnosis", offer_id=world.casino["id"])[0] == 404
    status, diagnosis = get(client, keys.southgate, "/diagnosis", advertiser_id=world.northstar["id"])
    assert status == 200 and diagnosis["postbacks"] == 0  # type: ignore[index]


def test_metrics_take_a_managers_key_too(client: Client, world: World, keys: Keys) -> None:
    assert client.http.get("/metrics", headers=Keys.header(keys.manager)).status_code == 200
    assert client.http.get("/metrics", headers=Keys.header(keys.alice)).status_code == 403


def test_every_route_of_the_api_has_an_entry_in_the_access_table(client: Client) -> None:
    document = client.http.get("/api/openapi.json").json()
    operations = {
        (m.upper(), path.removeprefix("/api")) for path, item in document["paths"].items() for m in item
    }
    assert operations == set(ACCESS)


def test_an_advertiser_tests_their_own_offers_without_seeing_earnings(
    client: Client, world: World, keys: Keys
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json={"kind": "cpa", "cpa": {"amount": "100"}})
    client.api(
        "POST",
        "/outbound/templates",
        json={"affiliate_id": world.alice["id"], "url": "http://127.0.0.1:9/pb"},
    )
    auth = Keys.header(keys.northstar)
    refused = client.http.post("/api/tester/clicks", json={"offer_id": world.rival_offer["id"]}, headers=auth)
    assert refused.status_code == 404 and refused.json() == {
        "detail": f"offers {world.rival_offer['id']} does not exist"
    }
    made = client.http.post(
        "/api/tester/clicks",
        json={"offer_id": world.casino["id"], "affiliate_id": world.alice["id"]},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    click = made.json()
    assert click["link_code"] == ""  # a code that makes clicks count for Alice is hers
    body = {"click_id": click["click_id"], "event": "first_deposit", "payout": "60"}
    fired = client.http.post("/api/tester/postbacks", json=body, headers=auth)
    assert fired.status_code == 200, fired.text
    trace = fired.json()["trace"]
    assert trace["conversions"][0]["deal_amount"] is None and trace["conversions"][0]["outbound"] == []
    assert trace["commission"]["cpa_amount"] is None and trace["cpa_outbound"] == []
    # The manager's trace of the same click shows what the advertiser's does not.
    full = client.api("GET", f"/tester/clicks/{click['click_id']}/trace")
    assert full["commission"]["cpa_amount"] == "100.00" and full["conversions"][0]["outbound"] != []
    assert full["click"]["link_code"] != ""

    other = Keys.header(keys.southgate)
    for method, path, payload in (
        ("GET", f"/api/tester/clicks/{click['click_id']}/trace", None),
        ("GET", f"/api/tester/clicks/{click['click_id']}/wait?timeout=0", None),
        ("POST", "/api/tester/postbacks", body),
    ):
        response = client.http.request(method, path, json=payload, headers=other)
        assert response.status_code == 404, (path, response.text)
        assert response.json() == {
            "detail": f"no test click {click['click_id']!r}: create one with POST /api/tester/clicks"
        }


def test_the_tester_tells_an_advertiser_nothing_of_which_affiliates_exist(
    client: Client, world: World, keys: Keys
) -> None:
    def test_click(key: str, affiliate_id: int) -> tuple[int, str]:
        body = {"offer_id": world.sportsbook["id"], "affiliate_id": affiliate_id}
        made = client.http.post("/api/tester/clicks", json=body, headers=Keys.header(key))
        detail = made.json()["detail"]
        return made.status_code, re.sub(rf"(affiliates?) {affiliate_id}\b", r"\1 N", detail)

    # Bob exists, with links to other offers (one of another advertiser's), none to the sportsbook.
    unlinked, missing = test_click(keys.northstar, world.bob["id"]), test_click(keys.northstar, 999)
    assert unlinked == missing
    assert unlinked[0] == 409 and "has no active link for affiliate N" in unlinked[1]
    # The manager sees every affiliate: told which one is not there.
    assert test_click(keys.manager, 999) == (404, "affiliates N does not exist")


def test_an_affiliate_keeps_their_own_outbound_postbacks(client: Client, world: World, keys: Keys) -> None:
    auth = Keys.header(keys.alice)
    url = "http://127.0.0.1:9/pb?cid={click_id}"
    for_bob = client.http.post(
        "/api/outbound/templates", json={"affiliate_id": world.bob["id"], "url": url}, headers=auth
    )
    assert for_bob.status_code == 404 and for_bob.json() == {
        "detail": f"affiliates {world.bob['id']} does not exist"
    }
    mine = client.http.post(
        "/api/outbound/templates", json={"affiliate_id": world.alice["id"], "url": url}, headers=auth
    )
    assert mine.status_code == 201, mine.text
    # The same SSRF guard as a manager's: no address of the server's own network.
    inside = client.http.post(
        "/api/outbound/templates",
        json={"affiliate_id": world.alice["id"], "url": "http://10.0.0.1/pb"},
        headers=auth,
    )
    assert inside.status_code == 422
    template = mine.json()["id"]
    renamed = client.http.patch(f"/api/outbound/templates/{template}", json={"name": "mine"}, headers=auth)
    assert renamed.status_code == 200 and renamed.json()["name"] == "mine"
    bobs = client.http.patch(
        f"/api/outbound/templates/{template}", json={"name": "his"}, headers=Keys.header(keys.bob)
    )
    assert bobs.status_code == 404
    assert (
        client.http.delete(f"/api/outbound/templates/{template}", headers=Keys.header(keys.bob)).status_code
        == 404
    )
    assert client.http.delete(f"/api/outbound/templates/{template}", headers=auth).status_code == 204


def test_the_documented_matrix_is_the_access_table() -> None:
    text = (Path(__file__).parents[2] / "docs" / "access.md").read_text()
    documented = {
        (method, path): who
        for method, path, who in re.findall(r"^\| `([A-Z]+) /api(\S+)` \| (\w+) \|$", text, re.MULTILINE)
    }
    assert documented == {key: access.value for key, access in ACCESS.items()}


@pytest.mark.parametrize(
    "key",
    [
        b"cbk_" + b"0" * 12 + b"_" + b"A" * 43,  # the shape of a key, nobody's
        b"cbk_zzzzzzzzzzzz_" + b"A" * 43,
        b"cbk_" + b"a" * 10_000,
        b"\xff\xfe\xfd",
        "cl\u00e9".encode(),
        b"Bearer",
    ],
)
def test_a_key_that_is_nobodys_is_a_401_never_a_500(client: Client, key: bytes) -> None:
    for header in (b"authorization", b"x-api-key"):
        value = b"Bearer " + key if header == b"authorization" else key
        response = client.http.get("/api/links", headers=[(header, value)])
        assert response.status_code == 401, response.text
    assert client.http.get("/metrics", headers=[(b"x-api-key", key)]).status_code == 401


def test_the_api_takes_keys_not_the_browsers_session(client: Client, world: World) -> None:
    add_user(client, "boss", Role.MANAGER)
    form = client.http.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    signed = client.http.post("/login", data={"csrf": token.group(1), "login": "boss", "password": PASSWORD})
    assert signed.status_code == 303 and "cb_session" in client.http.cookies
    # A page another site opens in the browser cannot use the API with the cookie it carries.
    assert client.http.get("/api/links").status_code == 401


def test_an_affiliate_sees_their_conversions_and_players_without_the_advertisers_payout(
    client: Client, world: World, keys: Keys
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json={"kind": "cpa", "cpa": {"amount": "100"}})
    for code, player in ((world.alice_casino, "P-a"), (world.bob_casino, "P-b")):
        cid = client.click(code)
        client.flush()
        reply = client.postback(
            click_id=cid, event="registration", payout="3", player_id=player, token=world.token
        )
        assert reply.status_code == 200, reply.text
    everyone = client.items("/conversions")
    # Each registration qualified its player for the CPA: a qualified_cpa conversion each, whose
    # payout is the affiliate's commission.
    assert sorted((c["event"], c["payout"]) for c in everyone) == [
        *[("qualified_cpa", "100.00")] * 2,
        *[("registration", "3.00")] * 2,
    ]
    bobs = next(c["id"] for c in everyone if c["affiliate_id"] == world.bob["id"])

    status, page = get(client, keys.alice, "/conversions", affiliate_id=world.bob["id"])
    assert status == 200
    mine = page["items"]  # type: ignore[index]
    assert {c["affiliate_id"] for c in mine} == {world.alice["id"]} and len(mine) == 2
    assert {(c["payout"], c["currency"]) for c in mine} == {(None, None)}
    assert {c["deal_amount"] for c in mine} == {"100.00", None}
    # The advertiser sees the qualification, not what it earns the affiliate.
    status, theirs = get(client, keys.northstar, "/conversions", event="qualified_cpa")
    assert status == 200 and len(theirs["items"]) == 2  # type: ignore[index]
    assert {(c["payout"], c["deal_amount"]) for c in theirs["items"]} == {(None, None)}  # type: ignore[index]
    assert get(client, keys.alice, f"/conversions/{mine[0]['id']}")[0] == 200
    assert get(client, keys.alice, f"/conversions/{bobs}")[0] == 404
    status, players = get(client, keys.alice, "/players")
    assert status == 200 and [p["player_id"] for p in players["items"]] == ["P-a"]  # type: ignore[index]
    status, cohorts = get(client, keys.alice, "/players/cohorts", affiliate_id=world.bob["id"])
    assert status == 200 and sum(c["players"] for c in cohorts) == 1  # type: ignore[union-attr]


def test_a_users_key_while_the_database_is_away_is_a_503_to_retry() -> None:
    async def run() -> list[Message]:
        db = connect("postgresql+asyncpg://postgres@127.0.0.1:1/none")
        reached: list[bool] = []

        async def api(scope: object, receive: object, send: object) -> None:
            reached.append(True)

        guard = ApiGuard(
            api, "bootstrap", (), Accounts(db, datetime.now, timedelta(hours=1)), lambda s: Access.MANAGER
        )
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        headers = [(b"authorization", f"Bearer {new_key()[0]}".encode())]
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/links",
            "root_path": "/api",
            "headers": headers,
        }
        try:
            await guard(scope, receive, send)
        finally:
            await db.close()
        assert not reached
        return sent

    start, body = asyncio.run(run())
    assert start["status"] == 503 and (b"retry-after", b"1") in start["headers"]
    assert b"retry" in body["body"]


def test_an_empty_bootstrap_key_lets_no_request_in() -> None:
    """An empty CLICKBACK_API_KEY (an empty api.key once read as one) matched every request
    sending no key: each was the bootstrap manager, on the API and /metrics."""

    async def run() -> list[int]:
        # Never reached: a request without a key is refused before any user's key is looked up.
        db = connect("postgresql+asyncpg://postgres@127.0.0.1:1/none")
        accounts = Accounts(db, datetime.now, timedelta(hours=1))

        async def api(scope: object, receive: object, send: object) -> None:
            raise AssertionError("the API was reached without a key")

        guard = ApiGuard(api, "", (), accounts, lambda s: Access.MANAGER)
        runtime = SimpleNamespace(settings=SimpleNamespace(api_token=""), accounts=accounts)
        statuses: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        try:
            for headers in ([], [(b"x-api-key", b"")], [(b"authorization", b"Bearer ")]):
                scope = {"type": "http", "method": "GET", "path": "/api/users", "root_path": "/api"}
                await guard(scope | {"headers": headers}, receive, send)
                request = Request(
                    {"type": "http", "method": "GET", "path": "/metrics", "headers": headers, "app": None}
                )
                request.scope["app"] = SimpleNamespace(state=SimpleNamespace(runtime=runtime))
                statuses.append((await metrics(request)).status_code)
        finally:
            await db.close()
        return statuses

    assert asyncio.run(run()) == [401] * 6


def test_a_users_reports_are_in_their_zone_unless_the_request_names_one(
    client: Client, world: World, keys: Keys
) -> None:
    """Issue 13: "any IANA zone per request (and a default per user when users exist)"."""
    berlin = add_user(client, "berlin", Role.AFFILIATE, affiliate_id=world.alice["id"], zone="Europe/Berlin")
    # 23:30 UTC yesterday is today in Berlin (+01:00 in winter, +02:00 in summer).
    late = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC) - timedelta(minutes=30)
    write_click(client, link_of(client, world.alice_casino), late, sub1="late")
    days = {
        "from": (late.date() - timedelta(days=1)).isoformat(),
        "to": (late.date() + timedelta(days=1)).isoformat(),
        "group_by": "day",
    }
    status, own = get(client, berlin, "/reports", **days)
    assert status == 200 and isinstance(own, dict)
    assert own["zone"] == "Europe/Berlin"
    assert [r["key"]["day"] for r in own["rows"]] == [(late.date() + timedelta(days=1)).isoformat()]
    status, named = get(client, berlin, "/reports", zone="UTC", **days)
    assert status == 200 and isinstance(named, dict)
    assert named["zone"] == "UTC" and [r["key"]["day"] for r in named["rows"]] == [late.date().isoformat()]
    status, bootstrap = get(client, keys.bootstrap, "/reports", **days)
    assert status == 200 and isinstance(bootstrap, dict) and bootstrap["zone"] == "UTC"


def test_an_affiliates_template_tells_no_offer_it_has_no_link_to_from_one_that_does_not_exist(
    client: Client, world: World, keys: Keys
) -> None:
    def template(offer_id: int) -> httpx.Response:
        body = {"affiliate_id": world.alice["id"], "url": "https://93.184.216.34/pb", "offer_id": offer_id}
        return client.http.post("/api/outbound/templates", json=body, headers=Keys.header(keys.alice))

    # Southgate's poker offer exists; Alice has no link to it. Until 2026-12-06 it was accepted
    # (201) where an offer that does not exist was a 404: which ids exist showed.
    theirs, missing = template(world.rival_offer["id"]), template(999_999)
    assert (theirs.status_code, missing.status_code) == (422, 422)
    assert [r.json()["detail"][0]["loc"] for r in (theirs, missing)] == [["body", "offer_id"]] * 2
    assert template(world.casino["id"]).status_code == 201


def test_an_affiliates_template_refused_for_its_events_names_no_other_advertisers_events(
    client: Client, world: World, keys: Keys
) -> None:
    client.api("PATCH", f"/offers/{world.rival_offer['id']}", json={"custom_events": ["rival_secret"]})
    body = {"affiliate_id": world.alice["id"], "url": "https://93.184.216.34/pb", "events": ["nope"]}
    refused = client.http.post("/api/outbound/templates", json=body, headers=Keys.header(keys.alice))
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "events"]
    # Her own offers' custom events are named; Southgate's are not (they were until 2026-12-06).
    assert "vip_level" in refused.text and "rival_secret" not in refused.text
