"""The counts diagnosis decides from (core/diagnosis.py): the postback log by outcome and reason,
examples, ignored parameter names, refusal rates, pending conversions, offers' recent activity."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, func, select

from clickback.core.reporting import hour_of
from clickback.store.db import Database
from clickback.store.tables import clicks, conversions, link_checks, postbacks, report_hours

# The newest entries whose ignored names are counted: enough to see a habit, bounded in cost.
IGNORED_SAMPLE = 5000


@dataclass(frozen=True, slots=True)
class Scope:
    since: datetime
    until: datetime
    advertiser_id: int | None = None
    offer_id: int | None = None


def _log(scope: Scope, *columns: Any) -> Select[Any]:
    c = postbacks.c
    query = select(*columns).where(c.received_at >= scope.since, c.received_at < scope.until)
    if scope.advertiser_id is not None:
        query = query.where(c.advertiser_id == scope.advertiser_id)
    if scope.offer_id is not None:
        # The log names the click; the click names the offer.
        query = query.join(clicks, clicks.c.click_id == c.click_id).where(clicks.c.offer_id == scope.offer_id)
    return query


async def outcomes(db: Database, scope: Scope) -> list[tuple[str, str | None, int]]:
    c = postbacks.c
    query = _log(scope, c.result, c.reason, func.count()).group_by(c.result, c.reason)
    async with db.read() as conn:
        return [(r[0], r[1], int(r[2])) for r in await conn.execute(query)]


async def examples(
    db: Database, scope: Scope, reasons: Sequence[str], each: int
) -> dict[str, list[dict[str, Any]]]:
    """The newest `each` log entries of every reason."""
    c = postbacks.c
    found: dict[str, list[dict[str, Any]]] = {}
    async with db.read() as conn:
        for reason in reasons:
            query = _log(scope, postbacks).where(c.reason == reason).order_by(c.id.desc()).limit(each)
            found[reason] = [dict(r._mapping) for r in await conn.execute(query)]
    return found


async def ignored_names(db: Database, scope: Scope) -> Counter[str]:
    c = postbacks.c
    query = _log(scope, c.ignored).where(c.ignored != "").order_by(c.id.desc()).limit(IGNORED_SAMPLE)
    counted: Counter[str] = Counter()
    async with db.read() as conn:
        for (ignored,) in await conn.execute(query):
            counted.update(name for name in ignored.split(",") if name)
    return counted


async def refusals_by_advertiser(
    db: Database, since: datetime, until: datetime
) -> dict[int, tuple[int, int]]:
    """(postbacks, refused) per advertiser received in [since, until)."""
    c = postbacks.c
    refused = func.sum(case((c.result == "rejected", 1), else_=0))
    query = (
        select(c.advertiser_id, func.count(), refused)
        .where(c.received_at >= since, c.received_at < until, c.advertiser_id.is_not(None))
        .group_by(c.advertiser_id)
    )
    async with db.read() as conn:
        return {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in await conn.execute(query)}


async def pending_before(
    db: Database, before: datetime, advertiser_id: int | None, offer_id: int | None
) -> list[tuple[int, int, datetime]]:
    """(offer, count, oldest event) of conversions still pending that happened before `before`."""
    c = conversions.c
    query = (
        select(c.offer_id, func.count(), func.min(c.event_at))
        .where(c.status == "pending", c.event_at < before, c.offer_id.is_not(None), ~c.test)
        .group_by(c.offer_id)
    )
    if advertiser_id is not None:
        query = query.where(c.advertiser_id == advertiser_id)
    if offer_id is not None:
        query = query.where(c.offer_id == offer_id)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [(int(r[0]), int(r[1]), _utc(r[2])) for r in rows]


async def warned(db: Database, scope: Scope, warning: str) -> list[tuple[int, int]]:
    """(offer, count) of the conversions created in the period with this warning."""
    c = conversions.c
    query = (
        select(c.offer_id, func.count())
        .where(
            c.created_at >= scope.since,
            c.created_at < scope.until,
            c.warnings.contains(warning + ":"),
            c.offer_id.is_not(None),
        )
        .group_by(c.offer_id)
    )
    if scope.advertiser_id is not None:
        query = query.where(c.advertiser_id == scope.advertiser_id)
    if scope.offer_id is not None:
        query = query.where(c.offer_id == scope.offer_id)
    async with db.read() as conn:
        return [(int(r[0]), int(r[1])) for r in await conn.execute(query)]


async def failed_link_checks(db: Database, offer_ids: Sequence[int]) -> list[tuple[int, str, str, str]]:
    """(offer, verdict, code, hint) of the offers whose latest link check found the link broken
    or a page saying the offer is gone (store/linkchecks.py)."""
    if not offer_ids:
        return []
    c = link_checks.c
    newest = select(func.max(c.id)).where(c.offer_id.in_(offer_ids)).group_by(c.offer_id).scalar_subquery()
    query = (
        select(c.offer_id, c.verdict, c.code, c.hint)
        .where(c.id.in_(newest), c.verdict.in_(("broken", "soft_404")))
        .order_by(c.offer_id)
    )
    async with db.read() as conn:
        return [(int(r[0]), r[1], r[2], r[3]) for r in await conn.execute(query)]


async def offer_activity(
    db: Database, offer_ids: Sequence[int], quiet_since: datetime, before_since: datetime
) -> dict[int, tuple[int, int, int]]:
    """Per offer: clicks since `quiet_since` (whole hours), postbacks for its clicks since then
    (whatever their outcome), and conversions in [before_since, quiet_since)."""
    if not offer_ids:
        return {}
    s, c = report_hours.c, conversions.c
    clicked = (
        select(s.offer_id, func.sum(s.clicks))
        .where(s.offer_id.in_(offer_ids), s.hour >= hour_of(quiet_since) + 1)
        .group_by(s.offer_id)
    )
    converted = (
        select(c.offer_id, func.count())
        # A tester's conversions say nothing of the advertiser's real traffic (ADR 13).
        .where(c.offer_id.in_(offer_ids), c.created_at >= before_since, c.created_at < quiet_since, ~c.test)
        .group_by(c.offer_id)
    )
    p = postbacks.c
    posted = (
        select(clicks.c.offer_id, func.count())
        .select_from(postbacks.join(clicks, clicks.c.click_id == p.click_id))
        .where(clicks.c.offer_id.in_(offer_ids), p.received_at >= quiet_since)
        .group_by(clicks.c.offer_id)
    )
    async with db.read() as conn:
        clicks_by_offer = {int(r[0]): int(r[1] or 0) for r in await conn.execute(clicked)}
        earlier = {int(r[0]): int(r[1]) for r in await conn.execute(converted)}
        recent = {int(r[0]): int(r[1]) for r in await conn.execute(posted)}
    return {
        offer: (clicks_by_offer.get(offer, 0), recent.get(offer, 0), earlier.get(offer, 0))
        for offer in offer_ids
    }


def _utc(moment: Any) -> datetime:
    # min() keeps the column's type (aware UTC on both dialects); text only if a driver strays.
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).replace(tzinfo=UTC)
    assert isinstance(moment, datetime)
    return moment
