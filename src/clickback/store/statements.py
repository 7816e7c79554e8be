"""Reading the ledger back: monthly statements per affiliate, and what players are worth."""

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, case, func, select, type_coerce

from clickback.core.commission import DEPOSIT_EVENTS, period_bounds, period_of
from clickback.core.statements import StatementLine
from clickback.store.db import Database
from clickback.store.tables import (
    MONEY_SCALE,
    PAYABLE_STATUSES,
    commissions,
    conversions,
    offers,
    players,
    revshare_periods,
)

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


async def player_values(
    db: Database, affiliate_id: int | None, offer_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Per player: cumulative deposits (net of chargebacks) and NGR in the deal's currency, and the
    CPA commission booked for them. RevShare is earned per affiliate-month, not per player."""
    # Raw 1/10,000 integers, converted once at the end (sums of a TypeDecorator are ambiguous).
    amount = type_coerce(conversions.c.deal_amount, BigInteger)
    sums = (
        select(
            conversions.c.advertiser_id,
            conversions.c.player_id,
            func.coalesce(
                func.sum(case((conversions.c.event.in_(DEPOSIT_EVENTS), amount), else_=0))
                - func.sum(case((conversions.c.event == "chargeback", amount), else_=0)),
                0,
            ).label("deposits"),
            func.coalesce(func.sum(case((conversions.c.event == "net_revenue", amount), else_=0)), 0).label(
                "ngr"
            ),
        )
        .where(conversions.c.status.in_(PAYABLE_STATUSES) & (conversions.c.player_id != ""))
        .group_by(conversions.c.advertiser_id, conversions.c.player_id)
        .subquery()
    )
    cpa = (
        select(
            commissions.c.player, func.sum(type_coerce(commissions.c.amount, BigInteger)).label("commission")
        )
        .where(commissions.c.kind == "cpa")
        .group_by(commissions.c.player)
        .subquery()
    )
    query = (
        select(
            players,
            sums.c.deposits,
            sums.c.ngr,
            func.coalesce(cpa.c.commission, 0).label("commission"),
        )
        .outerjoin(
            sums,
            (sums.c.advertiser_id == players.c.advertiser_id) & (sums.c.player_id == players.c.player_id),
        )
        .outerjoin(cpa, cpa.c.player == players.c.id)
        .order_by(players.c.id)
        .limit(limit)
    )
    if affiliate_id is not None:
        query = query.where(players.c.affiliate_id == affiliate_id)
    if offer_id is not None:
        query = query.where(players.c.offer_id == offer_id)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        dict(row._mapping)
        | {
            "deposits": _money(row.deposits),
            "ngr": _money(row.ngr),
            "commission": _money(row.commission),
            "cohort": period_of(row.registered_at or row.first_seen_at),
        }
        for row in rows
    ]


def _money(raw: Any) -> Decimal:
    return Decimal(raw or 0) / MONEY_SCALE


def cohorts(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Players grouped by registration month (first postback month when never registered) and
    by the `currency` of their values: amounts in different currencies are never added."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for v in values:
        g = groups.setdefault(
            (v["cohort"], v["currency"] or ""),
            {
                "cohort": v["cohort"],
                "currency": v["currency"],
                "players": 0,
                "ftds": 0,
                "deposits": ZERO,
                "ngr": ZERO,
                "commission": ZERO,
            },
        )
        g["players"] += 1
        g["ftds"] += v["ftd_at"] is not None
        for key in ("deposits", "ngr", "commission"):
            g[key] += v[key]
    return [groups[k] for k in sorted(groups)]
