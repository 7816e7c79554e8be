"""Reading the postback log and the conversions it produced."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from clickback.core.spans import Span
from clickback.store import paging
from clickback.store.db import Database
from clickback.store.tables import (
    commissions,
    conversion_history,
    conversions,
    outbound_deliveries,
    postbacks,
)

# The time `from` and `to` select conversions by: when the event happened (as reports do).
CONVERSION_TIME = conversions.c.event_at


@dataclass(frozen=True, slots=True)
class LogFilter:
    advertiser_id: int | None = None
    result: str | None = None
    reason: str | None = None
    click_id: str | None = None
    channel: str | None = None
    test: bool | None = None
    received: Span[datetime] = field(default_factory=Span)


async def list_postbacks(db: Database, f: LogFilter, cursor: str | None, limit: int) -> paging.Page:
    """The log, newest first."""
    c = postbacks.c
    query = paging.equal(
        select(postbacks),
        {
            c.advertiser_id: f.advertiser_id,
            c.result: f.result,
            c.reason: f.reason,
            c.click_id: f.click_id,
            c.channel: f.channel,
            c.test: f.test,
        },
    )
    query = paging.within(query, c.received_at, f.received)
    return await paging.page(db, query, [paging.Key(c.id, descending=True)], cursor, limit)


# What a conversion's page shows of each related list: a conversion has a handful of postbacks,
# entries and deliveries; a runaway sender's thousands are cut here (the lists page them all).
MAX_RELATED = 200


async def conversion_record(db: Database, conversion_id: int) -> dict[str, list[dict[str, Any]]]:
    """What lies behind a conversion: the postbacks that made and changed it, its ledger entries
    and its outbound deliveries, oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with db.read() as conn:
        for name, table in (
            ("postbacks", postbacks),
            ("commissions", commissions),
            ("deliveries", outbound_deliveries),
        ):
            query = (
                select(table)
                .where(table.c.conversion_id == conversion_id)
                .order_by(table.c.id)
                .limit(MAX_RELATED)
            )
            found[name] = [dict(r._mapping) for r in (await conn.execute(query)).all()]
    return found


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


@dataclass(frozen=True, slots=True)
class ConversionFilter:
    click_id: str | None = None
    advertiser_id: int | None = None
    affiliate_id: int | None = None
    offer_id: int | None = None
    link_id: int | None = None
    event: str | None = None
    status: str | None = None
    player_id: str | None = None
    txn_id: str | None = None
    sub1: str | None = None
    channel: str | None = None
    test: bool | None = None
    over_cap: bool | None = None
    span: Span[datetime] = field(default_factory=Span)  # of CONVERSION_TIME


async def list_conversions(db: Database, f: ConversionFilter, cursor: str | None, limit: int) -> paging.Page:
    """Conversions, newest first."""
    c = conversions.c
    wanted = {
        c.click_id: f.click_id,
        c.advertiser_id: f.advertiser_id,
        c.affiliate_id: f.affiliate_id,
        c.offer_id: f.offer_id,
        c.link_id: f.link_id,
        c.event: f.event,
        c.status: f.status,
        c.player_id: f.player_id,
        c.txn_id: f.txn_id,
        c.sub1: f.sub1,
        c.channel: f.channel,
        c.test: f.test,
        c.over_cap: f.over_cap,
    }
    query = paging.within(paging.equal(select(conversions), wanted), CONVERSION_TIME, f.span)
    return await paging.page(db, query, [paging.Key(c.id, descending=True)], cursor, limit)
