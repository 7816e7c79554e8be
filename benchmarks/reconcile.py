#!/usr/bin/env python3
"""How long a large operator's report takes to reconcile (issue 15: 100,000 lines in under 30 s).

A fresh database (a SQLite file, or a new PostgreSQL database with --pg) with an advertiser, an
affiliate's link and --known players of it (a fifth of the report's by default, written straight
into the players table; on PostgreSQL then ANALYZE, as autovacuum would have); then a
MyAffiliates-shaped CSV of --rows lines (a BOM, semicolons, decimal commas, Windows line ends;
one line a player, every 1,000th line bad) is reconciled by
the service the API and the CLI call (service/reconciliations.reconcile): read, checked, row keys
looked up, clickback's side gathered, compared, and every line and item written. Prints the
seconds of each run and the lines per second; the figure is the median.

Usage: .venv/bin/python benchmarks/reconcile.py [--rows 100000] [--known 20000] [--runs 3]
           [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime

from sqlalchemy import insert, text

from clickback.core.audit import SYSTEM
from clickback.service.reconciliations import reconcile
from clickback.store import admin
from clickback.store.catalog import load_catalog
from clickback.store.db import connect
from clickback.store.migrate import upgrade
from clickback.store.tables import players


def admin_sql(url: str, statement: str) -> None:
    """CREATE or DROP DATABASE, outside a transaction."""

    async def run() -> None:
        db = connect(url)
        try:
            async with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                await conn.execute(text(statement))
        finally:
            await db.close()

    asyncio.run(run())


def report(rows: int, month: str) -> bytes:
    lines = ["PLAYER_ID;TOKEN;JOINED_DATE;FIRST_DEPOSIT_DATE;DEPOSITS;NET_REVENUE;CPA;REV_SHARE;CURRENCY"]
    day = f"03.{month[5:]}.{month[:4]}"
    for n in range(rows):
        deposits = "lots" if n % 1000 == 999 else f"{n % 500},{n % 100:02d}"
        lines.append(f"P-{n};code-{n % 50};{day};{day};{deposits};{n % 70 - 20},50;100,00;0,00;EUR")
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n"


async def run_once(url: str, data: bytes, known: int, month: str) -> float:
    db = connect(url)
    try:
        await upgrade(db)
        now = datetime.now(UTC)
        adv = await admin.create_advertiser(db, "Operator", now)
        async with db.write() as conn:
            rows = [
                {
                    "advertiser_id": adv["id"],
                    "player_id": f"P-{n}",
                    "click_id": f"c{n:031d}",
                    "link_id": 1,
                    "affiliate_id": 1 + n % 5,
                    "offer_id": 1,
                    "country": "DE",
                    "sub1": "",
                    "first_seen_at": now,
                    "registered_at": now,
                }
                for n in range(0, known * 5, 5)
            ]
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(players), rows[start : start + 5000])
        if db.dialect == "postgresql":
            # The statistics autovacuum keeps on a database in use (it gathers them about once a
            # minute, after a run would be over), as benchmarks/postbacks.py does.
            async with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                await conn.execute(text("ANALYZE"))
        catalog = await load_catalog(db)
        started = time.perf_counter()
        stages: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if done >= total:
                stages[stage] = time.perf_counter() - started - sum(stages.values())

        done = await reconcile(db, catalog, adv["id"], data, "big.csv", month, None, SYSTEM, now, progress)
        elapsed = time.perf_counter() - started
        rec = done.reconciliation
        print(
            f"  {elapsed:6.2f} s  {rec['lines']:,} lines ({rec['imported']:,} imported, {rec['bad']:,} bad), "
            f"{rec['items']:,} items, {rec['lines'] / elapsed:,.0f} lines/s; "
            + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stages.items())
        )
        return elapsed
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--known", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg", help="a PostgreSQL server's URL: each run gets a new database on it")
    args = parser.parse_args()
    month = datetime.now(UTC).strftime("%Y-%m")
    data = report(args.rows, month)
    print(f"{args.rows:,} lines, {len(data) / 1e6:.1f} MB, {args.known:,} players known to clickback")
    times = []
    for n in range(args.runs):
        if args.pg:
            name = f"clickback_bench_reconcile_{n}"
            admin_sql(args.pg, f"DROP DATABASE IF EXISTS {name}")
            admin_sql(args.pg, f"CREATE DATABASE {name}")
            url = args.pg.rsplit("/", 1)[0] + "/" + name
            times.append(asyncio.run(run_once(url, data, args.known, month)))
            admin_sql(args.pg, f"DROP DATABASE {name}")
        else:
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite+aiosqlite:///{folder}/bench.db"
                times.append(asyncio.run(run_once(url, data, args.known, month)))
    print(f"median {statistics.median(times):.2f} s ({'PostgreSQL' if args.pg else 'SQLite'})")


if __name__ == "__main__":
    main()
