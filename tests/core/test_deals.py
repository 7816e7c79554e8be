"""A deal changed by a request: what it names changes, the rest stays as the deal in force."""

from dataclasses import replace
from decimal import Decimal

import pytest

from clickback.core.commission import CpaRules, Deal, DealKind, RevShareTerms, Tier, TierBasis
from clickback.core.deals import DealChange, DealProblem, changed_deal
from clickback.core.verticals import PRESETS, Vertical

D = Decimal
CASINO = PRESETS[Vertical.CASINO]
CPA = Deal(DealKind.CPA, "EUR", CpaRules(amount=D(100), ftd_min=D(20), hold_days=7))
TIERED = RevShareTerms(percent=D(25), tiers=(Tier(D(10), D(30)),), tier_basis=TierBasis.FTDS)
HYBRID = Deal(DealKind.HYBRID, "EUR", CPA.cpa, TIERED)


@pytest.mark.parametrize(
    ("stored", "vertical", "change", "expected"),
    [
        pytest.param(
            None,
            "casino",
            DealChange(cpa={"amount": D(55)}),
            Deal(DealKind.HYBRID, "GBP", replace(CASINO.cpa, amount=D(55)), CASINO.revshare),
            id="the_preset_is_in_force_when_nothing_is_stored",
        ),
        pytest.param(
            CPA,
            "casino",
            DealChange(revshare={"percent": D(40)}),
            replace(CPA, revshare=RevShareTerms(percent=D(40))),
            id="a_stored_deal_is_in_force_over_the_preset",
        ),
        pytest.param(
            CPA,
            "",
            DealChange(cpa={"ftd_min": None, "wager_min": D(50)}),
            replace(CPA, cpa=CpaRules(amount=D(100), wager_min=D(50), hold_days=7)),
            id="null_removes_a_rule",
        ),
        pytest.param(
            HYBRID,
            "",
            DealChange(revshare={"tiers": ()}),
            replace(HYBRID, revshare=replace(TIERED, tiers=())),
            id="tiers_given_replace_the_list",
        ),
        pytest.param(
            HYBRID,
            "",
            DealChange(kind=DealKind.REVSHARE, removed=frozenset({"cpa"})),
            Deal(DealKind.REVSHARE, "EUR", None, TIERED),
            id="a_part_given_as_null_goes",
        ),
        pytest.param(
            CPA, "", DealChange(currency="USD"), replace(CPA, currency="USD"), id="only_the_currency_changes"
        ),
        pytest.param(
            None,
            "",
            DealChange(cpa={"amount": D(5)}),
            Deal(DealKind.CPA, "GBP", CpaRules(amount=D(5))),
            id="a_new_deal_starts_from_the_defaults",
        ),
        pytest.param(
            None,
            "",
            DealChange(cpa={"amount": D(5)}, revshare={"percent": D(20)}),
            Deal(DealKind.HYBRID, "GBP", CpaRules(amount=D(5)), RevShareTerms(percent=D(20))),
            id="a_new_deals_kind_follows_its_parts",
        ),
        pytest.param(
            None,
            "",
            DealChange(cpa={"ftd_min": D(20)}),
            DealProblem(("cpa", "amount"), "no cpa terms are in force to start from: give amount"),
            id="nothing_to_start_from",
        ),
        pytest.param(
            CPA,
            "",
            DealChange(cpa={"amount": None}),
            DealProblem(
                ("cpa", "amount"), "cpa terms cannot do without amount: give one, or set cpa to null"
            ),
            id="the_amount_cannot_be_removed",
        ),
        pytest.param(
            HYBRID,
            "",
            DealChange(removed=frozenset({"cpa"})),
            DealProblem(("cpa",), "a hybrid deal needs cpa terms"),
            id="a_hybrid_without_cpa",
        ),
        pytest.param(
            None,
            "",
            DealChange(kind=DealKind.HYBRID, cpa={"amount": D(5)}),
            DealProblem(("revshare",), "a hybrid deal needs revshare terms"),
            id="a_new_hybrid_without_revshare",
        ),
    ],
)
def test_a_change_keeps_what_it_does_not_name(
    stored: Deal | None, vertical: str, change: DealChange, expected: Deal | DealProblem
) -> None:
    assert changed_deal(stored, change, "GBP", vertical) == expected


@pytest.mark.parametrize(
    ("stored", "change", "expected"),
    [
        pytest.param(
            None,
            DealChange(currency="JPY", cpa={"amount": D("12000.5")}),
            DealProblem(("cpa", "amount"), "JPY has no decimals: 12000.5 is finer than 1"),
            id="jpy_has_no_decimals",
        ),
        pytest.param(
            CPA,
            DealChange(cpa={"geo_amounts": {"GB": D("110.005"), "IE": D("110.00")}}),
            DealProblem(
                ("cpa", "geo_amounts", "GB"), "EUR amounts have 2 decimals: 110.005 is finer than 0.01"
            ),
            id="a_geo_amount_too_fine",
        ),
        pytest.param(
            replace(CPA, cpa=CpaRules(amount=D("55.50"))),
            DealChange(currency="JPY"),
            DealProblem(("cpa", "amount"), "JPY has no decimals: 55.50 is finer than 1"),
            id="a_currency_change_makes_the_amount_in_force_too_fine",
        ),
        pytest.param(
            None,
            DealChange(currency="KWD", cpa={"amount": D("1.234"), "geo_amounts": {"KW": D("2.5000")}}),
            Deal(DealKind.CPA, "KWD", CpaRules(amount=D("1.234"), geo_amounts={"KW": D("2.5000")})),
            id="kwd_has_three_decimals",
        ),
    ],
)
def test_a_cpa_amount_finer_than_the_currencys_minor_unit_is_refused(
    stored: Deal | None, change: DealChange, expected: Deal | DealProblem
) -> None:
    assert changed_deal(stored, change, "GBP", "") == expected
