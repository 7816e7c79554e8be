"""Batch statements of the click writer, per dialect: the one place clickback writes SQL by hand.

The click path writes thousands of rows a second; SQLAlchemy's per-row parameter handling costs
more than the database does at that rate. So each batch statement here takes the whole batch as
a few parameters (JSON text on SQLite, arrays on PostgreSQL), and clicks go in by the driver's
own bulk path (executemany on SQLite, COPY on PostgreSQL).
"""

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from asyncpg.exceptions import UniqueViolationError  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.store.tables import click_stats, clicks, visitors

CLICK_COLUMNS = [c.name for c in clicks.columns]
VISITOR_COLUMNS = [c.name for c in visitors.columns]
STAT_COLUMNS = [c.name for c in click_stats.columns]
STAT_KEYS = [c.name for c in click_stats.primary_key.columns]
STAT_COUNTERS = [c for c in STAT_COLUMNS if c not in STAT_KEYS and c.endswith("clicks")]
_UPSERT_VISITOR = (
    " ON CONFLICT (link_id, visitor) DO UPDATE SET"
    # unique_at moves to this batch's first click only if the visitor's previous click is older
    # than the window; a replayed (older) click never moves last_seen back in time.
    " unique_at = CASE WHEN visitors.last_seen <= excluded.unique_at - :window"
    " THEN excluded.unique_at ELSE visitors.unique_at END,"
    " last_seen = CASE WHEN excluded.last_seen > visitors.last_seen"
    " THEN excluded.last_seen ELSE visitors.last_seen END"
    " RETURNING link_id, visitor, unique_at"
)
_ADD_STATS = f" ON CONFLICT ({', '.join(STAT_KEYS)}) DO UPDATE SET " + ", ".join(
    f"{c} = click_stats.{c} + excluded.{c}" for c in STAT_COUNTERS
)


class ClickBulk:
    """The three batch statements; subclasses say how a batch of rows becomes a SELECT."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def _select(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    async def upsert_visitors(
        self, rows: Sequence[tuple[int, str, int, int]], window_ms: int
    ) -> list[tuple[int, str, int]]:
        select, params = self._select(VISITOR_COLUMNS, rows)
        sql = f"INSERT INTO visitors ({', '.join(VISITOR_COLUMNS)}) {select}" + _UPSERT_VISITOR
        result = await self._conn.execute(text(sql), params | {"window": window_ms})
        return [(r[0], r[1], r[2]) for r in result]

    @staticmethod
    def time_value(moment: datetime) -> Any:
        """A click's time as insert_clicks takes it."""
        return moment

    async def insert_clicks(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """Insert the rows (in CLICK_COLUMNS order, times made by time_value) skipping stored
        click IDs; return inserted."""
        raise NotImplementedError

    async def add_stats(self, rows: Sequence[tuple[Any, ...]]) -> None:
        select, params = self._select(STAT_COLUMNS, rows)
        sql = f"INSERT INTO click_stats ({', '.join(STAT_COLUMNS)}) {select}" + _ADD_STATS
        await self._conn.execute(text(sql), params)


def bulk_for(conn: AsyncConnection) -> ClickBulk:
    if conn.dialect.name == "postgresql":
        return _Postgres(conn)
    return _Sqlite(conn)


class _Sqlite(ClickBulk):
    @staticmethod
    def time_value(moment: datetime) -> str:
        # The text SQLAlchemy's SQLite DateTime stores ("%Y-%m-%d %H:%M:%S.%f"), so rows written
        # here read back the same; isoformat cut before its "+00:00" is that text at half
        # strftime's cost.
        return moment.astimezone(UTC).isoformat(" ", "microseconds")[:26]

    def _select(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        # The whole batch as one JSON parameter; "WHERE true": SQLite's parser needs it between
        # a SELECT and the ON CONFLICT of an upsert.
        values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
        return f"SELECT {values} FROM json_each(:rows) WHERE true", {"rows": json.dumps(rows)}

    async def insert_clicks(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        raw = await self._conn.get_raw_connection()
        driver: Any = raw.driver_connection
        marks = ", ".join("?" * len(CLICK_COLUMNS))
        insert = f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)}) VALUES ({marks})"
        # Nearly every batch is new clicks: insert them all at once, and only when one is already
        # stored (a retried batch, a replayed spool) undo that and skip the stored ones.
        await driver.execute("SAVEPOINT clicks_in")
        try:
            await driver.executemany(insert, rows)
            return {row[0] for row in rows}
        except sqlite3.IntegrityError:
            await driver.execute("ROLLBACK TO clicks_in")
        finally:
            await driver.execute("RELEASE clicks_in")
        known = await self._conn.execute(
            text("SELECT click_id FROM clicks WHERE click_id IN (SELECT value FROM json_each(:ids))"),
            {"ids": json.dumps([row[0] for row in rows])},
        )
        # Writers hold SQLite's lock for the whole transaction (BEGIN IMMEDIATE), so what is not
        # stored now cannot appear before the insert below.
        stored = {r[0] for r in known}
        fresh = [row for row in rows if row[0] not in stored]
        await driver.executemany(insert, fresh)
        return {row[0] for row in fresh}


_PG_ARRAYS = {int: "bigint[]", str: "text[]", bool: "boolean[]"}
_PG_TYPES = {c.name: _PG_ARRAYS[c.type.python_type] for t in (visitors, click_stats) for c in t.columns}


class _Postgres(ClickBulk):
    def _select(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        # The whole batch as one array parameter per column.
        arrays = ", ".join(f"CAST(:{c} AS {_PG_TYPES[c]})" for c in columns)
        values = map(list, zip(*rows, strict=True))
        return f"SELECT * FROM unnest({arrays})", dict(zip(columns, values, strict=True))

    async def insert_clicks(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """COPY straight into clicks; if a click is already stored (a retried batch, a replayed
        spool) undo that and COPY into a session temp table, then INSERT … ON CONFLICT DO NOTHING
        from it. Runs after upsert_visitors has started the transaction on this connection."""
        raw = await self._conn.get_raw_connection()
        driver: Any = raw.driver_connection
        try:
            async with driver.transaction():  # a savepoint inside the batch's transaction
                await driver.copy_records_to_table("clicks", records=rows, columns=CLICK_COLUMNS)
            return {row[0] for row in rows}
        except UniqueViolationError:
            pass
        if not raw.info.get("clicks_in"):
            await driver.execute(
                "CREATE TEMP TABLE IF NOT EXISTS clicks_in (LIKE clicks) ON COMMIT DELETE ROWS"
            )
            raw.info["clicks_in"] = True
        await driver.copy_records_to_table("clicks_in", records=rows, columns=CLICK_COLUMNS)
        result = await driver.fetch(
            "INSERT INTO clicks SELECT * FROM clicks_in ON CONFLICT DO NOTHING RETURNING click_id"
        )
        return {r[0] for r in result}
