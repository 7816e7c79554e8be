"""Outbound postbacks' rows: templates (part of the catalog), the outbox of deliveries that
dispatchers claim, the attempt log, and destinations paused after failing in a row."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.store import paging
from clickback.store.admin import NotFound
from clickback.store.bulk import insert_rows
from clickback.store.catalog import bump_version
from clickback.store.db import Database
from clickback.store.tables import (
    outbound_attempts,
    outbound_deliveries,
    outbound_destinations,
    outbound_templates,
)

WAITING, DELIVERED, FAILED, DEAD = "waiting", "delivered", "failed", "dead"
STATES = (WAITING, DELIVERED, FAILED, DEAD)


# --- templates ----------------------------------------------------------------------------------


def template_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a template's fields as the API gives them (lists and maps as JSON text)."""
    out = dict(values)
    for name in ("events", "statuses"):
        if name in out:
            out[name] = json.dumps(sorted(out[name]))
    if "status_map" in out:
        out["status_map"] = json.dumps(dict(sorted(out["status_map"].items())))
    return out


async def create_template(db: Database, values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    row = template_values(values) | {"status": "active", "created_at": now, "updated_at": now}
    async with db.write() as conn:
        stmt = outbound_templates.insert().values(row).returning(*outbound_templates.c)
        created = dict((await conn.execute(stmt)).one()._mapping)
        await bump_version(conn)
    return created


async def get_template(db: Database, template_id: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (
            await conn.execute(select(outbound_templates).where(outbound_templates.c.id == template_id))
        ).first()
    if row is None:
        raise NotFound(f"outbound template {template_id} does not exist")
    return dict(row._mapping)


async def change_template(
    db: Database, template_id: int, values: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    async with db.write() as conn:
        stmt = (
            update(outbound_templates)
            .where(outbound_templates.c.id == template_id)
            .values(template_values(values) | {"updated_at": now})
            .returning(*outbound_templates.c)
        )
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"outbound template {template_id} does not exist")
        await bump_version(conn)
    return dict(row._mapping)


async def delete_template(db: Database, template_id: int) -> None:
    """Its deliveries stay (they name the template by id only): the log of what was sent."""
    async with db.write() as conn:
        deleted = await conn.execute(
            outbound_templates.delete().where(outbound_templates.c.id == template_id)
        )
        if deleted.rowcount == 0:
            raise NotFound(f"outbound template {template_id} does not exist")
        await bump_version(conn)


async def list_templates(
    db: Database, filters: Mapping[str, object], cursor: str | None, limit: int
) -> paging.Page:
    t = outbound_templates
    query = paging.equal(select(t), {t.c[name]: value for name, value in filters.items()})
    return await paging.page(db, query, [paging.Key(t.c.id)], cursor, limit)


# --- the outbox, inside the transaction that causes it -------------------------------------------


def add_deliveries(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    insert_rows(conn, outbound_deliveries, rows)


# --- dispatchers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    delivery_id: str
    template_id: int
    method: str
    url: str
    body: str
    content_type: str
    destination: str
    attempts: int
    secret: str | None


_paused = select(outbound_destinations.c.destination).where(outbound_destinations.c.paused_at.is_not(None))


async def claim(
    db: Database, owner: str, now: datetime, lease: timedelta, limit: int, busy: Sequence[str]
) -> list[Claimed]:
    """Up to `limit` due deliveries, leased to `owner` until now + lease: none of a paused
    destination, nor of the `busy` ones (at this dispatcher's limit for them). Dispatchers on one
    PostgreSQL skip each other's locked rows (SKIP LOCKED); on SQLite the UPDATE runs under the
    database's write lock, so two claims never take the same row either. A lease that ran out
    (its dispatcher died) makes the row due again."""
    d = outbound_deliveries
    due = (
        select(d.c.id)
        .where(
            d.c.state == WAITING,
            d.c.next_at <= now,
            or_(d.c.leased_until.is_(None), d.c.leased_until < now),
            d.c.destination.not_in(_paused),
        )
        .order_by(d.c.next_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if busy:
        due = due.where(d.c.destination.not_in(list(busy)))
    stmt = (
        update(d)
        .where(d.c.id.in_(due.scalar_subquery()))
        .values(leased_until=now + lease, lease_owner=owner)
        .returning(
            d.c.id,
            d.c.delivery_id,
            d.c.template_id,
            d.c.method,
            d.c.url,
            d.c.body,
            d.c.content_type,
            d.c.destination,
            d.c.attempts,
        )
    )
    async with db.write() as conn:
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return []
        t = outbound_templates
        ids = sorted({r.template_id for r in rows})
        found = await conn.execute(select(t.c.id, t.c.secret).where(t.c.id.in_(ids)))
        secrets = {r[0]: r[1] for r in found}
    return [Claimed(**r._mapping, secret=secrets.get(r.template_id)) for r in rows]


async def release(db: Database, owner: str, ids: Sequence[int]) -> None:
    """Claimed rows this dispatcher will not send now: due again for anyone."""
    d = outbound_deliveries
    async with db.write() as conn:
        await conn.execute(
            update(d).where(d.c.id.in_(list(ids)), d.c.lease_owner == owner).values(leased_until=None)
        )


async def next_due(db: Database) -> datetime | None:
    """When the earliest waiting delivery is due (of any destination: a cheap upper bound on
    how long a dispatcher may sleep)."""
    d = outbound_deliveries
    query = select(d.c.next_at).where(d.c.state == WAITING).order_by(d.c.next_at).limit(1)
    async with db.read() as conn:
        found: datetime | None = (await conn.execute(query)).scalar()
    return found


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    url: str
    http_status: int | None
    latency_ms: int
    reply: str
    error: str
    worker: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What becomes of a delivery after an attempt: its state and when it is due again."""

    state: str
    next_at: datetime
    # Whether the attempt counts as its destination failing (no reply, 5xx, 408).
    destination_failed: bool
    destination_ok: bool


async def record_attempt(
    db: Database,
    owner: str,
    claimed: Claimed,
    attempt: Attempt,
    outcome: Outcome,
    pause_after: int,
) -> bool:
    """The attempt logged and the delivery moved on, if this dispatcher still holds its lease;
    the destination's run of failures counted, and the destination paused at `pause_after`.
    Returns whether the destination was paused by this attempt."""
    d = outbound_deliveries
    values: dict[str, Any] = {
        "state": outcome.state,
        "attempts": claimed.attempts + 1,
        "next_at": outcome.next_at,
        "leased_until": None,
        "lease_owner": None,
        "last_status": attempt.http_status,
        "last_error": attempt.error,
        "updated_at": attempt.at,
    }
    if outcome.state == DELIVERED:
        values["delivered_at"] = attempt.at
    paused = False
    async with db.write() as conn:
        moved = await conn.execute(
            update(d).where(d.c.id == claimed.id, d.c.lease_owner == owner).values(values)
        )
        if moved.rowcount == 0:
            return False  # the lease ran out and another dispatcher has the row: its attempt counts
        await conn.execute(
            outbound_attempts.insert().values(
                delivery=claimed.id,
                at=attempt.at,
                url=attempt.url,
                http_status=attempt.http_status,
                latency_ms=attempt.latency_ms,
                reply=attempt.reply,
                error=attempt.error,
                worker=attempt.worker,
            )
        )
        if outcome.destination_failed:
            paused = await _failed(db, conn, claimed.destination, attempt, pause_after)
        elif outcome.destination_ok:
            dest = outbound_destinations
            await conn.execute(
                update(dest)
                .where(dest.c.destination == claimed.destination, dest.c.failures > 0)
                .values(failures=0, updated_at=attempt.at)
            )
    return paused


async def _failed(
    db: Database, conn: AsyncConnection, destination: str, attempt: Attempt, pause_after: int
) -> bool:
    dest = outbound_destinations
    why = attempt.error or f"HTTP {attempt.http_status}"
    upsert = db.upsert(dest).values(
        destination=destination, failures=1, paused_at=None, reason=why[:512], updated_at=attempt.at
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=[dest.c.destination],
        set_={"failures": dest.c.failures + 1, "reason": upsert.excluded.reason, "updated_at": attempt.at},
    ).returning(dest.c.failures, dest.c.paused_at)
    failures, paused_at = (await conn.execute(upsert)).one()
    if paused_at is None and failures >= pause_after:
        reason = f"paused after {failures} failed attempts in a row; the last: {why}"
        await conn.execute(
            update(dest)
            .where(dest.c.destination == destination)
            .values(paused_at=attempt.at, reason=reason[:512])
        )
        return True
    return False


# --- destinations, replays, lists -------------------------------------------------------------------


async def destinations(db: Database, paused_only: bool) -> list[dict[str, Any]]:
    """Destinations with failures on record, each with how many deliveries wait for it."""
    dest, d = outbound_destinations, outbound_deliveries
    waiting = (
        select(func.count())
        .where(d.c.destination == dest.c.destination, d.c.state == WAITING)
        .scalar_subquery()
        .label("waiting")
    )
    query = select(dest, waiting).order_by(dest.c.destination)
    if paused_only:
        query = query.where(dest.c.paused_at.is_not(None))
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def resume(db: Database, destination: str, now: datetime) -> int:
    """Unpause a destination: its waiting deliveries are due at once. Returns how many."""
    dest, d = outbound_destinations, outbound_deliveries
    async with db.write() as conn:
        found = await conn.execute(
            update(dest)
            .where(dest.c.destination == destination)
            .values(paused_at=None, failures=0, updated_at=now)
        )
        if found.rowcount == 0:
            raise NotFound(f"destination {destination} has no failures on record")
        due = await conn.execute(
            update(d).where(d.c.destination == destination, d.c.state == WAITING).values(next_at=now)
        )
    return int(due.rowcount)


async def pause(db: Database, destination: str, reason: str, now: datetime) -> None:
    dest = outbound_destinations
    async with db.write() as conn:
        upsert = db.upsert(dest).values(
            destination=destination, failures=0, paused_at=now, reason=reason, updated_at=now
        )
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[dest.c.destination],
                set_={"paused_at": now, "reason": reason, "updated_at": now},
            )
        )


async def replay(db: Database, ids: Sequence[int] | None, state: str | None, now: datetime) -> int:
    """Deliveries sent again from their first attempt, with their delivery ID (receivers that
    had them deduplicate): those named, or every one in `state` (e.g. dead). Returns how many."""
    d = outbound_deliveries
    where: list[ColumnElement[bool]] = []
    if ids is not None:
        where.append(d.c.id.in_(list(ids)))
    if state is not None:
        where.append(d.c.state == state)
    stmt = (
        update(d)
        .where(and_(*where), or_(d.c.state != WAITING, d.c.leased_until.is_(None)))
        .values(state=WAITING, attempts=0, next_at=now, leased_until=None, lease_owner=None, updated_at=now)
    )
    async with db.write() as conn:
        return int((await conn.execute(stmt)).rowcount)


async def list_deliveries(
    db: Database, filters: Mapping[str, object], cursor: str | None, limit: int
) -> paging.Page:
    """Newest first."""
    d = outbound_deliveries
    query = paging.equal(select(d), {d.c[name]: value for name, value in filters.items()})
    return await paging.page(db, query, [paging.Key(d.c.id, descending=True)], cursor, limit)


async def get_delivery(db: Database, delivery: int) -> dict[str, Any]:
    d, a = outbound_deliveries, outbound_attempts
    async with db.read() as conn:
        row = (await conn.execute(select(d).where(d.c.id == delivery))).first()
        if row is None:
            raise NotFound(f"delivery {delivery} does not exist")
        attempts = (await conn.execute(select(a).where(a.c.delivery == delivery).order_by(a.c.id))).all()
    return dict(row._mapping) | {"attempt_log": [dict(r._mapping) for r in attempts]}


async def counts(db: Database) -> dict[str, int]:
    d = outbound_deliveries
    async with db.read() as conn:
        rows = (await conn.execute(select(d.c.state, func.count()).group_by(d.c.state))).all()
    return {state: 0 for state in STATES} | {r[0]: int(r[1]) for r in rows}
