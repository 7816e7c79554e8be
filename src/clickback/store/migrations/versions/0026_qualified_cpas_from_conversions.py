"""reports: qualified_cpas counts the qualifications that stand (pending and approved
qualified_cpa conversions, over a cap too: ADR 17), no longer CPA ledger entries less reversals;
the rollups' figure recounted

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08

"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from clickback.core.reporting import VALUE_DIMENSIONS, LocalDays, week_of
from clickback.store.tables import UtcDateTime

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONVERSIONS = sa.table(
    "conversions",
    sa.column("id", sa.Integer()),
    sa.column("event", sa.String()),
    sa.column("status", sa.String()),
    sa.column("test", sa.Boolean()),
    sa.column("event_at", UtcDateTime()),
    sa.column("clicked_at", UtcDateTime()),
    sa.column("affiliate_id", sa.Integer()),
    sa.column("offer_id", sa.Integer()),
    sa.column("country", sa.String()),
    sa.column("currency", sa.String()),
    sa.column("link_id", sa.Integer()),
    *(sa.column(name, sa.String()) for name in VALUE_DIMENSIONS[1:]),
)
_COMMISSIONS = sa.table(
    "commissions",
    sa.column("kind", sa.String()),
    sa.column("currency", sa.String()),
    sa.column("conversion_id", sa.Integer()),
    sa.column("reverses_id", sa.Integer()),
)
# The rollups' keys (store/rollups.py, store/weeks.py), but for the measure.
_KEYS = {
    "report_hours": ("hour", "affiliate_id", "offer_id", "country", "basis", "currency"),
    "report_days": ("zone", "day", "affiliate_id", "offer_id", "country", "basis", "currency"),
    "report_values": ("zone", "dimension", "day", "value", "affiliate_id", "offer_id", "basis", "currency"),
    "report_weeks": ("zone", "dimension", "week", "value", "affiliate_id", "offer_id", "basis", "currency"),
}


def _counted(rows: Iterable[tuple[Any, str, int]]) -> None:
    """Every rollup's qualified_cpas set to what `rows` (a conversion whose coordinates count,
    the currency counted in, +1 or -1) add up to, as the writers would have added them: at the
    conversion's event time and its click's, under its click's dimensions. A row a conversion
    counted in exists (its approved, pending or declined counts are there); a rollup row of a
    period a rollup does not count yet is left alone."""
    bind = op.get_bind()
    zones = [
        str(name).removeprefix("days:")
        for (name,) in bind.execute(sa.text("SELECT name FROM report_rollups WHERE name LIKE 'days:%'"))
    ]
    local = LocalDays(zones)
    summed = {
        (z, int(w)) for z, w in bind.execute(sa.text("SELECT zone, week FROM report_week_state WHERE kept"))
    }
    sums: dict[str, dict[tuple[Any, ...], int]] = {table: {} for table in _KEYS}

    def add(table: str, key: tuple[Any, ...], n: int) -> None:
        sums[table][key] = sums[table].get(key, 0) + n

    for row, currency, n in rows:
        owners = (row.affiliate_id, row.offer_id)
        values = (str(row.link_id), *(getattr(row, name) for name in VALUE_DIMENSIONS[1:]))
        moments: tuple[tuple[str, datetime], ...] = (("e", row.event_at), ("c", row.clicked_at))
        for basis, moment in moments:
            second = int(moment.timestamp())
            add("report_hours", (second // 3600, *owners, row.country, basis, currency), n)
            for zone, day in zip(local.zones, local.of(second), strict=True):
                add("report_days", (zone, day, *owners, row.country, basis, currency), n)
                for dimension, value in zip(VALUE_DIMENSIONS, values, strict=True):
                    add("report_values", (zone, dimension, day, value, *owners, basis, currency), n)
                    if (zone, week_of(day)) in summed:
                        week = (zone, dimension, week_of(day), value, *owners, basis, currency)
                        add("report_weeks", week, n)
    for table, key in _KEYS.items():
        bind.execute(sa.text(f"UPDATE {table} SET qualified_cpas = 0 WHERE qualified_cpas <> 0"))  # noqa: S608 - our own names
        counted = [dict(zip(key, k, strict=True)) | {"n": n} for k, n in sorted(sums[table].items()) if n]
        if counted:
            where = " AND ".join(f"{c} = :{c}" for c in key)
            bind.execute(sa.text(f"UPDATE {table} SET qualified_cpas = :n WHERE {where}"), counted)  # noqa: S608


def _attributed(c: Any) -> Any:
    return sa.and_(sa.not_(c.test), c.link_id.is_not(None))


def upgrade() -> None:
    c = _CONVERSIONS.c
    standing = sa.select(_CONVERSIONS).where(
        c.event == "qualified_cpa", c.status.in_(["pending", "approved"]), _attributed(c)
    )
    _counted((row, row.currency, 1) for row in op.get_bind().execute(standing).all())


def downgrade() -> None:
    # As 0024's code counted them: a CPA entry under the conversion that caused it, a reversal -1.
    c, e = _CONVERSIONS.c, _COMMISSIONS.c
    entries = (
        sa.select(_CONVERSIONS, e.currency.label("entry_currency"), e.reverses_id)
        .select_from(_COMMISSIONS.join(_CONVERSIONS, c.id == e.conversion_id))
        .where(e.kind == "cpa", _attributed(c))
    )
    rows = op.get_bind().execute(entries).all()
    _counted((row, row.entry_currency, -1 if row.reverses_id is not None else 1) for row in rows)
