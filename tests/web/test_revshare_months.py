"""RevShare months with negative carryover, whatever order, corrections and disputes reports come in."""

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from clickback.core.commission import RevShareTerms, Tier, TierBasis, revshare_period
from clickback.store import ledger
from clickback.store.tables import revshare_periods
from tests.conftest import BROWSER_UA, Client, World
from tests.web.test_commissions import EARLIEST_MONTH, LONG_AGO, deal, month, register, send, statement

# Every month that has ended and is still within the maximum event age.
MONTHS = [month(n) for n in range(EARLIEST_MONTH, 0)]
FIVE_AGO, FOUR_AGO, THREE_AGO, TWO_AGO = (month(n) for n in (-5, -4, -3, -2))
BROWSER = {"user-agent": BROWSER_UA}


def booked(client: Client, affiliate: dict[str, Any], period: str) -> Decimal:
    entries = client.items(
        "/commissions", affiliate_id=affiliate["id"], period=period, kind="revshare", limit=1000
    )
    return sum((Decimal(e["amount"]) for e in entries), Decimal(0))


def month_line(client: Client, affiliate: dict[str, Any], period: str) -> dict[str, Any] | None:
    lines = statement(client, affiliate, period)["lines"]
    return lines[0] if lines else None


def test_a_late_report_for_a_month_without_one_reaches_the_months_after_it(
    client: Client, world: World
) -> None:
    deal(
        client, world.casino, {"kind": "revshare", "revshare": {"percent": "25", "negative_carryover": True}}
    )
    register(client, world, world.alice_casino, "P", clicked_at=LONG_AGO)
    send(client, world, event="ngr", player_id="P", payout="-1000", period=FOUR_AGO, txn_id="AUG")
    send(client, world, event="ngr", player_id="P", payout="3000", period=TWO_AGO, txn_id="OCT")
    assert booked(client, world.alice, TWO_AGO) == Decimal("500.00")  # 3000 - 1000 carried in

    late = send(client, world, event="ngr", player_id="P", payout="1200", period=THREE_AGO, txn_id="SEP")

    september, october = (
        month_line(client, world.alice, THREE_AGO),
        month_line(client, world.alice, TWO_AGO),
    )
    assert september is not None and october is not None
    assert (september["carry_in"], september["revshare_earnings"], september["carry_out"]) == (
        "-1000.00",
        "50.00",
        "0.00",
    )
    assert (october["carry_in"], october["revshare_earnings"], october["carry_out"]) == (
        "0.00",
        "750.00",
        "0.00",
    )
    assert booked(client, world.alice, TWO_AGO) == Decimal("750.00")
    cascaded = client.items("/commissions", period=TWO_AGO, conversion_id=late.json()["conversion_id"])
    assert [e["amount"] for e in cascaded] == ["250.00"]


def test_a_month_that_only_carries_a_deficit_has_its_statement_line(client: Client, world: World) -> None:
    deal(
        client, world.casino, {"kind": "revshare", "revshare": {"percent": "25", "negative_carryover": True}}
    )
    register(client, world, world.alice_casino, "P", clicked_at=LONG_AGO)
    send(client, world, event="ngr", player_id="P", payout="-400", period=FIVE_AGO, txn_id="JUL")

    august = month_line(client, world.alice, FOUR_AGO)

    assert august is not None
    assert (august["ngr"], august["carry_in"], august["revshare_earnings"], august["carry_out"]) == (
        "0.00",
        "-400.00",
        "0.00",
        "-400.00",
    )


def test_ngr_is_shown_under_a_cpa_only_deal(client: Client, world: World) -> None:
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "50", "ftd_min": "10"}})
    register(client, world, world.alice_casino, "P", clicked_at=LONG_AGO)
    send(client, world, event="ngr", player_id="P", payout="-120.5", period=THREE_AGO, txn_id="N")

    line = month_line(client, world.alice, THREE_AGO)

    assert line is not None
    assert (
        line["deal"],
        line["ngr"],
        line["revshare_percent"],
        line["carry_in"],
        line["revshare_earnings"],
    ) == (
        "cpa",
        "-120.50",
        None,
        None,
        None,
    )


# One step of an advertiser's NGR reporting: a new report (or an adjustment) for a month, or a
# status change of an earlier report (a dispute, its reversal, a cancellation); or the pixel's
# claim of a report for a month (anyone can fire it, with any amount), and a person's approval of
# an earlier report. A status postback of a pixel's claim is the server confirming it.
step = st.one_of(
    st.tuples(st.sampled_from(["report", "pixel"]), st.sampled_from(MONTHS), st.integers(-2000, 2000)),
    st.tuples(
        st.sampled_from(["rejected", "approved", "cancelled", "by_hand"]), st.integers(0, 20), st.just(0)
    ),
)
TERMS = RevShareTerms(
    Decimal(30), (Tier(Decimal(1500), Decimal(40)),), TierBasis.NGR, negative_carryover=True
)
_affiliates = itertools.count()


def counted(report: dict[str, Any]) -> bool:
    """Whether a report counts in its month: it stands, and is no unconfirmed pixel claim."""
    return report["status"] in ("pending", "approved") and report["confirmed"]


def kept_and_from_scratch(
    client: Client, affiliate: dict[str, Any], offer: dict[str, Any]
) -> list[tuple[tuple[Decimal, int], tuple[Decimal, int]]]:
    """Each booked month's NGR and FTDs as kept on its row, beside a count from scratch."""

    async def read() -> list[tuple[tuple[Decimal, int], tuple[Decimal, int]]]:
        async with client.node.runtime.db.read() as conn:
            mine = (revshare_periods.c.affiliate_id == affiliate["id"]) & (
                revshare_periods.c.offer_id == offer["id"]
            )
            rows = (await conn.execute(select(revshare_periods).where(mine))).all()
            return [
                (
                    (row.ngr, row.ftds),
                    await conn.run_sync(
                        ledger.month_inputs, affiliate["id"], offer["id"], row.period, row.currency
                    ),
                )
                for row in rows
            ]

    return client.node.call(read)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=4, max_size=12))
def test_revshare_months_always_equal_a_computation_from_scratch(
    client: Client, world: World, steps: list[tuple[str, Any, int]]
) -> None:
    """Reports out of order, adjustments, disputes won and lost, pixel claims confirmed by the
    server, approved by a person or neither: each month's booked RevShare is a from-scratch
    computation over what stands and is confirmed, each month's kept NGR is a count from scratch,
    and each month's carry-in is the month before's carry-out, on every month's statement."""
    affiliate = client.api("POST", "/affiliates", json={"name": f"Prop {next(_affiliates)}"})
    link = client.api(
        "POST", "/links", json={"affiliate_id": affiliate["id"], "offer_id": world.casino["id"]}
    )
    tiers = [{"threshold": "1500", "percent": "40"}]
    terms = {"percent": "30", "tiers": tiers, "tier_basis": "ngr", "negative_carryover": True}
    deal(client, world.casino, {"kind": "revshare", "revshare": terms}, affiliate=affiliate)
    pixel = client.api("PUT", f"/offers/{world.casino['id']}/pixel", json={"enabled": True})["pixel_url"]
    pixel = str(pixel).partition("?")[0].removeprefix("http://127.0.0.1")
    player = f"prop-{affiliate['id']}"
    click_id = register(client, world, link["code"], player, clicked_at=LONG_AGO)
    reports: list[dict[str, Any]] = []
    for kind, target, amount in steps:
        if kind in ("report", "pixel"):
            txn = f"{player}-{len(reports)}"
            report = {"txn": txn, "period": target, "amount": Decimal(amount), "channel": kind}
            if kind == "report":
                reply = send(
                    client,
                    world,
                    event="ngr",
                    player_id=player,
                    payout=str(amount),
                    period=target,
                    txn_id=txn,
                )
                report |= {"status": "approved", "confirmed": True, "id": reply.json().get("conversion_id")}
            else:
                params = {"click_id": click_id, "event": "ngr", "txn_id": txn, "payout": str(amount)}
                reply = client.http.get(pixel, params={**params, "period": target}, headers=BROWSER)
                assert reply.headers["x-clickback-result"] == "accepted", reply.headers
                claims = client.items("/conversions", affiliate_id=affiliate["id"], channel="pixel")
                # What the server would state: not what the browser wrote.
                server = Decimal(amount) // 2 - 100
                report |= {"status": "pending", "confirmed": False, "id": max(c["id"] for c in claims)}
                report["server"] = server
            reports.append(report)
        elif not reports:
            continue
        elif kind == "by_hand":
            report = reports[target % len(reports)]
            reply = client.http.post(
                f"/api/conversions/{report['id']}/status",
                json={"status": "approved", "reason": "checked"},
                headers=client.auth,
            )
            if reply.status_code == 200:
                report |= {"status": "approved", "confirmed": True}
        else:
            report = reports[target % len(reports)]
            confirming = report["channel"] == "pixel" and "server" in report
            extra = {"payout": str(report["server"])} if confirming else {}
            reply = send(
                client,
                world,
                event="ngr",
                player_id=player,
                txn_id=report["txn"],
                status=kind,
                period=report["period"],
                **extra,
            )
            if reply.json()["result"] == "updated":
                report["status"] = kind
                if confirming:
                    # Confirmed once: the server's amount; its later postbacks are its repeats.
                    report |= {"confirmed": True, "amount": report.pop("server")}
        assert reply.status_code in (200, 409), reply.text

    carry, previous_out = Decimal(0), "0.00"
    for period in MONTHS:
        ngr = sum((r["amount"] for r in reports if r["period"] == period and counted(r)), Decimal(0))
        expected = revshare_period(TERMS, "EUR", ngr, 0, carry)
        carry = expected.carry_out
        assert booked(client, affiliate, period) == expected.earnings, (period, reports)
        line = month_line(client, affiliate, period)
        if expected.carry_in or expected.earnings or ngr:
            assert line is not None, (period, reports)
        if line is not None:
            assert line["carry_in"] == previous_out, (period, reports)
            assert Decimal(line["revshare_earnings"]) == expected.earnings
            previous_out = line["carry_out"]
        else:
            previous_out = "0.00"
    for kept, from_scratch in kept_and_from_scratch(client, affiliate, world.casino):
        assert kept == from_scratch, reports


def test_a_rejected_first_deposit_leaves_its_months_ftd_count(client: Client, world: World) -> None:
    tiers = [{"threshold": "2", "percent": "40"}]
    deal(
        client,
        world.casino,
        {"kind": "revshare", "revshare": {"percent": "20", "tiers": tiers, "tier_basis": "ftds"}},
    )
    for player in ("A", "B"):
        register(client, world, world.alice_casino, player)
        send(client, world, event="deposit", player_id=player, payout="10", txn_id="D-" + player)
    send(client, world, event="ngr", player_id="A", payout="100", txn_id="N")
    this_month = statement(client, world.alice)["lines"][0]
    assert (this_month["ftds"], this_month["revshare_percent"], this_month["revshare_earnings"]) == (
        2,
        "40",
        "40.00",
    )

    send(client, world, event="deposit", player_id="B", txn_id="D-B", status="rejected")

    line = statement(client, world.alice)["lines"][0]
    assert (line["ftds"], line["revshare_percent"], line["revshare_earnings"]) == (1, "20", "20.00")


def test_revshare_paid_from_mid_month_counts_the_months_earlier_reports(client: Client, world: World) -> None:
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "50", "ftd_min": "10"}})
    register(client, world, world.alice_casino, "P", clicked_at=LONG_AGO)
    send(client, world, event="ngr", player_id="P", payout="300", period=THREE_AGO, txn_id="N1")

    deal(client, world.casino, {"kind": "hybrid", "revshare": {"percent": "10"}})
    send(client, world, event="ngr", player_id="P", payout="200", period=THREE_AGO, txn_id="N2")

    line = month_line(client, world.alice, THREE_AGO)
    assert line is not None
    assert (line["ngr"], line["revshare_earnings"]) == ("500.00", "50.00")
