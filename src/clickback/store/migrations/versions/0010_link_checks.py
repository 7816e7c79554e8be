"""link checks: each check of an offer's URL, and when each offer is next due

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
# 0007 is being written beside this one: whoever merges second re-chains it.
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("final_url", sa.String(length=2048), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("hint", sa.String(length=300), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("redirects", sa.Text(), nullable=False),
        sa.Column("error", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], name=op.f("fk_link_checks_offer_id_offers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_checks")),
    )
    with op.batch_alter_table("link_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_checks_offer_id_id"), ["offer_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_link_checks_checked_at"), ["checked_at"], unique=False)
    op.create_table(
        "link_check_due",
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], name=op.f("fk_link_check_due_offer_id_offers")),
        sa.PrimaryKeyConstraint("offer_id", name=op.f("pk_link_check_due")),
    )


def downgrade() -> None:
    op.drop_table("link_check_due")
    with op.batch_alter_table("link_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_checks_checked_at"))
        batch_op.drop_index(batch_op.f("ix_link_checks_offer_id_id"))
    op.drop_table("link_checks")
