"""The postback log keeps the token's last characters only, wherever and however it was sent."""

from datetime import UTC, datetime

import pytest

from clickback.core.intake import _FIELD_OF, RawPostback
from clickback.core.model import Advertiser, Catalog
from clickback.core.outcome import Outcome, Result
from clickback.core.reasons import Reason
from clickback.core.redact import (
    is_secret_name,
    known_secrets,
    mask_known,
    masked,
    redact_body,
    redact_query,
    redact_text,
    scrubbed,
)

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
        # Names that look like a credential's: misspelt, another platform's, any letter case.
        ("tokens=x&my_token=y", "tokens=***&my_token=***"),
        (f"tokn={TOKEN}&api_key={TOKEN}&X-Api-Key=1", "tokn=***cdef&api_key=***cdef&X-Api-Key=***"),
        (f"Password={TOKEN}&auth=x&sig=y", "Password=***cdef&auth=***&sig=***"),
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


def test_no_name_intake_reads_looks_like_a_credential_but_the_tokens() -> None:
    assert {name for name, field in _FIELD_OF.items() if is_secret_name(name)} == {"token", "secret"}


OTHER = "AbCdEfGhIjKlMnOpQrStUvWxYz-_0123"
SIGNING = "9f" * 32
ADVERTISERS = [
    Advertiser(1, "Northstar", TOKEN, previous_token=OTHER, signing_secret=SIGNING),
    Advertiser(2, "Other", "z" * 32),
]
CATALOG = Catalog.build(1, ADVERTISERS, [], [], [])


def raw(query: str = "", body: str = "") -> RawPostback:
    return RawPostback(datetime.now(UTC), "127.0.0.1", "POST", query.encode(), body.encode())


@pytest.mark.parametrize(
    ("sent", "resolved", "found"),
    [
        (raw("event=sale"), None, ()),
        (raw("event=sale"), 1, (SIGNING, TOKEN, OTHER)),  # the advertiser it resolved to
        (raw(f"tokn={TOKEN}"), None, (SIGNING, TOKEN, OTHER)),  # its token under any name
        (raw(f"x={OTHER.replace('-', '%2D')}"), None, (SIGNING, TOKEN, OTHER)),  # percent-encoded
        (raw(body=f'{{"click_id":"a","x":"{TOKEN}"}}'), None, (SIGNING, TOKEN, OTHER)),  # a JSON body
        (raw(body='{"x":"\\u0030' + TOKEN[1:] + '"}'), None, (SIGNING, TOKEN, OTHER)),  # escaped
        (raw(body=f"note={SIGNING}"), None, (SIGNING, TOKEN, OTHER)),  # its signing secret
        (raw("x=" + "z" * 32), None, ("z" * 32,)),
    ],
)
def test_the_secrets_to_mask_are_those_of_whoever_the_postback_holds_a_token_of(
    sent: RawPostback, resolved: int | None, found: tuple[str, ...]
) -> None:
    assert known_secrets(sent, CATALOG, resolved) == found


def test_a_known_secret_is_masked_anywhere_in_any_letter_case() -> None:
    text = f"a{TOKEN}b,{TOKEN.upper()},{SIGNING}"
    assert mask_known(text, (SIGNING, TOKEN)) == "a***cdefb,***CDEF,***9f9f"
    assert mask_known("nothing here", (TOKEN,)) == "nothing here"


def test_an_outcome_is_sent_and_logged_without_a_secret() -> None:
    json_as_form = f'{{"click_id":"a","token":"{TOKEN}"}}'
    outcome = Outcome(
        Result.REJECTED,
        Reason.MISSING_TOKEN,
        f"x={TOKEN}",
        ignored=(json_as_form.lower(), f"{{'x': '{OTHER}'}}"),
    )
    shown = scrubbed(outcome, (TOKEN, OTHER))
    assert shown.detail == "x=***cdef"
    assert shown.ignored == ('{"click_id":"a","token":"***cdef"}', "{'x': '***0123'}")
    assert redact_text(f'refused: {{"api_key": "{TOKEN}"}}') == 'refused: {"api_key": "***cdef"}'


@pytest.mark.parametrize(
    "sent",
    [
        f"click_id=a&tokn={TOKEN}&api_key=short&event=sale",
        f'{{"token": "{TOKEN}", "pin": 1234, "x": "{SIGNING}"}}',
        f'x={TOKEN}&{{"auth":"{OTHER}"}}',
    ],
)
def test_masking_what_is_masked_changes_nothing(sent: str) -> None:
    # A migration masks the log's old rows again (store/logmask.py): a token's tail, once shown,
    # is not then hidden as if it were a short value.
    secrets = (SIGNING, TOKEN, OTHER)
    for mask in (redact_query, redact_body, redact_text):
        once = mask_known(mask(sent), secrets)
        assert mask_known(mask(once), secrets) == once
    assert masked(masked(TOKEN)) == masked(TOKEN) == "***cdef"
    assert masked(masked("short")) == "***"
