"""The link checker's rows: each check recorded, history and latest per offer, the schedule's claim."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from clickback.core.limits import MAX_URL_LEN
from clickback.core.linkcheck import MAX_ERROR_LEN, MAX_HINT_LEN, Observed, Outcome
from clickback.store import paging
from clickback.store.db import Database
from clickback.store.tables import link_check_due, link_checks, offers


@dataclass(frozen=True, slots=True)
class Checked:
    offer_id: int
    checked_at: datetime
    seen: Observed
    outcome: Outcome

    def row(self) -> dict[str, Any]:
        chain = self.seen.chain
        final = chain[-1] if chain else None
        hops = [{"url": h.url, "status": h.status, "location": h.location} for h in chain]
        return {
            "offer_id": self.offer_id,
            "checked_at": self.checked_at,
            "url": self.seen.url[:MAX_URL_LEN],
            "final_url": (final.url if final else self.seen.url)[:MAX_URL_LEN],
            "status": final.status if final else None,
            "verdict": self.outcome.verdict.value,
            "code": self.outcome.code.value,
            "hint": self.outcome.hint[:MAX_HINT_LEN],
            "elapsed_ms": min(self.seen.elapsed_ms, 2**31 - 1),
            "redirects": json.dumps(hops, ensure_ascii=False),
            "error": self.seen.error[:MAX_ERROR_LEN],
        }


async def record(db: Database, checked: Sequence[Checked]) -> None:
    if not checked:
        return
    async with db.write() as conn:
        await conn.execute(link_checks.insert(), [c.row() for c in checked])


async def claim_due(db: Database, offer_ids: Iterable[int], now: datetime, every: timedelta) -> list[int]:
    """The offers this process is to check now: those due, each moved to `now + every` by the
    UPDATE that claims it. Several processes run this at once (every serve worker, every node);
    the UPDATE's condition `due_at <= now` is re-read after the row lock (PostgreSQL) or under the
    write lock (SQLite), so a row one process moved forward is not due for the next one: each
    offer goes to exactly one of them. A process that dies mid-check loses its offers until the
    next interval, which is the price of claiming without a lease."""
    wanted = sorted(set(offer_ids))
    if not wanted:
        return []
    d = link_check_due
    # A look first, without the write lock (SQLite's is the whole file's): most ticks find nothing due.
    async with db.read() as conn:
        rows = (await conn.execute(select(d.c.offer_id, d.c.due_at).where(d.c.offer_id.in_(wanted)))).all()
    due = {int(r.offer_id): r.due_at for r in rows}
    if all(i in due and due[i] > now for i in wanted):
        return []
    async with db.write() as conn:
        # New offers are due at once; existing rows keep their time.
        await conn.execute(db.insert_ignore(d), [{"offer_id": i, "due_at": now} for i in wanted])
        claimed = await conn.execute(
            update(d)
            .where(d.c.offer_id.in_(wanted), d.c.due_at <= now)
            .values(due_at=now + every)
            .returning(d.c.offer_id)
        )
        return sorted(int(r[0]) for r in claimed)


async def prune(db: Database, before: datetime) -> int:
    async with db.write() as conn:
        result = await conn.execute(delete(link_checks).where(link_checks.c.checked_at < before))
    return int(result.rowcount or 0)


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return row | {"redirects": json.loads(row["redirects"])}


async def history(db: Database, offer_id: int, cursor: str | None, limit: int) -> paging.Page:
    """Newest first."""
    c = link_checks
    query = select(c).where(c.c.offer_id == offer_id)
    page = await paging.page(db, query, [paging.Key(c.c.id, descending=True)], cursor, limit)
    return paging.Page([_decoded(r) for r in page.rows], page.next_cursor)


async def latest(
    db: Database, verdict: str | None, cursor: str | None, limit: int, active_only: bool = True
) -> paging.Page:
    """Each offer's latest check, by offer id (offers never checked are left out)."""
    c = link_checks
    newest = select(func.max(c.c.id)).group_by(c.c.offer_id).scalar_subquery()
    query = select(c).where(c.c.id.in_(newest))
    if active_only:
        active = select(offers.c.id).where(offers.c.status == "active").scalar_subquery()
        query = query.where(c.c.offer_id.in_(active))
    if verdict is not None:
        query = query.where(c.c.verdict == verdict)
    page = await paging.page(db, query, [paging.Key(c.c.offer_id)], cursor, limit)
    return paging.Page([_decoded(r) for r in page.rows], page.next_cursor)
