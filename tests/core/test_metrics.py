"""Each report metric's formula (core.metrics), on hand-made sums."""

from decimal import Decimal

from clickback.core.lifecycle import Status
from clickback.core.metrics import (
    COUNTS,
    MONEY,
    Contribution,
    conversion_contributions,
    figures,
    ledger_contribution,
)

EUR, USD = "EUR", "USD"


def sums(**counts: int) -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0) | counts


def money(**amounts: dict[str, str]) -> dict[str, dict[str, Decimal]]:
    return {name: {c: Decimal(a) for c, a in amounts.get(name, {}).items()} for name in MONEY}


def test_no_clicks_leaves_rates_and_epc_empty_not_an_error() -> None:
    out = figures(sums(), money())
    assert [out[k] for k in ("cr_registration", "cr_ftd", "ftd_per_registration", "approval_rate")] == [
        None
    ] * 4
    assert (out["epc"], out["player_value"]) == (None, None)
    assert (out["commission"], out["revenue"]) == ({}, {})
    assert (out["profit"], out["revenue_profit"], out["revenue_roi"]) == (None, None, None)


def test_rates_divide_the_counts_they_name() -> None:
    out = figures(sums(clicks=200, registrations=20, ftds=5, approved=6, declined=2), money())
    assert out["cr_registration"] == 0.1
    assert out["cr_ftd"] == 0.025
    assert out["ftd_per_registration"] == 0.25
    assert out["approval_rate"] == 0.75


def test_commission_profit_epc_and_player_value_stay_in_their_currencies() -> None:
    out = figures(
        sums(clicks=3, ftds=2),
        money(
            revenue={EUR: "300", USD: "10"},
            cpa_commission={EUR: "200"},
            revshare_commission={EUR: "-20.5", USD: "4"},
        ),
    )
    assert out["commission"] == {EUR: Decimal("179.50"), USD: Decimal("4.00")}
    assert out["profit"] == {EUR: Decimal("120.50"), USD: Decimal("6.00")}
    # Per click and per FTD player, to 1/10,000 where the currency's cents do not say it all.
    assert out["epc"] == {EUR: Decimal("59.8333"), USD: Decimal("1.3333")}
    assert out["player_value"] == {EUR: Decimal("89.75"), USD: Decimal("2.00")}


def test_profit_only_where_revenue_is_known() -> None:
    """Revenue is known in a currency the row holds revenue in: profit there, none elsewhere
    (an FTD of an offer listing no price earns an unknown amount, not 0)."""
    unpriced = figures(
        sums(clicks=10, conversions=2, ftds=2),
        money(ftd_amount={EUR: "100"}, cpa_commission={EUR: "60", USD: "5"}, click_cost={EUR: "8"}),
    )
    assert unpriced["commission"] == {EUR: Decimal("60.00"), USD: Decimal("5.00")}
    assert (unpriced["profit"], unpriced["revenue_profit"], unpriced["revenue_roi"]) == (None, None, None)
    # The media buyer's figures need no revenue: they stay.
    assert unpriced["traffic_profit"] == {EUR: Decimal("52.00"), USD: Decimal("5.00")}

    partly = figures(
        sums(clicks=10, conversions=3),
        money(
            revenue={EUR: "60"},
            cpa_commission={EUR: "60", USD: "5"},
            click_cost={EUR: "20", USD: "1"},
        ),
    )
    # Known in EUR only; a profit of exactly 0 there is a figure, shown.
    assert partly["profit"] == {EUR: Decimal("0.00")}
    assert partly["revenue_profit"] == {EUR: Decimal("40.00")}
    assert partly["revenue_roi"] == {EUR: Decimal("2.0000")}
    assert partly["roi"] == {EUR: Decimal("2.0000"), USD: Decimal("4.0000")}


def test_a_row_that_converted_nothing_knows_its_revenue_is_none() -> None:
    """No payable conversion: the revenue is 0 in every currency, known. Traffic bought that
    earned nothing shows its loss; a reversal on a day without conversions gives back."""
    out = figures(
        sums(clicks=50, declined=1),
        money(click_cost={USD: "12.5"}, cpa_commission={EUR: "-30"}),
    )
    assert out["profit"] == {EUR: Decimal("30.00")}
    assert out["revenue_profit"] == {USD: Decimal("-12.50")}
    assert out["revenue_roi"] == {USD: Decimal("-1.0000")}


def test_amounts_show_their_currencys_decimals_and_zero_ones_are_left_out() -> None:
    out = figures(sums(), money(ngr={"JPY": "12000.5", EUR: "0", "KWD": "1"}))
    assert out["ngr"] == {"JPY": Decimal("12000.5"), "KWD": Decimal("1.000")}


def test_a_deposit_is_player_money_never_revenue_unless_the_offer_lists_a_price() -> None:
    unlisted = conversion_contributions("first_deposit", Status.APPROVED, Decimal("60"), EUR, None)
    assert unlisted == [
        Contribution(
            EUR,
            {
                "approved": 1,
                "pending": 0,
                "declined": 0,
                "conversions": 1,
                "ftds": 1,
                "deposits": 1,
                "ftd_amount": Decimal("60"),
                "deposit_amount": Decimal("60"),
            },
        )
    ]
    listed = conversion_contributions(
        "first_deposit", Status.APPROVED, Decimal("60"), USD, (Decimal(100), EUR)
    )
    assert [c.currency for c in listed] == [USD, EUR]
    assert listed[1].values == {"revenue": Decimal(100)}
    assert "revenue" not in listed[0].values


def test_a_sale_reports_what_the_advertiser_pays() -> None:
    (sale,) = conversion_contributions("sale", Status.PENDING, Decimal("12.5"), USD, None)
    assert (sale.values["revenue"], sale.values["pending"], sale.values["conversions"]) == (
        Decimal("12.5"),
        1,
        1,
    )


def test_clickbacks_own_qualified_cpa_is_commission_not_revenue() -> None:
    (cpa,) = conversion_contributions("qualified_cpa", Status.APPROVED, Decimal("100"), EUR, None)
    assert "revenue" not in cpa.values


def test_a_declined_conversion_counts_only_as_declined() -> None:
    for status in (Status.REJECTED, Status.CANCELLED):
        (c,) = conversion_contributions("registration", status, Decimal("5"), EUR, None)
        assert c.values == {"approved": 0, "pending": 0, "declined": 1}


def test_ngr_is_signed_player_money() -> None:
    (c,) = conversion_contributions("net_revenue", Status.APPROVED, Decimal("-80"), EUR, None)
    assert c.values["ngr"] == Decimal("-80")
    assert "revenue" not in c.values


def test_a_cpa_entry_is_commission_and_qualified_players_are_their_qualified_cpa() -> None:
    assert ledger_contribution("cpa", Decimal(-100), EUR) == Contribution(
        EUR, {"cpa_commission": Decimal(-100)}
    )
    assert ledger_contribution("revshare", Decimal("7.5"), USD) == Contribution(
        USD, {"revshare_commission": Decimal("7.5")}
    )
    # Every standing qualification, paid or past a cap (amount 0): rejected, it counts no more.
    for payout in (Decimal(100), Decimal(0)):
        (cpa,) = conversion_contributions("qualified_cpa", Status.APPROVED, payout, EUR, None)
        assert cpa.values["qualified_cpas"] == 1
    (rejected,) = conversion_contributions("qualified_cpa", Status.REJECTED, Decimal(100), EUR, None)
    assert "qualified_cpas" not in rejected.values
