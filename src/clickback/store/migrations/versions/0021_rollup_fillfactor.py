"""report rollups: a fifth of each page left free on PostgreSQL, for heap-only updates (ADR 22)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Storage parameters only: pages already written keep what they hold, and the ones written
# from now on leave the room. SQLite has no such setting.
TABLES = ("report_hours", "report_days", "report_values")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
