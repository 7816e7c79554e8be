"""Imported spend applied to clicks (core/costimport.py): each click's new cost, and the report
rollups moved by the difference, in one transaction."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, insert, select, update

from clickback.core import audit as trail
from clickback.core.audit import Actor
from clickback.core.clicks import SUB_KEYS
from clickback.core.cost import COST_SCALE
from clickback.core.costimport import SpendLine, spread_lines
from clickback.core.metrics import Contribution
from clickback.store import audit, paging
from clickback.store.bulk import insert_all
from clickback.store.db import Database
from clickback.store.rollups import CLICK_TIME, Rollups, row_values
from clickback.store.tables import clicks, cost_imports


@dataclass
class Applied:
    lines: int = 0
    clicks: int = 0  # whose cost changed
    total: dict[str, Decimal] = field(default_factory=dict)  # spread, per currency
    unmatched: list[SpendLine] = field(default_factory=list)  # lines of a day and link with no click


async def apply_spend(
    db: Database,
    groups: Mapping[tuple[date, int], Sequence[SpendLine]],
    zone: ZoneInfo,
    now: datetime,
    by: Actor = trail.SYSTEM,
) -> Applied:
    """Each (day in `zone`, link)'s clicks get what core.costimport.spread_lines gives them,
    replacing what they cost before; the rollups move by the difference. The audit log keeps
    the import (its lines, days and links) with what the clicks it changed cost before and after."""

    def work(conn: Connection) -> Applied:
        applied = Applied()
        cost_before: dict[str, Decimal] = {}
        cost_after: dict[str, Decimal] = {}
        rollups = Rollups(db.local_days)
        changed: list[dict[str, Any]] = []
        log: list[dict[str, Any]] = []
        for (day, link_id), lines in sorted(groups.items()):
            start = datetime.combine(day, time(), zone).astimezone(UTC)
            end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
            c = clicks.c
            rows = conn.execute(
                select(clicks)
                .where(c.link_id == link_id, c.clicked_at >= start, c.clicked_at < end, ~c.test)
                .order_by(c.clicked_at, c.click_id)
            ).mappings()
            found = [dict(r) for r in rows]
            spread = spread_lines(lines, [(r["click_id"], [r[k] for k in SUB_KEYS]) for r in found])
            for spend, matched in zip(lines, spread.matched, strict=True):
                log.append(_logged(spend, link_id, zone, matched, now))
                applied.lines += 1
                if not matched:
                    applied.unmatched.append(spend)
                    continue
                amount = Decimal(spend.units) / COST_SCALE
                applied.total[spend.currency] = applied.total.get(spend.currency, Decimal(0)) + amount
            for r in found:
                before = (int(r["cost"] * COST_SCALE), r["cost_currency"])
                after = spread.costs[r["click_id"]]
                if after == before:
                    continue
                changed.append(
                    {"id": r["click_id"], "cost": Decimal(after[0]) / COST_SCALE, "currency": after[1]}
                )
                _move(rollups, r, before, after)
                for (units, currency), sums in ((before, cost_before), (after, cost_after)):
                    if units:
                        sums[currency] = sums.get(currency, Decimal(0)) + Decimal(units) / COST_SCALE
        applied.clicks = len(changed)
        if changed:
            c = clicks.c
            conn.execute(
                update(clicks)
                .where(c.click_id == bindparam("id"))
                .values(cost=bindparam("cost"), cost_currency=bindparam("currency")),
                changed,
            )
        insert_all(conn, rollups.write(conn, db))
        ids = list(conn.execute(insert(cost_imports).returning(cost_imports.c.id), log).scalars())
        if ids:
            record = trail.Change(
                by,
                trail.Kind.SPEND_IMPORT,
                min(ids),
                "import",
                trail.state({"clicks_cost": cost_before}),
                trail.state(
                    {
                        "clicks_cost": cost_after,
                        "lines": applied.lines,
                        "clicks": applied.clicks,
                        "unmatched": len(applied.unmatched),
                        "zone": zone.key,
                        "days": sorted({d.isoformat() for d, _ in groups}),
                        "links": sorted({link for _, link in groups}),
                    }
                ),
            )
            audit.record_sync(conn, [record], now)
        return applied

    return await db.run_write(work)


def _move(rollups: Rollups, row: Mapping[str, Any], before: tuple[int, str], after: tuple[int, str]) -> None:
    """A click's cost taken out of its rollup rows and put back as it is now."""
    bot = bool(row["bot"])
    moves = []
    for (units, currency), sign in ((before, -1), (after, 1)):
        if units:
            amount = sign * Decimal(units) / COST_SCALE
            moves.append(
                Contribution(currency, {"click_cost": amount} | ({"bot_cost": amount} if bot else {}))
            )
    owners = (row["affiliate_id"], row["offer_id"])
    second = int(row["clicked_at"].timestamp())
    rollups.add(CLICK_TIME, second, owners, row["country"], row_values(row), moves)


def _logged(spend: SpendLine, link_id: int, zone: ZoneInfo, matched: int, now: datetime) -> dict[str, Any]:
    return {
        "imported_at": now,
        "zone": zone.key,
        "day": spend.day,
        "link_id": link_id,
        "subs": json.dumps(dict(spend.subs), ensure_ascii=False),
        "cost": Decimal(spend.units) / COST_SCALE,
        "currency": spend.currency,
        "clicks": matched,
    }


async def imports_page(db: Database, link_id: int | None, cursor: str | None, limit: int) -> paging.Page:
    """What imports applied, newest first."""
    t = cost_imports
    stmt = select(t)
    if link_id is not None:
        stmt = stmt.where(t.c.link_id == link_id)
    return await paging.page(db, stmt, [paging.Key(t.c.id, descending=True)], cursor, limit)
