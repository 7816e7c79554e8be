"""ledger: the RevShare terms each month was priced under, so that a month that has ended keeps
them when a late report or a carry-in change recomputes it after the deal changed

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for the months booked before: their terms were not kept (the deal in force is used).
    op.add_column("revshare_periods", sa.Column("terms", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("revshare_periods", schema=None) as batch_op:
        batch_op.drop_column("terms")
