"""Report queries (ADR 14), over the coarsest rollup that can answer (core.reporting.
choose_source) or over the raw tables, in statements that each stay cheap and run side by side:

1. the page: the rows' keys grouped, sorted and paged in the database, summing only what the
   sort needs; and apart, the number of rows;
2. the page's figures: every measure of those keys only, as plain sums per basis and currency;
3. the totals: every measure over the whole report, the same way, from the coarsest store
   holding the filters.

Plain sums per (basis, currency) are combined here (Figures): a sum under a CASE for each basis
and currency cost SQLite several times the scan itself."""

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Table,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Subquery

from clickback.core import metrics
from clickback.core.cost import CostKind, basis_points
from clickback.core.metrics import CLICK_COUNTS, CLICK_MEASURES, CLICK_MONEY, COUNTS, MEASURES, MONEY
from clickback.core.model import Catalog
from clickback.core.reporting import (
    NAMED_DIMENSIONS,
    OWNER_DIMENSIONS,
    SECONDS_PER_DAY,
    TIME_DIMENSIONS,
    Basis,
    Clock,
    ReportError,
    ReportQuery,
    Source,
    choose_source,
    clock,
    day_of,
    hour_range,
    label,
    local_day,
    month_starts,
    week_days,
)
from clickback.store import weeks
from clickback.store.db import Database, div_floor, epoch_seconds
from clickback.store.rollups import ANY_ROW, CLICK_TIME, EVENT_TIME
from clickback.store.tables import (
    MONEY_SCALE,
    click_refusals,
    clicks,
    commissions,
    conversions,
    fx_rates,
    report_currencies,
    report_day_rows,
    report_days,
    report_hours,
    report_rollups,
    report_values,
    report_weeks,
)

Key = tuple[Any, ...]
Rates = Mapping[str, list[tuple[int, Decimal]]]


@dataclass(slots=True)
class Figures:
    """A row's sums: counts, and money per measure and currency."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    money: dict[str, dict[str, Decimal]] = field(default_factory=lambda: {m: {} for m in MONEY})

    def metrics(self) -> dict[str, object]:
        return metrics.figures(self.counts, self.money)

    def add(self, other: "Figures") -> None:
        for name, n in other.counts.items():
            self.counts[name] += n
        for name, amounts in other.money.items():
            mine = self.money[name]
            for currency, amount in amounts.items():
                mine[currency] = mine.get(currency, Decimal(0)) + amount


@dataclass(frozen=True, slots=True)
class Report:
    source: Source
    rows: list[tuple[dict[str, str | int], Figures]]
    totals: Figures
    total_rows: int
    currencies: tuple[str, ...]
    previous: Figures | None = None


@dataclass(frozen=True, slots=True)
class _Context:
    """What a report reads from the database before its statements: the period on the zone's
    clock, which rollups are kept since when, the currencies money is shown in, the rates."""

    local: Clock
    zone: ZoneInfo
    kept: Mapping[str, int]
    currencies: tuple[str, ...]
    rates: Rates
    weeks: Sequence[int]  # the kept report weeks (store.weeks) lying whole within the period


@dataclass(frozen=True, slots=True)
class _Plan:
    query: ReportQuery
    context: _Context
    source: Source
    fact: Subquery
    day: ColumnElement[Any]  # a fact row's local day (exchange rates go by it)
    dims: Sequence[ColumnElement[Any]]
    where: Sequence[ColumnElement[bool]]
    advertisers: Mapping[int, int]  # each offer's
    campaigns: Mapping[str, Sequence[int]]  # each campaign's links, by their name now

    @property
    def local(self) -> Clock:
        return self.context.local

    @property
    def rates(self) -> Rates:
        return self.context.rates

    @property
    def currencies(self) -> tuple[str, ...]:
        return self.context.currencies


async def report(db: Database, q: ReportQuery, catalog: Catalog, *, compare: bool = False) -> Report:
    """`catalog`: the offers' advertisers and the prices they list, the links' cost models.

    The page, the count and the totals are read on connections of their own at once."""
    async with _reading(db) as conn:
        context = await _context(conn, q)
    plan = _plan(q, context, catalog)
    # The page's rows carry only the measures its sort sums (a quarter less time to group a month
    # by sub1 on SQLite than with all twenty).
    sorting = _plan(q, context, catalog, _sorted_measures(q))
    # The totals need none of the dimensions grouped by: the coarsest store holding the filters
    # answers them (the days rollup, for a report by sub1 the values one answers).
    overall = _plan(replace(q, group_by=()), context, catalog)

    async def page(
        plan: _Plan, sorting: _Plan, *, counted: bool = False
    ) -> tuple[list[Key], dict[Key, Figures], int | None]:
        """The page's keys (sorted in `sorting`'s rows) and figures (summed in `plan`'s); with
        `counted`, the number of rows too (None when the page is past the last row, which holds
        no count)."""
        if not plan.dims:
            return [], {}, 1
        async with _reading(db) as conn:
            rows = (await conn.execute(_page(sorting, counted=counted))).all()
            keys = [tuple(r[: len(plan.dims)]) for r in rows]
            figures = _combine(plan, (await conn.execute(_sums(plan, keys))).all()) if keys else {}
        return keys, figures, int(rows[0][-1]) if counted and rows else None

    async def page_by_day(descending: bool) -> tuple[tuple[list[Key], dict[Key, Figures]], int]:
        # Sorted by day first: the rows per day tell the number of rows and which days hold
        # the page, and the page reads those days only (one day of 30 for the first page).
        async with _reading(db) as conn:
            per_day = (await conn.execute(_rows_per_day(sorting, descending=descending))).all()
        days: list[int] = []
        seen = skipped = 0
        for day, n in per_day:
            if seen + n > q.offset and seen < q.offset + q.limit:
                skipped = seen if not days else skipped
                days.append(day)
            seen += n
        paged = replace(q, offset=q.offset - skipped)

        def of_those_days(p: _Plan) -> _Plan:
            return replace(p, query=paged, where=(*p.where, p.day.in_(days)))

        keys, figures, _ = await page(of_those_days(plan), of_those_days(sorting))
        return (keys, figures), seen

    async def page_and_count() -> tuple[tuple[list[Key], dict[Key, Figures]], int]:
        if plan.source != Source.VALUES:
            (keys, figures, _), n = await asyncio.gather(page(plan, sorting), count())
            return (keys, figures), n
        # The values rollup's groups are few (a dimension's values): the page counts them as it
        # sorts them, where a statement of its own would group the period's rows once more.
        keys, figures, counted = await page(plan, sorting, counted=True)
        return (keys, figures), await count() if counted is None else counted

    async def count() -> int:
        # Apart from the page: a window count there kept every group for the sort, where
        # ORDER BY … LIMIT keeps only the page's.
        if not plan.dims:
            return 1
        async with _reading(db) as conn:
            counted = select(func.count()).select_from(_groups(sorting).subquery())
            return int((await conn.execute(counted)).scalar_one())

    async def totals(of: _Plan) -> Figures:
        async with _reading(db) as conn:
            return _combine(of, (await conn.execute(_totals(of))).all(), 0).get((), Figures())

    async def previous() -> Figures | None:
        if not compare:
            return None
        earlier = replace(q.previous(), group_by=())
        async with _reading(db) as conn:
            before = _plan(earlier, await _context(conn, earlier), catalog)
        return await totals(before)

    if (by_day := _led_by_day(plan)) is not None:
        ((keys, figures), total_rows), overall_totals, before = await asyncio.gather(
            page_by_day(by_day), totals(overall), previous()
        )
    else:
        ((keys, figures), total_rows), overall_totals, before = await asyncio.gather(
            page_and_count(), totals(overall), previous()
        )
    return Report(
        plan.source,
        [(_key(plan, k), figures.get(k, Figures())) for k in keys],
        overall_totals,
        total_rows,
        plan.currencies,
        before,
    )


async def stream(
    db: Database, q: ReportQuery, catalog: Catalog
) -> tuple[tuple[str, ...], AsyncIterator[tuple[dict[str, str | int], Figures]]]:
    """Every row of the report in the order of its dimensions, read as the database hands them
    over (CSV), with the currencies money is shown in."""
    async with _reading(db) as conn:
        plan = _plan(q, await _context(conn, q), catalog)
    n = len(plan.dims)
    statement = _sums(plan, None, ordered=True)

    async def rows() -> AsyncIterator[tuple[dict[str, str | int], Figures]]:
        async with _reading(db) as conn:
            result = await conn.stream(statement)
            current: Key | None = None
            group: list[Any] = []
            async for r in result:
                key = tuple(r[:n])
                if key != current and group:
                    assert current is not None
                    yield _key(plan, current), _combine(plan, group)[current]
                    group = []
                current = key
                group.append(r)
            if group:
                assert current is not None
                yield _key(plan, current), _combine(plan, group)[current]

    return plan.currencies, rows()


@asynccontextmanager
async def _reading(db: Database) -> AsyncIterator[AsyncConnection]:
    """A read connection for a report. PostgreSQL: with memory enough to group in a hash table
    rather than sort on disk (4 MB, the default, spilled a month of sub1 rows), and no parallel
    workers: a report runs its statements side by side already, and a month by sub1 took twice
    as long in three processes (partial groups of the same 20,000 values sorted and merged)
    as in one."""
    async with db.read() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
            await conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        yield conn


# PostgreSQL's memory for one grouping of a report, on the database server.
REPORT_WORK_MEM = "64MB"


# --- the plan -------------------------------------------------------------------------------


async def _context(conn: AsyncConnection, q: ReportQuery) -> _Context:
    zone = ZoneInfo(q.zone)
    kept = {r.name: int(r.since) for r in await conn.execute(select(report_rollups))}
    # The currencies of the report's own affiliates and offers (an affiliate's report is scoped to
    # them): another tenant's currency is neither shown nor needs a rate.
    currencies = select(report_currencies.c.currency).distinct().where(*_owned(q, report_currencies.c))
    held = tuple(sorted((await conn.execute(currencies)).scalars()))
    rates = await _rates(conn, q, held) if q.currency else {}
    shown = (q.currency,) if q.currency else held
    local = clock(zone, q.first, q.last)
    first_day = local_day(local.start, local.pieces[0][1])
    last_day = first_day + (q.last - q.first).days
    states = await conn.execute(weeks.state_between(q.zone, first_day, last_day))
    return _Context(local, zone, kept, shown, rates, weeks.kept_between(states, first_day, last_day))


def _plan(q: ReportQuery, context: _Context, catalog: Catalog, measures: Sequence[str] = MEASURES) -> _Plan:
    """The statements' parts: the store (the coarsest holding what `q` asks), its rows (with
    these of the measures, where a rollup answers), the dimensions and the conditions."""
    source = choose_source(q, context.local, context.kept)
    fact, day = _fact(q, source, context, catalog, measures)
    advertisers = {o.id: o.advertiser_id for o in catalog.offers.values()}
    # Only a report by campaign puts links under their names (a filter on one is its links').
    campaigns = catalog.campaigns() if "campaign" in q.group_by else {}
    dims = [_dimension(name, fact, day, context.local, advertisers, source, campaigns) for name in q.group_by]
    c = fact.c
    where = _owned(q, c)
    if q.basis == Basis.CLICK:
        where.append(c.basis == CLICK_TIME)  # every figure of a cohort is in these rows
    return _Plan(q, context, source, fact, day, dims, where, advertisers, campaigns)


def _fact(
    q: ReportQuery, source: Source, context: _Context, catalog: Catalog, measures: Sequence[str]
) -> tuple[Subquery, ColumnElement[Any]]:
    """The rows to group, with uniform columns (affiliate_id, offer_id, the dimensions asked for,
    basis, currency, the measures), and the expression of a row's local day."""
    local = context.local
    first_day, last_day = _days(q, local)
    owned = ("advertiser", "offer", "affiliate")
    # A campaign is read as its links (its filter is theirs by now: web.reporting.read_query).
    named = (NAMED_DIMENSIONS.get(d, d) for d in (*q.group_by, *q.filters))
    wanted = [d for d in dict.fromkeys(named) if d not in TIME_DIMENSIONS and d not in owned]
    if source == Source.DAYS:
        t = report_days
        stmt = _rollup_rows(t, t.c.day, t.c.country, measures)
        stmt = stmt.where(t.c.zone == local.zone, t.c.day >= first_day, t.c.day <= last_day)
        sub = _filtered(stmt, q, {"country": t.c.country}).subquery("f")
        return sub, sub.c.day
    if source == Source.VALUES:
        dimension = wanted[0] if wanted else "link"
        # Whole weeks from their sums where neither a time dimension nor a day's exchange rate
        # needs the days.
        timed = context.rates or any(t in q.group_by for t in TIME_DIMENSIONS)
        whole = () if timed else context.weeks
        # Days and weeks listed rather than a range: the figures of a page's keys are then seeks
        # of each day's rows of those keys (100 sub IDs over 30 days: 0.065 s where SQLite, given
        # a range, read the 672,000 rows between, 0.21 s). The days rollup keeps its range: its
        # keys lead with the day, and a list of days cost its grouping twice the time.
        covered = {d for week in whole for d in range(week_days(week)[0], week_days(week)[1] + 1)}
        v, w = report_values, report_weeks
        parts = []
        for t, time, day, which in (
            (v, v.c.day, v.c.day, [d for d in range(first_day, last_day + 1) if d not in covered]),
            (w, w.c.week, w.c.week * 7 - 3, whole),
        ):
            if which or t is v:
                stmt = _rollup_rows(t, day.label("day"), t.c.value.label(dimension), measures)
                stmt = stmt.where(t.c.zone == local.zone, t.c.dimension == dimension, time.in_(which))
                parts.append(_filtered(stmt, q, {dimension: t.c.value}))
        sub = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("f")
        return sub, sub.c.day
    if source == Source.HOURS:
        t = report_hours
        stmt = _rollup_rows(t, t.c.hour, t.c.country, measures)
        stmt = stmt.where(t.c.hour >= local.start // 3600, t.c.hour < local.end // 3600)
        sub = _filtered(stmt, q, {"country": t.c.country}).subquery("f")
        return sub, _local_day(sub.c.hour * 3600, local)
    sub = _raw(q, local, [d for d in wanted if d != "link"], catalog)
    return sub, _local_day(sub.c.second, local)


def _days(q: ReportQuery, local: Clock) -> tuple[int, int]:
    """The period's first and last local day."""
    first_day = local_day(local.start, local.pieces[0][1])
    return first_day, first_day + (q.last - q.first).days


def _rollup_rows(
    t: Table, time: ColumnElement[Any], dimension: ColumnElement[Any], measures: Sequence[str]
) -> Select[Any]:
    """A rollup's rows in the shape every store gives them (_fact)."""
    c = t.c
    return select(time, c.affiliate_id, c.offer_id, dimension, c.basis, c.currency, *(c[m] for m in measures))


def _owned(q: ReportQuery, c: Any) -> list[ColumnElement[bool]]:
    """The filters on offers and affiliates, over rows with offer_id and affiliate_id columns (an
    advertiser's filter is its offers' by then)."""
    return [
        c[f"{n}_id"].in_([int(v) for v in vs]) for n, vs in q.filters.items() if n in ("offer", "affiliate")
    ]


def _filtered(stmt: Select[Any], q: ReportQuery, columns: Mapping[str, ColumnElement[Any]]) -> Select[Any]:
    """The filters on the dimensions a store keeps as columns (owners: _plan)."""
    for name, values in q.filters.items():
        if name in columns:
            if name == "link" and columns[name].key == "link_id":
                stmt = stmt.where(columns[name].in_([int(v) for v in values]))
            else:
                stmt = stmt.where(columns[name].in_([str(v) for v in values]))
    return stmt


def _raw(q: ReportQuery, local: Clock, wanted: Sequence[str], catalog: Catalog) -> Subquery:
    """Clicks, conversions and ledger entries as fact rows, each at its epoch second."""
    zero = literal(0)
    click_second = _epoch(clicks.c.clicked_at)

    def measures(values: Mapping[str, ColumnElement[Any]]) -> list[ColumnElement[Any]]:
        return [values.get(m, zero).label(m) for m in metrics.MEASURES]

    c = clicks.c
    bot = c.bot != ""
    click_rows = select(
        click_second.label("second"),
        literal(CLICK_TIME).label("basis"),
        c.link_id,
        c.affiliate_id,
        c.offer_id,
        *(clicks.c[d].label(d) for d in wanted),
        c.cost_currency.label("currency"),
        *measures(
            {
                "clicks": case((bot, 0), else_=1),
                "unique_clicks": case((bot, 0), else_=case((c.is_unique, 1), else_=0)),
                "bot_clicks": case((bot, 1), else_=0),
                "click_cost": _raw_money(c.cost),
                "bot_cost": case((bot, _raw_money(c.cost)), else_=0),
            }
        ),
    ).where(
        ~c.test,
        click_second >= local.start,
        click_second < local.end,
    )
    v = conversions.c
    basis_time = v.clicked_at if q.basis == Basis.CLICK else v.event_at
    second = _epoch(basis_time)
    payable = v.status.in_(["pending", "approved"])
    priced_only = v.event.in_(sorted(metrics.PRICED_ONLY))

    def when(condition: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
        return case((condition, value), else_=0)

    conversion_rows = select(
        second.label("second"),
        literal(_basis_code(q)).label("basis"),
        v.link_id,
        v.affiliate_id,
        v.offer_id,
        *(v[d].label(d) for d in wanted),
        v.currency,
        *measures(
            {
                "conversions": when(payable),
                "approved": when(v.status == "approved"),
                "pending": when(v.status == "pending"),
                "declined": when(v.status.in_(["rejected", "cancelled"])),
                "registrations": when(payable & (v.event == "registration")),
                "ftds": when(payable & (v.event == "first_deposit")),
                "deposits": when(payable & v.event.in_(sorted(metrics.DEPOSITS))),
                "ftd_amount": when(payable & (v.event == "first_deposit"), _raw_money(v.payout)),
                "deposit_amount": when(payable & v.event.in_(sorted(metrics.DEPOSITS)), _raw_money(v.payout)),
                "ngr": when(payable & (v.event == "net_revenue"), _raw_money(v.payout)),
                "qualified_cpas": when(payable & (v.event == "qualified_cpa")),
                "revenue": when(payable & ~priced_only, _raw_money(v.payout)),
            }
        ),
    ).where(~v.test, v.link_id.is_not(None), second >= local.start, second < local.end)
    e = commissions.c
    # A CPA reversal counts when it was booked by conversion date (ADR 7: in the month it happens),
    # as store.recording.Recording.append_entry rolls it up; by click date at its click's time.
    reversal = (e.kind == "cpa") & e.reverses_id.is_not(None)
    entry_second = (
        second if q.basis == Basis.CLICK else case((reversal, _epoch(e.created_at)), else_=_epoch(v.event_at))
    )
    ledger_rows = (
        select(
            entry_second.label("second"),
            literal(_basis_code(q)).label("basis"),
            v.link_id,
            v.affiliate_id,
            v.offer_id,
            *(v[d].label(d) for d in wanted),
            e.currency,
            *measures(
                {
                    "cpa_commission": when(e.kind == "cpa", _raw_money(e.amount)),
                    "revshare_commission": when(e.kind == "revshare", _raw_money(e.amount)),
                    "conversion_cost": _partners_share(_raw_money(e.amount), v.link_id, catalog),
                }
            ),
        )
        .select_from(commissions.join(conversions, conversions.c.id == e.conversion_id))
        .where(~v.test, v.link_id.is_not(None), entry_second >= local.start, entry_second < local.end)
    )
    offers = catalog.offers
    priced = [
        ((v.offer_id == offer.id) & (v.event == event), int(price * MONEY_SCALE))
        for offer in offers.values()
        for event, price in sorted(offer.payouts.items())
        if event in metrics.PRICED_ONLY and price
    ]
    selects = [click_rows, conversion_rows, ledger_rows]

    def payable_rows(
        currency: ColumnElement[Any], values: Mapping[str, ColumnElement[Any]], *where: ColumnElement[bool]
    ) -> Select[Any]:
        """Payable conversions' rows of one more measure, in a currency of their own."""
        return select(
            second.label("second"),
            literal(_basis_code(q)).label("basis"),
            v.link_id,
            v.affiliate_id,
            v.offer_id,
            *(v[d].label(d) for d in wanted),
            currency.label("currency"),
            *measures(values),
        ).where(~v.test, payable, second >= local.start, second < local.end, *where)

    if priced:
        # Player money (and qualified_cpa) earns what its offer lists, in the offer's currency.
        currency_of = case({o.id: o.currency for o in offers.values()}, value=v.offer_id, else_="")
        revenue = {"revenue": case(*priced, else_=0)}
        selects.append(payable_rows(currency_of, revenue, v.link_id.is_not(None), priced_only))
    # What CPA cost models pay for their links' conversions, in each model's currency.
    charged = [link for link in catalog.links.values() if link.cost.of_conversion(link.cost.event)]
    if charged:
        model_currency = case({link.id: link.cost.currency for link in charged}, value=v.link_id, else_="")
        pays = [
            ((v.link_id == link.id) & (v.event == link.cost.event), int(link.cost.amount * MONEY_SCALE))
            for link in charged
        ]
        cost = {"conversion_cost": case(*pays, else_=0)}
        selects.append(payable_rows(model_currency, cost, v.link_id.in_([link.id for link in charged])))
    sub = union_all(*selects).subquery("f")
    columns = {d: sub.c[d] for d in wanted} | {"link": sub.c.link_id}
    return _filtered(select(sub), q, columns).subquery("r")


def _partners_share(
    units: ColumnElement[Any], link_column: ColumnElement[Any], catalog: Catalog
) -> ColumnElement[Any]:
    """What RevShare cost models give partners of a ledger entry's amount (in stored units): the
    share cut toward zero by integer division on both dialects, as core.cost.share_units does."""
    points = {
        link.id: basis_points(link.cost.percent)
        for link in catalog.links.values()
        if link.cost.kind is CostKind.REVSHARE
    }
    if not points:
        return literal(0)
    return case(
        *((link_column == link_id, (units * p).op("/")(10_000)) for link_id, p in sorted(points.items())),
        else_=0,
    )


def _basis_code(q: ReportQuery) -> str:
    return EVENT_TIME if q.basis == Basis.CONVERSION else CLICK_TIME


def _raw_money(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # Money columns are integers of 1/10,000 in the database: summed as such, like the rollups'.
    return type_coerce(column, BigInteger)


def _epoch(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return epoch_seconds(column)


def _local_day(second: ColumnElement[Any], local: Clock) -> ColumnElement[Any]:
    return div_floor(second + _offset(second, local), SECONDS_PER_DAY)


def _offset(second: ColumnElement[Any], local: Clock) -> ColumnElement[Any]:
    """The zone's offset at `second`, from the clock's pieces (a constant when there is one)."""
    if len(local.pieces) == 1:
        return literal(local.pieces[0][1])
    whens = [
        (second < since, offset)
        for (_, offset), (since, _) in zip(local.pieces, local.pieces[1:], strict=False)
    ]
    return case(*whens, else_=local.pieces[-1][1])


async def _rates(
    conn: Any, q: ReportQuery, currencies: Sequence[str]
) -> dict[str, list[tuple[int, Decimal]]]:
    """For each currency held, (first day, rate into the report currency) steps over the period,
    from the recorded rates (either direction, the newest on or before each day)."""
    assert q.currency is not None
    target = q.currency
    first = q.first - timedelta(days=1)
    r = fx_rates.c
    rows = (
        await conn.execute(
            select(r.base, r.quote, r.day, r.rate).where(
                (r.base == target) | (r.quote == target), r.day <= q.last + timedelta(days=1)
            )
        )
    ).all()
    out: dict[str, list[tuple[int, Decimal]]] = {}
    for code in currencies:
        if code == target:
            continue
        dated: dict[date, Decimal] = {}
        for row in sorted(rows, key=lambda x: (x.day, x.base == code)):
            if row.base == code and row.quote == target:
                dated[row.day] = Decimal(row.rate)
            elif row.quote == code and row.base == target and row.day not in dated:
                dated[row.day] = 1 / Decimal(row.rate)
        before = [d for d in dated if d <= first]
        steps: list[tuple[int, Decimal]] = []
        if before:
            steps.append((0, dated[max(before)]))
        for d in sorted(x for x in dated if x > first):
            steps.append(((d - date(1970, 1, 1)).days, dated[d]))
        if not steps or steps[0][0] > (q.first - date(1970, 1, 1)).days:
            raise ReportError(
                "currency",
                f"no {code}→{target} exchange rate on or before {q.first}: record one (POST /api/fx-rates)",
            )
        out[code] = steps
    return out


def _dimension(
    name: str,
    fact: Subquery,
    day: ColumnElement[Any],
    local: Clock,
    advertisers: Mapping[int, int],
    source: Source,
    campaigns: Mapping[str, Sequence[int]],
) -> ColumnElement[Any]:
    c = fact.c
    if name == "hour":
        # Keyed by the UTC second the local hour starts at (core.reporting.label): the zone's
        # offset at each fact, as a day's, since it may move by half an hour (Lord_Howe).
        if source == Source.HOURS:
            return cast(c.hour, BigInteger) * 3600  # a zone whole hours off UTC: its UTC hours
        offset = _offset(c.second, local)
        return div_floor(c.second + offset, 3600) * 3600 - offset
    if name == "day":
        return day
    if name == "week":
        return div_floor(day + 3, 7)
    if name == "month":
        starts = month_starts(
            local_day(local.start, local.pieces[0][1]), local_day(local.end - 1, local.pieces[-1][1])
        )
        if len(starts) == 1:
            return literal(starts[0][1])
        return case(
            *((day < start, month) for (start, _), (_, month) in zip(starts[1:], starts, strict=False)),
            else_=starts[-1][1],
        )
    if name == "advertiser":
        return case(advertisers, value=c.offer_id, else_=0) if advertisers else literal(0)
    if name == "link":
        return cast(c.link, Integer) if source == Source.VALUES else c.link_id
    if name == "campaign":
        return _campaign(c.link if source == Source.VALUES else c.link_id, campaigns, source)
    if name in OWNER_DIMENSIONS:
        return c[f"{name}_id"]
    return c[name]


def _campaign(
    link: ColumnElement[Any], campaigns: Mapping[str, Sequence[int]], source: Source
) -> ColumnElement[Any]:
    """Each link's campaign as the catalog names it now ('' for none): a CASE, as the
    advertiser of an offer. The links' ids are written into the statement, not bound: a
    parameter each would meet PostgreSQL's limit of 32,767 with enough links. The values
    rollup keeps a link as text."""
    if not campaigns:
        return literal("")

    def ids(links: Sequence[int]) -> list[ColumnElement[Any]]:
        return [literal_column(f"'{int(i)}'" if source == Source.VALUES else str(int(i))) for i in links]

    return case(*((link.in_(ids(links)), literal(name)) for name, links in campaigns.items()), else_="")


# --- the statements -----------------------------------------------------------------------------


def _led_by_day(plan: _Plan) -> bool | None:
    """Whether the page is sorted by a rollup's day first: descending (True) or not; else None."""
    q = plan.query
    if "day" not in q.group_by or plan.source not in (Source.DAYS, Source.VALUES):
        return None
    if not q.sort:  # time dimensions first, the finest first
        return None if "hour" in q.group_by else False
    name, descending = q.sort[0]
    return descending if name == "day" else None


def _rows_per_day(plan: _Plan, *, descending: bool) -> Select[Any]:
    """The number of report rows of each day, in the page's order of days."""
    grouped = _groups(plan).subquery()
    day = grouped.c[plan.query.group_by.index("day")]
    return select(day, func.count()).group_by(day).order_by(day.desc() if descending else day.asc())


def _groups(plan: _Plan) -> Select[Any]:
    """The report's rows, one a group (its dimensions). The days rollup's groups from
    report_day_rows, which holds each of them once: counted, not grouped, where the report is by
    day x affiliate x offer x country."""
    if plan.source != Source.DAYS:
        return select(*plan.dims).select_from(plan.fact).where(*plan.where).group_by(*plan.dims)
    q, t = plan.query, report_day_rows
    first_day, last_day = _days(q, plan.local)
    kind = CLICK_TIME if q.basis == Basis.CLICK else ANY_ROW
    stmt = select(t.c.day, t.c.affiliate_id, t.c.offer_id, t.c.country).where(
        t.c.zone == plan.local.zone,
        t.c.kind == kind,
        t.c.day >= first_day,
        t.c.day <= last_day,
        *_owned(q, t.c),
    )
    marks = _filtered(stmt, q, {"country": t.c.country}).subquery("m")
    dims = [
        _dimension(name, marks, marks.c.day, plan.local, plan.advertisers, Source.DAYS, plan.campaigns)
        for name in q.group_by
    ]
    groups = select(*dims).select_from(marks)
    # The other dimensions (advertiser, week, month) follow from these four.
    return groups if {"day", "affiliate", "offer", "country"} <= set(q.group_by) else groups.group_by(*dims)


def _page(plan: _Plan, *, counted: bool = False) -> Select[Any]:
    """The page's keys, sorted; sums only what the sort names. `counted`: each row ends with
    the number of rows of the whole report (a window over every group)."""
    q = plan.query
    by_name = dict(zip(q.group_by, plan.dims, strict=True))
    order: list[ColumnElement[Any]] = []
    sort = q.sort or (*((t, False) for t in TIME_DIMENSIONS if t in q.group_by), ("clicks", True))
    for name, descending in sort:
        expression = by_name.get(name)
        if expression is None:
            expression = _sort_metric(plan, name)
            if name not in MEASURES:
                # A derived metric with no figure (no clicks: no EPC) last either way, on both
                # dialects (PostgreSQL would put NULL first when descending). Sums are never NULL.
                order.append((expression.desc() if descending else expression.asc()).nulls_last())
                continue
        order.append(expression.desc() if descending else expression.asc())
    order.extend(dim.asc() for dim in plan.dims)  # a stable order for paging
    stmt = select(*plan.dims, *([func.count().over()] if counted else [])).select_from(plan.fact)
    stmt = stmt.where(*plan.where).group_by(*plan.dims).order_by(*order)
    return stmt.limit(q.limit).offset(q.offset)


def _sorted_measures(q: ReportQuery) -> tuple[str, ...]:
    """The measures the page's sort sums (_sort_metric): those it names; all, for a derived
    metric; clicks (and bot clicks with them), by default."""
    names = [name for name, _ in q.sort if name not in q.group_by] if q.sort else ["clicks"]
    if any(name not in MEASURES for name in names):
        return MEASURES
    if "clicks" in names and q.include_bots:
        names.append("bot_clicks")
    return tuple(dict.fromkeys(names))


def _sort_metric(plan: _Plan, name: str) -> ColumnElement[Any]:
    """A metric as SQL over the grouped rows, for sorting. Money adds up its currencies (or the
    amounts converted, with `currency`): an order, not a figure shown."""
    c = plan.fact.c
    basis = _basis_code(plan.query)

    def total(measure: str) -> ColumnElement[Any]:
        column: ColumnElement[Any] = type_coerce(c[measure], BigInteger)
        if measure == "clicks" and plan.query.include_bots:
            column = column + c.bot_clicks
        if measure not in CLICK_MEASURES:
            column = case((c.basis == basis, column), else_=0)
        if measure in MONEY and plan.rates:
            column = column * _rate(c.currency, plan.day, plan.rates)
        return func.coalesce(func.sum(column), 0)

    def ratio(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
        return a * 1.0 / func.nullif(b, 0)

    if name in MEASURES:
        return total(name)
    commission = total("cpa_commission") + total("revshare_commission")
    cost = total("click_cost") + total("conversion_cost")

    def where_revenue_known(value: ColumnElement[Any], against: ColumnElement[Any]) -> ColumnElement[Any]:
        # core.metrics.known_revenue, over the currencies together: NULL (sorted last) where the
        # group holds no revenue, unless it converted nothing and holds what the figure sets
        # revenue against (commission, cost): then its revenue is known, none.
        known = (total("revenue") != 0) | ((total("conversions") == 0) & (against != 0))
        return case((known, value))

    derived = {
        "commission": lambda: commission,
        "profit": lambda: where_revenue_known(total("revenue") - commission, commission),
        "cr_registration": lambda: ratio(total("registrations"), total("clicks")),
        "cr_ftd": lambda: ratio(total("ftds"), total("clicks")),
        "ftd_per_registration": lambda: ratio(total("ftds"), total("registrations")),
        "epc": lambda: ratio(commission, total("clicks")),
        "approval_rate": lambda: ratio(total("approved"), total("approved") + total("declined")),
        "player_value": lambda: ratio(commission, total("ftds")),
        "cost": lambda: cost,
        "cpc": lambda: ratio(total("click_cost"), total("clicks")),
        "cost_per_registration": lambda: ratio(cost, total("registrations")),
        "cost_per_ftd": lambda: ratio(cost, total("ftds")),
        "traffic_profit": lambda: commission - cost,
        "roi": lambda: ratio(commission - cost, cost),
        "revenue_profit": lambda: where_revenue_known(total("revenue") - cost, cost),
        "revenue_roi": lambda: where_revenue_known(ratio(total("revenue") - cost, cost), cost),
    }
    return derived[name]()


def _sums(plan: _Plan, keys: Sequence[Key] | None, *, ordered: bool = False) -> Select[Any]:
    """Plain sums of every measure per key, basis and currency (and day, to convert money); of
    the given keys only, or of every row (keys None)."""
    return _summed(plan, plan.dims, keys, ordered=ordered)


def _totals(plan: _Plan) -> Select[Any]:
    return _summed(plan, (), None)


def _summed(
    plan: _Plan, dims: Sequence[ColumnElement[Any]], keys: Sequence[Key] | None, *, ordered: bool = False
) -> Select[Any]:
    c = plan.fact.c
    extra = [c.basis, c.currency] + ([plan.day] if plan.rates else [])
    sums = [type_coerce(func.coalesce(func.sum(c[m]), 0), BigInteger).label(m) for m in MEASURES]
    stmt = select(*dims, *extra, *sums).select_from(plan.fact).where(*plan.where)
    if keys:
        # Each dimension's own values first: a day or an owner narrows the scan by its index.
        for i, dim in enumerate(dims):
            stmt = stmt.where(dim.in_(sorted({k[i] for k in keys})))
        if len(dims) > 1:
            stmt = stmt.where(tuple_(*dims).in_(keys))
    stmt = stmt.group_by(*dims, *extra)
    return stmt.order_by(*dims) if ordered else stmt


def _combine(plan: _Plan, rows: Iterable[Any], n: int | None = None) -> dict[Key, Figures]:
    """The figures of each key (its first n columns; n: the plan's dimensions unless told) from
    its rows per basis and currency: clicks count at their click time whatever the basis;
    everything else in the rows of the basis asked for."""
    n = len(plan.dims) if n is None else n
    basis = _basis_code(plan.query)
    target = plan.query.currency
    out: dict[Key, Figures] = {}
    for r in rows:
        key = tuple(r[:n])
        f = out.get(key)
        if f is None:
            f = out[key] = Figures()
        row_basis, currency = r[n], r[n + 1]
        sums = r[n + 2 + (1 if plan.rates else 0) :]
        counts = f.counts
        for i, name in enumerate(CLICK_COUNTS):
            counts[name] += int(sums[i])
        if plan.query.include_bots:
            counts["clicks"] += int(sums[2])
        if row_basis == basis:
            for i, name in enumerate(COUNTS[len(CLICK_COUNTS) :], len(CLICK_COUNTS)):
                counts[name] += int(sums[i])
        rate = _rate_on(plan.rates, currency, int(r[n + 2])) if target else Decimal(1)
        shown = target or currency
        for i, name in enumerate(MONEY, len(COUNTS)):
            if sums[i] and (row_basis == basis or name in CLICK_MONEY):
                amount = Decimal(int(sums[i])) / MONEY_SCALE * rate
                f.money[name][shown] = f.money[name].get(shown, Decimal(0)) + amount
    if target:
        for f in out.values():
            for amounts in f.money.values():
                for currency, amount in amounts.items():
                    amounts[currency] = amount.quantize(Decimal("0.0001"))
    return out


def _key(plan: _Plan, key: Key) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for name, value in zip(plan.query.group_by, key, strict=True):
        if name in TIME_DIMENSIONS:
            out[name] = label(name, int(value), plan.local)
        elif name in OWNER_DIMENSIONS:
            out[name] = int(value)
        else:
            out[name] = value
    return out


# --- exchange rates -------------------------------------------------------------------------------


def _rate(currency: ColumnElement[Any], day: ColumnElement[Any], rates: Rates) -> ColumnElement[Any]:
    """The rate of a row's currency on its day, in SQL (sorting by converted money only)."""
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    for code, steps in rates.items():
        later = [(day >= start, literal(float(rate))) for start, rate in reversed(steps[1:])]
        first = literal(float(steps[0][1]))
        whens.append((currency == code, case(*later, else_=first) if later else first))
    return case(*whens, else_=literal(1.0)) if whens else literal(1.0)


def _rate_on(rates: Rates, currency: str, day: int) -> Decimal:
    """The rate of `currency` into the report's on a local day: the last step starting by then."""
    steps = rates.get(currency)
    if steps is None:
        return Decimal(1)  # the report's own currency
    rate = steps[0][1]
    for start, value in steps:
        if start <= day:
            rate = value
    return rate


async def refused_clicks(db: Database, first: date, last: date) -> list[dict[str, Any]]:
    """Refused clicks per day, reason and link code asked for, most frequent first."""
    start, end = hour_range(first, last)
    t = click_refusals
    day = (t.c.hour // 24).label("day")
    total = func.sum(t.c.clicks).label("clicks")
    stmt = (
        select(day, t.c.reason, t.c.code, total)
        .where(t.c.hour >= start, t.c.hour < end)
        .group_by(day, t.c.reason, t.c.code)
        .order_by(total.desc(), day, t.c.code)
    )
    async with db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    return [{"day": day_of(r.day), "reason": r.reason, "code": r.code, "clicks": int(r.clicks)} for r in rows]
