"""The money rules, as tables of cases: CPA qualification edges, RevShare months, rounding."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from clickback.core.commission import (
    CpaRules,
    Deal,
    DealKind,
    PlayerEvent,
    RevShareTerms,
    RuleCheck,
    Tier,
    TierBasis,
    check_rules,
    convert,
    crossing_day,
    in_month_currency,
    next_period,
    period_bounds,
    period_of,
    qualify,
    revshare_period,
    round_commission,
)
from clickback.core.verticals import PRESETS

D = Decimal
T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def ev(cid: int, event: str, days: float, amount: str = "0") -> PlayerEvent:
    return PlayerEvent(cid, event, at(days), D(amount))


REG = ev(1, "registration", 0)
BASELINE = CpaRules(amount=D(100), ftd_min=D(20))
CUMULATIVE = CpaRules(amount=D(100), deposits_min=D(50), deposits_days=30)
VERIFIED = CpaRules(amount=D(100), require_verification=True, ftd_min=D(20))
WINDOWED = CpaRules(amount=D(100), require_verification=True, ftd_min=D(20), window_days=7)
WAGER = CpaRules(amount=D(100), ftd_min=D(10), wager_min=D(50))

QUALIFICATION = [
    pytest.param(BASELINE, [REG, ev(2, "first_deposit", 1, "20")], 2, id="baseline_exactly_met"),
    pytest.param(BASELINE, [REG, ev(2, "first_deposit", 1, "19.9999")], None, id="baseline_missed_by_a_hair"),
    pytest.param(BASELINE, [ev(2, "first_deposit", 1, "25")], None, id="no_registration"),
    pytest.param(
        CpaRules(amount=D(1), ftd_min=D(20), require_registration=False),
        [ev(2, "first_deposit", 1, "25")],
        2,
        id="registration_not_required",
    ),
    # A later, larger deposit does not make up for a first deposit under the baseline.
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "10"), ev(3, "deposit", 2, "500")],
        None,
        id="small_ftd_then_big",
    ),
    # Only the first first_deposit is the FTD, even if a second one is reported.
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "10"), ev(3, "first_deposit", 2, "50")],
        None,
        id="duplicate_ftd_is_not_a_second_chance",
    ),
    pytest.param(
        CUMULATIVE,
        [REG, ev(2, "first_deposit", 1, "20"), ev(3, "deposit", 30, "30")],
        3,
        id="deposits_reach_x_on_the_last_day",
    ),
    pytest.param(
        CUMULATIVE,
        [REG, ev(2, "first_deposit", 1, "20"), ev(3, "deposit", 31, "30")],
        None,
        id="deposit_one_day_after_the_window",
    ),
    pytest.param(
        CUMULATIVE,
        [REG, ev(2, "first_deposit", 1, "40"), ev(3, "chargeback", 2, "10"), ev(4, "deposit", 3, "15")],
        None,
        id="chargeback_takes_deposits_back_under_x",
    ),
    pytest.param(
        CUMULATIVE,
        [REG, ev(2, "first_deposit", 1, "60"), ev(3, "chargeback", 90, "20")],
        None,
        id="chargeback_after_qualifying_undoes_it",
    ),
    # A chargeback names no deposit: it is taken from the first one first (the presets'
    # sportsbook, poker and ewallet deals read no deposit total), down to 0 and no further.
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "30"), ev(3, "chargeback", 2, "30")],
        None,
        id="chargeback_of_the_whole_ftd",
    ),
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "30"), ev(3, "chargeback", 2, "10")],
        2,
        id="chargeback_leaving_the_ftd_at_the_baseline",
    ),
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "30"), ev(3, "chargeback", 2, "10.0001")],
        None,
        id="chargeback_leaving_the_ftd_under_the_baseline",
    ),
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "30"), ev(3, "deposit", 2, "500"), ev(4, "chargeback", 3, "15")],
        None,
        id="chargeback_taken_from_the_ftd_before_later_deposits",
    ),
    pytest.param(
        CpaRules(amount=D(100), ftd_min=D(0)),
        [REG, ev(2, "first_deposit", 1, "30"), ev(3, "chargeback", 2, "80")],
        2,
        id="chargeback_past_the_ftd_leaves_it_at_zero",
    ),
    pytest.param(
        VERIFIED,
        [REG, ev(2, "first_deposit", 1, "25"), ev(3, "verification", 5)],
        3,
        id="verification_after_ftd_qualifies_on_arrival",
    ),
    pytest.param(
        WINDOWED,
        [REG, ev(2, "first_deposit", 1, "25"), ev(3, "verification", 8)],
        None,
        id="verification_after_the_window",
    ),
    pytest.param(
        WINDOWED,
        [REG, ev(2, "first_deposit", 1, "25"), ev(3, "verification", 7)],
        3,
        id="verification_on_the_windows_last_moment",
    ),
    pytest.param(
        WAGER,
        [REG, ev(2, "first_deposit", 0, "10"), ev(3, "wager", 1, "30"), ev(4, "wager", 2, "20")],
        4,
        id="wagering_adds_up",
    ),
    pytest.param(
        WAGER,
        [REG, ev(2, "first_deposit", 0, "10"), ev(3, "wager", 1, "49.99")],
        None,
        id="wagering_short",
    ),
    pytest.param(BASELINE, [], None, id="no_events"),
]


@pytest.mark.parametrize(("rules", "events", "by"), QUALIFICATION)
def test_qualification(rules: CpaRules, events: list[PlayerEvent], by: int | None) -> None:
    verdict = qualify(rules, events, "EUR")
    assert (verdict.by if verdict else None) == by


def test_qualification_does_not_depend_on_arrival_order() -> None:
    events = [ev(3, "verification", 5), ev(2, "first_deposit", 1, "25"), REG]
    verdict = qualify(VERIFIED, events, "EUR")
    assert verdict is not None
    assert (verdict.at, verdict.because) == (at(5), (1, 2, 3))


def test_reversal_after_approval_is_a_verdict_that_no_longer_holds() -> None:
    events = [REG, ev(2, "first_deposit", 1, "25")]
    assert qualify(BASELINE, events, "EUR") is not None
    # The FTD rejected afterwards: the store passes only payable events, and the rules fail.
    assert qualify(BASELINE, events[:1], "EUR") is None


def test_explanation_names_each_rule_and_its_figures() -> None:
    verdict = qualify(WINDOWED, [REG, ev(2, "first_deposit", 1, "25"), ev(3, "verification", 2)], "EUR")
    assert verdict is not None
    assert (
        verdict.explanation
        == "registered; verified; first deposit 25.00 ≥ 20.00; all within 7 days of 2026-10-01"
    )


def test_explanation_shows_amounts_with_the_deal_currencys_decimals() -> None:
    # A baseline kept as Decimal writes it (2E+1: as a deal once stored it), a deposit read
    # back from the database with 4 decimals: both as the currency shows amounts.
    rules = CpaRules(amount=D(100), ftd_min=D("2E+1"))
    events = [REG, ev(2, "first_deposit", 1, "20.0000")]
    for currency, shown in (("EUR", "20.00 ≥ 20.00"), ("JPY", "20 ≥ 20"), ("KWD", "20.000 ≥ 20.000")):
        verdict = qualify(rules, events, currency)
        assert verdict is not None
        assert verdict.explanation == f"registered; first deposit {shown}"


def test_geo_amount_overrides_the_default() -> None:
    rules = CpaRules(amount=D(100), geo_amounts={"DE": D(150)})
    assert (rules.amount_for("DE"), rules.amount_for("FR")) == (D(150), D(100))


CARRY = RevShareTerms(percent=D(25), negative_carryover=True)
NO_CARRY = RevShareTerms(percent=D(25))


def months(terms: RevShareTerms, ngrs: list[str]) -> list[tuple[Decimal, Decimal]]:
    carry = D(0)
    out = []
    for ngr in ngrs:
        month = revshare_period(terms, "EUR", D(ngr), 0, carry)
        out.append((month.earnings, month.carry_out))
        carry = month.carry_out
    return out


@pytest.mark.parametrize(
    ("terms", "ngrs", "expected"),
    [
        pytest.param(
            CARRY,
            ["-1000", "600", "1000"],
            [(D(0), D(-1000)), (D(0), D(-400)), (D("150.00"), D(0))],
            id="negative_carryover_across_three_months",
        ),
        pytest.param(
            NO_CARRY,
            ["-1000", "600", "1000"],
            [(D(0), D(0)), (D("150.00"), D(0)), (D("250.00"), D(0))],
            id="no_carryover_forgets_the_loss",
        ),
        pytest.param(
            CARRY,
            ["-100", "100", "40"],
            [(D(0), D(-100)), (D("0.00"), D(0)), (D("10.00"), D(0))],
            id="exactly_repaid",
        ),
    ],
)
def test_revshare_months(
    terms: RevShareTerms, ngrs: list[str], expected: list[tuple[Decimal, Decimal]]
) -> None:
    assert months(terms, ngrs) == expected


@pytest.mark.parametrize(
    ("basis", "ngr", "ftds", "percent"),
    [
        (TierBasis.NGR, "9999.99", 0, "25"),
        (TierBasis.NGR, "10000", 0, "30"),
        (TierBasis.NGR, "50000", 0, "35"),
        (TierBasis.FTDS, "100", 9, "25"),
        (TierBasis.FTDS, "100", 10, "30"),
        (TierBasis.FTDS, "100", 50, "35"),
    ],
)
def test_tiers_start_at_their_threshold(basis: TierBasis, ngr: str, ftds: int, percent: str) -> None:
    thresholds = ("10000", "50000") if basis is TierBasis.NGR else ("10", "50")
    terms = RevShareTerms(
        percent=D(25), tiers=(Tier(D(thresholds[1]), D(35)), Tier(D(thresholds[0]), D(30))), tier_basis=basis
    )
    month = revshare_period(terms, "EUR", D(ngr), ftds, D(0))
    assert month.percent == D(percent)
    assert month.earnings == round_commission(D(ngr) * D(percent) / 100, "EUR")


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("4.165", "EUR", "4.17"),  # half-up, never banker's: the affiliate gets the half cent
        ("4.164999", "EUR", "4.16"),
        ("-4.165", "EUR", "-4.17"),
        ("1234.5", "JPY", "1235"),
        ("1.2345", "KWD", "1.235"),
    ],
)
def test_commission_rounding(amount: str, currency: str, rounded: str) -> None:
    assert str(round_commission(D(amount), currency)) == rounded


@pytest.mark.parametrize(
    ("currency", "amount", "geo", "booked"),
    [
        ("GBP", "110.005", "110.005", "110.01"),  # stored before finer amounts were refused
        ("JPY", "12000.5", "12000.49", "12001"),
        ("KWD", "1.2345", "7", "1.235"),
        ("EUR", "100", "150", "100.00"),
    ],
)
def test_a_cpa_books_its_amount_rounded_half_up_to_the_minor_unit(
    currency: str, amount: str, geo: str, booked: str
) -> None:
    deal = Deal(DealKind.CPA, currency, CpaRules(amount=D(amount), geo_amounts={"DE": D(geo)}))

    assert str(deal.cpa_amount("FR")) == booked
    assert deal.cpa_amount("DE") == round_commission(D(geo), currency)


def test_revshare_is_rounded_once_on_the_month() -> None:
    # 3 x 33.33 at 12.5% is 12.49875: per-event rounding would give 3 x 4.17 = 12.51.
    month = revshare_period(RevShareTerms(percent=D("12.5")), "EUR", D("99.99"), 0, D(0))
    assert month.earnings == D("12.50")


@pytest.mark.parametrize(
    ("amount", "rate", "converted"),
    [
        ("100", "1.08425", "108.4250"),
        ("0.00005", "1", "0.0000"),
        ("0.00015", "1", "0.0002"),
        ("10", "0.333333", "3.3333"),
    ],
)
def test_conversion_keeps_four_decimals_half_even(amount: str, rate: str, converted: str) -> None:
    assert str(convert(D(amount), D(rate))) == converted


# A month in USD: the rates on record (its first day's) and what comes from elsewhere into it.
EUR_USD = {("EUR", "USD"): D("1.5")}
NGR_TIER = RevShareTerms(D(25), (Tier(D(1000), D(40)),), TierBasis.NGR, negative_carryover=True)


@pytest.mark.parametrize(
    ("carry", "carry_currency", "rates", "carry_in", "note"),
    [
        ("-400", "USD", {}, "-400", ""),  # the same currency: nothing to convert
        ("-400", "", {}, "-400", ""),  # no month before
        ("0", "EUR", {}, "0", ""),  # nothing carried: no rate needed
        ("-400", "EUR", EUR_USD, "-600.0", "-400.00 EUR at 1.5"),
        ("-0.01", "EUR", EUR_USD, "-0.0150", "-0.01 EUR at 1.5"),  # the ledger's scale, not cents
        ("-400", "EUR", {}, "0", "-400.00 EUR not converted: no EUR→USD rate on 2026-11-01"),
    ],
)
def test_a_deficit_carried_into_a_month_of_another_currency_is_converted_on_its_first_day(
    carry: str, carry_currency: str, rates: dict[tuple[str, str], Decimal], carry_in: str, note: str
) -> None:
    asked: list[tuple[str, str, object]] = []

    def rate(base: str, quote: str, day: object) -> Decimal | None:
        asked.append((base, quote, day))
        return rates.get((base, quote))

    month = in_month_currency("USD", "2026-11", NGR_TIER, "USD", D(carry), carry_currency, rate)

    assert (month.carry_in, month.carry_note, month.terms) == (D(carry_in), note, NGR_TIER)
    assert {day for _, _, day in asked} <= {crossing_day("2026-11")} == {datetime(2026, 11, 1).date()}


@pytest.mark.parametrize(
    ("terms", "rates", "threshold", "note"),
    [
        (NGR_TIER, {("EUR", "USD"): D("1.25")}, "1250.0000", "NGR tiers in EUR at 1.25"),
        (NGR_TIER, {}, None, "NGR tiers in EUR not applied: no EUR→USD rate on 2026-11-01"),
        # FTD thresholds are counts: nothing to convert, no rate asked for.
        (RevShareTerms(D(25), (Tier(D(3), D(40)),), TierBasis.FTDS), {}, "3", ""),
    ],
)
def test_ngr_tiers_in_another_currency_are_converted_into_the_months(
    terms: RevShareTerms, rates: dict[tuple[str, str], Decimal], threshold: str | None, note: str
) -> None:
    month = in_month_currency("USD", "2026-11", terms, "EUR", D(0), "", lambda b, q, _: rates.get((b, q)))

    assert [str(t.threshold) for t in month.terms.tiers] == ([] if threshold is None else [threshold])
    assert (month.terms.percent, month.terms.negative_carryover, month.terms_note) == (
        terms.percent,
        terms.negative_carryover,
        note,
    )


def test_periods() -> None:
    assert period_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == "2026-12"
    assert next_period("2026-12") == "2027-01"
    assert next_period("2026-01") == "2026-02"


def test_every_preset_is_a_complete_deal_of_standard_events() -> None:
    from clickback.core.events import STANDARD_EVENTS

    for preset in PRESETS.values():
        assert set(preset.events) <= STANDARD_EVENTS
        assert preset.cpa.amount > 0 and preset.revshare.percent > 0


def test_period_bounds() -> None:
    assert period_bounds("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def checks(rules: CpaRules, events: list[PlayerEvent]) -> list[tuple[str, bool, str]]:
    return [(c.rule, c.held, c.detail) for c in check_rules(rules, events, "EUR")]


RULE_CHECKS = [
    pytest.param(
        VERIFIED,
        [REG, ev(2, "first_deposit", 1, "60")],
        [
            ("registration", True, "held on 2026-10-01"),
            ("verification", False, "missing"),
            ("first deposit ≥ 20.00 EUR", True, "held on 2026-10-02, 60.00 EUR"),
        ],
        id="verification_missing",
    ),
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "10"), ev(3, "deposit", 2, "500")],
        [
            ("registration", True, "held on 2026-10-01"),
            ("first deposit ≥ 20.00 EUR", False, "not held: 10.00 EUR"),
        ],
        id="first_deposit_under_the_baseline",
    ),
    pytest.param(
        BASELINE,
        [ev(2, "first_deposit", 1, "25")],
        [
            ("registration", False, "missing"),
            ("first deposit ≥ 20.00 EUR", True, "held on 2026-10-02, 25.00 EUR"),
        ],
        id="no_registration",
    ),
    # Chargebacks count from the start, whenever they arrive, as in qualify.
    pytest.param(
        CUMULATIVE,
        [REG, ev(2, "first_deposit", 1, "30"), ev(3, "deposit", 3, "40"), ev(4, "chargeback", 9, "25")],
        [
            ("registration", True, "held on 2026-10-01"),
            (
                "deposits ≥ 50.00 EUR within 30 days",
                False,
                "not held: 45.00 EUR (after 25.00 EUR of chargebacks)",
            ),
        ],
        id="chargeback_takes_deposits_under",
    ),
    pytest.param(
        BASELINE,
        [REG, ev(2, "first_deposit", 1, "30"), ev(3, "deposit", 2, "500"), ev(4, "chargeback", 9, "45")],
        [
            ("registration", True, "held on 2026-10-01"),
            ("first deposit ≥ 20.00 EUR", False, "not held: 0.00 EUR (after 45.00 EUR of chargebacks)"),
        ],
        id="chargebacks_take_the_first_deposit_first",
    ),
    pytest.param(
        WAGER,
        [REG, ev(2, "first_deposit", 1, "10"), ev(3, "wager", 2, "30"), ev(4, "wager", 4, "30")],
        [
            ("registration", True, "held on 2026-10-01"),
            ("first deposit ≥ 10.00 EUR", True, "held on 2026-10-02, 10.00 EUR"),
            ("wagered ≥ 50.00 EUR", True, "held on 2026-10-05, 60.00 EUR"),
        ],
        id="wager_reached_on_the_second",
    ),
    # The verification came after the 7-day window: not counted, and the window is why.
    pytest.param(
        WINDOWED,
        [REG, ev(2, "first_deposit", 1, "25"), ev(3, "verification", 8)],
        [
            ("registration", True, "held on 2026-10-01"),
            ("verification", False, "missing"),
            ("first deposit ≥ 20.00 EUR", True, "held on 2026-10-02, 25.00 EUR"),
            ("within 7 days of 2026-10-01", False, "1 later event not counted (after 2026-10-08)"),
        ],
        id="verified_after_the_window",
    ),
    pytest.param(
        WINDOWED,
        [REG, ev(2, "verification", 1), ev(3, "first_deposit", 2, "25"), ev(4, "deposit", 9, "5")],
        [
            ("registration", True, "held on 2026-10-01"),
            ("verification", True, "held on 2026-10-02"),
            ("first deposit ≥ 20.00 EUR", True, "held on 2026-10-03, 25.00 EUR"),
            ("within 7 days of 2026-10-01", True, "1 later event not counted (after 2026-10-08)"),
        ],
        id="met_inside_the_window_a_later_deposit_aside",
    ),
    # Unverified in the window; a wager and a chargeback after it: no rule reads the wager, and a
    # chargeback counts from the start, so the window did not fail the player, the verification did.
    pytest.param(
        WINDOWED,
        [REG, ev(2, "first_deposit", 1, "25"), ev(3, "wager", 9, "50"), ev(4, "chargeback", 10, "1")],
        [
            ("registration", True, "held on 2026-10-01"),
            ("verification", False, "missing"),
            (
                "first deposit ≥ 20.00 EUR",
                True,
                "held on 2026-10-02, 24.00 EUR (after 1.00 EUR of chargebacks)",
            ),
            ("within 7 days of 2026-10-01", True, "1 later event not counted (after 2026-10-08)"),
        ],
        id="unverified_a_later_wager_and_chargeback_aside",
    ),
    pytest.param(
        BASELINE,
        [],
        [("registration", False, "missing"), ("first deposit ≥ 20.00 EUR", False, "missing")],
        id="no_events",
    ),
]


@pytest.mark.parametrize(("rules", "events", "expected"), RULE_CHECKS)
def test_each_cpa_rule_is_checked_on_its_own(
    rules: CpaRules, events: list[PlayerEvent], expected: list[tuple[str, bool, str]]
) -> None:
    assert checks(rules, events) == expected
    # The rules all held exactly when qualify says the player qualified.
    assert all(held for _, held, _ in expected) == (qualify(rules, events, "EUR") is not None)


def test_a_rule_checks_day_is_the_event_that_met_it() -> None:
    (registration, ftd) = check_rules(BASELINE, [ev(2, "first_deposit", 3, "20"), REG], "EUR")
    assert registration == RuleCheck("registration", True, T0.date(), "held on 2026-10-01")
    assert ftd.on == at(3).date() and ftd.as_json()["on"] == "2026-10-04"


@pytest.mark.parametrize(
    ("amount", "rate", "converted"),
    [
        (Decimal(1000), Decimal(1000000), Decimal(10**9)),  # the largest amount there is
        (Decimal(-1000), Decimal(1000000), Decimal(-(10**9))),  # a negative NGR as well
        (Decimal("1000.0001"), Decimal(1000000), None),
        (Decimal(10**9), Decimal(1000000), None),  # did not fit the database's integer
        (Decimal(-(10**9)), Decimal(10**9), None),
    ],
)
def test_a_converted_amount_past_max_payout_is_none(
    amount: Decimal, rate: Decimal, converted: Decimal | None
) -> None:
    assert convert(amount, rate) == converted
