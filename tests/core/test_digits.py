import pytest

from clickback.core.digits import is_digits


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
