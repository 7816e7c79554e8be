from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickback.core.limits import MAX_PAYOUT, PAYOUT_DECIMALS
from clickback.core.money import (
    CURRENCIES,
    minor_units,
    money_text,
    parse_amount,
    parse_currency,
    plain,
    written_plainly,
)


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        ("0", "0"),
        ("25", "25"),
        ("25.5", "25.5"),
        ("25.50", "25.50"),
        ("25.5000", "25.5000"),
        ("0.0001", "0.0001"),
        (" 7 ", "7"),
        ("\t12.50\n", "12.50"),
        ("007", "7"),
        (str(MAX_PAYOUT), str(MAX_PAYOUT)),
    ],
)
def test_plain_decimal_amount_is_accepted_exactly(raw: str, amount: str) -> None:
    parsed = parse_amount(raw)
    assert isinstance(parsed, Decimal)
    assert parsed == Decimal(amount)
    # Exact: the digits sent are the digits kept, no float on the way.
    assert parsed.as_tuple() == Decimal(amount).as_tuple()


@pytest.mark.parametrize(
    "raw",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1e309",
        "1e3",
        "1E3",
        "-1",
        "-0",
        "+1",
        "1,5",
        "1,000.00",
        "1.23456",
        "",
        " ",
        ".5",
        "5.",
        "0x10",
        "\uff11\uff12",  # full-width digits
        "\u0661\u0662",  # Arabic-Indic digits
        "1_000",
        "1 000",
        "12.5.0",
        "€5",
        "5 EUR",
        "{payout}",
    ],
)
def test_anything_but_digits_with_an_optional_dot_is_refused(raw: str) -> None:
    assert parse_amount(raw) is None


@pytest.mark.parametrize("raw", [str(MAX_PAYOUT + 1), f"{MAX_PAYOUT}.0001", "999999999999", "1" * 13])
def test_amount_over_the_maximum_payout_is_refused(raw: str) -> None:
    assert parse_amount(raw) is None


def test_a_rate_may_have_more_decimals_than_an_amount() -> None:
    assert parse_amount("0.0000000123", decimals=10) == Decimal("0.0000000123")
    assert parse_amount("0.0000000123") is None
    assert parse_amount("1E-8", decimals=10) is None
    assert (written_plainly("0.0000000123", 10), written_plainly("1.2e2", 10)) == (True, False)


@pytest.mark.parametrize(
    ("number", "shown"),
    [("1.5E+2", "150"), ("2E+1", "20"), ("1E-8", "0.00000001"), ("1.0842", "1.0842"), ("20.0000", "20.0000")],
)
def test_plain_never_writes_an_exponent(number: str, shown: str) -> None:
    assert plain(Decimal(number)) == shown


@settings(max_examples=200)
@given(amount=st.decimals(min_value=0, max_value=MAX_PAYOUT, places=PAYOUT_DECIMALS))
def test_any_amount_within_limits_round_trips(amount: Decimal) -> None:
    assert parse_amount(f"{amount:f}") == amount


@settings(max_examples=200)
@given(raw=st.text())
def test_arbitrary_text_never_raises_and_yields_only_sane_amounts(raw: str) -> None:
    amount = parse_amount(raw)
    if amount is not None:
        assert amount.is_finite()
        assert 0 <= amount <= MAX_PAYOUT
        assert amount == amount.quantize(Decimal(1).scaleb(-PAYOUT_DECIMALS))


@pytest.mark.parametrize(
    ("raw", "code"),
    [("EUR", "EUR"), ("eur", "EUR"), ("Usd", "USD"), (" gbp ", "GBP"), ("jpy", "JPY")],
)
def test_iso_currency_code_is_accepted_in_upper_case(raw: str, code: str) -> None:
    assert parse_currency(raw) == code


@pytest.mark.parametrize(
    "raw", ["EURO", "XXX", "XAU", "", "   ", "E U", "EU", "€", "US$", "{currency}", "eur1"]
)
def test_unknown_currency_is_refused(raw: str) -> None:
    assert parse_currency(raw) is None


def test_currency_list_holds_only_three_letter_codes() -> None:
    assert len(CURRENCIES) > 150
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in CURRENCIES)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("50", "EUR", "50.00"),
        ("10.00", "EUR", "10.00"),
        ("1.5", "EUR", "1.50"),
        ("0.1234", "EUR", "0.1234"),
        ("0", "EUR", "0.00"),
        ("-3.5", "EUR", "-3.50"),
        ("1E+2", "EUR", "100.00"),
        ("57347.00", "JPY", "57347"),
        ("12000.5", "JPY", "12000.5"),  # never hides a digit the amount has
        ("-300", "JPY", "-300"),
        ("1", "KWD", "1.000"),
        ("1.2345", "KWD", "1.2345"),
        ("7", None, "7.00"),  # no deal, so no currency to ask
    ],
)
def test_money_text_shows_the_currencys_decimals_and_any_finer_digit(
    amount: str, currency: str | None, text: str
) -> None:
    assert money_text(Decimal(amount), currency) == text


@pytest.mark.parametrize(
    ("currency", "places"), [("JPY", 0), ("KRW", 0), ("XPF", 0), ("EUR", 2), ("KWD", 3), ("TND", 3)]
)
def test_minor_units_follow_iso_4217(currency: str, places: int) -> None:
    assert currency in CURRENCIES
    assert minor_units(currency) == places


@pytest.mark.parametrize("raw", ["u\u017fd", "\u0131nr", "\uff35\uff33\uff24"])
def test_non_ascii_lookalike_currency_is_refused(raw: str) -> None:
    assert parse_currency(raw) is None
