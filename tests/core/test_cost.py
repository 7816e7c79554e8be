"""Cost models (core/cost.py): what a click or a conversion costs, and what a model may say."""

from decimal import Decimal

import pytest

from clickback.core.cost import (
    FREE,
    NO_COST,
    ClickCost,
    CostError,
    CostKind,
    CostModel,
    check,
    model_of,
    passed_cost,
    stored,
)
from clickback.core.costimport import SpendError, parse_spend
from clickback.core.lifecycle import Status
from clickback.core.metrics import MONEY, conversion_contributions, figures
from clickback.core.reasons import Reason

NOTHING: dict[str, str] = {}


def test_cpc_charges_its_amount_or_the_clicks_countrys() -> None:
    model = CostModel(CostKind.CPC, "EUR", Decimal("0.05"), {"DE": Decimal("0.08")})
    assert model.of_click("DE", False, NOTHING) == ClickCost(800, "EUR")
    assert model.of_click("AT", False, NOTHING) == ClickCost(500, "EUR")
    assert model.of_click("", False, NOTHING) == ClickCost(500, "EUR")  # no GEO known


def test_cpm_charges_a_thousandth_of_its_rate_a_click() -> None:
    assert CostModel(CostKind.CPM, "USD", Decimal("2.5")).of_click("US", False, NOTHING) == ClickCost(
        25, "USD"
    )


def test_a_cpm_whose_click_is_finer_than_a_ten_thousandth_is_refused_not_rounded() -> None:
    with pytest.raises(CostError, match=r"finer than 0\.0001"):
        CostModel(CostKind.CPM, "USD", Decimal("2.55"))


def test_bot_clicks_are_charged_unless_the_model_says_not() -> None:
    charged = CostModel(CostKind.CPC, "EUR", Decimal("0.1"))
    free = CostModel(CostKind.CPC, "EUR", Decimal("0.1"), bots=False)
    assert charged.of_click("DE", True, NOTHING) == ClickCost(1000, "EUR")
    assert free.of_click("DE", True, NOTHING) is FREE
    assert free.of_click("DE", False, NOTHING) == ClickCost(1000, "EUR")


def test_a_source_passes_its_cost_in_the_links_currency_or_its_own() -> None:
    model = CostModel(CostKind.SOURCE, "EUR")
    assert model.of_click("DE", False, {"cost": "0.0125"}) == ClickCost(125, "EUR")
    assert model.of_click("DE", True, {"cost": "0.5"}) == ClickCost(5000, "EUR")  # it billed the bot
    assert model.of_click("DE", False, {"cost": "1", "cost_currency": "usd"}) == ClickCost(10_000, "USD")
    assert model.of_click("DE", False, {}) is FREE
    assert model.of_click("DE", False, {"cost": ""}) is FREE
    assert model.of_click("DE", False, {"cost": "0"}) is FREE


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"cost": "-0.5"}, Reason.INVALID_COST),
        ({"cost": "1e3"}, Reason.INVALID_COST),
        ({"cost": "abc"}, Reason.INVALID_COST),
        ({"cost": "NaN"}, Reason.INVALID_COST),
        ({"cost": "0.00001"}, Reason.INVALID_COST),  # finer than a ten-thousandth
        ({"cost": "1000.01"}, Reason.INVALID_COST),  # above MAX_CLICK_COST
        ({"cost": "9" * 5000}, Reason.INVALID_COST),
        ({"cost": "{cost}"}, Reason.INVALID_COST),  # the source's macro left unreplaced
        ({"cost": "0.1", "cost_currency": "EURO"}, Reason.INVALID_COST_CURRENCY),
        ({"cost": "0.1", "cost_currency": "XXX"}, Reason.INVALID_COST_CURRENCY),
    ],
)
def test_a_cost_that_cannot_be_right_is_refused_with_its_reason(
    params: dict[str, str], reason: Reason
) -> None:
    assert passed_cost(params, "EUR") == ClickCost(0, "", reason)


def test_other_models_cost_a_click_nothing() -> None:
    cpa = CostModel(CostKind.CPA, "EUR", Decimal(30), event="first_deposit")
    assert cpa.of_click("DE", False, {"cost": "5"}) is FREE
    assert NO_COST.of_click("DE", False, {"cost": "5"}) is FREE  # a cost passed to a link without a model


def test_cpa_pays_for_its_event_only() -> None:
    cpa = CostModel(CostKind.CPA, "EUR", Decimal(30), event="first_deposit")
    assert cpa.of_conversion("first_deposit") == (Decimal(30), "EUR")
    assert cpa.of_conversion("registration") is None
    assert CostModel(CostKind.CPC, "EUR", Decimal("0.1")).of_conversion("first_deposit") is None


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (CostModel(CostKind.CPC, "", Decimal("0.1")), "currency"),
        (CostModel(CostKind.CPC, "EUR"), "amount"),
        (CostModel(CostKind.CPA, "EUR", Decimal(10)), "event"),
        (CostModel(CostKind.CPM, "EUR", Decimal(1), event="sale"), "event"),
        (CostModel(CostKind.CPM, "EUR", Decimal(1), {"DE": Decimal(2)}), "countries"),
        (CostModel(CostKind.CPC, "EUR", Decimal(-1)), "amount"),
        (CostModel(CostKind.CPA, "EUR", Decimal(10**7), event="sale"), "amount"),
    ],
)
def test_a_model_that_cannot_be_applied_is_refused_naming_the_field(model: CostModel, field: str) -> None:
    with pytest.raises(CostError, match=f"^{field}"):
        check(model)


def test_a_model_is_kept_and_read_back_the_same() -> None:
    model = CostModel(CostKind.CPC, "EUR", Decimal("0.05"), {"DE": Decimal("0.08")}, bots=False)
    doc = stored(model)
    assert doc is not None
    again = model_of(doc)
    assert again == model and again.of_click("DE", False, NOTHING) == ClickCost(800, "EUR")
    assert stored(NO_COST) is None and model_of(None) is NO_COST


# --- the money it makes in reports ------------------------------------------------------------


def test_a_cpa_cost_counts_while_its_conversion_is_payable() -> None:
    cost = (Decimal(30), "USD")
    approved = conversion_contributions("first_deposit", Status.APPROVED, Decimal(60), "EUR", None, cost)
    by_currency = {c.currency: dict(c.values) for c in approved}
    assert by_currency["USD"] == {"conversion_cost": Decimal(30)}
    assert by_currency["EUR"]["ftd_amount"] == Decimal(60)
    rejected = conversion_contributions("first_deposit", Status.REJECTED, Decimal(60), "EUR", None, cost)
    assert all("conversion_cost" not in c.values for c in rejected)


def _money(**amounts: dict[str, str]) -> dict[str, dict[str, Decimal]]:
    return {m: {c: Decimal(a) for c, a in amounts.get(m, {}).items()} for m in MONEY}


def _counts(**n: int) -> dict[str, int]:
    names = ("clicks", "unique_clicks", "bot_clicks", "conversions", "approved", "pending", "declined")
    names += ("registrations", "ftds", "deposits", "qualified_cpas")
    return {name: n.get(name, 0) for name in names}


def test_cost_cpc_profit_and_roi_per_currency() -> None:
    money = _money(
        click_cost={"EUR": "40", "USD": "10"},
        bot_cost={"EUR": "4"},
        conversion_cost={"EUR": "60"},
        cpa_commission={"EUR": "150"},
        revshare_commission={"USD": "5"},
    )
    shown = figures(_counts(clicks=800, registrations=20, ftds=4), money)
    assert shown["cost"] == {"EUR": Decimal(100), "USD": Decimal(10)}
    assert shown["cpc"] == {"EUR": Decimal("0.05"), "USD": Decimal("0.0125")}
    assert shown["cost_per_registration"] == {"EUR": Decimal(5), "USD": Decimal("0.5")}
    assert shown["cost_per_ftd"] == {"EUR": Decimal(25), "USD": Decimal("2.5")}
    assert shown["traffic_profit"] == {"EUR": Decimal(50), "USD": Decimal(-5)}
    assert shown["roi"] == {"EUR": Decimal("0.5"), "USD": Decimal("-0.5")}
    assert shown["bot_cost"] == {"EUR": Decimal(4)}


def test_with_nothing_spent_roi_and_cpc_are_empty_not_errors() -> None:
    shown = figures(_counts(), _money(cpa_commission={"EUR": "100"}))
    assert shown["roi"] is None and shown["cpc"] is None and shown["cost_per_ftd"] is None
    assert shown["cost"] == {} and shown["traffic_profit"] == {"EUR": Decimal(100)}


def test_a_break_even_roi_is_zero_not_absent() -> None:
    shown = figures(_counts(clicks=10), _money(click_cost={"EUR": "10"}, cpa_commission={"EUR": "10"}))
    assert shown["roi"] == {"EUR": Decimal(0)}


def test_a_partners_revshare_is_its_percent_of_each_commission_cut_toward_zero() -> None:
    model = CostModel(CostKind.REVSHARE, percent=Decimal("33.33"))
    check(model)
    assert model.of_commission(Decimal(100)) == Decimal("33.33")
    assert model.of_commission(Decimal("0.0007")) == Decimal("0.0002")  # 0.00023331 cut
    assert model.of_commission(Decimal(-100)) == Decimal("-33.33")  # a reversal takes it back
    assert model.of_commission(Decimal("-0.0007")) == Decimal("-0.0002")
    assert CostModel(CostKind.CPC, "EUR", Decimal(1)).of_commission(Decimal(100)) == 0


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (CostModel(CostKind.REVSHARE, percent=Decimal("0.001")), "percent"),
        (CostModel(CostKind.REVSHARE, percent=Decimal(101)), "percent"),
        (CostModel(CostKind.REVSHARE), "percent"),
        (CostModel(CostKind.REVSHARE, "EUR", percent=Decimal(10)), "currency"),
        (CostModel(CostKind.REVSHARE, amount=Decimal(1), percent=Decimal(10)), "amount"),
        (CostModel(CostKind.CPC, "EUR", Decimal(1), percent=Decimal(10)), "percent"),
    ],
)
def test_a_revshare_model_is_a_percent_and_nothing_else(model: CostModel, field: str) -> None:
    with pytest.raises(CostError, match=f"^{field}"):
        check(model)


def test_a_networks_return_is_revenue_against_cost() -> None:
    money = _money(click_cost={"EUR": "40"}, revenue={"EUR": "100"}, cpa_commission={"EUR": "30"})
    shown = figures(_counts(clicks=100), money)
    assert shown["revenue_profit"] == {"EUR": Decimal(60)} and shown["revenue_roi"] == {"EUR": Decimal("1.5")}
    assert shown["traffic_profit"] == {"EUR": Decimal(-10)} and shown["roi"] == {"EUR": Decimal("-0.25")}


@pytest.mark.parametrize(
    "text",
    ['day,link,cost\r2026-01-01,"a\rb"x,1\r', 'day,link,cost\n2026-01-01,ab\r"\n', 'day,link,cost\n"a\x00'],
)
def test_a_spend_file_the_csv_module_cannot_read_is_refused_not_raised(text: str) -> None:
    with pytest.raises(SpendError):
        parse_spend(text, "EUR")
