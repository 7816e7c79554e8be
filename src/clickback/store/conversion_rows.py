"""What every change to a conversion row brings along: its status history and its report counters."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.lifecycle import PAYABLE, Status
from clickback.core.reporting import hour_of
from clickback.store.db import Database
from clickback.store.tables import conversion_history, conversion_stats, conversions

# For `status IN (...)`: the conversions that count as earned.
PAYABLE_STATUSES = sorted(s.value for s in PAYABLE)


async def history(
    conn: AsyncConnection,
    conversion_id: int,
    old: Status | None,
    new: Status,
    at: datetime,
    postback_id: int | None,
) -> None:
    await conn.execute(
        conversion_history.insert().values(
            conversion_id=conversion_id,
            at=at,
            from_status=old.value if old else None,
            to_status=new.value,
            postback_id=postback_id,
        )
    )


async def count_row(
    db: Database,
    conn: AsyncConnection,
    row: Mapping[str, Any],
    status: Status,
    payout: Decimal,
    sign: int,
) -> None:
    """Move one conversion into (+1) or out of (-1) its report bucket: the hour it was recorded."""
    stmt = db.insert_adding(conversion_stats, ["conversions", "payout"])
    await conn.execute(
        stmt.values(
            hour=hour_of(row["created_at"]),
            link_id=row["link_id"],
            sub1=row["sub1"],
            country=row["country"],
            device_type=row["device_type"],
            event=row["event"],
            status=status.value,
            currency=row["currency"],
            affiliate_id=row["affiliate_id"],
            offer_id=row["offer_id"],
            conversions=sign,
            payout=payout * sign,
        )
    )


async def change_status(
    db: Database,
    conn: AsyncConnection,
    row: Mapping[str, Any],
    new: Status,
    now: datetime,
    postback_id: int | None,
) -> None:
    """`row` is the conversion as it was; its report counters move with it when it is attributed."""
    old = Status(row["status"])
    await conn.execute(
        update(conversions).where(conversions.c.id == row["id"]).values(status=new.value, updated_at=now)
    )
    await history(conn, row["id"], old, new, now, postback_id)
    if row["attributed_at"] is not None and row["link_id"] is not None:
        await count_row(db, conn, row, old, row["payout"], -1)
        await count_row(db, conn, row, new, row["payout"], +1)
