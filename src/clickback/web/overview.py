"""The overview (/): a period's key figures against the period before, a chart of each per day,
and the top offers, countries and sub IDs, every figure from the report engine
(store/reports.py). An advertiser's overview is of their offers and the tools for them."""

import asyncio
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from clickback.core.accounts import Role
from clickback.core.reporting import FIRST_DAY, ReportError, ReportQuery
from clickback.store import reports
from clickback.web.builder import form_of, query_of, today
from clickback.web.charts import chart
from clickback.web.pages import Viewer, amount, change, change_text, new_nonce, render, shown_name
from clickback.web.reportform import ReportForm

# The key figures, in the order shown; the network's own (revenue, profit) for managers only.
KPIS = (
    ("clicks", "Clicks"),
    ("registrations", "Registrations"),
    ("ftds", "FTDs"),
    ("commission", "Commission"),
    ("revenue", "Revenue"),
    ("profit", "Profit"),
)
NETWORK_KPIS = frozenset({"revenue", "profit"})
# (metric, title, kind): one chart each, per day.
CHARTS = (
    ("clicks", "Clicks", "line"),
    ("registrations", "Registrations", "bar"),
    ("ftds", "FTDs", "bar"),
    ("commission", "Commission", "line"),
    ("revenue", "Revenue", "line"),
)
TOP = (("offer", "Top offers"), ("country", "Top countries"), ("sub1", "Top sub1"))
TOP_N = 5


@dataclass(frozen=True, slots=True)
class Kpi:
    name: str
    label: str
    lines: list[tuple[str, str]]  # (value, change against the period before)


def kpis(now: dict[str, object], before: dict[str, object], network: bool) -> list[Kpi]:
    """Each key figure and its change: a count as one line, money a line per currency."""
    out = []
    for name, label in KPIS:
        if name in NETWORK_KPIS and not network:
            continue
        value = now[name]
        earlier = before.get(name, {} if isinstance(value, dict) else 0)
        if value is None:  # no figure (profit where no revenue is known): a dash, no change
            lines = [(amount(None), change_text(None))]
        elif isinstance(value, dict) and isinstance(earlier, dict | None):
            earlier = earlier or {}
            currencies = sorted(set(value) | set(earlier))
            lines = [
                (
                    f"{amount({c: value.get(c, Decimal(0))})}",
                    change_text(change(value.get(c, Decimal(0)), earlier.get(c, Decimal(0)))),
                )
                for c in currencies
            ] or [("0", change_text(None))]
        else:
            assert isinstance(value, int) and isinstance(earlier, int)
            lines = [(amount(value), change_text(change(value, earlier)))]
        out.append(Kpi(name, label, lines))
    return out


def periods(today: date) -> list[tuple[str, date, date]]:
    """The periods offered as links beside the form: (label, first day, last day)."""
    month = today.replace(day=1)
    before = (month - timedelta(days=1)).replace(day=1)
    return [
        ("Today", today, today),
        ("7 days", today - timedelta(days=6), today),
        ("30 days", today - timedelta(days=29), today),
        ("This month", month, today),
        ("Last month", before, month - timedelta(days=1)),
    ]


def days(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def series(
    metric: str, labels: list[str], rows: list[tuple[dict[str, Any], dict[str, object]]]
) -> dict[str, list[float | None]]:
    """A metric per day (a series per currency for money): days without figures are 0."""
    by_day = {str(key["day"]): figures[metric] for key, figures in rows}
    if any(isinstance(v, dict) for v in by_day.values()) or metric in ("commission", "revenue"):
        currencies = sorted({c for v in by_day.values() if isinstance(v, dict) for c in v})
        return {c: [float(_money(by_day.get(day), c)) for day in labels] for c in currencies} or {
            metric: [0.0] * len(labels)
        }
    return {metric: [float(_count(by_day.get(day))) for day in labels]}


def _money(value: object, currency: str) -> Decimal:
    return value.get(currency, Decimal(0)) if isinstance(value, dict) else Decimal(0)


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0


async def overview(v: Viewer) -> Response:
    if v.who.role is Role.ADVERTISER:
        return await advertiser_home(v)
    form, problems = form_of(v)
    # The overview's period is the form's; what it groups by is its own.
    form = replace(form, by=(), sort="", filters=form.filters, page=1)
    network = v.who.is_manager
    nonce = new_nonce()
    try:
        q = query_of(v, form)
        total, daily, *tops = await asyncio.gather(
            # The period before, unless it would start before the first day a report may cover.
            reports.report(v.runtime.db, q, v.catalog, compare=q.previous().first >= FIRST_DAY),
            reports.report(v.runtime.db, _by(q, "day", "day", 10_000), v.catalog),
            *(reports.report(v.runtime.db, _by(q, d, "-clicks", TOP_N), v.catalog) for d, _ in TOP),
        )
    except ReportError as exc:
        problems.append(f"{exc.field}: {exc}")
        return render(v, "overview.html", 400, title="Overview", form=form, problems=problems, nonce=nonce)
    before = total.previous.metrics() if total.previous is not None else {}
    labels = days(q.first, q.last)
    daily_rows = [(key, figures.metrics()) for key, figures in daily.rows]
    charts = [
        {
            "metric": metric,
            "svg": chart(
                kind,
                title,
                [day[5:] for day in labels] if len({day[:4] for day in labels}) == 1 else labels,
                series(metric, labels, daily_rows),
                nonce,
                integers=metric not in ("commission", "revenue"),
            ),
        }
        for metric, title, kind in CHARTS
        if network or metric not in NETWORK_KPIS
    ]
    top = [
        {
            "title": title,
            "dimension": dimension,
            "rows": [
                {
                    "name": shown_name(v, dimension, key[dimension]),
                    "link": _drill(form, dimension, key[dimension]),
                    "figures": figures.metrics(),
                }
                for key, figures in found.rows
            ],
        }
        for (dimension, title), found in zip(TOP, tops, strict=True)
    ]
    previous = q.previous()
    shortcuts = [(label, _period_link(form, first, last)) for label, first, last in periods(today())]
    return render(
        v,
        "overview.html",
        title="Overview",
        form=form,
        problems=problems,
        kpis=kpis(total.totals.metrics(), before, network),
        previous=(previous.first, previous.last),
        charts=charts,
        top=top,
        shortcuts=shortcuts,
        nonce=nonce,
        amount=amount,
    )


def _by(q: ReportQuery, dimension: str, sort: str, limit: int) -> ReportQuery:
    descending = sort.startswith("-")
    return replace(q, group_by=(dimension,), sort=((sort.lstrip("-"), descending),), limit=limit, offset=0)


def _period_link(form: ReportForm, first: date, last: date) -> str:
    """The overview of another period, in the same zone and with the same filters."""
    pairs = [("from", first.isoformat()), ("to", last.isoformat()), ("zone", form.zone), *form.filters]
    return "/?" + urlencode(pairs)


def _drill(form: ReportForm, dimension: str, value: object) -> str:
    """The builder, filtered to the value and grouped by day."""
    if value == "":
        return ""
    return replace(form, by=("day",), filters=(*form.filters, (dimension, str(value)))).url()


async def advertiser_home(v: Viewer) -> Response:
    """An advertiser's offers, each with its integration guide, and links to their postback log."""
    offers = sorted(
        (o for o in v.catalog.offers.values() if o.advertiser_id == v.who.advertiser_id), key=lambda o: o.id
    )
    return render(v, "advertiser.html", title="Overview", offers=offers)
