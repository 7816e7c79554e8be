"""The tester's pure rules: parameters as intake reads them, and the commission and outbound
previews of a test click's conversions."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from clickback.core.commission import CpaRules, Deal, DealKind, RevShareTerms, Tier
from clickback.core.lifecycle import Status
from clickback.core.model import NO_NAMES, AdvertiserNames
from clickback.core.outbound import template
from clickback.core.tester import as_one_player, preview_commission, preview_outbound, read_parameters

T0 = datetime(2026, 11, 3, 12, tzinfo=UTC)
D = Decimal


@pytest.mark.parametrize(
    ("pair", "field", "understood"),
    [
        ("cid=abc", "click_id", "abc"),
        ("goal=FTD", "event", "first_deposit"),
        ("goal=dep", "event", "deposit"),  # the advertiser's own name
        ("status=2", "status", "pending"),
        ("cnv_status=declined", "status", "rejected"),
        ("status=maybe", "status", "not a status word: 'maybe'"),
        ("amount=12.50", "payout", "12.50"),
        ("sum=12,50", "payout", "not an amount: '12,50'"),
        ("cur=eur", "currency", "EUR"),
        ("currency=EURO", "currency", "not a currency code: 'EURO'"),
        ("period=2026-13", "period", "not a month (YYYY-MM): '2026-13'"),
        ("secret=***abcd", "token", "the advertiser's token (masked)"),
        ("payot=5", None, "ignored: not a parameter clickback reads"),
    ],
)
def test_each_parameter_is_read_as_intake_reads_it(pair: str, field: str | None, understood: str) -> None:
    names = AdvertiserNames(events={"dep": "deposit"}, statuses={"2": Status.PENDING})
    (parameter,) = read_parameters(pair, names)
    assert (parameter.field, parameter.understood) == (field, understood)
    assert parameter.name + "=" + parameter.value == pair


def test_parameters_keep_their_order_and_a_form_bodys_encoding() -> None:
    read = read_parameters("event=sale&sub1=a%20b&x=", NO_NAMES)
    assert [(p.name, p.value, p.field) for p in read] == [
        ("event", "sale", "event"),
        ("sub1", "a b", "sub1"),
        ("x", "", None),
    ]


def test_a_json_bodys_parameters_are_read_after_the_querys() -> None:
    body = '\ufeff {"click_id": "abc", "event": "ngr", "payout": -12.5, "token": "***abcd"}'
    read = read_parameters("sub1=x", NO_NAMES, body)
    assert [(p.name, p.field, p.understood) for p in read] == [
        ("sub1", "sub1", "x"),
        ("click_id", "click_id", "abc"),
        ("event", "event", "net_revenue"),
        ("payout", "payout", "-12.5"),
        ("token", "token", "the advertiser's token (masked)"),
    ]
    # A body the log cut short shows no parameters; a form body shows its own.
    assert read_parameters("", NO_NAMES, '{"click_id": "ab') == ()
    assert [p.name for p in read_parameters("", NO_NAMES, "event=sale&sub2=y")] == ["event", "sub2"]


@pytest.mark.parametrize(
    ("query", "understood"),
    [
        ("event=lead&payout=-1", "not an amount for this event: '-1' (only net_revenue may be negative)"),
        ("payout=-1", "not an amount for this event: '-1' (only net_revenue may be negative)"),
        ("payout=-1&event=ngr", "-1"),
        ("event=net_revenue&amount=-120.50", "-120.50"),
        ("event=lead&payout=5", "5"),
    ],
)
def test_a_negative_amount_is_understood_only_for_an_event_that_may_be_negative(
    query: str, understood: str
) -> None:
    (payout,) = [p for p in read_parameters(query, NO_NAMES) if p.field == "payout"]
    assert payout.understood == understood


def conversion(
    cid: int, event: str, amount: str = "0", days: float = 0, status: str = "approved"
) -> dict[str, Any]:
    return {
        "id": cid,
        "event": event,
        "status": status,
        "event_at": T0 + timedelta(days=days),
        "deal_amount": D(amount),
    }


CPA = Deal(DealKind.CPA, "EUR", cpa=CpaRules(amount=D(100), geo_amounts={"DE": D(120)}, ftd_min=D(20)))
HYBRID = Deal(
    DealKind.HYBRID,
    "EUR",
    cpa=CpaRules(amount=D(50), ftd_min=D(20)),
    revshare=RevShareTerms(D(25), tiers=(Tier(D(1000), D(35)),)),
)


def test_cpa_preview_says_whether_and_why_the_player_would_qualify() -> None:
    registered = [conversion(1, "registration")]
    waiting = preview_commission(CPA, "DE", registered)
    assert (waiting.cpa_amount, waiting.cpa_qualified) == (D("120.00"), False)
    assert (
        waiting.cpa_explanation
        == "not yet: a registration, a first deposit of at least 20.00 (amounts in EUR)"
    )

    small = preview_commission(CPA, "FR", [*registered, conversion(2, "first_deposit", "10", 1)])
    assert small.cpa_qualified is False and small.cpa_amount == D("100.00")
    rejected = conversion(2, "first_deposit", "30", 1, status="rejected")
    assert preview_commission(CPA, "FR", [*registered, rejected]).cpa_qualified is False

    done = preview_commission(CPA, "FR", [*registered, conversion(2, "first_deposit", "30", 1)])
    assert done.cpa_qualified is True and "first deposit 30.00 ≥ 20.00" in done.cpa_explanation
    assert done.revshare_percent is None and done.revshare_earnings is None


def test_a_test_clicks_deposits_are_named_as_one_players_would_be() -> None:
    """Sent as plain deposits (a test click has no player row), the earliest standing one is the
    first deposit, as it would be for a real player: the CPA preview qualifies on it."""
    declined = conversion(2, "deposit", "500", 1, status="rejected")
    rows = [
        conversion(1, "registration"),
        conversion(4, "deposit", "30", 3),
        declined,
        conversion(3, "deposit", "25", 2),
    ]
    named = as_one_player(rows)
    assert [(r["id"], r["event"]) for r in named] == [
        (1, "registration"),
        (4, "deposit"),
        (2, "deposit"),
        (3, "first_deposit"),
    ]
    assert rows[3]["event"] == "deposit"  # the rows read are left as they are
    assert preview_commission(CPA, "FR", named).cpa_qualified is True
    assert preview_commission(CPA, "FR", rows).cpa_qualified is False


def test_revshare_preview_is_one_month_of_the_clicks_ngr_and_ftds() -> None:
    rows = [conversion(1, "first_deposit", "40"), conversion(2, "net_revenue", "1200.50", 2)]
    preview = preview_commission(HYBRID, "", rows)
    assert (preview.deal, preview.revshare_ngr, preview.revshare_ftds) == ("hybrid", D("1200.50"), 1)
    assert (preview.revshare_percent, preview.revshare_earnings) == (D(35), D("420.18"))
    losing = preview_commission(HYBRID, "", [conversion(1, "net_revenue", "-300")])
    assert losing.revshare_earnings == D(0)


def test_no_deal_previews_nothing() -> None:
    preview = preview_commission(None, "", [conversion(1, "registration")])
    assert (preview.deal, preview.cpa_amount, preview.revshare_earnings) == ("", None, None)


def test_outbound_preview_renders_the_templates_that_would_fire() -> None:
    row = {
        **conversion(9, "first_deposit", "30"),
        "click_id": "C" * 32,
        "txn_id": "t-1",
        "payout": D(30),
        "currency": "EUR",
        "affiliate_id": 4,
        "offer_id": 2,
        "link_id": 3,
        "campaign": "",
        "player_id": "",
        "country": "DE",
        **{f"sub{i}": f"s{i}" for i in range(1, 6)},
    }
    fires = template(
        id=1, affiliate_id=4, url="https://t.example/pb?c={sub1}&e={event}&p={commission}&key=k123456789"
    )
    other_offer = template(id=2, affiliate_id=4, url="https://t.example/x", offer_id=5)
    registration_only = template(id=3, affiliate_id=4, url="https://t.example/r", events=["registration"])

    (preview,) = preview_outbound(
        [fires, other_offer, registration_only], row, source="src", lp="", commission=D(7), currency="EUR"
    )

    assert preview.template_id == 1 and preview.method == "GET"
    assert preview.url.startswith("https://t.example/pb?c=s1&e=first_deposit&p=7.00&key=")
    assert "k123456789" not in preview.url  # the secret masked
