"""The report builder (/reports) and its CSV (/reports.csv): the form's state in the URL
(web/reportform.py), the figures from the report engine (store/reports.py) as GET /api/reports
reads them, the CSV written by the same function as the API's."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.responses import Response, StreamingResponse

from clickback.core.accounts import Role
from clickback.core.digits import id_of
from clickback.core.metrics import COUNTS, METRICS, MONEY_METRICS
from clickback.core.reporting import DIMENSIONS, MAX_LIMIT, ReportError, ReportQuery, parse_zone
from clickback.store import reports
from clickback.web import reporting
from clickback.web.api import affiliates_report
from clickback.web.pages import Viewer, metric_text, render, shown_name
from clickback.web.reportform import (
    DEFAULT_METRICS,
    MAX_BY,
    PAGE_SIZES,
    ReportForm,
    drillable,
    hidden_metrics,
    read_form,
)

# Offered first in the form's metric list: the rest follow in the engine's order.
_SHOWN_FIRST = DEFAULT_METRICS


def today(zone: str = "UTC") -> date:
    """Today in `zone`: the last day of a report that names none."""
    try:
        return datetime.now(parse_zone(zone)).date()
    except ReportError:  # a zone the system's tzdata no longer knows: read_form says so
        return datetime.now(UTC).date()


def form_of(v: Viewer) -> tuple[ReportForm, list[str]]:
    params = v.request.query_params.multi_items()
    # A form naming no zone is in the person's own (users.zone), as GET /api/reports is.
    zone = v.who.zone
    form, problems = read_form(params, today(zone), hidden_metrics(v.who.is_manager), zone)
    if v.who.role is Role.AFFILIATE:
        # Their report is of their own traffic (query_of): another affiliate named is no filter.
        form = replace(form, filters=tuple(f for f in form.filters if f[0] != "affiliate"))
    return form, problems


def query_of(v: Viewer, form: ReportForm, *, limit: int | None = None) -> ReportQuery:
    """The engine's query of the form, scoped as the API scopes it: an affiliate's report is of
    their own traffic (web/api.affiliates_report). Raises ReportError naming what is wrong."""
    params: Sequence[tuple[str, str]] = list(form.filters)
    if v.who.role is Role.AFFILIATE:
        try:
            params = affiliates_report(list(params), form.sort, v.who)
        except RequestValidationError as exc:
            raise ReportError("sort", str(exc.errors()[0]["msg"])) from None
    return reporting.read_query(
        params,
        v.catalog,
        first=form.first,
        last=form.last,
        zone=form.zone,
        basis=form.basis,
        group_by=",".join(form.by),
        sort=form.sort,
        limit=limit or form.rows,
        offset=form.offset if limit is None else 0,
        include_bots=False,
        currency=None,
    )


async def builder(v: Viewer) -> Response:
    form, problems = form_of(v)
    found = None
    try:
        q = query_of(v, form)
        found = await reports.report(v.runtime.db, q, v.catalog)
    except ReportError as exc:
        problems.append(f"{exc.field}: {exc}")
    hidden = hidden_metrics(v.who.is_manager)
    rows: list[dict[str, Any]] = []
    if found is not None:
        for key, figures in found.rows:
            shown = figures.metrics()
            rows.append(
                {
                    "cells": [cell(v, form, d, key[d]) for d in form.by],
                    "figures": [metric_text(m, shown[m]) for m in form.metrics],
                }
            )
        totals = found.totals.metrics()
        total_cells = [metric_text(m, totals[m]) for m in form.metrics]
    else:
        total_cells = []
    total_rows = found.total_rows if found is not None and form.by else len(rows)
    last_page = max(1, -(-total_rows // form.rows))
    return render(
        v,
        "reports.html",
        400 if found is None else 200,
        title="Reports",
        form=form,
        problems=problems,
        rows=rows,
        totals=total_cells,
        total_rows=total_rows,
        last_page=last_page,
        dimensions=[d for d in DIMENSIONS if not (v.who.role is Role.AFFILIATE and d == "affiliate")],
        metrics=[m for m in dict.fromkeys((*_SHOWN_FIRST, *METRICS)) if m not in hidden],
        metric_kinds={m: kind(m) for m in METRICS},
        page_sizes=PAGE_SIZES,
        max_by=MAX_BY,
        filter_labels=[(n, val, shown_name(v, n, _value(val))) for n, val in form.filters],
        source=found.source.value if found is not None else "",
        currencies=found.currencies if found is not None else (),
    )


def cell(v: Viewer, form: ReportForm, dimension: str, value: object) -> dict[str, str]:
    """A row's value of a dimension: its name as shown and the drill-down link."""
    text = shown_name(v, dimension, value)
    skip = frozenset({"affiliate", "advertiser"}) if v.who.role is Role.AFFILIATE else frozenset()
    link = form.drilled(dimension, str(value), skip) if drillable(dimension) and value != "" else ""
    return {"text": text, "link": link, "dimension": dimension}


def _value(raw: str) -> str | int:
    # An owner's id names it (offer 3 is "Northstar Casino (#3)"); other values are themselves.
    found = id_of(raw)
    return raw if found is None else found


def kind(metric: str) -> str:
    if metric in COUNTS:
        return "count"
    return "money" if metric in MONEY_METRICS else "ratio"


async def csv_download(v: Viewer) -> Response:
    """Every row of the report the builder shows, in the API's CSV (web/reporting.csv_stream)."""
    form, problems = form_of(v)
    try:
        q = query_of(v, form, limit=MAX_LIMIT)
        shown, rows = await reports.stream(v.runtime.db, q, v.catalog)
    except ReportError as exc:
        problems.append(f"{exc.field}: {exc}")
        return render(v, "problem.html", 400, title="Reports", problem="; ".join(problems))
    name = f"report-{q.first.isoformat()}-{q.last.isoformat()}.csv"
    return StreamingResponse(
        reporting.csv_stream(q, shown, rows, hidden_metrics(v.who.is_manager)),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )
