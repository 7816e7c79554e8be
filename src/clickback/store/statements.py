"""Reading the ledger back: monthly statements per affiliate, and what players are worth."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Select, case, func, select, type_coerce

from clickback.core.commission import DEPOSIT_EVENTS, period_bounds
from clickback.core.spans import Span
from clickback.core.statements import StatementLine
from clickback.store import paging
from clickback.store.conversion_rows import PAYABLE_STATUSES
from clickback.store.db import Database, utc_month
from clickback.store.tables import MONEY_SCALE, commissions, conversions, offers, players, revshare_periods

ZERO = Decimal(0)


async def statement(db: Database, affiliate_id: int, period: str) -> list[StatementLine]:
    start, end = period_bounds(period)
    c, p, r = commissions, players, revshare_periods
    async with db.read() as conn:
        ledger = (
            await conn.execute(
                select(
                    c.c.offer_id,
                    c.c.kind,
                    c.c.currency,
                    func.sum(c.c.amount).label("amount"),
                    func.count().filter(c.c.reverses_id.is_(None)).label("booked"),
                    func.count().filter(c.c.reverses_id.is_not(None)).label("reversals"),
                )
                .where((c.c.affiliate_id == affiliate_id) & (c.c.period == period))
                .group_by(c.c.offer_id, c.c.kind, c.c.currency)
            )
        ).all()
        months = (
            await conn.execute(select(r).where((r.c.affiliate_id == affiliate_id) & (r.c.period == period)))
        ).all()
        registered = (
            await conn.execute(
                select(p.c.offer_id, func.count())
                .where(
                    (p.c.affiliate_id == affiliate_id)
                    & (p.c.registered_at >= start)
                    & (p.c.registered_at < end)
                )
                .group_by(p.c.offer_id)
            )
        ).all()
        ftds = (
            await conn.execute(
                select(conversions.c.offer_id, func.count())
                .where(
                    (conversions.c.affiliate_id == affiliate_id)
                    & (conversions.c.event == "first_deposit")
                    & conversions.c.status.in_(PAYABLE_STATUSES)
                    & (conversions.c.created_at >= start)
                    & (conversions.c.created_at < end)
                )
                .group_by(conversions.c.offer_id)
            )
        ).all()
        names = {r.id: r.name for r in (await conn.execute(select(offers.c.id, offers.c.name))).all()}
    line: dict[int, dict[str, Any]] = defaultdict(dict)
    for row in ledger:
        entry = line[row.offer_id]
        entry["currency"] = row.currency
        if row.kind == "cpa":
            entry |= {
                "qualified_cpas": row.booked,
                "cpa_reversals": row.reversals,
                "cpa_earnings": row.amount,
            }
        else:
            entry["revshare_earnings"] = row.amount
    for row in months:
        line[row.offer_id] |= {
            "currency": row.currency,
            "ngr": row.ngr,
            "revshare_percent": Decimal(row.percent),
            "carry_in": row.carry_in,
            "carry_out": row.carry_out,
        }
    for offer_id, count in registered:
        line[offer_id]["players"] = count
    for offer_id, count in ftds:
        line[offer_id]["ftds"] = count
    return [
        StatementLine(
            offer_id=offer_id,
            offer=names.get(offer_id, ""),
            currency=v.get("currency", ""),
            players=v.get("players", 0),
            ftds=v.get("ftds", 0),
            qualified_cpas=v.get("qualified_cpas", 0),
            cpa_reversals=v.get("cpa_reversals", 0),
            cpa_earnings=v.get("cpa_earnings", ZERO),
            ngr=v.get("ngr", ZERO),
            revshare_percent=v.get("revshare_percent", ZERO),
            carry_in=v.get("carry_in", ZERO),
            carry_out=v.get("carry_out", ZERO),
            revshare_earnings=v.get("revshare_earnings", ZERO),
        )
        for offer_id, v in sorted(line.items())
    ]


# What a player is worth: cumulative deposits (net of chargebacks) and NGR in the deal's currency,
# from their pending and approved conversions, and the CPA commission booked for them. RevShare is
# earned per affiliate-month, not per player. Sums of raw 1/10,000 integers, converted once at
# the end (sums of a TypeDecorator are ambiguous).
_C = conversions.c
_AMOUNT = type_coerce(_C.deal_amount, BigInteger)
_COUNTED = _C.status.in_(PAYABLE_STATUSES)
_DEPOSITS = func.coalesce(
    func.sum(case((_C.event.in_(DEPOSIT_EVENTS), _AMOUNT), (_C.event == "chargeback", -_AMOUNT), else_=0)), 0
)
_NGR = func.coalesce(func.sum(case((_C.event == "net_revenue", _AMOUNT), else_=0)), 0)
_CPA = func.coalesce(func.sum(type_coerce(commissions.c.amount, BigInteger)), 0)
# A player's cohort: the month they registered, else the month of their first postback.
_COHORT_AT = func.coalesce(players.c.registered_at, players.c.first_seen_at)


@dataclass(frozen=True, slots=True)
class PlayerFilter:
    advertiser_id: int | None = None
    affiliate_id: int | None = None
    offer_id: int | None = None
    player_id: str | None = None
    country: str | None = None
    cohort: str | None = None
    qualified: bool | None = None
    span: Span[datetime] = field(default_factory=Span)  # of first_seen_at


def _players_of(query: Select[Any], f: PlayerFilter) -> Select[Any]:
    p = players.c
    wanted = {
        p.advertiser_id: f.advertiser_id,
        p.affiliate_id: f.affiliate_id,
        p.offer_id: f.offer_id,
        p.player_id: f.player_id,
        p.country: f.country,
    }
    query = paging.within(paging.equal(query, wanted), p.first_seen_at, f.span)
    if f.cohort is not None:
        query = paging.within(query, _COHORT_AT, Span(*period_bounds(f.cohort)))
    if f.qualified is not None:
        query = query.where(p.qualified_at.is_not(None) if f.qualified else p.qualified_at.is_(None))
    return query


async def player_values(db: Database, f: PlayerFilter, cursor: str | None, limit: int) -> paging.Page:
    """Each player's worth, oldest player first. Correlated subqueries: an index lookup each, so a
    page costs what its rows cost."""
    theirs = (_C.advertiser_id == players.c.advertiser_id) & (_C.player_id == players.c.player_id) & _COUNTED
    cpa = (commissions.c.player == players.c.id) & (commissions.c.kind == "cpa")
    query = select(
        players,
        select(_DEPOSITS).where(theirs).scalar_subquery().label("deposits"),
        select(_NGR).where(theirs).scalar_subquery().label("ngr"),
        select(_CPA).where(cpa).scalar_subquery().label("commission"),
        utc_month(_COHORT_AT).label("cohort"),
    )
    page = await paging.page(db, _players_of(query, f), [paging.Key(players.c.id)], cursor, limit)
    return replace(page, rows=[row | _in_money(row) for row in page.rows])


async def cohorts(db: Database, f: PlayerFilter) -> list[dict[str, Any]]:
    """Players' worth summed by cohort; a cohort's FTDs are its players whose first deposit still
    counts (pending or approved). Per-player sums joined rather than player_values' correlated
    subqueries: over 100,000 players with 4 conversions each, 1.5-2.0 s instead of 3.1-3.6 s on
    PostgreSQL (SQLite: 1.2-1.4 s against 1.0-1.2 s)."""
    sums = (
        select(_C.advertiser_id, _C.player_id, _DEPOSITS.label("deposits"), _NGR.label("ngr"))
        .where(_COUNTED & (_C.player_id != ""))
        .group_by(_C.advertiser_id, _C.player_id)
        .subquery()
    )
    cpa = (
        select(commissions.c.player, _CPA.label("commission"))
        .where(commissions.c.kind == "cpa")
        .group_by(commissions.c.player)
        .subquery()
    )
    ftd = conversions.alias("ftd")
    joined = (
        players.outerjoin(
            sums,
            (sums.c.advertiser_id == players.c.advertiser_id) & (sums.c.player_id == players.c.player_id),
        )
        .outerjoin(cpa, cpa.c.player == players.c.id)
        .outerjoin(ftd, (ftd.c.id == players.c.ftd_conversion_id) & ftd.c.status.in_(PAYABLE_STATUSES))
    )
    each = select(
        utc_month(_COHORT_AT).label("cohort"),
        ftd.c.id.label("ftd"),
        sums.c.deposits,
        sums.c.ngr,
        cpa.c.commission,
    ).select_from(joined)
    per_player = _players_of(each, f).subquery()
    query = (
        select(
            per_player.c.cohort,
            func.count().label("players"),
            func.count(per_player.c.ftd).label("ftds"),
            func.sum(per_player.c.deposits).label("deposits"),
            func.sum(per_player.c.ngr).label("ngr"),
            func.sum(per_player.c.commission).label("commission"),
        )
        .group_by(per_player.c.cohort)
        .order_by(per_player.c.cohort)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [dict(row._mapping) | _in_money(row._mapping) for row in rows]


def _in_money(row: Mapping[Any, Any]) -> dict[str, Decimal]:
    return {key: Decimal(row[key] or 0) / MONEY_SCALE for key in ("deposits", "ngr", "commission")}
