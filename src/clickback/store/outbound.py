"""Outbound postbacks' rows: templates (part of the catalog), the outbox of deliveries that
dispatchers claim, the attempt log, and destinations paused after failing in a row.

A conversion's deliveries to one destination form a queue, sent one at a time in the order they
were made: a tracker keeps the last status it hears, so "rejected" must not overtake "approved".
The queue's head is `waiting` (claimed when due, retried); the rest are `held` behind it, never
claimed, and the oldest is made due when the head ends (delivered, failed, dead). The claim
itself looks at waiting rows only: a condition over each row's predecessors made its plan
quadratic on a table grown since PostgreSQL last analyzed it (docs/benchmarks.md)."""

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Update,
    bindparam,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core import audit as trail
from clickback.core.audit import Actor
from clickback.core.outbound import mask_url
from clickback.store import audit, paging
from clickback.store.admin import NotFound
from clickback.store.bulk import chunks
from clickback.store.catalog import bump_version
from clickback.store.db import Database
from clickback.store.tables import (
    outbound_attempts,
    outbound_deliveries,
    outbound_destinations,
    outbound_templates,
)

WAITING, HELD, DELIVERED, FAILED, DEAD = "waiting", "held", "delivered", "failed", "dead"
STATES = (WAITING, HELD, DELIVERED, FAILED, DEAD)
# A conversion's deliveries to one destination: (conversion_id, destination), sent in turn.
Queue = tuple[int, str]


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


def in_turn(conn: Connection, rows: Sequence[dict[str, Any]], created: Collection[int] = ()) -> None:
    """Each new delivery's state, set before the rows are written in the same transaction:
    `waiting` if its queue has nothing else to send, else `held` behind what it has (the rows
    stored, and those before it in `rows`, which are in the order the changes were made).
    Conversions `created` in this transaction have nothing stored: not looked for (most of a
    postback group's are new ones, and then the group makes no extra round trip).

    The queues' unsent rows are read locked (PostgreSQL). A dispatcher ending the head moves it
    and then, in a later statement of its transaction, releases the oldest held row: had this
    read the head as waiting without the lock while that dispatcher's transaction was open, the
    row held here would be invisible to its release, and held for good. With the lock, either
    the dispatcher's move waits for this transaction (and its release then sees this row), or
    this read waits for the dispatcher and reads the rows as it left them."""
    if not rows:
        return
    stored = {(r["conversion_id"], r["destination"]) for r in rows if r["conversion_id"] not in created}
    busy = _busy(conn, stored)
    for row in rows:
        queue = (row["conversion_id"], row["destination"])
        row["state"] = HELD if queue in busy else WAITING
        busy.add(queue)


def _busy(conn: Connection, queues: Collection[Queue]) -> set[Queue]:
    """Those of `queues` with a delivery waiting or held, their rows locked (_unsent)."""
    found = (conn.execute(_unsent(chunk)) for chunk in chunks(sorted(queues)))
    return {(c, dst) for rows in found for c, dst in rows} & set(queues)


def _unsent(queues: Collection[Queue]) -> Select[int, str]:
    """The queues' waiting and held rows, locked in id order: every transaction that locks
    several of them (this, a dispatcher recording outcomes, a resume, a replay) takes them in
    that order, so two do not wait for each other (were they to, PostgreSQL fails one, and a
    postback group runs again: store.db.lost_race)."""
    d = outbound_deliveries
    return (
        select(d.c.conversion_id, d.c.destination)
        .where(
            # The index on conversion_id finds the few rows of each conversion.
            d.c.conversion_id.in_(sorted({c for c, _ in queues})),
            tuple_(d.c.conversion_id, d.c.destination).in_(sorted(queues)),
            d.c.state.in_((WAITING, HELD)),
        )
        .order_by(d.c.id)
        .with_for_update()
    )


def _release(of_conversions: bool) -> Update:
    """The oldest held row of each queue with nothing waiting made due (`:now`): of the
    conversions in `:conversions` if `of_conversions`, else of all (the sweep). Oldest by id: ids
    follow the order of a conversion's changes, made under its row's lock, a group's rows
    inserted in order. Served by the partial index on held rows; the waiting ahead of them by the
    index on conversion_id. A conversion's queue to another destination than the one that ended
    may go too: only if nothing of it waits, when it was stranded anyway.

    Built once, with the conversions as one expanding parameter: built per call with a tuple of
    (conversion, destination) per queue, the statement took longer to make than to run."""
    d = outbound_deliveries
    held, ahead = d.alias("held"), d.alias("ahead")
    first = select(func.min(held.c.id)).where(held.c.state == HELD)
    if of_conversions:
        first = first.where(held.c.conversion_id.in_(bindparam("conversions", expanding=True)))
    first = first.group_by(held.c.conversion_id, held.c.destination)
    waiting = exists().where(
        ahead.c.conversion_id == d.c.conversion_id,
        ahead.c.destination == d.c.destination,
        ahead.c.state == WAITING,
    )
    now = bindparam("now", type_=d.c.next_at.type)
    return (
        update(d)
        # state: read again on PostgreSQL if another transaction changed the row meanwhile.
        .where(d.c.id.in_(first), d.c.state == HELD, ~waiting)
        .values(state=WAITING, next_at=now, updated_at=now)
    )


_RELEASE_NEXT, _RELEASE_STRANDED = _release(True), _release(False)


async def release_stranded(db: Database, now: datetime) -> int:
    """Held rows with nothing waiting ahead of them made due, the oldest of each queue; returns
    how many. Nothing should leave a row so (a release follows every end of a head, in its
    transaction); this keeps a case nobody foresaw from holding a delivery for good. Dispatchers
    run it now and then: it reads the held rows only, through their partial index."""
    async with db.write() as conn:
        return int((await conn.execute(_RELEASE_STRANDED, {"now": now})).rowcount)


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
    (its dispatcher died) makes the row due again. Held rows wait for their turn (in_turn)."""
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


@dataclass(frozen=True, slots=True)
class Moved:
    """What recording a group of outcomes did besides: destinations it paused, and how many held
    deliveries it made due (their turn came)."""

    paused: frozenset[str]
    released: int


async def record_attempts(db: Database, owner: str, done: Sequence[Recorded], pause_after: int) -> Moved:
    """Attempts logged and their deliveries moved on, in one transaction for however many ended
    together (one commit, a statement a kind: at hundreds a second, a transaction each was the
    dispatcher's bottleneck). Only rows this dispatcher still holds: one whose lease ran out
    belongs to whoever took it since. A delivery that ended lets the next of its queue go, in
    the same transaction. Each destination's run of failures is counted, and a destination
    paused at `pause_after`."""
    d = outbound_deliveries
    async with db.write() as conn:
        held_ids = select(d.c.id, d.c.conversion_id).where(
            d.c.id.in_([r.claimed.id for r in done]), d.c.lease_owner == owner
        )
        conversion_of = {i: c for i, c in await conn.execute(held_ids)}
        # In id order, as in_turn locks them.
        mine = sorted((r for r in done if r.claimed.id in conversion_of), key=lambda r: r.claimed.id)
        if not mine:
            return Moved(frozenset(), 0)
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
        # After the moves: a postback's transaction that holds a head locked (in_turn) has
        # committed by now, so its held row is seen here.
        ended = [r for r in mine if r.outcome.state != WAITING]
        released = 0
        if ended:
            at = {"now": max(r.outcome.next_at for r in ended)}
            of = {"conversions": sorted({conversion_of[r.claimed.id] for r in ended})}
            released = int((await conn.execute(_RELEASE_NEXT, at | of)).rowcount)
        paused = set()
        by_destination: dict[str, list[Recorded]] = {}
        for r in done:
            if r.claimed.id in conversion_of:
                by_destination.setdefault(r.claimed.destination, []).append(r)
        for destination, in_order in sorted(by_destination.items()):
            if await _count_failures(db, conn, destination, in_order, pause_after):
                paused.add(destination)
    return Moved(frozenset(paused), released)


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
    """Destinations with failures on record, each with how many deliveries wait for it, and how
    many are held behind those."""
    dest, d = outbound_destinations, outbound_deliveries

    def count(state: str) -> Any:
        found = select(func.count()).where(d.c.destination == dest.c.destination, d.c.state == state)
        return found.scalar_subquery().label(state)

    query = select(dest, count(WAITING), count(HELD)).order_by(dest.c.destination)
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
        # Locked in id order first, as a postback's in_turn locks them: else each could hold a
        # row the other waits for.
        w = d.alias("w")
        free = or_(w.c.leased_until.is_(None), w.c.leased_until < now)
        rows = select(w.c.id).where(w.c.destination == destination, w.c.state == WAITING, free)
        locked = rows.order_by(w.c.id).with_for_update()
        due = await conn.execute(update(d).where(d.c.id.in_(locked.scalar_subquery())).values(next_at=now))
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
    attempts before. Returns how many.

    A replayed delivery takes its turn in its queue: due at once if the queue has nothing else to
    send, else held, released (as every held row) in id order, so replaying a conversion's dead
    deliveries sends them in the order they were made. Held ones are left alone: they are
    queued already, and sending one now would overtake those before it."""
    d = outbound_deliveries
    where: list[ColumnElement[bool]] = [
        d.c.state != HELD,
        or_(d.c.state != WAITING, d.c.leased_until.is_(None)),
    ]
    if ids is not None:
        where.append(d.c.id.in_(list(ids)))
    if state is not None:
        where.append(d.c.state == state)
    if affiliate_id is not None:
        where.append(d.c.affiliate_id == affiliate_id)
    async with db.write() as conn:
        # Read locked, then changed by id: the audit log's "before" is the row this replay moved.
        chosen = select(d.c.id, d.c.state, d.c.attempts, d.c.conversion_id, d.c.destination)
        found = (await conn.execute(chosen.where(*where).order_by(d.c.id).with_for_update())).all()
        if not found:
            return 0
        # A waiting one stays its queue's head; an ended one queues behind what is unsent.
        wanted = {(r.conversion_id, r.destination) for r in found}
        busy = await conn.run_sync(_busy, wanted)
        again: dict[int, dict[str, Any]] = {}
        for r in found:
            queue = (r.conversion_id, r.destination)
            turn = WAITING if r.state == WAITING or queue not in busy else HELD
            again[r.id] = {"state": turn, "attempts": 0}
            busy.add(queue)
        for to in (WAITING, HELD):
            picked = [i for i, values in again.items() if values["state"] == to]
            for chunk in chunks(picked):
                await conn.execute(
                    update(d)
                    .where(d.c.id.in_(chunk))
                    .values(
                        state=to, attempts=0, next_at=now, leased_until=None, lease_owner=None, updated_at=now
                    )
                )
        changes = [
            trail.change(
                by,
                trail.Kind.DELIVERY,
                r.id,
                "replay",
                {"state": r.state, "attempts": r.attempts},
                again[r.id],
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
