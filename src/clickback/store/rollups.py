"""The report rollups' increments (ADR 14): collected while a click batch or a postback group is
written, then added to the three rollups in the same transaction, each in one statement."""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, delete, exists, insert, select

from clickback.core.metrics import CLICK_COUNTS, CLICK_MEASURES, MEASURES, MONEY, Contribution
from clickback.core.model import Click
from clickback.core.reporting import VALUE_DIMENSIONS, LocalDays, next_midnight
from clickback.errors import StartupError
from clickback.store.bulk import Inserts, add_rows
from clickback.store.db import Database
from clickback.store.tables import (
    MONEY_SCALE,
    clicks,
    conversions,
    report_currencies,
    report_day_rows,
    report_days,
    report_hours,
    report_rollups,
    report_values,
    report_week_state,
    report_weeks,
)
from clickback.store.weeks import WEEK_KEY, weekly

CLICK_TIME = "c"
EVENT_TIME = "e"
# report_day_rows' kinds: a group with any row in report_days; and (CLICK_TIME) one of click time.
ANY_ROW = "a"

HOUR_KEY: tuple[str, ...] = ("hour", "affiliate_id", "offer_id", "country", "basis", "currency")
DAY_KEY: tuple[str, ...] = ("zone", "day", "affiliate_id", "offer_id", "country", "basis", "currency")
DAY_ROW_KEY: tuple[str, ...] = ("zone", "kind", "day", "affiliate_id", "offer_id", "country")
VALUE_KEY: tuple[str, ...] = (
    "zone",
    "dimension",
    "day",
    "value",
    "affiliate_id",
    "offer_id",
    "basis",
    "currency",
)
_POSITION = {name: i for i, name in enumerate(MEASURES)}
_MONEY_FROM = len(MEASURES) - len(MONEY)
Sums = dict[tuple[Any, ...], list[Any]]
Key = tuple[Any, ...]


class Rollups:
    """A postback group's increments, keyed by rollup row (ADR 14): each row's sums as a list
    in MEASURES order."""

    def __init__(self, days: LocalDays) -> None:
        self.local = days
        self.hours: Sums = {}
        self.days: Sums = {}
        self.values: Sums = {}

    def add(
        self,
        basis: str,
        second: int,
        owners: tuple[int, int],
        country: str,
        values: Sequence[str],
        contributions: Iterable[Contribution],
        sign: int = 1,
    ) -> None:
        """A fact at `second` (UTC epoch) of `owners` (affiliate, offer) from `country`, with its
        value dimensions in VALUE_DIMENSIONS order."""
        days = self.local.of(second)
        hour = second // 3600
        affiliate, offer = owners
        for c in contributions:
            amounts = [(_POSITION[name], amount * sign) for name, amount in c.values.items()]
            currency = c.currency
            _add(self.hours, (hour, affiliate, offer, country, basis, currency), amounts)
            for zone, day in zip(self.local.zones, days, strict=True):
                _add(self.days, (zone, day, affiliate, offer, country, basis, currency), amounts)
                for dimension, value in zip(VALUE_DIMENSIONS, values, strict=True):
                    _add(
                        self.values, (zone, dimension, day, value, affiliate, offer, basis, currency), amounts
                    )

    def _tables(self) -> tuple[tuple[Table, tuple[str, ...], Sums], ...]:
        return (
            (report_hours, HOUR_KEY, self.hours),
            (report_days, DAY_KEY, self.days),
            (report_values, VALUE_KEY, self.values),
        )

    def write(self, conn: Connection, db: Database) -> Inserts:
        """Take what was collected. On PostgreSQL: insert_all's entries, to go with the group's
        other rows in its one statement (rows in key order, so that two processes adding to the
        same rows lock them alike). On SQLite: written here, by INSERTs of many rows each (an
        executemany of dictionaries cost more than the rest of a plain postback's recording)."""
        # HOUR_KEY's affiliate, offer and currency.
        tables = self._tables()
        currencies = sorted({(k[1], k[2], k[-1]) for k in self.hours if k[-1]})
        value_rows = [(*k, *sums) for k, sums in self.values.items()]
        marks = day_marks((k for k, sums in self.days.items() if any(sums)), ordered=True)
        self.hours, self.days, self.values = {}, {}, {}
        # A late fact of a week over: added to the week's sums too (store.weeks).
        weeks = weekly(conn, db, value_rows, len(MEASURES), ordered=False)
        tables += ((report_weeks, WEEK_KEY, {tuple(r[:8]): list(r[8:]) for r in weeks}),)
        postgresql = conn.dialect.name == "postgresql"
        out: list[tuple[Table, list[dict[str, Any]], Any]] = []
        if currencies:
            rows = [{"affiliate_id": a, "offer_id": o, "currency": c} for a, o, c in currencies]
            out.append((report_currencies, rows, db.insert_ignore(report_currencies)))
        for table, key, collected in tables:
            kept = [(k, sums) for k, sums in collected.items() if any(sums)]
            if not kept:
                continue
            if postgresql:
                columns = (*key, *MEASURES)
                rows = [dict(zip(columns, (*k, *sums), strict=True)) for k, sums in sorted(kept)]
                out.append((table, rows, db.insert_adding(table, MEASURES)))
            else:
                add_rows(conn, table, key, MEASURES, [(*k, *_stored(sums)) for k, sums in kept])
            if table is report_days:  # its groups right after it, as the click writer adds them
                if postgresql:
                    rows = [dict(zip(DAY_ROW_KEY, m, strict=True)) for m in marks]
                    out.append((report_day_rows, rows, db.insert_ignore(report_day_rows)))
                else:
                    add_rows(conn, report_day_rows, DAY_ROW_KEY, (), marks)
        return out


def day_marks(keys: Iterable[tuple[Any, ...]], *, ordered: bool) -> list[tuple[Any, ...]]:
    """The report_day_rows rows (DAY_ROW_KEY) of report_days rows of these keys (DAY_KEY)."""
    marks = set()
    for zone, day, affiliate, offer, country, basis, _ in keys:
        marks.add((zone, ANY_ROW, day, affiliate, offer, country))
        if basis == CLICK_TIME:
            marks.add((zone, CLICK_TIME, day, affiliate, offer, country))
    return sorted(marks) if ordered else list(marks)


def _add(into: Sums, key: tuple[Any, ...], amounts: list[tuple[int, Any]]) -> None:
    sums = into.get(key)
    if sums is None:
        sums = into[key] = [0] * len(MEASURES)
    for i, amount in amounts:
        sums[i] += amount


def _stored(sums: list[Any]) -> list[Any]:
    """Money as the database keeps it (tables.Money: integers of 1/10,000)."""
    return sums[:_MONEY_FROM] + [int(v * MONEY_SCALE) for v in sums[_MONEY_FROM:]]


# Up to this many distinct click prices in a batch, click costs are summed per price in C.
MAX_PRICES = 8


class ClickRows(NamedTuple):
    """A rollup's rows from a click batch: of the key, then the measures named."""

    table: Table
    key: tuple[str, ...]
    measures: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def no_pause() -> None:
    """click_rows' `pause` where nothing waits on the batch's work (SQLite's writer thread)."""


def click_rows(
    stamped: Sequence[tuple[int, Click]],
    unique: set[str],
    local: LocalDays,
    *,
    pause: Callable[[], object] = no_pause,
) -> list[ClickRows]:
    """The click writer's rollup rows for a batch of (epoch ms, click): per rollup, its key
    columns and rows of the key and CLICK_COUNTS (and CLICK_MONEY, in units of 1/10,000, when a
    click of the batch cost something: a click's row is of its cost's currency); in key order:
    two PostgreSQL processes adding to the same rows then lock them alike, and SQLite walks its
    B-tree in order (the values rollup's upserts took a quarter less time than in hash order).

    Column-wise: the keys of every click are zipped and counted by Counter, in C. A loop over
    the clicks adding up to 13 rows each cost 24 µs a click, half the writer's time. So are
    costs, price by price, where a batch's clicks cost a few prices (_costs). The keys counted
    are short: a click's (day, affiliate, offer, currency) is numbered once a zone, and each
    dimension counts (value, that number), expanded into the rollup's key only per row: hashing
    the full 8-column keys, three Counters a dimension, was half of this function's time.

    `pause` is called between the rows of one dimension and the next: on PostgreSQL, where the
    batch is worked out on the event loop, it lets the loop answer the clicks that came in
    meanwhile (11 dimensions a zone; a batch of 500 took 6 to 12 ms of the loop in one piece)."""
    live = [(ms // 1000, c) for ms, c in stamped if not c.test]
    if not live:
        return []
    seconds = [s for s, _ in live]
    batch = [c for _, c in live]
    bot = [bool(c.traits.bot) for c in batch]
    any_bot = any(bot)
    human = [not b for b in bot]
    unique_human = [h and c.click_id in unique for h, c in zip(human, batch, strict=True)]
    affiliates = [c.affiliate_id for c in batch]
    offers = [c.offer_id for c in batch]
    countries = [c.traits.country for c in batch]
    costed = [i for i, c in enumerate(batch) if c.cost]
    measures = CLICK_MEASURES if costed else CLICK_COUNTS
    currencies = [c.cost_currency for c in batch] if costed else [""] * len(live)

    def counted(keys: Iterable[Key]) -> list[tuple[Key, list[int]]]:
        """Each key's measures (in `measures` order) over the batch; `keys`, a click's each."""
        every = list(keys)
        if any_bot:
            clicks, bots = Counter(compress(every, human)), Counter(compress(every, bot))
            found: Iterable[Key] = clicks.keys() | bots.keys()
        else:
            clicks, bots = Counter(every), Counter()
            found = clicks.keys()
        # .get, not [], for the keys a Counter lacks: its __missing__ is a Python call a key.
        uniques = Counter(compress(every, unique_human)).get
        n, b = clicks.get, bots.get
        if costed:
            cost, bot_cost = (c.get for c in _costs(every))
            return [(k, [n(k, 0), uniques(k, 0), b(k, 0), cost(k, 0), bot_cost(k, 0)]) for k in found]
        return [(k, [n(k, 0), uniques(k, 0), b(k, 0)]) for k in found]

    def _costs(every: list[Key]) -> tuple[Counter[Key], Counter[Key]]:
        """Each key's click_cost and bot_cost. A link's clicks cost one of a few prices (a CPC,
        its GEOs'): keys are counted by Counter per price and multiplied, in C; costs the sources
        passed, each its own, are added up click by click."""
        cost: Counter[Key] = Counter()
        bot_cost: Counter[Key] = Counter()
        if prices:
            for price, (paid, paid_by_bots) in prices.items():
                for into, mask in ((cost, paid), (bot_cost, paid_by_bots)):
                    for key, n in Counter(compress(every, mask)).items():
                        into[key] += n * price
            return cost, bot_cost
        for i in costed:
            cost[every[i]] += batch[i].cost
            if bot[i]:
                bot_cost[every[i]] += batch[i].cost
        return cost, bot_cost

    # The clicks of each price, and the bots among them (masks over the batch).
    prices: dict[int, tuple[list[bool], list[bool]]] = {}
    distinct = {batch[i].cost for i in costed}
    if len(distinct) <= MAX_PRICES:
        for price in distinct:
            paid = [c.cost == price for c in batch]
            prices[price] = (paid, [p and b for p, b in zip(paid, bot, strict=True)])

    hours = zip((s // 3600 for s in seconds), affiliates, offers, countries, currencies, strict=True)
    hour_rows = [(h, a, o, country, CLICK_TIME, cur, *m) for (h, a, o, country, cur), m in counted(hours)]
    out = [ClickRows(report_hours, HOUR_KEY, measures, sorted(hour_rows))]
    columns = list(zip(*(click_values(c) for c in batch), strict=True))
    day_rows: list[tuple[Any, ...]] = []
    value_rows: list[tuple[Any, ...]] = []
    for zone, days in zip(local.zones, zip(*(local.of(s) for s in seconds), strict=True), strict=True):
        # Each click's (day, affiliate, offer, currency), numbered: position in `owned`.
        numbers: dict[Key, int] = {}
        owner = [
            numbers.setdefault(k, len(numbers))
            for k in zip(days, affiliates, offers, currencies, strict=True)
        ]
        owned = list(numbers)
        day_rows += sorted(
            [
                (zone, d, a, o, country, CLICK_TIME, cur, *m)
                for (n, country), m in counted(zip(owner, countries, strict=True))
                for d, a, o, cur in (owned[n],)
            ]
        )
        for dimension, values in zip(VALUE_DIMENSIONS, columns, strict=True):
            value_rows += sorted(
                [
                    (zone, dimension, d, value, a, o, CLICK_TIME, cur, *m)
                    for (value, n), m in counted(zip(values, owner, strict=True))
                    for d, a, o, cur in (owned[n],)
                ]
            )
            pause()
    out.append(ClickRows(report_days, DAY_KEY, measures, day_rows))
    out.append(
        ClickRows(report_day_rows, DAY_ROW_KEY, (), day_marks((r[:7] for r in day_rows), ordered=True))
    )
    out.append(ClickRows(report_values, VALUE_KEY, measures, value_rows))
    return out


def click_values(c: Click) -> tuple[str, ...]:
    """A click's value dimensions, in VALUE_DIMENSIONS order."""
    t = c.traits
    return (str(c.link_id), t.device_type, t.os, t.browser, c.source, c.landing_page, *c.subs)


def row_values(row: Mapping[str, Any]) -> tuple[str, ...]:
    """A conversion row's value dimensions (its click's), in VALUE_DIMENSIONS order."""
    return (str(row["link_id"]), *(row[name] for name in VALUE_DIMENSIONS[1:]))


def keep_zones(conn: Connection, zones: Sequence[str], now: int) -> None:
    """Keep local days of these zones. A zone new to a database that holds nothing yet is
    complete from the beginning; otherwise from its next local midnight (the days before are
    answered from hours or the raw tables).

    A zone the database keeps that `zones` does not name is refused: a process not counting it
    would leave its days short without a word (a `clickback migrate` run with other settings, a
    worker of an older configuration). forget_zone drops it on purpose."""
    kept = {r.name for r in conn.execute(select(report_rollups.c.name))}
    wanted = {f"days:{z}" for z in zones}
    extra = sorted(name.removeprefix("days:") for name in kept - wanted - {"hours"})
    if extra:
        raise StartupError(
            f"the database keeps report days of {', '.join(extra)}, which CLICKBACK_REPORT_ZONES"
            f" ({','.join(zones)}) does not name",
            "name them too, or drop their days: clickback forget-report-zone ZONE",
        )
    new = sorted(wanted - kept)
    if not new:
        return
    used = conn.execute(select(exists(select(clicks.c.click_id)) | exists(select(conversions.c.id)))).scalar()
    for name in new:
        since = next_midnight(ZoneInfo(name.removeprefix("days:")), now) if used else 0
        conn.execute(insert(report_rollups).values(name=name, since=since))


def forget_zone(conn: Connection, zone: str) -> bool:
    """Drop a zone's report days; whether the database kept it."""
    conn.execute(delete(report_days).where(report_days.c.zone == zone))
    for table in (report_day_rows, report_values, report_weeks, report_week_state):
        conn.execute(delete(table).where(table.c.zone == zone))
    gone = conn.execute(delete(report_rollups).where(report_rollups.c.name == f"days:{zone}"))
    return bool(gone.rowcount)
