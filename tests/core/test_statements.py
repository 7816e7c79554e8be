"""CSV cells (core.statements.csv_cell): no text a spreadsheet would run as a formula. A player's
values by currency (core.statements.by_currency): never added across currencies."""

from decimal import Decimal

import pytest

from clickback.core.statements import PlayerValue, by_currency, csv_cell


@pytest.mark.parametrize(
    "value",
    [
        "=1+2",
        "+1",
        "-1+2",
        "@SUM(1)",
        "\t=1",
        "\r=1",
        " =1+2",
        "   +1",
        "\t\t@SUM(1)",
        "\n=1+2",
        "\r\n-1+2",
        "\u00a0=1+2",  # NBSP
        "\u3000=1+2",  # ideographic space
        '"=1+2',
        ' " =1+2',
        "\uff1d1+2",  # full-width forms
        "\uff0b1",
        "\uff0d1+2",
        "\uff20SUM(1)",
        " \uff1d1+2",
        "-12.50",  # text, not a number: it might be anything
    ],
)
def test_text_a_spreadsheet_would_run_gets_an_apostrophe(value: str) -> None:
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("plain", "plain"),
        ("", ""),
        ("   ", "   "),
        ("a=1", "a=1"),
        ("1+1", "1+1"),
        ("x -1", "x -1"),
        ("'=1", "'=1"),  # an apostrophe already makes it text
        ("中文 \uff1d", "中文 \uff1d"),
        (Decimal("-12.50"), "-12.50"),  # amounts stay numbers, negative ones too
        (Decimal("1E+3"), "1000"),
        (-3, "-3"),
        (42, "42"),
    ],
)
def test_other_values_are_written_as_they_are(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


EUR_40 = PlayerValue("EUR", deposits=Decimal(40), ngr=Decimal(-15), commission=Decimal(100))
USD_50 = PlayerValue("USD", deposits=Decimal(50))
GBP_5 = PlayerValue("GBP", ngr=Decimal(5))


@pytest.mark.parametrize(
    ("deal", "given", "listed"),
    [
        ("EUR", [EUR_40], [EUR_40]),  # one currency: as before deals could change currency
        ("EUR", [], [PlayerValue("EUR")]),  # nothing priced yet: zero in the deal's currency
        ("USD", [EUR_40, USD_50], [USD_50, EUR_40]),  # the deal's currency first
        ("USD", [EUR_40], [PlayerValue("USD"), EUR_40]),  # nothing priced since the change
        ("USD", [GBP_5, EUR_40, USD_50], [USD_50, EUR_40, GBP_5]),  # then the others by code
        (None, [], []),  # no deal, nothing priced
        (None, [GBP_5, EUR_40], [EUR_40, GBP_5]),
    ],
)
def test_a_players_values_are_listed_per_currency_the_deals_first(
    deal: str | None, given: list[PlayerValue], listed: list[PlayerValue]
) -> None:
    assert by_currency(deal, given) == listed
