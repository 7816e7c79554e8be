"""reports: report_day_rows, the groups of report_days per local day (counted, not grouped)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_day_rows",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("affiliate_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.PrimaryKeyConstraint(
            "zone", "kind", "day", "affiliate_id", "offer_id", "country", name=op.f("pk_report_day_rows")
        ),
        sqlite_with_rowid=False,
    )
    # The groups report_days holds so far (store.rollups.day_marks: "a" any row, "c" click time).
    op.get_bind().execute(
        sa.text(
            "INSERT INTO report_day_rows (zone, kind, day, affiliate_id, offer_id, country)"
            " SELECT DISTINCT zone, 'a', day, affiliate_id, offer_id, country FROM report_days"
            " UNION ALL"
            " SELECT DISTINCT zone, 'c', day, affiliate_id, offer_id, country FROM report_days"
            " WHERE basis = 'c'"
        )
    )


def downgrade() -> None:
    op.drop_table("report_day_rows")
