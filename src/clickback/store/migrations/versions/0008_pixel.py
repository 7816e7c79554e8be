"""the tracking pixel: offers' pixel switch and code, how each conversion and postback arrived

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pixel", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch_op.add_column(sa.Column("pixel_code", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_offers_pixel_code"), ["pixel_code"])
    # Everything recorded so far came by S2S postback.
    for table in ("conversions", "postbacks"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("channel", sa.String(length=8), server_default="s2s", nullable=False)
            )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pixel_offer_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_column("pixel_offer_id")
    for table in ("postbacks", "conversions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("channel")
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_offers_pixel_code"), type_="unique")
        batch_op.drop_column("pixel_code")
        batch_op.drop_column("pixel")
