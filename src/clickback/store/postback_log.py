"""Reading the postback log and the conversions it produced."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from clickback.store.db import Database
from clickback.store.tables import conversion_history, conversions, postbacks


@dataclass(frozen=True, slots=True)
class LogFilter:
    advertiser_id: int | None = None
    result: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    click_id: str | None = None
    before_id: int | None = None
    limit: int = 100


async def list_postbacks(db: Database, f: LogFilter) -> list[dict[str, Any]]:
    c = postbacks.c
    stmt = select(postbacks).order_by(c.id.desc()).limit(f.limit)
    for column, value in (
        (c.advertiser_id, f.advertiser_id),
        (c.result, f.result),
        (c.reason, f.reason),
        (c.click_id, f.click_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.since is not None:
        stmt = stmt.where(c.received_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(c.received_at < f.until)
    if f.before_id is not None:
        stmt = stmt.where(c.id < f.before_id)
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]


async def get_conversion(db: Database, conversion_id: int) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(conversions).where(conversions.c.id == conversion_id))).first()
        if row is None:
            return None
        history = (
            await conn.execute(
                select(conversion_history)
                .where(conversion_history.c.conversion_id == conversion_id)
                .order_by(conversion_history.c.id)
            )
        ).all()
    return {**row._mapping, "history": [dict(h._mapping) for h in history]}


async def list_conversions(
    db: Database, *, click_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    stmt = select(conversions).order_by(conversions.c.id.desc()).limit(limit)
    if click_id is not None:
        stmt = stmt.where(conversions.c.click_id == click_id)
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]
