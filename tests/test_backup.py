"""`clickback backup` taken while a real server takes clicks and postbacks, and `clickback restore`."""

import asyncio
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from clickback.cli import app
from clickback.store.db import connect
from clickback.store.migrate import head_revision
from tests.conftest import API_KEY, BROWSER_UA, Node, forget_connections
from tests.processes import clickback_env, clickback_serve

# The command-line tool runs in this process (its imports take seconds to start another); the
# server it backs up is a process of its own.
runner = CliRunner()

# The revision a backup of this version's schema names.
HEAD = head_revision()


class Load:
    """Clicks on a tracking link and, for each, the advertiser's registration postback, sent one
    after another from two threads until stopped; counts only what the server acknowledged."""

    def __init__(self, base: str, code: str, token: str) -> None:
        self.base, self.code, self.token = base, code, token
        self.clicks = 0
        self.conversions: set[int] = set()
        self._click_ids: list[str] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()

    def _click(self) -> None:
        with httpx.Client(base_url=self.base, headers={"user-agent": BROWSER_UA}) as http:
            while not self._stop.is_set():
                reply = http.get(f"/c/{self.code}")
                assert reply.status_code == 302, reply.text
                click_id = parse_qs(urlsplit(reply.headers["location"]).query)["cid"][0]
                with self._lock:
                    self.clicks += 1
                    self._click_ids.append(click_id)
                    self._lock.notify_all()

    def _postback(self) -> None:
        with httpx.Client(base_url=self.base) as http:
            for sent in range(1_000_000):
                click_id = self._next_click(sent)
                if click_id is None:
                    return
                params = {"click_id": click_id, "event": "registration", "token": self.token}
                reply = http.get("/postback", params=params).json()
                assert reply["result"] == "accepted", reply
                with self._lock:
                    self.conversions.add(reply["conversion_id"])
                    self._lock.notify_all()

    def _next_click(self, sent: int) -> str | None:
        """The click after the first `sent`, once taken; None once stopped."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._click_ids) > sent or self._stop.is_set())
            return None if self._stop.is_set() else self._click_ids[sent]

    @contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self._click), threading.Thread(target=self._postback)]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            with self._lock:
                self._lock.notify_all()
            for thread in threads:
                thread.join(30)

    def reached(self, clicks: int, conversions: int) -> None:
        with self._lock:
            assert self._lock.wait_for(
                lambda: self.clicks >= clicks and len(self.conversions) >= conversions, timeout=60
            )

    def acknowledged(self) -> tuple[int, set[int]]:
        with self._lock:
            return self.clicks, set(self.conversions)


@dataclass
class Counts:
    clicks: int
    clicks_in_reports: int
    conversions: set[int]
    accepted_postbacks: int


def counts(url: str) -> Counts:
    async def read() -> Counts:
        db = connect(url)
        try:
            async with db.read() as conn:

                async def one(sql: str) -> int:
                    return int((await conn.execute(text(sql))).scalar_one())

                ids = {row[0] for row in await conn.execute(text("SELECT id FROM conversions"))}
                return Counts(
                    await one("SELECT count(*) FROM clicks"),
                    await one("SELECT coalesce(sum(clicks + bot_clicks), 0) FROM report_hours"),
                    ids,
                    await one("SELECT count(*) FROM postbacks WHERE result = 'accepted'"),
                )
        finally:
            await db.close()

    return asyncio.run(read())


def set_up_offer(base: str) -> tuple[str, str]:
    """An advertiser, its offer and an affiliate's tracking link: (link code, postback token)."""
    with httpx.Client(base_url=f"{base}/api", headers={"Authorization": f"Bearer {API_KEY}"}) as api:

        def post(path: str, **body: object) -> dict[str, object]:
            reply = api.post(path, json=body)
            assert reply.status_code == 201, reply.text
            return dict(reply.json())

        advertiser = post("/advertisers", name="Northstar Gaming")
        offer = post(
            "/offers",
            advertiser_id=advertiser["id"],
            name="Northstar Casino",
            url_template="https://casino.example.com/go?cid={click_id}",
            currency="EUR",
            payouts={"registration": "1.50"},
        )
        affiliate = post("/affiliates", name="Alice Media")
        link = post("/links", affiliate_id=affiliate["id"], offer_id=offer["id"])
        return str(link["code"]), str(advertiser["token"])


def runtime(base: str) -> dict[str, int]:
    reply = httpx.get(f"{base}/api/runtime", headers={"Authorization": f"Bearer {API_KEY}"})
    return dict(reply.json())


def test_a_backup_under_load_restores_all_that_was_acknowledged_before_it(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres = database_url.startswith("postgresql")
    # SQLite: the default, a file in the data directory; PostgreSQL: the shared test database,
    # emptied first (the suite's own server on it stays idle meanwhile).
    session_node: Node | None = request.getfixturevalue("clean") if postgres else None
    url = database_url if postgres else ""
    # Flushed every 50 ms: click batches are committed all through the backup.
    env = clickback_env(tmp_path / "data", url, click_flush_seconds="0.05")
    backup_file = tmp_path / "clickback.backup"

    with clickback_serve(env, tmp_path / "server.log") as base:
        load = Load(base, *set_up_offer(base))
        with load.running():
            load.reached(clicks=200, conversions=20)
            written_before = runtime(base)["clicks_written"]
            _, acknowledged_before = load.acknowledged()
            made = runner.invoke(app, ["backup", str(backup_file)], env=env)
            written_during = runtime(base)["clicks_written"] - written_before
            _, acknowledged_by_then = load.acknowledged()
        refused = runner.invoke(app, ["restore", str(backup_file)], env=env)
        clicks_sent, acknowledged = load.acknowledged()

    if postgres:
        # PostgreSQL is restored into an empty database only; the suite has but one.
        read_url = database_url
        asyncio.run(_drop_schema(database_url))
    else:
        read_url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'clickback.db'}"
    restored = runner.invoke(app, ["restore", str(backup_file)], env=env)
    got = counts(read_url)
    if session_node is not None:
        # Its pooled connections prepared statements on the tables dropped above.
        forget_connections(session_node)

    assert made.exit_code == 0, made.output
    assert written_during > 0 and len(acknowledged_by_then) > len(acknowledged_before)  # under load
    assert refused.exit_code == 1
    assert ("already holds tables" if postgres else "is in use by a running clickback") in refused.output
    assert restored.exit_code == 0, restored.output
    # Everything acknowledged before the backup began is in it, nothing that was never acknowledged.
    assert acknowledged_before <= got.conversions <= acknowledged
    assert written_before <= got.clicks <= clicks_sent
    # One instant: report counters agree with the rows they count, the postback log with the
    # conversions, and the counts told are those of the file.
    assert got.clicks_in_reports == got.clicks
    assert got.accepted_postbacks == len(got.conversions)
    told = f"{got.clicks:,} clicks, {len(got.conversions):,} conversions, schema revision {HEAD}"
    assert told in made.output.replace("\n", " ")
    assert told in restored.output.replace("\n", " ")
    if not postgres:
        kept = list((tmp_path / "data").glob("clickback.db.before-restore-*"))
        assert len(kept) == 1 and f"kept as {kept[0]}" in restored.output.replace("\n", "")
        assert backup_file.stat().st_mode & 0o077 == 0


async def _drop_schema(url: str) -> None:
    db = connect(url)
    try:
        async with db.write() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await db.close()


def test_backup_and_restore_refuse_what_they_cannot_do_safely(tmp_path: Path) -> None:
    env = clickback_env(tmp_path / "data")
    fresh = clickback_env(tmp_path / "elsewhere")
    backup_file, garbage, newer = tmp_path / "b.db", tmp_path / "notes.txt", tmp_path / "newer.db"
    garbage.write_text("not a database")

    def invoke(*args: str | Path, env: dict[str, str] = env) -> tuple[int, str]:
        result = runner.invoke(app, [str(a) for a in args], env=env)
        return result.exit_code, result.output.replace("\n", " ")

    no_database = invoke("backup", backup_file)
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    made = invoke("backup", backup_file)
    again = invoke("backup", backup_file)
    shutil.copy(backup_file, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    not_sqlite = invoke("restore", garbage)
    too_new = invoke("restore", newer)
    missing = invoke("restore", tmp_path / "nowhere.db")
    into_nothing = invoke("restore", backup_file, env=fresh)

    assert no_database[0] == 1 and "no database at" in no_database[1]
    assert made[0] == 0 and f"0 clicks, 0 conversions, schema revision {HEAD}" in made[1]
    # It holds advertisers' tokens and signing secrets and trackers' credentials: said, not denied.
    assert "no secrets" not in made[1] and "advertisers' postback tokens and signing secrets" in made[1]
    assert "keep it as secret as the server" in made[1]
    assert backup_file.stat().st_mode & 0o777 == 0o600
    assert again[0] == 1 and "already exists" in again[1]
    assert not_sqlite[0] == 1 and "is not a clickback SQLite database" in not_sqlite[1]
    assert too_new[0] == 1 and "revision 9999, which this version of clickback does not know" in too_new[1]
    assert missing[0] == 1 and "no backup file at" in missing[1]
    assert into_nothing[0] == 0 and "kept as" not in into_nothing[1]
    # Restored where there was no database: created readable by its owner only, as migrate does.
    assert (tmp_path / "elsewhere" / "clickback.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "clickback.db").stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.partial")) and not list((tmp_path / "data").glob("*.before-restore-*"))


def test_the_backup_guide_shows_what_backup_and_restore_print(tmp_path: Path) -> None:
    """docs/backups.md's examples are the commands' output, but for paths, counts and times."""
    import re

    guide = (Path(__file__).parent.parent / "docs" / "backups.md").read_text()
    examples = re.findall(r"```\n(backup of .*?|restored .*?)```", guide.replace("\n  ", "\n"), re.S)
    data = tmp_path / "var"
    backup_file = tmp_path / "clickback-2026-12-02.db"
    # The secret generated into the data directory, as where the guide's server runs.
    env = clickback_env(data) | {"CLICKBACK_SECRET_KEY": ""}
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0

    printed = [
        runner.invoke(app, [command, str(backup_file)], env=env).output for command in ("backup", "restore")
    ]

    def as_in_the_guide(output: str) -> str:
        output = output.replace(str(backup_file), "/backups/clickback-2026-12-02.db").replace(
            str(data), "var"
        )
        output = output.replace("0 clicks, 0 conversions", "48,210 clicks, 1,377 conversions")
        return re.sub(r"before-restore-\d{8}T\d{6}Z", "before-restore-20261202T101500Z", output)

    def any_revision(text: str) -> str:  # the guide's need not follow every migration
        return re.sub(r"schema revision \d+", "schema revision N", text)

    assert [any_revision(e) for e in examples] == [any_revision(as_in_the_guide(o)) for o in printed]
