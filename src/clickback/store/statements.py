"""Reading the ledger back: monthly statements per affiliate, and what players are worth."""

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, case, func, select, type_coerce

from clickback.core.commission import DEPOSIT_EVENTS, Deal, DealKind, period_bounds, period_of
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


async def statement(
    db: Database, affiliate_id: int, period: str, deals: Mapping[int, Deal]
) -> list[StatementLine]:
    """Every offer with anything to say this month: earnings, players, FTDs, NGR, or a deficit
    carried through it. `deals` are the deals in force for the affiliate, by offer."""
    start, end = period_bounds(period)
    c, p, r, v = commissions, players, revshare_periods, conversions
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
        # This month's RevShare rows, and the months before it: a month without a row of its own
        # carries the last deficit through it.
        months = (
            await conn.execute(
                select(r)
                .where((r.c.affiliate_id == affiliate_id) & (r.c.period <= period))
                .order_by(r.c.offer_id, r.c.period)
            )
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
        mine = (v.c.affiliate_id == affiliate_id) & v.c.status.in_(PAYABLE_STATUSES)
        ftds = (
            await conn.execute(
                select(v.c.offer_id, func.count())
                .where(mine & (v.c.event == "first_deposit") & (v.c.event_at >= start) & (v.c.event_at < end))
                .group_by(v.c.offer_id)
            )
        ).all()
        ngr = (
            await conn.execute(
                select(v.c.offer_id, v.c.deal_currency, func.sum(v.c.deal_amount))
                .where(
                    mine
                    & (v.c.event == "net_revenue")
                    & (v.c.period == period)
                    & v.c.deal_amount.is_not(None)
                )
                .group_by(v.c.offer_id, v.c.deal_currency)
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
    last: dict[int, Any] = {}
    for row in months:
        last[row.offer_id] = row
    for offer_id, row in last.items():
        if row.period == period:
            line[offer_id] |= {
                "currency": row.currency,
                "revshare_percent": Decimal(row.percent),
                "carry_in": row.carry_in,
                "carry_out": row.carry_out,
            }
        elif row.carry_out:
            line[offer_id] |= {
                "currency": row.currency,
                "carry_in": row.carry_out,
                "carry_out": row.carry_out,
            }
    for offer_id, count in registered:
        line[offer_id]["players"] = count
    for offer_id, count in ftds:
        line[offer_id]["ftds"] = count
    for offer_id, currency, amount in ngr:
        line[offer_id].setdefault("currency", currency)
        line[offer_id]["ngr"] = amount
    return [
        _line(offer_id, names.get(offer_id, ""), facts, deals.get(offer_id))
        for offer_id, facts in sorted(line.items())
    ]


def _line(offer_id: int, name: str, facts: dict[str, Any], deal: Deal | None) -> StatementLine:
    """RevShare columns say "not part of this deal" (None) rather than 0 where the deal pays none
    and nothing was booked for it."""
    revshare = (
        deal is None or deal.kind is not DealKind.CPA or "revshare_earnings" in facts or "carry_in" in facts
    )
    zero_if_revshare = ZERO if revshare else None
    return StatementLine(
        offer_id=offer_id,
        offer=name,
        currency=facts.get("currency") or (deal.currency if deal else ""),
        deal=deal.kind.value if deal else "",
        players=facts.get("players", 0),
        ftds=facts.get("ftds", 0),
        qualified_cpas=facts.get("qualified_cpas", 0),
        cpa_reversals=facts.get("cpa_reversals", 0),
        cpa_earnings=facts.get("cpa_earnings", ZERO),
        ngr=facts.get("ngr", ZERO),
        revshare_percent=facts.get("revshare_percent", _terms_percent(deal) if revshare else None),
        carry_in=facts.get("carry_in", zero_if_revshare),
        carry_out=facts.get("carry_out", zero_if_revshare),
        revshare_earnings=facts.get("revshare_earnings", zero_if_revshare),
    )


def _terms_percent(deal: Deal | None) -> Decimal | None:
    """A month with no RevShare row yet shows the deal's base percent."""
    return deal.revshare.percent if deal is not None and deal.revshare is not None else ZERO


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
