"""The commission ledger's rows: entries (appended, never edited but for their status) and the
RevShare months they sum to. What to book is decided in service/commissions.py.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, select, update

from clickback.core.commission import (
    Deal,
    DealKind,
    EntryKind,
    EntryStatus,
    RevSharePeriod,
    RevShareTerms,
    period_bounds,
    period_of,
)
from clickback.core.intake import PIXEL
from clickback.core.spans import Span
from clickback.store import paging
from clickback.store.catalog import deal_from_row, terms_to_json
from clickback.store.db import Database
from clickback.store.tables import PAYABLE_STATUSES, commissions, conversions, revshare_due, revshare_periods

CPA, REVSHARE = EntryKind.CPA, EntryKind.REVSHARE
PENDING, APPROVED, REVERSED = EntryStatus.PENDING, EntryStatus.APPROVED, EntryStatus.REVERSED
ZERO = Decimal(0)
# A conversion counts in a commission unless it is a pixel's claim that no one has confirmed
# (core.intake.is_claim, as core.commission.month_share keeps the months' figures: they must agree).
NOT_A_CLAIM = (conversions.c.channel != PIXEL) | conversions.c.confirmed


# --- CPA --------------------------------------------------------------------------------------


def booked_cpa(conn: Connection, player: int) -> Row[Any] | None:
    """The player's CPA entry, unless it was reversed already."""
    query = select(commissions).where(
        (commissions.c.player == player)
        & (commissions.c.kind == CPA)
        & commissions.c.reverses_id.is_(None)
        & (commissions.c.status != REVERSED)
    )
    return (conn.execute(query)).first()


def mark_reversed(conn: Connection, entry: int, now: datetime) -> None:
    stmt = update(commissions).where(commissions.c.id == entry)
    conn.execute(stmt.values(status=REVERSED, updated_at=now))


def kept_cpa_values(deal: Deal) -> dict[str, str]:
    """The player row's values keeping the CPA terms of `deal` (a deal paying CPA), which the
    player qualifies under: later decisions on their CPA are judged by them (kept_cpa_deal)."""
    assert deal.cpa is not None, "a deal without CPA terms books no CPA"
    return {
        "cpa_terms": terms_to_json(Deal(DealKind.CPA, deal.currency, cpa=deal.cpa)),
        "cpa_currency": deal.currency,
    }


def kept_cpa_deal(currency: str | None, terms: str | None) -> Deal | None:
    """The CPA terms a player row keeps (cpa_currency, cpa_terms), as a CPA deal in the currency
    they were booked in; None if it keeps none (the player never qualified)."""
    if currency is None or terms is None:
        return None
    return _kept_cpa_deal(currency, terms)


# The same few terms are kept on many players: each text is parsed once.
@lru_cache(maxsize=256)
def _kept_cpa_deal(currency: str, terms: str) -> Deal | None:
    deal = deal_from_row(DealKind.CPA.value, currency, terms)
    return deal if deal.cpa is not None else None


# --- RevShare months ----------------------------------------------------------------------------


def _month_key(affiliate_id: int, offer_id: int) -> Any:
    return (revshare_periods.c.affiliate_id == affiliate_id) & (revshare_periods.c.offer_id == offer_id)


def carry_before(conn: Connection, affiliate_id: int, offer_id: int, period: str) -> tuple[Decimal, str]:
    """The carry-out of the last booked month before `period` (months without a row carry it on),
    in that month's currency ("" without one)."""
    r = revshare_periods.c
    query = (
        select(r.carry_out, r.currency)
        .where(_month_key(affiliate_id, offer_id) & (r.period < period))
        .order_by(r.period.desc())
        .limit(1)
    )
    found = conn.execute(query).first()
    return (found.carry_out, found.currency) if found is not None else (ZERO, "")


def booked_currencies(conn: Connection, affiliate_id: int, offer_id: int) -> dict[str, str]:
    """Every booked month of the affiliate on the offer, and the currency it is priced in."""
    r = revshare_periods.c
    query = select(r.period, r.currency).where(_month_key(affiliate_id, offer_id))
    return {row.period: row.currency for row in conn.execute(query)}


def reported_currencies(conn: Connection, affiliate_id: int, offer_id: int) -> frozenset[str]:
    """Every currency an NGR report of the affiliate on the offer was priced in (whatever its
    status now): each may pin a month without a row (reports_currency)."""
    query = select(conversions.c.deal_currency).where(_priced_reports(affiliate_id, offer_id)).distinct()
    return frozenset(conn.execute(query).scalars())


def reports_currency(conn: Connection, affiliate_id: int, offer_id: int, period: str) -> str | None:
    """The currency a month without a row was first priced in: its first NGR report's (under a
    deal that paid no RevShare then), whatever that report's status now."""
    c = conversions.c
    query = (
        select(c.deal_currency)
        .where(_priced_reports(affiliate_id, offer_id) & (c.period == period))
        .order_by(c.id)
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar_one_or_none()
    return found


def _priced_reports(affiliate_id: int, offer_id: int) -> ColumnElement[bool]:
    """The affiliate's NGR reports on the offer that were priced (a test's count nowhere)."""
    c = conversions.c
    return (
        (c.affiliate_id == affiliate_id)
        & (c.offer_id == offer_id)
        & (c.event == "net_revenue")
        & c.deal_currency.is_not(None)
        & ~c.test
    )


def lock_months(conn: Connection, affiliate_id: int, offer_id: int, first: str) -> dict[str, Row[Any]]:
    """The booked months from `first` on, locked in month order (two transactions recomputing the
    same months take their locks in the same order)."""
    query = (
        select(revshare_periods)
        .where(_month_key(affiliate_id, offer_id) & (revshare_periods.c.period >= first))
        .order_by(revshare_periods.c.period)
        .with_for_update()
    )
    return {row.period: row for row in conn.execute(query).all()}


def new_month(
    db: Database,
    conn: Connection,
    affiliate_id: int,
    offer_id: int,
    period: str,
    currency: str,
    terms: RevShareTerms,
    inputs: tuple[Decimal, int],
    now: datetime,
) -> Row[Any] | None:
    """A month's first row, with its inputs (counted from scratch), locked; None if another
    transaction created it first (then its row holds everything but this transaction's own)."""
    ngr, ftds = inputs
    stmt = db.insert_ignore(revshare_periods).values(
        affiliate_id=affiliate_id,
        offer_id=offer_id,
        period=period,
        currency=currency,
        ngr=ngr,
        ftds=ftds,
        carry_in=ZERO,
        percent="0",
        earnings=ZERO,
        carry_out=ZERO,
        updated_at=now,
        terms=_terms_text(terms),
    )
    if not conn.execute(stmt).rowcount:
        return None
    return lock_months(conn, affiliate_id, offer_id, period)[period]


def add_to_month(
    conn: Connection, affiliate_id: int, offer_id: int, period: str, ngr: Decimal, ftds: int
) -> None:
    """Keep a month's inputs current where RevShare is not (or no longer) paid, should it be again."""
    stmt = update(revshare_periods).where(
        _month_key(affiliate_id, offer_id) & (revshare_periods.c.period == period)
    )
    conn.execute(stmt.values(ngr=revshare_periods.c.ngr + ngr, ftds=revshare_periods.c.ftds + ftds))


def month_inputs(
    conn: Connection, affiliate_id: int, offer_id: int, period: str, currency: str
) -> tuple[Decimal, int]:
    """The month's NGR (its reports, in the month's `currency`) and its first deposits, counted
    from scratch: for a month's first row (later changes are added as they happen). Its reports
    are priced in its currency (service/commissions.month_currency); one priced otherwise before
    that rule held is left out rather than added as if it were in it."""
    c = conversions.c
    owned = (c.affiliate_id == affiliate_id) & (c.offer_id == offer_id) & c.status.in_(PAYABLE_STATUSES)
    owned &= ~c.test & NOT_A_CLAIM  # a test conversion earns nothing (ADR 13), nor a pixel's claim
    ngr_query = select(func.sum(c.deal_amount)).where(
        owned & (c.event == "net_revenue") & (c.period == period) & (c.deal_currency == currency)
    )
    start, end = period_bounds(period)
    ftd_query = select(func.count()).where(
        owned & (c.event == "first_deposit") & (c.event_at >= start) & (c.event_at < end)
    )
    ngr = (conn.execute(ngr_query)).scalar_one()
    ftds = (conn.execute(ftd_query)).scalar_one()
    return Decimal(ngr or 0), int(ftds)


def month_terms(row: Row[Any]) -> RevShareTerms | None:
    """The terms a booked month was last priced under (None: booked before they were kept)."""
    if row.terms is None:
        return None
    return deal_from_row(DealKind.REVSHARE.value, row.currency, row.terms).revshare


def _terms_text(terms: RevShareTerms) -> str:
    # A deal's JSON (the currency is the month row's own).
    return terms_to_json(Deal(DealKind.REVSHARE, "", revshare=terms))


def save_month(
    conn: Connection,
    affiliate_id: int,
    offer_id: int,
    period: str,
    month: RevSharePeriod,
    terms: RevShareTerms | None,
    now: datetime,
) -> None:
    """The month's figures, and the terms it was priced under in its currency (None: none kept,
    the deal's are taken when it is recomputed)."""
    stmt = update(revshare_periods).where(
        _month_key(affiliate_id, offer_id) & (revshare_periods.c.period == period)
    )
    conn.execute(
        stmt.values(
            ngr=month.ngr,
            ftds=month.ftds,
            carry_in=month.carry_in,
            percent=str(month.percent),
            earnings=month.earnings,
            carry_out=month.carry_out,
            updated_at=now,
            terms=None if terms is None else _terms_text(terms),
        )
    )


async def months_due(db: Database) -> bool:
    """Whether a month waits in revshare_due: a cheap read, so that nothing takes the write lock
    for it otherwise (the table is empty once the months a migration listed are done)."""
    async with db.read() as conn:
        return (await conn.execute(select(revshare_due.c.period).limit(1))).first() is not None


def take_due(conn: Connection, limit: int) -> list[Row[Any]]:
    """Up to `limit` months waiting in revshare_due, deleted in this transaction, which books
    them. Locked first, in key order: another process's transaction taking them waits for this
    one and then finds them gone (not SKIP LOCKED: a settle that returns has seen every month
    listed booked); SQLite's writers take turns."""
    d = revshare_due.c
    query = select(revshare_due).order_by(d.affiliate_id, d.offer_id, d.period).limit(limit)
    due = conn.execute(query.with_for_update()).all()
    for row in due:
        mine = (d.affiliate_id == row.affiliate_id) & (d.offer_id == row.offer_id) & (d.period == row.period)
        conn.execute(delete(revshare_due).where(mine))
    return list(due)


def reversible(conn: Connection, cause: int) -> int | None:
    """The latest positive RevShare entry a conversion caused: what a negative entry caused by
    the same conversion (a rejected NGR report) reverses."""
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
    found: int | None = (conn.execute(query)).scalar_one_or_none()
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


def append(conn: Connection, now: datetime, *, detail: str, **entry: Any) -> None:
    """A new ledger entry; `detail` explains its figures, cropped to what the column holds."""
    conn.execute(commissions.insert().values(**entry, detail=detail[:512], created_at=now, updated_at=now))


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
