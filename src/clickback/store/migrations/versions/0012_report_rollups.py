"""reports: rollups at three grains (UTC hours, local days of kept zones, days x one value
dimension) in place of the hourly click_stats and conversion_stats; conversions keep their
click's source, landing page, OS and browser

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

"""

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = (
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
)
_MONEY = ("ftd_amount", "deposit_amount", "ngr", "revenue", "cpa_commission", "revshare_commission")
_CLICK_COLUMNS = ("source", "landing_page", "os", "browser")


def _rollup(name: str, *key: sa.Column) -> None:  # type: ignore[type-arg]
    zero = sa.text("0")
    op.create_table(
        name,
        *key,
        *(sa.Column(m, sa.BigInteger(), server_default=zero, nullable=False) for m in _COUNTS + _MONEY),
        sa.PrimaryKeyConstraint(*(c.name for c in key), name=op.f(f"pk_{name}")),
        sqlite_with_rowid=False,
    )


def _key(name: str, size: int | None = None) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=size) if size else sa.Integer(), nullable=False)


def _owners_basis(*middle: sa.Column) -> list[sa.Column]:  # type: ignore[type-arg]
    return [_key("affiliate_id"), _key("offer_id"), *middle, _key("basis", 1), _key("currency", 3)]


def upgrade() -> None:
    _rollup("report_hours", _key("hour"), *_owners_basis(_key("country", 2)))
    op.create_index(op.f("ix_report_hours_affiliate_id_hour"), "report_hours", ["affiliate_id", "hour"])
    op.create_index(op.f("ix_report_hours_offer_id_hour"), "report_hours", ["offer_id", "hour"])
    _rollup("report_days", _key("zone", 64), _key("day"), *_owners_basis(_key("country", 2)))
    op.create_index(
        op.f("ix_report_days_zone_affiliate_id_day"), "report_days", ["zone", "affiliate_id", "day"]
    )
    _rollup(
        "report_values",
        _key("zone", 64),
        _key("dimension", 16),
        _key("day"),
        _key("value", 1024),
        *_owners_basis(),
    )
    op.create_index(
        op.f("ix_report_values_zone_dimension_affiliate_id_day"),
        "report_values",
        ["zone", "dimension", "affiliate_id", "day"],
    )
    op.create_table(
        "report_rollups",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_report_rollups")),
    )
    op.create_table(
        "report_currencies",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_report_currencies")),
    )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        for name, size in zip(_CLICK_COLUMNS, (255, 1024, 50, 50), strict=True):
            batch_op.add_column(sa.Column(name, sa.String(length=size), server_default="", nullable=False))
    bind = op.get_bind()
    # Conversions recorded so far take their click's values.
    columns = ", ".join(_CLICK_COLUMNS)
    bind.execute(
        sa.text(
            f"UPDATE conversions SET ({columns}) = "  # noqa: S608 - our own column names
            f"(SELECT {columns} FROM clicks WHERE clicks.click_id = conversions.click_id) "
            "WHERE EXISTS (SELECT 1 FROM clicks WHERE clicks.click_id = conversions.click_id)"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO report_currencies (currency) SELECT currency FROM conversions"
            " WHERE currency IS NOT NULL UNION SELECT currency FROM commissions"
        )
    )
    # The hourly rollup counts from the next whole hour of a database that holds anything (the
    # hours before are answered from the raw tables), from the beginning on an empty one.
    used = bind.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM clicks) OR EXISTS (SELECT 1 FROM conversions)")
    ).scalar()
    since = (int(time.time()) // 3600 + 1) * 3600 if used else 0
    bind.execute(
        sa.text("INSERT INTO report_rollups (name, since) VALUES ('hours', :since)"), {"since": since}
    )
    op.drop_table("click_stats")
    op.drop_table("conversion_stats")


def downgrade() -> None:
    # The old counters come back empty: what they counted is in the raw tables.
    key = ("hour", "link_id", "sub1", "country", "device_type")
    for name, extra, measures in (
        ("click_stats", ("is_bot",), ("clicks", "unique_clicks")),
        ("conversion_stats", ("event", "status", "currency"), ("conversions", "payout")),
    ):
        op.create_table(
            name,
            sa.Column("hour", sa.Integer(), nullable=False),
            sa.Column("link_id", sa.Integer(), nullable=False),
            sa.Column("sub1", sa.String(length=255), nullable=False),
            sa.Column("country", sa.String(length=2), nullable=False),
            sa.Column("device_type", sa.String(length=16), nullable=False),
            *(
                sa.Column(
                    c,
                    sa.Boolean()
                    if c == "is_bot"
                    else sa.String(length=64 if c == "event" else 16 if c == "status" else 3),
                    nullable=False,
                )
                for c in extra
            ),
            sa.Column("affiliate_id", sa.Integer(), nullable=False),
            sa.Column("offer_id", sa.Integer(), nullable=False),
            *(sa.Column(m, sa.BigInteger(), nullable=False) for m in measures),
            sa.PrimaryKeyConstraint(*key, *extra, name=op.f(f"pk_{name}")),
        )
        op.create_index(op.f(f"ix_{name}_affiliate_id_hour"), name, ["affiliate_id", "hour"])
        op.create_index(op.f(f"ix_{name}_offer_id_hour"), name, ["offer_id", "hour"])
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        for name in reversed(_CLICK_COLUMNS):
            batch_op.drop_column(name)
    for table in ("report_currencies", "report_rollups", "report_values", "report_days", "report_hours"):
        op.drop_table(table)
