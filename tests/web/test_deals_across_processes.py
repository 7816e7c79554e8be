"""A deal applies to every conversion recorded after it was committed, whichever process records
it: a process whose catalog has not yet caught up with the change (it refreshes about once a
second) prices under the deal all the same, on both databases."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from clickback.service import outbound
from tests.conftest import Client, Node, World, serve, settings_for
from tests.web.test_commissions import CPA_100, deal, ledger, register, send
from tests.web.test_outbound import eventually


@pytest.fixture
def late_node(database_url: str, tmp_path: Path) -> Iterator[Node]:
    """Another server on the same database whose catalog refreshes once a minute only: within a
    test it keeps the catalog it has, as any process does for up to a second after a change."""
    yield from serve(settings_for(database_url, tmp_path, catalog_refresh_seconds=60))


@pytest.fixture
def late(client: Client, world: World, late_node: Node) -> Iterator[Client]:
    """A client of late_node, whose catalog knows the world and no deal."""
    late_node.call(late_node.runtime.catalog.reload)
    c = Client(late_node)
    yield c
    c.http.close()


def catalog_has_deal(node: Node, world: World) -> bool:
    return node.runtime.catalog.current.deal_for(world.casino["id"], world.alice["id"]) is not None


def test_a_first_deposit_through_a_process_that_has_not_seen_the_new_deal_is_priced_and_pays_the_cpa(
    client: Client, world: World, late: Client
) -> None:
    # The probe: a deal set through one worker, the player's registration and deposit sent at
    # once through another.
    deal(client, world.casino, CPA_100)
    assert not catalog_has_deal(late.node, world)  # the second process's catalog is a second old

    register(late, world, world.alice_casino, "P-late")
    ftd = send(late, world, event="deposit", player_id="P-late", payout="25", currency="EUR", txn_id="D-1")

    assert ftd.json()["event"] == "first_deposit", ftd.text
    conversion = client.api("GET", f"/conversions/{ftd.json()['conversion_id']}")
    assert (conversion["deal_amount"], conversion["deal_currency"]) == ("25.00", "EUR")
    (entry,) = ledger(client)
    assert (entry["kind"], entry["amount"], entry["currency"]) == ("cpa", "100.00", "EUR")
    assert entry["conversion_id"] == ftd.json()["conversion_id"]
    assert catalog_has_deal(late.node, world)  # the group found its catalog stale and reloaded it


def test_a_deal_changed_a_moment_ago_prices_a_cpa_another_process_books_at_the_new_amount(
    client: Client, world: World, late: Client
) -> None:
    deal(client, world.casino, CPA_100)
    late.node.call(late.node.runtime.catalog.reload)
    deal(client, world.casino, {"cpa": {"amount": "140"}})  # the other process still pays 100

    register(late, world, world.alice_casino, "P-raise")
    send(late, world, event="deposit", player_id="P-raise", payout="30", currency="EUR", txn_id="D-1")

    assert [e["amount"] for e in ledger(client, kind="cpa")] == ["140.00"]


def test_a_status_change_by_hand_through_a_process_that_has_not_seen_the_new_deal_pays_the_cpa(
    client: Client, world: World, late: Client
) -> None:
    """A first deposit declined at first, approved by a person through the second process right
    after the deal was set: the player qualifies under it."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P-hand")
    first = send(
        client, world, event="deposit", player_id="P-hand", payout="25", txn_id="D-1", status="rejected"
    )
    assert not catalog_has_deal(late.node, world) and ledger(client) == []

    approved = late.http.post(
        f"/api/conversions/{first.json()['conversion_id']}/status",
        json={"status": "approved", "reason": "payment went through"},
        headers=late.auth,
    )

    assert approved.status_code == 200, approved.text
    assert [e["amount"] for e in ledger(client, kind="cpa")] == ["100.00"]


@pytest.mark.postgresql_only  # SQLite's writers take turns on the whole database
def test_a_deal_change_waits_for_a_group_that_checked_its_catalog_before_it(
    client: Client, world: World, late: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group checks its catalog, then prices and commits: a deal committed in between would be
    in force before the group's conversions are recorded, and they would be priced without it.
    The change waits for the group instead (the group holds the version's row FOR SHARE)."""
    register(late, world, world.alice_casino, "P-race")
    checked, go = threading.Event(), threading.Event()
    enqueue = outbound.enqueue

    def held(*args: Any) -> None:  # the group has checked and priced: hold it before its commit
        checked.set()
        go.wait(30)
        enqueue(*args)

    monkeypatch.setattr(outbound, "enqueue", held)
    with ThreadPoolExecutor(2) as pool:
        deposit = pool.submit(
            send, late, world, event="deposit", player_id="P-race", payout="25", txn_id="D-1"
        )
        assert checked.wait(30)
        change = pool.submit(deal, client, world.casino, CPA_100)
        try:
            eventually(lambda: change.done() or waiting_on_the_version(client.node))
            assert not change.done(), "the deal was committed while a group priced without it"
        finally:
            go.set()
        assert deposit.result().json()["result"] == "accepted"
        change.result()

    # Recorded before the deal was in force: no CPA; the next player's deposit pays one.
    assert ledger(client) == []
    register(late, world, world.alice_casino, "P-next")
    send(late, world, event="deposit", player_id="P-next", payout="25", txn_id="D-2")
    assert [e["amount"] for e in ledger(client, kind="cpa")] == ["100.00"]


def waiting_on_the_version(node: Node) -> bool:
    """Whether a transaction waits for a lock to change the catalog's version."""

    async def look() -> bool:
        async with node.runtime.db.read() as conn:
            found = await conn.execute(
                text(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE catalog_version%'"
                )
            )
            return found.first() is not None

    return node.call(look)
