"""Traffic quality over HTTP: GEO, device, bots flagged not dropped, unique clicks, IP privacy."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from clickback.store.tables import clicks, metadata
from tests.conftest import Client, Node, World, make_world, private_node
from tests.enrich.conftest import GEOLITE2_LONDON, write_mmdb

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
LONDON_IP = "81.2.69.142"


def rows(client: Client) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with client.node.runtime.db.read() as conn:
            result = await conn.execute(select(clicks).order_by(clicks.c.clicked_at))
            return [dict(r._mapping) for r in result]

    client.flush()
    return client.node.call(read)


def test_bots_are_flagged_not_dropped_and_reports_can_hide_them(client: Client, world: World) -> None:
    link = f"/c/{world.alice_casino}"
    responses = [
        client.http.get(link),
        client.http.get(link, headers={"user-agent": GOOGLEBOT}),
        client.http.get(link, headers={"user-agent": ""}),
        client.http.head(link),
        client.http.get(link, headers={"user-agent": "TelegramBot (like TwitterBot)"}),
    ]

    assert [r.status_code for r in responses] == [302] * 5
    assert [r["bot"] for r in rows(client)] == [
        "",
        "crawler",
        "empty_user_agent",
        "head_request",
        "link_preview",
    ]
    hidden = client.report()["totals"]
    shown = client.report(bots="include")["totals"]
    assert (hidden["clicks"], hidden["bot_clicks"]) == (1, 4)
    assert (shown["clicks"], shown["bot_clicks"]) == (5, 4)


def test_a_visitor_clicking_again_is_not_a_unique_click(client: Client, world: World) -> None:
    client.click(world.alice_casino)
    client.click(world.alice_casino)
    client.http.get(f"/c/{world.alice_casino}", headers={"user-agent": ANDROID})
    client.click(world.bob_casino)

    assert [r["is_unique"] for r in rows(client)] == [True, False, True, True]
    totals = client.report()["totals"]
    assert (totals["clicks"], totals["unique_clicks"]) == (4, 3)


@pytest.fixture
def geo_node(clean: Node, database_url: str, tmp_path: Path) -> Iterator[Client]:
    mmdb = write_mmdb(tmp_path / "city.mmdb", "GeoLite2-City", {"81.2.69.0/24": GEOLITE2_LONDON})
    for node in private_node(clean, database_url, tmp_path, proxy_hops=1, geoip_mmdb=mmdb):
        c = Client(node)
        yield c
        c.http.close()


def test_geo_and_device_are_recorded_and_reported_with_conversions(geo_node: Client) -> None:
    world = make_world(geo_node)
    london = {"x-forwarded-for": LONDON_IP, "user-agent": ANDROID}
    response = geo_node.http.get(f"/c/{world.alice_casino}", headers=london)
    geo_node.http.get(f"/c/{world.alice_casino}", headers={"x-forwarded-for": "8.8.8.8"})
    cid = response.headers["location"].split("cid=")[1].split("&")[0]
    geo_node.flush()
    geo_node.postback(click_id=cid, event="registration", token=world.token)

    [first, second] = rows(geo_node)
    assert (first["country"], first["region"], first["city"]) == ("GB", "England", "London")
    assert (first["device_type"], first["os"], first["browser"]) == ("mobile", "Android", "Chrome Mobile")
    assert (second["country"], second["city"], second["device_type"]) == ("US", "", "mobile")
    report = geo_node.report(group_by="country,device_type")["rows"]
    assert [(r["key"], r["clicks"], r["registrations"]) for r in report] == [
        ({"country": "GB", "device_type": "mobile"}, 1, 1),
        ({"country": "US", "device_type": "mobile"}, 1, 0),
    ]


def database_text(client: Client) -> str:
    """Everything the database holds, as text: the file itself for SQLite, every row for PostgreSQL."""
    runtime = client.node.runtime

    async def dump() -> str:
        async with runtime.db.read() as conn:
            if runtime.db.dialect == "sqlite":
                path = Path(runtime.db.engine.url.database or "")
                return "".join(p.read_bytes().decode("latin-1") for p in path.parent.glob(path.name + "*"))
            parts = []
            for table in metadata.sorted_tables:
                result = await conn.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608
                parts += [repr(tuple(r)) for r in result]
            return "\n".join(parts)

    client.flush()
    return client.node.call(dump)


@pytest.mark.parametrize(
    ("mode", "kept"),
    [("full", LONDON_IP), ("truncated", "81.2.69.0"), ("hashed", "h:")],
)
def test_the_raw_ip_is_stored_only_in_full_mode(
    clean: Node, database_url: str, tmp_path: Path, mode: str, kept: str
) -> None:
    for node in private_node(clean, database_url, tmp_path, proxy_hops=1, ip_mode=mode):
        c = Client(node)
        world = make_world(c)
        c.http.get(f"/c/{world.alice_casino}", headers={"x-forwarded-for": LONDON_IP})

        [row] = rows(c)
        stored = database_text(c)
        c.http.close()

    assert row["country"] == "GB"  # GEO saw the full address whatever is kept
    assert row["ip"].startswith(kept)
    assert (LONDON_IP in stored) is (mode == "full")


def test_an_ipv4_client_in_ipv6_form_is_the_same_visitor_and_kept_as_ipv4(
    clean: Node, database_url: str, tmp_path: Path
) -> None:
    # As a dual-stack socket or proxy writes an IPv4 client: ::ffff:81.2.69.142.
    for node in private_node(clean, database_url, tmp_path, proxy_hops=1, ip_mode="truncated"):
        c = Client(node)
        world = make_world(c)
        for address in ("::ffff:" + LONDON_IP, LONDON_IP):
            c.http.get(f"/c/{world.alice_casino}", headers={"x-forwarded-for": address})
        stored = rows(c)
        totals = c.report()["totals"]
        c.http.close()

    assert [(r["ip"], r["country"]) for r in stored] == [("81.2.69.0", "GB")] * 2
    assert sorted(r["is_unique"] for r in stored) == [False, True]
    assert (totals["clicks"], totals["unique_clicks"]) == (2, 1)
