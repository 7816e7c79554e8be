"""RevShare months that added two currencies, as the code before ADR 24 left them (migration 0029).

A deal that changed currency mid-month left the month's row in the old currency while each later
NGR report was priced in the new one and added to it. Each such report is priced again as ADR 24
prices it: its amount as sent (`payout`, `currency`) converted into its month's currency at the
newest rate dated on or before its day (store/fx.rate_on's rule), rounded as core/commission.convert
rounds. The month's kept NGR moves by the difference, and the month is listed in `revshare_due`
for the settle job to book it (and the later months' carry-in) through the postback path.

The rules are written out here, not imported: what a migration did must not change with a later
version of the code it copied.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from clickback.store.tables import Money, UtcDateTime

log = logging.getLogger(__name__)

# Reports read per query: a large conversions table is never held at once.
BATCH = 1000
# Months named in the log line (the rest are counted).
MONTHS_NAMED = 20
WHY = "recomputed: NGR reports priced in another currency than the month's (before ADR 24)"
_WHY_LEN = 200  # revshare_due.why

# As core/commission.convert and core/limits.MAX_PAYOUT were at ADR 24.
_SCALE = Decimal("0.0001")
_MAX_AMOUNT = Decimal(10**9)
_PAYABLE = ("pending", "approved")

_CONVERSIONS = sa.table(
    "conversions",
    sa.column("id", sa.Integer()),
    sa.column("event", sa.String()),
    sa.column("status", sa.String()),
    sa.column("test", sa.Boolean()),
    sa.column("channel", sa.String()),
    sa.column("confirmed", sa.Boolean()),
    sa.column("affiliate_id", sa.Integer()),
    sa.column("offer_id", sa.Integer()),
    sa.column("period", sa.String()),
    sa.column("event_at", UtcDateTime()),
    sa.column("payout", Money()),
    sa.column("currency", sa.String()),
    sa.column("deal_amount", Money()),
    sa.column("deal_currency", sa.String()),
    sa.column("fx_rate", sa.String()),
)
_MONTHS = sa.table(
    "revshare_periods",
    sa.column("affiliate_id", sa.Integer()),
    sa.column("offer_id", sa.Integer()),
    sa.column("period", sa.String()),
    sa.column("currency", sa.String()),
    sa.column("ngr", Money()),
)
_DUE = sa.table(
    "revshare_due",
    sa.column("affiliate_id", sa.Integer()),
    sa.column("offer_id", sa.Integer()),
    sa.column("period", sa.String()),
    sa.column("conversion_id", sa.Integer()),
    sa.column("why", sa.String()),
)
_RATES = sa.table(
    "fx_rates",
    sa.column("base", sa.String()),
    sa.column("quote", sa.String()),
    sa.column("day", sa.Date()),
    sa.column("rate", sa.String()),
)

# The reports a month still holds in another currency than its own: after 0029, those it could
# not price again (no rate on record; an amount past the bound). Amounts are in 1/10,000 as
# stored. A month without a row is in the currency its first report was priced in (ADR 24).
# docs/commissions.md quotes it.
LEFT_AS_THEY_WERE = """
SELECT * FROM (
  SELECT c.id, c.status, c.affiliate_id, c.offer_id, c.period, c.event_at,
         c.payout, c.currency, c.deal_amount, c.deal_currency,
         COALESCE(r.currency, (
           SELECT f.deal_currency FROM conversions f
           WHERE f.affiliate_id = c.affiliate_id AND f.offer_id = c.offer_id
             AND f.event = 'net_revenue' AND f.period = c.period
             AND f.deal_currency IS NOT NULL AND NOT f.test
           ORDER BY f.id LIMIT 1)) AS month_currency
  FROM conversions c
  LEFT JOIN revshare_periods r
    ON r.affiliate_id = c.affiliate_id AND r.offer_id = c.offer_id AND r.period = c.period
  WHERE c.event = 'net_revenue' AND NOT c.test AND c.period IS NOT NULL
    AND c.deal_currency IS NOT NULL
) mixed
WHERE deal_currency <> month_currency
ORDER BY id
"""

MonthKey = tuple[int, int, str]


@dataclass
class Repaired:
    """What the repair did: reports priced again, months corrected (listed in revshare_due), and
    the reports left as they were and their months."""

    repriced: int = 0
    months: set[MonthKey] = field(default_factory=set)
    left: int = 0
    left_months: set[MonthKey] = field(default_factory=set)


def _mixed(after: int) -> sa.Select[Any]:
    """NGR reports after id `after` priced in another currency than their month's: its row's,
    else (a month never booked: its deal paid no RevShare) its first report's, as
    service/commissions.month_currency decides. Every status: one rejected can be approved
    again, and then adds its amount. Attributed only (a report whose click is in flight is
    priced when it lands, by the code that knows the rule); never a test (in no month)."""
    c, m = _CONVERSIONS.c, _MONTHS.c
    first = _CONVERSIONS.alias("first_report")
    f = first.c
    reports_currency = (
        sa.select(f.deal_currency)
        .where(
            (f.affiliate_id == c.affiliate_id)
            & (f.offer_id == c.offer_id)
            & (f.event == "net_revenue")
            & (f.period == c.period)
            & f.deal_currency.is_not(None)
            & ~f.test
        )
        .order_by(f.id)
        .limit(1)
        .scalar_subquery()
    )
    month_currency = sa.func.coalesce(m.currency, reports_currency)
    month = (m.affiliate_id == c.affiliate_id) & (m.offer_id == c.offer_id) & (m.period == c.period)
    return (
        sa.select(
            c.id,
            c.status,
            c.channel,
            c.confirmed,
            c.affiliate_id,
            c.offer_id,
            c.period,
            c.event_at,
            c.payout,
            c.currency,
            c.deal_amount,
            c.deal_currency,
            m.currency.label("booked"),
            month_currency.label("month_currency"),
        )
        .select_from(_CONVERSIONS.outerjoin(_MONTHS, month))
        .where(
            (c.id > after)
            & (c.event == "net_revenue")
            & ~c.test
            & c.affiliate_id.is_not(None)
            & c.offer_id.is_not(None)
            & c.period.is_not(None)
            & c.deal_currency.is_not(None)
            & c.deal_amount.is_not(None)
            & (c.deal_currency != month_currency)
        )
        .order_by(c.id)
        .limit(BATCH)
    )


class _Rates:
    """store/fx.rate_on at ADR 24: 1 unit of base in quote, from the newest rate dated on or
    before the day in either direction (a quote→base rate inverted); on the same day the direct
    rate wins. Looked up once per pair and day."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._known: dict[tuple[str, str, date], Decimal | None] = {}

    def on(self, base: str, quote: str, day: date) -> Decimal | None:
        if base == quote:
            return Decimal(1)
        key = (base, quote, day)
        if key not in self._known:
            self._known[key] = self._look_up(base, quote, day)
        return self._known[key]

    def _look_up(self, base: str, quote: str, day: date) -> Decimal | None:
        r = _RATES.c
        direct = (r.base == base) & (r.quote == quote)
        query = (
            sa.select(r.rate, direct.label("direct"))
            .where((direct | ((r.base == quote) & (r.quote == base))) & (r.day <= day))
            .order_by(r.day.desc(), sa.case((direct, 0), else_=1))
            .limit(1)
        )
        found = self._conn.execute(query).one_or_none()
        if found is None:
            return None
        return Decimal(found.rate) if found.direct else 1 / Decimal(found.rate)


def _rate_day(period: str, at: datetime) -> date:
    """core/commission.rate_day for an NGR report: the day it happened, at the latest its
    month's last day."""
    year, month = int(period[:4]), int(period[5:7])
    following = date(year + month // 12, month % 12 + 1, 1)
    return min(at.date(), following - timedelta(days=1))


def _counted(row: sa.Row[Any]) -> bool:
    """Whether the report is in its month's kept NGR (core/commission.month_share): pending or
    approved, and not a pixel's claim nobody confirmed."""
    return row.status in _PAYABLE and (row.channel != "pixel" or bool(row.confirmed))


def reprice_mixed_months(conn: Connection) -> Repaired:
    """Every NGR report priced in another currency than its month's, priced again into it; each
    booked month's kept NGR moved by the difference and the month listed in revshare_due. A
    report without a rate (or whose amount would pass the bound) is left as it was, counted and
    logged. Idempotent: a report priced again is in its month's currency, and found no more."""
    done = Repaired()
    rates = _Rates(conn)
    after = 0
    while True:
        rows = conn.execute(_mixed(after)).all()
        if not rows:
            break
        after = rows[-1].id
        changed: list[dict[str, object]] = []
        moved: dict[MonthKey, Decimal] = {}
        cause: dict[MonthKey, int] = {}
        for row in rows:
            key = (row.affiliate_id, row.offer_id, row.period)
            target = row.month_currency
            rate = None
            if row.payout is not None and row.currency is not None:
                rate = rates.on(row.currency, target, _rate_day(row.period, row.event_at))
            amount = None if rate is None else (row.payout * rate).quantize(_SCALE, ROUND_HALF_EVEN)
            if rate is None or amount is None or abs(amount) > _MAX_AMOUNT:
                # As pricing refuses it now (missing_exchange_rate, converted_amount_too_large).
                done.left += 1
                done.left_months.add(key)
                continue
            changed.append({"report": row.id, "amount": amount, "priced_in": target, "rate": f"{rate:f}"})
            done.repriced += 1
            if row.booked is not None and _counted(row) and amount != row.deal_amount:
                moved[key] = moved.get(key, Decimal(0)) + amount - row.deal_amount
                cause[key] = row.id  # the month's last report priced again: its correction's cause
        if changed:
            c = _CONVERSIONS.c
            conn.execute(
                _CONVERSIONS.update()
                .where(c.id == sa.bindparam("report"))
                .values(
                    deal_amount=sa.bindparam("amount"),
                    deal_currency=sa.bindparam("priced_in"),
                    fx_rate=sa.bindparam("rate"),
                ),
                changed,
            )
        # Moved in the same transaction as the reports: the NGR moves once per report.
        for key, delta in sorted(moved.items()):
            if delta:
                _correct(conn, key, delta, cause[key])
                done.months.add(key)
    _say(done)
    return done


def _correct(conn: Connection, key: MonthKey, delta: Decimal, cause: int) -> None:
    """The month's kept NGR moved by `delta`, and the month listed for the settle job (a month
    0028 listed already keeps its row, saying both reasons)."""
    affiliate_id, offer_id, period = key
    m, d = _MONTHS.c, _DUE.c
    month = (m.affiliate_id == affiliate_id) & (m.offer_id == offer_id) & (m.period == period)
    conn.execute(_MONTHS.update().where(month).values(ngr=m.ngr + delta))
    due = (d.affiliate_id == affiliate_id) & (d.offer_id == offer_id) & (d.period == period)
    listed = conn.execute(sa.select(d.conversion_id, d.why).where(due)).first()
    if listed is None:
        values = {"affiliate_id": affiliate_id, "offer_id": offer_id, "period": period}
        conn.execute(_DUE.insert().values(**values, conversion_id=cause, why=WHY))
        return
    said = WHY.removeprefix("recomputed: ")
    why = listed.why if said in listed.why else f"{listed.why}; {said}"
    conn.execute(
        _DUE.update().where(due).values(conversion_id=max(cause, listed.conversion_id), why=why[:_WHY_LEN])
    )


def _named(months: Iterable[MonthKey]) -> str:
    keys = sorted(months)
    shown = ", ".join(f"affiliate {a} offer {o} {p}" for a, o, p in keys[:MONTHS_NAMED])
    return shown + (f" and {len(keys) - MONTHS_NAMED} more" if len(keys) > MONTHS_NAMED else "")


def _say(done: Repaired) -> None:
    if done.repriced:
        log.warning(
            "RevShare months mixing two currencies (before ADR 24): %d NGR reports priced again into "
            "their month's currency; %d months to be booked again by the settle job: %s",
            done.repriced,
            len(done.months),
            _named(done.months) or "none",
        )
    if done.left:
        log.warning(
            "RevShare months mixing two currencies (before ADR 24): %d NGR reports left as they were, "
            "no exchange rate on record into their month's currency (or an amount past the bound; "
            "docs/commissions.md has the query that lists them): %s",
            done.left,
            _named(done.left_months),
        )
