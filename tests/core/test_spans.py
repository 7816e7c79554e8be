from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from clickback.core.spans import Span, days, instants, utc

PLUS_ONE = timezone(timedelta(hours=1))


def at(year: int, month: int, day: int, hour: int = 0, tz: timezone = UTC) -> datetime:
    return datetime(year, month, day, hour, tzinfo=tz)


@pytest.mark.parametrize(
    ("first", "last", "span"),
    [
        (None, None, Span()),
        # A date is the whole UTC day: `to` includes it.
        (date(2026, 3, 1), date(2026, 3, 1), Span(at(2026, 3, 1), at(2026, 3, 2))),
        (None, date(2026, 12, 31), Span(None, at(2027, 1, 1))),
        # A datetime is an instant: `to` leaves it out; without an offset it is UTC.
        (
            datetime(2026, 3, 1, 12),
            at(2026, 3, 1, 14, tz=PLUS_ONE),
            Span(at(2026, 3, 1, 12), at(2026, 3, 1, 13)),
        ),
        (at(2026, 3, 1, 12), date(2026, 3, 1), Span(at(2026, 3, 1, 12), at(2026, 3, 2))),
        # The ends of the calendar: nothing is later than its last day.
        (date.min, date.max, Span(at(1, 1, 1), None)),
        (date.max, None, Span(at(9999, 12, 31), None)),
    ],
)
def test_from_and_to_as_instants(
    first: date | datetime | None, last: date | datetime | None, span: Span[datetime]
) -> None:
    assert instants(first, last) == span


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2026, 3, 2), date(2026, 3, 1)),
        (at(2026, 3, 1, 12), at(2026, 3, 1, 12)),  # empty
        (at(2026, 3, 2), date(2026, 3, 1)),  # the day after `to` ends
        (date(2026, 3, 1), at(2026, 3, 1)),
    ],
)
def test_from_must_come_before_to(first: date | datetime, last: date | datetime) -> None:
    with pytest.raises(ValueError, match="from must come before to"):
        instants(first, last)


def test_an_offset_past_the_calendar_is_refused_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="beyond the calendar"):
        utc(datetime(1, 1, 1, tzinfo=PLUS_ONE))
    with pytest.raises(ValueError, match="beyond the calendar"):
        utc(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))
    assert utc(datetime(1, 1, 1, 1, tzinfo=PLUS_ONE)) == at(1, 1, 1)


def test_days_include_both_ends() -> None:
    assert days(date(2026, 3, 1), date(2026, 3, 1)) == Span(date(2026, 3, 1), date(2026, 3, 2))
    assert days(None, date.max) == Span(None, None)
    assert days(date.min, None) == Span(date.min, None)
    with pytest.raises(ValueError, match="after"):
        days(date(2026, 3, 2), date(2026, 3, 1))
