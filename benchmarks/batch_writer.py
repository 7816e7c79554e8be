#!/usr/bin/env python3
"""Click batch writer throughput, SQLite and PostgreSQL, against the driver's own ceiling.

For each database it writes the same synthetic clicks (1000 a batch unless --batch, 200 visitors a
link so the unique-click upsert does real work) through `store.clicks.write_batch` — the click
insert (COPY on PostgreSQL), the unique-visitor upsert and the hourly counters, one transaction a
batch — and, as the reference in the same run, the driver's own executemany of the same rows into a
copy of the clicks table with no key, no counters and no SQLAlchemy: the ceiling. It prints
rows/s for both and their ratio.

With --processes N (SQLite only), N processes write their share of the rows at the same time into
one SQLite file, as the workers of `clickback serve --workers N` do (each batch queues on the
file's write lock): the rate is all rows over the time from the common start to the last one done.

With --varied, the clicks look like a campaign's as the report rollups see them (ADR 14): 200
links, 30 countries, three devices, six OS and browsers, 50 sources, 30 landing pages, and each
link's own sub1 values (20,000 in all) and sub2 values, so a batch adds up to ten rollup rows per
click instead of a few per batch. --zones names the kept report zones (CLICKBACK_REPORT_ZONES).
--batch sets the clicks a transaction (1000, the server's default CLICKBACK_CLICK_BATCH_SIZE): the
rollups' rows per click fall as a batch grows (2.35 a varied click at 1,000, 1.06 at 5,000).
With --cost every click costs something (a CPC link's: two money columns more in every rollup row).

Usage: .venv/bin/python benchmarks/batch_writer.py [--rows 100000] [--pg postgresql+asyncpg://...]
           [--processes N] [--varied] [--zones UTC,Europe/Berlin] [--cost] [--batch 1000]
The PostgreSQL leg uses a scratch database (clickback_bench) it creates and drops.
"""

import argparse
import asyncio
import multiprocessing
import random
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from clickback.core.clickids import ClickIdCodec
from clickback.core.model import Click, Traits
from clickback.store.bulk import CLICK_COLUMNS
from clickback.store.clicks import _record, write_batch
from clickback.store.db import Database, connect
from clickback.store.migrate import upgrade

BATCH = 1000
WINDOW_MS = 24 * 3_600_000
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


VARIED = False
COSTED = False
ZONES: tuple[str, ...] = ("UTC",)


def synthetic(n: int) -> list[Click]:
    made = varied(n) if VARIED else plain(n)
    if COSTED:
        # A CPC of 0.05 EUR a click (0.08 from Germany), as core.cost works it out.
        return [c._replace(cost=800 if c.traits.country == "DE" else 500, cost_currency="EUR") for c in made]
    return made


def plain(n: int) -> list[Click]:
    start = datetime.now(UTC) - timedelta(hours=2)
    codec = ClickIdCodec(secrets.token_bytes(32))  # real, time-ordered IDs: index locality as in production
    traits = Traits("DE", "Hesse", "Frankfurt", 3320, "mobile", "Android", "Chrome Mobile", "")
    return [
        Click(
            click_id=codec.mint(start + timedelta(milliseconds=i)),
            clicked_at=start + timedelta(milliseconds=i),
            link_id=1 + i % 20,
            affiliate_id=1 + i % 5,
            offer_id=1 + i % 4,
            campaign="bench",
            subs=(f"s{i % 50}", "", "", "", ""),
            source="push",
            landing_page="lp1",
            ip="203.0.113.0",
            user_agent="Mozilla/5.0 (Linux; Android 14) Chrome/124.0 Mobile Safari/537.36",
            referrer="",
            traits=traits,
            visitor=f"{i % 200:032d}",
        )
        for i in range(n)
    ]


def varied(n: int) -> list[Click]:
    rnd = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=2)
    codec = ClickIdCodec(secrets.token_bytes(32))
    countries = [chr(65 + k // 26) + chr(65 + k % 26) for k in range(30)]
    out = []
    for i in range(n):
        link = 1 + min(int(rnd.paretovariate(1.0)) - 1, 199)
        traits = Traits(
            rnd.choice(countries[:5]) if rnd.random() < 0.8 else rnd.choice(countries),
            "",
            "",
            None,
            rnd.choice(("mobile", "mobile", "desktop", "tablet")),
            rnd.choice(("Android", "iOS", "Windows", "Mac OS X", "Linux", "Chrome OS")),
            rnd.choice(("Chrome Mobile", "Mobile Safari", "Chrome", "Firefox", "Edge", "Samsung Internet")),
            "",
        )
        out.append(
            Click(
                click_id=codec.mint(start + timedelta(milliseconds=i)),
                clicked_at=start + timedelta(milliseconds=i),
                link_id=link,
                affiliate_id=1 + link % 40,
                offer_id=1 + link % 12,
                campaign="bench",
                # Each link its own placements: 100 per link, 20,000 in all.
                subs=(f"l{link}-p{int(rnd.paretovariate(1.2)) % 100}", f"cr{rnd.randrange(20)}", "", "", ""),
                source=f"src{rnd.randrange(50)}",
                landing_page=f"lp{rnd.randrange(30)}",
                ip="203.0.113.0",
                user_agent="Mozilla/5.0 (Linux; Android 14) Chrome/124.0 Mobile Safari/537.36",
                referrer="",
                traits=traits,
                visitor=f"{i % 5000:032d}",
            )
        )
    return out


async def writer_rate(db: Database, rows: list[Click]) -> float:
    started = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        await write_batch(db, rows[i : i + BATCH], {}, WINDOW_MS)
    return len(rows) / (time.perf_counter() - started)


async def reference_rate(db: Database, rows: list[Click]) -> float:
    pg = db.dialect == "postgresql"
    names = ", ".join(CLICK_COLUMNS)
    marks = ", ".join(f"${i + 1}" if pg else "?" for i in range(len(CLICK_COLUMNS)))
    # what SQLAlchemy's SQLite DateTime stores
    when: Any = (lambda t: t) if pg else (lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f"))
    records = [_record(c, True, when) for c in rows]
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE clicks_bare AS SELECT * FROM clicks WHERE false"))
    started = time.perf_counter()
    for i in range(0, len(records), BATCH):
        async with db.write() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            insert = f"INSERT INTO clicks_bare ({names}) VALUES ({marks})"  # noqa: S608 - our names
            await driver.executemany(insert, records[i : i + BATCH])
    return len(records) / (time.perf_counter() - started)


async def measure(url: str, n: int) -> tuple[float, float]:
    db = connect(url, ZONES)
    try:
        await upgrade(db)
        reference = await reference_rate(db, synthetic(n))
        ours = await writer_rate(db, synthetic(n))
        async with db.read() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM clicks"))).scalar_one()
        assert stored == n, f"{stored} clicks stored, {n} written"
        return ours, reference
    finally:
        await db.close()


async def with_scratch_pg(admin_url: str, n: int) -> tuple[float, float]:
    admin = connect(admin_url)
    name = "clickback_bench"
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            await conn.execute(text(f"CREATE DATABASE {name}"))
        return await measure(admin_url.rsplit("/", 1)[0] + "/" + name, n)
    finally:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.close()


def _share(url: str, rows: list[Click], start: Any, done: Any, batch: int) -> None:
    global BATCH
    BATCH = batch  # a spawned process starts from the module's default

    async def write() -> None:
        db = connect(url)
        try:
            await write_batch(db, rows[:1], {}, WINDOW_MS)  # connections open, statements compiled
            start.wait()
            await writer_rate(db, rows[1:])
        finally:
            await db.close()
        done.put(time.perf_counter())

    asyncio.run(write())


def shared_file_rate(url: str, n: int, processes: int) -> float:
    """Rows/s of `processes` processes writing n rows between them into one SQLite file."""
    asyncio.run(_migrate(url))
    rows = synthetic(n)
    context = multiprocessing.get_context("spawn")
    start, done = context.Event(), context.Queue()
    shares = [rows[i::processes] for i in range(processes)]
    workers = [context.Process(target=_share, args=(url, share, start, done, BATCH)) for share in shares]
    for worker in workers:
        worker.start()
    time.sleep(5)  # every process has written its first row
    began = time.perf_counter()
    start.set()
    ended = max(done.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join()
    return (n - processes) / (ended - began)


async def _migrate(url: str) -> None:
    db = connect(url)
    try:
        await upgrade(db)
    finally:
        await db.close()


def main() -> None:
    global VARIED, COSTED, ZONES, BATCH
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default=DEFAULT_PG, help="admin URL; '' to skip PostgreSQL")
    parser.add_argument("--processes", type=int, default=1, help="SQLite: processes sharing one file")
    parser.add_argument("--varied", action="store_true", help="clicks with a campaign's variety")
    parser.add_argument("--zones", default="UTC", help="kept report zones, comma-separated")
    parser.add_argument("--cost", action="store_true", help="every click costs something (a CPC link)")
    parser.add_argument("--batch", type=int, default=BATCH, help="clicks a transaction")
    args = parser.parse_args()
    if not 1 <= args.batch <= 100_000:
        parser.error("--batch must be between 1 and 100,000")
    VARIED, COSTED, ZONES, BATCH = args.varied, args.cost, tuple(args.zones.split(",")), args.batch
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        results["SQLite"] = asyncio.run(measure(url, args.rows))
        if args.processes > 1:
            shared = f"sqlite+aiosqlite:///{Path(tmp) / 'shared.db'}"
            results[f"SQLite, {args.processes} proc."] = (
                shared_file_rate(shared, args.rows, args.processes),
                results["SQLite"][1],
            )
    if args.pg:
        results["PostgreSQL"] = asyncio.run(with_scratch_pg(args.pg, args.rows))
    print(f"{'database':<20}{'write_batch rows/s':>20}{'driver executemany rows/s':>27}{'ratio':>8}")
    for name, (ours, reference) in results.items():
        print(f"{name:<20}{ours:>20,.0f}{reference:>27,.0f}{ours / reference:>8.2f}")


if __name__ == "__main__":
    main()
