"""Writing clicks in batches with their report counters, and finding clicks by ID."""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.model import Click
from clickback.store.db import Database
from clickback.store.tables import click_refusals, click_stats, clicks, hour_of


async def write_batch(
    db: Database, batch: Sequence[Click], refusals: Mapping[tuple[int, str, str], int]
) -> None:
    """One transaction: the clicks (idempotent on click ID, so a retried batch is harmless), the
    hourly counters they add to, and the counts of refused clicks keyed (hour, reason, code)."""
    counts = Counter((hour_of(c.clicked_at), c.link_id, c.subs[0]) for c in batch)
    owners = {c.link_id: (c.affiliate_id, c.offer_id) for c in batch}
    stats = [
        {
            "hour": hour,
            "link_id": link_id,
            "sub1": sub1,
            "affiliate_id": owners[link_id][0],
            "offer_id": owners[link_id][1],
            "clicks": n,
        }
        for (hour, link_id, sub1), n in counts.items()
    ]
    refused = [
        {"hour": hour, "reason": reason, "code": code, "clicks": n}
        for (hour, reason, code), n in refusals.items()
    ]
    async with db.write() as conn:
        if batch:
            await conn.execute(db.insert_ignore(clicks), [_row(c) for c in batch])
            await conn.execute(db.insert_adding(click_stats, ["clicks"]), stats)
        if refused:
            await conn.execute(db.insert_adding(click_refusals, ["clicks"]), refused)


def _row(c: Click) -> dict[str, object]:
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
