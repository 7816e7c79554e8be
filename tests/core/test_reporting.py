"""Report requests, local clocks and the choice of rollup (core.reporting)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from clickback.core.reporting import (
    LocalDays,
    ReportError,
    ReportQuery,
    Source,
    choose_source,
    clock,
    label,
    local_day,
    month_starts,
    next_midnight,
    parse_group_by,
    parse_sort,
    parse_zone,
    week_of,
)

BERLIN = ZoneInfo("Europe/Berlin")


def epoch(*parts: int, tz: ZoneInfo | None = None) -> int:
    return int(datetime(*parts, tzinfo=tz or UTC).timestamp())  # type: ignore[misc]


def test_a_clock_over_the_night_clocks_go_back_has_a_25_hour_day() -> None:
    c = clock(BERLIN, date(2026, 10, 24), date(2026, 10, 26))
    # Summer time (+2) until 01:00 UTC on the 25th, winter time (+1) after.
    assert c.pieces == ((epoch(2026, 10, 23, 22), 7200), (epoch(2026, 10, 25, 1), 3600))
    assert c.whole_hours
    assert (c.end - c.start) // 3600 == 24 + 25 + 24


def test_a_clock_over_the_night_clocks_go_forward_has_a_23_hour_day() -> None:
    c = clock(BERLIN, date(2026, 3, 29), date(2026, 3, 29))
    assert (c.end - c.start) // 3600 == 23
    assert [offset for _, offset in c.pieces] == [3600, 7200]


def test_local_days_follow_the_zone_not_utc() -> None:
    late_evening_utc = epoch(2026, 10, 24, 22, 30)  # 00:30 on the 25th in Berlin
    days = LocalDays(("UTC", "Europe/Berlin", "America/New_York"))
    utc_day, berlin_day, new_york_day = days.of(late_evening_utc)
    assert berlin_day == utc_day + 1 == new_york_day + 1
    assert label("day", berlin_day, clock(BERLIN, date(2026, 10, 25), date(2026, 10, 25))) == "2026-10-25"
    # Cached by the quarter hour, the same answer as computed afresh.
    assert days.of(late_evening_utc + 60) == (utc_day, berlin_day, new_york_day)


def test_a_zone_off_by_half_an_hour_has_its_own_hours() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    c = clock(kolkata, date(2026, 11, 1), date(2026, 11, 1))
    assert not c.whole_hours
    assert label("hour", c.start, c) == "2026-11-01T00:00+05:30"
    assert label("hour", c.start + 3600, c) == "2026-11-01T01:00+05:30"


def test_the_two_hours_named_0200_on_the_night_clocks_go_back_are_told_apart() -> None:
    c = clock(BERLIN, date(2026, 10, 25), date(2026, 10, 25))
    first, second = epoch(2026, 10, 25, 0), epoch(2026, 10, 25, 1)
    assert label("hour", first, c) == "2026-10-25T02:00+02:00"
    assert label("hour", second, c) == "2026-10-25T02:00+01:00"


def test_hours_of_a_zone_whose_clocks_move_by_half_an_hour_carry_the_offset_of_their_hour() -> None:
    # Lord_Howe: +10:30 to +11:00 at 15:30 UTC on 2026-10-03, back at 15:00 UTC on 2027-04-03.
    c = clock(ZoneInfo("Australia/Lord_Howe"), date(2026, 10, 1), date(2027, 4, 30))
    assert not c.whole_hours
    assert label("hour", epoch(2026, 10, 3, 14, 30), c) == "2026-10-04T01:00+10:30"
    # 02:00+11:00 starts at 15:00 UTC (then 01:30+10:30): its facts are those from 15:30.
    assert label("hour", epoch(2026, 10, 3, 15), c) == "2026-10-04T02:00+11:00"
    assert label("hour", epoch(2026, 10, 25, 21), c) == "2026-10-26T08:00+11:00"
    # The repeated half hour 01:30-02:00 is an hour of its own.
    assert label("hour", epoch(2027, 4, 3, 14), c) == "2027-04-04T01:00+11:00"
    assert label("hour", epoch(2027, 4, 3, 14, 30), c) == "2027-04-04T01:00+10:30"


def test_weeks_start_on_monday_and_months_start_on_the_first() -> None:
    monday = (date(2026, 11, 30) - date(1970, 1, 1)).days
    assert week_of(monday) == week_of(monday + 6) != week_of(monday - 1)
    c = clock(BERLIN, date(2026, 10, 1), date(2026, 12, 31))
    assert label("week", week_of(monday + 3), c) == "2026-11-30"
    starts = month_starts(monday - 40, monday + 2)
    assert [label("month", m, c) for _, m in starts] == ["2026-10", "2026-11", "2026-12"]
    assert starts[1][0] == (date(2026, 11, 1) - date(1970, 1, 1)).days
    assert local_day(epoch(2026, 11, 1), 0) == starts[1][0]


def test_the_next_local_midnight() -> None:
    assert next_midnight(BERLIN, epoch(2026, 10, 24, 22, 30)) == epoch(2026, 10, 25, 23)
    assert next_midnight(ZoneInfo("UTC"), epoch(2026, 10, 24, 22, 30)) == epoch(2026, 10, 25)


def query(**changes: object) -> ReportQuery:
    return ReportQuery(date(2026, 10, 1), date(2026, 10, 30), **changes)  # type: ignore[arg-type]


KEPT = {"hours": 0, "days:UTC": 0, "days:Europe/Berlin": 0}


@pytest.mark.parametrize(
    ("changes", "zone", "kept", "source"),
    [
        ({"group_by": ("day", "affiliate", "offer", "country")}, "UTC", KEPT, Source.DAYS),
        ({"group_by": ("week", "advertiser", "affiliate")}, "UTC", KEPT, Source.VALUES),
        ({"group_by": ("week", "country"), "zone": "Europe/Berlin"}, "Europe/Berlin", KEPT, Source.DAYS),
        (
            {"group_by": ("month", "device_type"), "zone": "Europe/Berlin"},
            "Europe/Berlin",
            KEPT,
            Source.VALUES,
        ),
        ({"group_by": ("day", "link"), "filters": {"affiliate": (3,)}}, "UTC", KEPT, Source.VALUES),
        ({"group_by": ("sub1",)}, "UTC", KEPT, Source.VALUES),
        ({"group_by": ("day",), "filters": {"sub3": ("x",)}}, "UTC", KEPT, Source.VALUES),
        # Hours are UTC hours: any zone a whole number of hours off UTC.
        (
            {"group_by": ("hour", "affiliate"), "zone": "America/New_York"},
            "America/New_York",
            KEPT,
            Source.HOURS,
        ),
        ({"group_by": ("day",), "zone": "America/New_York"}, "America/New_York", KEPT, Source.HOURS),
        # Two value dimensions, a value dimension by hour, an odd zone: the raw tables.
        ({"group_by": ("sub1", "sub2")}, "UTC", KEPT, Source.RAW),
        ({"group_by": ("sub1", "country")}, "UTC", KEPT, Source.RAW),
        ({"group_by": ("hour", "sub1")}, "UTC", KEPT, Source.RAW),
        ({"group_by": ("link", "country")}, "UTC", KEPT, Source.RAW),
        # A campaign is its links: where the link is, and beside another value dimension, raw.
        ({"group_by": ("day", "campaign")}, "UTC", KEPT, Source.VALUES),
        ({"group_by": ("campaign", "link")}, "UTC", KEPT, Source.VALUES),
        ({"group_by": ("sub1",), "filters": {"campaign": ("spring",)}}, "UTC", KEPT, Source.RAW),
        ({"group_by": ("campaign",), "zone": "America/New_York"}, "America/New_York", KEPT, Source.RAW),
        ({"group_by": ("hour", "device_type")}, "UTC", KEPT, Source.RAW),
        ({"group_by": ("day",), "zone": "Asia/Kolkata"}, "Asia/Kolkata", KEPT, Source.RAW),
        # A zone kept only from later than the period's start cannot answer it.
        ({"group_by": ("day",)}, "UTC", {"hours": 0, "days:UTC": 2_000_000_000}, Source.HOURS),
        ({"group_by": ("day",)}, "UTC", {"hours": 2_000_000_000}, Source.RAW),
    ],
)
def test_the_coarsest_store_that_holds_the_question_answers_it(
    changes: dict[str, object], zone: str, kept: dict[str, int], source: Source
) -> None:
    q = query(**changes)
    assert choose_source(q, clock(ZoneInfo(zone), q.first, q.last), kept) == source


def test_requests_are_read_strictly() -> None:
    assert parse_group_by("day, affiliate_id ,sub1") == ("day", "affiliate", "sub1")
    assert parse_sort("-clicks,day", ("day",)) == (("clicks", True), ("day", False))
    with pytest.raises(ReportError, match="no dimension"):
        parse_group_by("day,nonsense")
    with pytest.raises(ReportError, match="once"):
        parse_group_by("day,day")
    with pytest.raises(ReportError, match="neither a metric"):
        parse_sort("-country", ("day",))
    with pytest.raises(ReportError, match="IANA"):
        parse_zone("Mars/Olympus")
    assert query().previous() == ReportQuery(date(2026, 9, 1), date(2026, 9, 30))
