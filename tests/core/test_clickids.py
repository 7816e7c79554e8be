import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickback.core.clickids import (
    _RANDOM,
    CLICK_ID_LEN,
    EPOCH,
    MAX_CLOCK_SKEW,
    ClickIdCodec,
    VerifiedClickId,
    _RandomPool,
)
from clickback.core.reasons import Reason, Rejected

CODEC = ClickIdCodec(b"k" * 32)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
URL_SAFE = re.compile(r"[-0-9A-Z_a-z]{32}")
ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

# Minted once by CODEC at GOLDEN_TIME. A fixed ID keeps the tamper tests deterministic, and pins the
# format: IDs already handed out to advertisers must keep verifying after an upgrade.
GOLDEN_ID = "-daSwHfmu-CE09WcnVQHS0Lz53sf417t"
GOLDEN_TIME = datetime(2025, 5, 31, 23, 59, 58, 123000, tzinfo=UTC)

# Click times the 42-bit millisecond field covers comfortably (it runs out in the 2160s).
click_times = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2150, 1, 1), timezones=st.just(UTC)
)


def rejection(result: VerifiedClickId | Rejected) -> Reason:
    assert isinstance(result, Rejected), f"{result!r} was accepted"
    return result.reason


def to_the_millisecond(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def test_minted_id_is_32_url_safe_characters() -> None:
    for _ in range(100):
        click_id = CODEC.mint(NOW)
        assert len(click_id) == CLICK_ID_LEN == 32
        assert URL_SAFE.fullmatch(click_id), click_id


def test_ten_thousand_mints_in_the_same_millisecond_are_unique() -> None:
    assert len({CODEC.mint(NOW) for _ in range(10_000)}) == 10_000


def test_ids_minted_at_increasing_times_sort_in_time_order() -> None:
    times = [
        EPOCH,
        EPOCH + timedelta(milliseconds=1),
        datetime(2024, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
        NOW,
        NOW + timedelta(milliseconds=1),
        NOW + timedelta(days=365 * 30),
        datetime(2150, 1, 1, tzinfo=UTC),
    ]
    ids = [CODEC.mint(when) for when in times]
    assert sorted(ids) == ids


@settings(max_examples=150)
@given(first=click_times, gap_ms=st.integers(min_value=1, max_value=10**10))
def test_a_later_millisecond_always_sorts_after(first: datetime, gap_ms: int) -> None:
    later = first + timedelta(milliseconds=gap_ms)
    assert CODEC.mint(first) < CODEC.mint(later)


@settings(max_examples=150)
@given(when=click_times)
def test_verify_round_trips_and_returns_the_mint_time_to_the_millisecond(when: datetime) -> None:
    click_id = CODEC.mint(when)
    verified = CODEC.verify(click_id, when)
    assert verified == VerifiedClickId(click_id, to_the_millisecond(when))


def test_an_id_issued_by_an_earlier_version_still_verifies() -> None:
    assert CODEC.verify(GOLDEN_ID, NOW) == VerifiedClickId(GOLDEN_ID, GOLDEN_TIME)


@pytest.mark.parametrize("position", range(CLICK_ID_LEN))
def test_any_other_character_at_any_position_is_forged(position: int) -> None:
    for replacement in ALPHABET.replace(GOLDEN_ID[position], ""):
        tampered = GOLDEN_ID[:position] + replacement + GOLDEN_ID[position + 1 :]
        assert rejection(CODEC.verify(tampered, NOW)) is Reason.FORGED_CLICK_ID, tampered


@pytest.mark.parametrize("position", range(CLICK_ID_LEN))
def test_a_character_outside_the_alphabet_at_any_position_is_malformed(position: int) -> None:
    for replacement in "=+/. %é\uff10\x00":
        tampered = GOLDEN_ID[:position] + replacement + GOLDEN_ID[position + 1 :]
        assert rejection(CODEC.verify(tampered, NOW)) is Reason.MALFORMED_CLICK_ID, tampered


@pytest.mark.parametrize(
    "click_id",
    [
        "",
        "abc123",
        GOLDEN_ID[:-1],
        GOLDEN_ID + "A",
        GOLDEN_ID + GOLDEN_ID,
        " " + GOLDEN_ID,
        GOLDEN_ID.replace("-", "+").replace("_", "/"),
        "é" * 32,
        "{click_id}" + "x" * 22,
    ],
    ids=[
        "empty",
        "short",
        "truncated",
        "one_extra",
        "doubled",
        "space",
        "standard_base64",
        "unicode",
        "macro",
    ],
)
def test_wrong_length_or_alphabet_is_malformed(click_id: str) -> None:
    assert rejection(CODEC.verify(click_id, NOW)) is Reason.MALFORMED_CLICK_ID


def test_id_minted_under_another_key_is_forged() -> None:
    other_installation = ClickIdCodec(b"another installation's key 32b!!")
    assert rejection(CODEC.verify(other_installation.mint(NOW), NOW)) is Reason.FORGED_CLICK_ID
    assert rejection(other_installation.verify(GOLDEN_ID, NOW)) is Reason.FORGED_CLICK_ID


def test_id_dated_beyond_the_clock_skew_is_forged() -> None:
    too_far = CODEC.mint(NOW + MAX_CLOCK_SKEW + timedelta(milliseconds=1))
    assert rejection(CODEC.verify(too_far, NOW)) is Reason.FORGED_CLICK_ID


def test_id_dated_within_the_clock_skew_verifies() -> None:
    # Another node's clock may run a little ahead of ours.
    at_the_limit = CODEC.mint(NOW + MAX_CLOCK_SKEW)
    assert CODEC.verify(at_the_limit, NOW) == VerifiedClickId(at_the_limit, NOW + MAX_CLOCK_SKEW)


def test_old_id_still_verifies() -> None:
    old = CODEC.mint(EPOCH)
    assert CODEC.verify(old, NOW) == VerifiedClickId(old, EPOCH)


def test_rejection_names_the_id_that_arrived() -> None:
    assert CODEC.verify("abc123", NOW) == Rejected(Reason.MALFORMED_CLICK_ID, "abc123")


@settings(max_examples=200)
@given(text=st.text())
def test_arbitrary_text_never_raises_and_never_verifies(text: str) -> None:
    assert isinstance(CODEC.verify(text, NOW), Rejected)


@settings(max_examples=300)
@given(text=st.text(alphabet=ALPHABET, min_size=CLICK_ID_LEN, max_size=CLICK_ID_LEN))
def test_well_formed_but_invented_ids_never_verify(text: str) -> None:
    # 22 MAC bits: one invented ID in four million gets past the check (and most of those are
    # dated in the far future), so this holds for any run of a few hundred.
    assert rejection(CODEC.verify(text, NOW)) is Reason.FORGED_CLICK_ID


def test_random_bits_come_from_the_os_in_blocks_and_are_never_reused() -> None:
    pool = _RandomPool()
    taken = [pool.take16() for _ in range(_RandomPool.SIZE // 16 * 3)]  # three refills
    assert len(set(taken)) == len(taken)
    assert all(len(chunk) == 16 for chunk in taken)


def test_a_forked_worker_does_not_share_the_parents_random_bytes() -> None:
    CODEC.mint(NOW)  # the module's pool now holds bytes the parent has not used yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send the random bits of its first ID, then leave at once
        try:
            os.write(write, _RANDOM.take16())
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != _RANDOM.take16()
