"""Reading the ledger back: monthly statements per affiliate, and what players are worth."""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Label, Select, case, func, select, type_coerce

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


# A player's cohort: the month they registered, else the month of their first postback.
_COHORT_AT = func.coalesce(players.c.registered_at, players.c.first_seen_at)


def _player_values() -> list[Label[Any]]:
    """Per player, as correlated subqueries (an index lookup each, so a page of players costs what
    its rows cost): cumulative deposits (net of chargebacks) and NGR in the deal's currency, the
    CPA commission booked for them, and whether their first deposit still counts (pending or
    approved). RevShare is earned per affiliate-month, not per player.

    Raw 1/10,000 integers, converted once at the end (sums of a TypeDecorator are ambiguous)."""
    c = conversions.c
    amount = type_coerce(c.deal_amount, BigInteger)
    theirs = (
        (c.advertiser_id == players.c.advertiser_id)
        & (c.player_id == players.c.player_id)
        & c.status.in_(PAYABLE_STATUSES)
    )
    deposited = case((c.event.in_(DEPOSIT_EVENTS), amount), (c.event == "chargeback", -amount), else_=0)
    ngr = case((c.event == "net_revenue", amount), else_=0)
    cpa = type_coerce(commissions.c.amount, BigInteger)
    ftd = conversions.alias("ftd")
    return [
        select(func.coalesce(func.sum(deposited), 0)).where(theirs).scalar_subquery().label("deposits"),
        select(func.coalesce(func.sum(ngr), 0)).where(theirs).scalar_subquery().label("ngr"),
        select(func.coalesce(func.sum(cpa), 0))
        .where((commissions.c.player == players.c.id) & (commissions.c.kind == "cpa"))
        .scalar_subquery()
        .label("commission"),
        case(
            (
                select(ftd.c.id)
                .where((ftd.c.id == players.c.ftd_conversion_id) & ftd.c.status.in_(PAYABLE_STATUSES))
                .exists(),
                1,
            ),
            else_=0,
        ).label("ftd"),
        utc_month(_COHORT_AT).label("cohort"),
    ]


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
    """What each player is worth (_player_values), in the deal's currency; oldest player first."""
    query = _players_of(select(players, *_player_values()), f)
    page = await paging.page(db, query, [paging.Key(players.c.id)], cursor, limit)
    return replace(page, rows=[row | _in_money(row) for row in page.rows])


async def cohorts(db: Database, f: PlayerFilter) -> list[dict[str, Any]]:
    """Players grouped by registration month (first postback month when never registered)."""
    each = _players_of(select(*_player_values()), f).subquery()
    query = (
        select(
            each.c.cohort,
            func.count().label("players"),
            func.sum(each.c.ftd).label("ftds"),
            func.sum(each.c.deposits).label("deposits"),
            func.sum(each.c.ngr).label("ngr"),
            func.sum(each.c.commission).label("commission"),
        )
        .group_by(each.c.cohort)
        .order_by(each.c.cohort)
    )
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [dict(row._mapping) | {"ftds": int(row.ftds)} | _in_money(row._mapping) for row in rows]


def _in_money(row: Mapping[Any, Any]) -> dict[str, Decimal]:
    return {key: Decimal(row[key] or 0) / MONEY_SCALE for key in ("deposits", "ngr", "commission")}
