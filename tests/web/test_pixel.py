"""The tracking pixel over HTTP: its cookie on clicks, conversions by query or cookie, refusals in
headers and the log, one conversion with an S2S postback, and 503 when nothing was recorded."""

import shutil
import subprocess
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clickback.web.pixel import GIF, SNIPPET
from tests.conftest import Client, Node, World
from tests.receiver import in_a_thread


def click(browser: httpx.Client, code: str, **headers: str) -> tuple[str, httpx.Response]:
    response = browser.get(f"/c/{code}", headers=headers)
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["cid"][0], response


def fired(client: Client, world: World, pixel: str, browser: httpx.Client, **fields: str) -> str:
    """A click on Alice's casino link, landed, and the pixel fired for it with `fields`,
    accepted: its click ID."""
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    assert told(browser.get(pixel, params={"click_id": click_id, **fields})) == (200, "accepted", None)
    return click_id


def conversions(client: Client) -> list[dict[str, Any]]:
    return client.items("/conversions")


def told(response: httpx.Response) -> tuple[int, str, str | None]:
    assert response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store"
    return (
        response.status_code,
        response.headers["x-clickback-result"],
        response.headers.get("x-clickback-reason"),
    )


def test_the_offer_shows_its_pixel_once_switched_on_and_keeps_its_url(client: Client, world: World) -> None:
    assert (world.casino["pixel"], world.casino["pixel_url"]) == (False, None)
    path = f"/offers/{world.casino['id']}/pixel"
    on = client.api("PUT", path, json={"enabled": True})
    assert on["pixel_url"].startswith("http://127.0.0.1/p/")
    assert on["pixel_script_url"] == on["pixel_url"].partition("?")[0] + ".js"
    assert "token" not in on["pixel_url"]
    assert client.api("PUT", path, json={"enabled": False})["pixel_url"] is None
    assert client.api("PUT", path, json={"enabled": True})["pixel_url"] == on["pixel_url"]
    created = client.api(
        "POST",
        "/offers",
        json={
            "advertiser_id": world.northstar["id"],
            "name": "Pixel",
            "url_template": "https://p.example.com/?c={click_id}",
            "currency": "EUR",
            "pixel": True,
        },
    )
    assert created["pixel"] and created["pixel_url"] != on["pixel_url"]


@pytest.mark.parametrize("path", ["parser", "asgi"])
def test_clicks_of_an_offer_with_the_pixel_set_the_click_id_cookie(
    client: Client, world: World, pixel: str, browser: httpx.Client, path: str
) -> None:
    # Connection: close takes the click the ASGI way instead of the parser's (ADR 8).
    headers = {"connection": "close"} if path == "asgi" else {}
    click_id, response = click(browser, world.alice_casino, **headers)

    # The test server's public URL is plain http: Lax, without Secure (core/pixel.py says why).
    assert response.headers["set-cookie"] == (
        f"cb_click={click_id}; Path=/p/; Max-Age={30 * 86_400}; HttpOnly; SameSite=Lax"
    )
    _, other = click(browser, world.alice_sportsbook, **headers)
    assert "set-cookie" not in other.headers


def test_pixel_with_the_click_id_in_its_query_records_a_pending_pixel_conversion(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id, _ = click(browser, world.alice_casino)
    client.flush()

    response = browser.get(
        pixel, params={"click_id": click_id, "event": "ftd", "txn_id": "T-1", "payout": "60"}
    )

    assert told(response) == (200, "accepted", None)
    (conversion,) = conversions(client)
    assert (conversion["channel"], conversion["status"], conversion["event"]) == (
        "pixel",
        "pending",
        "first_deposit",
    )
    assert (conversion["click_id"], conversion["payout"], conversion["affiliate_id"]) == (
        click_id,
        "60.00",
        world.alice["id"],
    )
    (entry,) = client.items("/postbacks", channel="pixel")
    assert (entry["result"], entry["method"], entry["conversion_id"]) == ("accepted", "GET", conversion["id"])
    assert client.items("/conversions", channel="s2s") == []


def test_pixel_with_only_the_cookie_of_the_click_records_the_conversion(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id, _ = click(browser, world.alice_casino)

    # The browser's jar sends the cookie back on the pixel's path (Path=/p/), the click ID
    # nowhere in the URL. The click is still in the buffer: taken from there.
    response = browser.get(pixel, params={"event": "registration"})

    assert told(response) == (200, "accepted", None)
    assert [(c["click_id"], c["channel"]) for c in conversions(client)] == [(click_id, "pixel")]


def test_pixel_without_a_click_id_is_refused_with_its_reason_in_a_header_and_the_log(
    client: Client, world: World, pixel: str
) -> None:
    response = client.http.get(pixel, params={"event": "registration"})

    assert told(response) == (400, "rejected", "missing_click_id")
    assert conversions(client) == []
    (entry,) = client.items("/postbacks", reason="missing_click_id")
    assert (entry["channel"], entry["advertiser_id"]) == ("pixel", world.northstar["id"])
    assert "cookie" in entry["detail"]


def test_an_offer_without_the_pixel_sets_no_cookie_and_has_no_pixel(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click(browser, world.alice_casino)
    client.api("PUT", f"/offers/{world.casino['id']}/pixel", json={"enabled": False})
    click_id, response = click(browser, world.alice_casino)
    assert "set-cookie" not in response.headers

    for path in (pixel, "/p/NoSuchPixelCode", "/p/"):
        refused = browser.get(path, params={"click_id": click_id, "event": "registration"})
        assert told(refused) == (404, "rejected", "unknown_pixel")
    assert conversions(client) == []
    assert browser.get(pixel + ".js").status_code == 404


def test_pixel_then_postback_of_the_same_transaction_is_one_conversion_approved_by_the_postback(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    fields = {"click_id": click_id, "event": "first_deposit", "txn_id": "D-1", "payout": "50"}

    assert told(browser.get(pixel, params=fields)) == (200, "accepted", None)
    s2s = client.postback(**fields, token=world.token)

    assert (s2s.status_code, s2s.json()["result"]) == (200, "updated")
    (conversion,) = conversions(client)
    assert (conversion["channel"], conversion["status"]) == ("pixel", "approved")
    detail = client.api("GET", f"/conversions/{conversion['id']}")
    assert [(h["from_status"], h["to_status"]) for h in detail["history"]] == [
        (None, "pending"),
        ("pending", "approved"),
    ]


def test_a_pixels_player_is_not_confirmed_by_a_postback_naming_another_affiliates_click(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """Anyone can fire a pixel: a browser reporting a registration under Alice's click must not
    have the advertiser's own postback, which names Bob's click, confirm it as Alice's, nor be
    refused for it: the server's registration is Bob's, the browser's claim rejected
    (tests/web/test_pixel_and_server.py follows every consequence)."""
    alices, _ = click(browser, world.alice_casino)
    bobs, _ = click(browser, world.bob_casino)
    client.flush()
    fired = browser.get(pixel, params={"click_id": alices, "event": "registration", "player_id": "P-100"})
    assert told(fired) == (200, "accepted", None)

    s2s = client.postback(click_id=bobs, event="registration", player_id="P-100", token=world.token)

    assert (s2s.status_code, s2s.json()["result"]) == (200, "accepted"), s2s.text
    statuses = sorted((c["channel"], c["status"], c["click_id"]) for c in conversions(client))
    assert statuses == [("pixel", "rejected", alices), ("s2s", "approved", bobs)]
    (player,) = client.items("/players", player_id="P-100")
    assert player["affiliate_id"] == world.bob["id"]


def test_the_servers_amount_replaces_the_browsers_when_it_confirms_a_pixel_conversion(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """A browser can write any amount on the pixel; the advertiser's server states the deposit
    that was made, and that is what reports and the CPA baseline count."""
    client.api(
        "PUT",
        f"/offers/{world.casino['id']}/deal",
        json={"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}},
    )
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="P-200", token=world.token)
    fired = {"click_id": click_id, "event": "deposit", "txn_id": "Y1", "payout": "5000", "player_id": "P-200"}
    assert told(browser.get(pixel, params=fired)) == (200, "accepted", None)

    s2s = client.postback(
        click_id=click_id, event="deposit", txn_id="Y1", payout="5", player_id="P-200", token=world.token
    )

    assert (s2s.status_code, s2s.json()["result"]) == (200, "updated"), s2s.text
    confirmed = client.api("GET", f"/conversions/{s2s.json()['conversion_id']}")
    assert (confirmed["status"], confirmed["payout"], confirmed["deal_amount"]) == (
        "approved",
        "5.00",
        "5.00",
    )
    # 5 is under the CPA's baseline of 20: no CPA stands on the browser's 5000.
    assert sum(Decimal(e["amount"]) for e in client.items("/commissions", kind="cpa")) == 0
    (day,) = client.report(group_by="day")["rows"]
    assert (day["ftd_amount"], day["deposit_amount"], day["qualified_cpas"]) == (
        {"EUR": "5.00"},
        {"EUR": "5.00"},
        0,
    )


def test_the_servers_amount_replaces_the_browsers_also_when_the_status_stays(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id = fired(client, world, pixel, browser, event="deposit", txn_id="Y1", payout="5000")

    s2s = client.postback(
        click_id=click_id, event="deposit", txn_id="Y1", payout="5", status="pending", token=world.token
    )
    again = client.postback(
        click_id=click_id, event="deposit", txn_id="Y1", payout="5", status="pending", token=world.token
    )

    assert (s2s.json()["result"], again.json()["result"]) == ("updated", "duplicate"), s2s.text
    confirmed = client.api("GET", f"/conversions/{s2s.json()['conversion_id']}")
    assert (confirmed["status"], confirmed["payout"]) == ("pending", "5.00")
    assert [h["to_status"] for h in confirmed["history"]] == ["pending"]  # no status change recorded
    (day,) = client.report(group_by="day")["rows"]
    assert day["deposit_amount"] == {"EUR": "5.00"}


def test_the_player_the_server_names_on_confirming_a_pixel_deposit_gets_it_and_qualifies(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """The thank-you page knew no player; the advertiser's server does: the deposit becomes the
    player's first, and their CPA is booked, as if the server had reported it first."""
    cpa = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=cpa)
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="P-300", token=world.token)
    fired = {"click_id": click_id, "event": "deposit", "txn_id": "Y1", "payout": "50"}
    assert told(browser.get(pixel, params=fired)) == (200, "accepted", None)
    assert client.items("/commissions") == []

    s2s = client.postback(
        click_id=click_id, event="deposit", txn_id="Y1", payout="50", player_id="P-300", token=world.token
    )

    assert (s2s.status_code, s2s.json()["result"]) == (200, "updated"), s2s.text
    confirmed = client.api("GET", f"/conversions/{s2s.json()['conversion_id']}")
    assert (confirmed["player_id"], confirmed["event"], confirmed["status"]) == (
        "P-300",
        "first_deposit",
        "approved",
    )
    (entry,) = client.items("/commissions", kind="cpa")
    assert (entry["amount"], entry["conversion_id"]) == ("100.00", confirmed["id"])
    (player,) = client.items("/players", player_id="P-300")
    assert player["deposits"] == "50.00" and player["qualified_at"] is not None
    (day,) = client.report(group_by="day")["rows"]
    assert (day["ftds"], day["deposits"], day["qualified_cpas"]) == (1, 1, 1)


def test_a_pixel_conversion_is_confirmed_once_then_repeats_are_the_servers_own(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """After the server's postback, a retry without a status is a duplicate (a rejection stands)
    and its amount changes nothing, as for a conversion the server reported first."""
    click_id = fired(client, world, pixel, browser, event="deposit", txn_id="PX", payout="50")
    fields = {"click_id": click_id, "event": "deposit", "txn_id": "PX", "token": world.token}
    rejected = client.postback(**fields, payout="50", status="rejected")
    assert rejected.json()["result"] == "updated"

    replies = [client.postback(**fields, payout=amount).json()["result"] for amount in ("50", "70")]

    assert replies == ["duplicate", "duplicate"]
    kept = client.api("GET", f"/conversions/{rejected.json()['conversion_id']}")
    assert (kept["status"], kept["payout"]) == ("rejected", "50.00")


def test_the_reply_to_a_confirmation_says_what_the_conversion_became(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    s2s = {"click_id": click_id, "token": world.token, "player_id": "P"}
    client.postback(**s2s, event="registration")
    assert (
        client.postback(**s2s, event="deposit", txn_id="D0", payout="30").json()["event"] == "first_deposit"
    )
    fired = {"click_id": click_id, "event": "first_deposit", "txn_id": "PX", "payout": "40"}
    assert told(browser.get(pixel, params=fired)) == (200, "accepted", None)

    confirmed = client.postback(**s2s, event="deposit", txn_id="PX", payout="40")

    assert (confirmed.json()["result"], confirmed.json()["event"]) == ("updated", "deposit"), confirmed.text
    assert client.api("GET", f"/conversions/{confirmed.json()['conversion_id']}")["event"] == "deposit"


def test_postback_then_pixel_of_the_same_transaction_is_one_conversion(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    fields = {"click_id": click_id, "event": "first_deposit", "txn_id": "D-1"}

    assert client.postback(**fields, token=world.token).json()["result"] == "accepted"
    # The thank-you page loaded twice: both pixels are the same conversion.
    assert told(browser.get(pixel, params=fields)) == (200, "duplicate", "duplicate")
    assert told(browser.get(pixel, params=fields)) == (200, "duplicate", "duplicate")

    (conversion,) = conversions(client)
    assert (conversion["channel"], conversion["status"]) == ("s2s", "approved")


def test_a_token_on_a_pixel_is_never_needed_nor_kept(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    click_id, _ = click(browser, world.alice_casino)
    response = browser.get(
        pixel, params={"click_id": click_id, "event": "registration", "token": world.token}
    )

    assert told(response) == (200, "accepted", None)
    (entry,) = client.items("/postbacks")
    assert world.token not in entry["query"] + entry["body"] + entry["ignored"]
    assert entry["query"] == f"click_id={click_id}&event=registration"


def test_a_pixel_counts_only_clicks_of_its_own_offer(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    sportsbook_click, _ = click(browser, world.alice_sportsbook)
    client.flush()

    response = browser.get(pixel, params={"click_id": sportsbook_click, "event": "registration"})

    assert told(response) == (403, "rejected", "wrong_pixel")
    assert conversions(client) == []


def test_a_pixel_for_a_click_of_another_advertisers_offer_is_the_wrong_pixel(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    """A pixel has no token: `foreign_click` and its hint (use the other advertiser's token) are
    not its reasons, and its log entry, which the pixel's advertiser reads, names no other
    advertiser's offer."""
    rival_click, _ = click(browser, world.rival_link)
    client.flush()

    response = browser.get(pixel, params={"click_id": rival_click, "event": "registration"})

    assert told(response) == (403, "rejected", "wrong_pixel")
    (entry,) = client.items("/postbacks", channel="pixel")
    assert (entry["reason"], entry["advertiser_id"]) == ("wrong_pixel", world.northstar["id"])
    assert entry["detail"] == f"pixel of offer {world.casino['id']}"
    assert conversions(client) == []


def test_a_pixel_for_another_offers_click_still_in_flight_is_rejected_when_the_click_lands(
    client: Client, world: World, pixel: str, second_node: Node
) -> None:
    other = Client(second_node)
    with second_node.writer_held():
        sportsbook_click = other.click(world.alice_sportsbook)  # in the other node's buffer
        response = client.http.get(pixel, params={"click_id": sportsbook_click, "event": "registration"})
    other.flush()
    client.flush()  # the first node's writer looks for conversions waiting on landed clicks

    assert told(response) == (200, "accepted", None)  # kept while the click was in flight
    (conversion,) = conversions(client)
    assert (conversion["status"], conversion["affiliate_id"]) == ("rejected", None)
    other.http.close()


def test_pixel_is_answered_503_with_the_gif_when_nothing_could_be_recorded(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    from sqlalchemy import text

    click_id, _ = click(browser, world.alice_casino)
    client.flush()

    async def rename(old: str, new: str) -> None:
        async with client.node.runtime.db.write() as conn:
            await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    client.node.call(lambda: rename("conversion_history", "history_away"))
    try:
        response = browser.get(pixel, params={"click_id": click_id, "event": "registration"})
    finally:
        client.node.call(lambda: rename("history_away", "conversion_history"))

    assert told(response) == (503, "rejected", "storage_unavailable")
    assert conversions(client) == []


def test_the_snippet_is_served_for_a_pixel_and_a_head_records_nothing(
    client: Client, world: World, pixel: str, browser: httpx.Client
) -> None:
    snippet = browser.get(pixel + ".js")
    assert (snippet.status_code, snippet.content) == (200, SNIPPET)
    assert snippet.headers["content-type"] == "text/javascript; charset=utf-8"
    assert snippet.headers["x-content-type-options"] == "nosniff"

    click_id, _ = click(browser, world.alice_casino)
    assert browser.head(pixel, params={"click_id": click_id, "event": "registration"}).status_code == 405
    assert client.items("/postbacks") == []


def test_the_snippet_on_another_sites_page_fires_the_pixel_in_a_real_browser(
    client: Client, world: World, pixel: str, browser: httpx.Client, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    # Not skipped: .ci/run installs Debian's chromium, as the README says.
    assert chromium is not None, "Debian's chromium runs the snippet: apt-get install -y chromium"
    click_id, _ = click(browser, world.alice_casino)
    client.flush()
    page = (
        f'<!doctype html><title>Thank you</title><script async src="{client.node.base_url}{pixel}.js"'
        ' data-param="btag" data-event="registration" data-txn-id="R-1"></script>'
    ).encode()

    class ThankYou(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    # The advertiser's site: another origin than the tracking server's.
    site = ThreadingHTTPServer(("127.0.0.1", 0), ThankYou)
    with in_a_thread(site):
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",  # as root in a container
                "--disable-gpu",
                f"--user-data-dir={tmp_path}",
                "--virtual-time-budget=5000",
                "--dump-dom",
                f"http://127.0.0.1:{site.server_address[1]}/thanks?btag={click_id}",
            ],
            capture_output=True,
            timeout=60,
            check=True,
        )

    # The browser may exit as the pixel's request leaves: its answer comes after the commit.
    deadline = time.monotonic() + 10
    while not conversions(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    (conversion,) = conversions(client)
    assert (conversion["click_id"], conversion["txn_id"], conversion["channel"]) == (click_id, "R-1", "pixel")
