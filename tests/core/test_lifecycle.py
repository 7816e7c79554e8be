import itertools

import pytest

from clickback.core.lifecycle import ALLOWED, DEFAULT_STATUS, PAYABLE, Status, can_move, parse_status

PENDING, APPROVED, REJECTED, CANCELLED = Status.PENDING, Status.APPROVED, Status.REJECTED, Status.CANCELLED

# Every (from, to) pair. Rejected may be approved again (a dispute won); cancelled is final.
TRANSITIONS = {
    (PENDING, PENDING): False,
    (PENDING, APPROVED): True,
    (PENDING, REJECTED): True,
    (PENDING, CANCELLED): True,
    (APPROVED, PENDING): False,
    (APPROVED, APPROVED): False,
    (APPROVED, REJECTED): True,
    (APPROVED, CANCELLED): True,
    (REJECTED, PENDING): False,
    (REJECTED, APPROVED): True,
    (REJECTED, REJECTED): False,
    (REJECTED, CANCELLED): True,
    (CANCELLED, PENDING): False,
    (CANCELLED, APPROVED): False,
    (CANCELLED, REJECTED): False,
    (CANCELLED, CANCELLED): False,
}


def test_transition_table_covers_every_pair_of_statuses() -> None:
    assert set(TRANSITIONS) == set(itertools.product(Status, Status))


@pytest.mark.parametrize(("current", "new"), list(TRANSITIONS))
def test_status_change_is_allowed_exactly_as_the_table_says(current: Status, new: Status) -> None:
    assert can_move(current, new) is TRANSITIONS[current, new]
    assert (new in ALLOWED[current]) is TRANSITIONS[current, new]


def test_cancelled_is_final() -> None:
    assert ALLOWED[CANCELLED] == frozenset()


def test_no_status_moves_to_itself() -> None:
    assert [status for status in Status if can_move(status, status)] == []


def test_nothing_moves_back_to_pending() -> None:
    assert [status for status in Status if can_move(status, PENDING)] == []


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("pending", PENDING),
        ("hold", PENDING),
        ("new", PENDING),
        ("lead", PENDING),
        ("approved", APPROVED),
        ("approve", APPROVED),
        ("confirmed", APPROVED),
        ("confirm", APPROVED),
        ("sale", APPROVED),
        ("rejected", REJECTED),
        ("reject", REJECTED),
        ("declined", REJECTED),
        ("decline", REJECTED),
        ("cancelled", CANCELLED),
        ("canceled", CANCELLED),
        ("cancel", CANCELLED),
        # Affise numbers: 1 approved, 2 pending, 3 declined, 5 hold.
        ("1", APPROVED),
        ("2", PENDING),
        ("3", REJECTED),
        ("5", PENDING),
        # Case and surrounding space do not matter.
        ("APPROVED", APPROVED),
        ("Rejected", REJECTED),
        ("HoLd", PENDING),
        (" cancel ", CANCELLED),
        ("\tconfirmed\n", APPROVED),
    ],
)
def test_status_word_is_understood(word: str, status: Status) -> None:
    assert parse_status(word) is status


@pytest.mark.parametrize(
    "word",
    ["", " ", "4", "0", "01", "maybe", "approvedd", "approved rejected", "rebill", "{status}", "pend ing"],
)
def test_unknown_status_word_is_refused(word: str) -> None:
    assert parse_status(word) is None


def test_a_postback_without_status_counts_as_approved() -> None:
    assert DEFAULT_STATUS is APPROVED


def test_pending_and_approved_are_payable() -> None:
    assert frozenset({PENDING, APPROVED}) == PAYABLE
