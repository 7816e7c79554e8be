"""Writing clicks in batches with their report counters, and finding clicks by ID."""

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import pairwise
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, delete
from sqlalchemy.util import await_only

from clickback.core.model import Click, Traits
from clickback.store.bulk import ClickBulk, bulk_for
from clickback.store.db import Database
from clickback.store.rollups import click_rows, no_pause
from clickback.store.tables import (
    MONEY_SCALE,
    click_refusals,
    quarantined_clicks,
    report_currencies,
    report_values,
    report_weeks,
    visitors,
)
from clickback.store.weeks import WEEK_KEY, weekly, weeks_between


async def write_batch(
    db: Database,
    batch: Sequence[Click],
    refusals: Mapping[tuple[int, str, str], int],
    unique_window_ms: int,
) -> int:
    """One transaction: which clicks are unique, the clicks themselves, the report rollups of the
    clicks actually inserted, and the counts of refused clicks keyed (hour, reason, code).

    Idempotent: a click already stored (a retried batch, a replayed spool) is skipped, and only
    the rows the database reports as inserted are counted, so nothing is counted twice.
    Returns how many clicks were inserted.

    Through Database.run_write: on SQLite the whole batch is one call into the writer thread,
    which takes the write lock only for the time the batch's own work takes. Run on the event
    loop, a batch awaited the driver's thread a dozen times, each await waiting for a turn of a
    loop busy with clicks, all the while holding the lock every other process's writer queued
    on: in two processes taking clicks as fast as they could, a batch of 1,000 took 0.4 to 5 s."""
    refused = [
        {"hour": hour, "reason": reason, "code": code, "clicks": n}
        for (hour, reason, code), n in refusals.items()
    ]
    add_refused = db.insert_adding(click_refusals, ["clicks"])
    # On PostgreSQL the batch is worked out on the event loop (Database.run_write), between the
    # clicks it answers: the work pauses between its pieces for the clicks waiting, or a batch of
    # 500 held them 8 to 20 ms. On SQLite it runs in a thread of its own.
    pause = _let_the_loop_run if db.sync_engine is None else no_pause

    def write(conn: Connection) -> int:
        inserted: set[str] = set()
        if batch:
            bulk = bulk_for(conn)
            # Each click's time in ms, computed once: (ms, click) pairs.
            stamped = [(int(c.clicked_at.timestamp() * 1000), c) for c in batch]
            unique = _unique(bulk, stamped, unique_window_ms)
            pause()
            when = bulk.time_value
            inserted = bulk.insert_clicks([_record(c, c.click_id in unique, when) for c in batch])
            counted = [s for s in stamped if s[1].click_id in inserted]
            rollups = click_rows(counted, unique, db.local_days, pause=pause)
            for table, key, measures, rows in rollups:
                if not rows:
                    continue
                bulk.add_clicks(table, key, measures, rows)
                if table is report_values:
                    # A drained spool's clicks of a week over: added to the week's sums too.
                    seconds = [ms // 1000 for ms, _ in counted]
                    touched = weeks_between(db, min(seconds), max(seconds))
                    weeks = weekly(conn, db, rows, len(measures), ordered=True, touched=touched)
                    if weeks:
                        bulk.add_clicks(report_weeks, WEEK_KEY, measures, weeks)
            costs = {(c.affiliate_id, c.offer_id, c.cost_currency) for _, c in counted if c.cost}
            if costs:
                held = [{"affiliate_id": a, "offer_id": o, "currency": c} for a, o, c in sorted(costs)]
                conn.execute(db.insert_ignore(report_currencies), held)
        if refused:
            conn.execute(add_refused, refused)
        return len(inserted)

    return await db.run_write(write)


def _let_the_loop_run() -> None:
    await_only(asyncio.sleep(0))


async def quarantine(db: Database, rows: Sequence[tuple[str, str, str]], at: datetime) -> None:
    """Keep the clicks the database refused, as (click ID, reason, the click as text), apart from
    the others; a click kept already stays as it was."""
    if rows:
        keep = [{"click_id": k, "quarantined_at": at, "reason": r, "click": c} for k, r, c in rows]
        async with db.write() as conn:
            await conn.execute(db.insert_ignore(quarantined_clicks), keep)


def _unique(bulk: ClickBulk, stamped: Sequence[tuple[int, Click]], window_ms: int) -> set[str]:
    """Click IDs whose visitor had not clicked the same link within the window before them.

    One upsert per (link, visitor) decides the batch's first click of each atomically, also
    against other processes' batches: the first click is unique if the visitor's row names it
    after the upsert. Its ID, not its time: another process's click of the same visitor in the
    same millisecond would find its own time there too. Later clicks of the same visitor in the
    batch (a spool drained after a long outage can span hours) are judged against the one before
    them."""
    # (ms, click) pairs in time order within each run.
    runs: dict[tuple[int, str], list[tuple[int, Click]]] = {}
    for pair in sorted(stamped, key=itemgetter(0)):
        runs.setdefault((pair[1].link_id, pair[1].visitor), []).append(pair)
    # In key order, as the rollups' rows (store.rollups.click_rows): SQLite walks its B-tree in
    # order, and two PostgreSQL processes lock the rows they share alike.
    rows = sorted((key[0], key[1], run[-1][0], run[0][0], run[0][1].click_id) for key, run in runs.items())
    won = {(link, visitor): click_id for link, visitor, click_id in bulk.upsert_visitors(rows, window_ms)}
    unique = set()
    for key, run in runs.items():
        if won.get(key) == run[0][1].click_id:
            unique.add(run[0][1].click_id)
        unique.update(b.click_id for (a_ms, _), (b_ms, b) in pairwise(run) if b_ms - a_ms >= window_ms)
    return unique


async def prune_visitors(db: Database, before_ms: int) -> None:
    """Visitors unseen for longer than the window decide nothing any more."""
    await db.run_write(lambda conn: conn.execute(delete(visitors).where(visitors.c.last_seen < before_ms)))


def _record(c: Click, is_unique: bool, when: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """A clicks row in CLICK_COLUMNS order, its time made by `when`."""
    t = c.traits
    # fmt: off
    return (
        c.click_id, when(c.clicked_at), c.link_id, c.affiliate_id, c.offer_id, c.campaign, *c.subs,
        c.source, c.landing_page, c.ip, c.user_agent, c.referrer,
        t.country, t.region, t.city, t.device_type, t.os, t.browser, t.bot, t.asn,
        c.visitor, is_unique, c.test, c.cost, c.cost_currency,
    )
    # fmt: on


def _click(r: Mapping[str, Any]) -> Click:
    traits = Traits(
        r["country"], r["region"], r["city"], r["asn"], r["device_type"], r["os"], r["browser"], r["bot"]
    )
    # Positional (see take_click): click_id, clicked_at, link, affiliate, offer, campaign, subs,
    # source, landing page, ip, user agent, referrer, traits, visitor.
    return Click(
        r["click_id"],
        r["clicked_at"],
        r["link_id"],
        r["affiliate_id"],
        r["offer_id"],
        r["campaign"],
        (r["sub1"], r["sub2"], r["sub3"], r["sub4"], r["sub5"]),
        r["source"],
        r["landing_page"],
        r["ip"],
        r["user_agent"],
        r["referrer"],
        traits,
        r["visitor"],
        r["test"],
        int(r["cost"] * MONEY_SCALE),  # read as money, kept on a Click in units (core/cost.py)
        r["cost_currency"],
    )


def clicks_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Click]:
    """Click rows (as select_keys reads them) by click ID."""
    return {r["click_id"]: _click(r) for r in rows}
