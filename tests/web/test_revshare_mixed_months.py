"""RevShare months that added two currencies before ADR 24 (a deal moved from EUR to USD mid-month):
migration 0029 prices their reports again into the month's currency, corrects the month's kept
NGR and lists it; the settle job books the difference and the next month's carry-in, once. The
month's row and ledger then hold what the same postbacks book on the code of ADR 24, which the
first test sends through a fresh database."""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from clickback.core.commission import Deal, DealKind, RevShareTerms
from clickback.store import ledger as store_ledger
from clickback.store.catalog import terms_to_json
from clickback.store.db import connect
from clickback.store.migrate import upgrade
from clickback.store.mixed_months import LEFT_AS_THEY_WERE, WHY
from clickback.store.tables import (
    advertisers,
    affiliates,
    commissions,
    conversions,
    deals,
    fx_rates,
    offers,
    revshare_due,
    revshare_periods,
)
from tests.conftest import API_KEY, BACKENDS, Client, World, scratch_database, serve, settings_for
from tests.store.test_migrations import as_at_0027
from tests.web.test_commissions import THIS_MONTH, deal, ledger, month
from tests.web.test_outbound import eventually
from tests.web.test_revshare_currency import (
    EARLY,
    REVSHARE_25,
    conversion,
    month_row,
    ngr,
    rate,
    revshare_deal_then_usd,
)
from tests.web.test_revshare_due import advertiser, affiliate, mid, offer

# The month the deal moved from EUR to USD in, and the next (the running one).
MIXED, NEXT = month(-1), THIS_MONTH
# What ADR 24 books for the postbacks both tests describe (EUR→USD 1.25): -460 EUR, 300 EUR,
# 125 USD (100 EUR) and 80 USD rejected make -60 EUR, carried into the USD month at 1.25 as -75
# USD: (1000 - 75) * 25 % = 231.25 USD. Before ADR 24 the month held -460 + 375 + 125 = 40
# "EUR", booked 10 EUR, carried nothing and the next month booked 250 USD.
MONTHS = {
    MIXED: ("EUR", Decimal(-60), Decimal(0), Decimal(0)),
    NEXT: ("USD", Decimal(1000), Decimal(-75), Decimal("231.25")),
}
BOOKED = {NEXT: {"USD": Decimal("231.25")}}
# Each report of the mixed month as priced (deal_amount, deal_currency).
PRICED = {
    "A": (Decimal(-460), "EUR"),
    "B": (Decimal(300), "EUR"),
    "R": (Decimal(64), "EUR"),
    "C": (Decimal(100), "EUR"),
    "D": (Decimal(1000), "USD"),
}


def test_the_postbacks_of_a_month_whose_deal_changed_currency_book_this_on_adr_24(
    client: Client, world: World
) -> None:
    """The reference: the postbacks the legacy database below was booked from, on this code."""
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world, REVSHARE_25)
    sent = {"A": ngr(client, world, "A", "-460", period=MIXED)}
    deal(client, world.casino, {"currency": "USD"})
    sent["B"] = ngr(client, world, "B", "300", period=MIXED)
    sent["R"] = ngr(client, world, "R", "80", currency="USD", period=MIXED)
    ngr(client, world, "R", "80", currency="USD", period=MIXED, status="rejected")
    sent["C"] = ngr(client, world, "C", "125", currency="USD", period=MIXED)
    sent["D"] = ngr(client, world, "D", "1000", currency="USD", period=NEXT)

    priced = {txn: conversion(client, reply) for txn, reply in sent.items()}
    assert {txn: (Decimal(amount), ccy) for txn, (amount, ccy) in priced.items()} == PRICED
    assert {period: month_row(client, period) for period in MONTHS} == MONTHS
    assert booked_sums(ledger(client, kind="revshare")) == BOOKED


def booked_sums(entries: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """RevShare entries summed per month and currency, sums of nothing left out."""
    sums: dict[str, dict[str, Decimal]] = {}
    for e in entries:
        per = sums.setdefault(e["period"], {})
        per[e["currency"]] = per.get(e["currency"], Decimal(0)) + Decimal(e["amount"])
    found = {p: {c: a for c, a in per.items() if a} for p, per in sums.items()}
    return {p: per for p, per in found.items() if per}


ALICE, BOB, OFFER = 1, 2, 1
TERMS = RevShareTerms(Decimal(25), negative_carryover=True)
# Conversion ids of the legacy database, by transaction: Alice's reports, then Bob's.
IDS = {"A": 1, "B": 2, "R": 3, "C": 4, "D": 5, "BOB-EUR": 6, "BOB-GBP": 7}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_month_mixed_before_adr_24_books_what_adr_24_books_after_0029_and_the_settle_job(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with scratch_database(backend, tmp_path) as url:
        with caplog.at_level(logging.WARNING, logger="clickback.store.mixed_months"):
            asyncio.run(booked_at_0028_then_migrated(url))
        priced, due, left, from_scratch = asyncio.run(after_migration(url))

        auth = {"Authorization": f"Bearer {API_KEY}"}
        serving = contextlib.contextmanager(serve)
        with (
            serving(settings_for(url, tmp_path / "node")) as node,
            httpx.Client(base_url=node.base_url, headers=auth) as http,
        ):
            # The settle job runs as the process starts, then once a minute.
            eventually(lambda: asyncio.run(months_now(url))[1] == 0, timeout=10)
            entries = revshare_entries(http)
            again = http.post("/api/commissions/settle")
            assert again.json()["recomputed"] == 0
            assert revshare_entries(http) == entries
        months, _ = asyncio.run(months_now(url))

    # Priced again into the month's currency as ADR 24 prices them; a report in EUR, the one in
    # USD booked in the next month, and Bob's with no GBP↔EUR rate, as they were.
    assert {txn: priced[IDS[txn]][:2] for txn in PRICED} == PRICED
    assert [priced[IDS[txn]][2] for txn in ("A", "B", "R", "C", "D")] == ["1", "1", "0.8", "0.8", "1"]
    assert priced[IDS["BOB-GBP"]] == (Decimal(60), "USD", "1.2")
    # The month's kept NGR moved by the difference: what a count from scratch finds.
    assert due == [(ALICE, OFFER, MIXED, IDS["C"], WHY)]
    assert from_scratch == Decimal(-60)

    alice = [e for e in entries if e["affiliate_id"] == ALICE]
    assert booked_sums(alice) == BOOKED
    assert {p: months[ALICE, p][:4] for p in MONTHS} == MONTHS
    assert months[ALICE, MIXED][4] == Decimal(-60)  # carried out
    corrections = [e for e in alice if e["detail"].endswith(WHY)]
    assert [(e["period"], Decimal(e["amount"]), e["currency"], e["status"]) for e in corrections] == [
        (MIXED, Decimal(-10), "EUR", "approved"),
        (NEXT, Decimal("-18.75"), "USD", "pending"),
    ]
    assert [e["conversion_id"] for e in corrections] == [IDS["C"], IDS["C"]]
    assert "carry-in -75.00 (-60.00 EUR at 1.25)" in corrections[1]["detail"]

    # Bob's report without a rate is left alone, his month not recomputed, and said so.
    assert [Decimal(e["amount"]) for e in entries if e["affiliate_id"] == BOB] == [Decimal(50), Decimal(15)]
    assert months[BOB, MIXED][:4] == ("EUR", Decimal(260), Decimal(0), Decimal(65))
    assert left == [IDS["BOB-GBP"]]
    said = [r.getMessage() for r in caplog.records if r.name == "clickback.store.mixed_months"]
    assert len(said) == 2, said
    assert said[0].startswith("RevShare months mixing two currencies (before ADR 24): 3 NGR reports priced")
    assert said[0].endswith(f"1 months to be booked again by the settle job: affiliate 1 offer 1 {MIXED}")
    assert "1 NGR reports left as they were" in said[1]
    assert said[1].endswith(f"affiliate 2 offer 1 {MIXED}")


def revshare_entries(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/api/commissions", params={"kind": "revshare", "limit": 1000})
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda e: e["id"])


AT = datetime(2026, 1, 1, tzinfo=UTC)


async def booked_at_0028_then_migrated(url: str) -> None:
    """Alice's and Bob's months as the code before ADR 24 booked the postbacks above (and Bob's),
    then the migrations to head."""
    db = connect(url)
    try:
        await upgrade(db, "0028")
        async with db.write() as conn:
            await conn.execute(insert(advertisers), [advertiser()])
            await conn.execute(insert(offers), [offer()])
            await conn.execute(insert(affiliates), [affiliate(ALICE, "Alice"), affiliate(BOB, "Bob")])
            await conn.execute(insert(deals), [usd_deal(ALICE), usd_deal(BOB)])
            rates = [("EUR", "USD", "1.25"), ("GBP", "USD", "1.2")]
            await conn.execute(
                insert(fx_rates),
                [{"base": b, "quote": q, "day": EARLY, "rate": r, "created_at": AT} for b, q, r in rates],
            )
            await conn.execute(insert(conversions), reports_as_booked())
            await conn.execute(insert(revshare_periods), months_as_booked())
            await conn.execute(insert(commissions), entries_as_booked())
        await upgrade(db)
    finally:
        await db.close()


async def after_migration(
    url: str,
) -> tuple[dict[int, tuple[Decimal, str, str]], list[tuple[Any, ...]], list[int], Decimal]:
    """The reports as priced, the months listed, the reports the documented query finds left
    mixed, and Alice's mixed month counted from scratch in its currency."""
    db = connect(url)
    try:
        async with db.read() as conn:
            c = conversions.c
            rows = await conn.execute(select(c.id, c.deal_amount, c.deal_currency, c.fx_rate))
            priced = {row.id: (row.deal_amount, row.deal_currency, row.fx_rate) for row in rows}
            due = [tuple(row) for row in await conn.execute(select(revshare_due))]
            left = [row.id for row in await conn.exec_driver_sql(LEFT_AS_THEY_WERE)]
            ngr_counted, _ = await conn.run_sync(
                lambda sync: store_ledger.month_inputs(sync, ALICE, OFFER, MIXED, "EUR")
            )
            return priced, due, left, ngr_counted
    finally:
        await db.close()


async def months_now(
    url: str,
) -> tuple[dict[tuple[int, str], tuple[str, Decimal, Decimal, Decimal, Decimal]], int]:
    """Each month's currency, NGR, carry-in, earnings and carry-out; how many are still listed."""
    db = connect(url)
    try:
        async with db.read() as conn:
            r = revshare_periods.c
            rows = await conn.execute(
                select(r.affiliate_id, r.period, r.currency, r.ngr, r.carry_in, r.earnings, r.carry_out)
            )
            left = len((await conn.execute(select(revshare_due))).all())
            return {(row[0], row[1]): tuple(row[2:]) for row in rows}, left
    finally:
        await db.close()


def usd_deal(affiliate_id: int) -> dict[str, Any]:
    """The deal now: moved from EUR to USD during the mixed month."""
    return {
        "offer_id": OFFER,
        "affiliate_id": affiliate_id,
        "kind": "revshare",
        "currency": "USD",
        "terms": terms_to_json(Deal(DealKind.REVSHARE, "USD", revshare=TERMS)),
        "created_at": AT,
        "updated_at": AT,
    }


def reports_as_booked() -> list[dict[str, Any]]:
    """Each report priced as the code before ADR 24 priced it: into the deal's currency then."""

    def report(
        txn: str,
        affiliate_id: int,
        period: str,
        sent: tuple[str, str],
        priced: tuple[str, str, str],
        status: str,
    ) -> dict[str, Any]:
        (payout, currency), (deal_amount, deal_currency, fx_rate) = sent, priced
        return as_at_0027(
            id=IDS[txn],
            dedupe_key=txn,
            dedupe_event="net_revenue",
            txn_id=txn,
            event="net_revenue",
            status=status,
            affiliate_id=affiliate_id,
            offer_id=OFFER,
            player_id="P",
            period=period,
            event_at=mid(period),
            payout=Decimal(payout),
            currency=currency,
            deal_amount=Decimal(deal_amount),
            deal_currency=deal_currency,
            fx_rate=fx_rate,
        )

    approved = "approved"
    return [
        report("A", ALICE, MIXED, ("-460", "EUR"), ("-460", "EUR", "1"), approved),
        # The deal moved to USD.
        report("B", ALICE, MIXED, ("300", "EUR"), ("375", "USD", "1.25"), approved),
        report("R", ALICE, MIXED, ("80", "USD"), ("80", "USD", "1"), "rejected"),
        report("C", ALICE, MIXED, ("125", "USD"), ("125", "USD", "1"), approved),
        report("D", ALICE, NEXT, ("1000", "USD"), ("1000", "USD", "1"), approved),
        report("BOB-EUR", BOB, MIXED, ("200", "EUR"), ("200", "EUR", "1"), approved),
        report("BOB-GBP", BOB, MIXED, ("50", "GBP"), ("60", "USD", "1.2"), approved),
    ]


def months_as_booked() -> list[dict[str, Any]]:
    def kept(affiliate_id: int, period: str, currency: str, ngr: str, earnings: str) -> dict[str, Any]:
        return {
            "affiliate_id": affiliate_id,
            "offer_id": OFFER,
            "period": period,
            "currency": currency,
            "ngr": Decimal(ngr),
            "ftds": 0,
            "carry_in": Decimal(0),
            "percent": "25",
            "earnings": Decimal(earnings),
            "carry_out": Decimal(0),
            "updated_at": mid(period),
            # The month that ended kept the terms of the deal it was booked under (EUR).
            "terms": terms_to_json(Deal(DealKind.REVSHARE, currency, revshare=TERMS)),
        }

    return [
        kept(ALICE, MIXED, "EUR", "40", "10"),  # -460 EUR + 375 USD + 125 USD
        kept(ALICE, NEXT, "USD", "1000", "250"),
        kept(BOB, MIXED, "EUR", "260", "65"),  # 200 EUR + 60 USD
    ]


def entries_as_booked() -> list[dict[str, Any]]:
    def entry(affiliate_id: int, period: str, amount: str, currency: str, cause: str) -> dict[str, Any]:
        return {
            "kind": "revshare",
            "affiliate_id": affiliate_id,
            "offer_id": OFFER,
            "conversion_id": IDS[cause],
            "period": period,
            "amount": Decimal(amount),
            "currency": currency,
            "percent": "25",
            "status": "pending" if period == NEXT else "approved",
            "detail": "booked before ADR 24",
            "created_at": mid(period),
            "updated_at": mid(period),
        }

    # A and B left the month negative; C made it 40 "EUR".
    return [
        entry(ALICE, MIXED, "10", "EUR", "C"),
        entry(ALICE, NEXT, "250", "USD", "D"),
        entry(BOB, MIXED, "50", "EUR", "BOB-EUR"),
        entry(BOB, MIXED, "15", "EUR", "BOB-GBP"),
    ]
