"""The report builder's URL state (web/reportform.py): read without ever failing, written back
as the links that sort, page and drill down."""

from datetime import date
from urllib.parse import parse_qsl, urlsplit

import pytest

from clickback.core.accounts import NETWORK_METRICS
from clickback.web.reportform import DEFAULT_METRICS, ReportForm, read_form

TODAY = date(2026, 12, 3)


def params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_a_first_visit_is_the_last_seven_days_by_day() -> None:
    form, problems = read_form([], TODAY)

    assert (form.first, form.last, form.by, form.zone, form.page) == (
        date(2026, 11, 27),
        TODAY,
        ("day",),
        "UTC",
        1,
    )
    assert form.metrics == DEFAULT_METRICS and problems == []


def test_the_url_a_form_writes_reads_back_as_the_same_form() -> None:
    form = ReportForm(
        date(2026, 11, 1),
        date(2026, 11, 30),
        "Europe/Berlin",
        by=("offer", "country"),
        metrics=("clicks", "ftds"),
        filters=(("sub1", "<b>&x"), ("offer", "3")),
        sort="-clicks",
        page=3,
        rows=50,
    )

    assert read_form(params(form.url()), TODAY) == (form, [])


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ([("from", "2026-02-30")], "from"),
        ([("from", "2026-12-05"), ("to", "2026-12-01")], "to"),
        ([("from", "2020-01-01"), ("to", "2026-01-01")], "to"),
        ([("to", "0001-01-06")], "from"),  # no week before it: a 500 until 2026-12-06
        ([("zone", "Mars/Base")], "zone"),
        ([("basis", "moon")], "basis"),
        ([("by", "planet")], "by"),
        ([("by", "day"), ("by", "offer"), ("by", "country"), ("by", "sub1")], "by"),
        ([("m", "nothing")], "m"),
        ([("sort", "-nothing")], "sort"),
        ([("page", "0")], "page"),
        ([("page", "x" * 5000)], "page"),
        ([("rows", "100000")], "rows"),
        ([("country", "\x00")], "country"),  # PostgreSQL's 500 until 2026-12-06
        ([("sub1", "a\x00b")], "sub1"),
        ([("day", "2026-11-07")], "day"),  # a time is the period: ignored until 2026-12-06
    ],
)
def test_a_wrong_value_is_named_and_replaced_by_its_default(query: list[tuple[str, str]], named: str) -> None:
    form, problems = read_form(query, TODAY)

    assert [p.split(":")[0] for p in problems] == [named]
    assert form.first <= form.last and form.by


def test_an_affiliate_cannot_ask_for_or_sort_by_the_networks_figures() -> None:
    form, problems = read_form(
        [("m", "revenue"), ("m", "clicks"), ("sort", "-profit")], TODAY, NETWORK_METRICS
    )

    assert form.metrics == ("clicks",) and form.sort == ""
    assert [p.split(":")[0] for p in problems] == ["m", "sort"]


def test_sorting_descends_first_then_ascends_and_starts_again_at_page_one() -> None:
    form = ReportForm(TODAY, TODAY, page=4)

    first = dict(params(form.sorted_by("clicks")))
    again = dict(params(ReportForm(TODAY, TODAY, sort="-clicks").sorted_by("clicks")))

    assert (first["sort"], "page" in first, again["sort"]) == ("-clicks", False, "clicks")


@pytest.mark.parametrize(
    ("by", "clicked", "value", "filters", "then"),
    [
        # Another dimension grouped by: it takes over.
        (("offer", "country"), "offer", "3", [("offer", "3")], ["country"]),
        # The only one: the next down the ladder not filtered yet.
        (("offer",), "offer", "3", [("offer", "3")], ["affiliate"]),
        (("country",), "country", "DE", [("country", "DE")], ["sub1"]),
        (("sub5",), "sub5", "x", [("sub5", "x")], ["source"]),
    ],
)
def test_a_drill_down_filters_by_the_value_and_groups_by_what_comes_next(
    by: tuple[str, ...], clicked: str, value: str, filters: list[tuple[str, str]], then: list[str]
) -> None:
    form = ReportForm(TODAY, TODAY, by=by, sort="-clicks", page=2)

    drilled, _ = read_form(params(form.drilled(clicked, value)), TODAY)

    assert (list(drilled.filters), list(drilled.by), drilled.sort, drilled.page) == (filters, then, "", 1)


def test_a_drill_down_on_a_day_makes_it_the_period_by_offer() -> None:
    form = ReportForm(date(2026, 11, 1), date(2026, 11, 30), by=("day",))

    drilled, _ = read_form(params(form.drilled("day", "2026-11-07")), TODAY)

    assert (drilled.first, drilled.last, drilled.by) == (
        date(2026, 11, 7),
        date(2026, 11, 7),
        ("offer",),
    )


def test_an_affiliate_drilling_down_skips_their_own_id() -> None:
    form = ReportForm(TODAY, TODAY, by=("offer",))

    drilled, _ = read_form(params(form.drilled("offer", "3", frozenset({"affiliate"}))), TODAY)

    assert drilled.by == ("link",)


def test_a_form_naming_no_zone_is_in_the_persons_own_and_a_wrong_one_falls_back_to_it() -> None:
    assert read_form([], TODAY, zone="Europe/Berlin")[0].zone == "Europe/Berlin"
    assert read_form([("zone", "Asia/Tokyo")], TODAY, zone="Europe/Berlin")[0].zone == "Asia/Tokyo"
    form, problems = read_form([("zone", "Mars/Base")], TODAY, zone="Europe/Berlin")
    assert form.zone == "Europe/Berlin" and problems == [
        "zone: 'Mars/Base' is no IANA time zone (e.g. Europe/Berlin, UTC); Europe/Berlin is shown"
    ]


def test_a_filter_it_cannot_use_is_left_out_and_other_fields_are_no_problem() -> None:
    form, problems = read_form(
        [("sub1", "a\x00b"), ("month", "2026-11"), ("sub1", "spring"), ("submit", ""), ("utm", "x")], TODAY
    )

    assert form.filters == (("sub1", "spring"),)
    assert [p.split(":")[0] for p in problems] == ["sub1", "month"]
