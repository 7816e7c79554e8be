"""outbound deliveries: `held`, a delivery queued behind an earlier one of its conversion to its
destination, and the partial index that finds the next of a queue

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06

Deliveries already stored stay as they are: those waiting are sent as before, and a new one of a
conversion that has one waiting is held behind it. Downgraded, held rows become waiting (the code
before this knows no other state to send): nothing is lost, their order is no longer kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | Sequence[str] | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outbound_deliveries_held",
        "outbound_deliveries",
        ["conversion_id", "destination", "id"],
        unique=False,
        sqlite_where=sa.text("state = 'held'"),
        postgresql_where=sa.text("state = 'held'"),
    )


def downgrade() -> None:
    op.execute("UPDATE outbound_deliveries SET state = 'waiting' WHERE state = 'held'")
    op.drop_index("ix_outbound_deliveries_held", table_name="outbound_deliveries")
