"""Loading the in-memory catalog, and the version number that tells every process to reload it."""

import json
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.macros import compile_template
from clickback.core.model import Advertiser, Affiliate, Catalog, Link, Offer, State
from clickback.store.db import Database
from clickback.store.tables import advertisers, affiliates, catalog_version, links, offers


async def current_version(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(catalog_version.c.version))).scalar_one())


async def bump_version(conn: AsyncConnection) -> None:
    """Called in the same transaction as any change to what the catalog holds."""
    await conn.execute(update(catalog_version).values(version=catalog_version.c.version + 1))


async def load_catalog(db: Database) -> Catalog:
    async with db.read() as conn:
        version = int((await conn.execute(select(catalog_version.c.version))).scalar_one())
        adv_rows = (await conn.execute(select(advertisers))).all()
        offer_rows = (await conn.execute(select(offers))).all()
        aff_rows = (await conn.execute(select(affiliates))).all()
        link_rows = (await conn.execute(select(links))).all()
    return Catalog.build(
        version,
        [Advertiser(r.id, r.name, r.token, State(r.status)) for r in adv_rows],
        [
            Offer(
                id=r.id,
                advertiser_id=r.advertiser_id,
                name=r.name,
                url=compile_template(r.url_template),
                currency=r.currency,
                status=State(r.status),
                payouts={k: Decimal(v) for k, v in json.loads(r.payouts).items()},
                custom_events=frozenset(json.loads(r.custom_events)),
            )
            for r in offer_rows
        ],
        [Affiliate(r.id, r.name, State(r.status)) for r in aff_rows],
        [Link(r.id, r.code, r.affiliate_id, r.offer_id, r.campaign, State(r.status)) for r in link_rows],
    )
