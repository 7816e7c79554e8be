"""visitors: `unique_click`, the click that the visitor's unique_at is the time of

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06

A click was unique when the upsert of its visitor's row handed back its own millisecond. Two
processes' batches holding clicks of one visitor on one link in the same millisecond (a double
click, a prefetch and the click, a bot) each found their own time there, and both were counted
unique. The winner's click ID now moves with unique_at, and only that click is unique
(store/clicks.py).

Rows already there keep a null: the click they were unique for is stored already (its visitor's
row is written in the same transaction), and a replayed batch skips stored clicks.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: added in place on both databases (no table copy, no rewrite
    # of a table with a row per visitor and link), and a process still running the code before
    # this, which leaves it out of its INSERT, goes on writing.
    op.add_column("visitors", sa.Column("unique_click", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Dropped in place (SQLite 3.35+ and PostgreSQL), as it was added.
    op.execute("ALTER TABLE visitors DROP COLUMN unique_click")
