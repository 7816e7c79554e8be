"""postback security: token rotation with an overlap, an IP allowlist and HMAC signing per
advertiser, the signatures seen (replays refused); tokens masked in the postback log kept so far

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from clickback.core.redact import SECRET_NAMES
from clickback.store.logmask import LOG, mask_logged_tokens

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("advertisers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_token_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("allowed_ips", sa.String(length=2000), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("signing_secret", sa.String(length=64), nullable=True))
    op.create_table(
        "postback_signatures",
        sa.Column("advertiser_id", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["advertiser_id"], ["advertisers.id"]),
        sa.PrimaryKeyConstraint("advertiser_id", "signature"),
    )
    with op.batch_alter_table("postback_signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_postback_signatures_seen_at"), ["seen_at"], unique=False)
    _mask_logged_tokens()


def _mask_logged_tokens() -> None:
    """The postback log kept tokens as they came until now: masked as new entries are."""
    maybe = sa.or_(
        *(LOG.c[col].ilike(f"%{name}%") for name in sorted(SECRET_NAMES) for col in ("query", "body"))
    )
    mask_logged_tokens(op.get_bind(), maybe)


def downgrade() -> None:
    with op.batch_alter_table("postback_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postback_signatures_seen_at"))
    op.drop_table("postback_signatures")
    with op.batch_alter_table("advertisers", schema=None) as batch_op:
        batch_op.drop_column("signing_secret")
        batch_op.drop_column("allowed_ips")
        batch_op.drop_column("previous_token_until")
        batch_op.drop_column("previous_token")
