"""A RevShare month that has ended is recomputed by the terms it was priced under whatever the deal
pays now, over HTTP postbacks, on both databases: a late rejection, a late report, a correction a
migration listed, and the carry-in of the months after it, also once the deal is CPA-only."""

from decimal import Decimal

from tests.conftest import Client, World
from tests.web.test_commissions import LONG_AGO, THIS_MONTH, deal, ledger, month, register
from tests.web.test_revshare_currency import booked, correct_month, month_row, ngr

REVSHARE_25 = {"kind": "revshare", "revshare": {"percent": "25", "negative_carryover": True}}
CPA_ONLY = {"kind": "cpa", "cpa": {"amount": "50", "ftd_min": "10"}, "revshare": None}


def revshare_then_cpa(client: Client, world: World) -> None:
    deal(client, world.casino, REVSHARE_25)
    register(client, world, world.alice_casino, "P", clicked_at=LONG_AGO)


def test_a_report_rejected_after_the_deal_became_cpa_only_is_reversed_in_its_ended_month(
    client: Client, world: World
) -> None:
    """Last month was priced at 25 %; the deal is now CPA-only. The advertiser rejects one of last
    month's reports: the 50 it paid is reversed; a late report adds at 25 %; the running month,
    under the CPA deal, books no RevShare."""
    ended = month(-1)
    revshare_then_cpa(client, world)
    ngr(client, world, "N1", "1000", period=ended)
    paid = ngr(client, world, "N2", "200", period=ended)
    assert booked(client, ended) == {"EUR": Decimal("300.00")}
    deal(client, world.casino, CPA_ONLY)

    ngr(client, world, "N2", "200", period=ended, status="rejected")

    assert booked(client, ended) == {"EUR": Decimal("250.00")}
    reversal = ledger(client, kind="revshare", period=ended)[0]
    assert (reversal["amount"], reversal["conversion_id"]) == ("-50.00", paid["conversion_id"])
    assert reversal["reverses_id"] is not None and reversal["status"] == "approved"

    ngr(client, world, "N3", "100", period=ended)
    ngr(client, world, "N4", "500", period=THIS_MONTH)

    assert booked(client, ended) == {"EUR": Decimal("275.00")}
    assert month_row(client, ended) == ("EUR", Decimal(1100), Decimal(0), Decimal(275))
    assert booked(client, THIS_MONTH) == {}


def test_a_correction_listed_for_an_ended_month_is_booked_after_the_deal_became_cpa_only(
    client: Client, world: World
) -> None:
    """A month a migration corrected (revshare_due: a forged claim taken out of its inputs) is
    booked by the settle job at the terms it was priced under, whatever the deal pays now; once."""
    ended = month(-1)
    revshare_then_cpa(client, world)
    first = ngr(client, world, "N1", "1000", period=ended)
    deal(client, world.casino, CPA_ONLY)

    correct_month(client, world, ended, Decimal(800), first["conversion_id"])
    assert client.api("POST", "/commissions/settle")["recomputed"] == 1

    correction, _ = ledger(client, kind="revshare", period=ended)
    assert (correction["amount"], correction["status"]) == ("-50.00", "approved")
    assert correction["detail"].endswith("recomputed: a test's correction")
    assert month_row(client, ended) == ("EUR", Decimal(800), Decimal(0), Decimal(200))
    assert client.api("POST", "/commissions/settle")["recomputed"] == 0
    assert len(ledger(client, kind="revshare", period=ended)) == 2


def test_a_late_report_carries_into_the_ended_months_after_it_under_a_cpa_only_deal(
    client: Client, world: World
) -> None:
    """A deficit carried from three months ago to last month: a late report that wipes it out
    raises last month's RevShare by its kept 25 %. The running month, whose terms the change
    cleared, keeps what it booked before the change: under a CPA-only deal it is not priced."""
    deficit, ended = month(-3), month(-1)
    revshare_then_cpa(client, world)
    ngr(client, world, "A", "-1500", period=deficit)
    ngr(client, world, "B", "1000", period=ended)
    ngr(client, world, "C", "1000", period=THIS_MONTH)
    assert (booked(client, ended), booked(client, THIS_MONTH)) == ({}, {"EUR": Decimal("125.00")})
    deal(client, world.casino, CPA_ONLY)

    late = ngr(client, world, "A2", "1500", period=deficit)

    assert month_row(client, deficit) == ("EUR", Decimal(0), Decimal(0), Decimal(0))
    assert month_row(client, ended) == ("EUR", Decimal(1000), Decimal(0), Decimal(250))
    (entry,) = ledger(client, kind="revshare", period=ended)
    assert (entry["amount"], entry["conversion_id"]) == ("250.00", late["conversion_id"])
    assert booked(client, THIS_MONTH) == {"EUR": Decimal("125.00")}
    assert month_row(client, THIS_MONTH) == ("EUR", Decimal(1000), Decimal(-500), Decimal(125))
