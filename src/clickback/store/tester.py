"""What the postback tester reads (ADR 13): a test click, and its postbacks and conversions."""

from typing import Any

from sqlalchemy import func, select

from clickback.store.db import Database
from clickback.store.tables import clicks, conversions, postbacks


async def test_click(db: Database, click_id: str) -> dict[str, Any] | None:
    """The click, if it is a test click."""
    query = select(clicks).where((clicks.c.click_id == click_id) & clicks.c.test)
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else dict(row._mapping)


async def test_postbacks(db: Database, click_id: str, limit: int) -> list[dict[str, Any]]:
    """The postbacks that named the test click, oldest first (the partial ix_postbacks_test)."""
    query = (
        select(postbacks)
        .where(postbacks.c.test & (postbacks.c.click_id == click_id))
        .order_by(postbacks.c.received_at, postbacks.c.id)
        .limit(limit)
    )
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def count_test_postbacks(db: Database, click_id: str) -> int:
    query = (
        select(func.count())
        .select_from(postbacks)
        .where(postbacks.c.test & (postbacks.c.click_id == click_id))
    )
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_conversions(db: Database, click_id: str, limit: int) -> list[dict[str, Any]]:
    query = (
        select(conversions)
        .where((conversions.c.click_id == click_id) & conversions.c.test)
        .order_by(conversions.c.event_at, conversions.c.id)
        .limit(limit)
    )
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
