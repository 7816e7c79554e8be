"""outbound templates: a deleted one's row is kept (deleted_at), and SQLite never hands its id to
another (AUTOINCREMENT)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every id a template ever had: deleted ones left no row, only their deliveries and audit lines.
_HIGHEST_ID = """
SELECT max(n) FROM (
    SELECT max(id) AS n FROM outbound_templates
    UNION ALL SELECT max(template_id) FROM outbound_deliveries
    UNION ALL SELECT max(entity_id) FROM audit_log WHERE entity_kind = 'outbound_template'
) AS ids
"""


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    column = sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True)
    if not _sqlite():
        # PostgreSQL's sequences never go back: only the column is new.
        op.add_column("outbound_templates", column)
        return
    with op.batch_alter_table(
        "outbound_templates", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(column)
    bind = op.get_bind()
    highest = bind.execute(sa.text(_HIGHEST_ID)).scalar() or 0
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'outbound_templates'"))
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbound_templates', :n)"), {"n": highest}
    )


def downgrade() -> None:
    # Without the column a deleted template would come back to life.
    op.execute("DELETE FROM outbound_templates WHERE deleted_at IS NOT NULL")
    kwargs = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": False}} if _sqlite() else {}
    with op.batch_alter_table("outbound_templates", **kwargs) as batch_op:  # type: ignore[arg-type]
        batch_op.drop_column("deleted_at")
