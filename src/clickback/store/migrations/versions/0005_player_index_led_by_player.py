"""conversions' player index led by player_id, not advertiser_id

The dedupe lookup of every postback (advertiser_id, dedupe_key, dedupe_event) has a unique index
of its own, but before PostgreSQL's first ANALYZE of a new table (autovacuum's, a minute or more
after the first rows) its generic plan took the index on (advertiser_id, player_id) instead and
read every conversion of the advertiser: 2.7 ms a lookup with 10,000 conversions, half of the
database's time for a postback. Led by player_id, that index serves only player lookups.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_conversions_advertiser_id_player_id", table_name="conversions")
    op.create_index("ix_conversions_player_id_advertiser_id", "conversions", ["player_id", "advertiser_id"])


def downgrade() -> None:
    op.drop_index("ix_conversions_player_id_advertiser_id", table_name="conversions")
    op.create_index("ix_conversions_advertiser_id_player_id", "conversions", ["advertiser_id", "player_id"])
