"""Caps and their counters. `take` runs inside the recording transaction: the conditional
UPDATE is the check-and-increment, so that two processes at the cap never both count."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update

from clickback.core import audit as trail
from clickback.core.audit import Actor
from clickback.core.caps import EVERY_AFFILIATE, Cap, counters
from clickback.store import audit, paging
from clickback.store.db import Database
from clickback.store.tables import cap_counters, caps


def take(db: Database, conn: Connection, offer_id: int, affiliate_id: int, event: str, at: datetime) -> bool:
    """Count one conversion against every cap on it (the offer's and the affiliate's own);
    False, and nothing counted, when any of them is full."""
    query = select(caps).where(
        caps.c.offer_id == offer_id,
        caps.c.affiliate_id.in_((EVERY_AFFILIATE, affiliate_id)),
        caps.c.event == event,
    )
    found = [
        Cap(r.id, r.offer_id, r.affiliate_id, r.event, r.daily, r.total, r.zone) for r in conn.execute(query)
    ]
    # In one order everywhere: two transactions taking the same counters never deadlock.
    wanted = sorted((cap.id, period, limit) for cap in found for period, limit in counters(cap, at))
    if not wanted:
        return True
    start = db.upsert(cap_counters).values([{"cap_id": c, "period": p, "count": 0} for c, p, _ in wanted])
    conn.execute(start.on_conflict_do_nothing(index_elements=["cap_id", "period"]))
    taken: list[tuple[int, str]] = []
    for cap_id, period, limit in wanted:
        mine = and_(cap_counters.c.cap_id == cap_id, cap_counters.c.period == period)
        # On PostgreSQL a second transaction's UPDATE waits for the first's row lock, then
        # re-checks `count < limit` against the committed count (READ COMMITTED re-evaluation).
        stmt = (
            update(cap_counters)
            .where(mine, cap_counters.c.count < limit)
            .values(count=cap_counters.c.count + 1)
            .returning(cap_counters.c.count)
        )
        if conn.execute(stmt).first() is None:
            _give_back(conn, taken)
            return False
        taken.append((cap_id, period))
    return True


def _give_back(conn: Connection, taken: Sequence[tuple[int, str]]) -> None:
    """Undo the counts of a conversion that did not fit under another of its caps (the rows are
    still locked by this transaction)."""
    for cap_id, period in taken:
        mine = and_(cap_counters.c.cap_id == cap_id, cap_counters.c.period == period)
        conn.execute(update(cap_counters).where(mine).values(count=cap_counters.c.count - 1))


async def put_cap(
    db: Database,
    *,
    offer_id: int,
    affiliate_id: int,
    event: str,
    daily: int | None,
    total: int | None,
    zone: str,
    now: datetime,
    by: Actor,
) -> dict[str, Any]:
    """Create or replace the cap on (offer, affiliate, event); its counts so far are kept."""
    values = {"daily": daily, "total": total, "zone": zone, "updated_at": now}
    stmt = db.upsert(caps).values(
        offer_id=offer_id, affiliate_id=affiliate_id, event=event, created_at=now, **values
    )
    stmt = stmt.on_conflict_do_update(index_elements=["offer_id", "affiliate_id", "event"], set_=values)
    mine = (caps.c.offer_id == offer_id) & (caps.c.affiliate_id == affiliate_id) & (caps.c.event == event)
    async with db.write() as conn:
        found = (await conn.execute(select(caps).where(mine).with_for_update())).first()
        row = dict((await conn.execute(stmt.returning(*caps.c))).one()._mapping)
        before = None if found is None else dict(found._mapping)
        await audit.record(conn, [trail.change(by, trail.Kind.CAP, row["id"], "put", before, row)], now)
    return row


async def list_caps(db: Database, offer_id: int, cursor: str | None, limit: int) -> paging.Page:
    """The offer's caps with today's and the total counts beside them (by the caller's periods)."""
    query = select(caps).where(caps.c.offer_id == offer_id)
    return await paging.page(
        db, query, [paging.Key(caps.c.affiliate_id), paging.Key(caps.c.id)], cursor, limit
    )


async def counts(db: Database, cap_ids: Sequence[int]) -> dict[tuple[int, str], int]:
    async with db.read() as conn:
        rows = (await conn.execute(select(cap_counters).where(cap_counters.c.cap_id.in_(cap_ids)))).all()
    return {(r.cap_id, r.period): int(r._mapping["count"]) for r in rows}
