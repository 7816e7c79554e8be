"""Time ranges asked for from outside (`from`, `to`): a date is a whole UTC day, a datetime an instant."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Generic, TypeVar

D = TypeVar("D", date, datetime)


@dataclass(frozen=True, slots=True)
class Span(Generic[D]):
    """From `start` (inclusive) until `end` (exclusive); None leaves that side open."""

    start: D | None = None
    end: D | None = None


def utc(at: datetime) -> datetime:
    """The instant in UTC; one without an offset is taken as UTC. ValueError when the offset moves
    it past the calendar's first or last day (0001-01-01T00:00+01:00)."""
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{at.isoformat()} is beyond the calendar in UTC") from None


def instants(first: date | datetime | None, last: date | datetime | None) -> Span[datetime]:
    """`from` and `to` as instants: a date `from` starts at its midnight, a date `to` includes its
    whole day, a datetime `to` is itself left out. ValueError unless `from` comes before `to`."""
    start = None if first is None else _start(first)
    end = None if last is None else _end(last)
    if start is not None and end is not None and start >= end:
        raise ValueError("from must come before to")
    return Span(start, end)


def days(first: date | None, last: date | None) -> Span[date]:
    """`from` and `to` as whole days, both included. ValueError when `from` is after `to`."""
    if first is not None and last is not None and first > last:
        raise ValueError("from must not be after to")
    end = None if last is None or last == date.max else last + timedelta(days=1)
    return Span(first, end)


def _start(first: date | datetime) -> datetime:
    return utc(first) if isinstance(first, datetime) else _midnight(first)


def _end(last: date | datetime) -> datetime | None:
    if isinstance(last, datetime):
        return utc(last)
    return None if last == date.max else _midnight(last + timedelta(days=1))  # nothing is later


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)
