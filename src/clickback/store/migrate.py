"""Schema migrations (Alembic), run programmatically on the application's own connection."""

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection

from clickback.store.db import Database
from clickback.store.rollups import keep_zones

SCRIPTS = Path(__file__).parent / "migrations"
# Key of the PostgreSQL advisory lock held while migrating (any number, fixed for clickback).
MIGRATION_LOCK = 0x636C6B62


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    def run(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), revision)
        if revision == "head":
            keep_zones(conn, db.local_days.zones, int(time.time()))

    async with db.write() as conn:
        if db.dialect == "postgresql":
            # Servers starting together (workers, nodes, each catching up after the database was
            # unreachable) migrate one after another: the next finds the schema at head. On
            # SQLite the write transaction already excludes the others.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(run)


def head_revision() -> str:
    """The schema revision this version of clickback migrates to."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the migrations ship with the package
    return head


def known_revision(revision: str) -> bool:
    """Whether `revision` is one of this clickback's migrations (a newer one's is not)."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False
