"""Players: an advertiser's customers, attributed for life to the click of their first postback."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core.model import Click
from clickback.store.db import Database
from clickback.store.tables import players


@dataclass(frozen=True, slots=True)
class Player:
    id: int
    click_id: str
    affiliate_id: int | None
    offer_id: int | None
    ftd_conversion_id: int | None
    qualified_at: datetime | None


async def find(db: Database, advertiser_id: int, player_id: str) -> Player | None:
    async with db.read() as conn:
        row = (await conn.execute(_select(advertiser_id, player_id))).first()
    return _player(row) if row else None


async def lock(
    db: Database,
    conn: AsyncConnection,
    advertiser_id: int,
    player_id: str,
    click_id: str,
    click: Click | None,
    now: datetime,
) -> Player:
    """The player, created on first sight, and locked: one player's postbacks apply one at a time
    on PostgreSQL (the first deposit and CPA qualification are decided per player)."""
    values = {
        "advertiser_id": advertiser_id,
        "player_id": player_id,
        "click_id": click_id,
        "first_seen_at": now,
        **attribution(click),
    }
    await conn.execute(db.insert_ignore(players).values(values))
    row = (await conn.execute(_select(advertiser_id, player_id).with_for_update())).one()
    return _player(row)


def attribution(click: Click | None) -> dict[str, object]:
    if click is None:
        return {"country": "", "sub1": ""}
    return {
        "link_id": click.link_id,
        "affiliate_id": click.affiliate_id,
        "offer_id": click.offer_id,
        "country": click.traits.country,
        "sub1": click.subs[0],
    }


async def note_event(
    conn: AsyncConnection, player: Player, event: str, conversion_id: int, at: datetime
) -> None:
    """Milestones kept on the player row: registration time, and which conversion was the FTD."""
    if event == "registration":
        await conn.execute(
            update(players)
            .where((players.c.id == player.id) & players.c.registered_at.is_(None))
            .values(registered_at=at)
        )
    elif event == "first_deposit":
        await conn.execute(
            update(players)
            .where((players.c.id == player.id) & players.c.ftd_conversion_id.is_(None))
            .values(ftd_conversion_id=conversion_id, ftd_at=at)
        )


async def attribute_late(conn: AsyncConnection, click: Click) -> list[int]:
    """Players first seen while their click was in flight, attributed now that it landed."""
    stmt = (
        update(players)
        .where((players.c.click_id == click.click_id) & players.c.affiliate_id.is_(None))
        .values(attribution(click))
        .returning(players.c.id)
    )
    return list((await conn.execute(stmt)).scalars())


def _select(advertiser_id: int, player_id: str) -> Select[Any]:
    return select(players).where(
        (players.c.advertiser_id == advertiser_id) & (players.c.player_id == player_id)
    )


def _player(r: Row[Any]) -> Player:
    return Player(r.id, r.click_id, r.affiliate_id, r.offer_id, r.ftd_conversion_id, r.qualified_at)
