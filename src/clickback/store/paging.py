"""Keyset paging, shared by every list: a page of rows after an opaque cursor.

A cursor is the sort key of the last row handed out (base64url of a small JSON list), never an
offset: rows inserted while a client pages never shift a later page, and no row is skipped or
repeated. It is a position, not a credential: a forged one can only start a page elsewhere.
"""

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Column, ColumnElement, Select, and_, or_

from clickback.core.limits import MAX_CURSOR_LEN
from clickback.core.spans import Span
from clickback.store.db import Database

_INT_RANGE = range(-(2**31), 2**31)  # the database's INTEGER: a larger value would overflow the driver


class BadCursor(ValueError):
    """Not a cursor this list handed out (malformed, tampered with, or from another kind of list)."""


def _integer(value: object) -> int:
    if type(value) is not int or value not in _INT_RANGE:
        raise BadCursor("not an integer key")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_CURSOR_LEN:
        raise BadCursor("not a text key")
    return value


def _day(value: object) -> date:
    try:
        return date.fromisoformat(_text(value))
    except ValueError:
        raise BadCursor("not a day") from None


@dataclass(frozen=True, slots=True)
class Key:
    """One column of a list's order, and how to read its value back from a cursor."""

    column: ColumnElement[Any]
    descending: bool = False
    parse: Callable[[object], object] = _integer


def text_key(column: ColumnElement[Any]) -> Key:
    return Key(column, parse=_text)


def day_key(column: ColumnElement[Any], *, descending: bool = False) -> Key:
    return Key(column, descending, _day)


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None  # None: this is the last page


async def page(
    db: Database, query: Select[Any], order: Sequence[Key], cursor: str | None, limit: int
) -> Page:
    """Up to `limit` rows of `query` in `order`, after the row `cursor` names. The order must end in
    a unique column (rows with equal keys would straddle pages)."""
    if cursor is not None:
        query = query.where(_after(order, decode(cursor, order)))
    query = query.order_by(*(k.column.desc() if k.descending else k.column.asc() for k in order))
    async with db.read() as conn:
        rows = (await conn.execute(query.limit(limit + 1))).all()
    if len(rows) <= limit:
        return Page([dict(r._mapping) for r in rows], None)
    last = rows[limit - 1]._mapping
    return Page([dict(r._mapping) for r in rows[:limit]], encode([last[k.column] for k in order]))


def encode(values: Sequence[object]) -> str:
    text = json.dumps(values, default=date.isoformat, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, order: Sequence[Key]) -> list[object]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise BadCursor("not a cursor") from None
    if not isinstance(values, list) or len(values) != len(order):
        raise BadCursor("not a cursor of this list")
    return [key.parse(value) for key, value in zip(order, values, strict=True)]


def _after(order: Sequence[Key], values: Sequence[object]) -> ColumnElement[bool]:
    """Rows after `values` in `order`: (a, b) after (x, y) is a beyond x, or a = x and b beyond y.
    Spelt out rather than as a row comparison, which cannot mix ascending and descending."""
    beyond = [
        and_(
            *(k.column == v for k, v in zip(order[:i], values[:i], strict=True)),
            key.column < value if key.descending else key.column > value,
        )
        for i, (key, value) in enumerate(zip(order, values, strict=True))
    ]
    return or_(*beyond)


def equal(query: Select[Any], wanted: Mapping[Column[Any], object]) -> Select[Any]:
    """`query` narrowed to rows whose columns equal the given values; None asks for no filter."""
    return query.where(*(column == value for column, value in wanted.items() if value is not None))


def within(query: Select[Any], column: ColumnElement[Any], span: Span[Any]) -> Select[Any]:
    if span.start is not None:
        query = query.where(column >= span.start)
    if span.end is not None:
        query = query.where(column < span.end)
    return query
