from datetime import date

import pytest

from clickback.store.paging import BadCursor, Key, day_key, decode, encode, text_key
from clickback.store.tables import fx_rates, postbacks

FX_ORDER = [text_key(fx_rates.c.base), text_key(fx_rates.c.quote), day_key(fx_rates.c.day, descending=True)]
ID_ORDER = [Key(postbacks.c.id, descending=True)]


def test_a_cursor_is_short_url_safe_and_reads_back() -> None:
    cursor = encode(["EUR", "USD", date(2026, 3, 1)])

    assert cursor.isascii() and cursor.replace("-", "").replace("_", "").isalnum()
    assert decode(cursor, FX_ORDER) == ["EUR", "USD", date(2026, 3, 1)]
    assert decode(encode([2**31 - 1]), ID_ORDER) == [2**31 - 1]


@pytest.mark.parametrize(
    ("order", "cursor"),
    [
        (ID_ORDER, ""),
        (ID_ORDER, "%%%"),
        (ID_ORDER, "eyJpZCI6"),  # cut short
        (ID_ORDER, encode([2**31])),
        (ID_ORDER, encode([False])),
        (ID_ORDER, encode(["7"])),
        (ID_ORDER, encode({"id": 7})),  # not a list
        (FX_ORDER, encode(["EUR", "USD"])),
        (FX_ORDER, encode(["EUR", "USD", "2026-02-30"])),
        (FX_ORDER, encode(["EUR", 1, "2026-02-01"])),
    ],
)
def test_a_cursor_not_handed_out_by_the_list_is_refused(order: list[Key], cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode(cursor, order)
