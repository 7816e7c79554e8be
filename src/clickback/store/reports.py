"""Report queries: always over the hourly counters, never a scan of raw clicks."""

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, select

from clickback.core.lifecycle import Status
from clickback.core.reporting import (
    ClickCount,
    ConversionCount,
    ReportRow,
    build_rows,
    day_of,
    hour_range,
)
from clickback.store.db import Database
from clickback.store.tables import click_refusals, click_stats, conversion_stats


def _dimension(table: Table, name: str) -> ColumnElement[Any]:
    if name == "day":
        return (table.c.hour // 24).label("day")
    return table.c[name].label(name)


def _key(row: Any, group_by: Sequence[str]) -> tuple[str | int, ...]:
    return tuple(day_of(row.day) if name == "day" else getattr(row, name) for name in group_by)


async def report(
    db: Database,
    first: date,
    last: date,
    group_by: Sequence[str],
    affiliate_id: int | None = None,
    offer_id: int | None = None,
    *,
    include_bots: bool = False,
) -> tuple[list[ReportRow], ReportRow]:
    start, end = hour_range(first, last)

    def query(table: Table, *measures: Any, extra: Sequence[str] = ()) -> Any:
        dims = [_dimension(table, name) for name in group_by]
        cols = dims + [table.c[name] for name in extra]
        stmt = select(*cols, *measures).where(table.c.hour >= start, table.c.hour < end)
        if affiliate_id is not None:
            stmt = stmt.where(table.c.affiliate_id == affiliate_id)
        if offer_id is not None:
            stmt = stmt.where(table.c.offer_id == offer_id)
        return stmt.group_by(*cols)

    cs = click_stats.c

    def counted(column: Any) -> Any:
        return column if include_bots else case((cs.is_bot, 0), else_=column)

    click_q = query(
        click_stats,
        func.sum(counted(cs.clicks)).label("clicks"),
        func.sum(counted(cs.unique_clicks)).label("unique_clicks"),
        func.sum(case((cs.is_bot, cs.clicks), else_=0)).label("bot_clicks"),
    )
    conv_q = query(
        conversion_stats,
        func.sum(conversion_stats.c.conversions).label("conversions"),
        func.sum(conversion_stats.c.payout).label("payout"),
        extra=("event", "status", "currency"),
    )
    async with db.read() as conn:
        click_rows = (await conn.execute(click_q)).all()
        conv_rows = (await conn.execute(conv_q)).all()
    return build_rows(
        group_by,
        (
            ClickCount(_key(r, group_by), int(r.clicks), int(r.unique_clicks), int(r.bot_clicks))
            for r in click_rows
            # Without group_by an empty range still yields one row, of NULL sums.
            if r.clicks is not None
        ),
        (
            ConversionCount(
                _key(r, group_by),
                r.event,
                Status(r.status),
                r.currency,
                int(r.conversions),
                r.payout,  # sum() keeps the column's Money type: already a Decimal
            )
            for r in conv_rows
            if r.conversions
        ),
    )


async def refused_clicks(db: Database, first: date, last: date) -> list[dict[str, Any]]:
    """Refused clicks per day, reason and link code asked for, most frequent first."""
    start, end = hour_range(first, last)
    t = click_refusals
    day = (t.c.hour // 24).label("day")
    total = func.sum(t.c.clicks).label("clicks")
    stmt = (
        select(day, t.c.reason, t.c.code, total)
        .where(t.c.hour >= start, t.c.hour < end)
        .group_by(day, t.c.reason, t.c.code)
        .order_by(total.desc(), day, t.c.code)
    )
    async with db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    return [{"day": day_of(r.day), "reason": r.reason, "code": r.code, "clicks": int(r.clicks)} for r in rows]
