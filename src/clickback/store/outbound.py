"""Outbound postbacks' rows: templates (part of the catalog), the outbox of deliveries that
dispatchers claim, the attempt log, and destinations paused after failing in a row."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core import audit as trail
from clickback.core.audit import Actor
from clickback.core.outbound import mask_url
from clickback.store import audit, paging
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


def _shown(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A template as the audit log keeps it: its URL's secrets masked, as in the delivery log."""
    if row is None:
        return None
    shown = {k: v for k, v in row.items() if k != "deleted_at"}
    return shown | {"url": mask_url(row["url"])}


async def create_template(
    db: Database, values: Mapping[str, Any], now: datetime, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    row = template_values(values) | {"status": "active", "created_at": now, "updated_at": now}
    async with db.write() as conn:
        stmt = outbound_templates.insert().values(row).returning(*outbound_templates.c)
        created = dict((await conn.execute(stmt)).one()._mapping)
        done = trail.change(by, trail.Kind.TEMPLATE, created["id"], "create", None, _shown(created))
        await audit.record(conn, [done], now)
        await bump_version(conn)
    return created


def _kept(template_id: int) -> ColumnElement[bool]:
    """The template of that id, unless deleted."""
    t = outbound_templates
    return (t.c.id == template_id) & t.c.deleted_at.is_(None)


async def get_template(db: Database, template_id: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(outbound_templates).where(_kept(template_id)))).first()
    if row is None:
        raise NotFound(f"outbound template {template_id} does not exist")
    return dict(row._mapping)


async def change_template(
    db: Database, template_id: int, values: Mapping[str, Any], now: datetime, by: Actor = trail.SYSTEM
) -> dict[str, Any]:
    """The change and its line in the audit log, in one transaction (the row read locked)."""
    mine = _kept(template_id)
    async with db.write() as conn:
        found = (await conn.execute(select(outbound_templates).where(mine).with_for_update())).first()
        if found is None:
            raise NotFound(f"outbound template {template_id} does not exist")
        stmt = (
            update(outbound_templates)
            .where(mine)
            .values(template_values(values) | {"updated_at": now})
            .returning(*outbound_templates.c)
        )
        row = dict((await conn.execute(stmt)).one()._mapping)
        action = "status" if set(values) == {"status"} else "edit"
        done = trail.change(
            by, trail.Kind.TEMPLATE, template_id, action, _shown(dict(found._mapping)), _shown(row)
        )
        await audit.record(conn, [done], now)
        await bump_version(conn)
    return row


async def delete_template(
    db: Database, template_id: int, by: Actor = trail.SYSTEM, now: datetime | None = None
) -> None:
    """Gone from the catalog, the API and the pages, but its row stays: its deliveries (queued,
    or replayed later) are still sent as they were made, signed with its secret. The audit log
    keeps the template as it was."""
    mine = _kept(template_id)
    now = now or datetime.now(UTC)
    async with db.write() as conn:
        found = (await conn.execute(select(outbound_templates).where(mine).with_for_update())).first()
        if found is None:
            raise NotFound(f"outbound template {template_id} does not exist")
        await conn.execute(update(outbound_templates).where(mine).values(deleted_at=now, updated_at=now))
        done = trail.change(
            by, trail.Kind.TEMPLATE, template_id, "delete", _shown(dict(found._mapping)), None
        )
        await audit.record(conn, [done], now)
        await bump_version(conn)


async def list_templates(
    db: Database, filters: Mapping[str, object], cursor: str | None, limit: int
) -> paging.Page:
    t = outbound_templates
    query = paging.equal(
        select(t).where(t.c.deleted_at.is_(None)), {t.c[name]: value for name, value in filters.items()}
    )
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
    db: Database,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    per_destination: int,
    busy: Sequence[str],
) -> list[Claimed]:
    """Up to `limit` due deliveries, at most `per_destination` of any one destination, leased to
    `owner` until now + lease: none of a paused destination, nor of the `busy` ones. Dispatchers
    on one PostgreSQL skip each other's locked rows (SKIP LOCKED); on SQLite the UPDATE runs under
    the database's write lock, so two claims never take the same row either. A lease that ran out
    (its dispatcher died) makes the row due again."""
    d = outbound_deliveries
    due = (
        select(d.c.id, d.c.destination, d.c.next_at)
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
    rows_due = due.subquery("due")
    # A backlog for one destination must not fill the claim: the rest wait in the database,
    # where any dispatcher can take them, not in this one's memory.
    ranked = select(
        rows_due.c.id,
        func.row_number().over(partition_by=rows_due.c.destination, order_by=rows_due.c.next_at).label("n"),
    ).subquery("ranked")
    picked = select(ranked.c.id).where(ranked.c.n <= per_destination)
    stmt = (
        update(d)
        .where(d.c.id.in_(picked.scalar_subquery()))
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
        # Deleted templates too: what they queued is still theirs to sign.
        t = outbound_templates
        ids = sorted({r.template_id for r in rows})
        found = await conn.execute(select(t.c.id, t.c.secret).where(t.c.id.in_(ids)))
        secrets = {r[0]: r[1] for r in found}
    return [Claimed(**r._mapping, secret=secrets.get(r.template_id)) for r in rows]


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


@dataclass(frozen=True, slots=True)
class Recorded:
    claimed: Claimed
    attempt: Attempt
    outcome: Outcome


_MOVE = (
    update(outbound_deliveries)
    .where(outbound_deliveries.c.id == bindparam("row_id"))
    .values(
        state=bindparam("new_state"),
        attempts=bindparam("new_attempts"),
        next_at=bindparam("new_next_at"),
        leased_until=None,
        lease_owner=None,
        last_status=bindparam("new_status"),
        last_error=bindparam("new_error"),
        updated_at=bindparam("new_at"),
        delivered_at=bindparam("new_delivered_at"),
    )
)


async def record_attempts(db: Database, owner: str, done: Sequence[Recorded], pause_after: int) -> set[str]:
    """Attempts logged and their deliveries moved on, in one transaction for however many ended
    together (one commit, a statement a kind: at hundreds a second, a transaction each was the
    dispatcher's bottleneck). Only rows this dispatcher still holds: one whose lease ran out
    belongs to whoever took it since. Each destination's run of failures is counted, and a
    destination paused at `pause_after`. Returns the destinations this paused."""
    d = outbound_deliveries
    async with db.write() as conn:
        held_ids = select(d.c.id).where(d.c.id.in_([r.claimed.id for r in done]), d.c.lease_owner == owner)
        held = set((await conn.execute(held_ids)).scalars())
        mine = [r for r in done if r.claimed.id in held]
        if not mine:
            return set()
        await conn.execute(
            _MOVE,
            [
                {
                    "row_id": r.claimed.id,
                    "new_state": r.outcome.state,
                    "new_attempts": r.claimed.attempts + 1,
                    "new_next_at": r.outcome.next_at,
                    "new_status": r.attempt.http_status,
                    "new_error": r.attempt.error,
                    "new_at": r.attempt.at,
                    "new_delivered_at": r.attempt.at if r.outcome.state == DELIVERED else None,
                }
                for r in mine
            ],
        )
        await conn.execute(
            outbound_attempts.insert(),
            [
                {
                    "delivery": r.claimed.id,
                    "at": r.attempt.at,
                    "url": r.attempt.url,
                    "http_status": r.attempt.http_status,
                    "latency_ms": r.attempt.latency_ms,
                    "reply": r.attempt.reply,
                    "error": r.attempt.error,
                    "worker": r.attempt.worker,
                }
                for r in mine
            ],
        )
        paused = set()
        by_destination: dict[str, list[Recorded]] = {}
        for r in mine:
            by_destination.setdefault(r.claimed.destination, []).append(r)
        for destination, ended in sorted(by_destination.items()):
            if await _count_failures(db, conn, destination, ended, pause_after):
                paused.add(destination)
    return paused


async def _count_failures(
    db: Database, conn: AsyncConnection, destination: str, ended: Sequence[Recorded], pause_after: int
) -> bool:
    """The destination's failures in a row after these attempts (in the order they ended)."""
    dest = outbound_destinations
    ok = any(r.outcome.destination_ok for r in ended)
    after_ok: list[Recorded] = []
    for r in ended:
        if r.outcome.destination_ok:
            after_ok = []
        elif r.outcome.destination_failed:
            after_ok.append(r)
    if not after_ok:
        if ok:
            await conn.execute(
                update(dest)
                .where(dest.c.destination == destination, dest.c.failures > 0)
                .values(failures=0, updated_at=ended[-1].attempt.at)
            )
        return False
    last = after_ok[-1].attempt
    why = (last.error or f"HTTP {last.http_status}")[:400]
    upsert = db.upsert(dest).values(
        destination=destination, failures=len(after_ok), paused_at=None, reason=why, updated_at=last.at
    )
    added = len(after_ok) if not ok else 0
    upsert = upsert.on_conflict_do_update(
        index_elements=[dest.c.destination],
        set_={
            # After a success in this batch the run restarts from the failures that followed it.
            "failures": dest.c.failures + added if not ok else len(after_ok),
            "reason": upsert.excluded.reason,
            "updated_at": last.at,
        },
    ).returning(dest.c.failures, dest.c.paused_at)
    failures, paused_at = (await conn.execute(upsert)).one()
    if paused_at is None and failures >= pause_after:
        reason = f"paused after {failures} failed attempts in a row; the last: {why}"
        await conn.execute(
            update(dest).where(dest.c.destination == destination).values(paused_at=last.at, reason=reason)
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


def _destination_change(
    by: Actor, action: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> trail.Change | None:
    """A destination's pause or resume for the audit log: a host has no number (entity_id 0), so
    its name is kept beside what changed."""
    fields = ("destination", "paused_at", "reason")
    shown_before = {k: before[k] for k in fields} if before is not None else None
    shown_after = {k: after[k] for k in fields}
    return trail.change(
        by, trail.Kind.DESTINATION, 0, action, shown_before, shown_after, keep=frozenset({"destination"})
    )


async def _destination(conn: AsyncConnection, destination: str) -> dict[str, Any] | None:
    dest = outbound_destinations
    found = (
        await conn.execute(select(dest).where(dest.c.destination == destination).with_for_update())
    ).first()
    return None if found is None else dict(found._mapping)


async def resume(db: Database, destination: str, now: datetime, by: Actor = trail.SYSTEM) -> int:
    """Unpause a destination: its waiting deliveries are due at once. Returns how many."""
    dest, d = outbound_destinations, outbound_deliveries
    async with db.write() as conn:
        before = await _destination(conn, destination)
        if before is None:
            raise NotFound(f"destination {destination} has no failures on record")
        await conn.execute(
            update(dest)
            .where(dest.c.destination == destination)
            .values(paused_at=None, failures=0, updated_at=now)
        )
        after = before | {"paused_at": None}
        await audit.record(conn, [_destination_change(by, "resume", before, after)], now)
        # Not the rows a dispatcher is sending now (leased): it records their attempt in a
        # transaction that updates them and then this destination's row, the other way round
        # from this one, and PostgreSQL broke the deadlock by failing the resume (a 500). Their
        # next attempt follows from that attempt, as for any other destination.
        free = or_(d.c.leased_until.is_(None), d.c.leased_until < now)
        due = await conn.execute(
            update(d).where(d.c.destination == destination, d.c.state == WAITING, free).values(next_at=now)
        )
    return int(due.rowcount)


async def pause(db: Database, destination: str, reason: str, now: datetime, by: Actor = trail.SYSTEM) -> None:
    dest = outbound_destinations
    async with db.write() as conn:
        before = await _destination(conn, destination)
        after = {"destination": destination, "paused_at": now, "reason": reason}
        await audit.record(conn, [_destination_change(by, "pause", before, after)], now)
        upsert = db.upsert(dest).values(
            destination=destination, failures=0, paused_at=now, reason=reason, updated_at=now
        )
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[dest.c.destination],
                set_={"paused_at": now, "reason": reason, "updated_at": now},
            )
        )


async def replay(
    db: Database,
    ids: Sequence[int] | None,
    state: str | None,
    now: datetime,
    affiliate_id: int | None = None,
    by: Actor = trail.SYSTEM,
) -> int:
    """Deliveries sent again from their first attempt, with their delivery ID (receivers that
    had them deduplicate): those named, or every one in `state` (e.g. dead); of `affiliate_id`
    only when given (an affiliate's own). Each is recorded in the audit log with its state and
    attempts before. Returns how many."""
    d = outbound_deliveries
    where: list[ColumnElement[bool]] = [or_(d.c.state != WAITING, d.c.leased_until.is_(None))]
    if ids is not None:
        where.append(d.c.id.in_(list(ids)))
    if state is not None:
        where.append(d.c.state == state)
    if affiliate_id is not None:
        where.append(d.c.affiliate_id == affiliate_id)
    again = {"state": WAITING, "attempts": 0}
    async with db.write() as conn:
        # Read locked, then changed by id: the audit log's "before" is the row this replay moved.
        found = (
            await conn.execute(select(d.c.id, d.c.state, d.c.attempts).where(*where).with_for_update())
        ).all()
        if not found:
            return 0
        picked = [r.id for r in found]
        for chunk in range(0, len(picked), 1000):
            await conn.execute(
                update(d)
                .where(d.c.id.in_(picked[chunk : chunk + 1000]))
                .values(next_at=now, leased_until=None, lease_owner=None, updated_at=now, **again)
            )
        changes = [
            trail.change(
                by, trail.Kind.DELIVERY, r.id, "replay", {"state": r.state, "attempts": r.attempts}, again
            )
            for r in found
        ]
        await audit.record(conn, changes, now)
    return len(found)


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
