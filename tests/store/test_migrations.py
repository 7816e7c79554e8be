"""Alembic builds exactly the schema the code declares, on SQLite and on PostgreSQL."""

import asyncio
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection

from clickback.core.intake import RawPostback, excerpt
from clickback.core.limits import MAX_PARAM_NAME_LEN
from clickback.core.model import Advertiser, Catalog
from clickback.core.redact import known_secrets, mask_known, redact_body, redact_query, redact_text
from clickback.store import logmask
from clickback.store.db import Database, connect
from clickback.store.migrate import alembic_config, upgrade
from clickback.store.tables import (
    conversion_history,
    conversions,
    metadata,
    postbacks,
    revshare_due,
    revshare_periods,
)
from tests.conftest import BACKENDS, scratch_database


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


async def move_to(db: Database, revision: str) -> None:
    """Upgraded to `revision` "head", else downgraded to it."""
    if revision == "head":
        await upgrade(db)
    else:
        async with db.write() as conn:
            await conn.run_sync(downgrade, revision)


def test_downgrade_to_empty_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"

    async def tables_after(*steps: str) -> set[str]:
        db = connect(url)
        try:
            for step in steps:
                await move_to(db, step)
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


# --- 0027: the log's old rows masked by name and by value, as a new row is --------------------

OTHER = "AbCdEfGhIjKlMnOpQrStUvWxYz-_0123"  # the first advertiser's previous token
SIGNING = "9f" * 32
SECOND = "z" * 32  # the second advertiser's token
ADVERTISERS = [
    Advertiser(1, "Northstar", TOKEN, previous_token=OTHER, signing_secret=SIGNING),
    Advertiser(2, "Other", SECOND),
]
WHEN = datetime(2026, 12, 1, tzinfo=UTC)
ADVERTISER = text(
    "INSERT INTO advertisers (id, name, token, status, created_at, previous_token, signing_secret)"
    " VALUES (:id, :name, :token, 'active', :at, :previous, :signing)"
)
LOGGED = text(
    "INSERT INTO postbacks (id, received_at, ip, method, advertiser_id, click_id, result, reason,"
    " detail, http_status, query, body, ignored) VALUES (:id, :at, '1.2.3.4', 'GET', :advertiser, '',"
    " 'rejected', :reason, :detail, 400, :query, :body, :ignored)"
)


@dataclass(frozen=True)
class Logged:
    advertiser: int | None
    reason: str | None = None
    query: str = ""
    body: str = ""
    detail: str = ""
    ignored: str = ""

    def as_new_row(self, quoted: str | None = None) -> "Logged":
        """What store/recording.log keeps of this postback today; `quoted`: the name too long
        the detail quotes (intake quotes its beginning)."""
        raw = RawPostback(datetime.now(UTC), "1.2.3.4", "GET", self.query.encode(), self.body.encode())
        secrets = known_secrets(raw, Catalog.build(1, ADVERTISERS, [], [], []), self.advertiser)
        detail = self.detail if quoted is None else excerpt(quoted, MAX_PARAM_NAME_LEN)
        return Logged(
            self.advertiser,
            self.reason,
            mask_known(redact_query(self.query), secrets),
            mask_known(redact_body(self.body), secrets),
            mask_known(redact_text(detail), secrets),
            mask_known(redact_text(self.ignored), secrets),
        )


READ_BACK = text("SELECT advertiser_id, reason, query, body, detail, ignored FROM postbacks ORDER BY id")
# A JSON body sent as a form: one long parameter name, refused (parameter_too_long), quoted in
# the detail (its first 64 characters, before the token's first ones were kept out of it).
LONG_NAME = '{"click_id":"' + "d" * 24 + '","x":"' + TOKEN + '"}'
# Written before 0027: masked by the rules of their day (the token under its own names), not
# by today's.
OLD_ROWS = [
    # A misspelt name, another platform's.
    Logged(1, query=f"click_id=a&tokn={TOKEN}&api_key={SIGNING}&event=sale"),
    # The token under an innocent name, of a postback that resolved to no advertiser.
    Logged(None, query=f"click_id=b&note={TOKEN}&event=sale"),
    # The signing secret and the previous token in a JSON body, found by the row's advertiser.
    Logged(1, query="event=sale", body=f'{{"click_id": "c", "memo": "{SIGNING}", "old": "{OTHER}"}}'),
    Logged(1, "parameter_too_long", body=LONG_NAME, detail=LONG_NAME[:MAX_PARAM_NAME_LEN]),
    # A JSON body sent as a form, accepted: the body one ignored name, lowercased.
    Logged(1, query=f"click_id=e&token={TOKEN}", ignored=f'{{"note":"{SIGNING.upper()}"}}'),
    # Another advertiser's token, in a postback of the first.
    Logged(1, query=f"click_id=f&x={SECOND}"),
    # Nothing to mask: left as they are, byte for byte.
    Logged(
        1, None, "click_id=g&event=sale&payout=12.5&sub1=%7Bx%7D", '{"sub1": "caf\\u00e9"}', "", "foo,bar"
    ),
    Logged(2, "unknown_click", f"click_id=h&x={TOKEN[:15]}", detail="h"),
    Logged(1, "parameter_too_long", detail="s" * (MAX_PARAM_NAME_LEN - 11) + " (limit 255)"),
    # Masked by an earlier migration (the token's tail shown): masked again, the tail stays.
    Logged(1, query="click_id=i&token=***cdef&tokn=***"),
]


def log_rows(url: str, before: str, rows: list[Logged], *after: str) -> list[list[Logged]]:
    """`rows` written to the log at revision `before`; the log as it reads after each revision
    of `after` is reached (an earlier one by a downgrade)."""

    async def scenario() -> list[list[Logged]]:
        db = connect(url)
        try:
            await upgrade(db, before)
            async with db.write() as conn:
                for a in ADVERTISERS:
                    values = {"previous": a.previous_token or None, "signing": a.signing_secret or None}
                    await conn.execute(
                        ADVERTISER, {"id": a.id, "name": a.name, "token": a.token, "at": WHEN} | values
                    )
                for n, r in enumerate(rows, 1):
                    await conn.execute(LOGGED, {"id": n, "at": WHEN} | asdict(r))
            seen = []
            for revision in after:
                await move_to(db, revision)
                async with db.read() as conn:
                    found = await conn.execute(READ_BACK)
                    seen.append([Logged(*r) for r in found])
            return seen
        finally:
            await db.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_logged_before_0027_read_as_a_new_row_would_be_masked(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logmask, "BATCH", 3)  # the log read in several batches
    with scratch_database(backend, tmp_path) as url:
        migrated, downgraded, again = log_rows(url, "0026", OLD_ROWS, "head", "0026", "head")
    assert migrated == [r.as_new_row(LONG_NAME if n == 3 else None) for n, r in enumerate(OLD_ROWS)]
    # What that is, spelt out.
    assert migrated[0].query == "click_id=a&tokn=***cdef&api_key=***9f9f&event=sale"
    assert migrated[1].query == "click_id=b&note=***cdef&event=sale"
    assert migrated[2].body == '{"click_id": "c", "memo": "***9f9f", "old": "***0123"}'
    assert (migrated[3].body, migrated[3].detail) == (
        LONG_NAME.replace(TOKEN, "***cdef"),
        '{"click_id":"' + "d" * 24 + '","x":"…',
    )
    assert migrated[4].ignored == '{"note":"***9F9F"}'
    assert migrated[5].query == "click_id=f&x=***zzzz"
    assert migrated[6:] == OLD_ROWS[6:]
    # A masked secret stays masked; run again, 0027 changes nothing.
    assert downgraded == again == migrated


def as_at_0027(**values: Any) -> dict[str, Any]:
    """A conversion row as 0027 held it (as 0026 did): `values`, and something for every other column that
    must have one."""
    filler: dict[type, Any] = {str: "", int: 1}
    row = {
        column.name: filler.get(column.type.python_type, datetime(2026, 11, 5, tzinfo=UTC))  # the times
        for column in conversions.columns
        if not column.nullable and column.server_default is None and not column.primary_key
    }
    return row | values


@pytest.mark.parametrize("backend", BACKENDS)
def test_0028_takes_the_unconfirmed_pixel_claims_out_of_their_months(backend: str, tmp_path: Path) -> None:
    """Before 0028 a pixel's claim counted, pending, in its RevShare month: the month's kept NGR
    and FTDs lose those nobody confirmed, and keep the ones the server confirmed or a person
    approved (which count from now on). The month is listed for the settle job to book its
    difference (tests/web/test_revshare_due.py), caused by its last claim."""
    with scratch_database(backend, tmp_path) as url:
        confirmed, kept, due = asyncio.run(claims_migrated(url))

    assert confirmed == [(1, False), (2, True), (3, True), (4, False), (5, False), (6, False)]
    assert kept == (Decimal(1340), 0)
    assert due == [(1, 2, "2026-11", 5, "recomputed: pixel claims no longer count")]


async def claims_migrated(
    url: str,
) -> tuple[list[tuple[int, bool]], tuple[Decimal, int], list[tuple[Any, ...]]]:
    month = {"affiliate_id": 1, "offer_id": 2}
    ngr = {**month, "event": "net_revenue", "period": "2026-11", "status": "pending", "channel": "pixel"}
    rows = [
        as_at_0027(id=1, dedupe_key="a", **ngr, deal_amount=Decimal(5000)),  # a claim
        as_at_0027(id=2, dedupe_key="b", **ngr, deal_amount=Decimal(300)),  # the server's since
        as_at_0027(id=3, dedupe_key="c", **(ngr | {"status": "approved"}), deal_amount=Decimal(40)),
        as_at_0027(id=4, dedupe_key="d", **(ngr | {"channel": "s2s"}), deal_amount=Decimal(1000)),
        as_at_0027(
            id=5, dedupe_key="e", **(ngr | {"event": "first_deposit", "period": None}), deal_amount=None
        ),
        as_at_0027(id=6, dedupe_key="f", **(ngr | {"status": "rejected"}), deal_amount=Decimal(70)),
    ]

    db = connect(url)
    try:
        await upgrade(db, "0027")
        async with db.write() as conn:
            await conn.execute(insert(conversions), rows)
            when = datetime(2026, 11, 6, tzinfo=UTC)
            logged = {"ip": "1.2.3.4", "method": "GET", "click_id": "", "detail": "", "http_status": 200}
            logged |= {"query": "", "body": "", "ignored": "", "received_at": when}
            # The server's postback that confirmed conversion 2; a person approving conversion 3.
            await conn.execute(
                insert(postbacks).values(id=1, result="updated", conversion_id=2, channel="s2s", **logged)
            )
            await conn.execute(
                insert(conversion_history).values(
                    conversion_id=3, at=when, from_status="pending", to_status="approved"
                )
            )
            # Everything that stands counted, as the months were kept before.
            kept = {"period": "2026-11", "currency": "EUR", "ngr": Decimal(6340), "ftds": 1}
            await conn.execute(
                insert(revshare_periods).values(
                    **month,
                    **kept,
                    carry_in=Decimal(0),
                    percent="25",
                    earnings=Decimal(1585),
                    carry_out=Decimal(0),
                    updated_at=datetime(2026, 11, 30, tzinfo=UTC),
                )
            )
        await upgrade(db)
        async with db.read() as conn:
            c = conversions.c
            confirmed = await conn.execute(select(c.id, c.confirmed).order_by(c.id))
            r = revshare_periods.c
            kept_now = (await conn.execute(select(r.ngr, r.ftds))).one()
            due = [tuple(row) for row in await conn.execute(select(revshare_due))]
        # Downgraded, the months count the claims again, as the code before 0028 does.
        async with db.write() as conn:
            await conn.run_sync(downgrade, "0027")
        async with db.read() as conn:
            r = revshare_periods.c
            assert tuple((await conn.execute(select(r.ngr, r.ftds))).one()) == (Decimal(6340), 1)
        return [(i, bool(v)) for i, v in confirmed], (kept_now.ngr, kept_now.ftds), due
    finally:
        await db.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_0030_keeps_every_visitor_up_and_down(backend: str, tmp_path: Path) -> None:
    """0030 adds the winning click's ID to the visitors' rows: the rows there stay, their winner
    unknown (null), and a downgrade takes the column away again with the rows kept."""
    with scratch_database(backend, tmp_path) as url:
        upgraded, downgraded, again = asyncio.run(visitors_migrated(url))

    assert upgraded == [(1, "v1", 2_000, 1_000, None), (2, "v2", 4_000, 3_000, None)]
    assert downgraded == [(1, "v1", 2_000, 1_000, "gone"), (2, "v2", 4_000, 3_000, "gone")]
    assert again == upgraded


async def visitors_migrated(url: str) -> list[list[tuple[Any, ...]]]:
    db = connect(url)
    try:
        await upgrade(db, "0029")
        async with db.write() as conn:
            await conn.execute(
                text(
                    "INSERT INTO visitors (link_id, visitor, last_seen, unique_at)"
                    " VALUES (1, 'v1', 2000, 1000), (2, 'v2', 4000, 3000)"
                )
            )
        seen = []
        for revision in ("head", "0029", "head"):
            await move_to(db, revision)
            async with db.read() as conn:
                # The columns named, not *: PostgreSQL refuses a prepared statement whose result's
                # type the migration changed.
                found = await conn.execute(
                    text("SELECT link_id, visitor, last_seen, unique_at FROM visitors ORDER BY link_id")
                )
                kept = [tuple(row) for row in found]
                columns = await conn.run_sync(
                    lambda c: [col["name"] for col in inspect(c).get_columns("visitors")]
                )
                winners: list[Any] = ["gone"] * len(kept)
                if "unique_click" in columns:
                    found = await conn.execute(text("SELECT unique_click FROM visitors ORDER BY link_id"))
                    winners = [row[0] for row in found]
            seen.append([(*row, winner) for row, winner in zip(kept, winners, strict=True)])
        return seen
    finally:
        await db.close()


# --- 0031: held deliveries ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_0031_downgraded_leaves_held_deliveries_waiting_to_be_sent(backend: str, tmp_path: Path) -> None:
    """The code before 0031 sends waiting deliveries only: a held one would never go."""
    with scratch_database(backend, tmp_path) as url:
        assert asyncio.run(held_then_downgraded(url)) == [(1, "waiting"), (2, "waiting"), (3, "delivered")]
        assert schema_diff(url) == []  # upgraded again


SENT = text(
    "INSERT INTO outbound_deliveries (delivery_id, template_id, affiliate_id, conversion_id, event,"
    " status, method, url, body, content_type, destination, state, attempts, next_at, last_error,"
    " created_at, updated_at) VALUES (:d, 1, 1, 1, 'sale', 'approved', 'GET', 'https://x.example/',"
    " '', '', 'x.example', :state, 0, :at, '', :at, :at)"
)


async def held_then_downgraded(url: str) -> list[tuple[Any, ...]]:
    """Deliveries waiting, held and delivered at head, read after a downgrade to 0030; then
    upgraded to head again."""
    db = connect(url)
    try:
        await upgrade(db)
        async with db.write() as conn:
            for n, state in enumerate(("waiting", "held", "delivered"), 1):
                await conn.execute(SENT, {"d": f"d{n}", "state": state, "at": WHEN})
        async with db.write() as conn:
            await conn.run_sync(downgrade, "0030")
        async with db.read() as conn:
            rows = await conn.execute(text("SELECT id, state FROM outbound_deliveries ORDER BY id"))
            found = [tuple(r) for r in rows]
        await upgrade(db)
        return found
    finally:
        await db.close()
