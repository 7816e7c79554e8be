"""conversions: the duplicate key includes the test flag, so that a transaction ID tried out with
the postback tester is free for the real postback, and a real one never blocks a test

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = ["advertiser_id", "dedupe_key", "dedupe_event"]
# Test conversions whose key a real conversion holds too (the old key cannot hold both).
_DELETE_SHADOWED_HISTORY = """
DELETE FROM conversion_history WHERE conversion_id IN (
  SELECT t.id FROM conversions t JOIN conversions r
    ON r.advertiser_id = t.advertiser_id AND r.dedupe_key = t.dedupe_key
    AND r.dedupe_event = t.dedupe_event AND NOT r.test
  WHERE t.test
)
"""
_DELETE_SHADOWED = """
DELETE FROM conversions WHERE id IN (
  SELECT t.id FROM conversions t JOIN conversions r
    ON r.advertiser_id = t.advertiser_id AND r.dedupe_key = t.dedupe_key
    AND r.dedupe_event = t.dedupe_event AND NOT r.test
  WHERE t.test
)
"""


def upgrade() -> None:
    # SQLite recreates the table (batch mode); PostgreSQL drops and adds the constraint.
    with op.batch_alter_table("conversions") as batch_op:
        batch_op.drop_constraint("uq_conversions_advertiser_id_dedupe_key_dedupe_event", type_="unique")
        batch_op.create_unique_constraint(
            "uq_conversions_advertiser_id_dedupe_key_dedupe_event_test", [*_KEY, "test"]
        )


def downgrade() -> None:
    # Without the flag in the key, a test conversion sharing a real one's key has to go: test
    # conversions count nowhere (ADR 13), the real one stays.
    op.execute(_DELETE_SHADOWED_HISTORY)
    op.execute(_DELETE_SHADOWED)
    with op.batch_alter_table("conversions") as batch_op:
        batch_op.drop_constraint("uq_conversions_advertiser_id_dedupe_key_dedupe_event_test", type_="unique")
        batch_op.create_unique_constraint("uq_conversions_advertiser_id_dedupe_key_dedupe_event", _KEY)
