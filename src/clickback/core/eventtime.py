"""When a reported event happened, as opposed to when its postback arrived.

Operators' platforms report late and in daily batches, so commission rules (qualification
window, N-day deposits, hold), exchange rates, RevShare months and reports by conversion date all
go by the event time a postback states; without one, the event happened when it arrived.

Accepted forms: ISO 8601 with an offset (`2026-11-30T14:05:00+02:00`, `…Z`), ISO 8601 without
one (taken as UTC), a date (`2026-11-30`: some time that day, UTC) and a Unix timestamp in
seconds (`1796041500`, fractions allowed) or milliseconds (13 digits).
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from clickback.core.commission import period_bounds
from clickback.core.reasons import Reason, Rejected
from clickback.core.spans import utc

# A month is a month somewhere: it begins a day early east of UTC and ends a day late west of it.
MONTH_SLACK = timedelta(days=1)
# A sender's clock may run a little ahead of ours (and a click ID's time is ours): within this,
# an event "in the future" or "before its click" is the same moment, not an error.
CLOCK_SKEW = timedelta(minutes=5)
_SECONDS = re.compile(r"[0-9]{9,10}(\.[0-9]{1,6})?")
_MILLISECONDS = re.compile(r"[0-9]{13}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# "+02:00" sent unencoded in a query string arrives as " 02:00": the plus became a space.
_LOST_PLUS = re.compile(r"(T|\s)([0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?) ([0-9]{2}(:?[0-9]{2})?)$")


@dataclass(frozen=True, slots=True)
class EventTime:
    """A stated event time; `whole_day` when only the date was given."""

    at: datetime
    whole_day: bool = False


def parse_event_time(raw: str) -> EventTime | None:
    text = raw.strip()
    try:
        if _SECONDS.fullmatch(text):
            return EventTime(datetime.fromtimestamp(float(text), UTC))
        if _MILLISECONDS.fullmatch(text):
            return EventTime(datetime.fromtimestamp(int(text) / 1000, UTC))
        if _DATE.fullmatch(text):
            return EventTime(datetime.combine(date.fromisoformat(text), time(), UTC), whole_day=True)
        if len(text) > 40:
            return None
        # Without an offset, UTC; one that moves it off the calendar in UTC is a ValueError.
        return EventTime(utc(datetime.fromisoformat(_LOST_PLUS.sub(r"\1\2+\5", text))))
    except (ValueError, OverflowError, OSError):
        return None


def check_age(stated: EventTime, received_at: datetime, max_age: timedelta) -> Rejected | None:
    """Not in the future beyond the clock skew, not older than the configured limit."""
    # A date is a day somewhere: "tomorrow" in UTC is already today east of it.
    ahead = timedelta(days=1) if stated.whole_day else CLOCK_SKEW
    if stated.at > received_at + ahead:
        return Rejected(Reason.EVENT_TIME_OUT_OF_RANGE, f"{stated.at.isoformat()} is in the future")
    if stated.at < received_at - max_age - (timedelta(days=1) if stated.whole_day else timedelta()):
        return Rejected(
            Reason.EVENT_TIME_OUT_OF_RANGE,
            f"{stated.at.isoformat()} is older than {max_age.days} days (CLICKBACK_MAX_EVENT_AGE_DAYS)",
        )
    return None


def event_moment(
    stated: EventTime | None, clicked_at: datetime, received_at: datetime
) -> datetime | Rejected:
    """The moment an event counts at: as stated, never before its click nor after its arrival.

    A stated time a little before the click (clock skew), or a stated date that is the click's
    own day, means the event followed the click closely: it counts from the click."""
    if stated is None:
        return received_at
    earliest = clicked_at - CLOCK_SKEW
    before = stated.at.date() < earliest.date() if stated.whole_day else stated.at < earliest
    if before:
        return Rejected(
            Reason.EVENT_BEFORE_CLICK,
            f"{stated.at.date() if stated.whole_day else stated.at.isoformat()} is before the click "
            f"at {clicked_at.isoformat(timespec='seconds')}",
        )
    return min(max(stated.at, clicked_at), received_at)


def check_period(period: str, received_at: datetime, max_age: timedelta) -> Rejected | None:
    """A report's month (YYYY-MM): begun already, and not ended longer ago than the configured
    limit (a month some of which is within it is accepted, as an event time of that day would be)."""
    start, end = period_bounds(period)
    if start > received_at + MONTH_SLACK:
        return Rejected(Reason.PERIOD_IN_THE_FUTURE, period)
    if end + MONTH_SLACK < received_at - max_age:
        return Rejected(
            Reason.PERIOD_TOO_OLD,
            f"{period} ended more than {max_age.days} days ago (CLICKBACK_MAX_EVENT_AGE_DAYS)",
        )
    return None


def check_period_after_click(period: str, clicked_at: datetime) -> Rejected | None:
    """Revenue is earned after the click: a month that ended before it is another player's (or
    another click's), and booked it would change a month the affiliate had no player in."""
    if period_bounds(period)[1] + MONTH_SLACK < clicked_at:
        return Rejected(
            Reason.PERIOD_BEFORE_CLICK,
            f"{period} ended before the click at {clicked_at.isoformat(timespec='seconds')}",
        )
    return None
