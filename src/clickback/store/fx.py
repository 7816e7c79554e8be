"""Dated exchange rates, maintained through the API and the CLI; each change recorded in the audit
log in its own transaction (ADR 18)."""

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, select

from clickback.core import audit as trail
from clickback.core.audit import Actor
from clickback.core.limits import MAX_PAGE_SIZE
from clickback.core.money import plain
from clickback.core.spans import Span
from clickback.store import audit, paging
from clickback.store.db import Database
from clickback.store.tables import fx_rates


async def put_rate(
    db: Database, base: str, quote: str, day: date, rate: Decimal, now: datetime, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    """The rate of the pair from `day` on, replacing one of the same day. The audit log names the
    pair and day beside the rate before and after (a rate has no id: its entity_id is 0)."""
    values = {"rate": plain(rate), "created_at": now}
    stmt = db.upsert(fx_rates).values(base=base, quote=quote, day=day, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["base", "quote", "day"], set_=values)
    r = fx_rates.c
    key = {"base": base, "quote": quote, "day": day}
    async with db.write() as conn:
        found = (
            await conn.execute(
                select(r.rate).where(r.base == base, r.quote == quote, r.day == day).with_for_update()
            )
        ).scalar()
        await conn.execute(stmt)
        before = None if found is None else key | {"rate": plain(Decimal(found))}
        after = key | {"rate": plain(rate)}
        action = "create" if before is None else "edit"
        done = trail.change(by, trail.Kind.FX_RATE, 0, action, before, after, keep=frozenset(key))
        await audit.record(conn, [done], now)
    return {"base": base, "quote": quote, "day": day, "rate": rate}


_EVERY_DAY: Span[date] = Span()
# Per pair, the newest rate first.
_ORDER = (
    paging.text_key(fx_rates.c.base),
    paging.text_key(fx_rates.c.quote),
    paging.day_key(fx_rates.c.day, descending=True),
)


async def list_rates(
    db: Database,
    base: str | None = None,
    quote: str | None = None,
    days: Span[date] = _EVERY_DAY,
    cursor: str | None = None,
    limit: int = MAX_PAGE_SIZE,
) -> paging.Page:
    query = paging.equal(select(fx_rates), {fx_rates.c.base: base, fx_rates.c.quote: quote})
    page = await paging.page(db, paging.within(query, fx_rates.c.day, days), _ORDER, cursor, limit)
    return replace(page, rows=[row | {"rate": Decimal(row["rate"])} for row in page.rows])


def rate_on(conn: Connection, base: str, quote: str, day: date) -> Decimal | None:
    """1 unit of base in quote, from the newest rate dated on or before `day` in either direction
    (a quote→base rate is inverted); on the same day the direct base→quote rate wins."""
    if base == quote:
        return Decimal(1)
    r = fx_rates.c
    direct = (r.base == base) & (r.quote == quote)
    query = (
        select(r.rate, direct.label("direct"))
        .where((direct | ((r.base == quote) & (r.quote == base))) & (r.day <= day))
        .order_by(r.day.desc(), case((direct, 0), else_=1))
        .limit(1)
    )
    found = conn.execute(query).one_or_none()
    if found is None:
        return None
    return Decimal(found.rate) if found.direct else 1 / Decimal(found.rate)
