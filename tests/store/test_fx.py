"""Which exchange rate converts an amount: the newest dated on or before its day, either direction."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from clickback.store import fx
from tests.conftest import Node

D = Decimal
DAY = date(2026, 11, 10)


@pytest.mark.parametrize(
    ("rates", "eur_in_usd"),
    [
        pytest.param(
            [("EUR", "USD", "2026-11-01", "1.08"), ("USD", "EUR", "2026-11-05", "0.8")],
            D("1.25"),
            id="newer_inverse_beats_older_direct",
        ),
        pytest.param(
            [("USD", "EUR", "2026-11-01", "0.8"), ("EUR", "USD", "2026-11-05", "1.1")],
            D("1.1"),
            id="newer_direct_beats_older_inverse",
        ),
        pytest.param(
            [("USD", "EUR", "2026-11-05", "0.8"), ("EUR", "USD", "2026-11-05", "1.1")],
            D("1.1"),
            id="same_day_direct_wins",
        ),
        pytest.param(
            [("EUR", "USD", "2026-11-01", "1.08"), ("USD", "EUR", "2026-11-11", "0.5")],
            D("1.08"),
            id="a_later_rate_does_not_count",
        ),
        pytest.param([("USD", "EUR", "2026-11-11", "0.5")], None, id="none_on_or_before_the_day"),
    ],
)
def test_the_newest_rate_wins_whatever_its_direction(
    clean: Node, rates: list[tuple[str, str, str, str]], eur_in_usd: Decimal | None
) -> None:
    db = clean.runtime.db

    async def rate() -> Decimal | None:
        for base, quote, day, value in rates:
            await fx.put_rate(db, base, quote, date.fromisoformat(day), D(value), datetime.now(UTC))
        async with db.read() as conn:
            return await conn.run_sync(lambda sync: fx.rate_on(sync, "EUR", "USD", DAY))

    assert clean.call(rate) == eur_in_usd
