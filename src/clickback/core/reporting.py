"""Reports: what may be asked (dimensions, filters, sort, zone, basis), which rollup answers it,
and the local clock of a time zone as integer arithmetic the database can do (ADR 14)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clickback.core.metrics import METRICS

SECONDS_PER_DAY = 86_400

TIME_DIMENSIONS = ("hour", "day", "week", "month")
# Who a row is credited to; the link (a campaign) is kept as a value dimension below.
OWNER_DIMENSIONS = ("advertiser", "offer", "affiliate", "link")
# Kept in the hours and days rollups beside affiliate and offer.
CORE_DIMENSIONS = ("country",)
# Kept one at a time, each in its own rows of the values rollup (many values: sub IDs).
VALUE_DIMENSIONS = (
    "link",
    "device_type",
    "os",
    "browser",
    "source",
    "landing_page",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
)
# Named in the catalog, not kept anywhere: a link's campaign is its name there now, so the
# reports answer it as the link (grouped by link, the links mapped to their campaign in the
# statement, as an offer to its advertiser). Moved to another campaign, a link takes its past along.
NAMED_DIMENSIONS = {"campaign": "link"}
DIMENSIONS = (
    TIME_DIMENSIONS + OWNER_DIMENSIONS + tuple(NAMED_DIMENSIONS) + CORE_DIMENSIONS + VALUE_DIMENSIONS[1:]
)
ALIASES = {"affiliate_id": "affiliate", "offer_id": "offer", "link_id": "link"}

MAX_LIMIT = 10_000
MAX_DAYS = 400


class Basis(StrEnum):
    """Which time a conversion (and the commission it caused) is counted at."""

    CONVERSION = "conversion"
    CLICK = "click"


BASIS_NOTES = {
    Basis.CONVERSION: (
        "by conversion date (activity): clicks at their click time; conversions and the commission "
        "they caused at the time the event happened (event_time, else its first postback's arrival); "
        "a CPA reversal when it was booked"
    ),
    Basis.CLICK: (
        "by click date (cohort): clicks, and the conversions and commission of those clicks, all "
        "at the click's time"
    ),
}


class Source(StrEnum):
    """Where a report is answered from, coarsest first."""

    DAYS = "days"  # local days of a kept zone x affiliate x offer x country
    VALUES = "values"  # local days of a kept zone x affiliate x offer x one value dimension
    HOURS = "hours"  # UTC hours x affiliate x offer x country
    RAW = "raw"  # the clicks, conversions and ledger themselves: any combination, slower


class ReportError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class ReportQuery:
    first: date
    last: date
    zone: str = "UTC"
    basis: Basis = Basis.CONVERSION
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, tuple[str | int, ...]] = field(default_factory=dict)
    # (name, descending)
    sort: tuple[tuple[str, bool], ...] = ()
    limit: int = 100
    offset: int = 0
    include_bots: bool = False
    currency: str | None = None

    @property
    def time_grain(self) -> str | None:
        """The finest time dimension asked for."""
        return next((t for t in TIME_DIMENSIONS if t in self.group_by), None)

    def previous(self) -> "ReportQuery":
        """The period of the same length just before this one."""
        days = (self.last - self.first).days + 1
        return replace(self, first=self.first - timedelta(days=days), last=self.first - timedelta(days=1))


def dimension(name: str) -> str:
    name = name.strip()
    name = ALIASES.get(name, name)
    if name not in DIMENSIONS:
        raise ReportError("group_by", f"'{name[:40]}' is no dimension; use {', '.join(DIMENSIONS)}")
    return name


def parse_group_by(raw: str) -> tuple[str, ...]:
    dims = tuple(dimension(d) for d in raw.split(",") if d.strip())
    if len(set(dims)) != len(dims):
        raise ReportError("group_by", "name each dimension once")
    return dims


def parse_sort(raw: str, group_by: Sequence[str]) -> tuple[tuple[str, bool], ...]:
    """'-clicks,day': metrics and the dimensions grouped by, '-' for descending."""
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        descending = part.startswith("-")
        name = sort_name(part)
        if name not in METRICS and name not in group_by:
            raise ReportError("sort", f"'{name[:40]}' is neither a metric nor a dimension grouped by")
        out.append((name, descending))
    return tuple(out)


def sort_name(part: str) -> str:
    """The metric or dimension one key of a sort names, as parse_sort reads it ("+revenue",
    "-revenue" and "revenue" are one)."""
    bare = part.strip().lstrip("-+")
    return ALIASES.get(bare, bare)


def parse_zone(raw: str) -> ZoneInfo:
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportError("zone", f"'{raw[:64]}' is no IANA time zone (e.g. Europe/Berlin, UTC)") from None


# Epoch arithmetic needs positive seconds, and every zone's day after the last one must exist.
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(9998, 12, 31)


def check_period(first: date, last: date) -> None:
    for name, day in (("from", first), ("to", last)):
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ReportError(name, f"a day from {FIRST_DAY} to {LAST_DAY}")
    if last < first:
        raise ReportError("to", "the period ends before it starts")
    if (last - first).days >= MAX_DAYS:
        raise ReportError("to", f"a report covers at most {MAX_DAYS} days")


def hour_of(moment: datetime) -> int:
    """A moment's UTC epoch hour: the hourly rollup's key."""
    return int(moment.timestamp()) // 3600


def hour_range(first: date, last: date) -> tuple[int, int]:
    """Epoch hours [start, end) covering whole UTC days first..last."""
    # The end counted in hours, not as the next day's midnight: the day after 9999-12-31 is no date.
    return _midnight_hour(first), _midnight_hour(last) + 24


def _midnight_hour(day: date) -> int:
    return hour_of(datetime(day.year, day.month, day.day, tzinfo=UTC))


def day_of(day_number: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day_number)).isoformat()


# --- the local clock ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clock:
    """A zone's offset from UTC over a period, as (from UTC second, offset in seconds) pieces in
    time order: local time = UTC + the offset of the piece the moment falls in. Every local
    bucket (hour, day, week, month) is then integer arithmetic on epoch seconds, which SQLite and
    PostgreSQL do alike; the 23- and 25-hour days of DST changes come out as they are."""

    zone: str
    start: int  # the period in UTC epoch seconds [start, end)
    end: int
    pieces: tuple[tuple[int, int], ...]

    @property
    def whole_hours(self) -> bool:
        """Local days start on UTC hours: hourly rollups can answer."""
        return all(offset % 3600 == 0 for _, offset in self.pieces)

    def hour_offset(self, start: int) -> int:
        """The offset of the local hour that starts at UTC second `start` (an hour's key): that
        of the piece it overlaps whose clock reads a whole hour at `start`. Australia/Lord_Howe's
        02:00+11:00 on the night its clocks go forward by half an hour starts at 15:00 UTC, when
        they still read 01:30+10:30; it holds only the half hour from 15:30."""
        found = self.pieces[0][1]
        for n, (since, offset) in enumerate(self.pieces):
            until = self.pieces[n + 1][0] if n + 1 < len(self.pieces) else start + 3600
            if since < start + 3600 and until > start and (start + offset) % 3600 == 0:
                found = offset
        return found


def clock(zone: ZoneInfo, first: date, last: date) -> Clock:
    start = _instant(zone, first)
    end = _instant(zone, last + timedelta(days=1))
    pieces: list[tuple[int, int]] = []
    offset = _offset(zone, start)
    pieces.append((start, offset))
    second = start
    # Offsets change on whole quarter hours of UTC in every zone: scanning hour by hour and
    # bisecting the hour where it changed finds each change to the second.
    while second < end:
        following = min(second + 3600, end)
        if _offset(zone, following) != offset:
            low, high = second, following
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(zone, middle) == offset else (low, middle)
            offset = _offset(zone, high)
            pieces.append((high, offset))
        second = following
    return Clock(str(zone.key), start, end, tuple(pieces))


def _instant(zone: ZoneInfo, day: date) -> int:
    local = datetime(day.year, day.month, day.day, tzinfo=zone)
    return int(local.astimezone(UTC).timestamp())


def _offset(zone: ZoneInfo, second: int) -> int:
    moment = datetime.fromtimestamp(second, UTC).astimezone(zone)
    delta = moment.utcoffset()
    assert delta is not None
    return int(delta.total_seconds())


class LocalDays:
    """The local day of a moment in each kept zone, cached per UTC quarter hour: every zone's
    offset is a whole number of quarter hours, so a local day starts on one."""

    def __init__(self, zones: Sequence[str]) -> None:
        self.zones = tuple(zones)
        self._zones = [ZoneInfo(z) for z in self.zones]
        self._cache: dict[int, tuple[int, ...]] = {}

    def of(self, second: int) -> tuple[int, ...]:
        slot = second // 900
        found = self._cache.get(slot)
        if found is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            start = slot * 900
            found = self._cache[slot] = tuple(local_day(start, _offset(z, start)) for z in self._zones)
        return found


def next_midnight(zone: ZoneInfo, second: int) -> int:
    """The first local midnight after a moment, in UTC epoch seconds."""
    today = datetime.fromtimestamp(second, UTC).astimezone(zone).date()
    return _instant(zone, today + timedelta(days=1))


def local_day(second: int, offset: int) -> int:
    """The local day number (days since 1970-01-01 in local time)."""
    return (second + offset) // SECONDS_PER_DAY


def week_of(day_number: int) -> int:
    """Weeks start on Monday: day 0 (1970-01-01) was a Thursday."""
    return (day_number + 3) // 7


def week_days(week: int) -> tuple[int, int]:
    """The first and last local day (Monday, Sunday) of a week_of number."""
    return 7 * week - 3, 7 * week + 3


def month_of(day_number: int) -> int:
    d = date(1970, 1, 1) + timedelta(days=day_number)
    return d.year * 12 + d.month - 1


def month_starts(first_day: int, last_day: int) -> list[tuple[int, int]]:
    """(first day number, month number) of every month touching days first..last."""
    out = []
    d = date(1970, 1, 1) + timedelta(days=first_day)
    current = date(d.year, d.month, 1)
    end = date(1970, 1, 1) + timedelta(days=last_day)
    while current <= end:
        out.append(((current - date(1970, 1, 1)).days, current.year * 12 + current.month - 1))
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return out


def month_instants(zone: ZoneInfo, first: int, last: int) -> list[int]:
    """UTC epoch seconds at which the local months `first`..`last` (numbers as month_of's) start,
    then the second the last one ends: a moment is in the last month it is at or after the start of."""
    return [_instant(zone, date(m // 12, m % 12 + 1, 1)) for m in range(first, last + 2)]


def label(grain: str, number: int, local: Clock) -> str:
    """A time bucket's key as the reply shows it; an hour's `number` is the UTC second it starts
    at. Hours carry their UTC offset, so the two 02:00 hours of a night when clocks go back are
    two rows, each named unambiguously."""
    if grain == "hour":
        offset = timezone(timedelta(seconds=local.hour_offset(number)))
        return datetime.fromtimestamp(number, offset).isoformat(timespec="minutes")
    if grain == "day":
        return (date(1970, 1, 1) + timedelta(days=number)).isoformat()
    if grain == "week":
        return (date(1970, 1, 1) + timedelta(days=number * 7 - 3)).isoformat()
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


# --- which rollup answers -----------------------------------------------------------------------


def choose_source(query: ReportQuery, local: Clock, kept_since: Mapping[str, int]) -> Source:
    """The coarsest store that holds every dimension and filter asked for over the whole period.

    `kept_since` maps each rollup (`hours`, `days:<zone>`) to the UTC second from which it is
    complete: a rollup kept since a later moment than the period's start cannot answer it."""
    # Advertiser, offer and affiliate are in every rollup; the link only in the values one.
    needed = {NAMED_DIMENSIONS.get(d, d) for d in (*query.group_by, *query.filters)} - {
        *TIME_DIMENSIONS,
        "advertiser",
        "offer",
        "affiliate",
    }
    values = needed & set(VALUE_DIMENSIONS)
    days_since = kept_since.get(f"days:{local.zone}")
    if query.time_grain != "hour" and days_since is not None and days_since <= local.start:
        if not needed:
            # By owners and time only: the links' rows of the values rollup hold every click
            # and conversion without the country, several times fewer than the days' rows.
            return Source.VALUES
        if needed <= set(CORE_DIMENSIONS):
            return Source.DAYS
        if len(values) == 1 and needed == values:
            return Source.VALUES
    hours_since = kept_since.get("hours")
    if (
        needed <= set(CORE_DIMENSIONS)
        and local.whole_hours
        and hours_since is not None
        and hours_since <= local.start
    ):
        return Source.HOURS
    return Source.RAW
