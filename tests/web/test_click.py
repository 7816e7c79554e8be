"""The click endpoint over HTTP: redirect, recording, refusals, hostile parameters."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from clickback.service import clickwriter
from clickback.store.tables import clicks
from tests.conftest import BROWSER_UA, Client, Node, World, make_world, private_node, serve, settings_for
from tests.web.test_hostile_input import port_of
from tests.web.test_metrics import growth, samples
from tests.web.test_server import exchange


def recorded(client: Client) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        async with client.node.runtime.db.read() as conn:
            return [dict(r._mapping) for r in (await conn.execute(select(clicks))).all()]

    client.flush()
    return client.node.call(read)


def test_click_redirects_with_macros_replaced_and_is_recorded(client: Client, world: World) -> None:
    response = client.http.get(
        f"/c/{world.alice_casino}",
        params={"sub1": "a&b=c", "source": "tik tok", "lp": "lp-2"},
        headers={"user-agent": "Mozilla/5.0 test", "referer": "https://blog.example.org/post"},
    )

    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = urlsplit(response.headers["location"])
    assert location.hostname == "casino.example.com"
    query = parse_qs(location.query)
    assert query["s1"] == ["a&b=c"]
    assert query["src"] == ["tik tok"]
    [row] = recorded(client)
    assert row["click_id"] == query["cid"][0]
    assert (row["affiliate_id"], row["offer_id"], row["campaign"]) == (
        world.alice["id"],
        world.casino["id"],
        "spring",
    )
    assert (row["sub1"], row["source"], row["landing_page"]) == ("a&b=c", "tik tok", "lp-2")
    assert row["user_agent"] == "Mozilla/5.0 test"
    assert row["referrer"] == "https://blog.example.org/post"
    assert row["ip"] == "127.0.0.1"


def test_a_user_agent_and_referrer_in_utf_8_are_kept_as_written(client: Client, world: World) -> None:
    """An app's webview names itself in its User-Agent, in UTF-8; bytes that are no UTF-8 are
    read as Latin-1 (every byte a character), never refused."""
    app = "Mozilla/5.0 (Linux; Android 14) 小米浏览器/17.1 Überweisung"
    client.http.get(
        f"/c/{world.alice_casino}",
        headers={"user-agent": app.encode(), "referer": "https://blog.example.org/café".encode()},
    )
    client.http.get(f"/c/{world.alice_casino}", headers={"user-agent": b"Agent \xe9t\xe9"})

    agents = sorted((str(r["user_agent"]), str(r["referrer"])) for r in recorded(client))

    assert agents == [("Agent été", ""), (app, "https://blog.example.org/café")]


def test_every_click_gets_its_own_click_id(client: Client, world: World) -> None:
    ids = {client.click(world.alice_casino) for _ in range(20)}

    assert len(ids) == 20
    assert len(recorded(client)) == 20


def test_unknown_link_is_a_404_page_with_its_reason(client: Client, world: World) -> None:
    response = client.http.get("/c/doesnotexist")

    assert response.status_code == 404
    assert response.headers["x-clickback-reason"] == "unknown_link"
    assert "unknown_link" in response.text
    assert recorded(client) == []


def test_paused_link_and_paused_offer_are_410(client: Client, world: World) -> None:
    link = next(x for x in client.items("/links") if x["code"] == world.alice_casino)
    client.api("PUT", f"/links/{link['id']}/status", json={"status": "paused"})
    client.api("PUT", f"/offers/{world.sportsbook['id']}/status", json={"status": "paused"})

    paused_link = client.http.get(f"/c/{world.alice_casino}")
    paused_offer = client.http.get(f"/c/{world.alice_sportsbook}")

    assert (paused_link.status_code, paused_link.headers["x-clickback-reason"]) == (410, "link_paused")
    assert (paused_offer.status_code, paused_offer.headers["x-clickback-reason"]) == (
        410,
        "offer_paused",
    )
    client.api("PUT", f"/links/{link['id']}/status", json={"status": "active"})
    assert client.http.get(f"/c/{world.alice_casino}").status_code == 302


def test_refused_clicks_are_counted_by_reason_and_code(client: Client, world: World) -> None:
    link = next(x for x in client.items("/links") if x["code"] == world.bob_casino)
    client.api("PUT", f"/links/{link['id']}/status", json={"status": "paused"})
    for _ in range(3):
        client.http.get("/c/broken-link")
    client.http.get(f"/c/{world.bob_casino}")
    client.flush()

    day = client.report()["from"]
    refused = client.api("GET", "/reports/refused-clicks", params={"from": day, "to": day})

    assert refused == [
        {"day": day, "reason": "unknown_link", "code": "broken-link", "clicks": 3},
        {"day": day, "reason": "link_paused", "code": world.bob_casino, "clicks": 1},
    ]


def test_invalid_utf8_and_nul_in_click_parameters_still_redirect(client: Client, world: World) -> None:
    response = client.http.get(f"/c/{world.alice_casino}?sub1=%ff%00%fe&source=%c3%28")

    assert response.status_code == 302
    assert len(recorded(client)) == 1


def test_a_click_with_raw_utf8_in_its_url_is_recorded_with_the_value(client: Client, world: World) -> None:
    # Not percent-encoded (as httpx would send it): some apps and servers build links so. Raw
    # bytes that are not UTF-8 are read as escaped ones are, with U+FFFD.
    target = f"/c/{world.alice_casino}?sub1=Jürgen&source=".encode() + b"caf\xe9"
    head = b"GET %s HTTP/1.1\r\nHost: t\r\nUser-Agent: %s\r\n\r\n" % (target, BROWSER_UA.encode())

    (reply,) = exchange(port_of(client), head, 1)

    assert reply.status == 302
    assert "&s1=J%C3%BCrgen&src=caf%EF%BF%BD" in reply.headers["location"]
    [row] = recorded(client)
    assert (row["sub1"], row["source"]) == ("Jürgen", "caf\ufffd")


def test_a_click_with_raw_spaces_and_control_bytes_in_its_url_is_recorded(
    client: Client, world: World
) -> None:
    # Spaces not encoded, as some apps build links: read as encoded ones are (a control byte
    # removed from a click's value, as an escaped one is).
    target = f"/c/{world.alice_casino}?sub1=summer sale&source=tik\x01 tok".encode()
    head = b"GET %s HTTP/1.1\r\nHost: t\r\nUser-Agent: %s\r\n\r\n" % (target, BROWSER_UA.encode())

    (reply,) = exchange(port_of(client), head, 1)

    assert reply.status == 302
    assert "&s1=summer%20sale&src=tik%20tok" in reply.headers["location"]
    [row] = recorded(client)
    assert (row["sub1"], row["source"]) == ("summer sale", "tik tok")


def test_a_link_created_through_the_api_works_at_once(client: Client, world: World) -> None:
    code = client.api(
        "POST", "/links", json={"affiliate_id": world.bob["id"], "offer_id": world.sportsbook["id"]}
    )["code"]

    assert client.http.get(f"/c/{code}").status_code == 302


def test_control_characters_are_stripped_and_long_values_cropped(client: Client, world: World) -> None:
    response = client.http.get(
        f"/c/{world.alice_casino}", params={"sub1": "ok\r\nSet-Cookie: x=1", "sub2": "y" * 5000}
    )

    assert response.status_code == 302
    assert "set-cookie" not in response.headers
    [row] = recorded(client)
    assert row["sub1"] == "okSet-Cookie: x=1"
    assert row["sub2"] == "y" * 255


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(
        st.sampled_from(["sub1", "sub2", "sub3", "sub4", "sub5", "source", "lp", "x"]),
        st.text(max_size=300),
        max_size=8,
    )
)
def test_location_is_always_on_the_offers_own_host(
    client: Client, world: World, params: dict[str, str]
) -> None:
    response = client.http.get(f"/c/{world.alice_casino}", params=params)

    assert response.status_code == 302
    location = response.headers["location"]
    assert urlsplit(location).hostname == "casino.example.com"
    assert location.startswith("https://casino.example.com/go?")


def test_behind_a_proxy_the_client_address_comes_from_x_forwarded_for(
    client: Client, world: World, database_url: str, tmp_path: Path
) -> None:
    for node in serve(settings_for(database_url, tmp_path, proxy_hops=1)):
        behind = Client(node)
        forged_then_real = {"x-forwarded-for": "6.6.6.6, 203.0.113.9"}
        behind.http.get(f"/c/{world.alice_casino}", params={"sub1": "p1"}, headers=forged_then_real)
        behind.http.get(
            f"/c/{world.alice_casino}", params={"sub1": "p2"}, headers={"x-forwarded-for": "junk"}
        )
        # A zone ID is no part of the address, and longer than the column: it stopped every
        # batch on PostgreSQL.
        zoned = {"x-forwarded-for": "fe80::1%" + "z" * 40}
        behind.http.get(f"/c/{world.alice_casino}", params={"sub1": "p3"}, headers=zoned)
        behind.flush()
        behind.http.close()

    ips = {row["sub1"]: row["ip"] for row in recorded(client)}
    assert ips == {"p1": "203.0.113.9", "p2": "127.0.0.1", "p3": "fe80::1"}


def test_behind_two_proxies_each_x_forwarded_for_line_is_part_of_the_list(
    clean: Node, database_url: str, tmp_path: Path
) -> None:
    for node in private_node(clean, database_url, tmp_path, proxy_hops=2):
        behind = Client(node)
        world = make_world(behind)
        # The first proxy appended to the client's line; the second added a line of its own.
        lines = [("x-forwarded-for", "6.6.6.6, 203.0.113.9"), ("x-forwarded-for", "10.0.0.2")]
        behind.http.get(f"/c/{world.alice_casino}", headers=lines)
        [row] = recorded(behind)
        behind.http.close()

    assert row["ip"] == "203.0.113.9"


def test_a_link_created_on_one_node_is_served_by_another_after_its_refresh(
    client: Client, world: World, second_node: Node
) -> None:
    body = {"affiliate_id": world.bob["id"], "offer_id": world.sportsbook["id"]}
    code = client.api("POST", "/links", json=body)["code"]

    second_node.call(second_node.runtime.catalog.refresh)

    other = Client(second_node)
    assert other.http.get(f"/c/{code}").status_code == 302
    assert second_node.runtime.catalog.current.version == client.node.runtime.catalog.current.version
    other.http.close()


def test_in_durable_mode_a_click_is_on_disk_before_its_redirect(
    clean: Node, database_url: str, tmp_path: Path
) -> None:
    for node in private_node(clean, database_url, tmp_path, durable_clicks=True):
        c = Client(node)
        world = make_world(c)
        with node.writer_held():  # only the spool holds the click
            click_id = c.click(world.alice_casino)
            on_disk = b"".join(p.read_bytes() for p in (tmp_path / "spool").glob("*.spool"))
        c.flush()
        left = list((tmp_path / "spool").glob("*.spool"))
        stored = {r["click_id"] for r in recorded(c)}
        c.http.close()

    assert click_id.encode() in on_disk
    assert left == []
    assert stored == {click_id}


def test_a_redirect_waits_for_a_writer_behind_the_traffic_and_not_for_a_stalled_one(
    clean: Node, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No time limits here: what sends the held redirect must be the writer catching up.
    monkeypatch.setattr(clickwriter, "HOLD_SECONDS", 30.0)
    monkeypatch.setattr(clickwriter, "STALLED_SECONDS", 30.0)
    for node in private_node(clean, database_url, tmp_path, click_batch_size=5):
        c = Client(node)
        world = make_world(c)
        c.click(world.alice_casino)
        c.flush()  # a batch stored just now: the writer is keeping up with the database
        before = samples(c)
        with ThreadPoolExecutor(1) as pool, node.writer_held():  # ... and then falls behind
            taken = [c.click(world.alice_casino, sub1=str(n)) for n in range(10)]  # two batches wait
            held = pool.submit(c.click, world.alice_casino, sub1="eleventh")
            with pytest.raises(TimeoutError):
                held.result(timeout=0.5)
        held_id = held.result(timeout=30)  # sent once the writer has stored the backlog
        runtime = c.api("GET", "/runtime")
        stored = {r["click_id"] for r in recorded(c)}
        held_counted = growth(before, samples(c))("clickback_clicks_held_total")

        # A writer that stored nothing for STALLED_SECONDS (a locked or failing database) holds
        # no one: the backlog grows in memory, as in an outage.
        monkeypatch.setattr(clickwriter, "STALLED_SECONDS", 0.0)
        with node.writer_held():
            stalled = [c.click(world.alice_casino, sub1=f"s{n}") for n in range(20)]
            pending = node.runtime.writer.pending
        c.flush()
        stored_after = {r["click_id"] for r in recorded(c)}
        c.http.close()

    assert held_id in stored
    assert set(taken) < stored
    assert runtime["clicks_held"] == 1
    assert held_counted == 1
    assert pending == 20
    assert node.runtime.writer.held == 1
    assert set(stalled) < stored_after
