"""Engines, and the few statements whose SQL differs between SQLite and PostgreSQL."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import String, Table, event, func, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.functions import FunctionElement

SQLITE_BUSY_MS = 10_000


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    # SQLite: a second engine whose transactions do not take the write lock (WAL readers run
    # beside the writer). PostgreSQL: the same engine.
    read_engine: AsyncEngine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction, committed on leaving the block."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    def insert_ignore(self, table: Table) -> Insert:
        """INSERT that skips rows whose key already exists (idempotent retries, races)."""
        stmt: Insert = self.upsert(table).on_conflict_do_nothing()
        return stmt

    def upsert(self, table: Table) -> Any:
        """The dialect's INSERT, for ON CONFLICT clauses written by the caller."""
        return _dialect_module(self.dialect).insert(table)

    def insert_adding(self, table: Table, counters: Sequence[str]) -> Insert:
        """INSERT that adds the counters to an existing row with the same primary key."""
        stmt = self.upsert(table)
        keys = [c.name for c in table.primary_key.columns]
        adding: Insert = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + stmt.excluded[name] for name in counters},
        )
        return adding

    async def close(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


class utc_month(FunctionElement[str]):
    """The month ('YYYY-MM') of a stored UTC time: SQLite keeps UTC text, PostgreSQL a timestamptz
    shown in the session's time zone, hence AT TIME ZONE."""

    type = String()
    name = "utc_month"
    inherit_cache = True


@compiles(utc_month, "sqlite")
def _utc_month_sqlite(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(func.strftime("%Y-%m", *element.clauses), **kw)


@compiles(utc_month, "postgresql")
def _utc_month_postgresql(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(func.to_char(func.timezone("UTC", *element.clauses), "YYYY-MM"), **kw)


def _dialect_module(name: str) -> Any:
    return postgresql if name == "postgresql" else sqlite


def connect(url: str) -> Database:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        args = {"timeout": SQLITE_BUSY_MS / 1000}
        writer = create_async_engine(url, connect_args=args)
        reader = create_async_engine(url, connect_args=args)
        _tune_sqlite(writer, "BEGIN IMMEDIATE")
        _tune_sqlite(reader, "BEGIN")
        return Database(writer, reader)
    engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
    return Database(engine, engine)


def _tune_sqlite(engine: AsyncEngine, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers run beside the writer. FULL sync: a 2xx for a postback promises the
        # conversion survives a power cut, not only a crash. The driver's own BEGIN handling is
        # switched off so that "begin" below decides when the write lock is taken.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: SyncConnection) -> None:
        # A deferred transaction that reads and then writes can deadlock against another writer
        # (SQLITE_BUSY with no wait), so writers BEGIN IMMEDIATE: lock first, wait on busy_timeout.
        conn.exec_driver_sql(begin)
