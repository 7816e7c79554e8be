"""an offer's attribution window (days, NULL: none); what looked wrong in an accepted conversion

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attribution_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warnings", sa.String(length=512), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_column("warnings")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_column("attribution_days")
