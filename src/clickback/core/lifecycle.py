"""Conversion statuses and which changes a later postback may make."""

from collections.abc import Mapping
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# Words other platforms send (Affise numbers, BeMob/Keitaro words, TUNE's "hold"...).
STATUS_WORDS: Mapping[str, Status] = {
    "pending": Status.PENDING,
    "hold": Status.PENDING,
    "new": Status.PENDING,
    "lead": Status.PENDING,
    "2": Status.PENDING,
    "5": Status.PENDING,
    "approved": Status.APPROVED,
    "approve": Status.APPROVED,
    "confirmed": Status.APPROVED,
    "confirm": Status.APPROVED,
    "sale": Status.APPROVED,
    "1": Status.APPROVED,
    "rejected": Status.REJECTED,
    "reject": Status.REJECTED,
    "declined": Status.REJECTED,
    "decline": Status.REJECTED,
    "3": Status.REJECTED,
    "cancelled": Status.CANCELLED,
    "canceled": Status.CANCELLED,
    "cancel": Status.CANCELLED,
}

# A postback that names no status reports a fact that happened: it counts as approved.
DEFAULT_STATUS = Status.APPROVED

# Rejected may be approved again (a dispute the affiliate won); cancelled is final, as a
# cancelled deal or a refunded player leaves nothing to reopen.
ALLOWED: Mapping[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.APPROVED, Status.REJECTED, Status.CANCELLED}),
    Status.APPROVED: frozenset({Status.REJECTED, Status.CANCELLED}),
    Status.REJECTED: frozenset({Status.APPROVED, Status.CANCELLED}),
    Status.CANCELLED: frozenset(),
}

# Statuses whose payout counts as earned in reports.
PAYABLE = frozenset({Status.PENDING, Status.APPROVED})


def parse_status(raw: str) -> Status | None:
    return STATUS_WORDS.get(raw.strip().lower())


def can_move(current: Status, new: Status) -> bool:
    return new in ALLOWED[current]
