"""event times of conversions, the deal currency beside the deal amount, RevShare lookups

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deal_currency", sa.String(length=3), nullable=True))
    # Conversions recorded so far happened when they were reported, as far as anyone said.
    op.execute("UPDATE conversions SET event_at = created_at")
    # Deal amounts so far were converted into the currency of the deal in force: the offer's
    # default deal or the affiliate's own (an affiliate's deal wins, as in the catalog).
    op.execute(
        "UPDATE conversions SET deal_currency = COALESCE("
        "(SELECT d.currency FROM deals d WHERE d.offer_id = conversions.offer_id"
        " AND d.affiliate_id = conversions.affiliate_id),"
        "(SELECT d.currency FROM deals d WHERE d.offer_id = conversions.offer_id AND d.affiliate_id = 0))"
        " WHERE deal_amount IS NOT NULL"
    )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.alter_column("event_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_index("ix_conversions_affiliate_id_created_at")
        batch_op.create_index(
            "ix_conversions_affiliate_id_event_at", ["affiliate_id", "event_at"], unique=False
        )
        batch_op.create_index(
            "ix_conversions_ngr",
            ["affiliate_id", "offer_id", "period"],
            unique=False,
            sqlite_where=sa.text("event = 'net_revenue'"),
            postgresql_where=sa.text("event = 'net_revenue'"),
        )
        batch_op.create_index(
            "ix_conversions_ftd",
            ["affiliate_id", "offer_id", "event_at"],
            unique=False,
            sqlite_where=sa.text("event = 'first_deposit'"),
            postgresql_where=sa.text("event = 'first_deposit'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_index("ix_conversions_ftd")
        batch_op.drop_index("ix_conversions_ngr")
        batch_op.drop_index("ix_conversions_affiliate_id_event_at")
        batch_op.create_index(
            "ix_conversions_affiliate_id_created_at", ["affiliate_id", "created_at"], unique=False
        )
        batch_op.drop_column("deal_currency")
        batch_op.drop_column("event_at")
