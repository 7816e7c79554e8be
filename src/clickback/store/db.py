"""Engines, and the few statements whose SQL differs between SQLite and PostgreSQL."""

import asyncio
import fcntl
import functools
import logging
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, BigInteger, Engine, String, Table, create_engine, event, func, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import Pool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.util import greenlet_spawn

from clickback.core.reporting import LocalDays
from clickback.errors import StartupError

log = logging.getLogger(__name__)

SQLITE_BUSY_MS = 10_000
# How long opening a PostgreSQL connection may take (asyncpg's default is a minute): a server
# that drops packets is reported as unreachable instead of hanging the start or a readiness check.
CONNECT_TIMEOUT_SECONDS = 10
# PostgreSQL ids a process draws from a table's sequence at a time (Database._spare_ids).
ID_BLOCK = 64
# A pooled PostgreSQL connection idle longer is pinged before use (_ping_when_idle).
PING_AFTER_IDLE_SECONDS = 1.0
# How long closing waits for connections in use to come back to the pool.
CLOSE_WAIT_SECONDS = 5.0
# The drivers clickback runs on, by the database's name in a URL.
DRIVERS = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
URL_FORMS = "postgresql+asyncpg://user:password@host:5432/dbname or sqlite+aiosqlite:////absolute/path.db"
# PostgreSQL's refusals that pass by themselves: starting up, shutting down, too many connections.
TRANSIENT_SQLSTATES = {"57P03", "57P01", "53300"}
T = TypeVar("T")


class WriteLock:
    """SQLite writers of every process queue on a file lock beside the database before they
    BEGIN IMMEDIATE. SQLite's own lock stays the guarantee; this is for fairness and latency: a
    writer refused by SQLite sleeps 1, 2, 5 ... 100 ms between tries and, with two processes
    writing back to back, waited up to half a second, where the kernel hands a released file lock
    to the next waiter at once. Each way of writing in a process opens its own descriptor (locks
    of one open file do not exclude each other), and coroutines queue on an asyncio lock first."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._local = asyncio.Lock()

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        async with self._local:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                await asyncio.to_thread(self.acquire)
            try:
                yield
            finally:
                self.release()

    def close(self) -> None:
        os.close(self._fd)


@dataclass(frozen=True)
class Database:
    engine: AsyncEngine
    # SQLite: a second engine whose transactions do not take the write lock (WAL readers run
    # beside the writer). PostgreSQL: the same engine.
    read_engine: AsyncEngine
    # SQLite: a synchronous engine on the same file and the one thread it is used from, for
    # run_write. None on PostgreSQL.
    sync_engine: Engine | None = None
    executor: ThreadPoolExecutor | None = None
    # SQLite: the write lock of the async engine and that of the synchronous one.
    locks: tuple[WriteLock, WriteLock] | None = None
    # PostgreSQL: ids drawn from the tables' sequences and not yet used, by table (_spare_ids).
    spare_ids: dict[str, list[int]] = field(default_factory=dict)
    # The zones whose local days the report rollups keep (CLICKBACK_REPORT_ZONES; ADR 14).
    local_days: LocalDays = field(default_factory=lambda: LocalDays(("UTC",)))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """What a failing database raises: SQLAlchemy's errors, and the driver's own where its
        cursor is used directly (the postback path's hot statements), and lost connections."""
        drivers = [self.engine.dialect.loaded_dbapi.Error]
        if self.sync_engine is not None:
            drivers.append(self.sync_engine.dialect.loaded_dbapi.Error)
        return (SQLAlchemyError, OSError, *drivers)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction, committed on leaving the block."""
        if self.locks is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.locks[0].held(), self.engine.begin() as conn:
            yield conn

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """`work`, synchronous code, in one write transaction committed when it returns.

        The postback path runs a whole group of postbacks this way. On SQLite it runs in a thread
        of its own with the standard library's driver, where a statement costs 46 us of CPU
        against 330 us through the async driver (aiosqlite hops threads three times a
        statement); on PostgreSQL it runs on the event loop through SQLAlchemy's greenlet bridge
        to asyncpg, which costs less than a call of the async API per statement."""
        if self.sync_engine is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(work)
        engine = self.sync_engine
        lock = self.locks[1] if self.locks else None

        def in_thread() -> T:
            if lock is None:
                with engine.begin() as conn:
                    return work(conn)
            lock.acquire()
            try:
                with engine.begin() as conn:
                    return work(conn)
            finally:
                lock.release()

        return await asyncio.get_running_loop().run_in_executor(self.executor, in_thread)

    def reserve_ids(
        self, conn: Connection, counts: Mapping[Table, int], after: Mapping[str, int] | None = None
    ) -> dict[str, list[int]]:
        """Ids for new rows of each table, taken before the rows are built (so that rows written
        together can point at each other), in one statement. PostgreSQL draws them from each
        table's sequence; SQLite continues after the highest id, as only the lock holder inserts
        (and after `after`, the highest id this transaction handed out but has not written)."""
        wanted = {table.name: n for table, n in counts.items() if n > 0}
        if not wanted:
            return {}
        if self.dialect == "postgresql":
            return self._spare_ids(conn, wanted)
        tops = ", ".join(f"(SELECT coalesce(max(id), 0) FROM {name})" for name in wanted)  # noqa: S608
        cursor = raw_cursor(conn)
        cursor.execute(f"SELECT {tops}")
        row = cursor.fetchone()
        floors = after or {}
        return {
            name: list(range(max(top, floors.get(name, 0)) + 1, max(top, floors.get(name, 0)) + 1 + n))
            for (name, n), top in zip(wanted.items(), row, strict=True)
        }

    def _spare_ids(self, conn: Connection, wanted: Mapping[str, int]) -> dict[str, list[int]]:
        """PostgreSQL: ids from this process's spare ones, drawn from the tables' sequences
        ID_BLOCK at a time: a group then seldom spends a round trip on its ids. Sequences are
        outside transactions, so a spare id is this process's alone; those of a process that
        stops are never used (gaps, as a rolled-back insert leaves)."""
        spare = self.spare_ids
        short = {name: n - len(spare.get(name, ())) for name, n in wanted.items()}
        # Whole blocks, so that the statement's text (prepared once) seldom varies.
        fetch = {name: -(-n // ID_BLOCK) * ID_BLOCK for name, n in short.items() if n > 0}
        if fetch:
            # Our own table names and integer counts: nothing from outside reaches this text.
            parts = [
                f"SELECT '{name}', nextval(pg_get_serial_sequence('{name}', 'id'))"  # noqa: S608
                f" FROM generate_series(1, {n})"
                for name, n in fetch.items()
            ]
            cursor = raw_cursor(conn)
            cursor.execute(" UNION ALL ".join(parts))
            for name, value in cursor.fetchall():
                spare.setdefault(name, []).append(int(value))
        # No await between here and the return: two groups of this process never share an id.
        taken = {}
        for name, n in wanted.items():
            ids = spare[name]
            taken[name], ids[:] = ids[:n], ids[n:]
        return taken

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
        """INSERT that adds the counters to an existing row with the same primary key (built
        once per table: building it costs more than running it)."""
        return _insert_adding(self.dialect, table, tuple(counters))

    async def renew(self) -> None:
        """New connections from now on (after the database dropped this process's, or the
        tables their prepared statements name were replaced); the old ones closed, each once
        it is no longer in use (replaced_pool)."""
        for async_engine in {self.engine, self.read_engine}:
            await replaced_pool(async_engine)

    async def close(self) -> None:
        # Every connection closed, those still in use (by a task unwinding from a cancellation)
        # once they are returned: see replaced_pool.
        await self.renew()
        if self.sync_engine is not None and self.executor is not None:
            engine = self.sync_engine
            await asyncio.get_running_loop().run_in_executor(self.executor, engine.dispose)
            self.executor.shutdown()
        for lock in self.locks or ():
            lock.close()


# SQLSTATE classes of PostgreSQL's refusals of the data itself: 22 data exception (a value too
# long, out of range, not valid UTF-8), 23 integrity constraint violation.
_DATA_CLASSES = ("22", "23")
# The same refusals made by a driver before the statement is sent, or by SQLite.
_DATA_ERRORS = (UnicodeError, OverflowError, sqlite3.DataError, sqlite3.IntegrityError)


def refused_data(exc: BaseException) -> bool:
    """Whether a statement failed because of the values it carried, so that the same statement
    without them would succeed: the click writer then stores the rest of a batch and sets those
    apart. Anything else (a lost connection, a locked or full database, a bug) is not the data's
    fault, and a batch failing that way is retried whole."""
    for e in _causes(exc):
        if isinstance(e, _DATA_ERRORS):
            return True
        state = getattr(e, "sqlstate", None)
        if isinstance(state, str) and state[:2] in _DATA_CLASSES:
            return True
    return False


# SQLSTATE unique_violation.
# A unique key another transaction took first; this transaction chosen as a deadlock's victim.
_LOST_RACE = frozenset({"23505", "40P01"})


def lost_race(exc: BaseException) -> bool:
    """Whether a transaction failed on a unique key another transaction took first and has
    committed (PostgreSQL: an INSERT of a key that another open transaction inserted waits for
    it, and fails only once it commits). The same work in a new transaction then reads that
    row and decides with it. A deadlock's victim is rolled back whole, and the same work done
    again after the other transaction is the same safe retry. SQLite writers hold the write lock
    from their first read, so the rows a transaction read stay as they were until it ends: no
    race to lose."""
    return any(getattr(e, "sqlstate", None) in _LOST_RACE for e in _causes(exc))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The error and those it was raised from: asyncpg's errors and SQLAlchemy's wrappers of
    them both name the SQLSTATE."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        yield e
        # Not __context__: an error raised while handling another (a rollback that failed on a
        # lost connection) is not caused by it.
        todo += [e.__cause__, getattr(e, "orig", None)]


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


class epoch_seconds(FunctionElement[int]):
    """Whole UTC epoch seconds of a stored time (reports bucket raw rows by them)."""

    type = BigInteger()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(floor(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


class div_floor(FunctionElement[int]):
    """Integer division of two non-negative integers (SQLAlchemy's `/` is true division)."""

    type = BigInteger()
    name = "div_floor"
    inherit_cache = True


@compiles(div_floor)
def _div_floor(element: div_floor, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({a}) / ({b}))"


async def replaced_pool(engine: AsyncEngine) -> None:
    """`engine` given a new, empty pool, and every connection of its old one closed, those in
    use once they are returned (CLOSE_WAIT_SECONDS at most).

    Not AsyncEngine.dispose(): it closes the pooled connections first, awaiting each close, and
    only then replaces the pool. A task that takes a connection meanwhile (on a running server:
    the dispatcher's poll, the catalog's refresh, the click writer) returns it to the discarded
    pool after the closing is over, where it stays open until the garbage collector finds it,
    which cannot close an asyncpg connection: a ResourceWarning for its connection and its
    transport in whatever runs then. Here the pool is replaced before the first await, so no
    connection can be taken from the old one while it is being closed."""
    sync_engine = engine.sync_engine
    old = sync_engine.pool
    # Listeners (_ping_when_idle's) go over to the new pool, as with dispose().
    sync_engine.pool = old.recreate()
    await checked_in(old)
    # The pool closes connections through the async driver: from a greenlet, as dispose() does.
    await greenlet_spawn(old.dispose)


async def checked_in(pool: Pool) -> None:
    """Once no connection of `pool` is in use (at most CLOSE_WAIT_SECONDS): one in use when the
    pool is disposed would go back to the discarded pool, and be left to the garbage collector,
    which cannot close an asyncpg connection."""
    counted: Any = pool  # checkedout() is QueuePool's (and so AsyncAdaptedQueuePool's)
    returned = asyncio.Event()

    def on_checkin(*_: Any) -> None:
        returned.set()

    event.listen(pool, "checkin", on_checkin)
    try:
        async with asyncio.timeout(CLOSE_WAIT_SECONDS):
            while counted.checkedout():
                await returned.wait()
                returned.clear()
    except TimeoutError:
        log.warning("closing the database with %d connection(s) still in use", counted.checkedout())
    finally:
        event.remove(pool, "checkin", on_checkin)


def raw_cursor(conn: Connection) -> Any:
    """A cursor of the driver's own, in the connection's transaction, for the postback path's hot
    statements: SQLAlchemy's execution around a statement (building its result's metadata above
    all) costs several times what SQLite takes to run it."""
    return conn.connection.cursor()


def _dialect_module(name: str) -> Any:
    return postgresql if name == "postgresql" else sqlite


@functools.cache
def _insert_adding(dialect: str, table: Table, counters: tuple[str, ...]) -> Insert:
    stmt = _dialect_module(dialect).insert(table)
    keys = [c.name for c in table.primary_key.columns]
    adding: Insert = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={name: table.c[name] + stmt.excluded[name] for name in counters},
    )
    return adding


def connect(url: str, report_zones: Sequence[str] = ("UTC",)) -> Database:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            create_private(Path(path))
        args = {"timeout": SQLITE_BUSY_MS / 1000}
        writer = create_async_engine(url, connect_args=args)
        reader = create_async_engine(url, connect_args=args)
        sync_writer = create_engine(url.replace("+aiosqlite", ""), connect_args=args)
        _tune_sqlite(writer.sync_engine, "BEGIN IMMEDIATE")
        _tune_sqlite(reader.sync_engine, "BEGIN")
        _tune_sqlite(sync_writer, "BEGIN IMMEDIATE")
        executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        locks = None
        if path and path != ":memory:":
            lock_path = Path(path + ".lock")
            locks = (WriteLock(lock_path), WriteLock(lock_path))
        return Database(writer, reader, sync_writer, executor, locks, local_days=LocalDays(report_zones))
    engine = create_async_engine(
        url, pool_size=10, max_overflow=10, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS}
    )
    _ping_when_idle(engine.sync_engine)
    _refused_connection_is_unavailable(engine.sync_engine)
    return Database(engine, engine, local_days=LocalDays(report_zones))


def create_private(path: Path) -> None:
    """The SQLite database file, created empty (an empty file is an empty database) and readable
    by its owner only, unless it exists: it holds advertisers' postback tokens and signing
    secrets, as secret.key and api.key beside it are secrets. SQLite would create it with the
    process's umask (0644: readable by every user of the machine); its -wal, -shm and -journal
    files take the database file's mode. An existing file keeps the mode it has."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def url_problem(url: str) -> str | None:
    """Why clickback cannot use `url` (CLICKBACK_DATABASE_URL), with the form to use; None if it can."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"not a database URL: use {URL_FORMS}"
    backend = parsed.get_backend_name()
    wanted = DRIVERS.get(backend)
    if wanted is None:
        return f"clickback runs on PostgreSQL or SQLite, not {backend}: use {URL_FORMS}"
    if parsed.drivername != wanted:
        fixed = parsed.set(drivername=wanted).render_as_string(hide_password=True)
        return f"{parsed.drivername}:// needs clickback's driver: write {fixed}"
    return None


def url_shown(url: str) -> str:
    """The URL without its password, for messages (as given if it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def database_problem(exc: BaseException, url: str) -> StartupError | None:
    """What a failure to use the database at `url` means for the person starting clickback, or
    None when it is not a problem of theirs (a bug keeps its traceback)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_problem(exc, parsed)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    prefix = f"CLICKBACK_DATABASE_URL ({url_shown(url)})"
    if isinstance(exc, socket.gaierror):
        return StartupError(
            f"{prefix}: cannot find the host {parsed.host!r} ({exc.strerror})",
            "check the host name in the URL (is the database's container or server up?)",
            status=1,
            transient=True,
        )
    if isinstance(exc, OSError):  # refused, unreachable network, timed out
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        return StartupError(
            f"{prefix}: cannot reach PostgreSQL at {where} ({reason})",
            f"is PostgreSQL running on {where}? (or correct the host and port in the URL)",
            status=1,
            transient=True,
        )
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) if isinstance(exc, DBAPIError) else None
    message = str(getattr(exc, "orig", exc))
    if sqlstate == "3D000":
        return StartupError(
            f"{prefix}: {message} on {where}",
            f"create it (createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432}"
            f" -U {parsed.username or 'postgres'} {parsed.database}) or correct its name in the URL",
            status=1,
        )
    if sqlstate in ("28000", "28P01"):
        return StartupError(
            f"{prefix}: PostgreSQL at {where} refused the login: {message}",
            "correct the user and password in the URL, or create the role (CREATE ROLE ... LOGIN)",
            status=1,
        )
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if sqlstate in TRANSIENT_SQLSTATES or lost:
        return StartupError(
            f"{prefix}: PostgreSQL at {where} cannot take connections now: {message}",
            "wait for it, or check its logs",
            status=1,
            transient=True,
        )
    if sqlstate == "42P01":
        return StartupError(
            f"{prefix}: the database has no clickback tables ({message})",
            "run `clickback migrate` (or set CLICKBACK_MIGRATE_ON_START=true)",
            status=1,
        )
    return None


def _sqlite_problem(exc: BaseException, url: URL) -> StartupError | None:
    orig = getattr(exc, "orig", exc)
    cannot_open = isinstance(orig, sqlite3.OperationalError) and (
        "unable to open" in str(orig) or "readonly" in str(orig)
    )
    if isinstance(orig, OSError) or cannot_open:
        return StartupError(
            f"cannot open the SQLite database {url.database} ({orig})",
            "make CLICKBACK_DATA_DIR (or the path in CLICKBACK_DATABASE_URL) a directory you can write to",
            status=1,
        )
    return None


def sqlite_holds_clicks(url: str) -> bool:
    """Whether `url` names a SQLite file that exists and holds clicks, read without creating it
    or taking any lock."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" or not Path(path).exists():
        return False
    try:
        with sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT 1 FROM clicks LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # no clicks table (yet): nothing a new secret could orphan
        return False


async def ping(db: Database) -> None:
    """One round trip to the database (raises what connecting or the query raised)."""
    async with db.read() as conn:
        await conn.execute(text("SELECT 1"))


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it has been idle a while (SQLAlchemy's
    pool_pre_ping pings at every checkout: with asyncpg a transaction begun, a round trip and a
    rollback, 6% of a postback's CPU when groups of postbacks follow each other). A connection
    used a moment ago is alive; one idle across a database restart fails its ping and is
    replaced, as with pool_pre_ping."""

    @event.listens_for(engine, "checkin")
    def checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:
            # The pool discards the connection and checks out another (a new one if need be).
            raise DisconnectionError(f"pooled connection lost: {exc!r}") from exc


def _refused_connection_is_unavailable(engine: Engine) -> None:
    """Whatever PostgreSQL answers while a connection is being made (a database closed to
    connections: 55000, starting or shutting down, too many clients, or a code yet unseen) is the
    database away, not a bug in a statement: the error is marked as a lost connection
    (`connection_invalidated`), which the API and the pages answer with 503 and Retry-After and
    `database_problem` words as a database that cannot take connections now."""

    @event.listens_for(engine, "handle_error")
    def on_error(context: ExceptionContext) -> None:
        # No connection yet: SQLAlchemy's own pre-ping has none either, and decides for itself.
        if context.connection is None and not context.is_pre_ping:
            context.is_disconnect = True


def _tune_sqlite(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
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
        if begin == "BEGIN":
            # Readers (reports above all) scan rows in key order, served by the OS's cache as
            # well: 512 KB a connection instead of 2 MB keeps a worker answering a report
            # within 150 MB (issue 13), at no measured cost.
            cursor.execute("PRAGMA cache_size=-512")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes can deadlock against another writer
        # (SQLITE_BUSY with no wait), so writers BEGIN IMMEDIATE: lock first, wait on busy_timeout.
        # The driver's own cursor: SQLAlchemy's execution costs 100 us, more than the BEGIN.
        raw_cursor(conn).execute(begin)
