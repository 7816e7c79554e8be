"""Test set-up: a real server on a loopback port, against a real SQLite file and (when
CLICKBACK_TEST_POSTGRES_URL is set) a real PostgreSQL, with every HTTP test run on each.

The server runs in a thread with its own event loop; `Node.call` runs a coroutine on that loop,
which is how tests reach inside (flush the click buffer, hold it, read the database).
"""

import asyncio
import copy
import os
import shutil
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
import uvloop
from hypothesis import settings
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from clickback.config import Settings
from clickback.service.runtime import Runtime
from clickback.store.db import connect, lost_race
from clickback.store.migrate import upgrade
from clickback.store.tables import metadata, report_week_state, report_weeks
from clickback.web.app import create_app
from clickback.web.server import server_options

T = TypeVar("T")

# CI replays the same examples every run (a new failure shows up locally first, not as a flaky CI);
# locally every run explores new ones.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "default")
API_KEY = "test-api-key-of-the-bootstrap-manager"
# Clicks in tests come from a phone's browser: httpx's own user agent is (rightly) taken for a bot.
BROWSER_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SECRET = "5e" * 32
# httpx's TLS context, made once: each new httpx client (and each httpx.get) otherwise loads the
# CA bundle anew, 27 ms of CPU, and the suite makes a client a test and a request a poll while a
# process starts. The tests' own servers speak plain HTTP; the context is httpx's default.
TLS = httpx.create_ssl_context()


def worker_database(url: str) -> str:
    """The PostgreSQL test database of this pytest-xdist worker: the configured one with the
    worker's name appended (created on first use), so workers never wipe each other's tables."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not (url and worker):
        return url
    name = f"{make_url(url).database}_{worker}"
    # Through the server's own database: the one named need not exist.
    server = make_url(url).set(database="postgres").render_as_string(hide_password=False)
    if not admin_sql(server, "SELECT 1 FROM pg_database WHERE datname = :name", name=name):
        admin_sql(server, f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def admin_sql(url: str, statement: str, **params: Any) -> Any:
    """One statement outside a transaction (CREATE or DROP DATABASE) on PostgreSQL at `url`;
    its first value, if it returns rows."""

    async def run() -> Any:
        db = connect(url)
        try:
            async with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                result = await conn.execute(text(statement), params)
                return result.scalar() if result.returns_rows else None
        finally:
            await db.close()

    return asyncio.run(run())


@contextmanager
def scratch_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own for a test that migrates or shares one between processes: a
    SQLite file, or a new PostgreSQL database beside the test one (made through the server's
    own `postgres` database: the test one need not exist yet)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
        return
    name = f"{make_url(PG_URL).database}_scratch"
    server = make_url(PG_URL).set(database="postgres").render_as_string(hide_password=False)
    admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(server, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The longest tests first: under pytest-xdist, no worker is then left running one of them alone
# at the end while the others have finished.
SLOW_FIRST = (
    "tests/deploy/",
    "tests/web/test_api_schema_fuzz.py",
    "tests/test_startup.py",
    "tests/test_backup.py",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgresql_only: about PostgreSQL itself; not run on SQLite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests of what only PostgreSQL has (server connections, sequences) run on it alone: their
    # SQLite variants are left out rather than skipped.
    sqlite_only = [
        item
        for item in items
        if item.get_closest_marker("postgresql_only")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url") == "sqlite"  # type: ignore[attr-defined]
    ]
    if sqlite_only:
        config.hook.pytest_deselected(items=sqlite_only)
        items[:] = [item for item in items if item not in sqlite_only]
    items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))


PG_URL = worker_database(os.environ.get("CLICKBACK_TEST_POSTGRES_URL", ""))
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


# Outbound postbacks in tests: to the tests' own receivers on loopback, retried at once (the
# schedule scaled down: core/retry.py), each attempt given a second.
OUTBOUND_TEST_SETTINGS: dict[str, Any] = {
    "outbound_allow": "127.0.0.1/32",
    "outbound_retry_base_seconds": 0.001,
    "outbound_timeout_seconds": 1.0,
    # The test offers' hosts (example.com) are not to be requested: link-check tests call a round.
    "link_check_minutes": 0,
}


# The test servers keep local days of two zones: reports in either come from the day rollups,
# in any other zone from hours or the raw tables (ADR 14).
REPORT_ZONES = ("UTC", "Europe/Berlin")


def settings_for(url: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=url,
        data_dir=data_dir,
        api_key=API_KEY,
        secret_key=SECRET,
        public_url="http://127.0.0.1",
        **(OUTBOUND_TEST_SETTINGS | {"report_zones": ",".join(REPORT_ZONES)} | overrides),
    )


@dataclass
class Node:
    """One running clickback server process-equivalent: its app, runtime, loop and address."""

    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    base_url: str

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        async def run() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout)

    @contextmanager
    def writer_held(self) -> Iterator[None]:
        """No flush runs inside: clicks stay in this node's buffer, as behind a stalled database."""
        lock = self.runtime.writer._lock
        self.call(lock.acquire)
        try:
            yield
        finally:

            async def release() -> None:
                lock.release()

            self.call(release)


def forget_connections(node: Node) -> None:
    """New connections for `node` after a test dropped its database's connections: the pool is
    replaced at once and the old one's connections closed as they come back (Database.renew).
    The server's background tasks go on using the pool meanwhile: a connection one of them took
    while the old pool was being closed, left open in it, would be a ResourceWarning in whichever
    later test the collector found it in."""
    node.call(node.runtime.db.renew)


def serve(settings: Settings) -> Iterator[Node]:
    app = create_app(settings)
    with served(app, settings) as (port, loop):
        yield Node(app.state.runtime, loop, f"http://127.0.0.1:{port}")


@contextmanager
def served(app: Any, settings: Settings | None = None) -> Iterator[tuple[int, asyncio.AbstractEventLoop]]:
    """`app` served on a free loopback port by a thread of this process (port, event loop), as
    `clickback serve` serves it with `settings` (the defaults unless given)."""
    sock = socket.socket()
    # Without it every keep-alive request waits out a 40 ms delayed ACK (Nagle), 20 times the work.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The protocol and options of `clickback serve` (web/server.py).
    config = uvicorn.Config(app, log_level="warning", **server_options(settings or Settings()))
    server = uvicorn.Server(config)
    ready = threading.Event()
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    async def main() -> None:
        holder["loop"] = asyncio.get_running_loop()
        ready.set()
        await server.serve(sockets=[sock])

    # The loop `clickback serve` runs on (Uvicorn's "auto": uvloop where it is installed).
    thread = threading.Thread(target=uvloop.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server did not start")
        threading.Event().wait(0.01)
    try:
        yield port, holder["loop"]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


# A SQLite database just migrated, copied for each new one after the first: a copy costs a
# millisecond, the migrations 0.4 s of CPU, and the suite makes some forty.
SQLITE_TEMPLATE: list[Path] = []


def fresh_schema(url: str) -> str:
    path = Path(make_url(url).database or "") if url.startswith("sqlite") else None
    if path is not None and SQLITE_TEMPLATE:
        shutil.copyfile(SQLITE_TEMPLATE[0], path)
        return url

    async def run() -> None:
        db = connect(url, REPORT_ZONES)
        try:
            if db.dialect == "postgresql":
                async with db.write() as conn:
                    await conn.execute(text("DROP SCHEMA public CASCADE"))
                    await conn.execute(text("CREATE SCHEMA public"))
            await upgrade(db)
        finally:
            await db.close()

    asyncio.run(run())
    if path is not None:
        SQLITE_TEMPLATE.append(path.with_name(f"migrated-{path.name}"))
        shutil.copyfile(path, SQLITE_TEMPLATE[0])
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return fresh_schema(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
    return fresh_schema(PG_URL)


def private_node(clean: Node, database_url: str, data_dir: Path, **overrides: Any) -> Iterator[Node]:
    """A server with its own settings on an empty database: a new SQLite file, or (PostgreSQL)
    the shared test database that `clean` has just emptied."""
    url = database_url
    if url.startswith("sqlite"):
        url = fresh_schema(f"sqlite+aiosqlite:///{data_dir / 'private.db'}")
    yield from serve(settings_for(url, data_dir, **overrides))


@pytest.fixture(scope="session")
def node(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    yield from serve(settings_for(database_url, tmp_path_factory.mktemp("data")))


@pytest.fixture
def second_node(database_url: str, tmp_path: Path) -> Iterator[Node]:
    """Another server on the same database, as a second process behind a load balancer would be."""
    yield from serve(settings_for(database_url, tmp_path))


async def _wipe(runtime: Runtime) -> None:
    await runtime.writer.flush()
    for attempt in range(3):
        try:
            await _delete_all(runtime)
            break
        except DBAPIError as exc:
            # The dispatcher recorded an attempt of a delivery the previous test left between
            # this transaction's DELETE of attempts and its DELETE of deliveries (PostgreSQL
            # reads each statement's rows afresh): the foreign key refuses it. Or it updated a
            # delivery while this deleted them in another order: one of the two is a deadlock's
            # victim. Either way, wipe again.
            if attempt == 2 or not (isinstance(exc, IntegrityError) or lost_race(exc)):
                raise
    await runtime.catalog.reload()


async def _delete_all(runtime: Runtime) -> None:
    # The rollups kept stay kept: complete from the beginning, as on a new database.
    tables = [t.name for t in metadata.sorted_tables if t.name not in ("catalog_version", "report_rollups")]
    async with runtime.db.write() as conn:
        for name in reversed(tables):
            await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 - our own table names
        if runtime.db.dialect == "postgresql":
            # Identities from 1 again, as on a new database. DELETE and this take a quarter of
            # TRUNCATE's time on tables this small (TRUNCATE replaces every table's files).
            await conn.execute(text("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"))
            runtime.db.spare_ids.clear()  # drawn from the sequences before they were reset
        await conn.execute(text("UPDATE catalog_version SET version = version + 1"))


@pytest.fixture
def clean(node: Node) -> Node:
    node.call(lambda: _wipe(node.runtime))
    return node


class Client:
    """What the outside world does: API calls with the key, clicks and postbacks without."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.http = httpx.Client(
            base_url=node.base_url, timeout=30, headers={"user-agent": BROWSER_UA}, verify=TLS
        )
        self.auth = {"Authorization": f"Bearer {API_KEY}"}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, "/api" + path, headers=self.auth, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def items(self, path: str, **params: Any) -> list[Any]:
        """A list's first page (`limit` rows at most: 100 unless told)."""
        return list(self.api("GET", path, params=params)["items"])

    def click(self, code: str, **params: str) -> str:
        """Follow a tracking link; return the click ID from the offer URL it redirects to."""
        response = self.http.get(f"/c/{code}", params=params)
        assert response.status_code == 302, response.text
        return parse_qs(urlsplit(response.headers["location"]).query)["cid"][0]

    def postback(self, **params: str) -> httpx.Response:
        return self.http.get("/postback", params=params)

    def report(self, **params: str) -> Any:
        """Today's report (UTC) unless told otherwise."""
        today = datetime.now(UTC).date().isoformat()
        return self.api("GET", "/reports", params={"from": today, "to": today} | params)

    def flush(self) -> int:
        return self.node.call(self.node.runtime.writer.flush)


@dataclass
class World:
    """The test personas: advertiser Northstar (casino and sportsbook offers), its rival Southgate,
    affiliates Alice and Bob, and their tracking links."""

    northstar: dict[str, Any]
    southgate: dict[str, Any]
    casino: dict[str, Any]
    sportsbook: dict[str, Any]
    rival_offer: dict[str, Any]
    alice: dict[str, Any]
    bob: dict[str, Any]
    alice_casino: str
    bob_casino: str
    alice_sportsbook: str
    rival_link: str

    @property
    def token(self) -> str:
        return str(self.northstar["token"])


@pytest.fixture
def client(clean: Node) -> Iterator[Client]:
    c = Client(clean)
    yield c
    c.http.close()


def make_world(c: Client) -> World:
    northstar = c.api("POST", "/advertisers", json={"name": "Northstar Gaming"})
    southgate = c.api("POST", "/advertisers", json={"name": "Southgate Bets"})

    def offer(adv: dict[str, Any], name: str, host: str, **extra: Any) -> dict[str, Any]:
        body = {
            "advertiser_id": adv["id"],
            "name": name,
            "url_template": f"https://{host}/go?cid={{click_id}}&s1={{sub1}}&src={{source}}",
            "currency": "EUR",
            **extra,
        }
        return dict(c.api("POST", "/offers", json=body))

    casino = offer(
        northstar,
        "Northstar Casino",
        "casino.example.com",
        payouts={"registration": "1.50", "first_deposit": "50"},
        custom_events=["vip_level"],
    )
    sportsbook = offer(northstar, "Northstar Sportsbook", "sports.example.com")
    rival_offer = offer(southgate, "Southgate Poker", "poker.example.net")
    alice = c.api("POST", "/affiliates", json={"name": "Alice Media"})
    bob = c.api("POST", "/affiliates", json={"name": "Bob Traffic"})

    def link(aff: dict[str, Any], off: dict[str, Any], campaign: str = "") -> str:
        body = {"affiliate_id": aff["id"], "offer_id": off["id"], "campaign": campaign}
        return str(c.api("POST", "/links", json=body)["code"])

    return World(
        northstar,
        southgate,
        casino,
        sportsbook,
        rival_offer,
        alice,
        bob,
        link(alice, casino, "spring"),
        link(bob, casino),
        link(alice, sportsbook),
        link(bob, rival_offer),
    )


# Each session server's world as first made through the API, with the rows it made: later tests
# get the same rows put back into the emptied database (made anew, it took 0.15 s of CPU a test,
# 80 s a run: eleven API calls, each reloading the catalog).
_made: dict[str, tuple[World, dict[str, list[dict[str, Any]]]]] = {}


@pytest.fixture
def world(client: Client) -> World:
    node = client.node
    if node.base_url not in _made:
        world = make_world(client)
        _made[node.base_url] = (world, node.call(lambda: _rows(node.runtime)))
        return copy.deepcopy(world)
    world, rows = _made[node.base_url]
    node.call(lambda: _put_back(node.runtime, rows))
    return copy.deepcopy(world)


def _kept() -> list[Table]:
    """The tables the wipe empties, parents first."""
    return [t for t in metadata.sorted_tables if t.name not in ("catalog_version", "report_rollups")]


async def _rows(runtime: Runtime) -> dict[str, list[dict[str, Any]]]:
    await runtime.writer.flush()
    async with runtime.db.read() as conn:
        return {t.name: [dict(row._mapping) for row in await conn.execute(t.select())] for t in _kept()}


async def _put_back(runtime: Runtime, rows: dict[str, list[dict[str, Any]]]) -> None:
    """`rows` inserted into the emptied database as they were, the catalog then reloaded."""
    async with runtime.db.write() as conn:
        # The server's settling task (once a minute) may have summed the weeks of the emptied
        # database since the wipe: its rows would clash with the ones put back.
        for table in (report_weeks, report_week_state):
            await conn.execute(table.delete())
        for table in _kept():
            if rows[table.name]:
                await conn.execute(table.insert(), rows[table.name])
        if runtime.db.dialect == "postgresql":
            # Each sequence on from its table's ids, as if they had been drawn from it.
            for table in _kept():
                if rows[table.name] and "id" in table.c:
                    top = max(row["id"] for row in rows[table.name])
                    await conn.execute(
                        text("SELECT setval(pg_get_serial_sequence(:name, 'id'), :top)"),
                        {"name": table.name, "top": top},
                    )
        await conn.execute(text("UPDATE catalog_version SET version = version + 1"))
    await runtime.catalog.reload()


@pytest.fixture
def click_id(client: Client, world: World) -> str:
    """A stored click of Alice's casino link (sub1=s1)."""
    cid = client.click(world.alice_casino, sub1="s1")
    client.flush()
    return cid


@pytest.fixture
def proxied(clean: Node, database_url: str, tmp_path: Path) -> Iterator[Client]:
    """A server behind one proxy, so that tests choose the visitor's address (and so GEO)."""
    for node in private_node(clean, database_url, tmp_path, proxy_hops=1):
        c = Client(node)
        yield c
        c.http.close()
