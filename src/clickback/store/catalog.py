"""Loading the in-memory catalog, and the version number that tells every process to reload it."""

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.addresses import parse_networks
from clickback.core.commission import CpaRules, Deal, DealKind, RevShareTerms, Tier, TierBasis
from clickback.core.cost import NO_COST, CostError, CostModel, model_of
from clickback.core.lifecycle import Status
from clickback.core.macros import compile_template
from clickback.core.model import Advertiser, AdvertiserNames, Affiliate, Catalog, Link, Offer, State
from clickback.core.money import plain
from clickback.core.outbound import BodyFormat, Method, Template, template
from clickback.store.db import Database
from clickback.store.tables import (
    advertiser_names,
    advertisers,
    affiliates,
    catalog_version,
    deals,
    links,
    offers,
    outbound_templates,
)

log = logging.getLogger(__name__)


async def current_version(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(catalog_version.c.version))).scalar_one())


async def bump_version(conn: AsyncConnection) -> None:
    """Called in the same transaction as any change to what the catalog holds. Its row lock is
    what orders the change with postback groups (Recording.check_catalog, which holds the row
    FOR SHARE on PostgreSQL): a change that also writes rows those groups lock (RevShare months)
    bumps first, so that it never holds one of those while waiting for a group."""
    await conn.execute(update(catalog_version).values(version=catalog_version.c.version + 1))


# catalog_version's one row.
VERSION_ROW = 1


class StaleCatalog(Exception):
    """A write transaction was given another catalog than the database holds (another process
    changed it less than a refresh ago): rolled back, to be done again once the catalog is
    reloaded (service/postbacks.py)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"the catalog in memory is not the database's version {version}")
        self.version = version


def cost_model(link_id: int, raw: str | None) -> CostModel:
    """A link's stored cost model. One that cannot be read (stored by a version with other rules)
    must not stop every click of the catalog: said, and the link's traffic costs nothing until
    its model is saved again."""
    try:
        return model_of(json.loads(raw)) if raw else NO_COST
    except (CostError, ValueError) as exc:
        log.error(
            "link %d: its cost model cannot be applied (%s); save it again with PUT /api/links/%d/cost",
            link_id,
            exc,
            link_id,
        )
        return NO_COST


async def load_catalog(db: Database) -> Catalog:
    async with db.read() as conn:
        version = int((await conn.execute(select(catalog_version.c.version))).scalar_one())
        adv_rows = (await conn.execute(select(advertisers))).all()
        offer_rows = (await conn.execute(select(offers))).all()
        aff_rows = (await conn.execute(select(affiliates))).all()
        link_rows = (await conn.execute(select(links))).all()
        names = await load_names(conn)
        deal_map = await load_deals(conn)
        templates = await load_templates(conn)
    return Catalog.build(
        version,
        [
            Advertiser(
                r.id,
                r.name,
                r.token,
                State(r.status),
                previous_token=r.previous_token or "",
                previous_token_until=r.previous_token_until,
                allowed_ips=parse_networks(r.allowed_ips.split(",")),
                signing_secret=r.signing_secret or "",
            )
            for r in adv_rows
        ],
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
                vertical=r.vertical,
                pixel_code=r.pixel_code if r.pixel else "",
                attribution_days=r.attribution_days,
            )
            for r in offer_rows
        ],
        [Affiliate(r.id, r.name, State(r.status)) for r in aff_rows],
        [
            Link(
                r.id,
                r.code,
                r.affiliate_id,
                r.offer_id,
                r.campaign,
                State(r.status),
                cost_model(r.id, r.cost),
            )
            for r in link_rows
        ],
        names,
        deal_map,
        templates,
    )


def terms_to_json(deal: Deal) -> str:
    def jsonable(value: Any) -> Any:
        if isinstance(value, Decimal):
            return plain(value)  # never 1.5E+2, as str() writes an amount read from that
        if isinstance(value, dict):
            return {k: jsonable(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [jsonable(v) for v in value]
        return value

    return json.dumps(
        {
            "cpa": jsonable(asdict(deal.cpa)) if deal.cpa else None,
            "revshare": jsonable(asdict(deal.revshare)) if deal.revshare else None,
        }
    )


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def deal_from_row(kind: str, currency: str, terms: str) -> Deal:
    doc = json.loads(terms)
    cpa = revshare = None
    if (c := doc.get("cpa")) is not None:
        cpa = CpaRules(
            amount=Decimal(c["amount"]),
            geo_amounts={k: Decimal(v) for k, v in c["geo_amounts"].items()},
            require_registration=c["require_registration"],
            require_verification=c["require_verification"],
            ftd_min=_dec(c["ftd_min"]),
            deposits_min=_dec(c["deposits_min"]),
            deposits_days=c["deposits_days"],
            wager_min=_dec(c["wager_min"]),
            window_days=c["window_days"],
            hold_days=c["hold_days"],
        )
    if (r := doc.get("revshare")) is not None:
        revshare = RevShareTerms(
            percent=Decimal(r["percent"]),
            tiers=tuple(Tier(Decimal(t["threshold"]), Decimal(t["percent"])) for t in r["tiers"]),
            tier_basis=TierBasis(r["tier_basis"]),
            negative_carryover=r["negative_carryover"],
        )
    return Deal(DealKind(kind), currency, cpa, revshare)


async def load_deals(conn: AsyncConnection) -> dict[tuple[int, int], Deal]:
    rows = (await conn.execute(select(deals))).all()
    return {(r.offer_id, r.affiliate_id): deal_from_row(r.kind, r.currency, r.terms) for r in rows}


async def load_names(conn: AsyncConnection) -> dict[int, AdvertiserNames]:
    events: dict[int, dict[str, str]] = {}
    statuses: dict[int, dict[str, Status]] = {}
    for r in (await conn.execute(select(advertiser_names))).all():
        if r.kind == "event":
            events.setdefault(r.advertiser_id, {})[r.name] = r.maps_to
        else:
            statuses.setdefault(r.advertiser_id, {})[r.name] = Status(r.maps_to)
    return {
        a: AdvertiserNames(events.get(a, {}), statuses.get(a, {})) for a in events.keys() | statuses.keys()
    }


def decoded(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored template with its lists and map as Python values again (template_values' inverse)."""
    return dict(row) | {name: json.loads(row[name]) for name in ("events", "statuses", "status_map")}


def template_of(values: Mapping[str, Any]) -> Template:
    """The core's Template of a template's fields (decoded); OutboundError if they make none."""
    return template(
        id=values.get("id", 0),
        affiliate_id=values["affiliate_id"],
        url=values["url"],
        method=Method(values["method"]),
        body_format=BodyFormat(values["body_format"]) if values["body_format"] else None,
        body=values["body"],
        offer_id=values.get("offer_id"),
        events=values["events"],
        statuses=[Status(s) for s in values["statuses"]],
        status_map=values["status_map"],
        click_id_sub=values["click_id_sub"],
        active=values.get("status", "active") == "active",
    )


def template_from_row(row: Mapping[str, Any]) -> Template:
    return template_of(decoded(row))


async def load_templates(conn: AsyncConnection) -> list[Template]:
    t = outbound_templates
    rows = (await conn.execute(select(t).where(t.c.deleted_at.is_(None)).order_by(t.c.id))).all()
    return [template_from_row(dict(r._mapping)) for r in rows]
