"""Deals (commission terms per offer, overridable per affiliate) and advertisers' own event and
status names: both held in the in-memory catalog, changed through the API."""

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core import audit as trail
from clickback.core.audit import Actor
from clickback.core.commission import Deal, period_of
from clickback.core.lifecycle import Status
from clickback.core.model import EVERY_AFFILIATE
from clickback.store import audit, paging
from clickback.store.catalog import bump_version, deal_from_row, terms_to_json
from clickback.store.db import Database
from clickback.store.tables import advertiser_names, deals, revshare_periods


async def put_deal(
    db: Database, offer_id: int, affiliate_id: int, deal: Deal, now: datetime, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    """Create or replace the deal, and record the change in the audit log (same transaction)."""
    values = {
        "kind": deal.kind.value,
        "currency": deal.currency,
        "terms": terms_to_json(deal),
        "updated_at": now,
    }
    stmt = db.upsert(deals).values(offer_id=offer_id, affiliate_id=affiliate_id, created_at=now, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["offer_id", "affiliate_id"], set_=values)
    mine = (deals.c.offer_id == offer_id) & (deals.c.affiliate_id == affiliate_id)
    async with db.write() as conn:
        # First: postback groups hold the version's row while they price (FOR SHARE, PostgreSQL),
        # so the change waits for those under way and those after it wait for the change, then
        # price under it (Recording.check_catalog); taken after the months below, a group
        # locking one of them while holding the version would deadlock with the change.
        await bump_version(conn)
        found = (await conn.execute(select(deals).where(mine).with_for_update())).first()
        await _months_keep_their_terms(conn, offer_id, affiliate_id, found, now)
        row = dict((await conn.execute(stmt.returning(*deals.c))).one()._mapping)
        before = None if found is None else dict(found._mapping)
        done = trail.change(by, trail.Kind.DEAL, row["id"], "put", before, row)
        await audit.record(conn, [done], now)
    return row


async def _months_keep_their_terms(
    conn: AsyncConnection, offer_id: int, affiliate_id: int, found: Row[Any] | None, now: datetime
) -> None:
    """Before a deal changes: the RevShare months it priced that have ended keep the terms they
    were priced under (the outgoing deal's, where their row has none kept: booked before 0023,
    or last recomputed while running), and the running month and later ones take the new deal
    (their terms are cleared). service/commissions._cascade reads them."""
    p = revshare_periods.c
    scope = p.offer_id == offer_id
    if affiliate_id == EVERY_AFFILIATE:
        own = select(deals.c.affiliate_id).where(
            (deals.c.offer_id == offer_id) & (deals.c.affiliate_id != EVERY_AFFILIATE)
        )
        scope &= p.affiliate_id.not_in(own)
    else:
        scope &= p.affiliate_id == affiliate_id
    outgoing = found
    if outgoing is None and affiliate_id != EVERY_AFFILIATE:  # the offer's default was in force
        default = (deals.c.offer_id == offer_id) & (deals.c.affiliate_id == EVERY_AFFILIATE)
        outgoing = (await conn.execute(select(deals).where(default))).first()
    running = period_of(now)
    if outgoing is not None:
        ended = scope & (p.period < running) & p.terms.is_(None)
        kept = deal_from_row(outgoing.kind, outgoing.currency, outgoing.terms).revshare
        if kept is not None and kept.ngr_tiers:
            # A month's terms are in its currency: NGR thresholds in another one would be read as
            # if they were in it. Such a month takes the deal in force when recomputed, its
            # thresholds converted then (core/commission.in_month_currency).
            ended &= p.currency == outgoing.currency
        await conn.execute(update(revshare_periods).where(ended).values(terms=outgoing.terms))
    await conn.execute(update(revshare_periods).where(scope & (p.period >= running)).values(terms=None))


async def deal_in_force(db: Database, offer_id: int, affiliate_id: int) -> Deal | None:
    """The affiliate's own deal on the offer, else the offer's default (as Catalog.deal_for, but
    as stored now: a change must start from the latest deal, not a catalog a second old)."""
    query = (
        select(deals)
        .where((deals.c.offer_id == offer_id) & deals.c.affiliate_id.in_((affiliate_id, EVERY_AFFILIATE)))
        .order_by(deals.c.affiliate_id.desc())
        .limit(1)
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else deal_from_row(row.kind, row.currency, row.terms)


async def list_deals(db: Database, offer_id: int, cursor: str | None, limit: int) -> paging.Page:
    """The offer's deals: its default (affiliate 0) first, then affiliates' own."""
    query = select(deals).where(deals.c.offer_id == offer_id)
    return await paging.page(db, query, [paging.Key(deals.c.affiliate_id)], cursor, limit)


async def put_names(
    db: Database,
    advertiser_id: int,
    events: dict[str, str],
    statuses: dict[str, Status],
    by: Actor = trail.SYSTEM,
) -> None:
    """Replace the advertiser's whole mapping (what the API shows is what applies), recorded in
    the audit log as the advertiser's `names` (same transaction)."""
    rows = [
        {"advertiser_id": advertiser_id, "kind": "event", "name": k, "maps_to": v} for k, v in events.items()
    ]
    rows += [
        {"advertiser_id": advertiser_id, "kind": "status", "name": k, "maps_to": v.value}
        for k, v in statuses.items()
    ]
    mine = advertiser_names.c.advertiser_id == advertiser_id
    async with db.write() as conn:
        old = (await conn.execute(select(advertiser_names).where(mine))).all()
        await conn.execute(delete(advertiser_names).where(mine))
        if rows:
            await conn.execute(advertiser_names.insert(), rows)
        before, after = _names([dict(r._mapping) for r in old]), _names(rows)
        done = trail.change(by, trail.Kind.ADVERTISER, advertiser_id, "names", before, after)
        await audit.record(conn, [done])
        await bump_version(conn)


def _names(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """A mapping as the audit log shows it: {"events": {...}, "statuses": {...}}."""
    found: dict[str, dict[str, str]] = {"events": {}, "statuses": {}}
    for r in rows:
        found["events" if r["kind"] == "event" else "statuses"][r["name"]] = r["maps_to"]
    return found
