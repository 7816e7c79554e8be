"""Which conversions make a player active, per vertical, and the months of a zone
(core.activity, core.verticals)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from clickback.core.activity import (
    activity_query,
    current_month,
    followed,
    is_activity,
    month_label,
    month_number,
)
from clickback.core.reporting import ReportError

TEN = Decimal(10)

# (vertical, event, amount, active?)
CASES = [
    ("casino", "first_deposit", TEN, True),
    ("casino", "deposit", TEN, True),
    ("casino", "wager", TEN, True),
    ("casino", "net_revenue", Decimal(-250), True),  # the player won: they played
    ("casino", "net_revenue", Decimal(0), False),  # listed in the month's export, did nothing
    ("casino", "net_revenue", None, False),
    ("casino", "registration", None, False),
    ("casino", "withdrawal", TEN, False),
    ("casino", "bonus", TEN, False),
    ("casino", "chargeback", TEN, False),
    ("poker", "wager", TEN, True),  # rake
    ("poker", "net_revenue", TEN, True),
    ("poker", "first_deposit", TEN, False),
    ("poker", "deposit", TEN, False),
    ("sportsbook", "first_deposit", TEN, True),
    ("sportsbook", "deposit", TEN, True),
    ("sportsbook", "wager", TEN, True),
    ("sportsbook", "net_revenue", TEN, False),  # settles long after the bet
    ("ewallet", "first_deposit", TEN, True),
    ("ewallet", "deposit", TEN, True),
    ("ewallet", "withdrawal", TEN, True),
    ("ewallet", "wager", TEN, False),
    ("", "deposit", TEN, True),
    ("", "wager", TEN, True),
    ("", "net_revenue", TEN, True),
    ("", "withdrawal", TEN, False),
    ("", "sale", TEN, False),
    ("lottery", "deposit", TEN, True),  # a vertical with no preset: the default
]


@pytest.mark.parametrize(("vertical", "event", "amount", "active"), CASES)
def test_the_vertical_says_which_events_make_a_player_active(
    vertical: str, event: str, amount: Decimal | None, active: bool
) -> None:
    assert is_activity(vertical, event, amount) is active


def test_months_are_numbered_and_named_alike() -> None:
    assert month_label(month_number("2026-11")) == "2026-11"
    assert month_number("2027-01") - month_number("2026-12") == 1


def test_a_zones_months_start_at_its_own_midnight() -> None:
    q = activity_query("2026-10", "2026-11", "Europe/Berlin")
    # Summer time (+2) at October's start, winter time (+1) at November's and December's.
    assert q.bounds() == [
        datetime(2026, 9, 30, 22, tzinfo=UTC),
        datetime(2026, 10, 31, 23, tzinfo=UTC),
        datetime(2026, 11, 30, 23, tzinfo=UTC),
    ]
    assert len(q.bounds(3)) == 2 + 3 + 1


@pytest.mark.parametrize(
    ("first", "last", "zone", "field"),
    [
        ("2026-11", "2026-10", "UTC", "to"),
        ("2024-01", "2026-01", "UTC", "to"),  # 25 months
        ("2026-01", "2026-02", "Mars/Olympus", "zone"),
    ],
)
def test_a_bad_period_or_zone_names_its_parameter(first: str, last: str, zone: str, field: str) -> None:
    with pytest.raises(ReportError) as refused:
        activity_query(first, last, zone)
    assert refused.value.field == field


def test_a_month_not_begun_in_the_zone_is_not_followed() -> None:
    new_year_utc = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already January in Berlin
    assert month_label(current_month("UTC", new_year_utc)) == "2026-12"
    assert month_label(current_month("Europe/Berlin", new_year_utc)) == "2027-01"
    december = month_number("2026-12")
    assert followed(december, 0, current_month("UTC", new_year_utc))
    assert not followed(december, 1, current_month("UTC", new_year_utc))
    assert followed(december, 1, current_month("Europe/Berlin", new_year_utc))
