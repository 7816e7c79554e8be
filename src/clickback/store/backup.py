"""Backups taken while the servers run, and restores that never overwrite a database in use.

SQLite: the library's online backup API. PostgreSQL: pg_dump and pg_restore, run from here with
the settings' credentials so that one command serves a cron job on either database.
"""

import asyncio
import itertools
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.store.db import SQLITE_BUSY_MS, connect, create_private
from clickback.store.migrate import known_revision

# What a backup holds, as the operator is told it: read in the backup's own snapshot.
CONTENTS = (
    "SELECT (SELECT version_num FROM alembic_version),"
    " (SELECT count(*) FROM clicks), (SELECT count(*) FROM conversions)"
)
TABLES = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
STOP_FIRST = "stop it first (systemctl stop clickback, or docker compose stop clickback)"


class Refused(Exception):
    """Nothing was changed; the message says why and what to do instead."""


@dataclass(frozen=True)
class Contents:
    revision: str
    clicks: int
    conversions: int


@dataclass(frozen=True)
class Restored:
    contents: Contents
    # SQLite: the database that the restore replaced, copied aside first; None if there was none.
    kept: Path | None


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise Refused("an in-memory SQLite database cannot be backed up or restored")
    return Path(parsed.database)


def backup(url: str, target: Path) -> Contents:
    """Copy the database at `url` to the file `target` (which must not exist) while servers write."""
    if target.exists():
        raise Refused(f"{target} already exists: name a new file (a backup is never overwritten)")
    if not target.parent.is_dir():
        raise Refused(f"{target.parent} is not a directory")
    source = sqlite_file(url)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)  # left by a backup that was killed
    partial = _private(partial)
    try:
        contents = asyncio.run(_pg_dump(url, partial)) if source is None else _sqlite_backup(source, partial)
        _rename_durably(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return contents


def restore(url: str, backup_file: Path, now: datetime) -> Restored:
    """Make the database at `url` a copy of `backup_file`: SQLite only while no process has the
    file open (the database it replaces is kept aside), PostgreSQL only into an empty database."""
    if not backup_file.is_file():
        raise Refused(f"no backup file at {backup_file}")
    target = sqlite_file(url)
    if target is None:
        return Restored(asyncio.run(_pg_restore(url, backup_file)), None)
    return _sqlite_restore(backup_file, target, now)


def _sqlite_backup(source: Path, partial: Path) -> Contents:
    if not source.exists():
        raise Refused(f"no database at {source}: check CLICKBACK_DATA_DIR and CLICKBACK_DATABASE_URL")
    src = sqlite3.connect(source, timeout=SQLITE_BUSY_MS / 1000)
    dst = sqlite3.connect(partial)
    try:
        # The whole database in one step (pages=-1): one read transaction, so a snapshot of one
        # instant, beside which WAL lets the servers go on writing. Copied a few pages at a time,
        # the copy would start over after every commit of another connection: under load it
        # might never finish.
        src.backup(dst, pages=-1)
        # A backup is one self-contained file, not a database with a write-ahead log beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        return _contents(dst, "quick_check", partial)
    finally:
        dst.close()
        src.close()


def _sqlite_restore(backup_file: Path, target: Path, now: datetime) -> Restored:
    source = sqlite3.connect(f"{backup_file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        # The full check (indexes against their tables), not the quick one: a backup may have
        # sat on a disk for months.
        contents = _contents(source, "integrity_check", backup_file)
        if not known_revision(contents.revision):
            raise Refused(
                f"{backup_file} has schema revision {contents.revision}, which this version of "
                "clickback does not know: restore it with the version that made it, or a newer one"
            )
        create_private(target)
        live = sqlite3.connect(target, timeout=0, isolation_level=None)
        try:
            _hold_alone(live, target)
            kept = None
            if live.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]:
                kept = _private(target.with_name(f"{target.name}.before-restore-{now:%Y%m%dT%H%M%SZ}"))
                aside = sqlite3.connect(kept)
                try:
                    live.backup(aside)
                    aside.execute("PRAGMA journal_mode=DELETE")
                finally:
                    aside.close()
            # Through SQLite, into the open database, not a file copied over it: its journal
            # and write-ahead log stay consistent with what it holds, and a failure rolls back.
            source.backup(live)
        finally:
            live.close()
    finally:
        source.close()
    return Restored(contents, kept)


def _hold_alone(live: sqlite3.Connection, target: Path) -> None:
    """Take the database file for this connection alone until it closes, or refuse if in use.

    In WAL mode every open connection holds a shared lock on the file for as long as it is open
    (a server's pooled connections included), so the exclusive lock is refused while any server
    runs. Once taken it is kept until `live` closes (locking_mode=EXCLUSIVE): a server started
    meanwhile waits, then fails, instead of reading a half-restored database."""
    live.execute("PRAGMA locking_mode=EXCLUSIVE")
    try:
        live.execute("BEGIN EXCLUSIVE")
        live.execute("COMMIT")
    except sqlite3.OperationalError:
        raise Refused(
            f"{target} is in use by a running clickback (or another program): {STOP_FIRST}, "
            "then run restore again. Nothing was changed."
        ) from None


def _private(path: Path) -> Path:
    """`path` (or `path~N` if it exists) created empty, readable by its owner only: a copy of
    the database holds visitors' IP addresses and advertisers' postback tokens."""
    for n in itertools.count(1):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return path
        except FileExistsError:
            path = path.with_name(f"{path.name.rsplit('~', 1)[0]}~{n}")
    raise AssertionError("unreachable")


def _contents(conn: sqlite3.Connection, check: str, path: Path) -> Contents:
    try:
        verdict = conn.execute(f"PRAGMA {check}").fetchone()[0]
        if verdict != "ok":
            raise Refused(f"{path} failed SQLite's {check}: {verdict}")
        revision, clicks, conversions = conn.execute(CONTENTS).fetchone()
    except sqlite3.DatabaseError as exc:
        raise Refused(f"{path} is not a clickback SQLite database ({exc})") from None
    return Contents(revision, clicks, conversions)


def _rename_durably(partial: Path, target: Path) -> None:
    """The finished file under its name, and both on disk: a backup the system cron reported
    written is not lost to a power cut."""
    with partial.open("rb") as f:
        os.fsync(f.fileno())
    partial.rename(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


async def _pg_dump(url: str, partial: Path) -> Contents:
    program = _pg_client("pg_dump")
    db = connect(url)
    try:
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                # pg_dump reads the snapshot of this transaction, which stays open until it has
                # finished: the counts told are those of the dump, not of a moment later.
                snapshot = (await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
                contents = await _pg_contents(conn)
                await _run(program, url, "--format=custom", f"--snapshot={snapshot}", f"--file={partial}")
    finally:
        await db.close()
    return contents


async def _pg_restore(url: str, backup_file: Path) -> Contents:
    program = _pg_client("pg_restore")
    db = connect(url)
    name = make_url(url).database
    try:
        async with db.read() as conn:
            tables = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
                    )
                )
            ).scalar_one()
        if tables:
            raise Refused(
                f"database {name} already holds tables, and a restore never overwrites a database: "
                f"create an empty one (createdb {name}_restored), point CLICKBACK_DATABASE_URL at it "
                "and run restore again; the old one stays as it is until you drop it"
            )
        await _run(
            program, url, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
            f"--dbname={name}", str(backup_file),
        )  # fmt: skip
        async with db.read() as conn:
            return await _pg_contents(conn)
    finally:
        await db.close()


async def _pg_contents(conn: AsyncConnection) -> Contents:
    try:
        row = (await conn.execute(text(CONTENTS))).one()
    except DBAPIError as exc:
        raise Refused(f"not a clickback database ({exc.orig})") from None
    return Contents(str(row[0]), int(row[1]), int(row[2]))


def _pg_client(name: str) -> str:
    program = shutil.which(name)
    if program is None:
        raise Refused(
            f"{name} not found: install PostgreSQL's client programs, of the server's major version "
            "or newer (Debian: apt-get install postgresql-client), or follow the procedure of "
            "docs/backups.md by hand"
        )
    return program


async def _run(program: str, url: str, *args: str) -> None:
    parsed = make_url(url)
    # Connection settings in the environment, not on the command line, where `ps` shows the
    # password to every user of the machine.
    given = {
        "PGHOST": parsed.host,
        "PGPORT": parsed.port,
        "PGUSER": parsed.username,
        "PGPASSWORD": parsed.password,
        "PGDATABASE": parsed.database,
    }
    env = os.environ | {key: str(value) for key, value in given.items() if value is not None}
    process = await asyncio.create_subprocess_exec(
        program, *args, env=env, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode:
        raise Refused(f"{Path(program).name} failed: {err.decode(errors='replace').strip()}")
