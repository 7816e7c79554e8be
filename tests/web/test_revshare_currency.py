"""A RevShare month priced in one currency when its deal changes currency, over HTTP postbacks, on
both databases: the currency its row was first booked in (docs/commissions.md)."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update

from clickback.core.commission import period_bounds
from clickback.store.tables import fx_rates, revshare_due, revshare_periods
from tests.conftest import Client, Node, World, make_world
from tests.conftest import _wipe as wipe
from tests.web.test_commissions import (
    LONG_AGO,
    THIS_MONTH,
    deal,
    ledger,
    month,
    register,
    send,
    statement,
)

# A day before every month these tests report: EUR→USD 1.25 from then on (USD→EUR 0.8).
EARLY = period_bounds(month(-7))[0].date()
REVSHARE_25 = {"kind": "revshare", "revshare": {"percent": "25", "negative_carryover": True}}


def rate(client: Client, base: str, quote: str, value: str, day: Any = EARLY) -> None:
    client.api(
        "POST", "/fx-rates", json={"base": base, "quote": quote, "day": day.isoformat(), "rate": value}
    )


def ngr(client: Client, world: World, txn: str, amount: str, **more: str) -> dict[str, Any]:
    reply = send(client, world, event="ngr", player_id="P", payout=amount, txn_id=txn, **more)
    assert reply.status_code == 200 and reply.json()["result"] in ("accepted", "updated"), reply.text
    return dict(reply.json())


def conversion(client: Client, reply: dict[str, Any]) -> tuple[str, str]:
    found = client.api("GET", f"/conversions/{reply['conversion_id']}")
    return found["deal_amount"], found["deal_currency"]


def month_row(client: Client, period: str) -> tuple[str, Decimal, Decimal, Decimal]:
    """The month's revshare_periods row: currency, NGR, carry-in, earnings."""

    async def read() -> Any:
        async with client.node.runtime.db.read() as conn:
            r = revshare_periods.c
            query = select(r.currency, r.ngr, r.carry_in, r.earnings).where(r.period == period)
            return (await conn.execute(query)).one()

    row = client.node.call(read)
    return row.currency, row.ngr, row.carry_in, row.earnings


def booked(client: Client, period: str) -> dict[str, Decimal]:
    """The month's RevShare entries summed per currency."""
    sums: dict[str, Decimal] = {}
    for e in ledger(client, kind="revshare", period=period):
        sums[e["currency"]] = sums.get(e["currency"], Decimal(0)) + Decimal(e["amount"])
    return sums


def correct_month(client: Client, world: World, period: str, ngr: Decimal, cause: int) -> None:
    """Alice's casino month corrected to `ngr` as a migration does: its kept NGR changed and the
    month listed in revshare_due for the settle job."""

    async def corrected() -> None:
        async with client.node.runtime.db.write() as conn:
            r = revshare_periods.c
            await conn.execute(update(revshare_periods).where(r.period == period).values(ngr=ngr))
            due = {"conversion_id": cause, "why": "recomputed: a test's correction"}
            keys = {"affiliate_id": world.alice["id"], "offer_id": world.casino["id"], "period": period}
            await conn.execute(insert(revshare_due).values(**keys, **due))

    client.node.call(corrected)


def line_of(client: Client, world: World, period: str) -> dict[str, Any]:
    (line,) = statement(client, world.alice, period)["lines"]
    return line


def revshare_deal_then_usd(client: Client, world: World, terms: dict[str, Any] = REVSHARE_25) -> None:
    deal(client, world.casino, terms)
    register(client, world, world.alice_casino, "P", clicked_at=LONG_AGO)


def test_reports_after_a_change_of_currency_are_priced_in_the_running_months_currency(
    client: Client, world: World
) -> None:
    """The month was booked in EUR: a report after the deal moved to USD, sent in EUR or in USD,
    adds euros to it, never dollars; its RevShare is booked in EUR, one line on the statement."""
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world)
    ngr(client, world, "N1", "-100")

    deal(client, world.casino, {"currency": "USD"})
    in_eur = ngr(client, world, "N2", "300")
    in_usd = ngr(client, world, "N3", "125", currency="USD")

    # -100 + 300 + 125 USD (100 EUR) = 300 EUR at 25 %.
    assert conversion(client, in_eur) == ("300.00", "EUR")
    assert conversion(client, in_usd) == ("100.00", "EUR")
    assert month_row(client, THIS_MONTH) == ("EUR", Decimal(300), Decimal(0), Decimal(75))
    assert booked(client, THIS_MONTH) == {"EUR": Decimal("75.00")}
    month_statement = statement(client, world.alice)
    assert [(ln["currency"], ln["ngr"], ln["revshare_earnings"]) for ln in month_statement["lines"]] == [
        ("EUR", "300.00", "75.00")
    ]
    assert month_statement["totals"] == {"EUR": "75.00"}
    csv = client.http.get(
        f"/api/statements/{world.alice['id']}/{THIS_MONTH}", params={"format": "csv"}, headers=client.auth
    )
    (row,) = csv.text.strip().split("\r\n")[1:]
    assert row.split(",")[2:3] == ["EUR"] and row.endswith(",75.00")


def test_a_late_report_for_a_month_that_ended_before_the_change_keeps_its_currency(
    client: Client, world: World
) -> None:
    """A month that ended in EUR stays in EUR; the first month booked after the change is in USD."""
    ended = month(-1)
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world, {"kind": "revshare", "revshare": {"percent": "25"}})
    ngr(client, world, "N1", "1000", period=ended)

    deal(client, world.casino, {"currency": "USD"})
    late_eur = ngr(client, world, "N2", "100", period=ended)
    late_usd = ngr(client, world, "N3", "50", currency="USD", period=ended)
    running = ngr(client, world, "N4", "1000", period=THIS_MONTH)

    assert (conversion(client, late_eur), conversion(client, late_usd)) == (
        ("100.00", "EUR"),
        ("40.00", "EUR"),
    )
    assert conversion(client, running) == ("1250.00", "USD")
    assert booked(client, ended) == {"EUR": Decimal("285.00")}  # 1140 EUR at 25 %
    assert booked(client, THIS_MONTH) == {"USD": Decimal("312.50")}
    before, after = line_of(client, world, ended), line_of(client, world, THIS_MONTH)
    assert (before["currency"], before["ngr"], before["revshare_earnings"]) == ("EUR", "1140.00", "285.00")
    assert (after["currency"], after["ngr"], after["revshare_earnings"]) == ("USD", "1250.00", "312.50")


def test_a_report_rejected_after_the_change_is_reversed_in_its_months_currency(
    client: Client, world: World
) -> None:
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world)
    ngr(client, world, "N1", "1000")
    deal(client, world.casino, {"currency": "USD"})
    added = ngr(client, world, "N2", "500", currency="USD")  # 400 EUR

    ngr(client, world, "N2", "500", currency="USD", status="rejected")

    reversal, original, first = ledger(client, kind="revshare")
    assert [(e["amount"], e["currency"]) for e in (first, original, reversal)] == [
        ("250.00", "EUR"),
        ("100.00", "EUR"),
        ("-100.00", "EUR"),
    ]
    assert (original["conversion_id"], reversal["conversion_id"]) == (added["conversion_id"],) * 2
    assert reversal["reverses_id"] == original["id"]
    assert month_row(client, THIS_MONTH) == ("EUR", Decimal(1000), Decimal(0), Decimal(250))
    line = line_of(client, world, THIS_MONTH)
    assert (line["currency"], line["ngr"], line["revshare_earnings"]) == ("EUR", "1000.00", "250.00")


def test_a_deficit_carried_into_a_month_of_the_new_currency_is_converted_on_its_first_day(
    client: Client, world: World
) -> None:
    euros, dollars = month(-3), month(-2)
    rate(client, "EUR", "USD", "1.25")
    rate(client, "EUR", "USD", "1.5", period_bounds(dollars)[0].date())
    revshare_deal_then_usd(client, world)
    ngr(client, world, "A", "-400", period=euros)

    deal(client, world.casino, {"currency": "USD"})
    ngr(client, world, "B", "1000", currency="USD", period=dollars)

    # -400 EUR at 1.5 (the rate of the dollar month's first day) is -600 USD: 400 at 25 %.
    assert month_row(client, dollars) == ("USD", Decimal(1000), Decimal(-600), Decimal(100))
    (entry,) = ledger(client, kind="revshare", period=dollars)
    assert (entry["amount"], entry["currency"]) == ("100.00", "USD")
    assert "carry-in -600.00 (-400.00 EUR at 1.5)" in entry["detail"]

    # A late report halves the euro deficit: the dollar month gets half of it, converted again.
    late = ngr(client, world, "A2", "200", period=euros)

    assert month_row(client, euros) == ("EUR", Decimal(-200), Decimal(0), Decimal(0))
    assert month_row(client, dollars) == ("USD", Decimal(1000), Decimal(-300), Decimal(175))
    (cascaded,) = ledger(client, kind="revshare", period=dollars, conversion_id=late["conversion_id"])
    assert (cascaded["amount"], cascaded["currency"]) == ("75.00", "USD")
    before, after = line_of(client, world, euros), line_of(client, world, dollars)
    assert (before["currency"], before["carry_out"]) == ("EUR", "-200.00")
    assert (after["currency"], after["carry_in"], after["revshare_earnings"]) == ("USD", "-300.00", "175.00")


def test_ngr_tiers_of_a_deal_in_another_currency_are_converted_into_the_months(
    client: Client, world: World
) -> None:
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world, {"kind": "revshare", "revshare": {"percent": "25"}})
    ngr(client, world, "N1", "500")

    tiers = [{"threshold": "1000", "percent": "40"}]  # USD: 800 EUR
    deal(client, world.casino, {"currency": "USD", "revshare": {"tiers": tiers, "tier_basis": "ngr"}})
    ngr(client, world, "N2", "400")

    line = line_of(client, world, THIS_MONTH)
    assert (line["currency"], line["ngr"], line["revshare_percent"]) == ("EUR", "900.00", "40")
    assert booked(client, THIS_MONTH) == {"EUR": Decimal("360.00")}


def test_a_report_needing_a_rate_not_on_record_is_refused_and_nothing_recorded(
    client: Client, world: World
) -> None:
    revshare_deal_then_usd(client, world)
    ngr(client, world, "N1", "100")
    deal(client, world.casino, {"currency": "USD"})
    today_entries = ledger(client)

    refused = send(client, world, event="ngr", player_id="P", payout="50", currency="USD", txn_id="N2")

    assert (refused.status_code, refused.json()["reason"]) == (422, "missing_exchange_rate")
    assert refused.json()["detail"].startswith("USD→EUR on ")
    assert [c["txn_id"] for c in client.items("/conversions", event="net_revenue")] == ["N1"]
    assert ledger(client) == today_entries
    assert month_row(client, THIS_MONTH) == ("EUR", Decimal(100), Decimal(0), Decimal(25))
    (logged,) = client.items("/postbacks", reason="missing_exchange_rate")
    assert logged["result"] == "rejected"


def test_a_deficit_that_cannot_be_converted_refuses_the_months_reports_until_a_rate_exists(
    client: Client, world: World
) -> None:
    euros, dollars = month(-3), month(-2)
    revshare_deal_then_usd(client, world)
    ngr(client, world, "A", "-400", period=euros)
    deal(client, world.casino, {"currency": "USD"})
    first_day = period_bounds(dollars)[0].date()

    refused = send(
        client, world, event="ngr", player_id="P", payout="1000", currency="USD", period=dollars, txn_id="B"
    )

    assert (refused.status_code, refused.json()["reason"]) == (422, "missing_exchange_rate")
    assert refused.json()["detail"].startswith(f"EUR→USD on {first_day.isoformat()}")
    assert [c["txn_id"] for c in client.items("/conversions", event="net_revenue")] == ["A"]
    assert ledger(client, period=dollars) == []

    rate(client, "USD", "EUR", "0.5", first_day - timedelta(days=3))  # inverted: EUR→USD 2
    ngr(client, world, "B", "1000", currency="USD", period=dollars)

    assert month_row(client, dollars) == ("USD", Decimal(1000), Decimal(-800), Decimal(50))


def test_a_deficit_that_could_not_be_converted_when_a_click_landed_is_carried_once_a_rate_exists(
    client: Client, world: World
) -> None:
    """A report attributed only when its click lands can no longer be refused: its month is booked
    without the deficit it cannot convert, and says so; the next recomputation after the rate is
    on record carries it."""
    euros = month(-3)
    revshare_deal_then_usd(client, world)
    ngr(client, world, "A", "-400", period=euros)
    deal(client, world.casino, {"currency": "USD"})
    with client.node.writer_held():
        click_id = client.click(world.alice_casino)
        send(client, world, click_id=click_id, event="reg", player_id="Q")
        waiting = send(client, world, event="ngr", player_id="Q", payout="1000", currency="USD", txn_id="Q1")
        assert waiting.json()["result"] == "accepted" and ledger(client, period=THIS_MONTH) == []
    client.flush()  # the click lands: the report is attributed and priced

    first_day = period_bounds(THIS_MONTH)[0].date()
    (uncarried,) = ledger(client, period=THIS_MONTH)
    assert (uncarried["amount"], uncarried["currency"]) == ("250.00", "USD")
    assert f"(-400.00 EUR not converted: no EUR→USD rate on {first_day.isoformat()})" in uncarried["detail"]

    rate(client, "EUR", "USD", "1.5", first_day)
    send(client, world, event="ngr", player_id="Q", payout="100", currency="USD", txn_id="Q2")

    # 1100 USD less 600 USD (-400 EUR at 1.5): 500 at 25 %.
    assert month_row(client, THIS_MONTH) == ("USD", Decimal(1100), Decimal(-600), Decimal(125))
    assert booked(client, THIS_MONTH) == {"USD": Decimal("125.00")}


def test_a_month_the_settle_job_recomputes_after_the_change_books_in_its_currency(
    client: Client, world: World
) -> None:
    """A month a migration corrected (revshare_due) is recomputed by the settle job through the
    same path as a postback: in the currency it was booked in, whatever the deal's now."""
    ended = month(-1)
    revshare_deal_then_usd(client, world)
    first = ngr(client, world, "N1", "1000", period=ended)
    deal(client, world.casino, {"currency": "USD"})

    correct_month(client, world, ended, Decimal(800), first["conversion_id"])
    assert client.api("POST", "/commissions/settle")["recomputed"] == 1

    correction, _ = ledger(client, kind="revshare", period=ended)
    assert (correction["amount"], correction["currency"]) == ("-50.00", "EUR")
    assert correction["detail"].endswith("recomputed: a test's correction")
    assert month_row(client, ended) == ("EUR", Decimal(800), Decimal(0), Decimal(200))


def test_a_month_another_process_booked_in_another_currency_is_seen_after_the_deal_changes_back(
    client: Client, world: World, second_node: Node
) -> None:
    """A process remembers the currencies of the months it read (Recording.in_one_currency) for
    the catalog version it read them under. Here it read only euro months; another process then
    booked a dollar month while the deal was in USD, and the deal went back to EUR: all it
    remembers is in the deal's currency again, but a late euro report must still see the dollar
    month, whose carry-in now needs a rate that is not on record."""
    euros, dollars = month(-3), month(-2)
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world)
    ngr(client, world, "A", "-400", period=euros)
    ngr(client, world, "A1", "-100", period=euros)  # read with the euro month booked: remembered
    deal(client, world.casino, {"currency": "USD"})
    second_node.call(second_node.runtime.catalog.refresh)
    other = Client(second_node)
    booked_there = send(
        other, world, event="ngr", player_id="P", payout="1000", currency="USD", txn_id="B", period=dollars
    )
    assert booked_there.json()["result"] == "accepted", booked_there.text
    other.http.close()
    assert month_row(client, dollars)[0] == "USD"
    deal(client, world.casino, {"currency": "EUR"})

    async def forget_rates() -> None:
        async with client.node.runtime.db.write() as conn:
            await conn.execute(delete(fx_rates))

    client.node.call(forget_rates)

    late = send(client, world, event="ngr", player_id="P", payout="100", txn_id="A2", period=euros)

    assert (late.status_code, late.json()["reason"]) == (422, "missing_exchange_rate"), late.text
    assert "the deficit carried into RevShare month " + dollars in late.json()["detail"]


# 20 %, 40 % from 1,000 of NGR (in the deal's currency).
NGR_TIERS = {
    "kind": "revshare",
    "revshare": {"percent": "20", "tiers": [{"threshold": "1000", "percent": "40"}], "tier_basis": "ngr"},
}


def test_an_ended_month_first_booked_in_another_currency_converts_the_deals_ngr_tiers(
    client: Client, world: World
) -> None:
    """A rejected report pinned last month to EUR; the deal then moved to USD, its threshold 1,000
    USD (800 EUR). A late 900 EUR books that month for the first time: 40 %, not 20 % as if the
    threshold were 1,000 EUR. And the mirror: pinned to USD, the deal moved to EUR (1,250 USD),
    1,200 USD stays at 20 %."""
    ended = month(-1)
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world, NGR_TIERS)
    ngr(client, world, "N0", "10", period=ended, status="rejected")
    deal(client, world.casino, {"currency": "USD"})

    ngr(client, world, "N1", "900", period=ended)

    assert booked(client, ended) == {"EUR": Decimal("360.00")}
    (entry,) = ledger(client, kind="revshare", period=ended)
    assert "NGR tiers in USD at 0.8" in entry["detail"]


def test_an_ended_month_pinned_to_usd_keeps_a_euro_threshold_converted(client: Client, world: World) -> None:
    ended = month(-1)
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world, {**NGR_TIERS, "currency": "USD"})
    ngr(client, world, "N0", "10", period=ended, status="rejected", currency="USD")
    deal(client, world.casino, {"currency": "EUR"})

    ngr(client, world, "N1", "1200", period=ended, currency="USD")

    assert booked(client, ended) == {"USD": Decimal("240.00")}


def test_tiers_left_out_for_want_of_a_rate_are_applied_once_it_is_on_record(
    client: Client, world: World
) -> None:
    """Without a USD→EUR rate the ended month is priced without its tiers (and says so); they are
    not kept so: the next recomputation, with the rate on record, applies them."""
    ended = month(-1)
    revshare_deal_then_usd(client, world, NGR_TIERS)
    ngr(client, world, "N0", "10", period=ended, status="rejected")
    deal(client, world.casino, {"currency": "USD"})
    ngr(client, world, "N1", "900", period=ended)
    assert booked(client, ended) == {"EUR": Decimal("180.00")}

    rate(client, "USD", "EUR", "0.8")
    ngr(client, world, "N2", "0.01", period=ended)

    assert booked(client, ended) == {"EUR": Decimal("360.00")}


def test_a_month_is_priced_in_its_own_currency_after_the_database_is_emptied(
    client: Client, world: World
) -> None:
    """A process remembers the months' currencies it read for the catalog version it read them
    under: emptied (ids from 1 again, as between tests) and built anew with a USD deal, the same
    affiliate and offer ids price this month in USD, not in the EUR remembered."""
    deal(client, world.casino, REVSHARE_25)
    register(client, world, world.alice_casino, "P", clicked_at=LONG_AGO)
    ngr(client, world, "A", "50")
    ngr(client, world, "B", "100")  # read with the month booked in EUR: remembered
    client.node.call(lambda: wipe(client.node.runtime))
    again = make_world(client)
    assert (again.alice["id"], again.casino["id"]) == (world.alice["id"], world.casino["id"])
    rate(client, "EUR", "USD", "1.25")
    deal(client, again.casino, {**REVSHARE_25, "currency": "USD"})
    register(client, again, again.alice_casino, "P", clicked_at=LONG_AGO)

    reply = ngr(client, again, "C", "100")

    assert conversion(client, reply) == ("125.00", "USD")
    assert month_row(client, THIS_MONTH)[0] == "USD"


def test_a_month_booked_in_the_currency_a_report_pinned_is_seen_by_the_processs_memory(
    client: Client, world: World
) -> None:
    """A report rejected while the deal was in EUR pinned three months ago to EUR. The deal moved
    to USD; the process read last month booked in USD and remembers it. A late report then books
    the euro month in EUR, under the same catalog version: the process must not take every month
    to be in USD still. A report for last month, whose carry-in from the euro month needs a rate
    no longer on record, is refused rather than booked without the deficit."""
    euros, dollars = month(-3), month(-1)
    rate(client, "EUR", "USD", "1.25")
    revshare_deal_then_usd(client, world)
    ngr(client, world, "A0", "10", period=euros, status="rejected")
    deal(client, world.casino, {"currency": "USD"})
    ngr(client, world, "B", "1000", currency="USD", period=dollars)
    ngr(client, world, "B1", "1", currency="USD", period=dollars)  # read with it booked: remembered
    ngr(client, world, "A", "-400", period=euros)
    assert month_row(client, euros)[0] == "EUR"
    assert month_row(client, dollars) == ("USD", Decimal(1001), Decimal(-500), Decimal("125.25"))

    async def forget_rates() -> None:
        async with client.node.runtime.db.write() as conn:
            await conn.execute(delete(fx_rates))

    client.node.call(forget_rates)

    late = send(
        client, world, event="ngr", player_id="P", payout="100", currency="USD", txn_id="B2", period=dollars
    )

    assert (late.status_code, late.json().get("reason")) == (422, "missing_exchange_rate"), late.text
    assert "the deficit carried into RevShare month " + dollars in late.json()["detail"]
    assert month_row(client, dollars) == ("USD", Decimal(1001), Decimal(-500), Decimal("125.25"))
