"""The overview's key figures and daily series (web/overview.py), from report figures."""

from datetime import date
from decimal import Decimal

from clickback.web.overview import days, kpis, periods, series

NOW = {
    "clicks": 150,
    "registrations": 3,
    "ftds": 0,
    "commission": {"EUR": Decimal("30.00"), "USD": Decimal("5.00")},
    "revenue": {"EUR": Decimal("80.00")},
    "profit": {"EUR": Decimal("50.00")},
}
BEFORE = {
    "clicks": 100,
    "registrations": 0,
    "ftds": 2,
    "commission": {"EUR": Decimal("40.00")},
    "revenue": {},
    "profit": {},
}


def test_each_key_figure_changes_against_the_period_before() -> None:
    shown = {k.name: k.lines for k in kpis(NOW, BEFORE, network=True)}

    assert shown["clicks"] == [("150", "+50.0%")]
    assert shown["registrations"] == [("3", "no figures before")]
    assert shown["ftds"] == [("0", "-100.0%")]
    # Money a line per currency: amounts in two currencies are never added together.
    assert shown["commission"] == [("30.00 EUR", "-25.0%"), ("5.00 USD", "no figures before")]
    assert shown["revenue"] == [("80.00 EUR", "no figures before")]


def test_a_profit_with_no_figure_is_a_dash() -> None:
    """No revenue known (core.metrics.known_revenue): profit is None, neither 0 nor an error."""
    shown = {k.name: k.lines for k in kpis(NOW | {"profit": None}, BEFORE, network=True)}
    assert shown["profit"] == [("\u2013", "no figures before")]
    shown = {k.name: k.lines for k in kpis(NOW, BEFORE | {"profit": None}, network=True)}
    assert shown["profit"] == [("50.00 EUR", "no figures before")]


def test_an_affiliate_sees_no_revenue_or_profit() -> None:
    assert [k.name for k in kpis(NOW, BEFORE, network=False)] == [
        "clicks",
        "registrations",
        "ftds",
        "commission",
    ]


def test_a_day_without_figures_is_a_zero_and_money_a_series_per_currency() -> None:
    labels = days(date(2026, 11, 30), date(2026, 12, 2))
    rows = [
        ({"day": "2026-12-02"}, {"clicks": 7, "commission": {"EUR": Decimal("1.5"), "USD": Decimal(2)}}),
        ({"day": "2026-11-30"}, {"clicks": 3, "commission": {}}),
    ]

    assert labels == ["2026-11-30", "2026-12-01", "2026-12-02"]
    assert series("clicks", labels, rows) == {"clicks": [3.0, 0.0, 7.0]}
    assert series("commission", labels, rows) == {"EUR": [0.0, 0.0, 1.5], "USD": [0.0, 0.0, 2.0]}
    assert series("revenue", labels, []) == {"revenue": [0.0, 0.0, 0.0]}


def test_the_periods_offered_end_today_but_last_month() -> None:
    offered = {label: (first, last) for label, first, last in periods(date(2026, 3, 1))}

    assert offered == {
        "Today": (date(2026, 3, 1), date(2026, 3, 1)),
        "7 days": (date(2026, 2, 23), date(2026, 3, 1)),
        "30 days": (date(2026, 1, 31), date(2026, 3, 1)),
        "This month": (date(2026, 3, 1), date(2026, 3, 1)),
        "Last month": (date(2026, 2, 1), date(2026, 2, 28)),
    }
