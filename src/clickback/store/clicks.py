"""Writing clicks in batches with their report counters, and finding clicks by ID."""

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from sqlalchemy import case, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.model import Click, Traits
from clickback.store.db import Database
from clickback.store.tables import click_refusals, click_stats, clicks, hour_of, visitors

CLICK_COLUMNS = [c.name for c in clicks.columns]


def _ms(click: Click) -> int:
    return int(click.clicked_at.timestamp() * 1000)


async def write_batch(
    db: Database,
    batch: Sequence[Click],
    refusals: Mapping[tuple[int, str, str], int],
    unique_window_ms: int,
) -> int:
    """One transaction: which clicks are unique, the clicks themselves, the hourly counters of the
    clicks actually inserted, and the counts of refused clicks keyed (hour, reason, code).

    Idempotent: a click already stored (a retried batch, a replayed spool) is skipped, and only
    the rows the database reports as inserted are counted, so nothing is counted twice.
    Returns how many clicks were inserted."""
    async with db.write() as conn:
        inserted: set[str] = set()
        if batch:
            unique = await _unique(db, conn, batch, unique_window_ms)
            rows = [_row(c, c.click_id in unique) for c in batch]
            inserted = await _insert(db, conn, rows)
            await _count(db, conn, [c for c in batch if c.click_id in inserted], unique)
        refused = [
            {"hour": hour, "reason": reason, "code": code, "clicks": n}
            for (hour, reason, code), n in refusals.items()
        ]
        if refused:
            await conn.execute(db.insert_adding(click_refusals, ["clicks"]), refused)
    return len(inserted)


async def _unique(db: Database, conn: AsyncConnection, batch: Sequence[Click], window_ms: int) -> set[str]:
    """Click IDs whose visitor had not clicked the same link within the window before them.

    One upsert per (link, visitor) decides the batch's first click of each atomically, also
    against other processes' batches; later clicks of the same visitor in the batch (a spool
    drained after a long outage can span hours) are judged against the one before them."""
    runs: dict[tuple[int, str], list[Click]] = {}
    for click in sorted(batch, key=_ms):
        runs.setdefault((click.link_id, click.visitor), []).append(click)
    stmt = db.upsert(visitors)
    first, last = stmt.excluded.unique_at, stmt.excluded.last_seen
    stmt = stmt.on_conflict_do_update(
        index_elements=[visitors.c.link_id, visitors.c.visitor],
        set_={
            "unique_at": case((visitors.c.last_seen <= first - window_ms, first), else_=visitors.c.unique_at),
            # A replayed (older) click must not move the visitor back in time.
            "last_seen": case((last > visitors.c.last_seen, last), else_=visitors.c.last_seen),
        },
    ).returning(visitors.c.link_id, visitors.c.visitor, visitors.c.unique_at)
    rows = [
        {"link_id": key[0], "visitor": key[1], "unique_at": _ms(run[0]), "last_seen": _ms(run[-1])}
        for key, run in runs.items()
    ]
    unique_at = {(r.link_id, r.visitor): r.unique_at for r in await conn.execute(stmt, rows)}
    unique = set()
    for key, run in runs.items():
        if unique_at.get(key) == _ms(run[0]):
            unique.add(run[0].click_id)
        unique.update(b.click_id for a, b in pairwise(run) if _ms(b) - _ms(a) >= window_ms)
    return unique


async def _insert(db: Database, conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
    if db.dialect == "postgresql":
        return await _copy_insert(conn, rows)
    result = await conn.execute(db.insert_ignore(clicks).returning(clicks.c.click_id), rows)
    return {r.click_id for r in result}


async def _copy_insert(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
    """PostgreSQL: COPY into a session temp table, then one INSERT … ON CONFLICT DO NOTHING from
    it (COPY alone cannot skip rows already stored)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not raw.info.get("clicks_in"):
        await driver.execute("CREATE TEMP TABLE IF NOT EXISTS clicks_in (LIKE clicks) ON COMMIT DELETE ROWS")
        raw.info["clicks_in"] = True
    records = [tuple(row[name] for name in CLICK_COLUMNS) for row in rows]
    await driver.copy_records_to_table("clicks_in", records=records, columns=CLICK_COLUMNS)
    result = await conn.execute(
        text("INSERT INTO clicks SELECT * FROM clicks_in ON CONFLICT DO NOTHING RETURNING click_id")
    )
    return {r.click_id for r in result}


async def _count(db: Database, conn: AsyncConnection, inserted: Sequence[Click], unique: set[str]) -> None:
    counts: Counter[tuple[int, int, str, str, str, bool]] = Counter()
    uniques: Counter[tuple[int, int, str, str, str, bool]] = Counter()
    owners: dict[int, tuple[int, int]] = {}
    for c in inserted:
        key = (
            hour_of(c.clicked_at),
            c.link_id,
            c.subs[0],
            c.traits.country,
            c.traits.device_type,
            bool(c.traits.bot),
        )
        counts[key] += 1
        uniques[key] += c.click_id in unique
        owners[c.link_id] = (c.affiliate_id, c.offer_id)
    if not counts:
        return
    stats = [
        {
            "hour": hour,
            "link_id": link_id,
            "sub1": sub1,
            "country": country,
            "device_type": device_type,
            "is_bot": is_bot,
            "affiliate_id": owners[link_id][0],
            "offer_id": owners[link_id][1],
            "clicks": n,
            "unique_clicks": uniques[key],
        }
        for key, n in counts.items()
        for hour, link_id, sub1, country, device_type, is_bot in [key]
    ]
    await conn.execute(db.insert_adding(click_stats, ["clicks", "unique_clicks"]), stats)


async def prune_visitors(db: Database, before_ms: int) -> None:
    """Visitors unseen for longer than the window decide nothing any more."""
    async with db.write() as conn:
        await conn.execute(delete(visitors).where(visitors.c.last_seen < before_ms))


def _row(c: Click, is_unique: bool) -> dict[str, Any]:
    t = c.traits
    return {
        "click_id": c.click_id,
        "clicked_at": c.clicked_at,
        "link_id": c.link_id,
        "affiliate_id": c.affiliate_id,
        "offer_id": c.offer_id,
        "campaign": c.campaign,
        "sub1": c.subs[0],
        "sub2": c.subs[1],
        "sub3": c.subs[2],
        "sub4": c.subs[3],
        "sub5": c.subs[4],
        "source": c.source,
        "landing_page": c.landing_page,
        "ip": c.ip,
        "user_agent": c.user_agent,
        "referrer": c.referrer,
        "country": t.country,
        "region": t.region,
        "city": t.city,
        "device_type": t.device_type,
        "os": t.os,
        "browser": t.browser,
        "bot": t.bot,
        "asn": t.asn,
        "visitor": c.visitor,
        "is_unique": is_unique,
    }


def _click(r: Any) -> Click:
    return Click(
        click_id=r.click_id,
        clicked_at=r.clicked_at,
        link_id=r.link_id,
        affiliate_id=r.affiliate_id,
        offer_id=r.offer_id,
        campaign=r.campaign,
        subs=(r.sub1, r.sub2, r.sub3, r.sub4, r.sub5),
        source=r.source,
        landing_page=r.landing_page,
        ip=r.ip,
        user_agent=r.user_agent,
        referrer=r.referrer,
        traits=Traits(r.country, r.region, r.city, r.asn, r.device_type, r.os, r.browser, r.bot),
        visitor=r.visitor,
    )


async def find_click(db: Database, click_id: str) -> Click | None:
    async with db.read() as conn:
        found = await clicks_by_id(conn, [click_id])
    return found.get(click_id)


async def clicks_by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Click]:
    if not ids:
        return {}
    rows = (await conn.execute(select(clicks).where(clicks.c.click_id.in_(ids)))).all()
    return {r.click_id: _click(r) for r in rows}
