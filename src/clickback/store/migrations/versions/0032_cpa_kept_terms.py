"""players: the CPA terms and currency each player first qualified under, so that a booked CPA is
judged by them (a rejection, a chargeback, a person's reject or approve) whatever the deal is now

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06

The terms a CPA was booked under were not kept before: the players who qualified before take the
CPA terms of the deal in force for their offer and affiliate at upgrade time (the affiliate's own
deal, else the offer's default), as the code before read them at each decision; from here on a
deal change no longer reaches them. A player whose deal in force holds no CPA terms (changed to
RevShare with `"cpa": null`) keeps NULL: judged by the deal in force, as before (which pays no
CPA: a later rejection reverses nothing, docs/commissions.md, Known limits).
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | Sequence[str] | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVERY_AFFILIATE = 0  # an offer's default deal

# The tables as they are at this revision (not store.tables, which moves on).
players = sa.table(
    "players",
    sa.column("id"),
    sa.column("advertiser_id"),
    sa.column("player_id"),
    sa.column("offer_id"),
    sa.column("affiliate_id"),
    sa.column("qualified_at"),
    sa.column("cpa_terms"),
    sa.column("cpa_currency"),
)
commissions = sa.table("commissions", sa.column("player"), sa.column("kind"))
conversions = sa.table("conversions", sa.column("advertiser_id"), sa.column("player_id"), sa.column("event"))
deals = sa.table(
    "deals", sa.column("offer_id"), sa.column("affiliate_id"), sa.column("currency"), sa.column("terms")
)

p = players.c
# A player who qualified: qualified now (also disallowed by hand), or reversed by the rules since
# (their CPA entry, or their qualified_cpa conversion past a cap, remains).
QUALIFIED = p.cpa_terms.is_(None) & (
    p.qualified_at.is_not(None)
    | sa.exists().where((commissions.c.player == p.id) & (commissions.c.kind == "cpa"))
    | sa.exists().where(
        (conversions.c.player_id == p.player_id)
        & (conversions.c.advertiser_id == p.advertiser_id)
        & (conversions.c.event == "qualified_cpa")
    )
)


def upgrade() -> None:
    op.add_column("players", sa.Column("cpa_terms", sa.Text(), nullable=True))
    op.add_column("players", sa.Column("cpa_currency", sa.String(length=3), nullable=True))
    conn = op.get_bind()
    for deal in conn.execute(sa.select(deals)).all():
        cpa = json.loads(deal.terms).get("cpa")
        if cpa is None:
            continue
        # As store/catalog.terms_to_json writes a deal of CPA terms alone.
        kept = {"cpa_terms": json.dumps({"cpa": cpa, "revshare": None}), "cpa_currency": deal.currency}
        if deal.affiliate_id == EVERY_AFFILIATE:
            # The offer's affiliates without a deal of their own.
            own = sa.select(deals.c.affiliate_id).where(deals.c.offer_id == deal.offer_id)
            whose = p.affiliate_id.is_not(None) & p.affiliate_id.not_in(own)
        else:
            whose = p.affiliate_id == deal.affiliate_id
        conn.execute(sa.update(players).where((p.offer_id == deal.offer_id) & whose & QUALIFIED).values(kept))


def downgrade() -> None:
    with op.batch_alter_table("players", schema=None) as batch_op:
        batch_op.drop_column("cpa_currency")
        batch_op.drop_column("cpa_terms")
