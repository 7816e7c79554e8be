"""Users, their API keys, browser sessions and failed logins: the rows of service/accounts.py."""

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from clickback.store import admin
from clickback.store.db import Database
from clickback.store.tables import api_keys, login_failures, sessions, users


class LoginTaken(ValueError):
    pass


# What a key or session lookup reads of its user.
_USER = (
    users.c.id.label("user_id"),
    users.c.login,
    users.c.role,
    users.c.affiliate_id,
    users.c.advertiser_id,
    users.c.active,
    users.c.zone,
)


async def create_user(
    db: Database,
    *,
    login: str,
    role: str,
    affiliate_id: int | None,
    advertiser_id: int | None,
    password_hash: str,
    now: datetime,
    zone: str = "UTC",
) -> dict[str, Any]:
    if affiliate_id is not None:
        await admin.get(db, "affiliates", affiliate_id)
    if advertiser_id is not None:
        await admin.get(db, "advertisers", advertiser_id)
    values = {
        "login": login,
        "role": role,
        "affiliate_id": affiliate_id,
        "advertiser_id": advertiser_id,
        "password_hash": password_hash,
        "active": True,
        "created_at": now,
        "zone": zone,
    }
    try:
        async with db.write() as conn:
            row = (await conn.execute(users.insert().values(values).returning(*users.c))).one()
    except IntegrityError:
        raise LoginTaken(f"the login {login} is taken") from None
    return dict(row._mapping)


async def user_by_login(db: Database, login: str) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.login == login))).first()
    return None if row is None else dict(row._mapping)


async def set_password(db: Database, user_id: int, password_hash: str) -> None:
    """A new password ends the user's sessions: a browser signed in with the old one is out."""
    async with db.write() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
        await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))


async def list_users(db: Database) -> list[dict[str, Any]]:
    """Every user with how many keys they hold unrevoked, by login."""
    keys = (
        select(func.count())
        .where(api_keys.c.user_id == users.c.id, api_keys.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    query = select(
        users.c.id,
        users.c.login,
        users.c.role,
        users.c.affiliate_id,
        users.c.advertiser_id,
        users.c.active,
        users.c.zone,
        users.c.created_at,
        keys.label("keys"),
    ).order_by(users.c.login)
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def add_key(db: Database, user_id: int, prefix: str, key_hash: str, now: datetime) -> None:
    async with db.write() as conn:
        await conn.execute(
            api_keys.insert().values(user_id=user_id, prefix=prefix, key_hash=key_hash, created_at=now)
        )


async def key_by_prefix(db: Database, prefix: str) -> dict[str, Any] | None:
    """The key of that prefix with its user, revoked or not (the caller decides)."""
    query = (
        select(api_keys.c.id, api_keys.c.key_hash, api_keys.c.last_used_at, api_keys.c.revoked_at, *_USER)
        .join(users, users.c.id == api_keys.c.user_id)
        .where(api_keys.c.prefix == prefix)
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else dict(row._mapping)


async def key_used(db: Database, key_id: int, now: datetime) -> None:
    async with db.write() as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))


async def revoke_keys(db: Database, user_id: int, now: datetime) -> int:
    async with db.write() as conn:
        done = await conn.execute(
            update(api_keys)
            .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return done.rowcount


async def set_zone(db: Database, user_id: int, zone: str) -> None:
    async with db.write() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(zone=zone))


async def set_active(db: Database, user_id: int, active: bool) -> None:
    """Deactivating a user also ends their sessions: their keys stop working at their next use."""
    async with db.write() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(active=active))
        if not active:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))


async def create_session(
    db: Database, *, user_id: int, token_hash: str, csrf_token: str, now: datetime, expires_at: datetime
) -> None:
    async with db.write() as conn:
        # Expired sessions go as new ones come: no task of its own to keep the table small.
        await conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
        await conn.execute(
            sessions.insert().values(
                user_id=user_id,
                token_hash=token_hash,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=expires_at,
            )
        )


async def session_by_token(db: Database, token_hash: str, now: datetime) -> dict[str, Any] | None:
    """The unexpired session of that token with its user."""
    query = (
        select(sessions.c.csrf_token, sessions.c.expires_at, *_USER)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.token_hash == token_hash, sessions.c.expires_at > now)
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else dict(row._mapping)


async def end_session(db: Database, token_hash: str) -> None:
    async with db.write() as conn:
        await conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))


async def failures(
    db: Database, login: str, ip: str, since: datetime
) -> tuple[list[datetime], list[datetime]]:
    """The failed logins since `since`: of this login, and from this address."""
    c = login_failures.c
    async with db.read() as conn:
        of_login = (
            await conn.execute(select(c.failed_at).where(c.login == login, c.failed_at > since))
        ).all()
        of_ip = (await conn.execute(select(c.failed_at).where(c.ip == ip, c.failed_at > since))).all()
    return [r.failed_at for r in of_login], [r.failed_at for r in of_ip]


async def record_failure(db: Database, login: str, ip: str, now: datetime, forget_before: datetime) -> None:
    async with db.write() as conn:
        await conn.execute(delete(login_failures).where(login_failures.c.failed_at <= forget_before))
        await conn.execute(login_failures.insert().values(login=login, ip=ip, failed_at=now))


async def clear_failures(db: Database, login: str) -> None:
    """A login that succeeded starts afresh (its address's failures still count)."""
    async with db.write() as conn:
        await conn.execute(delete(login_failures).where(login_failures.c.login == login))
