"""management: the audit log (who changed what, when, before and after); conversion caps per
offer and per affiliate on an offer, their counters, and over-cap conversions

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("entity_kind", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_entity_kind_entity_id_id", "audit_log", ["entity_kind", "entity_id", "id"])
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "caps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("affiliate_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("daily", sa.Integer(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["offer_id"], ["offers.id"], name="fk_caps_offer_id_offers"),
        sa.PrimaryKeyConstraint("id", name="pk_caps"),
        sa.UniqueConstraint("offer_id", "affiliate_id", "event", name="uq_caps_offer_id_affiliate_id_event"),
    )
    op.create_table(
        "cap_counters",
        sa.Column("cap_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["cap_id"], ["caps.id"], name="fk_cap_counters_cap_id_caps"),
        sa.PrimaryKeyConstraint("cap_id", "period", name="pk_cap_counters"),
    )
    op.add_column(
        "conversions", sa.Column("over_cap", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )


def downgrade() -> None:
    with op.batch_alter_table("conversions") as batch:
        batch.drop_column("over_cap")
    op.drop_table("cap_counters")
    op.drop_table("caps")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id", table_name="audit_log")
    op.drop_index("ix_audit_log_entity_kind_entity_id_id", table_name="audit_log")
    op.drop_table("audit_log")
