"""Dated exchange rates, maintained through the API and the CLI."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, case, select

from clickback.store.db import Database
from clickback.store.tables import fx_rates


async def put_rate(
    db: Database, base: str, quote: str, day: date, rate: Decimal, now: datetime
) -> dict[str, Any]:
    values = {"rate": str(rate), "created_at": now}
    stmt = db.upsert(fx_rates).values(base=base, quote=quote, day=day, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["base", "quote", "day"], set_=values)
    async with db.write() as conn:
        await conn.execute(stmt)
    return {"base": base, "quote": quote, "day": day, "rate": rate}


async def list_rates(db: Database, base: str | None = None, quote: str | None = None) -> list[dict[str, Any]]:
    query = select(fx_rates).order_by(fx_rates.c.base, fx_rates.c.quote, fx_rates.c.day.desc())
    if base:
        query = query.where(fx_rates.c.base == base)
    if quote:
        query = query.where(fx_rates.c.quote == quote)
    async with db.read() as conn:
        rows = (await conn.execute(query.limit(1000))).all()
    return [{"base": r.base, "quote": r.quote, "day": r.day, "rate": Decimal(r.rate)} for r in rows]


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
