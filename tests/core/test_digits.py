import pytest

from clickback.core.digits import id_of, is_digits


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("0", True),
        ("0123456789", True),
        ("", False),
        ("-1", False),
        ("1.5", False),
        (" 1", False),
        ("\u00b2", False),  # superscript two: str.isdigit() says yes, int() refuses it
        ("\u0661\u0662", False),  # Arabic-Indic digits: int() reads them as 12
        ("\uff11", False),  # fullwidth one
    ],
)
def test_only_ascii_digits_are_digits(text: str, digits: bool) -> None:
    assert is_digits(text) is digits


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("1", 1),
        ("2147483647", 2**31 - 1),
        ("2147483648", None),  # past the database's INTEGER: PostgreSQL failed the query (a 500)
        ("999999999999999999", None),
        ("0", None),
        ("007", 7),
        ("\u00b2", None),
        ("", None),
    ],
)
def test_an_id_is_a_positive_integer_the_database_can_hold(text: str, found: int | None) -> None:
    assert id_of(text) == found
