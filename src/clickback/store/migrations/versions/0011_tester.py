"""the postback tester: test clicks, and their conversions and postbacks marked as such

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("clicks", "conversions", "postbacks")


def upgrade() -> None:
    # Nothing recorded so far was a test.
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("test", sa.Boolean(), server_default=sa.text("false"), nullable=False)
            )
    op.create_index(
        "ix_postbacks_test",
        "postbacks",
        ["click_id"],
        sqlite_where=sa.text("test"),
        postgresql_where=sa.text("test"),
    )


def downgrade() -> None:
    op.drop_index("ix_postbacks_test", table_name="postbacks")
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("test")
