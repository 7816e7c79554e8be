"""Accounts' use cases: adding users and keys, telling who an API key or a session cookie is,
signing in (argon2id, rate limited) and out. The rules are core/accounts.py's."""

import asyncio
import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from clickback.core.accounts import (
    MAX_KEY_LEN,
    MAX_LOGIN_LEN,
    MAX_PASSWORD_LEN,
    MAX_TOKEN_LEN,
    Principal,
    Role,
    digest,
    key_prefix,
    login_problem,
    new_key,
    new_password,
    new_token,
    normal_login,
    password_problem,
    tenant_problem,
    zone_problem,
)
from clickback.core.audit import SYSTEM, Actor
from clickback.store import accounts as rows
from clickback.store.admin import NotFound
from clickback.store.db import Database

if TYPE_CHECKING:
    from argon2 import PasswordHasher

# last_used_at is written when it is older than this: one write a minute a key, not one a call.
KEY_USE_RESOLUTION = timedelta(minutes=1)


class AccountError(ValueError):
    """A user or key that cannot be made as asked: the message says what to change."""


@functools.cache
def _hasher() -> "PasswordHasher":
    # Imported on first use: the click and postback workers never hash a password.
    from argon2 import PasswordHasher

    # argon2-cffi's defaults (argon2id, RFC 9106's low-memory profile: 64 MiB, 3 passes).
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def password_matches(stored: str | None, given: str) -> bool:
    """Whether `given` is the password of the hash `stored`. None (no such login) is verified
    against a hash of nothing's password: the refusal then takes as long as a wrong password's,
    and does not tell which logins exist."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(stored or _dummy(), given) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy() -> str:
    return hash_password(new_password())


@dataclass(frozen=True)
class SignedIn:
    token: str  # the cookie's value: shown to this browser once, stored as its hash
    csrf: str
    expires_at: datetime


@dataclass(frozen=True)
class Refused:
    pass


@dataclass(frozen=True)
class Limited:
    retry_after: timedelta


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str


def _principal(row: dict[str, Any]) -> Principal:
    return Principal(
        Role(row["role"]),
        row["login"],
        user_id=row["user_id"],
        affiliate_id=row["affiliate_id"],
        advertiser_id=row["advertiser_id"],
        zone=row["zone"],
    )


class Accounts:
    def __init__(self, db: Database, clock: Callable[[], datetime], session_lifetime: timedelta) -> None:
        self._db = db
        self._clock = clock
        self._lifetime = session_lifetime

    async def add_user(
        self,
        login: str,
        role: Role,
        *,
        affiliate_id: int | None = None,
        advertiser_id: int | None = None,
        password: str | None = None,
        zone: str = "UTC",
        by: Actor = SYSTEM,
    ) -> tuple[dict[str, Any], str | None]:
        """The user, and the password generated for it (None when one was given)."""
        login = normal_login(login)
        problem = (
            login_problem(login)
            or tenant_problem(role, affiliate_id, advertiser_id)
            or (password_problem(password) if password is not None else None)
            or zone_problem(zone)
        )
        if problem:
            raise AccountError(problem)
        generated = new_password() if password is None else None
        hashed = await asyncio.to_thread(hash_password, password or generated or "")
        try:
            row = await rows.create_user(
                self._db,
                login=login,
                role=role.value,
                affiliate_id=affiliate_id,
                advertiser_id=advertiser_id,
                password_hash=hashed,
                now=self._clock(),
                zone=zone,
                by=by,
            )
        except rows.LoginTaken as exc:
            raise AccountError(str(exc)) from None
        return row, generated

    async def _user(self, user: str | int) -> dict[str, Any]:
        """The user of a login (the command line's way) or an id (the API's and the pages')."""
        if isinstance(user, int):
            found = await rows.user_by_id(self._db, user)
            if found is None:
                raise NotFound(f"user {user} does not exist")
            return found
        found = await rows.user_by_login(self._db, normal_login(user))
        if found is None:
            raise AccountError(f"no user has the login {normal_login(user)}")
        return found

    async def user(self, user_id: int) -> dict[str, Any]:
        """The user of that id (NotFound otherwise), without their password's hash."""
        found = await self._user(user_id)
        return {k: v for k, v in found.items() if k != "password_hash"}

    async def new_key(self, user: str | int, by: Actor = SYSTEM) -> str:
        """A new API key of the user, to show once: only its hash is kept."""
        found = await self._user(user)
        key, prefix = new_key()
        await rows.add_key(self._db, found["id"], prefix, digest(key), self._clock(), by)
        return key

    async def keys(self, user: str | int) -> list[dict[str, Any]]:
        return await rows.keys_of(self._db, (await self._user(user))["id"])

    async def revoke_keys(self, user: str | int, by: Actor = SYSTEM, key_id: int | None = None) -> int:
        """Every key of the user (or the one of `key_id`) stops working at once; how many were
        revoked."""
        return await rows.revoke_keys(self._db, (await self._user(user))["id"], self._clock(), by, key_id)

    async def set_zone(self, user: str | int, zone: str, by: Actor = SYSTEM) -> None:
        """The zone of the user's reports when a request names none."""
        if problem := zone_problem(zone):
            raise AccountError(problem)
        await rows.set_zone(self._db, (await self._user(user))["id"], zone, self._clock(), by)

    async def set_active(self, user: str | int, active: bool, by: Actor = SYSTEM) -> None:
        """A deactivated user cannot sign in, their sessions end and their keys stop working.
        The last active manager cannot be deactivated (core.accounts.deactivation_problem)."""
        try:
            await rows.set_active(self._db, (await self._user(user))["id"], active, self._clock(), by)
        except rows.Refused as exc:
            raise AccountError(str(exc)) from None

    async def new_password(
        self, user: str | int, password: str | None = None, by: Actor = SYSTEM
    ) -> str | None:
        """A new password (generated and returned when none is given); the user's sessions end."""
        found = await self._user(user)
        if password is not None and (problem := password_problem(password)):
            raise AccountError(problem)
        generated = new_password() if password is None else None
        hashed = await asyncio.to_thread(hash_password, password or generated or "")
        await rows.set_password(self._db, found["id"], hashed, self._clock(), by)
        return generated

    async def change_own_password(self, user_id: int, current: str, new: str, by: Actor, ip: str) -> None:
        """A user's own new password, given the current one (a browser left signed in is not
        enough to take the account over); every session of theirs ends, this one too. A wrong
        current password counts as a failed sign-in, and the same limit applies: a session alone
        was a way to guess the password at hashing speed."""
        found = await self._user(user_id)
        # The new one's length first: it tells nothing, and spares a verification.
        if problem := password_problem(new):
            raise AccountError(problem)
        attempt = await rows.begin_attempt(self._db, str(found["login"]), ip, self._clock())
        if isinstance(attempt, timedelta):
            raise AccountError("too many wrong passwords: try again in a few minutes")
        matches = await asyncio.to_thread(
            password_matches, found["password_hash"], current[:MAX_PASSWORD_LEN]
        )
        if not matches:
            raise AccountError("the current password is not right")
        await rows.attempt_succeeded(self._db, attempt)
        hashed = await asyncio.to_thread(hash_password, new)
        await rows.set_password(self._db, user_id, hashed, self._clock(), by)

    async def users(self) -> list[dict[str, Any]]:
        return await rows.list_users(self._db)

    async def by_key(self, key: str) -> Principal | None:
        """Whose key it is; None for a key unknown, revoked, or of a user deactivated."""
        prefix = key_prefix(key[: MAX_KEY_LEN + 1])
        if prefix is None:
            return None
        row = await rows.key_by_prefix(self._db, prefix)
        if row is None or not hmac.compare_digest(row["key_hash"], digest(key)):
            return None
        if row["revoked_at"] is not None or not row["active"]:
            return None
        now = self._clock()
        if row["last_used_at"] is None or now - row["last_used_at"] >= KEY_USE_RESOLUTION:
            await rows.key_used(self._db, row["id"], now)
        return _principal(row)

    async def by_session(self, token: str) -> Session | None:
        if not token or len(token) > MAX_TOKEN_LEN:
            return None
        row = await rows.session_by_token(self._db, digest(token), self._clock())
        if row is None or not row["active"]:
            return None
        return Session(_principal(row), row["csrf_token"])

    async def sign_in(self, login: str, password: str, ip: str) -> SignedIn | Refused | Limited:
        """A session for the right password; refused otherwise; limited after too many
        failures of this login or from this address (core.accounts.login_wait), before any hash
        is checked. Each attempt counts as a failure before its hash is checked, until it
        succeeds: attempts made at once cannot all pass the limit."""
        now = self._clock()
        login = normal_login(login)
        attempt = await rows.begin_attempt(self._db, login[:MAX_LOGIN_LEN], ip, now)
        if isinstance(attempt, timedelta):
            return Limited(attempt)
        user = await rows.user_by_login(self._db, login) if not login_problem(login) else None
        stored = user["password_hash"] if user is not None else None
        # In a thread: a verification takes a tenth of a second or more (ADR 16).
        matches = await asyncio.to_thread(password_matches, stored, password[:MAX_PASSWORD_LEN])
        if user is None or not matches or not user["active"] or len(password) > MAX_PASSWORD_LEN:
            return Refused()
        await rows.attempt_succeeded(self._db, attempt, login)
        token, csrf = new_token(), new_token()
        expires = now + self._lifetime
        await rows.create_session(
            self._db,
            user_id=user["id"],
            token_hash=digest(token),
            csrf_token=csrf,
            now=now,
            expires_at=expires,
        )
        return SignedIn(token, csrf, expires)

    async def sign_out(self, token: str) -> None:
        if token and len(token) <= MAX_TOKEN_LEN:
            await rows.end_session(self._db, digest(token))
