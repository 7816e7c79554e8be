"""clicks the database refused, kept apart instead of blocking their batch

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantined_clicks",
        sa.Column("click_id", sa.String(length=64), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("click", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("click_id", name=op.f("pk_quarantined_clicks")),
    )


def downgrade() -> None:
    op.drop_table("quarantined_clicks")
