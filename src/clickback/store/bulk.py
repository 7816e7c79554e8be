"""Batch statements of the click writer and the postback groups, per dialect: the one place
clickback writes SQL by hand.

The click path writes thousands of rows a second; SQLAlchemy's per-row parameter handling costs
more than the database does at that rate. So each batch statement here takes the whole batch as
a few parameters (JSON text on SQLite, arrays on PostgreSQL), and clicks go in by the driver's
own bulk path (executemany on SQLite, COPY on PostgreSQL). Postback groups insert their rows
through insert_rows: the table's INSERT compiled once, each value made what the driver takes.
"""

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import chain
from typing import Any, Literal, TypeVar

from asyncpg.exceptions import UniqueViolationError  # type: ignore[import-untyped]
from sqlalchemy import Connection, String, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert
from sqlalchemy.util import await_only

from clickback.core.metrics import MONEY
from clickback.store.db import raw_cursor
from clickback.store.tables import (
    MONEY_SCALE,
    Money,
    UtcDateTime,
    clicks,
    report_day_rows,
    report_days,
    report_hours,
    report_values,
    report_weeks,
    visitors,
)

CLICK_COLUMNS = [c.name for c in clicks.columns]
VISITOR_COLUMNS = [c.name for c in visitors.columns]
_UPSERT_VISITOR = (
    " ON CONFLICT (link_id, visitor) DO UPDATE SET"
    # unique_at moves to this batch's first click only if the visitor's previous click is older
    # than the window, and unique_click with it (the old row's values on both sides of SET); a
    # replayed (older) click never moves last_seen back in time.
    " unique_at = CASE WHEN visitors.last_seen <= excluded.unique_at - :window"
    " THEN excluded.unique_at ELSE visitors.unique_at END,"
    " unique_click = CASE WHEN visitors.last_seen <= excluded.unique_at - :window"
    " THEN excluded.unique_click ELSE visitors.unique_click END,"
    " last_seen = CASE WHEN excluded.last_seen > visitors.last_seen"
    " THEN excluded.last_seen ELSE visitors.last_seen END"
)
_RETURNING_VISITOR = " RETURNING link_id, visitor, unique_click"


class ClickBulk:
    """The three batch statements, on a synchronous connection (a click batch runs through
    Database.run_write); subclasses say how a batch of rows becomes a SELECT."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _select(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def upsert_visitors(
        self, rows: Sequence[tuple[int, str, int, int, str]], window_ms: int
    ) -> list[tuple[int, str, str | None]]:
        """Upsert one row per (link, visitor, last click, first click, first click's ID); return
        each visitor's unique_click after it."""
        select, params = self._select(VISITOR_COLUMNS, rows)
        sql = f"INSERT INTO visitors ({', '.join(VISITOR_COLUMNS)}) {select}" + _UPSERT_VISITOR
        result = self._conn.execute(text(sql + _RETURNING_VISITOR), params | {"window": window_ms})
        return [(r[0], r[1], r[2]) for r in result]

    @staticmethod
    def time_value(moment: datetime) -> Any:
        """A click's time as insert_clicks takes it."""
        return moment

    def insert_clicks(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """Insert the rows (in CLICK_COLUMNS order, times made by time_value) skipping stored
        click IDs; return inserted."""
        raise NotImplementedError

    def add_clicks(
        self, table: Table, key: Sequence[str], counters: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """Add click counts to a report rollup: rows of the key and the counters."""
        columns = [*key, *counters]
        select, params = self._select(columns, rows)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) {select}" + _adding(table.name, key, counters)
        self._conn.execute(text(sql), params)


def bulk_for(conn: Connection) -> ClickBulk:
    if conn.dialect.name == "postgresql":
        return _Postgres(conn)
    return _Sqlite(conn)


# Rows per INSERT statement of clicks on SQLite, at most: 33 columns x 128 rows = 4,224 parameters
# (SQLite allows 32,766), about 10 statements a batch of 1,000.
SQLITE_ROWS_PER_INSERT = 128


class _Sqlite(ClickBulk):
    """Every statement here takes its whole batch in one step of SQLite's. The standard library's
    driver lets go of the GIL around each step (each row of an executemany, each row a RETURNING
    hands back), and a busy event loop then holds it for up to the switch interval before the
    writer's thread gets it back: beside a thread spinning in Python, executemany stored 8,000
    rows/s, INSERTs of 30 to 300 rows each 29,000 to 39,000 (79,000 and 58,000 without it)."""

    @staticmethod
    def time_value(moment: datetime) -> str:
        return sqlite_time(moment)

    def _select(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        # The whole batch as one JSON parameter; "WHERE true": SQLite's parser needs it between
        # a SELECT and the ON CONFLICT of an upsert. Not ASCII-escaped: a value that is not text
        # (a lone surrogate) then fails binding as the data error it is, where its escape made
        # SQLite store bytes that failed only when read back, as if the database were broken.
        values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
        return f"SELECT {values} FROM json_each(:rows) WHERE true", {
            "rows": json.dumps(rows, ensure_ascii=False)
        }

    def upsert_visitors(
        self, rows: Sequence[tuple[int, str, int, int, str]], window_ms: int
    ) -> list[tuple[int, str, str | None]]:
        # By INSERTs of many rows, as the rollups (add_rows): a JSON parameter cost three times
        # as much a row.
        driver: Any = self._conn.connection.driver_connection
        windows = [window_ms] * _UPSERT_VISITOR.count(":window")  # one "?" each (_sqlite_visitors)
        start, size = 0, SQLITE_ROWS_PER_INSERT
        while start < len(rows):
            while start + size > len(rows):
                size //= 2
            chunk = rows[start : start + size]
            driver.execute(_sqlite_visitors(size), [*chain.from_iterable(chunk), *windows])
            start += size
        # Read back as one JSON value: one step, where RETURNING takes a step a row.
        keys = json.dumps([row[:2] for row in rows], ensure_ascii=False)
        found = self._conn.execute(text(_SQLITE_VISITORS_AFTER), {"keys": keys}).scalar_one()
        return [(r[0], r[1], r[2]) for r in json.loads(found)]

    def insert_clicks(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        driver: Any = self._conn.connection.driver_connection
        # Nearly every batch is new clicks: insert them all at once, and only when one is already
        # stored (a retried batch, a replayed spool) undo that and skip the stored ones.
        driver.execute("SAVEPOINT clicks_in")
        try:
            _insert_sqlite_clicks(driver, rows)
            return {row[0] for row in rows}
        except sqlite3.IntegrityError:
            driver.execute("ROLLBACK TO clicks_in")
        finally:
            driver.execute("RELEASE clicks_in")
        known = self._conn.execute(
            text(
                "SELECT json_group_array(click_id) FROM clicks"
                " WHERE click_id IN (SELECT value FROM json_each(:ids))"
            ),
            {"ids": json.dumps([row[0] for row in rows], ensure_ascii=False)},
        )
        # Writers hold SQLite's lock for the whole transaction (BEGIN IMMEDIATE), so what is not
        # stored now cannot appear before the insert below.
        stored = set(json.loads(known.scalar_one()))
        fresh = [row for row in rows if row[0] not in stored]
        _insert_sqlite_clicks(driver, fresh)
        return {row[0] for row in fresh}

    def add_clicks(
        self, table: Table, key: Sequence[str], counters: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        """As ClickBulk's, by INSERTs of many rows each (add_rows)."""
        add_rows(self._conn, table, key, counters, rows)


_SQLITE_VISITORS_AFTER = (
    "SELECT json_group_array(json_array(v.link_id, v.visitor, v.unique_click))"
    " FROM json_each(:keys) k JOIN visitors v"
    " ON v.link_id = json_extract(k.value, '$[0]') AND v.visitor = json_extract(k.value, '$[1]')"
)


def _insert_sqlite_clicks(driver: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    _in_powers_of_two(driver, _sqlite_insert, rows)


def _in_powers_of_two(
    driver: sqlite3.Connection,
    statement: Callable[[int], str],
    rows: Sequence[tuple[Any, ...]],
    most: int = SQLITE_ROWS_PER_INSERT,
) -> None:
    """Rows by statements of a power of two rows, SQLITE_ROWS_PER_INSERT at most: eight texts a
    table, which the driver's statement cache keeps compiled. A statement of each length instead
    filled that cache (128 statements a connection) at 0.6 MB each for 200 rows: a worker grew
    by 25 MB in 20 s of load."""
    start, size = 0, most
    while start < len(rows):
        while start + size > len(rows):
            size //= 2
        chunk = rows[start : start + size]
        driver.execute(statement(size), list(chain.from_iterable(chunk)))
        start += size


@functools.cache
def _sqlite_visitors(n: int) -> str:
    marks = f"({', '.join('?' * len(VISITOR_COLUMNS))})"
    upsert = _UPSERT_VISITOR.replace(":window", "?")
    return f"INSERT INTO visitors ({', '.join(VISITOR_COLUMNS)}) VALUES {', '.join([marks] * n)}" + upsert


@functools.cache
def _sqlite_insert(n: int) -> str:
    marks = f"({', '.join('?' * len(CLICK_COLUMNS))})"
    return f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)}) VALUES {', '.join([marks] * n)}"


def add_rows(
    conn: Connection,
    table: Table,
    key: Sequence[str],
    counters: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """SQLite: add rows of the key and the counters (as the driver takes them) to a report
    rollup, by INSERTs of many rows each. A JSON parameter took SQLite three times as long a row
    (json_each and an extraction a column, 7.8 µs against 2.4), an executemany one and a half;
    the rollups are the most rows a click batch or a postback group writes."""
    driver: Any = conn.connection.driver_connection
    statement = functools.partial(_sqlite_rollup, table.name, tuple(key), tuple(counters))
    _in_powers_of_two(driver, statement, rows, SQLITE_ROLLUP_ROWS)


# Rows per rollup INSERT on SQLite, at most: 25 columns x 32 rows, compiled statements small.
SQLITE_ROLLUP_ROWS = 32


@functools.cache
def _sqlite_rollup(table: str, key: tuple[str, ...], counters: tuple[str, ...], n: int) -> str:
    columns = [*key, *counters]
    marks = f"({', '.join('?' * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * n)}" + _adding(
        table, key, counters
    )


def _adding(table: str, key: Sequence[str], counters: Sequence[str]) -> str:
    """An upsert's conflict clause: add the counters to the row of the key; without counters (a
    rollup of keys only, report_day_rows) keep the row there is."""
    if not counters:
        return f" ON CONFLICT ({', '.join(key)}) DO NOTHING"
    adding = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    return f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {adding}"


def _array_text(values: Sequence[int | bool | None]) -> str:
    """Numbers or flags as PostgreSQL's array text ('{1,NULL,3}'; a flag's True and False it
    reads as booleans)."""
    if None in values:
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    return "{" + ",".join(map(str, values)) + "}"


_PG_ARRAYS = {int: "bigint[]", str: "text[]", bool: "boolean[]"}
_PG_TYPES = {
    c.name: "bigint[]" if c.name in MONEY else _PG_ARRAYS[c.type.python_type]  # money: in units
    for t in (visitors, report_hours, report_days, report_day_rows, report_values, report_weeks)
    for c in t.columns
}


class _Postgres(ClickBulk):
    def _select(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
        """The whole batch as one text parameter per column, unnested together. Not as array
        parameters: asyncpg checks each element of one against collections.abc, a Python call
        per value, and the 20,000 values of the rollups of 500 clicks of a campaign held the
        event loop (and every click waiting on it) 10 ms. Numbers and flags go as PostgreSQL's
        array text, texts as a JSON array (exact for any text; PostgreSQL's array text would
        need escapes of its own)."""
        arrays = []
        params: dict[str, str] = {}
        for column, values in zip(columns, zip(*rows, strict=True), strict=True):
            kind = _PG_TYPES[column]
            if kind == "text[]":
                arrays.append(
                    f"ARRAY(SELECT v FROM json_array_elements_text(CAST(:{column} AS json))"
                    " WITH ORDINALITY AS e(v, n) ORDER BY n)"
                )
                params[column] = json.dumps(values)
            else:
                arrays.append(f"CAST(CAST(:{column} AS text) AS {kind})")
                params[column] = _array_text(values)
        return f"SELECT * FROM unnest({', '.join(arrays)})", params

    def insert_clicks(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """COPY straight into clicks; if a click is already stored (a retried batch, a replayed
        spool) undo that and COPY into a session temp table, then INSERT … ON CONFLICT DO NOTHING
        from it. Runs after upsert_visitors has started the transaction on this connection, on
        the event loop through SQLAlchemy's greenlet (await_only)."""
        raw = self._conn.connection
        driver: Any = raw.driver_connection
        try:
            await_only(_copy_in_savepoint(driver, rows))
            return {row[0] for row in rows}
        except UniqueViolationError:
            pass
        if not raw.info.get("clicks_in"):
            await_only(
                driver.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS clicks_in (LIKE clicks) ON COMMIT DELETE ROWS"
                )
            )
            raw.info["clicks_in"] = True
        await_only(driver.copy_records_to_table("clicks_in", records=rows, columns=CLICK_COLUMNS))
        result = await_only(
            driver.fetch(
                "INSERT INTO clicks SELECT * FROM clicks_in ON CONFLICT DO NOTHING RETURNING click_id"
            )
        )
        return {r[0] for r in result}


async def _copy_in_savepoint(driver: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    async with driver.transaction():  # a savepoint inside the batch's transaction
        await driver.copy_records_to_table("clicks", records=rows, columns=CLICK_COLUMNS)


def sqlite_time(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores ("%Y-%m-%d %H:%M:%S.%f"), so rows written by
    hand read back the same; isoformat cut before its "+00:00" is that text at half strftime's
    cost."""
    return moment.astimezone(UTC).isoformat(" ", "microseconds")[:26]


T = TypeVar("T")
# Rows per IN (...) list: well under SQLite's bound on a statement's parameters.
CHUNK = 500


def chunks(values: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """`values` in lists of at most `size`: one statement's IN (...) list each."""
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], insert: Insert | None = None
) -> None:
    """INSERT the rows (every one with the same keys) in one executemany; `insert`, an upsert
    built once, instead of the plain INSERT."""
    if not rows:
        return
    sql, columns, converted = _insert_plan(conn.dialect, table, insert, tuple(rows[0]))
    params = []
    for row in rows:
        values = [row[name] for name in columns]
        for i, convert in converted:
            values[i] = convert(values[i])
        params.append(tuple(values))
    raw_cursor(conn).executemany(sql, params)


Inserts = Sequence[tuple[Table, Sequence[Mapping[str, Any]], Insert | None]]


def insert_all(conn: Connection, inserts: Inserts) -> None:
    """insert_rows for each (table, rows, insert); on PostgreSQL all in one statement, a
    data-modifying WITH per table over arrays of its columns: a postback group's rows of four
    tables are then one round trip instead of four executemany calls, which cost the server
    more CPU than anything else the group does. Foreign keys are checked at the statement's end,
    so rows may point at rows the same statement inserts."""
    todo = [(table, rows, insert) for table, rows, insert in inserts if rows]
    if conn.dialect.name != "postgresql" or len(todo) < 2:
        for table, rows, insert in todo:
            insert_rows(conn, table, rows, insert)
        return
    plan = tuple((table, insert, tuple(rows[0])) for table, rows, insert in todo)
    sql, parts = _insert_all_plan(conn.dialect, plan)
    params: list[Any] = []
    for (columns, converted), (_, rows, _) in zip(parts, todo, strict=True):
        arrays = [[row[name] for row in rows] for name in columns]
        for i, convert in converted:
            arrays[i] = [convert(value) for value in arrays[i]]
        params += arrays
    raw_cursor(conn).execute(sql, params)


@functools.cache
def _insert_all_plan(
    dialect: Dialect, plan: tuple[tuple[Table, Insert | None, tuple[str, ...]], ...]
) -> tuple[str, tuple[tuple[tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...]], ...]]:
    ctes, parts, n = [], [], 0
    for k, (table, insert, keys) in enumerate(plan):
        one_row, columns, converted = _insert_plan(dialect, table, insert, keys)
        # Arrays of the base types: a cast to varchar(n) would cut a value too long, where the
        # INSERT's own assignment refuses it (a data error, as with one row).
        arrays = ", ".join(
            f"${n + i}::{_base_type(dialect, table.c[name].type)}[]" for i, name in enumerate(columns, 1)
        )
        n += len(columns)
        conflict = one_row[one_row.index(" ON CONFLICT") :] if " ON CONFLICT" in one_row else ""
        into = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}){conflict}"
        ctes.append(f"i{k} AS ({into})")
        parts.append((columns, converted))
    return f"WITH {', '.join(ctes)} SELECT 1", tuple(parts)


def _base_type(dialect: Dialect, kind: Any) -> str:
    return "text" if isinstance(kind, String) else str(kind.compile(dialect=dialect))


Converter = Callable[[Any], Any] | None


@functools.cache
def _insert_plan(
    dialect: Dialect, table: Table, insert: Insert | None, keys: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The INSERT's text, its parameters' names in order, and which of them need converting."""
    compiled = (insert if insert is not None else table.insert()).compile(
        dialect=dialect, column_keys=list(keys)
    )
    columns = tuple(compiled.positiontup or ())
    converters = ((i, _converter(dialect, table.c[name].type)) for i, name in enumerate(columns))
    return compiled.string, columns, tuple((i, c) for i, c in converters if c is not None)


def select_keys(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    keys: Iterable[tuple[Any, ...]],
    *,
    lock: bool = False,
) -> list[dict[str, Any]]:
    """Rows of `table` whose `columns` hold one of `keys`, as dicts of Python values, in id
    order (`lock`: FOR UPDATE on PostgreSQL, so two transactions lock rows in the same order).

    The keys are one parameter (a JSON array on SQLite, an array per column on PostgreSQL)
    joined to the table: the statement's text is the same whatever their number, and the plan a
    lookup per key in the table's index on `columns`, also when PostgreSQL reuses a generic plan
    (which for `column = ANY($1)` conditions scanned a whole advertiser's conversions)."""
    (rows,) = select_keys_together(conn, [(table, columns, keys, lock)])
    return rows


# A lookup's row lock on PostgreSQL (SQLite's writers hold the whole database): none (False),
# FOR UPDATE (True) or FOR SHARE (SHARE: held by many transactions at once, waited on by a change).
SHARE: Literal["share"] = "share"
Lock = bool | Literal["share"]
# (table, key columns, keys, lock): one lookup of select_keys.
Lookup = tuple[Table, tuple[str, ...], Iterable[tuple[Any, ...]], Lock]


def select_keys_together(conn: Connection, lookups: Sequence[Lookup]) -> list[list[dict[str, Any]]]:
    """select_keys for each lookup; on PostgreSQL in one statement, each lookup's rows coming
    back as records (a round trip is what a postback group's reads cost most)."""
    wanted = [list(dict.fromkeys(keys)) for _, _, keys, _ in lookups]
    active = tuple(i for i, keys in enumerate(wanted) if keys)
    results: list[list[dict[str, Any]]] = [[] for _ in lookups]
    if not active:
        return results
    plans = _select_plans(conn.dialect, tuple((t, c, lock) for t, c, _, lock in (lookups[i] for i in active)))
    cursor = raw_cursor(conn)
    if conn.dialect.name == "sqlite" or len(active) == 1:
        for i, (sql, names, readers) in zip(active, plans.parts, strict=True):
            cursor.execute(sql, _key_params(conn.dialect, wanted[i]))
            results[i] = [_row(names, readers, raw) for raw in cursor.fetchall()]
        return results
    cursor.execute(plans.sql, [p for i in active for p in _key_params(conn.dialect, wanted[i])])
    for k, record in cursor.fetchall():
        _, names, readers = plans.parts[k]
        results[active[k]].append(_row(names, readers, record))
    return results


def _key_params(dialect: Dialect, keys: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    if dialect.name == "sqlite":
        return (json.dumps(keys),)
    return tuple(list(column) for column in zip(*keys, strict=True))


def _row(names: tuple[str, ...], readers: "Readers", raw: Sequence[Any]) -> dict[str, Any]:
    row = dict(zip(names, raw, strict=True))
    for name, read in readers:
        row[name] = read(row[name])
    return row


Readers = tuple[tuple[str, Callable[[Any], Any]], ...]


@dataclass(frozen=True)
class _SelectPlans:
    # PostgreSQL: every lookup in one statement, rows as (lookup's index, record).
    sql: str
    # Each lookup's own statement (SQLite runs these), its columns and their readers.
    parts: tuple[tuple[str, tuple[str, ...], Readers], ...]


@functools.cache
def _select_plans(dialect: Dialect, lookups: tuple[tuple[Table, tuple[str, ...], Lock], ...]) -> _SelectPlans:
    parts, first = [], 1
    for table, columns, lock in lookups:
        parts.append(_select_plan(dialect, table, columns, lock, first))
        first += len(columns)
    ctes = ", ".join(f"q{k} AS ({sql})" for k, (sql, _, _) in enumerate(parts))
    rows = " UNION ALL ".join(f"SELECT {k}, q{k} FROM q{k}" for k in range(len(parts)))
    return _SelectPlans(f"WITH {ctes} {rows}", tuple(parts))


def _select_plan(
    dialect: Dialect, table: Table, columns: tuple[str, ...], lock: Lock, first: int
) -> tuple[str, tuple[str, ...], Readers]:
    names = tuple(c.name for c in table.columns)
    selected = ", ".join(f"t.{name}" for name in names)
    if dialect.name == "sqlite":
        keys = "json_each(?) AS k"
        on = [f"t.{name} = json_extract(k.value, '$[{i}]')" for i, name in enumerate(columns)]
    else:
        # Arrays of the columns' own types: a cast on the column's side would keep its index out.
        arrays = ", ".join(
            f"${i}::{table.c[name].type.compile(dialect=dialect)}[]" for i, name in enumerate(columns, first)
        )
        keys = f"unnest({arrays}) AS k({', '.join(columns)})"
        on = [f"t.{name} = k.{name}" for name in columns]
    # Our own table and column names: nothing from outside reaches this text.
    sql = f"SELECT {selected} FROM {keys} JOIN {table.name} t ON {' AND '.join(on)}"
    if "id" in table.c:
        sql += " ORDER BY t.id"
    if lock and dialect.name == "postgresql":
        sql += " FOR SHARE OF t" if lock == SHARE else " FOR UPDATE OF t"
    readers = ((name, _reader(dialect, table.c[name].type)) for name in names)
    return sql, names, tuple((name, r) for name, r in readers if r is not None)


def _reader(dialect: Dialect, kind: Any) -> Callable[[Any], Any] | None:
    if isinstance(kind, Money):
        return lambda raw: None if raw is None else Decimal(raw) / MONEY_SCALE
    if isinstance(kind, UtcDateTime):
        if dialect.name == "sqlite":
            return lambda raw: None if raw is None else datetime.fromisoformat(raw).replace(tzinfo=UTC)
        return lambda raw: None if raw is None else raw.astimezone(UTC)
    return None


def _money(amount: Any) -> int | None:
    return None if amount is None else int(amount * MONEY_SCALE)


def _converter(dialect: Dialect, kind: Any) -> Converter:
    if isinstance(kind, Money):
        return _money
    if isinstance(kind, UtcDateTime):
        if dialect.name == "sqlite":
            return lambda moment: None if moment is None else sqlite_time(moment)
        return lambda moment: None if moment is None else moment.astimezone(UTC)
    return None
