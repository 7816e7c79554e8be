"""Active players by month, and registration cohorts followed month by month (core/activity.py),
counted from the conversions themselves.

Distinct players cannot be added up from the report rollups (a player active on two days is one
player in the month), so these read the period's conversions: a scan of one to two years of
conversions, not of clicks. Every month is a CASE on the stored time against the UTC instants the
zone's months start at (core.reporting.month_instants), so both dialects bucket alike."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.sql import Subquery

from clickback.core.activity import COHORT_MONTHS, MONTHLY_EVENTS, NONZERO_EVENTS, ActivityQuery, month_label
from clickback.core.verticals import DEFAULT_ACTIVITY, PRESETS
from clickback.store.db import Database
from clickback.store.tables import PAYABLE_STATUSES, conversions, offers

Owners = tuple[int, int, int, int]  # month, advertiser, offer, affiliate


@dataclass(frozen=True, slots=True)
class ActiveRow:
    month: int
    advertiser_id: int
    offer_id: int
    affiliate_id: int
    active_players: int
    registrations: int
    ftds: int


@dataclass(frozen=True, slots=True)
class ActivePlayers:
    rows: list[ActiveRow]
    # Over the whole period: a player active in three of its months is one player here.
    active_players: int
    registrations: int
    ftds: int


@dataclass(frozen=True, slots=True)
class CohortRow:
    month: int  # the month of the players' first registration
    advertiser_id: int
    offer_id: int
    affiliate_id: int
    registrations: int  # players
    active: tuple[int, ...]  # of them, active in the month itself and in each of COHORT_MONTHS after


_C = conversions.c
# Counted as every report counts: payable, not a test click's, attributed to a link.
_COUNTED = _C.status.in_(PAYABLE_STATUSES) & ~_C.test & _C.link_id.is_not(None)
# A player is (advertiser, player ID); a conversion without a player ID stands for its click's
# player. The click column is empty when there is a player ID, so the pair names one player.
_CLICK = case((_C.player_id == "", _C.click_id), else_="")
_PERIOD_MONTH = (
    cast(func.substr(_C.period, 1, 4), Integer) * 12 + cast(func.substr(_C.period, 6, 2), Integer) - 1
)


def _qualifying() -> ColumnElement[bool]:
    """core.activity.is_activity over a conversion joined to its offer."""
    vertical = offers.c.vertical
    by_vertical = [
        (vertical == name.value) & _C.event.in_(sorted(preset.activity)) for name, preset in PRESETS.items()
    ]
    # An offer without a vertical (or with one of no preset): the default.
    by_vertical.append(vertical.not_in([v.value for v in PRESETS]) & _C.event.in_(sorted(DEFAULT_ACTIVITY)))
    # Money columns are integers of 1/10,000: zero is 0 (NULL, no amount, is no play either).
    nonzero = _C.event.not_in(sorted(NONZERO_EVENTS)) | (type_coerce(_C.payout, BigInteger) != 0)
    return or_(*by_vertical) & nonzero


def _owned(q: ActivityQuery) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if q.offers:
        out.append(_C.offer_id.in_(q.offers))
    if q.affiliates:
        out.append(_C.affiliate_id.in_(q.affiliates))
    return out


def _month(column: ColumnElement[Any], bounds: Sequence[datetime], first: int) -> ColumnElement[Any]:
    """The month (number) of a stored time known to lie between bounds[0] and bounds[-1]."""
    inner = bounds[1:-1]
    if not inner:
        return cast(first, Integer)
    return case(*((column < b, first + i) for i, b in enumerate(inner)), else_=first + len(inner))


def _activity(q: ActivityQuery, after: int) -> Subquery:
    """One row per player, owner and month (first..last + after) the player was active in."""
    bounds = q.bounds(after)
    joined = conversions.join(offers, offers.c.id == _C.offer_id)
    counted = [_COUNTED, _qualifying(), *_owned(q)]
    who = (_C.advertiser_id, _C.offer_id, _C.affiliate_id, _C.player_id, _CLICK.label("click"))
    at_instant = (
        select(_month(_C.event_at, bounds, q.first).label("month"), *who)
        .select_from(joined)
        .where(
            *counted,
            _C.event.not_in(sorted(MONTHLY_EVENTS)),
            _C.event_at >= bounds[0],
            _C.event_at < bounds[-1],
        )
    )
    # 'YYYY-MM' compares as text in month order.
    by_period = (
        select(_PERIOD_MONTH.label("month"), *who)
        .select_from(joined)
        .where(
            *counted,
            _C.event.in_(sorted(MONTHLY_EVENTS)),
            _C.period >= month_label(q.first),
            _C.period <= month_label(q.last + after),
        )
    )
    rows = union_all(at_instant, by_period).subquery("facts")
    return select(rows).distinct().subquery("active")


def _milestones(q: ActivityQuery) -> Select[Any]:
    """Registrations and FTDs by month and owner, counted as /api/reports counts them."""
    bounds = q.bounds()
    rows = (
        select(
            _month(_C.event_at, bounds, q.first).label("month"),
            _C.advertiser_id,
            _C.offer_id,
            _C.affiliate_id,
            _C.event,
        )
        .where(
            _COUNTED,
            *_owned(q),
            _C.event.in_(("registration", "first_deposit")),
            _C.event_at >= bounds[0],
            _C.event_at < bounds[-1],
        )
        .subquery("milestones")
    )
    keys = (rows.c.month, rows.c.advertiser_id, rows.c.offer_id, rows.c.affiliate_id)
    return select(
        *keys,
        func.sum(case((rows.c.event == "registration", 1), else_=0)).label("registrations"),
        func.sum(case((rows.c.event == "first_deposit", 1), else_=0)).label("ftds"),
    ).group_by(*keys)


async def active_players(db: Database, q: ActivityQuery) -> ActivePlayers:
    active = _activity(q, 0)
    keys = (active.c.month, active.c.advertiser_id, active.c.offer_id, active.c.affiliate_id)
    players = select(active.c.advertiser_id, active.c.player_id, active.c.click).distinct().subquery("p")
    async with db.read() as conn:
        by_owner = (await conn.execute(select(*keys, func.count().label("n")).group_by(*keys))).all()
        milestones = (await conn.execute(_milestones(q))).all()
        overall = (await conn.execute(select(func.count()).select_from(players))).scalar_one()
    counts: dict[Owners, list[int]] = {}
    for row in by_owner:
        counts.setdefault(_key(row), [0, 0, 0])[0] = int(row.n)
    for row in milestones:
        figures = counts.setdefault(_key(row), [0, 0, 0])
        figures[1:] = [int(row.registrations), int(row.ftds)]
    rows = [ActiveRow(*key, *figures) for key, figures in sorted(counts.items())]
    return ActivePlayers(
        rows,
        int(overall),
        sum(r.registrations for r in rows),
        sum(r.ftds for r in rows),
    )


async def cohorts(db: Database, q: ActivityQuery) -> list[CohortRow]:
    """Each month's registered players by owner, and how many of them were active in that month
    and each of the COHORT_MONTHS after it, also past the period's end: the last months' cohorts
    are followed as far as the data goes."""
    bounds = q.bounds()
    registered = (
        select(
            _C.advertiser_id, _C.offer_id, _C.affiliate_id, _C.player_id, _CLICK.label("click"), _C.event_at
        )
        .where(_COUNTED, *_owned(q), _C.event == "registration", _C.event_at < bounds[-1])
        .subquery("registered")
    )
    player = (
        registered.c.advertiser_id,
        registered.c.offer_id,
        registered.c.affiliate_id,
        registered.c.player_id,
        registered.c.click,
    )
    # A player registered twice (two transaction IDs) belongs to the month of the first.
    first = select(*player, func.min(registered.c.event_at).label("at")).group_by(*player).subquery("first")
    cohort = (
        select(_month(first.c.at, bounds, q.first).label("month"), *first.c)
        .where(first.c.at >= bounds[0])
        .subquery("cohort")
    )
    keys = (cohort.c.month, cohort.c.advertiser_id, cohort.c.offer_id, cohort.c.affiliate_id)
    active = _activity(q, COHORT_MONTHS)
    followed = (
        select(*keys, cohort.c.player_id, cohort.c.click, (active.c.month - cohort.c.month).label("after"))
        .distinct()
        .select_from(
            cohort.join(
                active,
                and_(
                    active.c.advertiser_id == cohort.c.advertiser_id,
                    active.c.player_id == cohort.c.player_id,
                    active.c.click == cohort.c.click,
                    active.c.month >= cohort.c.month,
                    active.c.month <= cohort.c.month + COHORT_MONTHS,
                ),
            )
        )
        .subquery("followed")
    )
    followed_keys = (followed.c.month, followed.c.advertiser_id, followed.c.offer_id, followed.c.affiliate_id)
    async with db.read() as conn:
        sizes = (await conn.execute(select(*keys, func.count().label("n")).group_by(*keys))).all()
        later = (
            await conn.execute(
                select(*followed_keys, followed.c.after, func.count().label("n")).group_by(
                    *followed_keys, followed.c.after
                )
            )
        ).all()
    active_by: dict[Owners, list[int]] = {}
    for row in later:
        active_by.setdefault(_key(row), [0] * (COHORT_MONTHS + 1))[int(row.after)] = int(row.n)
    return [
        CohortRow(*_key(row), int(row.n), tuple(active_by.get(_key(row), [0] * (COHORT_MONTHS + 1))))
        for row in sorted(sizes, key=_key)
    ]


def _key(row: Any) -> Owners:
    return (int(row.month), int(row.advertiser_id), int(row.offer_id), int(row.affiliate_id))
