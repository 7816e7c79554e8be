"""GET /api/reports: the request read into a core.reporting.ReportQuery, the reply as JSON or as
CSV streamed row by row (docs/reports.md)."""

import csv
import io
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from clickback.core import metrics
from clickback.core.digits import id_of
from clickback.core.model import Catalog
from clickback.core.reporting import (
    ALIASES,
    DIMENSIONS,
    MAX_LIMIT,
    OWNER_DIMENSIONS,
    TIME_DIMENSIONS,
    Basis,
    ReportError,
    ReportQuery,
    check_period,
    dimension,
    parse_group_by,
    parse_sort,
    parse_zone,
)
from clickback.core.statements import csv_cell
from clickback.store.reports import Figures
from clickback.web.schemas import PRINTABLE

MAX_FILTER_VALUES = 100
MAX_FILTER_LENGTH = 1024
FILTERABLE = frozenset(DIMENSIONS) - set(TIME_DIMENSIONS)
# As /api/conversions checks its filters: no value the tables hold has a control character (the
# click path drops them), and PostgreSQL refuses a NUL in a text parameter (a 500).
_PRINTABLE = re.compile(PRINTABLE)


def filter_problem(value: str) -> str | None:
    """Why a filter's value cannot be used, or None."""
    if len(value) > MAX_FILTER_LENGTH:
        return f"a filter value holds at most {MAX_FILTER_LENGTH} characters"
    if not _PRINTABLE.match(value):
        return "a filter value holds no control characters"
    return None


def read_query(
    params: Iterable[tuple[str, str]],
    catalog: Catalog,
    *,
    first: date,
    last: date,
    zone: str,
    basis: Basis,
    group_by: str,
    sort: str,
    limit: int,
    offset: int,
    include_bots: bool,
    currency: str | None,
    known: frozenset[str] = frozenset(),
) -> ReportQuery:
    """The report asked for; filters are the dimensions' own names as parameters, repeatable
    (`affiliate=3&affiliate=4&country=DE`); `known`: the endpoint's other parameters. Any other
    name is refused, a misspelt filter as much as a time (the period is from..to): left out, it
    would answer unfiltered figures as if filtered. Raises ReportError naming the parameter at
    fault."""
    check_period(first, last)
    parse_zone(zone)
    dims = parse_group_by(group_by)
    filters: dict[str, list[str | int]] = {}
    for raw_name, value in params:
        name = ALIASES.get(raw_name, raw_name)
        if name not in FILTERABLE:
            if name in TIME_DIMENSIONS:
                raise ReportError(raw_name, "a time is no filter: give the period as from and to")
            if raw_name not in known:
                raise ReportError(
                    raw_name, "no such parameter: a filter is a dimension's name (docs/reports.md)"
                )
            continue
        problem = filter_problem(value)
        if problem is not None:
            raise ReportError(raw_name, problem)
        values = filters.setdefault(dimension(name), [])
        if len(values) >= MAX_FILTER_VALUES:
            raise ReportError(raw_name, f"at most {MAX_FILTER_VALUES} values a filter")
        if name in OWNER_DIMENSIONS:
            found = id_of(value)
            if found is None:
                raise ReportError(raw_name, f"'{value[:40]}' is no id")
            values.append(found)
        else:
            values.append(value)
    if "advertiser" in filters:
        named = [int(v) for v in filters.get("offer", [])]
        filters["offer"] = list(catalog.offers_filtered([int(v) for v in filters["advertiser"]], named))
    if "campaign" in filters:
        named = [int(v) for v in filters.get("link", [])]
        filters["link"] = list(catalog.links_filtered([str(v) for v in filters["campaign"]], named))
    if not 1 <= limit <= MAX_LIMIT:
        raise ReportError("limit", f"1 to {MAX_LIMIT} rows a page")
    if offset < 0:
        raise ReportError("offset", "0 or more")
    return ReportQuery(
        first=first,
        last=last,
        zone=zone,
        basis=basis,
        group_by=dims,
        filters={k: tuple(v) for k, v in filters.items()},
        sort=parse_sort(sort, dims),
        limit=limit,
        offset=offset,
        include_bots=include_bots,
        currency=currency,
    )


# --- CSV ----------------------------------------------------------------------------------------


# The CSV's metric columns after the counts: money (a column per currency), then the ratios.
_MONEY_COLUMNS = tuple(m for m in metrics.METRICS if m in metrics.MONEY_METRICS)
_RATIOS = tuple(m for m in metrics.METRICS if m not in metrics.MONEY_METRICS and m not in metrics.COUNTS)


def _time_header(name: str, q: ReportQuery) -> str:
    return f"{name} in {q.zone} by {q.basis.value} date"


def csv_header(q: ReportQuery, currencies: Iterable[str], hidden: frozenset[str] = frozenset()) -> list[str]:
    """The dimensions (a time one named with its zone and date basis; a period column when none
    is grouped by), the counts, then each money metric per currency, then the ratios."""
    head = [_time_header(d, q) if d in TIME_DIMENSIONS else d for d in q.group_by]
    if not any(d in TIME_DIMENSIONS for d in q.group_by):
        head.insert(0, _time_header("period", q))
    money = [f"{m} {c}" for m in _MONEY_COLUMNS if m not in hidden for c in currencies]
    return head + list(metrics.COUNTS) + money + list(_RATIOS)


def csv_cells(
    q: ReportQuery,
    key: Mapping[str, object] | None,
    figures: Mapping[str, Any],
    currencies: Iterable[str],
    hidden: frozenset[str] = frozenset(),
) -> list[str]:
    timed = any(d in TIME_DIMENSIONS for d in q.group_by)
    if key is None:
        cells = ["total"] + [""] * (len(q.group_by) - (1 if timed else 0))
    else:
        cells = ([] if timed else [f"{q.first.isoformat()}/{q.last.isoformat()}"]) + [
            csv_cell(key[d]) for d in q.group_by
        ]
    cells += [csv_cell(figures[m]) for m in metrics.COUNTS]
    for m in (m for m in _MONEY_COLUMNS if m not in hidden):
        amounts = figures[m]
        if amounts is None:  # no figure at all (no clicks: no EPC), as the ratios' empty cells
            cells += ["" for _ in currencies]
            continue
        # Where a currency left out is no figure (no known revenue, nothing spent): empty, not 0.
        missing = "" if m in metrics.PARTIAL_MONEY else csv_cell(Decimal(0))
        cells += [csv_cell(amounts[c]) if c in amounts else missing for c in currencies]
    cells += ["" if figures[m] is None else f"{figures[m]:.6f}" for m in _RATIOS]
    return cells


async def csv_stream(
    q: ReportQuery,
    currencies: tuple[str, ...],
    rows: AsyncIterator[tuple[dict[str, str | int], Figures]],
    hidden: frozenset[str] = frozenset(),
) -> AsyncIterator[str]:
    """The CSV a chunk of rows at a time, the totals (added up as the rows pass) last; without
    the `hidden` metrics' columns (an affiliate's report: core.accounts.NETWORK_METRICS)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(csv_header(q, currencies, hidden))
    totals = Figures()
    n = 0
    async for key, figures in rows:
        totals.add(figures)
        writer.writerow(csv_cells(q, key, figures.metrics(), currencies, hidden))
        n += 1
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerow(csv_cells(q, None, totals.metrics(), currencies, hidden))
    yield buffer.getvalue()
