"""Users of the test personas (tests/conftest.World) and their API keys: a manager, Alice's and
Bob's affiliate users, Northstar's and Southgate's advertiser users."""

import functools
from dataclasses import dataclass
from typing import Any

from clickback.core.accounts import Role
from clickback.service.accounts import hash_password
from clickback.service.clock import utcnow
from clickback.store import accounts as rows
from tests.conftest import API_KEY, Client, World

PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    # One argon2id hash for every test user: hashing takes a tenth of a second each.
    return hash_password(PASSWORD)


@dataclass
class Keys:
    bootstrap: str
    manager: str
    alice: str
    bob: str
    northstar: str
    southgate: str

    @staticmethod
    def header(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def add_user(client: Client, login: str, role: Role, **tenant: Any) -> str:
    """The user (with PASSWORD) and a new API key of theirs."""
    node = client.node
    values = {"affiliate_id": None, "advertiser_id": None} | tenant
    node.call(
        lambda: rows.create_user(
            node.runtime.db,
            login=login,
            role=role.value,
            password_hash=password_hash(),
            now=utcnow(),
            **values,
        )
    )
    return node.call(lambda: node.runtime.accounts.new_key(login))


def make_keys(client: Client, world: World) -> Keys:
    return Keys(
        bootstrap=API_KEY,
        manager=add_user(client, "boss", Role.MANAGER),
        alice=add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"]),
        bob=add_user(client, "bob", Role.AFFILIATE, affiliate_id=world.bob["id"]),
        northstar=add_user(client, "northstar", Role.ADVERTISER, advertiser_id=world.northstar["id"]),
        southgate=add_user(client, "southgate", Role.ADVERTISER, advertiser_id=world.southgate["id"]),
    )
