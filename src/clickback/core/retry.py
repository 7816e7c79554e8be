"""When an outbound delivery is tried again, and what a reply means. Pure: no clock, no network.

The schedule doubles from `base` (30 s in production) up to a cap of 720 times base (6 h), with
jitter, so that deliveries failing together do not come back together. With MAX_ATTEMPTS attempts
the waits add up to more than 24 hours even at the jitter's low end: an affiliate's tracker that is
down for a day still gets every postback once it is back.
"""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from clickback.core.digits import is_digits

MAX_ATTEMPTS = 15
CAP_FACTOR = 720
JITTER = 0.2
# A Retry-After longer than this is taken as this: a receiver cannot park a delivery for a week.
MAX_RETRY_AFTER = timedelta(hours=6)
RETRIED_STATUSES = frozenset({408, 429})


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    # Another 4xx: the receiver understood and refused; sending it again would not change that.
    PERMANENT = "permanent"


def verdict(status: int | None) -> Verdict:
    """What an attempt's HTTP status (None: no reply — refused, timed out, reset) means."""
    # A status outside 100-599 (`000`, `999`) is no answer HTTP defines: a receiver half broken
    # for now, like one that does not answer, not one that understood and refused.
    if status is None or status in RETRIED_STATUSES or not 100 <= status < 500:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    # 1xx and 3xx included: redirects are never followed (the target was checked, its redirect not).
    return Verdict.PERMANENT


def backoff(failures: int, base: float, rng: random.Random | None = None) -> timedelta:
    """The wait after the `failures`-th failed attempt in a row (1 for the first)."""
    nominal = min(base * 2 ** (failures - 1), base * CAP_FACTOR)
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return timedelta(seconds=nominal * spread)


def schedule_floor(base: float) -> timedelta:
    """The shortest time from a first attempt to the last (every jitter at its low end)."""
    return sum(
        (
            timedelta(seconds=min(base * 2 ** (n - 1), base * CAP_FACTOR) * (1 - JITTER))
            for n in range(1, MAX_ATTEMPTS)
        ),
        timedelta(),
    )


def retry_after(header: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header's wait (seconds or an HTTP date), bounded; None if absent or unreadable."""
    if not header:
        return None
    value = header.strip()[:64]
    if is_digits(value):
        wait = timedelta(seconds=int(value[:8]))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            # OverflowError: a year or offset past what datetime holds. Raised, it left the
            # attempt unrecorded, and the delivery was sent again at every lease's end, forever.
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when - now
    return max(timedelta(), min(wait, MAX_RETRY_AFTER))


@dataclass(frozen=True, slots=True)
class Next:
    """After a failed attempt: try again at `at`, or (at None) give up: a dead letter."""

    at: datetime | None


def after_failure(
    attempts: int, now: datetime, base: float, waited: timedelta | None, rng: random.Random | None = None
) -> Next:
    """`attempts` made so far (this one included); `waited` the receiver's Retry-After, if any."""
    if attempts >= MAX_ATTEMPTS:
        return Next(None)
    wait = backoff(attempts, base, rng)
    if waited is not None:
        wait = max(wait, waited)
    return Next(now + wait)
