"""reports: report_values summed by local week, for the weeks a period covers whole

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MEASURES = (
    "clicks",
    "unique_clicks",
    "bot_clicks",
    "conversions",
    "approved",
    "pending",
    "declined",
    "registrations",
    "ftds",
    "deposits",
    "qualified_cpas",
    "ftd_amount",
    "deposit_amount",
    "ngr",
    "revenue",
    "cpa_commission",
    "revshare_commission",
)


def _key(name: str, size: int | None = None) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=size) if size else sa.Integer(), nullable=False)


def upgrade() -> None:
    zero = sa.text("0")
    key = ("zone", "dimension", "week", "value", "affiliate_id", "offer_id", "basis", "currency")
    op.create_table(
        "report_weeks",
        _key("zone", 64),
        _key("dimension", 16),
        _key("week"),
        _key("value", 1024),
        _key("affiliate_id"),
        _key("offer_id"),
        _key("basis", 1),
        _key("currency", 3),
        *(sa.Column(m, sa.BigInteger(), server_default=zero, nullable=False) for m in _MEASURES),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_report_weeks")),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_report_weeks_zone_dimension_affiliate_id_week"),
        "report_weeks",
        ["zone", "dimension", "affiliate_id", "week"],
    )
    op.create_table(
        "report_week_state",
        _key("zone", 64),
        _key("week"),
        sa.Column("kept", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("zone", "week", name=op.f("pk_report_week_state")),
    )
    # Every week the values rollup holds, to be summed once over (store.weeks.sum_weeks).
    op.get_bind().execute(
        sa.text(
            "INSERT INTO report_week_state (zone, week, kept)"
            " SELECT DISTINCT zone, (day + 3) / 7, false FROM report_values"
        )
    )


def downgrade() -> None:
    op.drop_table("report_week_state")
    op.drop_table("report_weeks")
