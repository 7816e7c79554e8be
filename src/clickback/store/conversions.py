"""Recording postbacks: conversion, status history, report counters and the postback log, each
postback in one transaction, committed before the sender is answered."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.commission import AMOUNT_EVENTS, convert, period_of
from clickback.core.events import dedupe_family
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
from clickback.store import fx, ledger, players
from clickback.store.clicks import clicks_by_id
from clickback.store.conversion_rows import change_status, count_row, history
from clickback.store.db import Database
from clickback.store.tables import conversions, postbacks


async def record(
    db: Database, raw: RawPostback, postback: Postback, attribution: Attribution, catalog: Catalog
) -> Outcome:
    now = raw.received_at
    async with db.write() as conn:
        priced = await _priced(conn, postback, attribution, catalog, now)
        player = None if isinstance(priced, Rejected) else await _player(db, conn, postback, attribution, now)
        event = relabel(postback.event, player)
        inserted = None
        if not isinstance(priced, Rejected):
            inserted = await _insert(db, conn, raw, postback, attribution, event, priced)
        if inserted is not None:
            outcome = Outcome(
                Result.ACCEPTED,
                conversion_id=inserted,
                status=postback.status,
                event=event,
                ignored=postback.ignored,
            )
            log_id = await _log(conn, raw, postback.advertiser.id, postback.click_value, outcome)
            await history(conn, inserted, None, postback.status, now, log_id)
            if player is not None:
                await players.note_event(conn, player, event, inserted, now)
                await ledger.evaluate(db, conn, catalog, player.id, inserted, now)
            return outcome
        existing = await _existing(conn, postback)
        if existing is None:  # not a repeat, and refused before insertion
            assert isinstance(priced, Rejected)
            refused = Outcome(Result.REJECTED, priced.reason, priced.detail, ignored=postback.ignored)
            await _log(conn, raw, postback.advertiser.id, postback.click_value, refused)
            return refused
        outcome, change = _repeat(postback, existing)
        log_id = await _log(conn, raw, postback.advertiser.id, postback.click_value, outcome)
        if change is not None:
            await change_status(db, conn, dict(existing._mapping), change, now, log_id)
            player = player or await _player(db, conn, postback, attribution, now)
            if player is not None:
                await ledger.evaluate(db, conn, catalog, player.id, existing.id, now)
        return outcome


def relabel(event: str, player: players.Player | None) -> str:
    """A player's first deposit is recorded as first_deposit whatever the advertiser called it, and
    only the first: a second 'first deposit' is a deposit."""
    if player is None or dedupe_family(event) != "deposit":
        return event
    return "first_deposit" if player.ftd_conversion_id is None else "deposit"


async def _player(
    db: Database, conn: AsyncConnection, postback: Postback, attribution: Attribution, now: datetime
) -> players.Player | None:
    if not postback.player_id:
        return None
    return await players.lock(
        db, conn, postback.advertiser.id, postback.player_id, postback.click_value, attribution.click, now
    )


@dataclass(frozen=True, slots=True)
class _Priced:
    """The amount in the deal's currency, and the rate that made it."""

    amount: Decimal | None = None
    rate: Decimal | None = None


async def _priced(
    conn: AsyncConnection, postback: Postback, attribution: Attribution, catalog: Catalog, now: datetime
) -> _Priced | Rejected:
    click = attribution.click
    if click is None:
        return _Priced()  # priced when the click lands (_attribute_late)
    return await _in_deal_currency(
        conn, catalog, click, postback.event, attribution.payout, attribution.currency, now
    )


async def _in_deal_currency(
    conn: AsyncConnection,
    catalog: Catalog,
    click: Click,
    event: str,
    amount: Decimal | None,
    currency: str | None,
    at: datetime,
) -> _Priced | Rejected:
    """The amount in the currency of the click's deal, at the rate of the day it arrived."""
    deal = catalog.deal_for(click.offer_id, click.affiliate_id)
    if deal is None or event not in AMOUNT_EVENTS or amount is None or currency is None:
        return _Priced()
    rate = await fx.rate_on(conn, currency, deal.currency, at.date())
    if rate is None:
        detail = f"{currency}→{deal.currency} on {at.date().isoformat()}"
        return Rejected(Reason.MISSING_EXCHANGE_RATE, detail)
    return _Priced(convert(amount, rate), rate)


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
    event: str,
    priced: _Priced,
) -> int | None:
    click = attribution.click
    assert postback.click is not None
    row: dict[str, Any] = {
        "advertiser_id": postback.advertiser.id,
        "click_id": postback.click.value,
        "dedupe_key": postback.dedupe_key,
        "dedupe_event": dedupe_family(event),
        "txn_id": postback.txn_id,
        "event": event,
        "status": postback.status.value,
        "payout": attribution.payout,
        "currency": attribution.currency,
        "player_id": postback.player_id,
        "deal_amount": priced.amount,
        "fx_rate": None if priced.rate is None else str(priced.rate),
        "period": (postback.period or period_of(raw.received_at)) if event == "net_revenue" else None,
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
        await count_row(db, conn, row, postback.status, attribution.payout, +1)
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


async def _existing(conn: AsyncConnection, postback: Postback) -> Any:
    key = (
        (conversions.c.advertiser_id == postback.advertiser.id)
        & (conversions.c.dedupe_key == postback.dedupe_key)
        & (conversions.c.dedupe_event == dedupe_family(postback.event))
    )
    # FOR UPDATE: two status changes racing on PostgreSQL apply one after the other (SQLite
    # writers are serialised already and ignore it).
    return (await conn.execute(select(conversions).where(key).with_for_update())).first()


def _repeat(postback: Postback, row: Any) -> tuple[Outcome, Status | None]:
    existing = Existing(row.id, row.click_id, Status(row.status))
    decision = on_repeat(postback, existing)
    ignored = postback.ignored
    if isinstance(decision, Rejected):
        return Outcome(Result.REJECTED, decision.reason, decision.detail, ignored=ignored), None
    if isinstance(decision, Duplicate):
        outcome = Outcome(
            Result.DUPLICATE,
            Reason.DUPLICATE,
            conversion_id=existing.id,
            status=existing.status,
            event=row.event,
            ignored=ignored,
        )
        return outcome, None
    assert isinstance(decision, StatusChange)
    outcome = Outcome(
        Result.UPDATED, conversion_id=existing.id, status=decision.new, event=row.event, ignored=ignored
    )
    return outcome, decision.new


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
    rejected = check_offer(row.advertiser_id, row.event, offer, row.click_id, catalog)
    if rejected is not None or offer is None:
        values: dict[str, Any] = {"status": Status.REJECTED.value, "attributed_at": now}
        if (await conn.execute(update(conversions).where(unsettled).values(values))).rowcount:
            await history(conn, row.id, Status(row.status), Status.REJECTED, now, None)
        return False
    payout, currency = price(row.event, row.payout, row.currency, offer)
    values = {**_attribution_columns(click, now), "payout": payout, "currency": currency}
    priced = await _in_deal_currency(conn, catalog, click, row.event, payout, currency, row.created_at)
    # No rate on record leaves the amount out of commissions (it cannot be refused any more).
    if isinstance(priced, _Priced) and priced.rate is not None:
        values |= {"deal_amount": priced.amount, "fx_rate": str(priced.rate)}
    if not (await conn.execute(update(conversions).where(unsettled).values(values))).rowcount:
        return False
    await count_row(db, conn, {**row._mapping, **values}, Status(row.status), payout, +1)
    await players.attribute_late(conn, click)
    if row.player_id:
        player = await players.lock(db, conn, row.advertiser_id, row.player_id, row.click_id, click, now)
        await ledger.evaluate(db, conn, catalog, player.id, row.id, now)
    return True
