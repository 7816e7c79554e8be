"""A conversion's deliveries to one destination are a queue (store/outbound.py): the first waits to
be sent, the ones after it are held and released one at a time as each before them ends. On rows
made by hand in a database of their own (no server's dispatcher beside them), on SQLite and
PostgreSQL; end to end in tests/web/test_outbound_order.py."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, text

from clickback.store import outbound
from clickback.store.bulk import insert_rows
from clickback.store.db import Database, connect
from clickback.store.migrate import upgrade
from clickback.store.outbound import DEAD, DELIVERED, FAILED, HELD, WAITING
from clickback.store.tables import outbound_deliveries
from tests.conftest import BACKENDS, PG_URL, scratch_database

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
LEASE = timedelta(minutes=1)
TRACKER, OTHER = "tracker.invalid", "other.invalid"


def made(n: int, conversion_id: int, status: str = "approved", destination: str = TRACKER) -> dict[str, Any]:
    """Delivery n (its id too, in a database of its own) as service.outbound.enqueue makes one."""
    return {
        "delivery_id": f"00000000-0000-0000-0000-{n:012d}",
        "template_id": 1,
        "affiliate_id": 1,
        "conversion_id": conversion_id,
        "event": "sale",
        "status": status,
        "method": "GET",
        "url": f"http://{destination}/pb?st={status}",
        "body": "",
        "content_type": "",
        "destination": destination,
        "state": WAITING,
        "attempts": 0,
        "next_at": NOW,
        "last_error": "",
        "created_at": NOW,
        "updated_at": NOW,
    }


def run(backend: str, tmp_path: Path, scenario: Callable[[Database], Awaitable[None]]) -> None:
    """`scenario` on a new database at head (one event loop: the connections are bound to it)."""

    async def main(url: str) -> None:
        async with opened(url) as db:
            await scenario(db)

    with scratch_database(backend, tmp_path) as url:
        asyncio.run(main(url))


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    db = connect(url)
    try:
        await upgrade(db)
        yield db
    finally:
        await db.close()


async def add(db: Database, rows: list[dict[str, Any]]) -> None:
    """Written as a postback group writes them: their states first (in_turn), in one transaction."""

    def work(conn: Connection) -> None:
        outbound.in_turn(conn, rows)
        insert_rows(conn, outbound_deliveries, rows)

    await db.run_write(work)


async def states(db: Database) -> list[str]:
    d = outbound_deliveries
    async with db.read() as conn:
        return list((await conn.execute(select(d.c.state).order_by(d.c.id))).scalars())


async def claim(db: Database, now: datetime = NOW) -> dict[int, outbound.Claimed]:
    return {c.id: c for c in await outbound.claim(db, "me", now, LEASE, 100, 100, [])}


async def end(db: Database, claimed: outbound.Claimed, state: str, at: datetime = NOW) -> outbound.Moved:
    """The attempt recorded as the dispatcher records it: `state` is what became of the delivery
    (waiting: to be tried again at `at`)."""
    attempt = outbound.Attempt(at, claimed.url, 200 if state == DELIVERED else 503, 1, "", "", "me")
    outcome = outbound.Outcome(state, at, False, state == DELIVERED)
    return await outbound.record_attempts(db, "me", [outbound.Recorded(claimed, attempt, outcome)], 50)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conversions_next_delivery_to_a_destination_is_held_until_the_one_before_it_ends(
    backend: str, tmp_path: Path
) -> None:
    async def scenario(db: Database) -> None:
        # One postback group: conversion 1 approved and rejected (the rejection behind the
        # approval), to another destination too; conversion 2 approved.
        await add(
            db,
            [made(1, 1), made(2, 1, "rejected"), made(3, 1, destination=OTHER), made(4, 2)],
        )
        # A later group: cancelled, behind both.
        await add(db, [made(5, 1, "cancelled")])
        assert await states(db) == [WAITING, HELD, WAITING, WAITING, HELD]

        claimed = await claim(db)
        assert sorted(claimed) == [1, 3, 4]  # each queue's first, not those behind it
        assert (await end(db, claimed[3], DELIVERED)).released == 0
        assert (await end(db, claimed[4], DELIVERED)).released == 0
        # The approval to be tried again in five minutes: still first, the others still held.
        later = NOW + timedelta(minutes=5)
        assert (await end(db, claimed[1], WAITING, later)).released == 0
        assert await claim(db) == {}
        assert await states(db) == [WAITING, HELD, DELIVERED, DELIVERED, HELD]

        # Its retry fails for good: the rejection is next (due at once), the cancellation after it.
        claimed = await claim(db, later)
        assert list(claimed) == [1]
        assert (await end(db, claimed[1], FAILED, later)).released == 1
        assert await states(db) == [FAILED, WAITING, DELIVERED, DELIVERED, HELD]
        claimed = await claim(db, later)
        assert list(claimed) == [2]
        assert (await end(db, claimed[2], DEAD, later)).released == 1
        claimed = await claim(db, later)
        assert list(claimed) == [5]
        assert (await end(db, claimed[5], DELIVERED, later)).released == 0
        assert await states(db) == [FAILED, DEAD, DELIVERED, DELIVERED, DELIVERED]

        # Nothing left in the queue: the next one waits for nobody.
        await add(db, [made(6, 1, "approved")])
        assert (await states(db))[-1] == WAITING

    run(backend, tmp_path, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_paused_destination_keeps_held_deliveries_held_and_resuming_sends_them_in_turn(
    backend: str, tmp_path: Path
) -> None:
    async def scenario(db: Database) -> None:
        await outbound.pause(db, TRACKER, "by hand", NOW)
        await add(db, [made(1, 1), made(2, 1, "rejected")])
        assert await claim(db) == {}
        assert [(d["waiting"], d["held"]) for d in await outbound.destinations(db, True)] == [(1, 1)]
        counts = await outbound.counts(db)
        assert (counts[WAITING], counts[HELD]) == (1, 1)

        assert await outbound.resume(db, TRACKER, NOW) == 1  # the first; the second is held
        claimed = await claim(db)
        assert list(claimed) == [1]
        assert (await end(db, claimed[1], DELIVERED)).released == 1
        assert list(await claim(db)) == [2]

    run(backend, tmp_path, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_sweep_releases_a_held_delivery_nothing_is_ahead_of(backend: str, tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        def stored(n: int, conversion_id: int, state: str, destination: str = TRACKER) -> dict[str, Any]:
            return made(n, conversion_id, destination=destination) | {"state": state}

        # Written as they are, past in_turn: as if a release had been missed.
        rows = [
            stored(1, 1, HELD),  # stranded: nothing ahead of it
            stored(2, 1, HELD),  # behind it
            stored(3, 2, WAITING),
            stored(4, 2, HELD),  # rightly held behind 3
            stored(5, 3, DELIVERED),
            stored(6, 3, HELD, OTHER),  # stranded, beside a waiting one to another destination
            stored(7, 3, WAITING),
        ]
        await db.run_write(lambda conn: insert_rows(conn, outbound_deliveries, rows))

        assert await outbound.release_stranded(db, NOW) == 2
        assert await states(db) == [WAITING, HELD, WAITING, HELD, DELIVERED, WAITING, WAITING]
        assert await outbound.release_stranded(db, NOW) == 0

    run(backend, tmp_path, scenario)


@pytest.mark.parametrize("backend", BACKENDS)
def test_replayed_deliveries_are_sent_again_in_turn(backend: str, tmp_path: Path) -> None:
    async def scenario(db: Database) -> None:
        await add(db, [made(1, 1), made(2, 1, "rejected")])
        assert (await end(db, (await claim(db))[1], DEAD)).released == 1
        assert (await end(db, (await claim(db))[2], DEAD)).released == 0

        # The destination is back: every dead one again, the approval first.
        assert await outbound.replay(db, None, DEAD, NOW) == 2
        assert await states(db) == [WAITING, HELD]
        # A held one is queued already: replaying it would send it out of turn.
        assert await outbound.replay(db, [2], None, NOW) == 0
        assert (await end(db, (await claim(db))[1], DELIVERED)).released == 1
        assert (await end(db, (await claim(db))[2], DELIVERED)).released == 0

        # Replayed while a later one waits: behind it, and then in the order they were made.
        await add(db, [made(3, 1, "cancelled")])
        assert await outbound.replay(db, [2, 1], None, NOW) == 2
        assert await states(db) == [HELD, HELD, WAITING]
        assert (await end(db, (await claim(db))[3], DELIVERED)).released == 1
        assert await states(db) == [WAITING, HELD, DELIVERED]


# PostgreSQL only, run whenever the suite has one: SQLite's writers exclude each other, so the race
# cannot happen there.
if PG_URL:

    def test_a_delivery_held_while_the_one_before_it_ends_is_released(tmp_path: Path) -> None:
        """READ COMMITTED: a postback's transaction finds the first delivery waiting and holds the
        new one behind it; meanwhile a dispatcher records the first as delivered and releases what is
        held. The postback's row lock on the first makes the dispatcher wait for its commit, so the
        release sees the new row; without it, the release ran before and the row was held for good."""

        async def scenario(db: Database) -> None:
            await add(db, [made(1, 1)])
            first = (await claim(db))[1]
            rejected = [made(2, 1, "rejected")]
            async with db.engine.begin() as postback:
                await postback.run_sync(outbound.in_turn, rejected)
                await postback.run_sync(insert_rows, outbound_deliveries, rejected)
                assert rejected[0]["state"] == HELD
                ending = asyncio.create_task(end(db, first, DELIVERED))
                await blocked_or_done(db, ending)
            assert (await ending).released == 1
            assert await states(db) == [DELIVERED, WAITING]

        run("postgresql", tmp_path, scenario)


async def blocked_or_done(db: Database, task: "asyncio.Task[Any]") -> None:
    """Once `task` has ended, or another session of this database waits for a lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while not task.done():
        async with db.read() as conn:
            if (await conn.execute(waiting)).scalar():
                return
        await asyncio.sleep(0.01)
