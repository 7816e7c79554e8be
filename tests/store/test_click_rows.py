"""The click writer's rollup rows (store.rollups.click_rows) with costs: summed per price in C
where a batch holds a few prices, click by click where it holds many, with the same result."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from clickback.core.model import Click, Traits
from clickback.core.reporting import VALUE_DIMENSIONS, LocalDays
from clickback.store import rollups
from clickback.store.rollups import MAX_PRICES, click_rows, click_values
from clickback.store.tables import report_day_rows, report_hours

START = datetime(2026, 11, 20, tzinfo=UTC)
LOCAL = LocalDays(["UTC", "Europe/Berlin"])


def clicks(prices: list[int], n: int, rng: random.Random) -> list[tuple[int, Click]]:
    made = []
    for i in range(n):
        at = START + timedelta(minutes=rng.randrange(3000))
        price = rng.choice(prices)
        bot = rng.choice(["", "", "crawler"])
        traits = Traits(rng.choice(["DE", "AT"]), "", "", None, "mobile", "Android", "Chrome", bot)
        subs = (rng.choice(["a", "b", "c"]), "", "", "", "")
        currency = rng.choice(["EUR", "USD"]) if price else ""
        click = Click(
            f"c{i}",
            at,
            rng.choice([1, 2]),
            1,
            1,
            "",
            subs,
            "",
            "",
            "",
            "",
            "",
            traits,
            f"v{i}",
            False,
            price,
            currency,
        )
        made.append((int(at.timestamp() * 1000), click))
    return made


@pytest.mark.parametrize("distinct", [1, MAX_PRICES, MAX_PRICES + 5])
def test_costs_are_the_same_summed_by_price_or_click_by_click(
    distinct: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(distinct)
    stamped = clicks([0, *rng.sample(range(1, 5000), distinct)], 600, rng)
    got = click_rows(stamped, set(), LOCAL)
    monkeypatch.setattr(rollups, "MAX_PRICES", 0)  # every batch click by click
    assert click_rows(stamped, set(), LOCAL) == got

    hours = next(t for t in got if t.table is report_hours)
    assert hours.measures[-2:] == ("click_cost", "bot_cost")
    width = len(hours.key)
    for currency in ("EUR", "USD"):
        mine = [c for _, c in stamped if c.cost_currency == currency]
        rows = [r for r in hours.rows if r[width - 1] == currency]
        assert sum(r[width + 3] for r in rows) == sum(c.cost for c in mine)
        assert sum(r[width + 4] for r in rows) == sum(c.cost for c in mine if c.traits.bot)
    # Every click counted once an hour row, whatever currency row its cost put it in.
    assert sum(r[width] + r[width + 2] for r in hours.rows) == len(stamped)


def test_a_batch_that_costs_nothing_has_no_money_columns() -> None:
    stamped = clicks([0], 50, random.Random(1))
    assert all(
        t.measures == ("clicks", "unique_clicks", "bot_clicks")
        for t in click_rows(stamped, set(), LOCAL)
        if t.table is not report_day_rows
    )


def test_each_group_of_the_days_rows_is_marked_once_of_each_kind() -> None:
    """report_day_rows: one row per zone, day, affiliate, offer and country of the batch's
    report_days rows (whatever their currencies), of kind "a" and, clicks being of click time,
    of kind "c"; no measures, in key order."""
    stamped = clicks([0, 120], 400, random.Random(7))
    got = {t.table.name: t for t in click_rows(stamped, set(), LOCAL)}
    days, marks = got["report_days"], got["report_day_rows"]
    groups = {(r[0], r[1], r[2], r[3], r[4]) for r in days.rows}
    assert len(groups) < len(days.rows)  # some groups hold rows of two currencies
    assert marks.measures == () and marks.rows == sorted(marks.rows)
    assert marks.rows == sorted(
        (zone, kind, day, affiliate, offer, country)
        for zone, day, affiliate, offer, country in groups
        for kind in (rollups.ANY_ROW, rollups.CLICK_TIME)
    )


@pytest.mark.parametrize("bots", [True, False], ids=["with_bots", "no_bots"])
@pytest.mark.parametrize("prices", [[0], [0, 500]], ids=["free", "costed"])
def test_each_rollups_rows_are_the_clicks_counted_one_by_one_in_key_order(
    bots: bool, prices: list[int]
) -> None:
    rng = random.Random(11)
    stamped = clicks(prices, 500, rng)
    if not bots:
        stamped = [(ms, c._replace(traits=c.traits._replace(bot=""))) for ms, c in stamped]
    unique = {c.click_id for _, c in stamped[::3]}
    costed = any(c.cost for _, c in stamped)

    expected: dict[str, dict[tuple[object, ...], list[int]]] = {}

    def add(table: str, key: tuple[object, ...], c: Click) -> None:
        human, bot = not c.traits.bot, bool(c.traits.bot)
        measures = [int(human), int(human and c.click_id in unique), int(bot)]
        if costed:
            measures += [c.cost, c.cost if bot else 0]
        sums = expected.setdefault(table, {}).setdefault(key, [0] * len(measures))
        sums[:] = [a + b for a, b in zip(sums, measures, strict=True)]

    for ms, c in stamped:
        second, country, currency = ms // 1000, c.traits.country, c.cost_currency
        add("report_hours", (second // 3600, 1, 1, country, "c", currency), c)
        for zone, day in zip(LOCAL.zones, LOCAL.of(second), strict=True):
            add("report_days", (zone, day, 1, 1, country, "c", currency), c)
            for dimension, value in zip(VALUE_DIMENSIONS, click_values(c), strict=True):
                add("report_values", (zone, dimension, day, value, 1, 1, "c", currency), c)

    def in_key_order(table: str, runs: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        """The expected rows in key order within each run of the key's leading columns (zone;
        zone and dimension), the runs in the kept zones' and the dimensions' order."""
        rows = sorted((*key, *m) for key, m in expected[table].items())
        return [r for run in runs for r in rows if r[: len(run)] == run]

    got = {t.table.name: t.rows for t in click_rows(stamped, unique, LOCAL)}
    assert got["report_hours"] == sorted((*k, *m) for k, m in expected["report_hours"].items())
    assert got["report_days"] == in_key_order("report_days", [(z,) for z in LOCAL.zones])
    runs = [(z, d) for z in LOCAL.zones for d in VALUE_DIMENSIONS]
    assert got["report_values"] == in_key_order("report_values", runs)
    assert got["report_day_rows"] == sorted(got["report_day_rows"])
