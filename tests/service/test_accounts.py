"""Users and API keys on the real database (SQLite and PostgreSQL)."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from clickback.core.accounts import Principal, Role, digest
from clickback.service.accounts import AccountError
from clickback.service.clock import utcnow
from clickback.store import accounts as rows
from clickback.store import admin
from clickback.store.tables import users
from tests.conftest import Node
from tests.web.personas import PASSWORD


def add(node: Node, login: str, role: Role, **kwargs: Any) -> tuple[dict[str, Any], str | None]:
    return node.call(lambda: node.runtime.accounts.add_user(login, role, **kwargs))


def test_a_user_gets_a_generated_password_stored_only_as_an_argon2id_hash(clean: Node) -> None:
    user, password = add(clean, " Boss@Example.com", Role.MANAGER)

    assert user["login"] == "boss@example.com"
    assert password is not None and len(password) >= 20
    stored = str(user["password_hash"])
    assert stored.startswith("$argon2id$") and password not in stored
    # argon2-cffi's defaults (the test personas' hash is a cheaper one: tests/web/personas.py).
    assert "$m=65536,t=3,p=4$" in stored
    given, none = add(clean, "second", Role.MANAGER, password="a given password")
    assert none is None and str(given["password_hash"]).startswith("$argon2id$")


def test_a_login_is_taken_once(clean: Node) -> None:
    add(clean, "boss", Role.MANAGER)
    with pytest.raises(AccountError, match="taken"):
        add(clean, "BOSS", Role.MANAGER)


def test_tenants_must_exist_and_match_the_role(clean: Node) -> None:
    affiliate = clean.call(lambda: admin.create_affiliate(clean.runtime.db, "Alice", utcnow()))
    with pytest.raises(AccountError, match="names its affiliate"):
        add(clean, "alice", Role.AFFILIATE)
    with pytest.raises(AccountError, match="no affiliate or advertiser"):
        add(clean, "alice", Role.MANAGER, affiliate_id=affiliate["id"])
    with pytest.raises(admin.NotFound):
        add(clean, "alice", Role.AFFILIATE, affiliate_id=affiliate["id"] + 1)
    with pytest.raises(AccountError, match="characters"):
        add(clean, "alice", Role.AFFILIATE, affiliate_id=affiliate["id"], password="short")
    user, _ = add(clean, "alice", Role.AFFILIATE, affiliate_id=affiliate["id"])
    assert user["affiliate_id"] == affiliate["id"] and user["advertiser_id"] is None


def test_the_database_itself_refuses_a_user_of_two_tenants(clean: Node) -> None:
    db = clean.runtime.db
    affiliate = clean.call(lambda: admin.create_affiliate(db, "Alice", utcnow()))
    user, _ = add(clean, "alice", Role.AFFILIATE, affiliate_id=affiliate["id"])

    async def make_manager() -> None:
        async with db.write() as conn:
            await conn.execute(update(users).where(users.c.id == user["id"]).values(role="manager"))

    with pytest.raises(IntegrityError):
        clean.call(make_manager)


def test_an_api_key_names_its_user_until_revoked_or_the_user_is_deactivated(clean: Node) -> None:
    accounts = clean.runtime.accounts
    affiliate = clean.call(lambda: admin.create_affiliate(clean.runtime.db, "Alice", utcnow()))
    user, _ = add(clean, "alice", Role.AFFILIATE, affiliate_id=affiliate["id"])
    key = clean.call(lambda: accounts.new_key("Alice"))
    other = clean.call(lambda: accounts.new_key("alice"))

    assert clean.call(lambda: accounts.by_key(key)) == Principal(
        Role.AFFILIATE, "alice", user_id=user["id"], affiliate_id=affiliate["id"]
    )
    # Only the hash is stored, and a key one character off is nobody's.
    found = clean.call(lambda: rows.key_by_prefix(clean.runtime.db, key[4:16]))
    assert found is not None and found["key_hash"] == digest(key) and key not in str(found)
    assert found["last_used_at"] is not None
    assert clean.call(lambda: accounts.by_key(key[:-1] + ("A" if key[-1] != "A" else "B"))) is None
    assert clean.call(lambda: accounts.by_key("cbk_" + key[4:16] + "_" + "A" * 43)) is None

    clean.call(lambda: rows.set_active(clean.runtime.db, user["id"], False, utcnow()))
    assert clean.call(lambda: accounts.by_key(other)) is None
    clean.call(lambda: rows.set_active(clean.runtime.db, user["id"], True, utcnow()))
    assert clean.call(lambda: accounts.by_key(other)) is not None
    clean.call(lambda: rows.revoke_keys(clean.runtime.db, user["id"], utcnow()))
    assert clean.call(lambda: accounts.by_key(key)) is None
    assert clean.call(lambda: accounts.by_key(other)) is None


def test_a_key_for_nobody_is_refused(clean: Node) -> None:
    with pytest.raises(AccountError, match="no user"):
        clean.call(lambda: clean.runtime.accounts.new_key("ghost"))


def test_two_managers_deactivated_at_once_leave_one_active(clean: Node) -> None:
    """The last-manager rule holds against a race: both changes read the managers locked."""
    ann, _ = add(clean, "ann", Role.MANAGER, password=PASSWORD)
    ben, _ = add(clean, "ben", Role.MANAGER, password=PASSWORD)
    accounts = clean.runtime.accounts

    async def both() -> list[object]:
        return await asyncio.gather(
            accounts.set_active(ann["id"], False),
            accounts.set_active(ben["id"], False),
            return_exceptions=True,
        )

    results = clean.call(both)
    assert sorted(type(r).__name__ for r in results) == ["AccountError", "NoneType"], results
    assert [u["active"] for u in clean.call(accounts.users)].count(True) == 1
