from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickback.core.lifecycle import Status
from clickback.core.reporting import ClickCount, ConversionCount, ReportRow, build_rows, day_of, hour_range


def epoch_hour(when: datetime) -> int:
    return int(when.timestamp()) // 3600


@pytest.mark.parametrize(
    ("first", "last", "hours"),
    [
        (date(1970, 1, 1), date(1970, 1, 1), (0, 24)),
        (date(1970, 1, 1), date(1970, 1, 2), (0, 48)),
        (date(2025, 6, 1), date(2025, 6, 1), (485_760, 485_784)),
        # Across a leap day and a European clock change: UTC days are always 24 hours.
        (date(2024, 2, 28), date(2024, 3, 1), (474_744, 474_816)),
        (date(2025, 3, 29), date(2025, 3, 31), (484_224, 484_296)),
        # Both ends of the calendar: no day after the last one is needed.
        (date(9999, 12, 30), date.max, (70_389_480, 70_389_528)),
        (date.min, date.min, (-17_259_888, -17_259_864)),
    ],
)
def test_hour_range_covers_whole_utc_days(first: date, last: date, hours: tuple[int, int]) -> None:
    assert hour_range(first, last) == hours


@settings(max_examples=200)
@given(first=st.dates(min_value=date(1970, 1, 1), max_value=date(2200, 1, 1)), days=st.integers(0, 400))
def test_hour_range_starts_at_the_first_midnight_and_ends_after_the_last_day(first: date, days: int) -> None:
    last = first + timedelta(days=days)
    start, end = hour_range(first, last)
    assert start == epoch_hour(datetime(first.year, first.month, first.day, tzinfo=UTC))
    assert end - start == 24 * (days + 1)


@pytest.mark.parametrize(("day", "text"), [(0, "1970-01-01"), (20_240, "2025-06-01"), (19_782, "2024-02-29")])
def test_day_number_is_shown_as_an_iso_date(day: int, text: str) -> None:
    assert day_of(day) == text


def conversion(
    key: tuple[str | int, ...], event: str, status: Status, count: int, payout: str, currency: str = "EUR"
) -> ConversionCount:
    return ConversionCount(key, event, status, currency, count, Decimal(payout))


def test_rows_merge_clicks_and_conversions_by_key() -> None:
    alice, bob, carol = ("2025-06-01", 1), ("2025-06-01", 2), ("2025-06-02", 3)
    rows, total = build_rows(
        ("day", "affiliate_id"),
        [ClickCount(alice, 10), ClickCount(bob, 5), ClickCount(alice, 2)],
        [
            conversion(alice, "registration", Status.PENDING, 2, "3.00"),
            conversion(alice, "registration", Status.APPROVED, 1, "1.50"),
            conversion(alice, "first_deposit", Status.APPROVED, 1, "50"),
            conversion(alice, "first_deposit", Status.APPROVED, 1, "10", "USD"),
            conversion(alice, "first_deposit", Status.REJECTED, 4, "200"),
            conversion(alice, "registration", Status.CANCELLED, 1, "1.50"),
            conversion(carol, "sale", Status.REJECTED, 2, "9"),
        ],
    )
    assert rows == [
        ReportRow(
            {"day": "2025-06-01", "affiliate_id": 1},
            clicks=12,
            conversions={"registration": 3, "first_deposit": 2},
            rejected=5,
            payout={"EUR": Decimal("54.50"), "USD": Decimal(10)},
        ),
        ReportRow({"day": "2025-06-01", "affiliate_id": 2}, clicks=5),
        ReportRow({"day": "2025-06-02", "affiliate_id": 3}, rejected=2),
    ]
    assert total == ReportRow(
        {},
        clicks=17,
        conversions={"registration": 3, "first_deposit": 2},
        rejected=7,
        payout={"EUR": Decimal("54.50"), "USD": Decimal(10)},
    )


@pytest.mark.parametrize(
    ("status", "conversions", "rejected", "payout"),
    [
        (Status.PENDING, {"sale": 3}, 0, {"EUR": Decimal(30)}),
        (Status.APPROVED, {"sale": 3}, 0, {"EUR": Decimal(30)}),
        (Status.REJECTED, {}, 3, {}),
        (Status.CANCELLED, {}, 3, {}),
    ],
)
def test_pending_and_approved_earn_while_rejected_and_cancelled_only_count(
    status: Status, conversions: dict[str, int], rejected: int, payout: dict[str, Decimal]
) -> None:
    rows, _ = build_rows(("offer_id",), [], [conversion((7,), "sale", status, 3, "30")])
    assert rows == [ReportRow({"offer_id": 7}, conversions=conversions, rejected=rejected, payout=payout)]


def test_no_counters_give_no_rows_and_an_empty_total() -> None:
    assert build_rows(("day",), [], []) == ([], ReportRow({}))


keys = st.tuples(st.sampled_from(["2025-06-01", "2025-06-02"]), st.integers(1, 4))
click_counts = st.builds(ClickCount, keys, st.integers(0, 1000))
conversion_counts = st.builds(
    ConversionCount,
    keys,
    st.sampled_from(["registration", "first_deposit", "vip_level"]),
    st.sampled_from(Status),
    st.sampled_from(["EUR", "USD"]),
    st.integers(0, 100),
    st.decimals(min_value=0, max_value=10**6, places=4),
)


@settings(max_examples=60)
@given(clicks=st.lists(click_counts, max_size=12), conversions=st.lists(conversion_counts, max_size=12))
def test_totals_equal_the_sum_of_the_rows(
    clicks: list[ClickCount], conversions: list[ConversionCount]
) -> None:
    rows, total = build_rows(("day", "affiliate_id"), clicks, conversions)
    assert len({tuple(row.key.values()) for row in rows}) == len(rows)
    assert total.clicks == sum(row.clicks for row in rows) == sum(c.clicks for c in clicks)
    assert total.rejected == sum(row.rejected for row in rows)
    for event in {event for row in rows for event in row.conversions} | set(total.conversions):
        assert total.conversions.get(event, 0) == sum(row.conversions.get(event, 0) for row in rows)
    for currency in ("EUR", "USD"):
        in_rows = sum((row.payout.get(currency, Decimal(0)) for row in rows), Decimal(0))
        assert total.payout.get(currency, Decimal(0)) == in_rows
    counted = sum(v.conversions for v in conversions)
    assert total.rejected + sum(total.conversions.values()) == counted
