"""The audit log's rows: written inside the caller's transaction (the change and its record
commit together), read newest first."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, false, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.audit import Change, Kind
from clickback.core.spans import Span
from clickback.store import paging
from clickback.store.db import Database
from clickback.store.tables import audit_log, caps, deals


async def record(conn: AsyncConnection, changes: Sequence[Change | None], at: datetime | None = None) -> None:
    """Append the changes (None: nothing changed, nothing kept) in the caller's transaction."""
    rows = _rows(changes, at)
    if rows:
        await conn.execute(audit_log.insert(), rows)


def record_sync(conn: Connection, changes: Sequence[Change | None], at: datetime | None = None) -> None:
    """The same, in a synchronous transaction (a postback group's: service/postbacks.py)."""
    rows = _rows(changes, at)
    if rows:
        conn.execute(audit_log.insert(), rows)


def _rows(changes: Sequence[Change | None], at: datetime | None) -> list[dict[str, Any]]:
    at = at or datetime.now(UTC)
    return [
        {
            "at": at,
            "actor": c.actor.name,
            "user_id": c.actor.user_id,
            "entity_kind": c.kind.value,
            "entity_id": c.entity_id,
            "action": c.action,
            "before": c.before,
            "after": c.after,
            "reason": c.reason,
        }
        for c in changes
        if c is not None
    ]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    entity_kind: str | None = None
    entity_id: int | None = None
    actor: str | None = None
    user_id: int | None = None
    action: str | None = None
    at: Span[datetime] = field(default_factory=Span)


async def page(db: Database, f: AuditFilter, cursor: str | None, limit: int) -> paging.Page:
    c = audit_log.c
    query = paging.equal(
        select(audit_log),
        {
            c.entity_kind: f.entity_kind,
            c.entity_id: f.entity_id,
            c.actor: f.actor,
            c.user_id: f.user_id,
            c.action: f.action,
        },
    )
    query = paging.within(query, c.at, f.at)
    return await paging.page(db, query, [paging.Key(c.id, descending=True)], cursor, limit)


async def history(
    db: Database, entities: Mapping[str, Sequence[int] | Select[Any]], cursor: str | None, limit: int
) -> paging.Page:
    """The changes of several rows, newest first (entity kind -> their ids, or a query of them)."""
    c = audit_log.c
    which = [(c.entity_kind == kind) & c.entity_id.in_(ids) for kind, ids in entities.items()]
    query = select(audit_log).where(or_(false(), *which))
    return await paging.page(db, query, [paging.Key(c.id, descending=True)], cursor, limit)


async def offer_history(db: Database, offer_id: int, cursor: str | None, limit: int) -> paging.Page:
    """An offer's changes with those of its deals and caps (each their own rows in the log)."""
    return await history(
        db,
        {
            Kind.OFFER: [offer_id],
            Kind.DEAL: select(deals.c.id).where(deals.c.offer_id == offer_id),
            Kind.CAP: select(caps.c.id).where(caps.c.offer_id == offer_id),
        },
        cursor,
        limit,
    )
