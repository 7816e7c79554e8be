"""outbound postbacks: templates, the outbox (deliveries), every attempt, paused destinations; a
reason kept with a conversion's status change made by hand

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("affiliate_id", sa.Integer(), nullable=False),
        sa.Column("conversion_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_deliveries")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_outbound_deliveries_delivery_id")),
    )
    with op.batch_alter_table("outbound_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbound_deliveries_conversion_id"), ["conversion_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outbound_deliveries_destination_state"), ["destination", "state"], unique=False
        )
        batch_op.create_index(
            "ix_outbound_deliveries_due",
            ["next_at"],
            unique=False,
            sqlite_where=sa.text("state = 'waiting'"),
            postgresql_where=sa.text("state = 'waiting'"),
        )
        batch_op.create_index(batch_op.f("ix_outbound_deliveries_state_id"), ["state", "id"], unique=False)

    op.create_table(
        "outbound_destinations",
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_outbound_destinations")),
    )
    op.create_table(
        "outbound_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("error", sa.String(length=512), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery"],
            ["outbound_deliveries.id"],
            name=op.f("fk_outbound_attempts_delivery_outbound_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_attempts")),
    )
    with op.batch_alter_table("outbound_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbound_attempts_delivery"), ["delivery"], unique=False)

    op.create_table(
        "outbound_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("affiliate_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("body_format", sa.String(length=8), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("statuses", sa.Text(), nullable=False),
        sa.Column("status_map", sa.Text(), nullable=False),
        sa.Column("click_id_sub", sa.String(length=8), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["affiliate_id"], ["affiliates.id"], name=op.f("fk_outbound_templates_affiliate_id_affiliates")
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_outbound_templates_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_templates")),
    )
    with op.batch_alter_table("outbound_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbound_templates_affiliate_id"), ["affiliate_id"], unique=False
        )

    with op.batch_alter_table("conversion_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversion_history", schema=None) as batch_op:
        batch_op.drop_column("reason")

    with op.batch_alter_table("outbound_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_templates_affiliate_id"))

    op.drop_table("outbound_templates")
    with op.batch_alter_table("outbound_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_attempts_delivery"))

    op.drop_table("outbound_attempts")
    op.drop_table("outbound_destinations")
    with op.batch_alter_table("outbound_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_deliveries_state_id"))
        batch_op.drop_index(
            "ix_outbound_deliveries_due",
            sqlite_where=sa.text("state = 'waiting'"),
            postgresql_where=sa.text("state = 'waiting'"),
        )
        batch_op.drop_index(batch_op.f("ix_outbound_deliveries_destination_state"))
        batch_op.drop_index(batch_op.f("ix_outbound_deliveries_conversion_id"))

    op.drop_table("outbound_deliveries")
