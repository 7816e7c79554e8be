from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from clickback.core.commission import next_period
from clickback.core.eventtime import (
    CLOCK_SKEW,
    EventTime,
    check_age,
    check_period,
    check_period_after_click,
    event_moment,
    parse_event_time,
)
from clickback.core.intake import Attribution, RawPostback, attribute, read_postback
from clickback.core.reasons import Reason, Rejected
from tests.core.test_intake import CATALOG, CLICK_ID, CLICKED_AT, CODEC, IN_FLIGHT, NOW, TOKEN

DAY = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2026-11-30T14:05:00+02:00", EventTime(DAY.replace(hour=12, minute=5))),
        ("2026-11-30T14:05:00Z", EventTime(DAY.replace(hour=14, minute=5))),
        ("2026-11-30 14:05:00.250", EventTime(DAY.replace(hour=14, minute=5, microsecond=250_000))),
        # An unencoded "+" in a query string arrives as a space.
        ("2026-11-30T14:05:00 02:00", EventTime(DAY.replace(hour=12, minute=5))),
        ("2026-11-30T14:05 0530", EventTime(DAY.replace(hour=8, minute=35))),
        ("2026-11-30", EventTime(DAY, whole_day=True)),
        (" 1796133900 ", EventTime(datetime(2026, 12, 1, 14, 5, tzinfo=UTC))),
        ("1796133900.5", EventTime(datetime(2026, 12, 1, 14, 5, 0, 500_000, tzinfo=UTC))),
        ("1796133900500", EventTime(datetime(2026, 12, 1, 14, 5, 0, 500_000, tzinfo=UTC))),
    ],
)
def test_event_times_are_read_in_every_documented_form(sent: str, expected: EventTime) -> None:
    assert parse_event_time(sent) == expected


@pytest.mark.parametrize(
    "sent",
    [
        "",
        "yesterday",
        "30/11/2026",
        "2026-13-01",
        "2026-11-31",
        "17960475",
        "1e9",
        "9" * 20,
        "2026-11-30T25:00",
        "x" * 41,
        # Instants whose offset moves them off the calendar in UTC.
        "9999-12-31T23:59:59-23:00",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_other_event_times_are_refused(sent: str) -> None:
    assert parse_event_time(sent) is None


AGE = timedelta(days=180)


@pytest.mark.parametrize(
    ("stated", "refused"),
    [
        (EventTime(NOW + CLOCK_SKEW), False),
        (EventTime(NOW + CLOCK_SKEW + timedelta(seconds=1)), True),
        # A date "tomorrow" in UTC is today east of Greenwich.
        (EventTime(datetime(2025, 6, 2, tzinfo=UTC), whole_day=True), False),
        (EventTime(datetime(2025, 6, 3, tzinfo=UTC), whole_day=True), True),
        (EventTime(NOW - AGE), False),
        (EventTime(NOW - AGE - timedelta(seconds=1)), True),
        (EventTime((NOW - AGE).replace(hour=0), whole_day=True), False),
    ],
)
def test_event_times_are_bounded_by_the_clock_skew_and_the_maximum_age(
    stated: EventTime, refused: bool
) -> None:
    rejected = check_age(stated, NOW, AGE)
    assert (rejected is not None) is refused
    if rejected is not None:
        assert rejected.reason is Reason.EVENT_TIME_OUT_OF_RANGE


CLICK = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
ARRIVED = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stated", "moment"),
    [
        (None, ARRIVED),
        (EventTime(datetime(2026, 12, 1, 8, 0, tzinfo=UTC)), datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        # Within the clock skew before the click: the event followed the click closely.
        (EventTime(CLICK - CLOCK_SKEW), CLICK),
        # The click's own day: the event came after the click that day.
        (EventTime(datetime(2026, 11, 30, tzinfo=UTC), whole_day=True), CLICK),
        (EventTime(datetime(2026, 12, 1, tzinfo=UTC), whole_day=True), datetime(2026, 12, 1, tzinfo=UTC)),
        # Never after its arrival (the clock skew allowed it in).
        (EventTime(ARRIVED + timedelta(minutes=2)), ARRIVED),
        (EventTime(CLICK - CLOCK_SKEW - timedelta(seconds=1)), Reason.EVENT_BEFORE_CLICK),
        (EventTime(datetime(2026, 11, 29, tzinfo=UTC), whole_day=True), Reason.EVENT_BEFORE_CLICK),
    ],
)
def test_an_event_counts_from_its_stated_time_between_its_click_and_its_arrival(
    stated: EventTime | None, moment: datetime | Reason
) -> None:
    got = event_moment(stated, CLICK, ARRIVED)
    assert (got.reason if isinstance(got, Rejected) else got) == moment


def test_attribution_carries_the_event_time_and_refuses_one_before_the_click() -> None:
    def attributed(**extra: str) -> Attribution | Rejected:
        query = urlencode({"token": TOKEN, "click_id": CLICK_ID, "event": "deposit", "payout": "5", **extra})
        postback = read_postback(RawPostback(NOW, "203.0.113.7", "GET", query.encode()), CATALOG, CODEC)
        assert not isinstance(postback, Rejected) and hasattr(postback, "event_time"), postback
        return attribute(postback, None, CATALOG, NOW, IN_FLIGHT)  # type: ignore[arg-type]

    stated = attributed(event_time=(CLICKED_AT + timedelta(minutes=1)).isoformat())
    assert isinstance(stated, Attribution)
    assert (stated.event_at, stated.payout) == (CLICKED_AT + timedelta(minutes=1), Decimal(5))
    unstated = attributed()
    assert isinstance(unstated, Attribution) and unstated.event_at == NOW
    early = attributed(timestamp=str(int((CLICKED_AT - timedelta(hours=1)).timestamp())))
    assert isinstance(early, Rejected) and early.reason is Reason.EVENT_BEFORE_CLICK


def month(at: datetime, shift: int) -> str:
    """The month `shift` months after (before, if negative) the one `at` falls in."""
    index = at.year * 12 + at.month - 1 + shift
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@pytest.mark.parametrize(
    ("received", "shift", "refused"),
    [
        # This month, the one before, and next month only once it has begun somewhere.
        (NOW, 0, None),
        (NOW, -1, None),
        (NOW, 1, Reason.PERIOD_IN_THE_FUTURE),
        # The limit is 180 days: a month some of which (a day's slack) is within it is accepted.
        (NOW, -6, None),
        (NOW, -7, Reason.PERIOD_TOO_OLD),
        (NOW, -60, Reason.PERIOD_TOO_OLD),
    ],
)
def test_a_reports_month_has_begun_and_ended_within_the_maximum_age(
    received: datetime, shift: int, refused: Reason | None
) -> None:
    rejected = check_period(month(received, shift), received, AGE)
    assert (rejected.reason if rejected else None) is refused


def test_a_month_is_too_old_once_it_ended_more_than_the_maximum_age_and_a_day_ago() -> None:
    label = month(NOW, -3)
    end = datetime.fromisoformat(next_period(label) + "-01").replace(tzinfo=UTC)
    assert check_period(label, end + AGE + timedelta(days=1), AGE) is None
    rejected = check_period(label, end + AGE + timedelta(days=1, seconds=1), AGE)
    assert rejected == Rejected(
        Reason.PERIOD_TOO_OLD, f"{label} ended more than 180 days ago (CLICKBACK_MAX_EVENT_AGE_DAYS)"
    )


@pytest.mark.parametrize(
    ("clicked_at", "shift", "refused"),
    [
        (CLICK, 0, False),
        (CLICK, 1, False),
        (CLICK, -1, True),
        (CLICK, -12, True),
        # Clicked on the 1st, early: the month before is still the click's west of UTC.
        (datetime(2026, 12, 1, 20, 0, tzinfo=UTC), -1, False),
        (datetime(2026, 12, 2, 0, 0, tzinfo=UTC), -1, False),
        (datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC), -1, True),
    ],
)
def test_a_reports_month_does_not_end_before_its_click(
    clicked_at: datetime, shift: int, refused: bool
) -> None:
    rejected = check_period_after_click(month(clicked_at, shift), clicked_at)
    assert (rejected is not None) is refused
    if rejected is not None:
        assert rejected.reason is Reason.PERIOD_BEFORE_CLICK


def test_attribution_refuses_a_report_for_a_month_before_the_click() -> None:
    def attributed(period: str) -> Attribution | Rejected:
        query = urlencode(
            {"token": TOKEN, "click_id": CLICK_ID, "event": "ngr", "payout": "5", "period": period}
        )
        postback = read_postback(RawPostback(NOW, "203.0.113.7", "GET", query.encode()), CATALOG, CODEC)
        assert not isinstance(postback, Rejected) and hasattr(postback, "period"), postback
        return attribute(postback, None, CATALOG, NOW, IN_FLIGHT)  # type: ignore[arg-type]

    assert isinstance(attributed(month(CLICKED_AT, 0)), Attribution)
    early = attributed(month(CLICKED_AT, -2))
    assert isinstance(early, Rejected) and early.reason is Reason.PERIOD_BEFORE_CLICK
    assert early.detail.startswith(f"{month(CLICKED_AT, -2)} ended before the click at ")
