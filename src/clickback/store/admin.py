"""Creating, listing and pausing advertisers, offers, affiliates and tracking links."""

import json
import secrets
import string
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError

from clickback.core import audit as trail
from clickback.core.audit import KIND_OF_TABLE, Actor
from clickback.core.pixel import PIXEL_CODE_LEN
from clickback.store import audit, paging
from clickback.store.catalog import bump_version
from clickback.store.db import Database
from clickback.store.tables import advertisers, affiliates, links, offers

LINK_CODE_LEN = 10
_CODE_ALPHABET = string.ascii_letters + string.digits
TABLES: Mapping[str, Table] = {
    "advertisers": advertisers,
    "offers": offers,
    "affiliates": affiliates,
    "links": links,
}


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    """A change the row's state forbids (409)."""


async def _insert(
    db: Database, table: Table, values: dict[str, Any], by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    async with db.write() as conn:
        stmt = table.insert().values(values).returning(*table.c)
        row = dict((await conn.execute(stmt)).one()._mapping)
        created = trail.change(by, KIND_OF_TABLE[table.name], row["id"], "create", None, row)
        await audit.record(conn, [created])
        await bump_version(conn)
    return row


async def create_advertiser(
    db: Database, name: str, now: datetime, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    return await _insert(
        db, advertisers, {"name": name, "token": token, "status": "active", "created_at": now}, by
    )


async def rotate_token(
    db: Database, advertiser_id: int, valid_until: datetime, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    """A new token; the current one becomes the previous, accepted until `valid_until`."""
    return await _change(
        db,
        "advertisers",
        advertiser_id,
        # The right-hand sides read the row as it was: the current token becomes the previous.
        {
            "previous_token": advertisers.c.token,
            "previous_token_until": valid_until,
            "token": secrets.token_urlsafe(24),
        },
        by,
        "rotate_token",
    )


async def revoke_previous_token(db: Database, advertiser_id: int, by: Actor = trail.SYSTEM) -> dict[str, Any]:
    return await _change(
        db,
        "advertisers",
        advertiser_id,
        {"previous_token": None, "previous_token_until": None},
        by,
        "revoke_previous_token",
    )


async def set_security(
    db: Database,
    advertiser_id: int,
    allowed_ips: list[str],
    signing: bool,
    new_secret: bool,
    by: Actor = trail.SYSTEM,
) -> dict[str, Any]:
    current = await get(db, "advertisers", advertiser_id)
    secret = current["signing_secret"] if signing and not new_secret else None
    if signing and secret is None:
        secret = secrets.token_hex(32)
    return await _change(
        db,
        "advertisers",
        advertiser_id,
        {"allowed_ips": ",".join(allowed_ips), "signing_secret": secret},
        by,
        "security",
    )


async def _change(
    db: Database,
    kind: str,
    item_id: int,
    values: Mapping[str, Any],
    by: Actor = trail.SYSTEM,
    action: str = "change",
) -> dict[str, Any]:
    """Change one row and record it in the audit log, in one transaction. The row as it was is
    read under a row lock (PostgreSQL; SQLite's writer holds the whole database), so the "before"
    of two concurrent changes is each the other's "after", never the same old row twice."""
    table = TABLES[kind]
    async with db.write() as conn:
        found = (await conn.execute(select(table).where(table.c.id == item_id).with_for_update())).first()
        if found is None:
            raise NotFound(f"{kind} {item_id} does not exist")
        if not values:  # a PATCH naming no field: nothing to change, nothing to record
            return dict(found._mapping)
        stmt = update(table).where(table.c.id == item_id).values(dict(values)).returning(*table.c)
        row = dict((await conn.execute(stmt)).one()._mapping)
        done = trail.change(by, KIND_OF_TABLE[kind], item_id, action, dict(found._mapping), row)
        await audit.record(conn, [done])
        await bump_version(conn)
    return row


async def create_offer(
    db: Database,
    *,
    advertiser_id: int,
    name: str,
    url_template: str,
    currency: str,
    payouts: Mapping[str, Decimal],
    custom_events: list[str],
    now: datetime,
    vertical: str = "",
    pixel: bool = False,
    attribution_days: int | None = None,
    by: Actor = trail.SYSTEM,
) -> dict[str, Any]:
    await get(db, "advertisers", advertiser_id)
    values = {
        "advertiser_id": advertiser_id,
        "name": name,
        "url_template": url_template,
        "currency": currency,
        "status": "active",
        "payouts": json.dumps({k: str(v) for k, v in payouts.items()}),
        "custom_events": json.dumps(sorted(set(custom_events))),
        "vertical": vertical,
        "created_at": now,
        "pixel": pixel,
        "attribution_days": attribution_days,
        "pixel_code": _code(PIXEL_CODE_LEN) if pixel else None,
    }
    return await _insert(db, offers, values, by)


async def set_attribution(
    db: Database, offer_id: int, days: int | None, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    return await _change(db, "offers", offer_id, {"attribution_days": days}, by, "attribution")


async def set_pixel(db: Database, offer_id: int, enabled: bool, by: Actor = trail.SYSTEM) -> dict[str, Any]:
    """Switch an offer's tracking pixel on or off. Its code is minted the first time and kept: a
    pixel already on a thank-you page works again once switched back on."""
    async with db.write() as conn:
        query = select(offers).where(offers.c.id == offer_id).with_for_update()
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound(f"offers {offer_id} does not exist")
        values: dict[str, Any] = {"pixel": enabled}
        if enabled and row.pixel_code is None:
            # 62^16 codes: no clash to retry.
            values["pixel_code"] = _code(PIXEL_CODE_LEN)
        stmt = update(offers).where(offers.c.id == offer_id).values(values).returning(*offers.c)
        changed = dict((await conn.execute(stmt)).one()._mapping)
        done = trail.change(by, trail.Kind.OFFER, offer_id, "pixel", dict(row._mapping), changed)
        await audit.record(conn, [done])
        await bump_version(conn)
    return changed


def _code(length: int) -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(length))


async def create_affiliate(
    db: Database, name: str, now: datetime, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    return await _insert(db, affiliates, {"name": name, "status": "active", "created_at": now}, by)


async def create_link(
    db: Database,
    *,
    affiliate_id: int,
    offer_id: int,
    campaign: str,
    now: datetime,
    cost: str | None = None,
    by: Actor = trail.SYSTEM,
) -> dict[str, Any]:
    """`cost`: its cost model as links.cost keeps it (JSON), None for none."""
    for kind, item_id in (("affiliates", affiliate_id), ("offers", offer_id)):
        if (await get(db, kind, item_id))["status"] == "archived":
            raise Conflict(f"{kind} {item_id} is archived: make it active first")
    for _ in range(5):
        code = _code(LINK_CODE_LEN)
        values = {
            "code": code,
            "affiliate_id": affiliate_id,
            "offer_id": offer_id,
            "campaign": campaign,
            "status": "active",
            "created_at": now,
            "cost": cost,
        }
        try:
            return await _insert(db, links, values, by)
        except IntegrityError:
            continue  # 62^10 codes: a clash is all but impossible, but cheap to survive
    raise RuntimeError("could not mint a unique link code")


async def get(db: Database, kind: str, item_id: int) -> dict[str, Any]:
    table = TABLES[kind]
    async with db.read() as conn:
        row = (await conn.execute(select(table).where(table.c.id == item_id))).first()
    if row is None:
        raise NotFound(f"{kind} {item_id} does not exist")
    return dict(row._mapping)


async def list_all(db: Database, kind: str) -> list[dict[str, Any]]:
    table = TABLES[kind]
    async with db.read() as conn:
        rows = (await conn.execute(select(table).order_by(table.c.id))).all()
    return [dict(r._mapping) for r in rows]


async def list_page(
    db: Database, kind: str, filters: Mapping[str, object], cursor: str | None, limit: int
) -> paging.Page:
    """A page of one kind, oldest first; `filters` maps its column names (status, advertiser_id,
    affiliate_id, offer_id) to the values wanted."""
    table = TABLES[kind]
    query = paging.equal(select(table), {table.c[name]: value for name, value in filters.items()})
    return await paging.page(db, query, [paging.Key(table.c.id)], cursor, limit)


async def set_link_cost(
    db: Database, link_id: int, cost: str | None, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    """Replace a link's cost model (JSON, None for none): its clicks and conversions from now on."""
    return await _change(db, "links", link_id, {"cost": cost}, by, "cost")


async def set_status(
    db: Database, kind: str, item_id: int, status: str, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    return await _change(db, kind, item_id, {"status": status}, by, "status")


async def edit(db: Database, kind: str, item_id: int, values: Mapping[str, Any], by: Actor) -> dict[str, Any]:
    """The fields given replace the stored ones (checked by the caller)."""
    return await _change(db, kind, item_id, values, by, "edit")
