"""Alembic builds exactly the schema the code declares, on SQLite and on PostgreSQL."""

import asyncio
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from clickback.store.db import connect
from clickback.store.migrate import alembic_config, upgrade
from clickback.store.tables import metadata


def schema_diff(url: str) -> list[object]:
    async def run() -> list[object]:
        db = connect(url)
        try:
            async with db.read() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), metadata)
                )
        finally:
            await db.close()

    return asyncio.run(run())


def test_migrated_schema_matches_the_declared_tables(database_url: str) -> None:
    # database_url was migrated from empty by the session fixture, on each backend.
    assert schema_diff(database_url) == []


def downgrade(conn: Connection, revision: str) -> None:
    command.downgrade(alembic_config(conn), revision)


def test_downgrade_to_empty_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"

    async def tables_after(*steps: str) -> set[str]:
        db = connect(url)
        try:
            for step in steps:
                if step == "head":
                    await upgrade(db)
                else:
                    async with db.write() as conn:
                        await conn.run_sync(downgrade, step)
            async with db.read() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await db.close()

    assert asyncio.run(tables_after("head", "base")) == {"alembic_version"}
    assert asyncio.run(tables_after("head")) == set(metadata.tables) | {"alembic_version"}
    assert schema_diff(url) == []


TOKEN = "0123456789abcdef0123456789abcdef"


def logged_then_migrated(url: str, before: str, logged: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The postback log's (query, body) after rows written at revision `before` are migrated."""

    async def scenario() -> list[tuple[str, str]]:
        db = connect(url)
        try:
            await upgrade(db, before)
            async with db.write() as conn:
                for n, (query, body) in enumerate(logged, 1):
                    await conn.execute(
                        text(
                            "INSERT INTO postbacks (id, received_at, ip, method, click_id, result, detail,"
                            " http_status, query, body, ignored)"
                            " VALUES (:n, '2026-12-01 00:00:00.000000', '1.2.3.4', 'GET', '', 'accepted', '',"
                            " 200, :query, :body, '')"
                        ),
                        {"n": n, "query": query, "body": body},
                    )
            await upgrade(db)
            async with db.read() as conn:
                rows = await conn.execute(text("SELECT query, body FROM postbacks ORDER BY id"))
                return [(r.query, r.body) for r in rows]
        finally:
            await db.close()

    return asyncio.run(scenario())


def test_tokens_logged_before_0007_are_masked_by_it(tmp_path: Path) -> None:
    logged = [
        (f"click_id=x&token={TOKEN}&event=sale", ""),
        ("click_id=y&event=sale", f'{{"secret": "{TOKEN}"}}'),
        ("click_id=z&event=sale", ""),
    ]
    assert logged_then_migrated(f"sqlite+aiosqlite:///{tmp_path / 'old-log.db'}", "0006", logged) == [
        ("click_id=x&token=***cdef&event=sale", ""),
        ("click_id=y&event=sale", '{"secret": "***cdef"}'),
        ("click_id=z&event=sale", ""),
    ]


def test_tokens_logged_under_escaped_names_or_after_a_byte_order_mark_are_masked_by_0021(
    tmp_path: Path,
) -> None:
    logged = [
        ("", f'{{"\\u0074oken": "{TOKEN}", "event": "sale"}}'),
        ("", f'\ufeff{{"token": "{TOKEN}"}}'),
        ("", '{"sub1": "caf\\u00e9"}'),
    ]
    assert logged_then_migrated(f"sqlite+aiosqlite:///{tmp_path / 'log.db'}", "0020", logged) == [
        ("", '{"\\u0074oken": "***cdef", "event": "sale"}'),
        ("", '\ufeff{"token": "***cdef"}'),
        ("", '{"sub1": "caf\\u00e9"}'),
    ]


AT = "2026-12-01 00:00:00.000000"
AFFILIATE = text("INSERT INTO affiliates (id, name, status, created_at) VALUES (1, 'a', 'active', :at)")
TEMPLATE = text(
    "INSERT INTO outbound_templates (id, affiliate_id, name, url, method, body, events, statuses,"
    " status_map, click_id_sub, status, created_at, updated_at) VALUES (:id, 1, 't',"
    " 'https://x.example/', 'GET', '', '[]', '[]', '{}', 'sub1', 'active', :at, :at)"
)
DELIVERY = text(
    "INSERT INTO outbound_deliveries (delivery_id, template_id, affiliate_id, conversion_id, event,"
    " status, method, url, body, content_type, destination, state, attempts, next_at, last_error,"
    " created_at, updated_at) VALUES ('d', :template, 1, 1, 'sale', 'approved', 'GET',"
    " 'https://x.example/', '', '', 'x.example', 'waiting', 0, :at, '', :at, :at)"
)
AUDITED = text(
    "INSERT INTO audit_log (at, actor, entity_kind, entity_id, action)"
    " VALUES (:at, 'x', 'outbound_template', :template, 'delete')"
)


def test_0024_never_gives_a_template_an_id_a_deleted_one_had(tmp_path: Path) -> None:
    # Before 0024, SQLite handed a deleted template's id to the next one: only its deliveries and
    # its audit lines still name the ids it had.
    url = f"sqlite+aiosqlite:///{tmp_path / 'templates.db'}"

    async def scenario() -> list[int]:
        db = connect(url)
        try:
            await upgrade(db, "0023")
            async with db.write() as conn:
                await conn.execute(AFFILIATE, {"at": AT})
                await conn.execute(TEMPLATE, {"id": 3, "at": AT})
                await conn.execute(DELIVERY, {"template": 7, "at": AT})
                await conn.execute(AUDITED, {"template": 8, "at": AT})
            await upgrade(db)
            async with db.write() as conn:
                await conn.execute(TEMPLATE, {"id": None, "at": AT})
                await conn.execute(text("DELETE FROM outbound_templates WHERE id = 9"))
                await conn.execute(TEMPLATE, {"id": None, "at": AT})
            async with db.read() as conn:
                ids = await conn.execute(text("SELECT id FROM outbound_templates ORDER BY id"))
                return list(ids.scalars())
        finally:
            await db.close()

    assert asyncio.run(scenario()) == [3, 10]
