"""reconciliation: operators' reports imported (each file once per advertiser), their lines
(each row key once per advertiser), the column mapping per advertiser, and the comparison's items

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("file_kind", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("reading", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("bad", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["advertiser_id"], ["advertisers.id"], name="fk_reconciliations_advertiser_id_advertisers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliations"),
        sa.UniqueConstraint("advertiser_id", "file_hash", name="uq_reconciliations_advertiser_id_file_hash"),
    )
    op.create_index("ix_reconciliations_advertiser_id_id", "reconciliations", ["advertiser_id", "id"])
    op.create_table(
        "reconciliation_mappings",
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["advertiser_id"], ["advertisers.id"], name="fk_reconciliation_mappings_advertiser_id_advertisers"
        ),
        sa.PrimaryKeyConstraint("advertiser_id", name="pk_reconciliation_mappings"),
    )
    op.create_table(
        "reconciliation_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reconciliation_id", sa.Integer(), nullable=False),
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("row_key", sa.String(length=40), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["reconciliations.id"],
            name="fk_reconciliation_rows_reconciliation_id_reconciliations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_rows"),
        sa.UniqueConstraint("advertiser_id", "row_key", name="uq_reconciliation_rows_advertiser_id_row_key"),
    )
    op.create_index(
        "ix_reconciliation_rows_reconciliation_id_line", "reconciliation_rows", ["reconciliation_id", "line"]
    )
    op.create_table(
        "reconciliation_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reconciliation_id", sa.Integer(), nullable=False),
        sa.Column("player_id", sa.String(length=255), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("affiliate_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("difference", sa.BigInteger(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("clickback", sa.Text(), nullable=False),
        sa.Column("causes", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("lines", sa.String(length=512), nullable=False),
        sa.Column("accepted_conversion_id", sa.Integer(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["reconciliations.id"],
            name="fk_reconciliation_items_reconciliation_id_reconciliations",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_items"),
    )
    op.create_index(
        "ix_reconciliation_items_reconciliation_id_id", "reconciliation_items", ["reconciliation_id", "id"]
    )
    op.create_index(
        "ix_reconciliation_items_reconciliation_id_kind_id",
        "reconciliation_items",
        ["reconciliation_id", "kind", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_items_reconciliation_id_kind_id", table_name="reconciliation_items")
    op.drop_index("ix_reconciliation_items_reconciliation_id_id", table_name="reconciliation_items")
    op.drop_table("reconciliation_items")
    op.drop_index("ix_reconciliation_rows_reconciliation_id_line", table_name="reconciliation_rows")
    op.drop_table("reconciliation_rows")
    op.drop_table("reconciliation_mappings")
    op.drop_index("ix_reconciliations_advertiser_id_id", table_name="reconciliations")
    op.drop_table("reconciliations")
