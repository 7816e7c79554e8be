"""CSV cells (core.statements.csv_cell): no text a spreadsheet would run as a formula."""

from decimal import Decimal

import pytest

from clickback.core.statements import csv_cell


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
