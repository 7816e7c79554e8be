"""Recording postbacks: conversion, status history, report counters and the postback log, each
postback in one transaction, committed before the sender is answered."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.intake import (
    Attribution,
    Duplicate,
    Existing,
    Postback,
    RawPostback,
    Refused,
    StatusChange,
    check_offer,
    on_repeat,
    price,
)
from clickback.core.lifecycle import Status
from clickback.core.limits import MAX_RAW_LOG_LEN
from clickback.core.model import Catalog, Click
from clickback.core.outcome import Outcome, Result
from clickback.core.reasons import Reason, Rejected
from clickback.core.reporting import hour_of
from clickback.store.clicks import clicks_by_id
from clickback.store.db import Database
from clickback.store.tables import (
    conversion_history,
    conversion_stats,
    conversions,
    postbacks,
)


async def record(db: Database, raw: RawPostback, postback: Postback, attribution: Attribution) -> Outcome:
    async with db.write() as conn:
        inserted = await _insert(db, conn, raw, postback, attribution)
        if inserted is not None:
            outcome = Outcome(
                Result.ACCEPTED,
                conversion_id=inserted,
                status=postback.status,
                ignored=postback.ignored,
            )
            log_id = await _log(conn, raw, postback.advertiser.id, postback.click.value, outcome)
            await _history(conn, inserted, None, postback.status, raw.received_at, log_id)
            return outcome
        outcome, change = await _repeat(conn, postback)
        log_id = await _log(conn, raw, postback.advertiser.id, postback.click.value, outcome)
        if change is not None:
            await _apply_change(db, conn, change, postback, raw.received_at, log_id)
        return outcome


async def log_refused(db: Database, raw: RawPostback, refused: Refused) -> Outcome:
    outcome = Outcome(
        Result.REJECTED, refused.rejected.reason, refused.rejected.detail, ignored=refused.ignored
    )
    async with db.write() as conn:
        await _log(conn, raw, refused.advertiser_id, refused.click_id, outcome)
    return outcome


async def _insert(
    db: Database,
    conn: AsyncConnection,
    raw: RawPostback,
    postback: Postback,
    attribution: Attribution,
) -> int | None:
    click = attribution.click
    row: dict[str, Any] = {
        "advertiser_id": postback.advertiser.id,
        "click_id": postback.click.value,
        "dedupe_key": postback.dedupe_key,
        "txn_id": postback.txn_id,
        "event": postback.event,
        "status": postback.status.value,
        "payout": attribution.payout,
        "currency": attribution.currency,
        "player_id": postback.player_id,
        "clicked_at": postback.click.clicked_at,
        "created_at": raw.received_at,
        "updated_at": raw.received_at,
        **{f"adv_sub{i}": value for i, value in enumerate(postback.subs, 1)},
        **_attribution_columns(click, raw.received_at),
    }
    stmt = db.insert_ignore(conversions).values(row).returning(conversions.c.id)
    conversion_id: int | None = (await conn.execute(stmt)).scalar_one_or_none()
    if conversion_id is not None and click is not None:
        assert attribution.payout is not None and attribution.currency is not None
        await _count_row(db, conn, row, postback.status, attribution.payout, +1)
    return conversion_id


def _attribution_columns(click: Click | None, now: datetime) -> dict[str, Any]:
    if click is None:
        return {"campaign": "", "country": "", "device_type": "", **{f"sub{i}": "" for i in range(1, 6)}}
    return {
        "link_id": click.link_id,
        "affiliate_id": click.affiliate_id,
        "offer_id": click.offer_id,
        "campaign": click.campaign,
        "country": click.traits.country,
        "device_type": click.traits.device_type,
        "attributed_at": now,
        **{f"sub{i}": value for i, value in enumerate(click.subs, 1)},
    }


@dataclass(frozen=True, slots=True)
class _Change:
    conversion_id: int
    old: Status
    new: Status


async def _repeat(conn: AsyncConnection, postback: Postback) -> tuple[Outcome, _Change | None]:
    key = (
        (conversions.c.advertiser_id == postback.advertiser.id)
        & (conversions.c.dedupe_key == postback.dedupe_key)
        & (conversions.c.event == postback.event)
    )
    # FOR UPDATE: two status changes racing on PostgreSQL apply one after the other (SQLite
    # writers are serialised already and ignore it).
    query = select(conversions.c.id, conversions.c.click_id, conversions.c.status).where(key)
    row = (await conn.execute(query.with_for_update())).one()
    existing = Existing(row.id, row.click_id, Status(row.status))
    decision = on_repeat(postback, existing)
    ignored = postback.ignored
    if isinstance(decision, Rejected):
        outcome = Outcome(Result.REJECTED, decision.reason, decision.detail, ignored=ignored)
        return outcome, None
    if isinstance(decision, Duplicate):
        outcome = Outcome(
            Result.DUPLICATE,
            Reason.DUPLICATE,
            conversion_id=existing.id,
            status=existing.status,
            ignored=ignored,
        )
        return outcome, None
    assert isinstance(decision, StatusChange)
    outcome = Outcome(Result.UPDATED, conversion_id=existing.id, status=decision.new, ignored=ignored)
    return outcome, _Change(existing.id, existing.status, decision.new)


async def _apply_change(
    db: Database,
    conn: AsyncConnection,
    change: _Change,
    postback: Postback,
    now: datetime,
    log_id: int,
) -> None:
    row = (await conn.execute(select(conversions).where(conversions.c.id == change.conversion_id))).one()
    await conn.execute(
        update(conversions)
        .where(conversions.c.id == change.conversion_id)
        .values(status=change.new.value, updated_at=now)
    )
    await _history(conn, change.conversion_id, change.old, change.new, now, log_id)
    if row.attributed_at is not None and row.link_id is not None:
        values = dict(row._mapping)
        await _count_row(db, conn, values, change.old, row.payout, -1)
        await _count_row(db, conn, values, change.new, row.payout, +1)


async def _history(
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


async def _count_row(
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


async def _log(
    conn: AsyncConnection,
    raw: RawPostback,
    advertiser_id: int | None,
    click_id: str,
    outcome: Outcome,
) -> int:
    stmt = postbacks.insert().values(
        received_at=raw.received_at,
        ip=raw.ip[:45],
        method=raw.method[:8],
        advertiser_id=advertiser_id,
        click_id=_text(click_id.encode(errors="replace"), 64),
        result=outcome.result.value,
        reason=outcome.reason.code if outcome.reason else None,
        detail=_text(outcome.detail.encode(errors="replace"), 512),
        conversion_id=outcome.conversion_id,
        http_status=outcome.http_status,
        query=_text(raw.query, MAX_RAW_LOG_LEN),
        body=_text(raw.body, MAX_RAW_LOG_LEN),
        ignored=_text(",".join(outcome.ignored).encode(errors="replace"), 1024),
    )
    return int((await conn.execute(stmt.returning(postbacks.c.id))).scalar_one())


def _text(data: bytes, limit: int) -> str:
    """Kept as it came, cropped, with what no database can store (invalid UTF-8, NUL) shown as
    U+FFFD. Escaped wherever it is shown."""
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")[:limit]


async def attribute_waiting(db: Database, catalog: Catalog, now: datetime, since: datetime) -> int:
    """Attribute conversions that arrived before their click row did (clicks taken after `since`;
    older ones whose click never landed stay unattributed, and visible as such).

    Every process runs this after writing clicks and on idle ticks, rather than only checking
    its own batch: on PostgreSQL a postback can commit just after another process's batch looked
    for it, and only a later look from anyone catches that.
    """
    async with db.read() as conn:
        waiting = (await conn.execute(select(conversions).where(conversions.c.attributed_at.is_(None)))).all()
        landed = await clicks_by_id(conn, [row.click_id for row in waiting])
    if not landed:
        return 0
    done = 0
    async with db.write() as conn:
        for row in waiting:
            click = landed.get(row.click_id)
            if click is not None and await _attribute_late(db, conn, row, click, catalog, now):
                done += 1
    return done


async def _attribute_late(
    db: Database, conn: AsyncConnection, row: Any, click: Click, catalog: Catalog, now: datetime
) -> bool:
    # Guarded on attributed_at: another process may have settled this conversion meanwhile.
    unsettled = (conversions.c.id == row.id) & conversions.c.attributed_at.is_(None)
    offer = catalog.offers.get(click.offer_id)
    rejected = check_offer(row.advertiser_id, row.event, offer, row.click_id)
    if rejected is not None or offer is None:
        values: dict[str, Any] = {"status": Status.REJECTED.value, "attributed_at": now}
        if (await conn.execute(update(conversions).where(unsettled).values(values))).rowcount:
            await _history(conn, row.id, Status(row.status), Status.REJECTED, now, None)
        return False
    payout, currency = price(row.event, row.payout, row.currency, offer)
    values = {**_attribution_columns(click, now), "payout": payout, "currency": currency}
    if not (await conn.execute(update(conversions).where(unsettled).values(values))).rowcount:
        return False
    await _count_row(db, conn, {**row._mapping, **values}, Status(row.status), payout, +1)
    return True
