"""traffic cost: links' cost models, each click's cost, cost in the report rollups, imported spend

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLLUPS = ("report_hours", "report_days", "report_values", "report_weeks")
# core.metrics: CLICK_MONEY and the conversions' cost (money, integers of 1/10,000).
_MEASURES = ("click_cost", "bot_cost", "conversion_cost")


def upgrade() -> None:
    # Plain ADD COLUMNs with a constant default: no table is rebuilt (the rollups are large).
    zero = sa.text("0")
    op.add_column("links", sa.Column("cost", sa.Text(), nullable=True))
    op.add_column("clicks", sa.Column("cost", sa.BigInteger(), server_default=zero, nullable=False))
    op.add_column(
        "clicks",
        sa.Column("cost_currency", sa.String(length=3), server_default=sa.text("''"), nullable=False),
    )
    for table in _ROLLUPS:
        for name in _MEASURES:
            op.add_column(table, sa.Column(name, sa.BigInteger(), server_default=zero, nullable=False))
    op.create_table(
        "cost_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("subs", sa.String(length=1400), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cost_imports_link_id", "cost_imports", ["link_id"])


def downgrade() -> None:
    op.drop_index("ix_cost_imports_link_id", table_name="cost_imports")
    op.drop_table("cost_imports")
    for table in reversed(_ROLLUPS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in reversed(_MEASURES):
                batch_op.drop_column(name)
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_column("cost_currency")
        batch_op.drop_column("cost")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_column("cost")
