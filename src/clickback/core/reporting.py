"""Report rows from the hourly counters: grouping keys, date basis, and what counts as earned."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from clickback.core.lifecycle import PAYABLE, Status

DIMENSIONS = ("day", "affiliate_id", "offer_id", "link_id", "sub1", "country", "device_type")
DATE_BASIS = (
    "clicks by click time; conversions by event time: when the event happened, as its postback stated "
    "(event_time), else when its first postback arrived (UTC)"
)


MS_PER_HOUR = 3_600_000


def hour_of(moment: datetime) -> int:
    """The report bucket a moment counts in: its UTC epoch hour (from epoch ms: ms // MS_PER_HOUR)."""
    return int(moment.timestamp()) // 3600


def hour_range(first: date, last: date) -> tuple[int, int]:
    """Epoch hours [start, end) covering whole UTC days first..last."""
    # The end counted in hours, not as the next day's midnight: the day after 9999-12-31 is no date.
    return _midnight_hour(first), _midnight_hour(last) + 24


def _midnight_hour(day: date) -> int:
    return hour_of(datetime(day.year, day.month, day.day, tzinfo=UTC))


def day_of(day_number: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day_number)).isoformat()


@dataclass(slots=True)
class ReportRow:
    key: dict[str, str | int]
    clicks: int = 0
    unique_clicks: int = 0
    bot_clicks: int = 0
    conversions: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    payout: dict[str, Decimal] = field(default_factory=dict)

    def add_conversions(self, event: str, status: Status, count: int, currency: str, payout: Decimal) -> None:
        if status in PAYABLE:
            self.conversions[event] = self.conversions.get(event, 0) + count
            self.payout[currency] = self.payout.get(currency, Decimal(0)) + payout
        else:
            self.rejected += count


@dataclass(frozen=True, slots=True)
class ClickCount:
    key: tuple[str | int, ...]
    clicks: int
    unique_clicks: int = 0
    bot_clicks: int = 0


@dataclass(frozen=True, slots=True)
class ConversionCount:
    key: tuple[str | int, ...]
    event: str
    status: Status
    currency: str
    conversions: int
    payout: Decimal


def build_rows(
    group_by: Sequence[str], clicks: Iterable[ClickCount], conversions: Iterable[ConversionCount]
) -> tuple[list[ReportRow], ReportRow]:
    rows: dict[tuple[str | int, ...], ReportRow] = {}
    total = ReportRow({})

    def row(key: tuple[str | int, ...]) -> ReportRow:
        if key not in rows:
            rows[key] = ReportRow(dict(zip(group_by, key, strict=True)))
        return rows[key]

    for c in clicks:
        for target in (row(c.key), total):
            target.clicks += c.clicks
            target.unique_clicks += c.unique_clicks
            target.bot_clicks += c.bot_clicks
    for v in conversions:
        for target in (row(v.key), total):
            target.add_conversions(v.event, v.status, v.conversions, v.currency, v.payout)
    return [rows[k] for k in sorted(rows, key=lambda k: tuple(str(p) for p in k))], total
