"""The postback log keeps the token's last characters only, wherever and however it was sent."""

import pytest

from clickback.core.redact import masked, redact_body, redact_query

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (f"click_id=a&token={TOKEN}&event=sale", "click_id=a&token=***cdef&event=sale"),
        (f"SECRET={TOKEN}", "SECRET=***cdef"),
        (f"%74oken={TOKEN}", "%74oken=***cdef"),  # the name as intake decodes it
        (f"+token+={TOKEN}", "+token+=***cdef"),
        ("token=short", "token=***"),
        ("token=", "token="),
        ("tokens=x&my_token=y", "tokens=x&my_token=y"),
        ("event=sale&payout=1", "event=sale&payout=1"),
    ],
)
def test_a_query_keeps_everything_but_the_token(sent: str, kept: str) -> None:
    assert redact_query(sent) == kept


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (f'{{"token": "{TOKEN}", "event": "sale"}}', '{"token": "***cdef", "event": "sale"}'),
        ('{"a": 1, " Secret " : 12345678901234567890}', '{"a": 1, " Secret " : "***7890"}'),
        ('{"token": "0123', '{"token": "***"'),  # cut short
        ('{"\\ud800": null}', '{"\\ud800": null}'),  # as sent, escapes included
        (f"token={TOKEN}&event=sale", "token=***cdef&event=sale"),  # a form body
        # What intake's JSON reader also takes: a byte order mark, a name or a value escaped.
        (f'\ufeff{{"token": "{TOKEN}"}}', '\ufeff{"token": "***cdef"}'),
        (f'{{"\\u0074oken": "{TOKEN}"}}', '{"\\u0074oken": "***cdef"}'),
        ('{"token": "0123456789abcde\\u0066"}', '{"token": "***cdef"}'),
        ('{"a": "token", "b": "x\\": 1", "token": 7}', '{"a": "token", "b": "x\\": 1", "token": "***"}'),
    ],
)
def test_a_body_keeps_everything_but_the_token(sent: str, kept: str) -> None:
    assert redact_body(sent) == kept


def test_a_short_value_is_hidden_whole() -> None:
    assert masked("x" * 15) == "***"
    assert masked("x" * 12 + "wxyz") == "***wxyz"
