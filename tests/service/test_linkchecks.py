"""Scheduled link checks on a real database: a round checks each active offer due, records it,
leaves it alone until the interval has passed, prunes old history; two processes share a round."""

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from clickback.core.linkcheck import Policy
from clickback.core.model import Catalog
from clickback.service.linkchecks import KEEP_DAYS, LinkChecks
from clickback.store import linkchecks as store
from clickback.store.tables import link_checks
from tests.conftest import Client, Node, private_node
from tests.receiver import Answer, Got, Receiver, receiving

HOUR = timedelta(hours=1)
TEST_POLICY = Policy(timeout=2.0, host_gap=0.0)


def site(got: Got) -> Answer:
    if got.target.startswith("/ok"):
        return Answer(200, b"<h1>Welcome</h1>", {"content-type": "text/html"})
    if got.target.startswith("/expired"):
        return Answer(200, b"<h1>Offer expired</h1>", {"content-type": "text/html"})
    return Answer(404, b"<h1>Not found</h1>", {"content-type": "text/html"})


@pytest.fixture
def server() -> Iterator[Receiver]:
    with receiving() as r:
        r.answer = site
        yield r


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def offers(client: Client, server: Receiver, *paths: str) -> list[int]:
    advertiser = client.api("POST", "/advertisers", json={"name": "Northstar Gaming"})
    made = []
    for i, path in enumerate(paths):
        body = {
            "advertiser_id": advertiser["id"],
            "name": f"Offer {i}",
            "url_template": server.url(f"{path}?cid={{click_id}}&o={{offer_id}}&s1={{sub1}}"),
            "currency": "EUR",
        }
        made.append(int(client.api("POST", "/offers", json=body)["id"]))
    return made


def checks_of(node: Node, clock: Clock | None = None) -> LinkChecks:
    chosen = node.runtime.link_checks
    return dataclasses.replace(chosen, policy=TEST_POLICY, clock=clock or chosen.clock)


def round_of(node: Node, checks: LinkChecks) -> list[store.Checked]:
    runtime = node.runtime
    return node.call(lambda: checks.round(runtime.catalog.current, HOUR))


def rows(node: Node) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with node.runtime.db.read() as conn:
            result = await conn.execute(select(link_checks).order_by(link_checks.c.id))
            return [dict(r._mapping) for r in result]

    return node.call(read)


def test_a_round_checks_every_active_offer_with_the_test_click_id(client: Client, server: Receiver) -> None:
    ok, gone, expired, paused = offers(client, server, "/ok", "/gone", "/expired", "/ok")
    client.api("PUT", f"/offers/{paused}/status", json={"status": "paused"})
    checks = checks_of(client.node)

    checked = round_of(client.node, checks)

    assert {c.offer_id: c.outcome.code.value for c in checked} == {
        ok: "ok",
        gone: "http_error",
        expired: "soft_404",
    }
    sent = {parse_qs(urlsplit(g.target).query)["o"][0]: g for g in server.got}
    assert set(sent) == {str(ok), str(gone), str(expired)}
    for got in sent.values():
        assert parse_qs(urlsplit(got.target).query)["cid"] == [checks.test_click_id]
        assert "linkcheck" in checks.test_click_id
    stored = {r["offer_id"]: r for r in rows(client.node)}
    assert stored[gone]["status"] == 404 and stored[gone]["verdict"] == "broken"
    assert stored[expired]["verdict"] == "soft_404" and "offer expired" in stored[expired]["hint"]
    assert stored[ok]["final_url"] == server.url(f"/ok?cid={checks.test_click_id}&o={ok}&s1=")
    # No click row is made for the test click ID.
    assert client.report()["totals"]["clicks"] == 0


def test_an_offer_whose_host_does_not_resolve_is_a_connection_error(client: Client) -> None:
    advertiser = client.api("POST", "/advertisers", json={"name": "Northstar Gaming"})
    body = {
        "advertiser_id": advertiser["id"],
        "name": "Gone",
        "url_template": "http://nonexistent.invalid/x?c={click_id}",
        "currency": "EUR",
    }
    offer = client.api("POST", "/offers", json=body)["id"]

    (checked,) = round_of(client.node, checks_of(client.node))

    assert (checked.offer_id, checked.outcome.code.value) == (offer, "connection_error")
    (stored,) = rows(client.node)
    assert stored["verdict"] == "broken" and "not public" not in stored["hint"]
    assert "nonexistent.invalid does not resolve" in stored["hint"]


def test_an_offer_is_checked_again_only_once_its_interval_has_passed(
    client: Client, server: Receiver
) -> None:
    offers(client, server, "/ok")
    clock = Clock()
    checks = checks_of(client.node, clock)

    first = round_of(client.node, checks)
    clock.now += HOUR - timedelta(seconds=1)
    early = round_of(client.node, checks)
    clock.now += timedelta(seconds=1)
    due = round_of(client.node, checks)

    assert [len(first), len(early), len(due)] == [1, 0, 1]
    assert len(server.got) == 2


def test_history_older_than_the_kept_days_is_pruned(client: Client, server: Receiver) -> None:
    offers(client, server, "/ok")
    clock = Clock()
    checks = checks_of(client.node, clock)
    round_of(client.node, checks)
    clock.now += timedelta(days=KEEP_DAYS, hours=1)

    round_of(client.node, checks)

    assert [r["checked_at"] for r in rows(client.node)] == [clock.now]


def test_two_processes_in_one_round_check_each_offer_once(
    client: Client, second_node: Node, server: Receiver
) -> None:
    made = offers(client, server, *(["/ok"] * 6))
    second_node.call(second_node.runtime.catalog.reload)
    first, second = checks_of(client.node), checks_of(second_node)

    def started(node: Node, checks: LinkChecks) -> "asyncio.Future[list[store.Checked]]":
        runtime = node.runtime
        coro = checks.round(runtime.catalog.current, HOUR)
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, node.loop))

    async def both() -> list[list[store.Checked]]:
        return list(await asyncio.gather(started(client.node, first), started(second_node, second)))

    a, b = asyncio.run(both())

    assert sorted(c.offer_id for c in a + b) == sorted(made)
    assert len(server.got) == len(made)
    assert len(rows(client.node)) == len(made)


def test_the_scheduled_task_is_not_started_at_zero(client: Client) -> None:
    runtime = client.node.runtime
    assert runtime.settings.link_check_every is None
    assert "link-checks" not in {t.get_name() for t in runtime._tasks}
    assert rows(client.node) == []


def test_serve_runs_the_scheduled_task_when_set(clean: Node, database_url: str, tmp_path: Path) -> None:
    for node in private_node(clean, database_url, tmp_path, link_check_minutes=30):
        assert node.runtime.settings.link_check_every == timedelta(minutes=30)
        assert "link-checks" in {t.get_name() for t in node.runtime._tasks}


def test_a_round_that_fails_for_any_reason_does_not_end_the_scheduled_checks(client: Client) -> None:
    # A Location of bytes no database stores raised UnicodeEncodeError out of a round: the task
    # ended, and no offer was checked again until a restart.
    runtime = client.node.runtime
    calls: list[int] = []

    def catalog() -> Catalog:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("a round's own fault")
        third.set()
        return runtime.catalog.current

    async def scheduled() -> None:
        task = asyncio.create_task(checks_of(client.node).run(catalog, timedelta(milliseconds=10)))
        try:
            await asyncio.wait_for(third.wait(), 10)
        finally:
            task.cancel()
        assert not task.done() or task.cancelled()

    third = asyncio.Event()
    client.node.call(scheduled)
    assert len(calls) >= 3
