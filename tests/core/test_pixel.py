"""The tracking pixel's rules: its cookie, its secrets, and its reading by the postback's steps."""

from dataclasses import replace
from urllib.parse import urlencode

import pytest

from clickback.core.intake import (
    PIXEL,
    S2S,
    Duplicate,
    Existing,
    Overrides,
    Postback,
    RawPostback,
    Refused,
    StatusChange,
    attribute,
    on_repeat,
    read_postback,
)
from clickback.core.lifecycle import Status
from clickback.core.model import Catalog
from clickback.core.pixel import click_id_from_cookie, cookie_attributes, without_secrets
from clickback.core.reasons import Reason, Rejected
from tests.core.test_intake import (
    ALICE,
    CASINO,
    CLICK_ID,
    CODEC,
    IN_FLIGHT,
    NORTHSTAR,
    NOW,
    OTHER_CLICK_ID,
    POKER,
    SOUTHGATE,
    SPORTSBOOK,
    TOKEN,
    click_on,
)

CODE = "Px7casinoCode123"
CATALOG = Catalog.build(
    1, [NORTHSTAR, SOUTHGATE], [replace(CASINO, pixel_code=CODE), SPORTSBOOK, POKER], [ALICE], []
)


def pixel(cookie: str = "", code: str = CODE, **params: str) -> Postback | Refused:
    raw = RawPostback(
        received_at=NOW,
        ip="203.0.113.7",
        method="GET",
        query=urlencode({"event": "registration"} | params).encode(),
        channel=PIXEL,
        pixel_code=code,
        cookie_click_id=cookie,
    )
    return read_postback(raw, CATALOG, CODEC)


def accepted(result: Postback | Refused) -> Postback:
    assert isinstance(result, Postback), result
    return result


def test_the_cookie_is_cross_site_over_https_and_lax_over_plain_http() -> None:
    assert cookie_attributes(True, 86_400) == "; Path=/p/; Max-Age=86400; HttpOnly; SameSite=None; Secure"
    assert cookie_attributes(False, 60) == "; Path=/p/; Max-Age=60; HttpOnly; SameSite=Lax"


@pytest.mark.parametrize(
    ("header", "found"),
    [
        (f"cb_click={CLICK_ID}", CLICK_ID),
        (f"theme=dark; cb_click={CLICK_ID}; lang=en", CLICK_ID),
        (f"cb_click={CLICK_ID};cb_click={OTHER_CLICK_ID}", CLICK_ID),
        (f"xcb_click={CLICK_ID}", ""),
        ('cb_click="quoted"', ""),
        ("cb_click=" + "A" * 33, ""),
        ("", ""),
    ],
    ids=["alone", "among_others", "twice", "other_name", "quoted", "too_long", "none"],
)
def test_the_click_id_is_read_from_the_cookie_header_only_when_it_can_be_one(header: str, found: str) -> None:
    assert click_id_from_cookie(header) == found


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        (b"event=sale&token=abc&txn_id=1", b"event=sale&txn_id=1"),
        (b"TOKEN=abc&event=sale", b"event=sale"),
        (b"secret=abc", b""),
        (b"%74oken=abc&event=sale", b"event=sale"),
        (b"event=sale&tokens=1", b"event=sale&tokens=1"),
    ],
)
def test_a_token_on_a_pixel_url_is_dropped_before_anything_reads_or_keeps_it(
    query: bytes, kept: bytes
) -> None:
    assert without_secrets(query) == kept


def test_a_pixel_is_authenticated_by_its_code_without_a_token() -> None:
    read = accepted(pixel(click_id=CLICK_ID))
    assert (read.advertiser, read.pixel_offer_id, read.channel) == (NORTHSTAR, CASINO.id, PIXEL)
    assert read.click is not None and read.click.value == CLICK_ID


def test_a_token_does_not_authenticate_a_pixel_with_an_unknown_code() -> None:
    read = pixel(code="nope", click_id=CLICK_ID, token=TOKEN)
    assert isinstance(read, Refused) and read.rejected == Rejected(Reason.UNKNOWN_PIXEL, "nope")


def test_the_cookie_gives_the_click_id_when_the_query_has_none_and_the_query_wins() -> None:
    assert accepted(pixel(cookie=CLICK_ID)).click_value == CLICK_ID
    assert accepted(pixel(cookie=OTHER_CLICK_ID, click_id=CLICK_ID)).click_value == CLICK_ID


def test_a_pixel_without_a_click_id_says_where_it_looked() -> None:
    read = pixel(player_id="p-1")
    assert isinstance(read, Refused)
    assert read.rejected.reason is Reason.MISSING_CLICK_ID
    assert "cb_click cookie" in read.rejected.detail


def test_a_pixel_conversion_is_pending_whatever_status_the_page_states() -> None:
    read = accepted(pixel(click_id=CLICK_ID, status="approved"))
    assert (read.status, read.status_given) == (Status.PENDING, False)
    assert "status" in read.ignored


def test_a_pixel_counts_only_its_own_offers_clicks() -> None:
    read = accepted(pixel(click_id=CLICK_ID))
    assert not isinstance(attribute(read, click_on(CASINO), CATALOG, NOW, IN_FLIGHT), Rejected)
    other = attribute(read, click_on(SPORTSBOOK), CATALOG, NOW, IN_FLIGHT)
    assert isinstance(other, Rejected) and other.reason is Reason.WRONG_PIXEL
    # Another advertiser's click too: a pixel has no token to change (foreign_click's hint), and
    # the detail names no offer of theirs.
    rival = attribute(read, click_on(POKER), CATALOG, NOW, IN_FLIGHT)
    assert rival == Rejected(Reason.WRONG_PIXEL, f"pixel of offer {CASINO.id}")


def s2s(**params: str) -> Postback:
    query = urlencode({"token": TOKEN, "click_id": CLICK_ID, "event": "registration"} | params)
    return accepted(read_postback(RawPostback(NOW, "203.0.113.7", "GET", query.encode()), CATALOG, CODEC))


@pytest.mark.parametrize(
    ("existing", "repeat", "outcome"),
    [
        # The advertiser's server confirms a pixel conversion, stating its status or not.
        (Existing(1, CLICK_ID, Status.PENDING, PIXEL), s2s(), StatusChange(Status.APPROVED)),
        (Existing(1, CLICK_ID, Status.PENDING, PIXEL), s2s(status="rejected"), StatusChange(Status.REJECTED)),
        # Confirmed pending: the server's all the same (its amount, its later postbacks repeats).
        (Existing(1, CLICK_ID, Status.PENDING, PIXEL), s2s(status="pending"), StatusChange(Status.PENDING)),
        # Without a status, an S2S repeat of an S2S conversion changes nothing (as before).
        (Existing(1, CLICK_ID, Status.PENDING, S2S), s2s(), Duplicate()),
        # A pixel after the server's postback is a duplicate: it states no status.
        (Existing(1, CLICK_ID, Status.APPROVED, S2S), accepted(pixel(click_id=CLICK_ID)), Duplicate()),
        (Existing(1, CLICK_ID, Status.PENDING, PIXEL), accepted(pixel(click_id=CLICK_ID)), Duplicate()),
    ],
    ids=[
        "confirmed",
        "rejected_by_server",
        "confirmed_pending",
        "s2s_repeat",
        "pixel_after_s2s",
        "pixel_again",
    ],
)
def test_a_pixel_and_a_postback_of_one_transaction_are_one_conversion(
    existing: Existing, repeat: Postback, outcome: Duplicate | StatusChange
) -> None:
    assert on_repeat(repeat, existing) == outcome


def test_a_server_postback_naming_another_click_than_the_pixels_overrides_it() -> None:
    """A known player's postback takes the player's click (`repeat` below): the click it named
    decides whether it confirms what the browser reported. The server is the authority: another
    click is its own conversion, the pixel's claim rejected (the caller does both)."""
    reported = Existing(1, CLICK_ID, Status.PENDING, PIXEL)
    repeat = s2s()
    assert on_repeat(repeat, reported, named_click="another-click") == Overrides(
        "the advertiser's server named another click (another-click)"
    )
    assert on_repeat(s2s(click_id=OTHER_CLICK_ID), reported, OTHER_CLICK_ID) == Overrides(
        f"the advertiser's server named another click ({OTHER_CLICK_ID})"
    )
    assert on_repeat(repeat, reported, named_click=CLICK_ID) == StatusChange(Status.APPROVED)
    assert on_repeat(repeat, reported, named_click="") == StatusChange(Status.APPROVED)  # player only
    # A pixel's conversion recorded with a player (before pixels stopped naming players).
    theirs = Existing(1, CLICK_ID, Status.PENDING, PIXEL, player_id="P1")
    assert on_repeat(s2s(player_id="P2"), theirs, CLICK_ID) == Overrides(
        "the advertiser's server named another player (P2)"
    )


def test_once_the_server_confirmed_it_another_click_is_a_conflict_naming_the_click() -> None:
    confirmed = Existing(1, CLICK_ID, Status.APPROVED, S2S)
    assert on_repeat(s2s(click_id=OTHER_CLICK_ID, txn_id="T"), confirmed, OTHER_CLICK_ID) == Rejected(
        Reason.TRANSACTION_CONFLICT, f"T: recorded on click {CLICK_ID}"
    )
    # A pixel repeating another click's transaction never overrides anything.
    pixels = accepted(pixel(click_id=OTHER_CLICK_ID, txn_id="T"))
    assert on_repeat(pixels, Existing(1, CLICK_ID, Status.PENDING, PIXEL)) == Rejected(
        Reason.TRANSACTION_CONFLICT, f"T: recorded on click {CLICK_ID}"
    )
