"""RevShare months booked before 0028 on pixel claims nobody confirmed: 0028 takes the claims out
of the months' kept inputs and lists those months (revshare_due); the server's settle job then
books each month's difference, once, and the months after it follow as their carry-in does. The
ledger ends as if the claims had never counted."""

import asyncio
import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from clickback.core.commission import Deal, DealKind, RevShareTerms, Tier, TierBasis, period_bounds
from clickback.store.catalog import terms_to_json
from clickback.store.db import connect
from clickback.store.migrate import upgrade
from clickback.store.tables import (
    advertisers,
    affiliates,
    commissions,
    conversions,
    deals,
    offers,
    revshare_due,
    revshare_periods,
)
from tests.conftest import API_KEY, BACKENDS, scratch_database, serve, settings_for
from tests.store.test_migrations import as_at_0027
from tests.web.test_commissions import month
from tests.web.test_outbound import eventually

# 20% of the month's NGR, 40% once it has two first deposits; a negative month carries over.
TERMS = RevShareTerms(Decimal(20), (Tier(Decimal(2), Decimal(40)),), TierBasis.FTDS, negative_carryover=True)
TERMS_TEXT = terms_to_json(Deal(DealKind.REVSHARE, "EUR", revshare=TERMS))
ALICE, BOB, OFFER = 1, 2, 1
# Two months ago Alice's pixel claimed a second first deposit (40% instead of 20%); last month it
# claimed NGR 100,000 over a real month of -500, whose deficit should have carried into this one.
TIERED, FORGED, RUNNING = month(-2), month(-1), month(0)
WHY = "recomputed: pixel claims no longer count"


@pytest.mark.parametrize("by", ["settle_job", "settle_endpoint"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_months_booked_on_pixel_claims_book_their_difference_once(
    backend: str, by: str, tmp_path: Path
) -> None:
    with scratch_database(backend, tmp_path) as url:
        due = asyncio.run(booked_at_0027_then_migrated(url))
        assert due == [(ALICE, OFFER, TIERED), (ALICE, OFFER, FORGED)]

        auth = {"Authorization": f"Bearer {API_KEY}"}
        serving = contextlib.contextmanager(serve)
        # Two server processes on the database, as behind a load balancer.
        with (
            serving(settings_for(url, tmp_path / "one")) as one,
            serving(settings_for(url, tmp_path / "two")) as two,
            httpx.Client(base_url=one.base_url, headers=auth) as http,
            httpx.Client(base_url=two.base_url, headers=auth) as other,
        ):
            if by == "settle_job":
                # Each process runs it once a minute, the first time as it starts.
                eventually(lambda: asyncio.run(months_now(url))[1] == 0, timeout=10)
            else:
                # Both at once, their own jobs perhaps first: each month booked by one of them.
                with ThreadPoolExecutor(2) as pool:
                    answers = list(pool.map(lambda c: c.post("/api/commissions/settle"), (http, other)))
                assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
            entries = ledger(http)
            again = http.post("/api/commissions/settle")
            assert again.json()["recomputed"] == 0
            assert ledger(http) == entries

        months, left = asyncio.run(months_now(url))

    alice = {period: amount for (who, period), amount in sums(entries).items() if who == ALICE}
    # What the months would have booked without the claims: 20% of 1,000; nothing, a deficit of
    # 500 carried; 20% of 1,000 - 500.
    assert alice == {TIERED: Decimal(200), FORGED: Decimal(0), RUNNING: Decimal(100)}
    corrections = [e for e in entries if e["detail"].endswith(WHY)]
    assert [(e["period"], Decimal(e["amount"]), e["status"]) for e in corrections] == [
        (TIERED, Decimal(-200), "approved"),
        (FORGED, Decimal(-19900), "approved"),
        (RUNNING, Decimal(-100), "pending"),
    ]
    # Caused by the claims, as a rejected report's entry is by the report.
    assert [e["conversion_id"] for e in corrections] == [3, 5, 5]
    assert months[ALICE, FORGED] == (Decimal(-500), 0, Decimal(0), Decimal(0), Decimal(-500))
    assert months[ALICE, RUNNING] == (Decimal(1000), 0, Decimal(-500), Decimal(100), Decimal(0))
    # A month with no claims is not touched.
    assert [Decimal(e["amount"]) for e in entries if e["affiliate_id"] == BOB] == [Decimal(100)]
    assert months[BOB, FORGED] == (Decimal(500), 1, Decimal(0), Decimal(100), Decimal(0))
    assert left == 0


def ledger(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/api/commissions", params={"kind": "revshare", "limit": 1000})
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda e: e["id"])


def sums(entries: list[dict[str, Any]]) -> dict[tuple[int, str], Decimal]:
    found: dict[tuple[int, str], Decimal] = {}
    for e in entries:
        key = (e["affiliate_id"], e["period"])
        found[key] = found.get(key, Decimal(0)) + Decimal(e["amount"])
    return found


def mid(period: str) -> datetime:
    """A moment in the month (this month's first hour: no later than now)."""
    return period_bounds(period)[0] + timedelta(hours=1)


async def booked_at_0027_then_migrated(url: str) -> list[tuple[int, int, str]]:
    """The months as the code before 0028 booked them, then 0028: the months it lists."""
    db = connect(url)
    try:
        await upgrade(db, "0027")
        async with db.write() as conn:
            await conn.execute(insert(advertisers), [advertiser()])
            await conn.execute(insert(offers), [offer()])
            await conn.execute(insert(affiliates), [affiliate(ALICE, "Alice"), affiliate(BOB, "Bob")])
            await conn.execute(insert(deals), [deal(ALICE), deal(BOB)])
            await conn.execute(insert(conversions), claims_and_reports())
            await conn.execute(insert(revshare_periods), kept_months())
            await conn.execute(insert(commissions), entries_booked())
        await upgrade(db)
        async with db.read() as conn:
            d = revshare_due.c
            rows = await conn.execute(select(d.affiliate_id, d.offer_id, d.period).order_by(d.period))
            return [tuple(r) for r in rows]
    finally:
        await db.close()


async def months_now(
    url: str,
) -> tuple[dict[tuple[int, str], tuple[Decimal, int, Decimal, Decimal, Decimal]], int]:
    db = connect(url)
    try:
        async with db.read() as conn:
            r = revshare_periods.c
            rows = await conn.execute(
                select(r.affiliate_id, r.period, r.ngr, r.ftds, r.carry_in, r.earnings, r.carry_out)
            )
            left = len((await conn.execute(select(revshare_due))).all())
            return {(row[0], row[1]): tuple(row[2:]) for row in rows}, left
    finally:
        await db.close()


AT = datetime(2026, 1, 1, tzinfo=UTC)


def advertiser() -> dict[str, Any]:
    return {"id": 1, "name": "Northstar", "token": "t" * 32, "status": "active", "created_at": AT}


def offer() -> dict[str, Any]:
    return {
        "id": OFFER,
        "advertiser_id": 1,
        "name": "Casino",
        "url_template": "https://casino.example.com/go?cid={click_id}",
        "currency": "EUR",
        "status": "active",
        "payouts": json.dumps({}),
        "custom_events": json.dumps([]),
        "created_at": AT,
    }


def affiliate(affiliate_id: int, name: str) -> dict[str, Any]:
    return {"id": affiliate_id, "name": name, "status": "active", "created_at": AT}


def deal(affiliate_id: int) -> dict[str, Any]:
    return {
        "offer_id": OFFER,
        "affiliate_id": affiliate_id,
        "kind": "revshare",
        "currency": "EUR",
        "terms": TERMS_TEXT,
        "created_at": AT,
        "updated_at": AT,
    }


def claims_and_reports() -> list[dict[str, Any]]:
    def conversion(
        n: int, affiliate_id: int, event: str, period: str, amount: Decimal | None, channel: str
    ) -> dict[str, Any]:
        return as_at_0027(
            id=n,
            dedupe_key=f"k{n}",
            dedupe_event=event,
            event=event,
            status="pending" if channel == "pixel" else "approved",
            channel=channel,
            affiliate_id=affiliate_id,
            offer_id=OFFER,
            period=period if event == "net_revenue" else None,
            event_at=mid(period),
            deal_amount=amount,
            deal_currency="EUR" if amount is not None else None,
        )

    return [
        conversion(1, ALICE, "first_deposit", TIERED, None, "s2s"),
        conversion(2, ALICE, "net_revenue", TIERED, Decimal(1000), "s2s"),
        conversion(3, ALICE, "first_deposit", TIERED, None, "pixel"),  # the claim: a second FTD
        conversion(4, ALICE, "net_revenue", FORGED, Decimal(-500), "s2s"),
        conversion(5, ALICE, "net_revenue", FORGED, Decimal(100000), "pixel"),  # the claim
        conversion(6, ALICE, "net_revenue", RUNNING, Decimal(1000), "s2s"),
        conversion(7, BOB, "first_deposit", FORGED, None, "s2s"),
        conversion(8, BOB, "net_revenue", FORGED, Decimal(500), "s2s"),
    ]


def kept_months() -> list[dict[str, Any]]:
    def kept(
        affiliate_id: int, period: str, ngr: int, ftds: int, percent: int, earnings: int
    ) -> dict[str, Any]:
        return {
            "affiliate_id": affiliate_id,
            "offer_id": OFFER,
            "period": period,
            "currency": "EUR",
            "ngr": Decimal(ngr),
            "ftds": ftds,
            "carry_in": Decimal(0),
            "percent": str(percent),
            "earnings": Decimal(earnings),
            "carry_out": Decimal(0),
            "updated_at": mid(period),
            "terms": TERMS_TEXT,
        }

    # With the claims, as the code before 0028 kept them: no deficit anywhere.
    return [
        kept(ALICE, TIERED, 1000, 2, 40, 400),
        kept(ALICE, FORGED, 99500, 0, 20, 19900),
        kept(ALICE, RUNNING, 1000, 0, 20, 200),
        kept(BOB, FORGED, 500, 1, 20, 100),
    ]


def entries_booked() -> list[dict[str, Any]]:
    def entry(affiliate_id: int, period: str, amount: int, cause: int) -> dict[str, Any]:
        return {
            "kind": "revshare",
            "affiliate_id": affiliate_id,
            "offer_id": OFFER,
            "conversion_id": cause,
            "period": period,
            "amount": Decimal(amount),
            "currency": "EUR",
            "status": "pending" if period == RUNNING else "approved",
            "detail": "booked before 0028",
            "created_at": mid(period),
            "updated_at": mid(period),
        }

    return [
        entry(ALICE, TIERED, 200, 2),
        entry(ALICE, TIERED, 200, 3),  # the second FTD raised the month to 40%
        entry(ALICE, FORGED, 19900, 5),
        entry(ALICE, RUNNING, 200, 6),
        entry(BOB, FORGED, 100, 8),
    ]
