"""The commission ledger: after every change to a player's events, in the same transaction, the
player's CPA and their affiliate's RevShare month are re-decided (core/commission.py) and the
difference from what is already booked is appended as entries.

Entries are never edited but for their status. A CPA that no longer holds is reversed by a new
entry of the opposite amount (in the month of the reversal) and the original is marked reversed.
A RevShare month's entries always sum to the month's RevShare in revshare_periods.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.commission import (
    Deal,
    DealKind,
    EntryKind,
    EntryStatus,
    PlayerEvent,
    Qualified,
    RevShareTerms,
    period_bounds,
    period_of,
    qualify,
    revshare_period,
)
from clickback.core.intake import player_key
from clickback.core.lifecycle import Status
from clickback.core.model import Catalog
from clickback.core.money import money_text
from clickback.core.spans import Span
from clickback.store import paging
from clickback.store.conversion_rows import PAYABLE_STATUSES, change_status, count_row, history
from clickback.store.db import Database
from clickback.store.tables import commissions, conversions, players, revshare_periods

CPA, REVSHARE = EntryKind.CPA, EntryKind.REVSHARE
PENDING, APPROVED, REVERSED = EntryStatus.PENDING, EntryStatus.APPROVED, EntryStatus.REVERSED


async def evaluate(
    db: Database, conn: AsyncConnection, catalog: Catalog, player_ref: int, cause: int, now: datetime
) -> None:
    """Re-decide what the player's events earn, after conversion `cause` arrived or changed."""
    player = (await conn.execute(select(players).where(players.c.id == player_ref))).one()
    if player.affiliate_id is None:
        return  # click still in flight: decided when it lands
    deal = catalog.deal_for(player.offer_id, player.affiliate_id)
    if deal is None:
        return
    if deal.cpa is not None and deal.kind in (DealKind.CPA, DealKind.HYBRID):
        await _cpa(db, conn, player, deal, cause, now)
    if deal.revshare is not None and deal.kind in (DealKind.REVSHARE, DealKind.HYBRID):
        row = (await conn.execute(select(conversions).where(conversions.c.id == cause))).one()
        if row.event == "net_revenue":
            await _revshare(db, conn, player.affiliate_id, player.offer_id, row.period, deal, cause, now)
        elif row.event == "first_deposit":  # FTD-count tiers
            await _revshare(
                db, conn, player.affiliate_id, player.offer_id, period_of(row.created_at), deal, cause, now
            )


async def _events(conn: AsyncConnection, player: Any) -> list[PlayerEvent]:
    query = select(
        conversions.c.id, conversions.c.event, conversions.c.created_at, conversions.c.deal_amount
    ).where(
        (conversions.c.advertiser_id == player.advertiser_id)
        & (conversions.c.player_id == player.player_id)
        & conversions.c.status.in_(PAYABLE_STATUSES)
    )
    rows = (await conn.execute(query)).all()
    return [PlayerEvent(r.id, r.event, r.created_at, r.deal_amount or Decimal(0)) for r in rows]


async def _cpa(
    db: Database, conn: AsyncConnection, player: Any, deal: Deal, cause: int, now: datetime
) -> None:
    assert deal.cpa is not None
    verdict = qualify(deal.cpa, await _events(conn, player))
    if verdict is not None and player.qualified_at is None:
        await _book_cpa(db, conn, player, deal, verdict, now)
        return
    if verdict is None and player.qualified_at is not None:
        booked = (
            await conn.execute(
                select(commissions).where(
                    (commissions.c.player == player.id)
                    & (commissions.c.kind == CPA)
                    & commissions.c.reverses_id.is_(None)
                    & (commissions.c.status != REVERSED)
                )
            )
        ).first()
        if booked is not None:
            await _reverse_cpa(db, conn, player, booked, cause, now)


async def _book_cpa(
    db: Database, conn: AsyncConnection, player: Any, deal: Deal, q: Qualified, now: datetime
) -> None:
    """A player qualifies at most once: guarded on qualified_at, under the player's row lock."""
    assert deal.cpa is not None
    claimed = await conn.execute(
        update(players)
        .where((players.c.id == player.id) & players.c.qualified_at.is_(None))
        .values(qualified_at=q.at)
    )
    if not claimed.rowcount:
        return
    amount = deal.cpa.amount_for(player.country)
    hold = deal.cpa.hold_days
    await _append(
        conn,
        now,
        kind=CPA,
        affiliate_id=player.affiliate_id,
        offer_id=player.offer_id,
        player=player.id,
        conversion_id=q.by,
        period=period_of(q.at),
        amount=amount,
        currency=deal.currency,
        fx_rate=await _rate_of(conn, q.by),
        status=PENDING if hold else APPROVED,
        hold_until=q.at + timedelta(days=hold) if hold else None,
        detail=f"qualified: {q.explanation}; conversions {', '.join(map(str, q.because))}",
    )
    await _qualified_cpa_event(db, conn, player, amount, deal.currency, q, now)


async def _qualified_cpa_event(
    db: Database,
    conn: AsyncConnection,
    player: Any,
    amount: Decimal,
    currency: str,
    q: Qualified,
    now: datetime,
) -> None:
    """qualified_cpa as a conversion of its own: reports count it, outbound postbacks can fire on it."""
    source = (await conn.execute(select(conversions).where(conversions.c.id == q.by))).one()
    values = {
        c.name: getattr(source, c.name)
        for c in conversions.c
        if c.name not in ("id", "txn_id", "period", "fx_rate")
    }
    values |= {
        "dedupe_key": player_key(player.player_id),
        "dedupe_event": "qualified_cpa",
        "event": "qualified_cpa",
        "status": Status.APPROVED.value,
        "payout": amount,
        "currency": currency,
        "deal_amount": amount,
        "created_at": now,
        "updated_at": now,
        "attributed_at": now,
    }
    stmt = db.insert_ignore(conversions).values(values).returning(conversions.c.id)
    new_id = (await conn.execute(stmt)).scalar_one_or_none()
    if new_id is not None:
        await history(conn, new_id, None, Status.APPROVED, now, None)
        await count_row(db, conn, values, Status.APPROVED, amount, +1)


async def _reverse_cpa(
    db: Database, conn: AsyncConnection, player: Any, booked: Any, cause: int, now: datetime
) -> None:
    await conn.execute(
        update(commissions).where(commissions.c.id == booked.id).values(status=REVERSED, updated_at=now)
    )
    await _append(
        conn,
        now,
        kind=CPA,
        affiliate_id=booked.affiliate_id,
        offer_id=booked.offer_id,
        player=player.id,
        conversion_id=cause,
        period=period_of(now),
        amount=-booked.amount,
        currency=booked.currency,
        fx_rate=booked.fx_rate,
        status=APPROVED,
        reverses_id=booked.id,
        detail=f"reversal of entry {booked.id}: conversion {cause} changed and the rules no longer hold",
    )
    qualified = (
        await conn.execute(
            select(conversions).where(
                (conversions.c.advertiser_id == player.advertiser_id)
                & (conversions.c.dedupe_key == player_key(player.player_id))
                & (conversions.c.dedupe_event == "qualified_cpa")
            )
        )
    ).first()
    if qualified is not None and qualified.status != Status.REJECTED.value:
        await change_status(db, conn, dict(qualified._mapping), Status.REJECTED, now, None)


async def _revshare(
    db: Database,
    conn: AsyncConnection,
    affiliate_id: int,
    offer_id: int,
    period: str,
    deal: Deal,
    cause: int,
    now: datetime,
) -> None:
    """Recompute the month, book the difference, then carry any change into later booked months."""
    assert deal.revshare is not None
    key = (revshare_periods.c.affiliate_id == affiliate_id) & (revshare_periods.c.offer_id == offer_id)
    current: str | None = period
    while current is not None:
        carry_changed = await _revshare_month(
            db, conn, affiliate_id, offer_id, current, deal.revshare, deal.currency, cause, now
        )
        if not carry_changed:
            return
        query = (
            select(revshare_periods.c.period)
            .where(key & (revshare_periods.c.period > current))
            .order_by(revshare_periods.c.period)
            .limit(1)
        )
        current = (await conn.execute(query)).scalar_one_or_none()


async def _revshare_month(
    db: Database,
    conn: AsyncConnection,
    affiliate_id: int,
    offer_id: int,
    period: str,
    terms: RevShareTerms,
    currency: str,
    cause: int,
    now: datetime,
) -> bool:
    """Returns whether the month's carry-out changed (later months then need recomputing)."""
    key = (revshare_periods.c.affiliate_id == affiliate_id) & (revshare_periods.c.offer_id == offer_id)
    zero = Decimal(0)
    await conn.execute(
        db.insert_ignore(revshare_periods).values(
            affiliate_id=affiliate_id,
            offer_id=offer_id,
            period=period,
            currency=currency,
            ngr=zero,
            ftds=0,
            carry_in=zero,
            percent="0",
            earnings=zero,
            carry_out=zero,
            updated_at=now,
        )
    )
    booked = (
        await conn.execute(
            select(revshare_periods).where(key & (revshare_periods.c.period == period)).with_for_update()
        )
    ).one()
    owned = (
        (conversions.c.affiliate_id == affiliate_id)
        & (conversions.c.offer_id == offer_id)
        & conversions.c.status.in_(PAYABLE_STATUSES)
    )
    ngr = (
        await conn.execute(
            select(func.sum(conversions.c.deal_amount)).where(
                owned & (conversions.c.event == "net_revenue") & (conversions.c.period == period)
            )
        )
    ).scalar_one() or zero
    start, end = period_bounds(period)
    ftds = (
        await conn.execute(
            select(func.count()).where(
                owned
                & (conversions.c.event == "first_deposit")
                & (conversions.c.created_at >= start)
                & (conversions.c.created_at < end)
            )
        )
    ).scalar_one()
    previous = (
        await conn.execute(
            select(revshare_periods.c.carry_out)
            .where(key & (revshare_periods.c.period < period))
            .order_by(revshare_periods.c.period.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    month = revshare_period(terms, currency, Decimal(ngr), int(ftds), previous or zero)
    delta = month.earnings - booked.earnings
    if delta:
        await _append(
            conn,
            now,
            kind=REVSHARE,
            affiliate_id=affiliate_id,
            offer_id=offer_id,
            conversion_id=cause,
            period=period,
            amount=delta,
            currency=currency,
            fx_rate=await _rate_of(conn, cause),
            percent=str(month.percent),
            status=APPROVED if end <= now else PENDING,
            reverses_id=await _reverses(conn, cause) if delta < 0 else None,
            detail=(
                f"NGR {money_text(month.ngr)}, carry-in {money_text(month.carry_in)}, "
                f"FTDs {month.ftds}, {month.percent}% ⇒ {money_text(month.earnings)} "
                f"(booked {money_text(booked.earnings)}); after conversion {cause}"
            ),
        )
    await conn.execute(
        update(revshare_periods)
        .where(key & (revshare_periods.c.period == period))
        .values(
            ngr=month.ngr,
            ftds=month.ftds,
            carry_in=month.carry_in,
            percent=str(month.percent),
            earnings=month.earnings,
            carry_out=month.carry_out,
            updated_at=now,
        )
    )
    return bool(month.carry_out != booked.carry_out)


async def _rate_of(conn: AsyncConnection, conversion_id: int) -> str | None:
    query = select(conversions.c.fx_rate).where(conversions.c.id == conversion_id)
    rate: str | None = (await conn.execute(query)).scalar_one_or_none()
    return rate


async def _reverses(conn: AsyncConnection, cause: int) -> int | None:
    """A negative RevShare entry caused by a conversion that earlier produced a positive one
    reverses that entry (a rejected or cancelled NGR report)."""
    query = (
        select(commissions.c.id)
        .where(
            (commissions.c.conversion_id == cause)
            & (commissions.c.kind == REVSHARE)
            & (commissions.c.amount > 0)
        )
        .order_by(commissions.c.id.desc())
        .limit(1)
    )
    found: int | None = (await conn.execute(query)).scalar_one_or_none()
    return found


async def settle(db: Database, now: datetime) -> int:
    """Approve CPA entries whose hold has passed and RevShare entries of months that have ended."""
    async with db.write() as conn:
        held = await conn.execute(
            update(commissions)
            .where(
                (commissions.c.status == PENDING)
                & (commissions.c.kind == CPA)
                & (commissions.c.hold_until <= now)
            )
            .values(status=APPROVED, updated_at=now)
        )
        ended = await conn.execute(
            update(commissions)
            .where(
                (commissions.c.status == PENDING)
                & (commissions.c.kind == REVSHARE)
                & (commissions.c.period < period_of(now))
            )
            .values(status=APPROVED, updated_at=now)
        )
    return int(held.rowcount) + int(ended.rowcount)


async def _append(conn: AsyncConnection, now: datetime, *, detail: str, **entry: Any) -> None:
    """A new ledger entry; `detail` explains its figures, cropped to what the column holds."""
    await conn.execute(
        commissions.insert().values(**entry, detail=detail[:512], created_at=now, updated_at=now)
    )


@dataclass(frozen=True, slots=True)
class EntryFilter:
    affiliate_id: int | None = None
    offer_id: int | None = None
    player: int | None = None
    conversion_id: int | None = None
    kind: str | None = None
    status: str | None = None
    period: str | None = None
    span: Span[datetime] = field(default_factory=Span)  # of created_at


async def entries(db: Database, f: EntryFilter, cursor: str | None, limit: int) -> paging.Page:
    """The ledger, newest first."""
    c = commissions.c
    wanted = {
        c.affiliate_id: f.affiliate_id,
        c.offer_id: f.offer_id,
        c.player: f.player,
        c.conversion_id: f.conversion_id,
        c.kind: f.kind,
        c.status: f.status,
        c.period: f.period,
    }
    query = paging.within(paging.equal(select(commissions), wanted), c.created_at, f.span)
    return await paging.page(db, query, [paging.Key(c.id, descending=True)], cursor, limit)
