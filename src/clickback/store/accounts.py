"""Users, their API keys, browser sessions and failed logins: the rows of service/accounts.py.

Every change of a user or their keys is recorded in the audit log in its own transaction (ADR
18), under whoever made it: a manager, the user themselves, or the command line."""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from clickback.core import audit as trail
from clickback.core.accounts import LOGIN_WINDOW, Role, deactivation_problem, login_wait
from clickback.core.audit import Actor
from clickback.store import admin, audit
from clickback.store.db import Database
from clickback.store.tables import api_keys, login_failures, sessions, users


class LoginTaken(ValueError):
    pass


class Refused(ValueError):
    """A change the rules refuse (core.accounts): the message says why."""


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
    by: Actor = trail.SYSTEM,
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
            row = dict((await conn.execute(users.insert().values(values).returning(*users.c))).one()._mapping)
            done = trail.change(by, trail.Kind.USER, row["id"], "create", None, row)
            await audit.record(conn, [done], now)
    except IntegrityError:
        raise LoginTaken(f"the login {login} is taken") from None
    return row


async def user_by_id(db: Database, user_id: int) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return None if row is None else dict(row._mapping)


async def _locked(conn: AsyncConnection, user_id: int) -> dict[str, Any]:
    """The user's row, locked for the change (FOR UPDATE on PostgreSQL; SQLite's writer holds
    the database): two changes each record the other's result as their "before"."""
    row = (await conn.execute(select(users).where(users.c.id == user_id).with_for_update())).first()
    if row is None:
        raise admin.NotFound(f"user {user_id} does not exist")
    return dict(row._mapping)


async def _changed(
    conn: AsyncConnection, by: Actor, user_id: int, action: str, values: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    before = await _locked(conn, user_id)
    stmt = update(users).where(users.c.id == user_id).values(**values).returning(*users.c)
    after = dict((await conn.execute(stmt)).one()._mapping)
    await audit.record(conn, [trail.change(by, trail.Kind.USER, user_id, action, before, after)], now)
    return after


async def user_by_login(db: Database, login: str) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.login == login))).first()
    return None if row is None else dict(row._mapping)


async def set_password(
    db: Database, user_id: int, password_hash: str, now: datetime, by: Actor = trail.SYSTEM
) -> None:
    """A new password ends the user's sessions: a browser signed in with the old one is out."""
    async with db.write() as conn:
        await _changed(conn, by, user_id, "password", {"password_hash": password_hash}, now)
        await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))


async def list_users(db: Database) -> list[dict[str, Any]]:
    """Every user with how many keys they hold unrevoked, by login."""
    keys = (
        select(func.count())
        .where(api_keys.c.user_id == users.c.id, api_keys.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    # When one of their keys was last used (to the minute: KEY_USE_RESOLUTION).
    last_used = (
        select(func.max(api_keys.c.last_used_at)).where(api_keys.c.user_id == users.c.id).scalar_subquery()
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
        users.c.last_sign_in_at,
        keys.label("keys"),
        last_used.label("last_key_use"),
    ).order_by(users.c.login)
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def add_key(
    db: Database, user_id: int, prefix: str, key_hash: str, now: datetime, by: Actor = trail.SYSTEM
) -> None:
    """A new key; the audit log keeps its public prefix (the key itself is shown once, never kept)."""
    async with db.write() as conn:
        await _locked(conn, user_id)
        await conn.execute(
            api_keys.insert().values(user_id=user_id, prefix=prefix, key_hash=key_hash, created_at=now)
        )
        done = trail.change(by, trail.Kind.USER, user_id, "add_key", {"key": None}, {"key": prefix})
        await audit.record(conn, [done], now)


async def keys_of(db: Database, user_id: int) -> list[dict[str, Any]]:
    """The user's keys, newest first, revoked ones too (never their hash)."""
    k = api_keys.c
    query = (
        select(k.id, k.prefix, k.created_at, k.last_used_at, k.revoked_at)
        .where(k.user_id == user_id)
        .order_by(k.id.desc())
    )
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


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


async def revoke_keys(
    db: Database, user_id: int, now: datetime, by: Actor = trail.SYSTEM, key_id: int | None = None
) -> int:
    """Every key of the user not yet revoked (or only `key_id` of them); how many were. The
    audit log names the keys by their public prefixes."""
    k = api_keys.c
    mine = [k.user_id == user_id, k.revoked_at.is_(None)] + ([k.id == key_id] if key_id is not None else [])
    async with db.write() as conn:
        await _locked(conn, user_id)
        live = list(
            (
                await conn.execute(select(k.prefix).where(k.user_id == user_id, k.revoked_at.is_(None)))
            ).scalars()
        )
        done = await conn.execute(update(api_keys).where(*mine).values(revoked_at=now).returning(k.prefix))
        gone = set(done.scalars())
        left = [p for p in live if p not in gone]
        change = trail.change(by, trail.Kind.USER, user_id, "revoke_keys", {"keys": live}, {"keys": left})
        await audit.record(conn, [change], now)
    return len(gone)


async def set_zone(db: Database, user_id: int, zone: str, now: datetime, by: Actor = trail.SYSTEM) -> None:
    async with db.write() as conn:
        await _changed(conn, by, user_id, "zone", {"zone": zone}, now)


async def set_active(
    db: Database, user_id: int, active: bool, now: datetime, by: Actor = trail.SYSTEM
) -> None:
    """Deactivating a user also ends their sessions: their keys stop working at their next use.
    Never the last active manager (core.accounts.deactivation_problem)."""
    async with db.write() as conn:
        managers: set[int] = set()
        if not active:
            # Every active manager locked first, in id order: two managers deactivated at once
            # cannot both see the other still active (PostgreSQL rechecks a locked row's
            # condition once its lock is released), and take their locks in the same order
            # (no deadlock). SQLite's writer holds the whole database anyway.
            query = (
                select(users.c.id)
                .where(users.c.role == Role.MANAGER.value, users.c.active)
                .order_by(users.c.id)
                .with_for_update()
            )
            managers = set((await conn.execute(query)).scalars())
        user = await _locked(conn, user_id)
        problem = deactivation_problem(Role(user["role"]), len(managers - {user_id}))
        if not active and user["active"] and problem:
            raise Refused(problem)
        await _changed(conn, by, user_id, "activate" if active else "deactivate", {"active": active}, now)
        if not active:
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))


async def create_session(
    db: Database, *, user_id: int, token_hash: str, csrf_token: str, now: datetime, expires_at: datetime
) -> None:
    async with db.write() as conn:
        # Expired sessions go as new ones come: no task of its own to keep the table small.
        await conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
        await conn.execute(update(users).where(users.c.id == user_id).values(last_sign_in_at=now))
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


async def begin_attempt(db: Database, login: str, ip: str, now: datetime) -> int | timedelta:
    """A password about to be checked for `login` from `ip`, counted as a failed login at once
    (the id of its row, for `attempt_succeeded`); or, past the limit of failures of the login
    or the address (core.accounts.login_wait), how long to wait, nothing recorded.

    The count and the row are one transaction that no other attempt's runs beside: checking a
    password takes a tenth of a second, and attempts counted only once checked all passed the
    count while in flight (12 guesses sent at once were all checked). PostgreSQL: a lock on the
    table, taken by every process of every server (reads of it go on); SQLite: the write lock."""
    c = login_failures.c
    async with db.write() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("LOCK TABLE login_failures IN SHARE ROW EXCLUSIVE MODE"))
        await conn.execute(delete(login_failures).where(c.failed_at <= now - LOGIN_WINDOW))
        of_login = (await conn.execute(select(c.failed_at).where(c.login == login))).scalars().all()
        of_ip = (await conn.execute(select(c.failed_at).where(c.ip == ip))).scalars().all()
        waits = [w for w in (login_wait(of_login, now), login_wait(of_ip, now)) if w is not None]
        if waits:
            return max(waits)
        insert = login_failures.insert().values(login=login, ip=ip, failed_at=now).returning(c.id)
        return int((await conn.execute(insert)).scalar_one())


async def attempt_succeeded(db: Database, attempt_id: int, login: str | None = None) -> None:
    """The password was right: the attempt is no failure. With `login`, a sign-in: the login
    starts afresh (its address's failures under other logins still count)."""
    c = login_failures.c
    async with db.write() as conn:
        await conn.execute(delete(login_failures).where(c.id == attempt_id))
        if login is not None:
            await conn.execute(delete(login_failures).where(c.login == login))
