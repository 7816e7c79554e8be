"""The click writer against real databases: uniqueness, exact counters, and outages survived
through the spool with nothing lost and nothing counted twice."""

import asyncio
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from clickback.core.model import Click, Traits
from clickback.core.reasons import Reason, Rejected
from clickback.service import clickwriter
from clickback.service.clickwriter import ClickWriter
from clickback.service.spool import Spool, encode
from clickback.store.bulk import _sqlite_insert
from clickback.store.clicks import write_batch
from clickback.store.db import Database, connect
from clickback.store.tables import click_refusals, clicks, quarantined_clicks, report_hours, report_values
from tests.conftest import Client, World

WINDOW_MS = 24 * 3_600_000
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def make(n: int, *, link_id: int, visitor: str = "v1", at: datetime = T0, bot: str = "") -> Click:
    return Click(
        click_id=f"test{n:028d}",
        clicked_at=at,
        link_id=link_id,
        affiliate_id=1,
        offer_id=1,
        campaign="",
        subs=("", "", "", "", ""),
        source="",
        landing_page="",
        ip="",
        user_agent="",
        referrer="",
        traits=Traits(country="DE", device_type="bot" if bot else "mobile", bot=bot),
        visitor=visitor,
    )


def counts(client: Client) -> tuple[int, int, int]:
    async def read() -> tuple[int, int, int]:
        async with client.node.runtime.db.read() as conn:
            rows = (await conn.execute(select(func.count()).select_from(clicks))).scalar_one()
            stats = (
                await conn.execute(
                    select(func.sum(report_hours.c.clicks), func.sum(report_hours.c.unique_clicks))
                )
            ).one()
        return int(rows), int(stats[0] or 0), int(stats[1] or 0)

    return client.node.call(read)


def test_unique_means_first_click_of_a_visitor_on_a_link_within_the_window(
    client: Client, world: World
) -> None:
    db = client.node.runtime.db
    hour = timedelta(hours=1)
    batches = [
        [make(1, link_id=1), make(2, link_id=1, at=T0 + hour), make(3, link_id=2)],
        [make(4, link_id=1, visitor="v2"), make(5, link_id=1, at=T0 + 2 * hour)],
        # the window runs from the visitor's last click (T0 + 2 h), not from the first one
        [make(6, link_id=1, at=T0 + 25 * hour)],
        [make(7, link_id=1, at=T0 + 49 * hour)],
        # a batch spanning more than the window (a spool drained after a long outage)
        [make(8, link_id=3, at=T0), make(9, link_id=3, at=T0 + hour), make(10, link_id=3, at=T0 + 30 * hour)],
    ]

    for batch in batches:
        client.node.call(lambda b=batch: write_batch(db, b, {}, WINDOW_MS))

    assert unique_ids(client) == {"1", "3", "4", "7", "8", "10"}
    assert counts(client) == (10, 10, 6)


def unique_ids(client: Client) -> set[str]:
    """The stored clicks marked unique, by their number in `make`."""

    async def read() -> set[str]:
        async with client.node.runtime.db.read() as conn:
            rows = await conn.execute(select(clicks.c.click_id).where(clicks.c.is_unique))
            return {str(int(r.click_id[4:])) for r in rows}

    return client.node.call(read)


def test_a_visitors_clicks_in_one_millisecond_written_by_two_processes_count_one_unique(
    client: Client, world: World
) -> None:
    # A double click (or a prefetch and the click) answered by two worker processes: each
    # process's writer has one of the two clicks, of the same visitor, link and millisecond.
    db = client.node.runtime.db
    same_ms = T0 + timedelta(microseconds=123)
    first, second = make(1, link_id=1, at=same_ms), make(2, link_id=1, at=T0 + timedelta(microseconds=456))

    for batch in ([first], [second]):
        client.node.call(lambda b=batch: write_batch(db, b, {}, WINDOW_MS))

    assert unique_ids(client) == {"1"}
    assert counts(client) == (2, 2, 1)

    # Either batch written again (a retried flush, a replayed spool) stores and counts nothing.
    for batch in ([second], [first], [first, second]):
        client.node.call(lambda b=batch: write_batch(db, b, {}, WINDOW_MS))

    assert unique_ids(client) == {"1"}
    assert counts(client) == (2, 2, 1)


def test_a_batch_written_twice_is_stored_and_counted_once(client: Client, world: World) -> None:
    db = client.node.runtime.db
    batch = [make(n, link_id=1, visitor=f"v{n}") for n in range(20)]

    for _ in range(2):
        client.node.call(lambda: write_batch(db, batch, {}, WINDOW_MS))

    assert counts(client) == (20, 20, 20)


def test_the_rollups_keep_every_text_exactly_and_count_each_value(client: Client, world: World) -> None:
    # PostgreSQL takes a batch's rollup texts as a JSON array and its numbers as array text
    # (store/bulk.py): quotes, backslashes, braces, commas, the word NULL and any Unicode must
    # come back as sent, each value its own row with its own counts.
    db = client.node.runtime.db
    values = [
        'say "hi"',
        "back\\slash",
        "{braces},comma",
        "NULL",
        "",
        "caf\u00e9 \U0001f3b0",
        "\u0645\u0631\u062d\u0628\u0627",
    ]
    batch = [
        make(n, link_id=1, visitor=f"v{n}")._replace(subs=(value, "", "", "", ""))
        for n, value in enumerate(values * 2 + values[:1])
    ]
    client.node.call(lambda: write_batch(db, batch, {}, WINDOW_MS))

    async def sub1_rows() -> dict[str, tuple[int, int]]:
        async with db.read() as conn:
            rows = await conn.execute(
                select(report_values.c.value, report_values.c.clicks, report_values.c.unique_clicks).where(
                    report_values.c.dimension == "sub1", report_values.c.zone == "UTC"
                )
            )
            return {r.value: (r.clicks, r.unique_clicks) for r in rows}

    assert client.node.call(sub1_rows) == {v: (3, 3) if v == values[0] else (2, 2) for v in values}


def test_batches_of_every_size_share_a_few_statements(client: Client, world: World) -> None:
    # SQLite keeps each statement text it has seen compiled (128 a connection), at 0.6 MB for
    # 200 rows: one text per batch length made a worker grow by 25 MB in 20 s of load.
    db = client.node.runtime.db
    sizes = [*range(1, 30), 127, 128, 129, 300]
    batches, start = [], 0
    for size in sizes:
        batches.append([make(n, link_id=1, visitor=f"v{n}") for n in range(start, start + size)])
        start += size

    for batch in batches:
        client.node.call(lambda b=batch: write_batch(db, b, {}, WINDOW_MS))

    assert _sqlite_insert.cache_info().currsize <= 8
    assert counts(client)[0] == sum(sizes)


def writer(db: Database, spool_dir: Path, *, durable: bool = False, max_pending: int = 10_000) -> ClickWriter:
    return ClickWriter(
        db,
        lambda: datetime.now(UTC),
        batch_size=100,
        flush_seconds=0.5,
        max_pending=max_pending,
        unique_window_ms=WINDOW_MS,
        spool=Spool(spool_dir),
        durable=durable,
    )


def test_clicks_taken_while_the_database_is_down_are_spooled_then_written_once(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime
    taken = [make(n, link_id=1, visitor=f"v{n}") for n in range(250)]

    async def outage() -> tuple[bool, int]:
        down = connect("postgresql+asyncpg://postgres@127.0.0.1:1/none")
        try:
            stranded = writer(down, tmp_path)
            for c in taken:
                await stranded.take(c)
            try:
                await stranded.flush()
                failed = False
            except Exception:
                failed = True
            await stranded.close()  # SIGTERM while the database is still down
            return failed, stranded.spilled
        finally:
            await down.close()

    async def recovery() -> int:
        recovered = writer(live.db, tmp_path)
        written = await recovered.flush()
        await recovered.flush()  # nothing left, nothing written twice
        await recovered.close()
        return written

    assert client.node.call(outage) == (True, 250)
    assert len(list(tmp_path.iterdir())) == 1
    assert client.node.call(recovery) == 250
    assert counts(client) == (250, 250, 250)
    assert list(tmp_path.iterdir()) == []


def test_durable_mode_clicks_left_by_a_killed_process_are_recovered(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime
    taken = [make(n, link_id=1, visitor=f"v{n}") for n in range(30)]

    async def killed() -> None:
        crashed = writer(live.db, tmp_path, durable=True)
        for c in taken:
            await crashed.take(c)
        # kill -9: no flush, no close; only what take() put on disk remains. Dropping the
        # segment handles releases the flock as the kernel would for a dead process.
        for segment in [crashed.spool._current, *crashed.spool._mirrors]:
            if segment is not None:
                segment.file.close()

    async def restarted() -> int:
        fresh = writer(live.db, tmp_path, durable=True)
        written = await fresh.flush()
        await fresh.close()
        return written

    client.node.call(killed)
    assert client.node.call(restarted) == 30
    assert counts(client) == (30, 30, 30)


def test_a_full_buffer_moves_its_backlog_to_the_spool_and_keeps_redirecting(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime
    taken = [make(n, link_id=1, visitor=f"v{n}") for n in range(25)]

    async def long_outage() -> tuple[int, int, int]:
        stranded = writer(live.db, tmp_path, max_pending=10)
        for c in taken:
            await stranded.take(c)
        in_memory = stranded.pending
        files = stranded.spool.files
        written = await stranded.flush()  # the database is back: memory, then the spool
        await stranded.close()
        return in_memory, files, written

    assert client.node.call(long_outage) == (5, 2, 25)
    assert counts(client) == (25, 25, 25)
    assert list(tmp_path.iterdir()) == []


def test_a_full_buffer_that_cannot_reach_the_disk_keeps_its_clicks(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime
    spool_dir = tmp_path / "spool"

    async def outage_without_disk() -> tuple[int, int, int]:
        stranded = writer(live.db, spool_dir, max_pending=10)
        shutil.rmtree(spool_dir)  # the disk under the spool is gone too
        for n in range(25):
            await stranded.take(make(n, link_id=1, visitor=f"v{n}"))
        in_memory, failures = stranded.pending, stranded.spool_failures
        written = await stranded.flush()  # the database is back
        return in_memory, failures, written

    in_memory, failures, written = client.node.call(outage_without_disk)
    assert (in_memory, written) == (25, 25)
    assert failures >= 1
    assert counts(client) == (25, 25, 25)


def test_stopping_lets_the_running_flush_finish_and_writes_everything(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime
    taken = [make(n, link_id=1, visitor=f"v{n}") for n in range(300)]

    async def shutdown_under_load() -> int:
        w = writer(live.db, tmp_path)
        running = asyncio.create_task(w.run())
        for i, c in enumerate(taken):
            await w.take(c)  # batch size 100: run() is woken to flush as clicks arrive
            if i % 50 == 0:
                await asyncio.sleep(0)  # yield, as a server's loop does between requests
        w.stop()
        await asyncio.wait_for(running, 30)
        await w.close()
        return w.pending

    assert client.node.call(shutdown_under_load) == 0
    assert counts(client) == (300, 300, 300)


def test_a_durable_click_waiting_for_its_fsync_survives_a_flush_and_a_kill(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime

    async def race() -> None:
        w = writer(live.db, tmp_path, durable=True)
        taking = asyncio.ensure_future(w.take(make(1, link_id=1)))
        await asyncio.sleep(0)  # the click's line is written; its group fsync has not run
        await w.flush()  # rotates and deletes the segment holding that line
        await taking  # the redirect would go out now
        for segment in [w.spool._current, *w.spool._mirrors]:  # kill -9
            if segment is not None:
                segment.file.close()

    async def restart() -> None:
        fresh = writer(live.db, tmp_path, durable=True)
        await fresh.flush()
        await fresh.close()

    client.node.call(race)
    client.node.call(restart)
    assert counts(client)[0] == 1


def test_a_broken_spool_disk_does_not_stop_durable_clicks(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime
    spool_dir = tmp_path / "spool"

    async def scenario() -> tuple[int, int, int]:
        w = writer(live.db, spool_dir, durable=True)
        shutil.rmtree(spool_dir)  # the disk under the spool is gone
        for n in range(3):
            await w.take(make(n, link_id=1, visitor=f"v{n}"))
        failures, pending = w.spool_failures, w.pending
        written = await w.flush()
        return failures, pending, written

    assert client.node.call(scenario) == (3, 3, 3)
    assert counts(client)[0] == 3


def test_a_click_the_database_refuses_is_quarantined_and_the_rest_stored(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime
    pg = live.db.dialect == "postgresql"
    # A value too long for its column (what a zone ID made of an address): PostgreSQL refuses
    # it, SQLite, which checks no lengths, stores it. Text that is not Unicode: both refuse it.
    too_long = make(37, link_id=1, visitor="v37")._replace(ip="fe80::1%" + "z" * 40)
    not_text = make(180, link_id=1, visitor="v180")._replace(source="\ud800")
    batch = [make(n, link_id=1, visitor=f"v{n}") for n in range(250) if n not in (37, 180)]
    batch[37:37] = [too_long]
    batch[180:180] = [not_text]
    # A spool file a dead process left: good clicks, one the database refuses, a damaged line.
    Spool(tmp_path).spill([make(n, link_id=1, visitor=f"v{n}") for n in range(300, 310)])
    [left] = tmp_path.iterdir()
    with left.open("ab") as f:
        f.write(encode(make(310, link_id=1)._replace(referrer="\udfff")) + b"{damaged\n")
    before = client.api("GET", "/runtime")["clicks_quarantined"]

    async def refused_in_memory() -> int:
        for c in batch:
            live.writer.put(c)
        live.writer.refuse(Rejected(Reason.UNKNOWN_LINK, "gone"), T0)
        return await live.writer.flush()

    async def restart_with_the_spool_file() -> tuple[int, int]:
        w = writer(live.db, tmp_path)
        written = await w.flush()
        for c in [make(n, link_id=1, visitor=f"v{n}") for n in range(400, 405)]:  # later clicks
            await w.take(c)
        written += await w.flush()
        await w.close()
        return written, w.quarantined

    async def kept_apart() -> tuple[dict[str, str], int]:
        async with live.db.read() as conn:
            rows = await conn.execute(select(quarantined_clicks))
            refused = await conn.execute(select(func.sum(click_refusals.c.clicks)))
            return {r.click_id: r.reason for r in rows}, int(refused.scalar_one())

    assert client.node.call(refused_in_memory) == (248 if pg else 249)
    assert client.api("GET", "/runtime")["clicks_quarantined"] - before == (2 if pg else 1)
    assert client.node.call(restart_with_the_spool_file) == (15, 2)
    assert list(tmp_path.iterdir()) == []
    kept, refusals = client.node.call(kept_apart)
    ids = {not_text.click_id, make(310, link_id=1).click_id} | ({too_long.click_id} if pg else set())
    assert {k for k in kept if not k.startswith("line:")} == ids
    assert len(kept) == len(ids) + 1  # and the damaged line
    assert "surrogates not allowed" in kept[not_text.click_id]
    assert not pg or "value too long" in kept[too_long.click_id]
    stored = 263 if pg else 264
    assert counts(client) == (stored, stored, stored)
    assert refusals == 1  # counted once, though its batch was refused


def test_a_flush_ends_while_traffic_outruns_the_writer_and_spills(
    client: Client, world: World, tmp_path: Path
) -> None:
    live = client.node.runtime

    async def overload() -> tuple[int, int, int, int]:
        w = writer(live.db, tmp_path, max_pending=10)
        for n in range(10):  # the 10th spills the backlog to the spool
            w.put(make(n, link_id=1, visitor=f"v{n}"))
        flushing = asyncio.ensure_future(w.flush())
        await asyncio.sleep(0)  # let the flush start: it waits for its first batch to be written
        for n in range(10, 20):  # meanwhile the traffic spills again
            w.put(make(n, link_id=1, visitor=f"v{n}"))
        first = await flushing
        left = w.spool.files
        second = await w.flush()
        await w.close()
        return first, left, second, w.write_capacity

    first, left, second, capacity = client.node.call(overload)
    assert (first, left, second) == (10, 1, 10)
    assert capacity > 0
    assert counts(client) == (20, 20, 20)


def test_a_held_redirect_goes_at_the_hold_limit_and_holds_stop_while_the_traffic_outruns_the_writer(
    client: Client, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = client.node.runtime
    monkeypatch.setattr(clickwriter, "HOLD_SECONDS", 0.3)
    monkeypatch.setattr(clickwriter, "STALLED_SECONDS", 60.0)  # the writer counts as storing throughout

    async def outrun() -> tuple[list[bool], list[bool], float, list[bool], list[bool]]:
        w = writer(live.db, tmp_path)  # batches of 100: held from 200 waiting
        await w.take(make(0, link_id=1))
        await w.flush()  # the writer is storing batches
        w.failing = 1  # ... until a flush fails: the database is away, nobody is held
        failing = [w.put(make(n, link_id=1, visitor=f"v{n}")) is not None for n in range(1, 202)]
        w.failing = 0
        waits = [w.put(make(n, link_id=1, visitor=f"v{n}")) for n in range(202, 205)]
        started = time.monotonic()
        await asyncio.gather(*(h for h in waits if h is not None))  # the writer never caught up
        waited = time.monotonic() - started
        # Holding did not keep the traffic in step: the next redirects go at once ...
        after = [w.put(make(n, link_id=1, visitor=f"v{n}")) is not None for n in range(205, 210)]
        await w.flush()  # ... until the writer has caught up
        monkeypatch.setattr(clickwriter, "HOLD_SECONDS", 60.0)
        holds = [w.put(make(n, link_id=1, visitor=f"v{n}")) for n in range(210, 412)]
        holding = asyncio.gather(*(h for h in holds if h is not None))
        await asyncio.sleep(0)  # they wait ...
        w.stop()  # ... until a shutdown lets them go, long before the limit
        await asyncio.wait_for(holding, 30)
        await w.close()
        return failing, [h is not None for h in waits], waited, after, [h is not None for h in holds]

    failing, held, waited, after, again = client.node.call(outrun)
    assert failing == [False] * 201
    assert held == [True] * 3
    assert waited >= 0.29  # held for the limit (the loop may run a timer up to a clock tick early)
    assert after == [False] * 5
    assert again == [False] * 200 + [True] * 2  # from the click after two batches waited
    assert counts(client) == (412, 412, 412)
