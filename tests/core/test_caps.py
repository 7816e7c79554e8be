from datetime import UTC, datetime

import pytest

from clickback.core.caps import TOTAL, Cap, cap_status, counters

LATE_EVENING_UTC = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("daily", "total", "zone", "expected"),
    [
        (None, None, "UTC", []),
        (5, None, "UTC", [("2026-12-03", 5)]),
        (None, 100, "UTC", [(TOTAL, 100)]),
        # 23:30 UTC is already the next day in Berlin: the daily cap counts the local day.
        (5, 100, "Europe/Berlin", [("2026-12-04", 5), (TOTAL, 100)]),
        (0, None, "America/New_York", [("2026-12-03", 0)]),
    ],
)
def test_a_conversion_fills_the_local_days_and_the_total_counter(
    daily: int | None, total: int | None, zone: str, expected: list[tuple[str, int]]
) -> None:
    cap = Cap(1, offer_id=3, affiliate_id=0, event="qualified_cpa", daily=daily, total=total, zone=zone)
    assert counters(cap, LATE_EVENING_UTC) == expected


def test_the_cap_status_macro_says_over_cap_or_nothing() -> None:
    assert (cap_status(True), cap_status(False)) == ("over_cap", "")
