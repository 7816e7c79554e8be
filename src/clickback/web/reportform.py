"""The report builder's state, all of it in the page's URL (a report can be bookmarked): read
from the query string without ever failing (a wrong value is named and replaced by its default),
and written back as the links that sort, page, drill down and download.

    /reports?from=2026-11-01&to=2026-11-30&zone=UTC&basis=conversion&by=offer&by=country
            &m=clicks&m=ftds&country=DE&sort=-clicks&page=2&rows=100

Filters are the dimensions' own names, as in GET /api/reports (`offer=3&country=DE`)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from urllib.parse import urlencode

from clickback.core.accounts import NETWORK_METRICS
from clickback.core.digits import is_digits
from clickback.core.metrics import METRICS
from clickback.core.reporting import (
    ALIASES,
    DIMENSIONS,
    TIME_DIMENSIONS,
    Basis,
    ReportError,
    check_period,
    parse_zone,
)
from clickback.web.reporting import FILTERABLE, MAX_FILTER_VALUES, filter_problem

# Dimensions a report is grouped by at once: more make a table nobody reads.
MAX_BY = 3
PAGE_SIZES = (50, 100, 500, 1000)
DEFAULT_ROWS = 100
# The last page a link may name: 10,000 rows of 1,000 is far past any report worth paging through.
MAX_PAGE = 100_000
DEFAULT_DAYS = 7
DEFAULT_METRICS = (
    "clicks",
    "unique_clicks",
    "registrations",
    "ftds",
    "cr_ftd",
    "commission",
    "revenue",
    "profit",
    "epc",
)
# Where a drill-down goes after a dimension: the next one down this ladder not filtered yet.
DRILL_LADDER = (
    "advertiser",
    "offer",
    "affiliate",
    "link",
    "country",
    "sub1",
    "sub2",
    "sub3",
    "sub4",
    "sub5",
    "source",
    "device_type",
    "os",
    "browser",
    "landing_page",
)


@dataclass(frozen=True, slots=True)
class ReportForm:
    first: date
    last: date
    zone: str = "UTC"
    basis: Basis = Basis.CONVERSION
    by: tuple[str, ...] = ("day",)
    metrics: tuple[str, ...] = DEFAULT_METRICS
    filters: tuple[tuple[str, str], ...] = ()
    sort: str = ""
    page: int = 1
    rows: int = DEFAULT_ROWS

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.rows

    def params(self) -> list[tuple[str, str]]:
        out = [
            ("from", self.first.isoformat()),
            ("to", self.last.isoformat()),
            ("zone", self.zone),
            ("basis", self.basis.value),
        ]
        out += [("by", d) for d in self.by]
        out += [("m", m) for m in self.metrics]
        out += list(self.filters)
        if self.sort:
            out.append(("sort", self.sort))
        if self.page != 1:
            out.append(("page", str(self.page)))
        if self.rows != DEFAULT_ROWS:
            out.append(("rows", str(self.rows)))
        return out

    def url(self, path: str = "/reports") -> str:
        return f"{path}?{urlencode(self.params())}"

    def sorted_by(self, name: str) -> str:
        """The link of a column header: descending first, ascending when it already descends."""
        return replace(self, sort=name if self.sort == f"-{name}" else f"-{name}", page=1).url()

    def sort_mark(self, name: str) -> str:
        return "▼" if self.sort == f"-{name}" else "▲" if self.sort == name else ""

    def paged(self, page: int) -> str:
        return replace(self, page=page).url()

    def drilled(self, dimension: str, value: str, skip: frozenset[str] = frozenset()) -> str:
        """A row's value taken as a filter (a day as the period), grouped by what comes next: the
        other dimensions grouped by, else the next one down DRILL_LADDER not filtered yet (`skip`:
        those the person has no use for, an affiliate's own id)."""
        if dimension == "day":
            day = date.fromisoformat(value)
            changed = replace(self, first=day, last=day)
        else:
            changed = replace(self, filters=(*self.filters, (dimension, value)))
        rest = tuple(d for d in self.by if d != dimension)
        if not rest:
            start = DRILL_LADDER.index(dimension) + 1 if dimension in DRILL_LADDER else 1
            filtered = {name for name, _ in changed.filters} | skip | set(self.by)
            ladder = DRILL_LADDER[start:] + DRILL_LADDER[:start]
            rest = tuple(d for d in ladder if d not in filtered)[:1] or ("day",)
        return replace(changed, by=rest, sort="", page=1).url()

    def without(self, name: str, value: str) -> str:
        kept = tuple(f for f in self.filters if f != (name, value))
        return replace(self, filters=kept, page=1).url()

    def download(self) -> str:
        return replace(self, page=1).url("/reports.csv")


def drillable(dimension: str) -> bool:
    """Whether a row's value of the dimension links further down (a day does: it becomes the
    period; hours, weeks and months do not)."""
    return dimension == "day" or dimension in FILTERABLE


def read_form(
    params: Sequence[tuple[str, str]], today: date, hidden: Iterable[str] = (), zone: str = "UTC"
) -> tuple[ReportForm, list[str]]:
    """The form the query string asks for, and a sentence for each value that could not be used
    (replaced by its default). `hidden`: metrics the person may not see (an affiliate's:
    core.accounts.NETWORK_METRICS). `zone`: the zone of a form that names none, the person's own
    (users.zone), as GET /api/reports takes it."""
    problems: list[str] = []
    one = {name: value for name, value in reversed(params)}  # the first of each name
    kept_out = set(hidden)

    def day(name: str, default: date) -> date:
        raw = one.get(name, "")
        if not raw:
            return default
        try:
            return date.fromisoformat(raw[:32])
        except ValueError:
            problems.append(f"{name}: '{raw[:40]}' is no day (YYYY-MM-DD); {default.isoformat()} is shown")
            return default

    last = day("to", today)
    # A `to` in the calendar's first week has no week before it (an OverflowError, a 500): the
    # default `from` then stays within the calendar, and check_period refuses that `to`.
    first = day("from", max(last, date.min + timedelta(days=DEFAULT_DAYS)) - timedelta(days=DEFAULT_DAYS - 1))
    try:
        check_period(first, last)
    except ReportError as exc:
        problems.append(f"{exc.field}: {exc}; the last {DEFAULT_DAYS} days are shown")
        first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
    default_zone = zone
    zone = one.get("zone", "") or default_zone
    try:
        parse_zone(zone)
    except ReportError as exc:
        problems.append(f"zone: {exc}; {default_zone} is shown")
        zone = default_zone
    try:
        basis = Basis(one.get("basis", Basis.CONVERSION.value))
    except ValueError:
        problems.append("basis: conversion or click; conversion is shown")
        basis = Basis.CONVERSION
    given_by = [ALIASES.get(v.strip(), v.strip()) for n, v in params if n == "by" and v.strip()]
    by: list[str] = []
    for name in given_by:
        if name not in DIMENSIONS:
            problems.append(f"by: '{name[:40]}' is no dimension")
        elif name not in by:
            by.append(name)
    if len(by) > MAX_BY:
        problems.append(f"by: at most {MAX_BY} dimensions at once")
        by = by[:MAX_BY]
    if not any(n == "by" for n, _ in params) or (given_by and not by):
        by = ["day"]  # none asked for (a first visit), or none that exists
    given_metrics = [v for n, v in params if n == "m"]
    chosen = [m for m in dict.fromkeys(given_metrics) if m in METRICS and m not in kept_out]
    if len(chosen) < len(set(given_metrics)):
        problems.append("m: only the metrics listed in the form")
    metrics = tuple(chosen) if chosen else tuple(m for m in DEFAULT_METRICS if m not in kept_out)
    filters: list[tuple[str, str]] = []
    for raw_name, value in params:
        name = ALIASES.get(raw_name, raw_name)
        if name in TIME_DIMENSIONS and value:
            problems.append(f"{name}: a time is no filter, the period is from and to; left out")
            continue
        if name not in FILTERABLE or not value:
            continue
        problem = filter_problem(value)
        if problem is not None:
            problems.append(f"{name}: {problem}; left out")
            continue
        if len(filters) >= MAX_FILTER_VALUES:
            problems.append(f"{name}: at most {MAX_FILTER_VALUES} filters; left out")
            continue
        if (name, value) not in filters:
            filters.append((name, value))
    sort = one.get("sort", "").strip()
    sort_name = sort.lstrip("-")
    if sort and ((sort_name not in METRICS and sort_name not in by) or sort_name in kept_out):
        problems.append(f"sort: '{sort_name[:40]}' is neither a metric shown nor a dimension grouped by")
        sort = ""
    page = _number(one.get("page", ""), 1, 1, MAX_PAGE, "page", problems)
    rows = _number(one.get("rows", ""), DEFAULT_ROWS, 1, max(PAGE_SIZES), "rows", problems)
    if sort_name and sort_name in TIME_DIMENSIONS and sort_name not in by:
        sort = ""
    form = ReportForm(first, last, zone, basis, tuple(by), metrics, tuple(filters), sort, page, rows)
    return form, problems


def _number(raw: str, default: int, low: int, high: int, name: str, problems: list[str]) -> int:
    if not raw:
        return default
    if not is_digits(raw) or not low <= int(raw[:12]) <= high:
        problems.append(f"{name}: a whole number from {low} to {high}; {default} is shown")
        return default
    return int(raw)


def hidden_metrics(is_manager: bool) -> frozenset[str]:
    """What a report page leaves out: the network's own figures, for all but managers."""
    return frozenset() if is_manager else NETWORK_METRICS
