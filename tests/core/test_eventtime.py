from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from clickback.core.eventtime import CLOCK_SKEW, EventTime, check_age, event_moment, parse_event_time
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
