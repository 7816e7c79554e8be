"""Migration 0029 (store/mixed_months.py): NGR reports priced in another currency than their RevShare
month's, before ADR 24, priced again into it as pricing prices a report now; the months' kept NGR
moved by what they count, in batches, once. (The ledger's side, through the settle job:
tests/web/test_revshare_mixed_months.py.)"""

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from clickback.core.commission import convert
from clickback.store import fx, mixed_months
from clickback.store.db import connect
from clickback.store.migrate import upgrade
from clickback.store.tables import conversions, fx_rates, revshare_due, revshare_periods
from tests.conftest import BACKENDS, scratch_database
from tests.store.test_migrations import as_at_0027

AT = datetime(2026, 9, 1, tzinfo=UTC)
OCTOBER = "2026-10"
IN_OCTOBER = datetime(2026, 10, 12, 9, tzinfo=UTC)
CLAIMS_WHY = "recomputed: pixel claims no longer count"


def report(
    n: int, affiliate_id: int | None, sent: tuple[str, str], priced: tuple[str, str], **more: Any
) -> Any:
    (payout, currency), (deal_amount, deal_currency) = sent, priced
    return (
        as_at_0027(
            id=n,
            dedupe_key=f"k{n}",
            dedupe_event="net_revenue",
            event="net_revenue",
            status="approved",
            affiliate_id=affiliate_id,
            offer_id=None if affiliate_id is None else 1,
            period=OCTOBER,
            event_at=IN_OCTOBER,
            payout=Decimal(payout),
            currency=currency,
            deal_amount=None if affiliate_id is None else Decimal(deal_amount),
            deal_currency=None if affiliate_id is None else deal_currency,
            fx_rate="1",
            # Every row names the same columns: an insert of many takes the first row's.
            channel="s2s",
            test=False,
        )
        | more
    )


REPORTS = [
    report(1, 1, ("100", "EUR"), ("100", "EUR")),
    # The deal moved to USD: priced in dollars, added to the euro month.
    report(2, 1, ("300", "EUR"), ("390", "USD")),
    report(3, 1, ("10", "USD"), ("10", "USD")),
    # A pixel's claim nobody confirmed: in no month, priced again all the same (it may be).
    report(4, 1, ("80", "USD"), ("80", "USD"), channel="pixel", status="pending"),
    # Affiliate 3's deal paid no RevShare: the month has no row, its first report's currency.
    report(5, 3, ("100", "EUR"), ("100", "EUR")),
    report(6, 3, ("13", "USD"), ("13", "USD")),
    # A test's report is in no month; one whose click is in flight is priced when it lands.
    report(7, 1, ("50", "USD"), ("50", "USD"), test=True),
    report(8, None, ("50", "USD"), ("", "")),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_0029_prices_each_mixed_report_again_into_its_months_currency_once(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mixed_months, "BATCH", 2)  # read in several batches
    with scratch_database(backend, tmp_path) as url:
        migrated, again, after_again = asyncio.run(migrated_twice(url))

    priced, ngr, due, left = migrated
    # USD→EUR is the EUR→USD rate inverted, rounded as pricing rounds an amount.
    usd_eur = 1 / Decimal("1.3")
    assert priced == {
        1: (Decimal(100), "EUR", "1"),
        2: (Decimal(300), "EUR", "1"),
        3: (convert(Decimal(10), usd_eur), "EUR", f"{usd_eur:f}"),
        4: (convert(Decimal(80), usd_eur), "EUR", f"{usd_eur:f}"),
        5: (Decimal(100), "EUR", "1"),
        6: (Decimal(10), "EUR", f"{usd_eur:f}"),
        7: (Decimal(50), "USD", "1"),
        8: (None, None, "1"),
    }
    assert priced[3][0] == Decimal("7.6923")
    # 100 + 390 + 10 counted; now 100 + 300 + 7.6923 (the claim counts nowhere).
    assert ngr == Decimal("407.6923")
    # The month 0028 listed keeps its row, saying both reasons, caused by the last report.
    assert due == [(1, 1, OCTOBER, 3, f"{CLAIMS_WHY}; {mixed_months.WHY.removeprefix('recomputed: ')}")]
    assert left == []
    # Run again, it finds nothing and changes nothing.
    assert again == mixed_months.Repaired()
    assert after_again == migrated


Seen = tuple[dict[int, tuple[Any, ...]], Decimal, list[tuple[Any, ...]], list[int]]


async def migrated_twice(url: str) -> tuple[Seen, mixed_months.Repaired, Seen]:
    db = connect(url)
    try:
        await upgrade(db, "0028")
        async with db.write() as conn:
            rate = {"base": "EUR", "quote": "USD", "day": date(2026, 9, 1), "rate": "1.3", "created_at": AT}
            await conn.execute(insert(fx_rates), [rate])
            await conn.execute(insert(conversions), REPORTS)
            month = {"affiliate_id": 1, "offer_id": 1, "period": OCTOBER}
            await conn.execute(
                insert(revshare_periods),
                [
                    month
                    | {
                        "currency": "EUR",
                        "ngr": Decimal(500),
                        "ftds": 0,
                        "carry_in": Decimal(0),
                        "percent": "25",
                        "earnings": Decimal(125),
                        "carry_out": Decimal(0),
                        "updated_at": IN_OCTOBER,
                    }
                ],
            )
            # Listed by 0028 already (a claim it took out), not yet booked.
            await conn.execute(insert(revshare_due), [month | {"conversion_id": 1, "why": CLAIMS_WHY}])
        await upgrade(db)
        first = await seen(db)
        async with db.write() as conn:
            again = await conn.run_sync(mixed_months.reprice_mixed_months)
        return first, again, await seen(db)
    finally:
        await db.close()


async def seen(db: Any) -> Seen:
    async with db.read() as conn:
        c = conversions.c
        rows = await conn.execute(select(c.id, c.deal_amount, c.deal_currency, c.fx_rate))
        priced = {row.id: tuple(row[1:]) for row in rows}
        ngr = (await conn.execute(select(revshare_periods.c.ngr))).scalar_one()
        due = [tuple(row) for row in await conn.execute(select(revshare_due))]
        left = [row.id for row in await conn.exec_driver_sql(mixed_months.LEFT_AS_THEY_WERE)]
        return priced, ngr, due, left


@pytest.mark.parametrize("backend", BACKENDS)
def test_rates_are_found_as_store_fx_finds_them(backend: str, tmp_path: Path) -> None:
    """The migration's own copy of the rule (frozen with it) answers as store/fx.rate_on does:
    the newest rate on or before the day, either direction, the direct one first on its day."""
    rates = [
        ("EUR", "USD", date(2026, 9, 1), "1.3"),
        ("USD", "EUR", date(2026, 9, 15), "0.8"),
        ("EUR", "USD", date(2026, 9, 15), "1.25"),
        ("GBP", "EUR", date(2026, 9, 10), "1.17"),
    ]
    days = [date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 10), date(2026, 9, 15), date(2026, 10, 1)]
    pairs = [("EUR", "USD"), ("USD", "EUR"), ("EUR", "GBP"), ("GBP", "EUR"), ("EUR", "EUR"), ("USD", "GBP")]

    def both(conn: Connection) -> list[tuple[Decimal | None, Decimal | None]]:
        mine = mixed_months._Rates(conn)
        return [(mine.on(b, q, d), fx.rate_on(conn, b, q, d)) for b, q in pairs for d in days]

    async def scenario() -> list[tuple[Decimal | None, Decimal | None]]:
        db = connect(url)
        try:
            await upgrade(db)
            async with db.write() as conn:
                rows = [
                    {"base": b, "quote": q, "day": d, "rate": r, "created_at": AT} for b, q, d, r in rates
                ]
                await conn.execute(insert(fx_rates), rows)
                return await conn.run_sync(both)
        finally:
            await db.close()

    with scratch_database(backend, tmp_path) as url:
        answers = asyncio.run(scenario())

    assert [mine for mine, _ in answers] == [theirs for _, theirs in answers]
    found = dict(zip([(b, q, d) for b, q in pairs for d in days], [m for m, _ in answers], strict=True))
    assert found["EUR", "USD", date(2026, 8, 31)] is None
    assert found["EUR", "USD", date(2026, 9, 15)] == Decimal("1.25")  # direct first on its day
    assert found["USD", "EUR", date(2026, 9, 15)] == Decimal("0.8")
    assert found["USD", "EUR", date(2026, 9, 10)] == 1 / Decimal("1.3")
    assert found["EUR", "GBP", date(2026, 10, 1)] == 1 / Decimal("1.17")
