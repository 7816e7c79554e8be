"""conversions: `confirmed`, a pixel conversion the advertiser's server confirmed or that was
approved; until then it is a claim and counts in no RevShare month. The months' kept NGR and FTDs
no longer count the claims they held

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06

The months' inputs are corrected so that what changes from now on moves them right (a claim
confirmed later is added once, not twice; one rejected was never there). What those months have
booked is corrected by the server: each month corrected here is listed in `revshare_due`, and
the settle job (every server process, once a minute; `POST /api/commissions/settle` at once)
recomputes it as a postback would, books the difference ("recomputed: pixel claims no longer
count", caused by the month's last claim), and the months after it follow as their carry-in
does. A month ended keeps the terms it was priced under, and its correcting entry is approved.
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from clickback.core.commission import period_of
from clickback.store.tables import Money, UtcDateTime

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONVERSIONS = sa.table(
    "conversions",
    sa.column("id", sa.Integer()),
    sa.column("event", sa.String()),
    sa.column("status", sa.String()),
    sa.column("test", sa.Boolean()),
    sa.column("channel", sa.String()),
    sa.column("confirmed", sa.Boolean()),
    sa.column("affiliate_id", sa.Integer()),
    sa.column("offer_id", sa.Integer()),
    sa.column("period", sa.String()),
    sa.column("event_at", UtcDateTime()),
    sa.column("deal_amount", Money()),
)
_POSTBACKS = sa.table(
    "postbacks",
    sa.column("conversion_id", sa.Integer()),
    sa.column("channel", sa.String()),
    sa.column("result", sa.String()),
)
_HISTORY = sa.table(
    "conversion_history", sa.column("conversion_id", sa.Integer()), sa.column("to_status", sa.String())
)
_DUE = sa.table(
    "revshare_due",
    sa.column("affiliate_id", sa.Integer()),
    sa.column("offer_id", sa.Integer()),
    sa.column("period", sa.String()),
    sa.column("conversion_id", sa.Integer()),
    sa.column("why", sa.String()),
)
WHY = "recomputed: pixel claims no longer count"
_MONTHS = sa.table(
    "revshare_periods",
    sa.column("affiliate_id", sa.Integer()),
    sa.column("offer_id", sa.Integer()),
    sa.column("period", sa.String()),
    sa.column("ngr", Money()),
    sa.column("ftds", sa.Integer()),
)


def upgrade() -> None:
    # Added in place: SQLite's batch mode would copy the table, which other tables' rows point at.
    op.add_column(
        "conversions", sa.Column("confirmed", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_table(
        "revshare_due",
        sa.Column("affiliate_id", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("conversion_id", sa.Integer(), nullable=False),
        sa.Column("why", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("affiliate_id", "offer_id", "period"),
    )
    bind = op.get_bind()
    c = _CONVERSIONS.c
    pixel = c.channel == "pixel"
    # Confirmed: an S2S postback of it was taken (service.postbacks: Recording.confirmed_by_server),
    # or it was approved once (a pixel is recorded pending: anyone else approved it).
    by_server = sa.exists().where(
        (_POSTBACKS.c.conversion_id == c.id)
        & (_POSTBACKS.c.channel == "s2s")
        & _POSTBACKS.c.result.in_(("accepted", "updated"))
    )
    approved = sa.exists().where((_HISTORY.c.conversion_id == c.id) & (_HISTORY.c.to_status == "approved"))
    bind.execute(sa.update(_CONVERSIONS).where(pixel & (by_server | approved)).values(confirmed=True))
    held, last = _claims_by_month(bind)
    m = _MONTHS.c
    for (affiliate_id, offer_id, period), (ngr, ftds) in sorted(held.items()):
        month = (m.affiliate_id == affiliate_id) & (m.offer_id == offer_id) & (m.period == period)
        found = bind.execute(sa.select(m.ngr, m.ftds).where(month)).first()
        if found is not None:  # a month never booked counts its inputs from scratch when it is
            bind.execute(sa.update(_MONTHS).where(month).values(ngr=found.ngr - ngr, ftds=found.ftds - ftds))
            # Its booked RevShare is corrected by the server's settle job (the docstring).
            due = {"affiliate_id": affiliate_id, "offer_id": offer_id, "period": period}
            cause = last[affiliate_id, offer_id, period]
            bind.execute(sa.insert(_DUE).values(**due, conversion_id=cause, why=WHY))


def downgrade() -> None:
    # The months' inputs count the claims again, as the code before this counts them (it would
    # take a claim rejected later out of a month that no longer held it). What the months booked
    # since stays: the code before recomputes them as their conversions change. Dropped in place
    # (SQLite 3.35+ and PostgreSQL), as it was added.
    bind = op.get_bind()
    held, _ = _claims_by_month(bind)
    m = _MONTHS.c
    for (affiliate_id, offer_id, period), (ngr, ftds) in sorted(held.items()):
        month = (m.affiliate_id == affiliate_id) & (m.offer_id == offer_id) & (m.period == period)
        found = bind.execute(sa.select(m.ngr, m.ftds).where(month)).first()
        if found is not None:
            bind.execute(sa.update(_MONTHS).where(month).values(ngr=found.ngr + ngr, ftds=found.ftds + ftds))
    op.drop_table("revshare_due")
    op.execute("ALTER TABLE conversions DROP COLUMN confirmed")


def _claims_by_month(
    bind: sa.Connection,
) -> tuple[dict[tuple[int, int, str], tuple[Decimal, int]], dict[tuple[int, int, str], int]]:
    """What the unconfirmed claims add to their months under the code before this
    (core.commission.month_share then), by month; and each month's last claim."""
    c = _CONVERSIONS.c
    claims = bind.execute(
        sa.select(c.id, c.event, c.period, c.event_at, c.deal_amount, c.affiliate_id, c.offer_id).where(
            (c.channel == "pixel")
            & ~c.confirmed
            & ~c.test
            & c.status.in_(("pending", "approved"))
            & c.affiliate_id.is_not(None)
            & c.offer_id.is_not(None)
            & c.event.in_(("net_revenue", "first_deposit"))
        )
    ).all()
    held: dict[tuple[int, int, str], tuple[Decimal, int]] = {}
    last: dict[tuple[int, int, str], int] = {}  # the month's last claim: its correction's cause
    for row in claims:
        if row.event == "net_revenue" and (row.period is None or row.deal_amount is None):
            continue
        key = (
            row.affiliate_id,
            row.offer_id,
            row.period if row.event == "net_revenue" else period_of(row.event_at),
        )
        ngr, ftds = held.get(key, (Decimal(0), 0))
        held[key] = (ngr + row.deal_amount, ftds) if row.event == "net_revenue" else (ngr, ftds + 1)
        last[key] = max(last.get(key, 0), row.id)
    return held, last
