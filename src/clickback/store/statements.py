"""Reading the ledger back: monthly statements per affiliate, and what players are worth."""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Label,
    Select,
    case,
    cast,
    distinct,
    func,
    null,
    select,
    type_coerce,
    union_all,
)

from clickback.core.commission import DEPOSIT_EVENTS, Deal, DealKind, period_bounds
from clickback.core.spans import Span
from clickback.core.statements import PlayerValue, StatementLine, by_currency
from clickback.store import paging
from clickback.store.db import Database, utc_month
from clickback.store.ledger import NOT_A_CLAIM
from clickback.store.tables import (
    MONEY_SCALE,
    PAYABLE_STATUSES,
    commissions,
    conversions,
    deals,
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
    c, r, v = commissions, revshare_periods, conversions
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
        # Test conversions (ADR 13) count in no statement.
        mine = (v.c.affiliate_id == affiliate_id) & v.c.status.in_(PAYABLE_STATUSES) & ~v.c.test
        # The FTDs and NGR the month's RevShare was priced on: not a pixel's unconfirmed claim.
        priced = mine & NOT_A_CLAIM
        # Players: a registration of the month that stands, as reports count them. The player's
        # registered_at stays when the registration is rejected (the operator disowns the player).
        # A registration naming no player (a pixel's claim keeps none) is no player.
        registered = (
            await conn.execute(
                select(v.c.offer_id, func.count(distinct(v.c.player_id)))
                .where(
                    priced
                    & (v.c.player_id != "")
                    & (v.c.event == "registration")
                    & (v.c.event_at >= start)
                    & (v.c.event_at < end)
                )
                .group_by(v.c.offer_id)
            )
        ).all()
        ftds = (
            await conn.execute(
                select(v.c.offer_id, func.count())
                .where(
                    priced & (v.c.event == "first_deposit") & (v.c.event_at >= start) & (v.c.event_at < end)
                )
                .group_by(v.c.offer_id)
            )
        ).all()
        ngr = (
            await conn.execute(
                select(v.c.offer_id, v.c.deal_currency, func.sum(v.c.deal_amount))
                .where(
                    priced
                    & (v.c.event == "net_revenue")
                    & (v.c.period == period)
                    & v.c.deal_amount.is_not(None)
                )
                .group_by(v.c.offer_id, v.c.deal_currency)
            )
        ).all()
        names = {r.id: r.name for r in (await conn.execute(select(offers.c.id, offers.c.name))).all()}
    # One line per offer and currency: a deal whose currency changed during the month has
    # entries in both, and amounts in different currencies are never added together.
    line: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
    for row in ledger:
        entry = line[row.offer_id, row.currency]
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
            line[offer_id, row.currency] |= {
                "revshare_percent": Decimal(row.percent),
                "carry_in": row.carry_in,
                "carry_out": row.carry_out,
            }
        elif row.carry_out:
            line[offer_id, row.currency] |= {"carry_in": row.carry_out, "carry_out": row.carry_out}
    for offer_id, currency, amount in ngr:
        line[offer_id, currency]["ngr"] = amount
    # Players and FTDs are counted once per offer, whatever the currency: on its line in the
    # deal's currency, else on its first line.
    for offer_id, count in registered:
        line[_counts_line(line, offer_id, deals.get(offer_id))]["players"] = count
    for offer_id, count in ftds:
        line[_counts_line(line, offer_id, deals.get(offer_id))]["ftds"] = count
    return [
        _line(offer_id, names.get(offer_id, ""), currency, facts, deals.get(offer_id))
        for (offer_id, currency), facts in sorted(line.items())
    ]


def _counts_line(line: Mapping[tuple[int, str], object], offer_id: int, deal: Deal | None) -> tuple[int, str]:
    currency = deal.currency if deal else ""
    if (offer_id, currency) in line:
        return offer_id, currency
    return min((key for key in line if key[0] == offer_id), default=(offer_id, currency))


def _line(offer_id: int, name: str, currency: str, facts: dict[str, Any], deal: Deal | None) -> StatementLine:
    """RevShare columns say "not part of this deal" (None) rather than 0 where the deal pays none
    and nothing was booked for it."""
    revshare = (
        deal is None or deal.kind is not DealKind.CPA or "revshare_earnings" in facts or "carry_in" in facts
    )
    zero_if_revshare = ZERO if revshare else None
    return StatementLine(
        offer_id=offer_id,
        offer=name,
        currency=currency,
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


# What a player is worth: cumulative deposits (net of chargebacks) and NGR from their pending and
# approved conversions, and the CPA commission booked for them, each in the currency it was priced
# or booked in (a conversion's deal_currency, an entry's currency). A deal that changed currency
# left the earlier ones in the old currency, and amounts in different currencies are never added.
# RevShare is earned per affiliate-month, not per player. Sums of raw 1/10,000 integers, converted
# once at the end (sums of a TypeDecorator are ambiguous).
_C = conversions.c
_AMOUNT = type_coerce(_C.deal_amount, BigInteger)
_COUNTED = _C.status.in_(PAYABLE_STATUSES) & ~_C.test
# The conversions a player's amounts come from: priced ones only (a currency to be counted in).
_PRICED = (
    _COUNTED & _C.event.in_((*DEPOSIT_EVENTS, "chargeback", "net_revenue")) & _C.deal_amount.is_not(None)
)
_DEPOSITS = func.coalesce(
    func.sum(case((_C.event.in_(DEPOSIT_EVENTS), _AMOUNT), (_C.event == "chargeback", -_AMOUNT), else_=0)), 0
)
_NGR = func.coalesce(func.sum(case((_C.event == "net_revenue", _AMOUNT), else_=0)), 0)
_CPA = func.coalesce(func.sum(type_coerce(commissions.c.amount, BigInteger)), 0)
# A player's cohort: the month they registered, else the month of their first postback.
_COHORT_AT = func.coalesce(players.c.registered_at, players.c.first_seen_at)
# The deal's currency: that of the deal in force for the player's offer and affiliate (the
# affiliate's own deal, else the offer's default), as in the catalog. None without a deal.
_OWN_DEAL, _DEFAULT_DEAL = deals.alias("own_deal"), deals.alias("default_deal")
_WITH_DEALS = players.outerjoin(
    _OWN_DEAL,
    (_OWN_DEAL.c.offer_id == players.c.offer_id) & (_OWN_DEAL.c.affiliate_id == players.c.affiliate_id),
).outerjoin(
    _DEFAULT_DEAL, (_DEFAULT_DEAL.c.offer_id == players.c.offer_id) & (_DEFAULT_DEAL.c.affiliate_id == 0)
)
_CURRENCY = func.coalesce(_OWN_DEAL.c.currency, _DEFAULT_DEAL.c.currency)
_MONEY = ("deposits", "ngr", "commission")


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
    """Each player's worth, oldest player first: a page of players, then what they brought in each
    currency. `by_currency` lists it (core.statements.by_currency); deposits, ngr and commission
    beside the deal's currency are those in it."""
    query = select(players, utc_month(_COHORT_AT).label("cohort"), _CURRENCY.label("currency")).select_from(
        _WITH_DEALS
    )
    page = await paging.page(db, _players_of(query, f), [paging.Key(players.c.id)], cursor, limit)
    found = await _values_of(db, [row["id"] for row in page.rows])
    return replace(page, rows=[_valued(row, found.get(row["id"], [])) for row in page.rows])


async def _values_of(db: Database, ids: Sequence[int]) -> dict[int, list[PlayerValue]]:
    """What each of these players brought, per currency. Looked up by the page's ids: an index
    lookup each (conversions by player_id, commissions by player), so a page costs what its rows
    cost."""
    if not ids:
        return {}
    p, c = players.c, commissions.c
    theirs = (_C.advertiser_id == p.advertiser_id) & (_C.player_id == p.player_id)
    priced = (
        select(
            p.id.label("player"),
            _C.deal_currency.label("currency"),
            _DEPOSITS.label("deposits"),
            _NGR.label("ngr"),
            _nothing("commission"),
        )
        .select_from(players.join(conversions, theirs))
        .where(p.id.in_(ids) & _PRICED)
        .group_by(p.id, _C.deal_currency)
    )
    booked = (
        select(c.player, c.currency, _nothing("deposits"), _nothing("ngr"), _CPA.label("commission"))
        .where(c.player.in_(ids) & (c.kind == "cpa"))
        .group_by(c.player, c.currency)
    )
    both = union_all(priced, booked).subquery()
    sums = (func.sum(both.c[name]).label(name) for name in _MONEY)
    query = select(both.c.player, both.c.currency, *sums).group_by(both.c.player, both.c.currency)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    found: dict[int, list[PlayerValue]] = defaultdict(list)
    for row in rows:
        found[row.player].append(PlayerValue(row.currency, **_in_money(row._mapping)))
    return found


def _valued(row: dict[str, Any], values: list[PlayerValue]) -> dict[str, Any]:
    """The player's row with their values by currency, and beside the deal's currency the amounts
    in it."""
    each = by_currency(row["currency"], values)
    shown = each[0] if each and each[0].currency == row["currency"] else PlayerValue("")
    return row | {
        "deposits": shown.deposits,
        "ngr": shown.ngr,
        "commission": shown.commission,
        "by_currency": [asdict(value) for value in each],
    }


async def cohorts(db: Database, f: PlayerFilter) -> list[dict[str, Any]]:
    """Players' worth summed by cohort and currency: one row per cohort and currency, each amount
    on the row of the currency it was priced or booked in, as amounts in different currencies are
    never added. A cohort's players, and its FTDs (its players whose first deposit still counts:
    pending or approved), are counted once, on the row of their deal's currency. Per-player sums
    joined rather than player_values' lookups: over 100,000 players with 4 conversions each,
    1.5-2.0 s instead of 3.1-3.6 s on PostgreSQL (SQLite: 1.2-1.4 s against 1.0-1.2 s; measured
    before the sums were split by currency)."""
    p, c = players.c, commissions.c
    ftd = conversions.alias("ftd")
    chosen = _players_of(
        select(
            p.id,
            p.advertiser_id,
            p.player_id,
            utc_month(_COHORT_AT).label("cohort"),
            _CURRENCY.label("currency"),
            ftd.c.id.label("ftd"),
        ).select_from(
            _WITH_DEALS.outerjoin(ftd, (ftd.c.id == p.ftd_conversion_id) & ftd.c.status.in_(PAYABLE_STATUSES))
        ),
        f,
    ).cte("chosen")
    sums = (
        select(
            _C.advertiser_id, _C.player_id, _C.deal_currency, _DEPOSITS.label("deposits"), _NGR.label("ngr")
        )
        .where(_PRICED & (_C.player_id != ""))
        .group_by(_C.advertiser_id, _C.player_id, _C.deal_currency)
        .subquery()
    )
    cpa = (
        select(c.player, c.currency, _CPA.label("commission"))
        .where(c.kind == "cpa")
        .group_by(c.player, c.currency)
        .subquery()
    )
    counted = select(
        chosen.c.cohort,
        chosen.c.currency,
        func.count().label("players"),
        func.count(chosen.c.ftd).label("ftds"),
        *(_nothing(name) for name in _MONEY),
    ).group_by(chosen.c.cohort, chosen.c.currency)
    theirs = (sums.c.advertiser_id == chosen.c.advertiser_id) & (sums.c.player_id == chosen.c.player_id)
    priced = (
        select(
            chosen.c.cohort,
            sums.c.deal_currency,
            _nothing("players"),
            _nothing("ftds"),
            func.sum(sums.c.deposits).label("deposits"),
            func.sum(sums.c.ngr).label("ngr"),
            _nothing("commission"),
        )
        .select_from(chosen.join(sums, theirs))
        .group_by(chosen.c.cohort, sums.c.deal_currency)
    )
    booked = (
        select(
            chosen.c.cohort,
            cpa.c.currency,
            *(_nothing(name) for name in ("players", "ftds", "deposits", "ngr")),
            func.sum(cpa.c.commission).label("commission"),
        )
        .select_from(chosen.join(cpa, cpa.c.player == chosen.c.id))
        .group_by(chosen.c.cohort, cpa.c.currency)
    )
    rows = union_all(counted, priced, booked).subquery()
    query = (
        select(
            rows.c.cohort,
            rows.c.currency,
            *(func.sum(rows.c[name]).label(name) for name in ("players", "ftds", *_MONEY)),
        )
        .group_by(rows.c.cohort, rows.c.currency)
        .order_by(rows.c.cohort, func.coalesce(rows.c.currency, ""))
    )
    async with db.read() as conn:
        found = (await conn.execute(query)).all()
    return [
        {
            "cohort": row.cohort,
            "currency": row.currency,
            "players": int(row.players or 0),
            "ftds": int(row.ftds or 0),
        }
        | _in_money(row._mapping)
        for row in found
    ]


def _in_money(row: Mapping[Any, Any]) -> dict[str, Decimal]:
    return {key: Decimal(row[key] or 0) / MONEY_SCALE for key in _MONEY}


def _nothing(name: str) -> Label[Any]:
    """A column a branch of a UNION has nothing for. Typed: PostgreSQL resolves the untyped NULLs
    of the first two branches as text, which a later branch's numeric sum cannot be added to."""
    return cast(null(), BigInteger).label(name)
