"""reports: the currencies money is held in, per affiliate and offer, so that a report lists (and
needs exchange rates for) the currencies of its own rows, not the network's

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from clickback.store.catalog import cost_model

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every (affiliate, offer, currency) a report may read money in: the hourly rollup's rows (from
# the hour it counts from), and before that the raw tables a report reads instead: conversions'
# amounts, the prices of their offers, ledger entries, clicks' costs. A scan of each, once.
_HELD = """
SELECT affiliate_id, offer_id, currency FROM report_hours WHERE currency <> ''
UNION SELECT affiliate_id, offer_id, currency FROM conversions
    WHERE link_id IS NOT NULL AND currency IS NOT NULL AND currency <> ''
UNION SELECT v.affiliate_id, v.offer_id, o.currency FROM conversions v JOIN offers o ON o.id = v.offer_id
    WHERE v.link_id IS NOT NULL
UNION SELECT affiliate_id, offer_id, currency FROM commissions
UNION SELECT affiliate_id, offer_id, cost_currency FROM clicks WHERE cost_currency <> ''
"""


def upgrade() -> None:
    op.drop_table("report_currencies")
    table = op.create_table(
        "report_currencies",
        sa.Column("affiliate_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("affiliate_id", "offer_id", "currency", name=op.f("pk_report_currencies")),
        sqlite_with_rowid=False,
    )
    assert table is not None
    bind = op.get_bind()
    held = {tuple(row) for row in bind.execute(sa.text(_HELD)) if None not in row}
    # What links' cost models charge for conversions, in each model's currency.
    for affiliate_id, offer_id, link_id, cost in bind.execute(
        sa.text("SELECT affiliate_id, offer_id, id, cost FROM links WHERE cost IS NOT NULL")
    ):
        if currency := cost_model(link_id, cost).currency:
            held.add((affiliate_id, offer_id, currency))
    rows = [{"affiliate_id": a, "offer_id": o, "currency": c} for a, o, c in sorted(held)]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    bind = op.get_bind()
    held = sorted({row[0] for row in bind.execute(sa.text("SELECT currency FROM report_currencies"))})
    op.drop_table("report_currencies")
    table = op.create_table(
        "report_currencies",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_report_currencies")),
    )
    assert table is not None
    if held:
        op.bulk_insert(table, [{"currency": c} for c in held])
