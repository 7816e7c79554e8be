"""The values rollup by local week (ADR 14): report_weeks, for the weeks a period covers whole.

A week is summed from its days once it is over in its zone (sum_weeks, in the background). From
then on every writer adding to a day of that week adds the same to the week (weekly): the
week's report_week_state row, read in the writer's transaction, says whether it is kept, and on
PostgreSQL that row's lock (FOR SHARE, against the sum's FOR UPDATE) orders the writer and the
summing of the week, so that no addition falls between the sum and the week's being kept. On
SQLite one writer at a time does as much. Clicks add to the current week, which is not kept:
only late facts (a conversion of an older click, a drained spool) add to a kept week."""

import functools
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, func, insert, literal, select, tuple_, update

from clickback.core.metrics import MEASURES
from clickback.core.reporting import week_days, week_of
from clickback.store.db import Database
from clickback.store.tables import report_values, report_week_state, report_weeks

WEEK_KEY: tuple[str, ...] = (
    "zone",
    "dimension",
    "week",
    "value",
    "affiliate_id",
    "offer_id",
    "basis",
    "currency",
)


def weeks_between(db: Database, first: int, last: int) -> set[tuple[str, int]]:
    """The (zone, week)s of every kept zone from one UTC second to another."""
    local = db.local_days
    spans = zip(local.zones, local.of(first), local.of(last), strict=True)
    return {(z, w) for z, a, b in spans for w in range(week_of(a), week_of(b) + 1)}


def kept_weeks(conn: Connection, db: Database, touched: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """Of the (zone, week)s a writer is adding to, those report_weeks keeps.

    Only weeks over (or ending within SAFE_SECONDS) are looked up: sum_weeks takes no other,
    so a batch of today's clicks costs nothing here. Their rows are share-locked (PostgreSQL)
    until the writer commits; one missing (a week before the zone was kept) is made."""
    ending = dict(zip(db.local_days.zones, db.local_days.of(int(time.time()) + SAFE_SECONDS), strict=True))
    near = sorted({(z, w) for z, w in touched if week_days(w)[1] < ending[z]})
    if not near:
        return set()
    t = report_week_state.c
    found = select(t.zone, t.week, t.kept).where(tuple_(t.zone, t.week).in_(near))
    if db.dialect == "postgresql":
        found = found.with_for_update(read=True)
    rows = conn.execute(found).all()
    if missing := set(near) - {(r.zone, r.week) for r in rows}:
        conn.execute(
            db.insert_ignore(report_week_state), [{"zone": z, "week": w} for z, w in sorted(missing)]
        )
    return {(r.zone, r.week) for r in rows if r.kept}


# A week is summed once it is over; writers look its state up from this long before.
SAFE_SECONDS = 3600


def weekly(
    conn: Connection,
    db: Database,
    rows: Sequence[tuple[Any, ...]],
    counters: int,
    *,
    ordered: bool,
    touched: Iterable[tuple[str, int]] | None = None,
) -> list[tuple[Any, ...]]:
    """The report_weeks rows to add for values-rollup rows (VALUE_KEY, then `counters` sums):
    those of kept weeks, summed by week. `touched`: the rows' (zone, week)s, if known cheaper
    than by going through them."""
    if touched is None:
        touched = {(r[0], week_of(r[2])) for r in rows}
    kept = kept_weeks(conn, db, touched)
    if not kept:
        return []
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        week = week_of(r[2])
        if (r[0], week) not in kept:
            continue
        key = (r[0], r[1], week, *r[3:8])
        into = sums.get(key)
        if into is None:
            sums[key] = list(r[8 : 8 + counters])
        else:
            for i, amount in enumerate(r[8 : 8 + counters]):
                into[i] += amount
    out = [(*k, *v) for k, v in sums.items()]
    if ordered:
        out.sort()
    return out


async def sum_weeks(db: Database, now: int) -> int:
    """Sum into report_weeks each week over in its zone that is not kept yet; how many.

    Each week in a transaction of its own. PostgreSQL: its state row locked first (skipped if a
    writer or another process holds it: the next round sums it), so that the writers adding to
    that week wait, then add to the week's rows too. Idempotent: any process may run it."""
    today = dict(zip(db.local_days.zones, db.local_days.of(now), strict=True))
    # The weeks of today's facts, known before their first writer looks (kept_weeks).
    coming = [(z, week_of(d) + n) for z, d in today.items() for n in (0, 1)]
    async with db.write() as conn:
        await conn.execute(db.insert_ignore(report_week_state), [{"zone": z, "week": w} for z, w in coming])
    async with db.read() as conn:
        pending = (await conn.execute(select(report_week_state).where(~report_week_state.c.kept))).all()
    summed = 0
    for r in pending:
        if week_days(r.week)[1] < today[r.zone]:
            summed += await db.run_write(functools.partial(_sum_week, db=db, zone=r.zone, week=r.week))
    return summed


def _sum_week(conn: Connection, db: Database, zone: str, week: int) -> int:
    s = report_week_state.c
    state = select(s.kept).where(s.zone == zone, s.week == week)
    if db.dialect == "postgresql":
        state = state.with_for_update(skip_locked=True)
    kept = conn.execute(state).scalar_one_or_none()
    if kept is None or kept:  # held by another, or summed meanwhile
        return 0
    v = report_values.c
    first, last = week_days(week)
    key = [v.dimension, v.value, v.affiliate_id, v.offer_id, v.basis, v.currency]
    rows = (
        select(v.zone, v.dimension, literal(week, Integer), *key[1:], *(func.sum(v[m]) for m in MEASURES))
        .where(v.zone == zone, v.day >= first, v.day <= last)
        .group_by(v.zone, *key)
    )
    w = report_weeks.c
    conn.execute(report_weeks.delete().where(w.zone == zone, w.week == week))
    conn.execute(insert(report_weeks).from_select([*WEEK_KEY, *MEASURES], rows))
    conn.execute(update(report_week_state).where(s.zone == zone, s.week == week).values(kept=True))
    return 1


def kept_between(rows: Iterable[Any], first_day: int, last_day: int) -> list[int]:
    """Of report_week_state rows, the kept weeks lying whole within the days, in order."""
    whole = (r.week for r in rows if r.kept)
    return sorted(w for w in whole if first_day <= week_days(w)[0] and week_days(w)[1] <= last_day)


def state_between(zone: str, first_day: int, last_day: int) -> Any:
    s = report_week_state.c
    return select(s.week, s.kept).where(
        s.zone == zone, s.week >= week_of(first_day), s.week <= week_of(last_day)
    )
