"""Users of the test personas (tests/conftest.World) and their API keys: a manager, Alice's and
Bob's affiliate users, Northstar's and Southgate's advertiser users."""

import functools
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher

from clickback.core.accounts import Role
from clickback.service.clock import utcnow
from clickback.store import accounts as rows
from tests.conftest import API_KEY, Client, World

PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    # One argon2id hash for every test user, of the cheapest parameters: a hash names its own,
    # and verifying one of clickback's (64 MiB, 3 passes) takes a fifth of a second of CPU at each
    # of the suite's sign-ins. Users made through clickback itself have the real parameters
    # (tests/service/test_accounts.py), and sign in with them (tests/web/test_users.py).
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)


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


@dataclass
class Browser:
    """A signed-in browser at the HTTP level: its session cookie, and its CSRF token for forms."""

    client: Client
    cookie: str
    csrf: str

    def get(self, path: str, **params: Any) -> Any:
        return self.client.http.get(path, params=params, headers={"cookie": self.cookie})

    def post(self, path: str, form: dict[str, str], csrf: bool = True) -> Any:
        data = form | ({"csrf": self.csrf} if csrf else {})
        return self.client.http.post(path, data=data, headers={"cookie": self.cookie})


def sign_in(client: Client, login: str, password: str = PASSWORD) -> Browser:
    from clickback.service.accounts import SignedIn

    node = client.node
    signed = node.call(lambda: node.runtime.accounts.sign_in(login, password, "127.0.0.1"))
    assert isinstance(signed, SignedIn), signed
    return Browser(client, f"cb_session={signed.token}", signed.csrf)
