import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickback.core.addresses import parse_networks
from clickback.core.clickids import MAX_CLOCK_SKEW, ClickIdCodec
from clickback.core.intake import (
    ALIASES,
    MAX_IGNORED_SHOWN,
    Attribution,
    Duplicate,
    Existing,
    Postback,
    RawPostback,
    Refused,
    StatusChange,
    attribute,
    on_repeat,
    read_postback,
    sign,
)
from clickback.core.lifecycle import Status
from clickback.core.limits import (
    MAX_BODY_BYTES,
    MAX_EVENT_LEN,
    MAX_PARAM_NAME_LEN,
    MAX_PARAM_VALUE_LEN,
    MAX_PARAMS,
    MAX_PAYOUT,
    MAX_SUB_ID_LEN,
    MAX_TXN_ID_LEN,
)
from clickback.core.macros import compile_template
from clickback.core.model import Advertiser, Affiliate, Catalog, Click, Offer
from clickback.core.reasons import Reason, Rejected

CODEC = ClickIdCodec(b"k" * 32)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
IN_FLIGHT = timedelta(minutes=30)

# The personas of tests/conftest.py: Northstar (casino with a custom event, sportsbook) and its
# rival Southgate, whose token must not reach Northstar's clicks.
TOKEN = "northstar-token"
NORTHSTAR = Advertiser(1, "Northstar Gaming", TOKEN)
SOUTHGATE = Advertiser(2, "Southgate Bets", "southgate-token")
CASINO = Offer(
    10,
    NORTHSTAR.id,
    "Northstar Casino",
    compile_template("https://casino.example.com/go?cid={click_id}"),
    "EUR",
    payouts={"registration": Decimal("1.50"), "first_deposit": Decimal("50")},
    custom_events=frozenset({"vip_level"}),
)
SPORTSBOOK = Offer(
    11,
    NORTHSTAR.id,
    "Northstar Sportsbook",
    compile_template("https://sports.example.com/?c={clickid}"),
    "GBP",
)
POKER = Offer(
    20, SOUTHGATE.id, "Southgate Poker", compile_template("https://poker.example.net/{click_id}"), "USD"
)
ALICE = Affiliate(100, "Alice Media")
# Postback security: Guarded rotated its token an hour ago (the old one valid for another hour),
# takes postbacks from one network only and signs them; Rotated's overlap has ended.
SECRET = "signing-secret-of-guarded"
GUARDED = Advertiser(
    3,
    "Guarded Casino",
    "guarded-token-new",
    previous_token="guarded-token-old",
    previous_token_until=NOW + timedelta(hours=1),
    allowed_ips=parse_networks(["203.0.113.0/24", "2001:db8::/32"]),
    signing_secret=SECRET,
)
ROTATED = Advertiser(
    4, "Rotated Bets", "rotated-token-new", previous_token="rotated-token-old", previous_token_until=NOW
)
GUARDED_OFFER = Offer(
    30, GUARDED.id, "Guarded Slots", compile_template("https://g.example/{click_id}"), "EUR"
)
CATALOG = Catalog.build(
    1, [NORTHSTAR, SOUTHGATE, GUARDED, ROTATED], [CASINO, SPORTSBOOK, POKER, GUARDED_OFFER], [ALICE], []
)

CLICKED_AT = NOW - timedelta(minutes=10)
CLICK_ID = CODEC.mint(CLICKED_AT)
OTHER_CLICK_ID = CODEC.mint(CLICKED_AT)
BASE = {"token": TOKEN, "click_id": CLICK_ID, "event": "registration"}


def params(**changes: str | None) -> dict[str, str]:
    """The minimal valid postback with some parameters changed (None drops one)."""
    merged: dict[str, str | None] = {**BASE, **changes}
    return {name: value for name, value in merged.items() if value is not None}


def query(**changes: str | None) -> bytes:
    return urlencode(params(**changes)).encode()


def raw(
    qs: bytes = b"", body: bytes = b"", content_type: str = "", body_too_large: bool = False
) -> RawPostback:
    return RawPostback(
        received_at=NOW,
        ip="203.0.113.7",
        method="POST" if body else "GET",
        query=qs,
        body=body,
        content_type=content_type,
        body_too_large=body_too_large,
    )


def signed(
    qs: bytes,
    body: bytes = b"",
    *,
    secret: str = SECRET,
    at: datetime = NOW,
    ip: str = "203.0.113.7",
    signature: str | None = None,
) -> RawPostback:
    """A postback signed as docs/postbacks.md says a sender signs it."""
    stamp = str(int(at.timestamp()))
    given = signature if signature is not None else "sha256=" + sign(secret, stamp, qs, body)
    return replace(raw(qs, body), ip=ip, timestamp=stamp, signature=given)


def read(
    qs: bytes = b"", body: bytes = b"", content_type: str = "", body_too_large: bool = False
) -> Postback | Refused:
    return read_postback(raw(qs, body, content_type, body_too_large), CATALOG, CODEC)


def accepted(result: Postback | Refused) -> Postback:
    assert isinstance(result, Postback), result
    return result


def reason_of(result: Postback | Refused) -> Reason:
    assert isinstance(result, Refused), result
    return result.rejected.reason


def json_body(doc: object) -> tuple[bytes, str]:
    return json.dumps(doc).encode(), "application/json"


def form(**values: str) -> tuple[bytes, str]:
    return urlencode(values).encode(), "application/x-www-form-urlencoded"


def click_on(offer: Offer, click_id: str = CLICK_ID) -> Click:
    return Click(
        click_id=click_id,
        clicked_at=CLICKED_AT,
        link_id=1,
        affiliate_id=ALICE.id,
        offer_id=offer.id,
        campaign="spring",
        subs=("s1", "", "", "", ""),
        source="",
        landing_page="",
        ip="198.51.100.1",
        user_agent="Mozilla/5.0",
        referrer="",
    )


# --- read_postback: one refusal per reason ------------------------------------------------------

EXTRA = {f"x{i}": "1" for i in range(MAX_PARAMS)}
FOREIGN_ID = ClickIdCodec(b"another installation's key 32b!!").mint(CLICKED_AT)
FUTURE_ID = CODEC.mint(NOW + MAX_CLOCK_SKEW + timedelta(seconds=1))

REFUSALS = [
    pytest.param(raw(query(), body_too_large=True), Reason.BODY_TOO_LARGE, id="body_too_large_flag"),
    pytest.param(
        raw(query(), b"sub1=" + b"x" * MAX_BODY_BYTES, "application/x-www-form-urlencoded"),
        Reason.BODY_TOO_LARGE,
        id="body_too_large_bytes",
    ),
    pytest.param(
        raw(urlencode(params() | dict(list(EXTRA.items())[: MAX_PARAMS - 2])).encode()),
        Reason.TOO_MANY_PARAMETERS,
        id="too_many_parameters_query",
    ),
    pytest.param(
        raw(query(**dict(list(EXTRA.items())[:40])), *form(**{f"y{i}": "1" for i in range(40)})),
        Reason.TOO_MANY_PARAMETERS,
        id="too_many_parameters_query_and_body",
    ),
    pytest.param(
        raw(b"", *json_body(params() | EXTRA)), Reason.TOO_MANY_PARAMETERS, id="too_many_parameters_json"
    ),
    pytest.param(raw(b"", *json_body([params()])), Reason.TOO_MANY_PARAMETERS, id="json_array_not_object"),
    pytest.param(
        raw(query(**{"n" * (MAX_PARAM_NAME_LEN + 1): "1"})), Reason.PARAMETER_TOO_LONG, id="name_too_long"
    ),
    pytest.param(
        raw(query(sub1="s" * (MAX_SUB_ID_LEN + 1))), Reason.PARAMETER_TOO_LONG, id="sub_id_too_long"
    ),
    pytest.param(raw(query(tid="t" * (MAX_TXN_ID_LEN + 1))), Reason.PARAMETER_TOO_LONG, id="txn_id_too_long"),
    pytest.param(raw(query(event="e" * (MAX_EVENT_LEN + 1))), Reason.PARAMETER_TOO_LONG, id="event_too_long"),
    pytest.param(
        raw(query(note="v" * (MAX_PARAM_VALUE_LEN + 1))), Reason.PARAMETER_TOO_LONG, id="value_too_long"
    ),
    pytest.param(raw(query(sub1="a\r\nb")), Reason.INVALID_CHARACTERS, id="crlf_in_sub_id"),
    pytest.param(raw(query(sub1="a\nb")), Reason.INVALID_CHARACTERS, id="lf_in_sub_id"),
    pytest.param(raw(query(sub1="a\x00b")), Reason.INVALID_CHARACTERS, id="nul_in_sub_id"),
    pytest.param(raw(query(sub1="a\x7fb")), Reason.INVALID_CHARACTERS, id="del_in_sub_id"),
    pytest.param(raw(query(sub1="a\ufffdb")), Reason.INVALID_CHARACTERS, id="replacement_char"),
    pytest.param(raw(query() + b"&sub1=%ff"), Reason.INVALID_CHARACTERS, id="invalid_utf8_escape"),
    pytest.param(raw(query() + b"&sub1=%C3%28"), Reason.INVALID_CHARACTERS, id="truncated_utf8_escape"),
    pytest.param(raw(query() + b"&sub1=%ED%A0%80"), Reason.INVALID_CHARACTERS, id="utf8_surrogate_escape"),
    pytest.param(raw(query() + b"&sub1=\xff"), Reason.INVALID_CHARACTERS, id="invalid_utf8_byte"),
    pytest.param(raw(query() + b"&x%0Ay=1"), Reason.INVALID_CHARACTERS, id="lf_in_name"),
    pytest.param(
        raw(query(), b"sub1=%ff", "application/x-www-form-urlencoded"),
        Reason.INVALID_CHARACTERS,
        id="invalid_utf8_in_form_body",
    ),
    pytest.param(
        raw(b"", b"{not json", "application/json"), Reason.INVALID_CHARACTERS, id="json_does_not_parse"
    ),
    pytest.param(
        raw(b"", *json_body(params() | {"sub1": {"nested": 1}})),
        Reason.INVALID_CHARACTERS,
        id="json_nested_value",
    ),
    pytest.param(
        raw(b"", *json_body(params() | {"sub1": True})), Reason.INVALID_CHARACTERS, id="json_boolean_value"
    ),
    pytest.param(
        raw(b"", json_body(params())[0], "application/x-www-form-urlencoded"),
        Reason.WRONG_CONTENT_TYPE,
        id="json_sent_as_a_form",
    ),
    pytest.param(raw(b"", json_body(params())[0]), Reason.WRONG_CONTENT_TYPE, id="json_without_content_type"),
    pytest.param(
        raw(query() + b"&click_id=" + OTHER_CLICK_ID.encode()),
        Reason.REPEATED_PARAMETER,
        id="repeated_click_id",
    ),
    pytest.param(raw(query() + b"&EVENT=deposit"), Reason.REPEATED_PARAMETER, id="repeated_in_other_case"),
    pytest.param(
        raw(query(), *form(event="deposit")), Reason.REPEATED_PARAMETER, id="repeated_in_query_and_body"
    ),
    pytest.param(
        raw(query(cid=OTHER_CLICK_ID)), Reason.CONFLICTING_ALIASES, id="conflicting_click_id_and_cid"
    ),
    pytest.param(raw(query(txn_id="T1", tid="T2")), Reason.CONFLICTING_ALIASES, id="conflicting_txn_id"),
    pytest.param(raw(query(token=None)), Reason.MISSING_TOKEN, id="missing_token"),
    pytest.param(raw(query(token="")), Reason.MISSING_TOKEN, id="empty_token"),
    pytest.param(raw(query(token="nope")), Reason.BAD_TOKEN, id="bad_token"),
    pytest.param(raw(query(token=TOKEN.upper())), Reason.BAD_TOKEN, id="token_in_wrong_case"),
    pytest.param(raw(query(click_id="{click_id}")), Reason.UNREPLACED_MACRO, id="unreplaced_click_id"),
    pytest.param(raw(query(sub1="{subacc4}")), Reason.UNREPLACED_MACRO, id="unreplaced_sub_id"),
    pytest.param(raw(query(txn_id="#reqid#")), Reason.UNREPLACED_MACRO, id="unreplaced_txn_id"),
    pytest.param(raw(query(click_id=None)), Reason.MISSING_CLICK_ID, id="missing_click_id"),
    pytest.param(raw(query(click_id=" ")), Reason.MISSING_CLICK_ID, id="blank_click_id"),
    pytest.param(raw(query(click_id="abc123")), Reason.MALFORMED_CLICK_ID, id="malformed_click_id"),
    pytest.param(raw(query(click_id=FOREIGN_ID)), Reason.FORGED_CLICK_ID, id="forged_click_id"),
    pytest.param(raw(query(click_id=FUTURE_ID)), Reason.FORGED_CLICK_ID, id="click_id_from_the_future"),
    pytest.param(raw(query(event=None)), Reason.MISSING_EVENT, id="missing_event"),
    pytest.param(raw(query(event=" ")), Reason.MISSING_EVENT, id="blank_event"),
    pytest.param(raw(query(status="maybe")), Reason.UNKNOWN_STATUS, id="unknown_status"),
    pytest.param(raw(query(payout="1,5")), Reason.INVALID_PAYOUT, id="payout_with_comma"),
    pytest.param(raw(query(payout="-5")), Reason.INVALID_PAYOUT, id="negative_payout"),
    pytest.param(raw(query(payout="NaN")), Reason.INVALID_PAYOUT, id="nan_payout"),
    pytest.param(raw(query(currency="EURO")), Reason.UNKNOWN_CURRENCY, id="unknown_currency"),
    pytest.param(raw(query(event="ngr", payout="-5,0")), Reason.INVALID_PAYOUT, id="negative_ngr_with_comma"),
    pytest.param(raw(query(event="deposit", payout="-5")), Reason.INVALID_PAYOUT, id="negative_deposit"),
    pytest.param(raw(query(event="ngr", period="2026-13")), Reason.INVALID_PERIOD, id="month_13"),
    pytest.param(raw(query(event="ngr", period="10/2026")), Reason.INVALID_PERIOD, id="period_not_iso"),
    pytest.param(raw(query(event="ngr", period="2025-07")), Reason.PERIOD_IN_THE_FUTURE, id="next_month"),
    pytest.param(
        raw(query(event="ngr", period="2099-12")), Reason.PERIOD_IN_THE_FUTURE, id="period_far_ahead"
    ),
    pytest.param(raw(query(event="ngr", period="2024-11")), Reason.PERIOD_TOO_OLD, id="period_too_old"),
    pytest.param(raw(query(event_time="30/11/2026")), Reason.INVALID_EVENT_TIME, id="event_time_not_iso"),
    pytest.param(raw(query(date="yesterday")), Reason.INVALID_EVENT_TIME, id="event_date_word"),
    pytest.param(raw(query(ts="2025-06-01T13:00:00Z")), Reason.EVENT_TIME_OUT_OF_RANGE, id="event_in_future"),
    pytest.param(raw(query(event_time="2024-11-01")), Reason.EVENT_TIME_OUT_OF_RANGE, id="event_too_old"),
    pytest.param(raw(query(token="rotated-token-old")), Reason.TOKEN_REPLACED, id="token_replaced"),
    pytest.param(
        signed(query(token=GUARDED.token), ip="198.51.100.9"), Reason.IP_NOT_ALLOWED, id="ip_not_allowed"
    ),
    pytest.param(raw(query(token=GUARDED.token)), Reason.MISSING_SIGNATURE, id="missing_signature"),
    pytest.param(
        signed(query(token=GUARDED.token), secret="another secret"), Reason.BAD_SIGNATURE, id="bad_signature"
    ),
    pytest.param(
        signed(query(token=GUARDED.token), at=NOW - timedelta(seconds=301)),
        Reason.SIGNATURE_EXPIRED,
        id="signature_expired",
    ),
]


@pytest.mark.parametrize(
    ("payout", "refused"),
    [
        ("25.1234", False),
        (str(MAX_PAYOUT), False),
        ("25.12345", True),
        (f"{MAX_PAYOUT}.0001", True),
    ],
)
def test_payouts_have_at_most_four_decimals_and_a_billion_and_the_hint_says_so(
    payout: str, refused: bool
) -> None:
    result = read(query(payout=payout))

    if refused:
        assert reason_of(result) is Reason.INVALID_PAYOUT
    else:
        assert accepted(result).payout == Decimal(payout)
    assert "at most 4 decimals and no more than 1000000000" in Reason.INVALID_PAYOUT.hint


@pytest.mark.parametrize(("sent", "reason"), REFUSALS)
def test_postback_is_refused_with_its_reason(sent: RawPostback, reason: Reason) -> None:
    assert reason_of(read_postback(sent, CATALOG, CODEC)) is reason


def test_every_reason_read_postback_can_give_is_in_the_table() -> None:
    tested = {param.values[1] for param in REFUSALS}
    # The rest come after read_postback (attribute, on_repeat, the store) or belong to clicks.
    later = {
        Reason.UNKNOWN_CLICK,
        Reason.FOREIGN_CLICK,
        Reason.UNKNOWN_EVENT,
        Reason.UNKNOWN_PLAYER,
        Reason.ATTRIBUTION_WINDOW_PASSED,
        # A pixel's (tests/core/test_pixel.py).
        Reason.UNKNOWN_PIXEL,
        Reason.WRONG_PIXEL,
        Reason.EVENT_BEFORE_CLICK,
        Reason.PERIOD_BEFORE_CLICK,
        Reason.MISSING_EXCHANGE_RATE,
        Reason.CONVERTED_AMOUNT_TOO_LARGE,
        Reason.TRANSACTION_CONFLICT,
        Reason.CPA_RULES_NOT_MET,  # the service, with the player's events (test_conversions_by_hand)
        Reason.INVALID_STATUS_TRANSITION,
        Reason.DUPLICATE,
        Reason.REPLAYED_SIGNATURE,
        Reason.STORAGE_UNAVAILABLE,
        Reason.NOT_READY,
        Reason.UNKNOWN_LINK,
        Reason.LINK_PAUSED,
        Reason.OFFER_PAUSED,
        Reason.LINK_ARCHIVED,
        Reason.OFFER_ARCHIVED,
        # A click's refused cost (tests/core/test_cost.py).
        Reason.INVALID_COST,
        Reason.INVALID_COST_CURRENCY,
    }
    assert tested | later == set(Reason)


def test_the_same_value_twice_is_not_a_repeat() -> None:
    postback = accepted(read(query(event="deposit") + b"&event=deposit&Event=deposit"))
    assert postback.event == "deposit"


def test_the_same_value_under_two_aliases_is_not_a_conflict() -> None:
    assert accepted(read(query(cid=CLICK_ID, subid=CLICK_ID))).click.value == CLICK_ID


def test_values_at_their_limits_are_accepted() -> None:
    postback = accepted(
        read(query(sub1="s" * MAX_SUB_ID_LEN, txn_id="t" * MAX_TXN_ID_LEN, note="v" * MAX_PARAM_VALUE_LEN))
    )
    assert postback.subs[0] == "s" * MAX_SUB_ID_LEN
    assert postback.txn_id == "t" * MAX_TXN_ID_LEN


def test_exactly_the_maximum_number_of_parameters_is_accepted() -> None:
    extra = dict(list(EXTRA.items())[: MAX_PARAMS - len(BASE)])
    postback = accepted(read(query(**extra)))
    assert len(postback.ignored) == MAX_IGNORED_SHOWN


def test_refusal_keeps_the_advertiser_and_click_id_learnt_before_it() -> None:
    result = read(query(click_id=FOREIGN_ID, affid="7"))
    assert isinstance(result, Refused)
    assert result == Refused(
        Rejected(Reason.FORGED_CLICK_ID, FOREIGN_ID), NORTHSTAR.id, FOREIGN_ID, ("affid",)
    )


def test_a_name_too_long_is_quoted_cut_between_words_never_inside_one() -> None:
    """A name holding what was sent (a JSON body read as a form is one long name) is quoted up to a
    word cut short: the beginning of a token, which the reply and the log could not find to mask."""
    result = read(b"click_id=" + CLICK_ID.encode() + b"&see+" + b"T" * 70)
    assert isinstance(result, Refused) and result.rejected.reason is Reason.PARAMETER_TOO_LONG
    assert result.rejected.detail == "see …"


def test_refusal_before_authentication_names_no_advertiser() -> None:
    result = read(query(token="nope"))
    assert isinstance(result, Refused)
    assert result.advertiser_id is None
    assert result.click_id == CLICK_ID


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (raw(query(click_id="{clickid}")), Reason.UNREPLACED_MACRO),
        (raw(query() + b"&event=deposit"), Reason.REPEATED_PARAMETER),
        (raw(query(cid=OTHER_CLICK_ID)), Reason.CONFLICTING_ALIASES),
        (raw(query(sub1="a\nb")), Reason.INVALID_CHARACTERS),
        (raw(query() + b"&sub1=%ff"), Reason.INVALID_CHARACTERS),
        (raw(query(sub1="s" * (MAX_SUB_ID_LEN + 1))), Reason.PARAMETER_TOO_LONG),
        (raw(query(**EXTRA)), Reason.TOO_MANY_PARAMETERS),
        (raw(query(), body_too_large=True), Reason.BODY_TOO_LARGE),
        # The token in a body that did not parse.
        (raw(b"", *form(**params(sub1="a\nb"))), Reason.INVALID_CHARACTERS),
        (raw(b"", *json_body(params(sub1={"nested": 1}))), Reason.INVALID_CHARACTERS),  # type: ignore[arg-type]
        (
            raw(b"", *json_body(params(secret=TOKEN, token=None, click_id="[clickid]"))),
            Reason.UNREPLACED_MACRO,
        ),
    ],
)
def test_a_refusal_before_authentication_names_the_advertiser_of_a_valid_token(
    sent: RawPostback, reason: Reason
) -> None:
    result = read_postback(sent, CATALOG, CODEC)
    assert isinstance(result, Refused)
    assert (result.rejected.reason, result.advertiser_id) == (reason, NORTHSTAR.id)


@pytest.mark.parametrize(
    "sent",
    [
        raw(query(click_id="{clickid}", token="nope")),
        raw(query(click_id="{clickid}", token=None)),
        # Two advertisers' tokens: whose it is cannot be told.
        raw(query(secret="southgate-token")),
        raw(query(sub1="a\nb", token=TOKEN.upper())),
    ],
)
def test_a_refusal_before_authentication_names_no_advertiser_without_one_valid_token(
    sent: RawPostback,
) -> None:
    result = read_postback(sent, CATALOG, CODEC)
    assert isinstance(result, Refused)
    assert result.advertiser_id is None


def test_a_refusal_before_authentication_names_the_advertiser_of_a_previous_token() -> None:
    result = read_postback(raw(query(token="rotated-token-old", click_id="{clickid}")), CATALOG, CODEC)
    assert isinstance(result, Refused)
    assert (result.rejected.reason, result.advertiser_id) == (Reason.UNREPLACED_MACRO, ROTATED.id)


def test_missing_click_id_points_at_the_parameter_that_holds_one() -> None:
    result = read(query(click_id=None, clid=CLICK_ID))
    assert isinstance(result, Refused)
    assert result.rejected == Rejected(
        Reason.MISSING_CLICK_ID, "parameter 'clid' holds a click ID: send it as click_id"
    )


@pytest.mark.parametrize(
    ("name", "field"), [("transaction_id", "txn_id"), ("sub1", "sub1"), ("txid", "txn_id")]
)
def test_missing_click_id_points_at_another_fields_parameter_that_holds_one(name: str, field: str) -> None:
    result = read(query(click_id=None, **{name: CLICK_ID}))
    assert isinstance(result, Refused)
    assert result.rejected == Rejected(
        Reason.MISSING_CLICK_ID,
        f"parameter '{name}' holds a click ID: send it as click_id ('{name}' is read as {field})",
    )


@pytest.mark.parametrize(
    ("sent", "detail"),
    [
        ("$clickid", "click_id=$clickid"),
        ("%7Bclick_id%7D", "click_id={click_id} (URL-encoded)"),
    ],
)
def test_a_dollar_or_double_encoded_placeholder_is_an_unreplaced_macro(sent: str, detail: str) -> None:
    result = read(query(click_id=sent))
    assert isinstance(result, Refused)
    assert result.rejected == Rejected(Reason.UNREPLACED_MACRO, detail)


def test_a_period_is_this_month_or_one_before_and_next_month_a_day_early() -> None:
    assert accepted(read(query(event="ngr", period="2025-06"))).period == "2025-06"
    assert accepted(read(query(event="ngr", period="2024-12"))).period == "2024-12"
    # 2025-06-30 at 12:00 UTC is already July east of UTC+12.
    last_day = replace(
        raw(query(event="ngr", period="2025-07")), received_at=datetime(2025, 6, 30, 12, tzinfo=UTC)
    )
    assert accepted(read_postback(last_day, CATALOG, CODEC)).period == "2025-07"


def test_a_json_body_may_start_with_a_byte_order_mark() -> None:
    body, kind = json_body(params())
    assert accepted(read(b"", "\ufeff".encode() + body, kind)).click.value == CLICK_ID


def test_a_json_body_in_another_encoding_than_utf8_is_refused() -> None:
    # json.loads reads UTF-16 too; the postback log, which keeps bodies as UTF-8, could not mask
    # the token in one.
    result = read(b"", json.dumps(params()).encode("utf-16"), "application/json")
    assert reason_of(result) is Reason.INVALID_CHARACTERS
    assert isinstance(result, Refused)
    assert result.rejected.detail == "the JSON body is not UTF-8"


def test_json_body_nested_too_deeply_is_refused_not_raised() -> None:
    # A 16 KiB body of "[" is well under the size limit; json.loads gives up on its depth.
    result = read(b"", b"[" * 5000, "application/json")
    assert reason_of(result) in {Reason.INVALID_CHARACTERS, Reason.TOO_MANY_PARAMETERS}


@pytest.mark.parametrize(
    ("name", "value"),
    [("token", "a\ud800b"), ("sub1", "a\ud800b"), ("x\udfff", "1")],
    ids=["token", "sub1", "name"],
)
def test_lone_surrogate_in_json_is_invalid_characters(name: str, value: str) -> None:
    # "\ud800" is valid JSON text but no UTF-8 string: nothing downstream can encode it, not even
    # the refusal's detail sent back.
    body = json.dumps(params() | {name: value}).encode()
    result = read(b"", body, "application/json")
    assert reason_of(result) is Reason.INVALID_CHARACTERS
    assert isinstance(result, Refused)
    assert result.rejected.detail.encode().startswith(name.encode(errors="backslashreplace"))


# --- read_postback: what an accepted postback holds ----------------------------------------------


@pytest.mark.parametrize(
    ("alias", "value", "field", "expected"),
    [
        *[(name, CLICK_ID, "click_id", CLICK_ID) for name in ("clickid", "cid", "subid", "cnv_id")],
        *[(name, "T-1", "txn_id", "T-1") for name in ("tid", "txid", "transaction_id", "order_id")],
        *[(name, "deposit", "event", "deposit") for name in ("goal", "et", "event_type")],
        *[(name, "12.50", "payout", Decimal("12.50")) for name in ("amount", "revenue", "sum")],
        ("cnv_status", "rejected", "status", Status.REJECTED),
        ("conv_status", "3", "status", Status.REJECTED),
        ("cnv_currency", "usd", "currency", "USD"),
        ("cur", "GBP", "currency", "GBP"),
        ("secret", TOKEN, "token", NORTHSTAR),
    ],
    # The same test IDs in every process (pytest-xdist's workers must agree): not the random ID.
    ids=lambda value: "click-id" if value == CLICK_ID else None,
)
def test_alias_of_another_platform_fills_our_field(
    alias: str, value: str, field: str, expected: object
) -> None:
    postback = accepted(read(query(**{field: None, alias: value})))
    actual = {
        "click_id": postback.click.value,
        "txn_id": postback.txn_id,
        "event": postback.event,
        "payout": postback.payout,
        "status": postback.status,
        "currency": postback.currency,
        "token": postback.advertiser,
    }[field]
    assert actual == expected
    assert postback.ignored == ()


def test_every_alias_belongs_to_exactly_one_field() -> None:
    names = [alias for aliases in ALIASES.values() for alias in aliases]
    assert len(names) == len(set(names))


def test_sub_ids_and_player_id_are_kept() -> None:
    postback = accepted(read(query(sub1="a", s2="b", sub5="e", player_id="p-9")))
    assert postback.subs == ("a", "b", "", "", "e")
    assert postback.player_id == "p-9"


@pytest.mark.parametrize(
    ("sent", "event"),
    [
        ("ftd", "first_deposit"),
        ("FTD", "first_deposit"),
        ("First-Deposit", "first_deposit"),
        ("reg", "registration"),
        ("signup", "registration"),
        ("sign up", "registration"),
        ("kyc", "verification"),
        ("dep", "deposit"),
        ("qftd", "qualified_cpa"),
        ("Sale", "sale"),
        ("vip_level", "vip_level"),
    ],
)
def test_event_spelling_of_another_platform_is_normalised(sent: str, event: str) -> None:
    assert accepted(read(query(event=sent))).event == event


def test_without_status_the_postback_is_approved_and_says_no_status_was_given() -> None:
    postback = accepted(read(query()))
    assert postback.status is Status.APPROVED
    assert postback.status_given is False


@pytest.mark.parametrize(("sent", "status"), [("2", Status.PENDING), ("approved", Status.APPROVED)])
def test_given_status_is_parsed_and_marked_as_given(sent: str, status: Status) -> None:
    postback = accepted(read(query(status=sent)))
    assert postback.status is status
    assert postback.status_given is True


def test_blank_status_counts_as_not_given() -> None:
    postback = accepted(read(query(status=" ")))
    assert (postback.status, postback.status_given) == (Status.APPROVED, False)


@pytest.mark.parametrize(
    ("txn", "key"),
    [("T-1", "T-1"), (" T-2 ", "T-2"), (None, "click:" + CLICK_ID), ("", "click:" + CLICK_ID)],
    ids=["txn", "padded-txn", "no-txn", "blank-txn"],
)
def test_dedupe_key_is_the_transaction_id_or_the_click(txn: str | None, key: str) -> None:
    assert accepted(read(query(txn_id=txn))).dedupe_key == key


def test_unknown_parameter_names_are_reported_as_ignored() -> None:
    postback = accepted(read(query(affid="7", Campaign="x")))
    assert postback.ignored == ("affid", "campaign")


def test_payout_and_currency_are_parsed() -> None:
    postback = accepted(read(query(payout="25.50", currency="eur")))
    assert (postback.payout, postback.currency) == (Decimal("25.50"), "EUR")


def test_json_body_is_read() -> None:
    body, content_type = json_body(params(event="ftd") | {"payout": 25.5, "txn_id": 77})
    postback = accepted(read(b"", body, content_type + "; charset=utf-8"))
    assert (postback.advertiser, postback.click.value) == (NORTHSTAR, CLICK_ID)
    assert (postback.event, postback.payout, postback.txn_id) == ("first_deposit", Decimal("25.5"), "77")


def test_json_body_and_query_are_read_together() -> None:
    body, content_type = json_body({"click_id": CLICK_ID, "event": "deposit"})
    postback = accepted(read(urlencode({"token": TOKEN}).encode(), body, content_type))
    assert (postback.advertiser, postback.event) == (NORTHSTAR, "deposit")


def test_form_body_is_read() -> None:
    postback = accepted(read(b"", *form(**params(sub1="from form", amount="3"))))
    assert (postback.subs[0], postback.payout) == ("from form", Decimal(3))


def test_body_without_content_type_is_read_as_a_form() -> None:
    postback = accepted(read(b"", urlencode(params(event="reg")).encode()))
    assert postback.event == "registration"


@pytest.mark.parametrize(
    "content_type",
    ["text/json", "application/vnd.api+json", "Application/Problem+JSON; charset=utf-8", "text/plain"],
)
def test_json_under_another_json_type_or_as_plain_text_is_read(content_type: str) -> None:
    body = json.dumps(params(event="ftd", token=None) | {"payout": 25.5}).encode()
    postback = accepted(read(urlencode({"token": TOKEN}).encode(), b"\xef\xbb\xbf\n" + body, content_type))
    assert (postback.advertiser, postback.event, postback.payout) == (
        NORTHSTAR,
        "first_deposit",
        Decimal("25.5"),
    )


def test_plain_text_that_is_no_json_object_is_read_as_a_form() -> None:
    assert accepted(read(b"", urlencode(params()).encode(), "text/plain")).click.value == CLICK_ID


@pytest.mark.parametrize("content_type", ["", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_json_object_not_sent_as_json_is_refused_saying_so_without_echoing_the_body(
    content_type: str,
) -> None:
    # Long enough that, read as a form, it was one parameter over its limit.
    body = json.dumps(params(sub1="s" * 100)).encode()
    result = read(b"", body, content_type)
    assert isinstance(result, Refused)
    assert result.rejected.reason is Reason.WRONG_CONTENT_TYPE
    assert "Content-Type: application/json" in result.rejected.reason.hint
    assert result.rejected.detail == (
        f"sent as {content_type}" if content_type else "sent without a Content-Type"
    )
    assert result.ignored == ()


def test_blank_body_is_ignored() -> None:
    assert accepted(read(query(), b"  \r\n", "application/json")).click.value == CLICK_ID


# --- read_postback never raises -----------------------------------------------------------------

NAMES = sorted({alias for aliases in ALIASES.values() for alias in aliases})
names = st.one_of(st.sampled_from(NAMES), st.text(max_size=12))
texts = st.one_of(
    st.text(max_size=40), st.sampled_from([CLICK_ID, TOKEN, "registration", "1", "25.5", "EUR", "{x}"])
)
# Half the time on top of a valid postback, so that the later steps see arbitrary values too.
bases = st.sampled_from([{}, BASE])


@settings(max_examples=300)
@given(data=st.binary(max_size=400))
def test_arbitrary_query_bytes_never_raise(data: bytes) -> None:
    assert isinstance(read(data), Postback | Refused)


@settings(max_examples=300)
@given(data=st.binary(max_size=400), content_type=st.sampled_from(["", "application/json", "text/plain"]))
def test_arbitrary_body_bytes_never_raise(data: bytes, content_type: str) -> None:
    assert isinstance(read(query(), data, content_type), Postback | Refused)


@settings(max_examples=100)
@given(base=bases, sent=st.dictionaries(names, texts, max_size=8))
def test_arbitrary_text_parameters_never_raise(base: dict[str, str], sent: dict[str, str]) -> None:
    assert isinstance(read(urlencode(base | sent).encode()), Postback | Refused)


@settings(max_examples=100)
@given(base=bases, sent=st.dictionaries(names, st.one_of(texts, st.integers(), st.floats()), max_size=8))
def test_arbitrary_json_parameters_never_raise(
    base: dict[str, str], sent: dict[str, str | int | float]
) -> None:
    assert isinstance(read(b"", *json_body(base | sent)), Postback | Refused)


# --- attribute ------------------------------------------------------------------------------------


def postback(**changes: str | None) -> Postback:
    return accepted(read(query(**changes)))


def test_young_click_not_yet_recorded_is_kept_without_a_click() -> None:
    result = attribute(postback(payout="5", currency="USD"), None, CATALOG, NOW, IN_FLIGHT)
    assert result == Attribution(None, Decimal(5), "USD", NOW)


def test_click_in_flight_exactly_at_the_window_is_kept() -> None:
    result = attribute(postback(), None, CATALOG, CLICKED_AT + IN_FLIGHT, IN_FLIGHT)
    assert result == Attribution(None, None, None, CLICKED_AT + IN_FLIGHT)


def test_old_click_not_recorded_is_unknown() -> None:
    late = CLICKED_AT + IN_FLIGHT + timedelta(milliseconds=1)
    assert attribute(postback(), None, CATALOG, late, IN_FLIGHT) == Rejected(Reason.UNKNOWN_CLICK, CLICK_ID)


@pytest.mark.parametrize(("event", "kept"), [("vip_level", True), ("deposit", True), ("jackpot", False)])
def test_click_in_flight_takes_standard_and_the_advertisers_custom_events(event: str, kept: bool) -> None:
    result = attribute(postback(event=event), None, CATALOG, NOW, IN_FLIGHT)
    assert isinstance(result, Attribution) is kept
    if not kept:
        assert isinstance(result, Rejected)
        assert result.reason is Reason.UNKNOWN_EVENT


def test_click_on_another_advertisers_offer_is_foreign() -> None:
    result = attribute(postback(), click_on(POKER), CATALOG, NOW, IN_FLIGHT)
    assert result == Rejected(Reason.FOREIGN_CLICK, CLICK_ID)


def test_click_on_an_offer_no_longer_in_the_catalog_is_foreign() -> None:
    gone = Offer(99, NORTHSTAR.id, "Gone", CASINO.url, "EUR")
    result = attribute(postback(), click_on(gone), CATALOG, NOW, IN_FLIGHT)
    assert result == Rejected(Reason.FOREIGN_CLICK, CLICK_ID)


@pytest.mark.parametrize(
    ("offer", "event", "kept"),
    [
        (CASINO, "vip_level", True),
        (CASINO, "registration", True),
        (CASINO, "jackpot", False),
        # A custom event belongs to its offer, not to every offer of the advertiser.
        (SPORTSBOOK, "vip_level", False),
        (SPORTSBOOK, "sale", True),
    ],
)
def test_event_must_be_standard_or_a_custom_event_of_the_offer(offer: Offer, event: str, kept: bool) -> None:
    result = attribute(postback(event=event), click_on(offer), CATALOG, NOW, IN_FLIGHT)
    if kept:
        assert isinstance(result, Attribution)
        assert result.click == click_on(offer)
    else:
        assert isinstance(result, Rejected)
        assert result.reason is Reason.UNKNOWN_EVENT
        assert f"'{event}' arrived" in result.detail


@pytest.mark.parametrize(
    ("offer", "changes", "payout", "currency"),
    [
        # The postback's own amount wins, in its currency or else the offer's.
        (CASINO, {"event": "registration", "payout": "7", "currency": "USD"}, "7", "USD"),
        (CASINO, {"event": "registration", "payout": "7"}, "7", "EUR"),
        (CASINO, {"event": "registration", "payout": "0"}, "0", "EUR"),
        # Otherwise the offer's default for the event, in the offer's currency.
        (CASINO, {"event": "registration"}, "1.50", "EUR"),
        (CASINO, {"event": "ftd", "currency": "USD"}, "50", "EUR"),
        # Else zero.
        (CASINO, {"event": "deposit"}, "0", "EUR"),
        (SPORTSBOOK, {"event": "registration"}, "0", "GBP"),
    ],
)
def test_price_of_a_conversion(offer: Offer, changes: dict[str, str], payout: str, currency: str) -> None:
    result = attribute(postback(**changes), click_on(offer), CATALOG, NOW, IN_FLIGHT)
    assert result == Attribution(click_on(offer), Decimal(payout), currency, NOW)


# --- on_repeat ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "status", "outcome"),
    [
        (Status.PENDING, None, Duplicate()),
        (Status.CANCELLED, None, Duplicate()),
        (Status.PENDING, "pending", Duplicate()),
        (Status.APPROVED, "approved", Duplicate()),
        (Status.CANCELLED, "cancelled", Duplicate()),
        (Status.PENDING, "approved", StatusChange(Status.APPROVED)),
        (Status.PENDING, "rejected", StatusChange(Status.REJECTED)),
        (Status.APPROVED, "rejected", StatusChange(Status.REJECTED)),
        (Status.APPROVED, "cancelled", StatusChange(Status.CANCELLED)),
        (Status.REJECTED, "approved", StatusChange(Status.APPROVED)),
        (Status.CANCELLED, "approved", Rejected(Reason.INVALID_STATUS_TRANSITION, "cancelled → approved")),
        (Status.APPROVED, "pending", Rejected(Reason.INVALID_STATUS_TRANSITION, "approved → pending")),
    ],
)
def test_repeated_transaction_on_the_same_click(
    existing: Status, status: str | None, outcome: Duplicate | StatusChange | Rejected
) -> None:
    repeat = postback(txn_id="T-1", status=status)
    assert on_repeat(repeat, Existing(1, CLICK_ID, existing)) == outcome


def test_transaction_id_seen_on_another_click_is_a_conflict() -> None:
    repeat = postback(txn_id="T-1", status="approved")
    result = on_repeat(repeat, Existing(1, OTHER_CLICK_ID, Status.PENDING))
    assert result == Rejected(Reason.TRANSACTION_CONFLICT, f"T-1: recorded on click {OTHER_CLICK_ID}")


def test_transaction_id_seen_for_another_player_of_the_click_is_a_conflict() -> None:
    """Two players from one click, and a platform numbering transactions per player: the second
    player's transaction 1 neither repeats nor changes the first player's."""
    theirs = Existing(1, CLICK_ID, Status.APPROVED, player_id="P1")
    for status in (None, "rejected"):
        repeat = postback(txn_id="1", player_id="P2", status=status)
        assert on_repeat(repeat, theirs) == Rejected(Reason.TRANSACTION_CONFLICT, "1: recorded for player P1")
    assert on_repeat(postback(txn_id="1", player_id="P1", status="rejected"), theirs) == StatusChange(
        Status.REJECTED
    )
    assert on_repeat(postback(txn_id="1", status="rejected"), theirs) == StatusChange(Status.REJECTED)


# --- postback security: token rotation, allowlist, signature -------------------------------------


def test_a_replaced_token_is_accepted_until_its_overlap_ends() -> None:
    ends = GUARDED.previous_token_until
    assert ends is not None
    during = signed(query(token="guarded-token-old"), at=ends - timedelta(seconds=1))
    after = signed(query(token="guarded-token-old"), at=ends)
    assert accepted(read_postback(replace(during, received_at=ends - timedelta(seconds=1)), CATALOG, CODEC))
    assert reason_of(read_postback(replace(after, received_at=ends), CATALOG, CODEC)) is Reason.TOKEN_REPLACED
    assert accepted(read(query(token="rotated-token-new"))).advertiser == ROTATED
    assert reason_of(read(query(token="rotated-token-older"))) is Reason.BAD_TOKEN


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("203.0.113.200", True),
        ("::ffff:203.0.113.5", True),
        ("2001:db8::17", True),
        ("203.0.114.1", False),
        ("2001:db9::1", False),
        ("", False),
        ("not an address", False),
    ],
)
def test_the_allowlist_takes_its_networks_and_refuses_other_addresses(ip: str, allowed: bool) -> None:
    result = read_postback(signed(query(token=GUARDED.token), ip=ip), CATALOG, CODEC)
    if allowed:
        assert accepted(result).advertiser == GUARDED
    else:
        assert reason_of(result) is Reason.IP_NOT_ALLOWED


def test_a_signed_postback_is_accepted_and_carries_its_signature() -> None:
    qs = query(token=GUARDED.token, event="first_deposit", payout="50")
    body, kind = form(sub2="x")
    sent = replace(signed(qs, body), content_type=kind)
    postback = accepted(read_postback(sent, CATALOG, CODEC))
    assert postback.signature == sign(SECRET, sent.timestamp, qs, body)
    # Upper-case hex, and without the "sha256=" prefix, are the same signature.
    bare = replace(sent, signature=sent.signature.removeprefix("sha256=").upper())
    assert accepted(read_postback(bare, CATALOG, CODEC)).signature == postback.signature


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"query": query(token=GUARDED.token, event="deposit")}, Reason.BAD_SIGNATURE),
        ({"body": b"sub1=changed"}, Reason.BAD_SIGNATURE),
        ({"timestamp": "1e9"}, Reason.BAD_SIGNATURE),
        # str.isdigit() holds for superscripts, which int() refuses: a 500 until 2026-12-06.
        ({"timestamp": "\u00b9\u00b2\u00b3"}, Reason.BAD_SIGNATURE),
        ({"signature": ""}, Reason.MISSING_SIGNATURE),
        ({"received_at": NOW + timedelta(seconds=301)}, Reason.SIGNATURE_EXPIRED),
    ],
)
def test_a_signature_covers_the_query_the_body_and_the_time(
    change: dict[str, object], reason: Reason
) -> None:
    sent = signed(query(token=GUARDED.token))
    assert accepted(read_postback(replace(sent, received_at=NOW + timedelta(seconds=299)), CATALOG, CODEC))
    assert reason_of(read_postback(replace(sent, **change), CATALOG, CODEC)) is reason  # type: ignore[arg-type]


def test_advertisers_without_security_options_are_not_asked_for_them() -> None:
    assert accepted(read(query())).signature == ""


def test_the_attribution_window_counts_from_the_click_to_the_event() -> None:
    from dataclasses import replace as changed

    windowed = changed(CASINO, attribution_days=7)
    catalog = Catalog.build(1, [NORTHSTAR, SOUTHGATE], [windowed, SPORTSBOOK, POKER], [ALICE], [])
    click = click_on(windowed)

    def at(days: float, *, through_player: bool = False) -> Attribution | Rejected:
        postback = accepted(read(query(event="first_deposit")))
        now = CLICKED_AT + timedelta(days=days)
        return attribute(postback, click, catalog, now, IN_FLIGHT, through_player=through_player)

    assert isinstance(at(6.9), Attribution)
    late = at(7.1)
    assert isinstance(late, Rejected) and late.reason is Reason.ATTRIBUTION_WINDOW_PASSED
    assert late.detail == "7 days after the click; the offer's window is 7 days"
    # A known player's later deposit: their lifetime, not the window, counts.
    assert isinstance(at(30, through_player=True), Attribution)
    # Without a window any age counts.
    assert isinstance(
        attribute(accepted(read(query())), click_on(CASINO), CATALOG, NOW + timedelta(days=400), IN_FLIGHT),
        Attribution,
    )
