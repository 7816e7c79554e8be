"""Active players (issue 16): which conversions show that a player played, and the months of the
activity and cohort reports in a report's zone (docs/reports.md, "Active players").

A player is active in a month when one of their payable conversions (pending or approved, not a
test click's) that month is an event their offer's vertical counts (core/verticals.py). A player
is the advertiser's player ID; a conversion sent without one stands for the player of its click.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from clickback.core.reporting import ReportError, month_instants, parse_zone
from clickback.core.verticals import activity_events

# A report spans at most two years of months (a cohort's months after it come on top).
MAX_MONTHS = 24
# A registration cohort is followed in its own month and this many after it.
COHORT_MONTHS = 3
# Operators' monthly NGR exports list every player of the affiliate, those who did nothing with
# an NGR of zero: a report of zero is no play.
NONZERO_EVENTS = frozenset({"net_revenue"})
# Events that cover a calendar month the sender names (`period`) instead of happening at an
# instant: they count in that month, in every zone, as RevShare statements count them.
MONTHLY_EVENTS = frozenset({"net_revenue"})


def is_activity(vertical: str, event: str, amount: Decimal | None) -> bool:
    """Whether a payable conversion makes its player active. store/activity.py says the same in
    SQL; tests/core/test_activity.py holds both to this."""
    if event not in activity_events(vertical):
        return False
    return event not in NONZERO_EVENTS or bool(amount)


def month_number(period: str) -> int:
    """'2026-11' as a month number (months since year 0, as core.reporting.month_of counts)."""
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def month_label(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """Months `first`..`last` (month numbers, inclusive) in `zone`; empty filters: every one."""

    first: int
    last: int
    zone: str = "UTC"
    offers: tuple[int, ...] = ()
    affiliates: tuple[int, ...] = ()

    @property
    def months(self) -> range:
        return range(self.first, self.last + 1)

    def bounds(self, after: int = 0) -> list[datetime]:
        """The UTC instants at which the local months first..last+after start, then the instant
        the last of them ends."""
        seconds = month_instants(ZoneInfo(self.zone), self.first, self.last + after)
        return [datetime.fromtimestamp(s, UTC) for s in seconds]


def activity_query(
    first: str, last: str, zone: str, offers: tuple[int, ...] = (), affiliates: tuple[int, ...] = ()
) -> ActivityQuery:
    """From months as 'YYYY-MM'; raises ReportError naming the parameter at fault."""
    parse_zone(zone)
    start, end = month_number(first), month_number(last)
    if end < start:
        raise ReportError("to", "the period ends before it starts")
    if end - start >= MAX_MONTHS:
        raise ReportError("to", f"at most {MAX_MONTHS} months")
    return ActivityQuery(start, end, zone, offers, affiliates)


def current_month(zone: str, now: datetime) -> int:
    local = now.astimezone(ZoneInfo(zone))
    return local.year * 12 + local.month - 1


def followed(cohort: int, after: int, current: int) -> bool:
    """Whether a cohort's month `after` months on has begun by the current month: one that has
    not is unknown (null), not zero. The current month counts so far."""
    return cohort + after <= current
