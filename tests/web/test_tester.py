"""The postback tester (ADR 13): test clicks, test postbacks through the real intake, the trace,
test traffic kept out of reports, statements and the ledger, and listen mode."""

import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import Client, Node, World

THIS_MONTH = datetime.now(UTC).strftime("%Y-%m")
HYBRID = {"kind": "hybrid", "cpa": {"amount": "100", "ftd_min": "20"}, "revshare": {"percent": "30"}}


def new_click(client: Client, world: World, **extra: Any) -> dict[str, Any]:
    body = {"offer_id": world.casino["id"], **extra}
    return dict(client.api("POST", "/tester/clicks", json=body))


def fire(client: Client, click_id: str, event: str, **extra: str) -> dict[str, Any]:
    return dict(client.api("POST", "/tester/postbacks", json={"click_id": click_id, "event": event, **extra}))


def test_a_test_click_goes_through_the_offers_link_and_names_the_postback_url(
    client: Client, world: World
) -> None:
    made = new_click(client, world, affiliate_id=world.bob["id"])

    assert made["affiliate_id"] == world.bob["id"] and made["link_code"] == world.bob_casino
    # The offer URL the user would land on, the click ID filled in as for a real click.
    assert parse_qs(urlsplit(made["offer_url"]).query)["cid"] == [made["click_id"]]
    url = made["postback_url"]
    assert f"click_id={made['click_id']}" in url and f"token={world.token}" in url
    assert {"registration", "first_deposit", "vip_level"} <= set(made["examples"])
    assert f"click_id={made['click_id']}" in made["examples"]["first_deposit"]
    # Without an affiliate: the offer's first link (Alice's).
    assert new_click(client, world)["link_code"] == world.alice_casino


def test_the_examples_of_two_test_clicks_are_two_transactions(client: Client, world: World) -> None:
    first, second = new_click(client, world), new_click(client, world)

    sent = []
    for made in (first, second):
        url = made["examples"]["registration"]
        sent.append(client.http.get(url[url.index("/postback") :]).json())

    assert [s["result"] for s in sent] == ["accepted", "accepted"], sent
    txn_ids = [parse_qs(urlsplit(m["examples"]["registration"]).query)["txn_id"][0] for m in (first, second)]
    assert txn_ids[0] != txn_ids[1]
    # The trace describes the click with the same examples.
    trace = client.api("GET", f"/tester/clicks/{first['click_id']}/trace")
    assert trace["click"]["examples"] == first["examples"]


def test_the_trace_reads_a_json_postback_parameter_by_parameter(client: Client, world: World) -> None:
    click_id = new_click(client, world)["click_id"]
    body = {"click_id": click_id, "event": "ftd", "amount": 30, "token": world.token}

    assert client.http.post("/postback", json=body).json()["result"] == "accepted"

    (logged,) = client.api("GET", f"/tester/clicks/{click_id}/trace")["postbacks"]
    assert [(p["name"], p["field"], p["understood"]) for p in logged["parameters"]] == [
        ("click_id", "click_id", click_id),
        ("event", "event", "first_deposit"),
        ("amount", "payout", "30"),
        ("token", "token", "the advertiser's token (masked)"),
    ]
    assert world.token not in str(logged)


def test_a_negative_amount_the_intake_refuses_is_not_shown_as_understood(
    client: Client, world: World
) -> None:
    click_id = new_click(client, world)["click_id"]

    fired = fire(client, click_id, "lead", payout="-1")

    assert fired["outcome"]["reason"] == "invalid_payout"
    (payout,) = [p for p in fired["parameters"] if p["field"] == "payout"]
    assert payout["understood"].startswith("not an amount for this event: '-1'")
    (logged,) = fired["trace"]["postbacks"]
    assert [p["understood"] for p in logged["parameters"] if p["field"] == "payout"] == [payout["understood"]]


def test_the_trace_goes_from_the_click_to_the_commission_and_outbound_previews(
    client: Client, world: World
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=HYBRID)
    body = {
        "affiliate_id": world.alice["id"],
        "url": "http://127.0.0.1:9/pb?s={sub1}&e={event}&c={commission}",
    }
    template = client.api("POST", "/outbound/templates", json=body)
    click_id = new_click(client, world)["click_id"]

    registered = fire(client, click_id, "registration")
    assert registered["refused"] is False and registered["outcome"]["result"] == "accepted"
    assert f"token={world.token}" not in registered["sent"]  # masked
    understood = {p["name"]: (p["field"], p["understood"]) for p in registered["parameters"]}
    assert understood["event"] == ("event", "registration") and understood["click_id"][0] == "click_id"
    assert understood["token"][0] == "token"
    preview = registered["trace"]["commission"]
    assert preview["deal"] == "hybrid" and preview["cpa_qualified"] is False
    assert "first deposit of at least 20" in preview["cpa_explanation"]

    ftd = fire(client, click_id, "ftd", payout="50")  # an alias of first_deposit
    trace = ftd["trace"]
    assert [p["result"] for p in trace["postbacks"]] == ["accepted", "accepted"]
    assert [c["event"] for c in trace["conversions"]] == ["registration", "first_deposit"]
    assert (
        trace["conversions"][1]["deal_amount"] == "50" and trace["conversions"][1]["deal_currency"] == "EUR"
    )
    preview = trace["commission"]
    assert preview["cpa_qualified"] is True and preview["cpa_amount"] == "100.00"
    assert preview["revshare_ftds"] == 1 and preview["revshare_percent"] == "30"
    (sent,) = trace["conversions"][1]["outbound"]
    assert sent["template_id"] == template["id"] and "e=first_deposit" in sent["url"]
    assert [o["event"] for o in trace["cpa_outbound"]] == ["qualified_cpa"]
    assert "c=100.00" in trace["cpa_outbound"][0]["url"]

    # A plain deposit on a new test click is its first deposit, as a real player's would be.
    other = new_click(client, world)["click_id"]
    fire(client, other, "registration")
    deposit = fire(client, other, "deposit", payout="50")["trace"]
    assert [c["event"] for c in deposit["conversions"]] == ["registration", "first_deposit"]
    assert deposit["commission"]["cpa_qualified"] is True
    assert "e=first_deposit" in deposit["conversions"][1]["outbound"][0]["url"]

    ngr = fire(client, click_id, "net_revenue", payout="200")
    assert ngr["trace"]["commission"]["revshare_earnings"] == "60.00"
    assert "c=60.00" in ngr["trace"]["conversions"][2]["outbound"][0]["url"]

    # Nothing was booked, nothing was queued for the affiliate's tracker.
    assert client.items("/commissions") == []
    assert client.items("/outbound/deliveries") == []
    assert client.api("GET", f"/tester/clicks/{click_id}/trace") == ngr["trace"]


def test_every_refusal_comes_with_its_reason_and_hint(client: Client, world: World) -> None:
    click_id = new_click(client, world)["click_id"]

    unknown = fire(client, click_id, "jackpot")
    assert unknown["refused"] is True
    outcome = unknown["outcome"]
    assert outcome["result"] == "rejected" and outcome["reason"] == "unknown_event"
    assert outcome["hint"] and outcome["message"]
    bad_amount = fire(client, click_id, "first_deposit", payout="12,50")
    assert bad_amount["outcome"]["reason"] == "invalid_payout"
    understood = {p["name"]: p["understood"] for p in bad_amount["parameters"]}
    assert understood["payout"].startswith("not an amount")

    # The advertiser's own attempt, with a wrong token and a misspelt parameter: in the trace too.
    response = client.postback(click_id=click_id, event="registration", token="wrong", payot="5")
    assert response.status_code == 403, response.text
    logged = client.api("GET", f"/tester/clicks/{click_id}/trace")["postbacks"]
    assert [p["reason"] for p in logged] == ["unknown_event", "invalid_payout", "bad_token"]
    assert logged[2]["hint"] and logged[2]["ignored"] == ["payot"]
    payot = next(p for p in logged[2]["parameters"] if p["name"] == "payot")
    assert payot["field"] is None and payot["understood"].startswith("ignored")


def test_test_traffic_is_kept_out_of_reports_statements_and_the_ledger(client: Client, world: World) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=HYBRID)
    # Real traffic first: a player who qualifies, and a month of NGR.
    real = client.click(world.alice_casino)
    client.flush()
    for event, extra in (("registration", {}), ("first_deposit", {"payout": "50"})):
        response = client.postback(click_id=real, event=event, token=world.token, player_id="P-1", **extra)
        assert response.status_code == 200, response.text
    ngr = {"payout": "100", "currency": "EUR", "txn_id": "ngr-1", "player_id": "P-1"}
    assert client.postback(click_id=real, event="net_revenue", token=world.token, **ngr).status_code == 200
    report = client.report(group_by="offer_id")
    statement = client.api("GET", f"/statements/{world.alice['id']}/{THIS_MONTH}")
    commissions = client.items("/commissions")
    players = client.items("/players")

    click_id = new_click(client, world)["click_id"]
    for event, amount in (("registration", ""), ("first_deposit", "500"), ("net_revenue", "1000")):
        assert fire(client, click_id, event, **({"payout": amount} if amount else {}))["refused"] is False

    assert client.report(group_by="offer_id") == report
    assert client.api("GET", f"/statements/{world.alice['id']}/{THIS_MONTH}") == statement
    assert client.items("/commissions") == commissions
    assert client.items("/players") == players
    # The lists show them, flagged, and can leave them out or keep only them.
    tests = client.items("/conversions", test="true")
    assert len(tests) == 3 and all(c["test"] and c["click_id"] == click_id for c in tests)
    real_ones = client.items("/conversions", test="false")
    # The real player's three events and the qualified_cpa their CPA added.
    assert len(real_ones) == 4 and not any(c["test"] for c in real_ones)
    assert len(client.items("/conversions")) == len(tests) + len(real_ones)
    logged = client.items("/postbacks", test="true")
    assert len(logged) == 3 and all(p["test"] for p in logged)
    assert len(client.items("/postbacks", test="false")) == 3

    # Their status changes, by postback or by hand, stay out of everything too.
    ngr_txn = next(c["txn_id"] for c in tests if c["event"] == "net_revenue")
    changed = fire(client, click_id, "net_revenue", payout="1000", txn_id=ngr_txn, status="rejected")
    assert changed["outcome"]["result"] == "updated"
    ftd = next(c for c in tests if c["event"] == "first_deposit")
    client.api("POST", f"/conversions/{ftd['id']}/status", json={"status": "rejected", "reason": "a test"})
    assert client.report(group_by="offer_id") == report
    assert client.api("GET", f"/statements/{world.alice['id']}/{THIS_MONTH}") == statement
    assert client.items("/commissions") == commissions


def test_listen_mode_answers_when_the_advertisers_postback_arrives(
    client: Client, world: World, second_node: Node
) -> None:
    """The advertiser's postback reaches another process (a second server on the database)."""
    second_node.call(second_node.runtime.catalog.refresh)
    made = new_click(client, world)
    click_id = made["click_id"]
    waiting: dict[str, Any] = {}

    def listen() -> None:
        with httpx.Client(base_url=client.node.base_url, timeout=60, headers=client.auth) as http:
            waiting["reply"] = http.get(f"/api/tester/clicks/{click_id}/wait", params={"timeout": 20})

    listener = threading.Thread(target=listen)
    listener.start()
    # The advertiser's server calls the URL it was given.
    url = urlsplit(made["examples"]["registration"])
    response = httpx.get(f"{second_node.base_url}{url.path}?{url.query}")
    assert response.status_code == 200, response.text
    listener.join(timeout=60)

    reply = waiting["reply"]
    assert reply.status_code == 200, reply.text
    trace = reply.json()
    assert trace["arrived"] is True
    assert [p["result"] for p in trace["postbacks"]] == ["accepted"]
    assert trace["conversions"][0]["event"] == "registration"
    # Already seen: the next call waits for one more.
    again = client.api("GET", f"/tester/clicks/{click_id}/wait", params={"timeout": 0.3, "seen": 1})
    assert again["arrived"] is False and len(again["postbacks"]) == 1


def test_listen_mode_times_out_without_a_postback(client: Client, world: World) -> None:
    click_id = new_click(client, world)["click_id"]

    trace = client.api("GET", f"/tester/clicks/{click_id}/wait", params={"timeout": 0.2})

    assert trace["arrived"] is False and trace["postbacks"] == [] and trace["conversions"] == []
    too_long = client.http.get(f"/api/tester/clicks/{click_id}/wait?timeout=21", headers=client.auth)
    assert too_long.status_code == 422


def test_the_tester_refuses_what_it_cannot_test(client: Client, world: World) -> None:
    def status(method: str, path: str, **kwargs: Any) -> int:
        return client.http.request(method, "/api" + path, headers=client.auth, **kwargs).status_code

    real = client.click(world.alice_casino)
    client.flush()
    assert status("GET", f"/tester/clicks/{real}/trace") == 404  # not a test click
    assert status("POST", "/tester/postbacks", json={"click_id": real, "event": "registration"}) == 404
    assert status("POST", "/tester/clicks", json={"offer_id": 999}) == 404
    # Bob has no sportsbook link.
    body = {"offer_id": world.sportsbook["id"], "affiliate_id": world.bob["id"]}
    assert status("POST", "/tester/clicks", json=body) == 409
    assert status("POST", "/tester/postbacks", json={"click_id": "x" * 65, "event": "sale"}) == 422
    assert status("GET", "/tester/clicks/" + "x" * 65 + "/trace") == 422


def test_a_test_postback_naming_a_real_players_id_earns_them_nothing(client: Client, world: World) -> None:
    """An advertiser testing with a real player's ID: the conversion is the test click's, not
    the player's, and no commission is booked."""
    client.api(
        "PUT",
        f"/offers/{world.casino['id']}/deal",
        json={"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}},
    )
    real = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=real, event="registration", player_id="P1", token=world.token)
    test_click = new_click(client, world, affiliate_id=world.alice["id"])["click_id"]

    fired = fire(client, test_click, "deposit", payout="50", player_id="P1")

    assert fired["outcome"]["result"] == "accepted"
    assert [c["event"] for c in fired["trace"]["conversions"]] == ["first_deposit"]
    assert client.items("/commissions") == []
    listed = {(c["event"], c["test"], c["click_id"]) for c in client.items("/conversions")}
    assert listed == {("registration", False, real), ("deposit", True, test_click)}
    (player,) = client.items("/players", player_id="P1")
    assert (player["deposits"], player["qualified_at"]) == ("0.00", None)


@pytest.mark.parametrize("tested_first", [True, False], ids=["tested_first", "real_first"])
def test_a_test_postback_and_a_real_one_never_share_a_transaction(
    client: Client, world: World, tested_first: bool
) -> None:
    """An advertiser tries an order number out with the tester, then a player makes that order
    (or the other way round): each is recorded on its own click, and neither blocks, repeats
    nor changes the other."""
    real = client.click(world.alice_casino)
    client.flush()
    test_click = new_click(client, world)["click_id"]

    def real_postback(**extra: str) -> httpx.Response:
        return client.postback(
            click_id=real, event="deposit", payout="30", txn_id="ORDER-1", token=world.token, **extra
        )

    def test_postback(**extra: str) -> dict[str, Any]:
        return fire(client, test_click, "deposit", payout="50", txn_id="ORDER-1", **extra)

    if tested_first:
        tested, sent = test_postback(), real_postback()
    else:
        sent, tested = real_postback(), test_postback()

    assert (sent.status_code, sent.json()["result"]) == (200, "accepted"), sent.text
    assert tested["outcome"]["result"] == "accepted", tested["outcome"]
    assert real_postback(status="rejected").json()["result"] == "updated"
    assert test_postback()["outcome"]["result"] == "duplicate"
    listed = {(c["click_id"], c["status"], c["payout"], c["test"]) for c in client.items("/conversions")}
    assert listed == {(real, "rejected", "30.00", False), (test_click, "approved", "50.00", True)}
