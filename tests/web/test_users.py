"""Users managed through the API (/api/users) and the pages (/users, /users/{id}), everyone's own
password and keys (/account): the same use cases as `clickback user …`, each change in the audit
log under who made it. And the report builder's zone: the signed-in person's own."""

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from clickback.core.accounts import Role
from tests.conftest import Client, World
from tests.web.personas import PASSWORD, Keys, add_user, sign_in


def audit(client: Client, **params: Any) -> list[dict[str, Any]]:
    return client.items("/audit", entity_kind="user", **params)


def call(client: Client, key: str, method: str, path: str, **kwargs: Any) -> Any:
    return client.http.request(method, "/api" + path, headers=Keys.header(key), **kwargs)


def test_a_manager_manages_a_user_through_the_api_and_every_change_is_audited(
    client: Client, world: World
) -> None:
    boss = add_user(client, "boss", Role.MANAGER)
    made = call(
        client,
        boss,
        "POST",
        "/users",
        json={"login": "Carol", "role": "affiliate", "affiliate_id": world.alice["id"]},
    )
    assert made.status_code == 201, made.text
    carol = made.json()
    assert carol["login"] == "carol" and carol["affiliate_id"] == world.alice["id"] and carol["keys"] == 0
    assert len(carol["password"]) >= 12
    browser = sign_in(client, "carol", carol["password"])  # the password returned signs in
    assert [u["login"] for u in call(client, boss, "GET", "/users").json()] == ["boss", "carol"]

    user = f"/users/{carol['id']}"
    key = call(client, boss, "POST", f"{user}/keys").json()["key"]
    assert call(client, key, "GET", "/links").status_code == 200  # the key has Carol's access
    changed = call(client, boss, "PATCH", user, json={"zone": "Europe/Berlin", "active": False})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["zone"], changed.json()["active"], changed.json()["keys"]) == (
        "Europe/Berlin",
        False,
        1,
    )
    assert call(client, key, "GET", "/links").status_code == 401  # deactivated: refused
    assert browser.get("/").status_code == 303  # and her session ended
    call(client, boss, "PATCH", user, json={"active": True})
    assert call(client, key, "GET", "/links").status_code == 200
    given = call(client, boss, "POST", f"{user}/password", json={"password": "a" * 12})
    assert given.json() == {"password": None}
    assert call(client, boss, "DELETE", f"{user}/keys").json() == {"revoked": 1}
    assert call(client, key, "GET", "/links").status_code == 401

    prefix = key.split("_")[1]
    lines = [(e["actor"], e["action"], e["before"], e["after"]) for e in audit(client, entity_id=carol["id"])]
    assert lines == [
        ("boss", "revoke_keys", {"keys": [prefix]}, {"keys": []}),
        ("boss", "password", {"password_hash": "(hidden)"}, {"password_hash": "(hidden)"}),
        ("boss", "activate", {"active": False}, {"active": True}),
        ("boss", "deactivate", {"active": True}, {"active": False}),
        ("boss", "zone", {"zone": "UTC"}, {"zone": "Europe/Berlin"}),
        ("boss", "add_key", {"key": None}, {"key": prefix}),
        ("boss", "create", None, lines[-1][3]),
    ]
    created = lines[-1][3]
    assert created["login"] == "carol" and created["password_hash"] == "(hidden)"
    assert carol["password"] not in str(audit(client)) and key not in str(audit(client))


# What the rules refuse: the status and the reason said.
REFUSED: list[tuple[dict[str, Any], int, str]] = [
    ({"login": "boss", "role": "manager"}, 422, "the login boss is taken"),
    ({"login": "x", "role": "affiliate"}, 422, "an affiliate user names its affiliate"),
    ({"login": "x", "role": "manager", "zone": "Mars/Base"}, 422, "no IANA time zone"),
    ({"login": "-x", "role": "manager"}, 422, "a login is 1-64 lower-case letters"),
    ({"login": "x", "role": "manager", "password": "short"}, 422, "at least 12 characters"),
    ({"login": "x", "role": "affiliate", "affiliate_id": 999}, 404, "does not exist"),
]


def test_a_user_the_rules_refuse_is_a_4xx_with_the_reason(client: Client) -> None:
    add_user(client, "boss", Role.MANAGER)
    for body, status, says in REFUSED:
        response = client.http.post("/api/users", json=body, headers=client.auth)
        assert response.status_code == status and says in response.text, (body, response.text)
    assert [u["login"] for u in client.api("GET", "/users")] == ["boss"]


def test_the_last_active_manager_cannot_be_deactivated_from_the_api_or_the_page(client: Client) -> None:
    add_user(client, "boss", Role.MANAGER)
    boss_id = client.api("GET", "/users")[0]["id"]
    refused = client.http.patch(f"/api/users/{boss_id}", json={"active": False}, headers=client.auth)
    assert refused.status_code == 422 and "the last active manager" in refused.text

    page = sign_in(client, "boss")
    himself = page.post(f"/users/{boss_id}", {"action": "deactivate"})
    assert himself.status_code == 400 and "the last active manager cannot be deactivated" in himself.text
    assert client.api("GET", f"/users/{boss_id}")["active"] is True
    add_user(client, "ann", Role.MANAGER)
    assert page.post(f"/users/{boss_id}", {"action": "deactivate"}).status_code == 303
    assert page.get("/users").status_code == 303  # signed out: deactivated
    assert [e["action"] for e in audit(client, entity_id=boss_id)][:1] == ["deactivate"]


def secret_on(html: str) -> str:
    found = re.search(r"<code data-secret>([^<]+)</code>", html)
    assert found, html
    return found.group(1)


def test_a_manager_adds_a_user_on_the_page_and_sees_the_password_once(client: Client, world: World) -> None:
    add_user(client, "boss", Role.MANAGER)
    boss = sign_in(client, "boss")
    added = boss.post(
        "/users", {"login": "dave", "role": "affiliate", "tenant": f"affiliate:{world.bob['id']}"}
    )
    assert added.status_code == 200 and 'role="status"' in added.text
    password = secret_on(added.text)
    sign_in(client, "dave", password)
    assert password not in boss.get("/users").text  # shown once
    dave = next(u for u in client.api("GET", "/users") if u["login"] == "dave")
    assert dave["affiliate_id"] == world.bob["id"]

    # Refused: said in the form, what was typed kept (the password never written back).
    taken = boss.post(
        "/users", {"login": "dave", "role": "manager", "zone": "Asia/Tokyo", "password": "p" * 12}
    )
    assert taken.status_code == 400 and "the login dave is taken." in taken.text
    assert 'value="dave"' in taken.text and 'value="Asia/Tokyo"' in taken.text and "p" * 12 not in taken.text
    wrong = boss.post(
        "/users", {"login": "erin", "role": "advertiser", "tenant": f"affiliate:{world.bob['id']}"}
    )
    assert wrong.status_code == 400 and "tenant: choose the advertiser the user belongs to" in wrong.text
    hostile = boss.post("/users", {"login": "<b>x", "role": "manager"})
    assert hostile.status_code == 400 and "&lt;b&gt;x" in hostile.text and "<b>x" not in hostile.text
    # Without the session's CSRF token (another site posting the form): nothing is added.
    forged = boss.post("/users", {"login": "mallory", "role": "manager"}, csrf=False)
    assert forged.status_code == 403
    assert [u["login"] for u in client.api("GET", "/users")] == ["boss", "dave"]
    [line] = audit(client, action="create", actor="boss")
    assert line["after"]["login"] == "dave" and line["user_id"] is not None

    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    alice = sign_in(client, "alice")
    assert alice.get("/users").status_code == 403
    assert alice.post("/users", {"login": "eve", "role": "manager"}).status_code == 403
    assert alice.get(f"/users/{dave['id']}").status_code == 403


def test_a_manager_changes_a_user_on_their_page(client: Client, world: World) -> None:
    add_user(client, "boss", Role.MANAGER)
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    alice_id = next(u["id"] for u in client.api("GET", "/users") if u["login"] == "alice")
    boss = sign_in(client, "boss")
    page = f"/users/{alice_id}"
    assert boss.get(page).status_code == 200
    assert boss.get("/users/999999").status_code == 404

    bad = boss.post(page, {"action": "zone", "zone": "Mars/Base"})
    assert bad.status_code == 400 and "&#39;Mars/Base&#39; is no IANA time zone" in bad.text
    assert boss.post(page, {"action": "zone", "zone": "Asia/Tokyo"}).status_code == 303
    made = boss.post(page, {"action": "key"})
    key = secret_on(made.text)
    assert call(client, key, "GET", "/links").status_code == 200
    reset = boss.post(page, {"action": "password"})
    sign_in(client, "alice", secret_on(reset.text))
    assert boss.post(page, {"action": "revoke"}).status_code == 303
    assert call(client, key, "GET", "/links").status_code == 401
    assert boss.post(page, {"action": "fly"}).status_code == 400
    assert boss.post(page, {"action": "deactivate"}, csrf=False).status_code == 403

    shown = boss.get(page).text
    assert "Asia/Tokyo" in shown and key not in shown
    actions = [e["action"] for e in audit(client, entity_id=alice_id, actor="boss")]
    assert actions == ["revoke_keys", "password", "add_key", "zone"]
    # The page shows the same history.
    for action in actions:
        assert f"<td>{action}</td>" in shown


def test_a_user_changes_their_own_password_and_keys_on_their_page(client: Client, world: World) -> None:
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    add_user(client, "bob", Role.AFFILIATE, affiliate_id=world.bob["id"])
    alice = sign_in(client, "alice")
    assert alice.get("/account").status_code == 200

    key = secret_on(alice.post("/account", {"action": "key"}).text)
    assert call(client, key, "GET", "/links").status_code == 200
    assert key not in alice.get("/account").text
    newest = client.node.call(lambda: client.node.runtime.accounts.keys("alice"))[0]
    assert newest["prefix"] == key.split("_")[1]
    # Bob's key is not hers to revoke, whatever the form says.
    bobs = client.node.call(lambda: client.node.runtime.accounts.keys("bob"))[0]
    refused = alice.post("/account", {"action": "revoke", "key": str(bobs["id"])})
    assert refused.status_code == 400 and "no key of yours" in refused.text
    assert alice.post("/account", {"action": "revoke", "key": str(newest["id"])}).status_code == 303
    assert call(client, key, "GET", "/links").status_code == 401

    wrong = alice.post(
        "/account", {"action": "password", "current": "nope", "new": "n" * 12, "repeat": "n" * 12}
    )
    assert wrong.status_code == 400 and "the current password is not right." in wrong.text
    differ = alice.post(
        "/account", {"action": "password", "current": PASSWORD, "new": "n" * 12, "repeat": "m" * 12}
    )
    assert differ.status_code == 400 and "differ" in differ.text
    short = alice.post("/account", {"action": "password", "current": PASSWORD, "new": "n", "repeat": "n"})
    assert short.status_code == 400 and "12 to 256 characters" in short.text
    forged = alice.post(
        "/account",
        {"action": "password", "current": PASSWORD, "new": "n" * 12, "repeat": "n" * 12},
        csrf=False,
    )
    assert forged.status_code == 403
    done = alice.post(
        "/account", {"action": "password", "current": PASSWORD, "new": "n" * 12, "repeat": "n" * 12}
    )
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert alice.get("/account").status_code == 303  # every session of hers ended
    sign_in(client, "alice", "n" * 12)

    alice_id = next(u["id"] for u in client.api("GET", "/users") if u["login"] == "alice")
    lines = [(e["actor"], e["action"]) for e in audit(client, entity_id=alice_id)]
    assert lines[:3] == [("alice", "password"), ("alice", "revoke_keys"), ("alice", "add_key")]


def test_wrong_current_passwords_count_as_failed_sign_ins(client: Client, world: World) -> None:
    # A session alone was a way to guess its password at hashing speed, never limited.
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    alice = sign_in(client, "alice")
    change = {"action": "password", "new": "n" * 12, "repeat": "n" * 12}
    for _ in range(5):
        wrong = alice.post("/account", {**change, "current": "nope"})
        assert wrong.status_code == 400 and "the current password is not right." in wrong.text
    limited = alice.post("/account", {**change, "current": PASSWORD})  # no hash is checked
    assert limited.status_code == 400 and "too many wrong passwords" in limited.text


def test_wrong_current_passwords_sent_at_once_are_checked_five_times_at_most(
    client: Client, world: World
) -> None:
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    alice = sign_in(client, "alice")
    change = {"action": "password", "new": "n" * 12, "repeat": "n" * 12, "csrf": alice.csrf}

    async def at_once(n: int) -> list[str]:
        headers = {"cookie": alice.cookie}
        async with httpx.AsyncClient(base_url=client.node.base_url, headers=headers, timeout=30) as browser:
            sent = [browser.post("/account", data={**change, "current": f"nope {i}"}) for i in range(n)]
            return [r.text for r in await asyncio.gather(*sent)]

    answers = asyncio.run(at_once(12))
    assert sum("the current password is not right." in a for a in answers) == 5
    assert sum("too many wrong passwords" in a for a in answers) == 7
    limited = alice.post("/account", {**change, "current": PASSWORD})
    assert limited.status_code == 400 and "too many wrong passwords" in limited.text


def test_the_report_builder_is_in_the_persons_own_zone_unless_the_url_names_one(
    client: Client, world: World
) -> None:
    add_user(client, "berlin", Role.AFFILIATE, affiliate_id=world.alice["id"], zone="Europe/Berlin")
    add_user(client, "boss", Role.MANAGER)
    berlin = sign_in(client, "berlin")
    own = berlin.get("/reports")
    assert own.status_code == 200 and '<input name="zone" value="Europe/Berlin"' in own.text
    named = berlin.get("/reports", zone="Asia/Tokyo")
    assert '<input name="zone" value="Asia/Tokyo"' in named.text
    wrong = berlin.get("/reports", zone="Mars/Base")
    assert "Europe/Berlin is shown" in wrong.text and '<input name="zone" value="Europe/Berlin"' in wrong.text
    assert '<input name="zone" value="UTC"' in sign_in(client, "boss").get("/reports").text


def test_the_users_list_says_when_each_last_signed_in(client: Client, world: World) -> None:
    add_user(client, "boss", Role.MANAGER)
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    before = {u["login"]: u["last_sign_in_at"] for u in client.api("GET", "/users")}
    assert before == {"alice": None, "boss": None}

    boss = sign_in(client, "boss")
    after = {u["login"]: u["last_sign_in_at"] for u in client.api("GET", "/users")}
    assert after["alice"] is None and after["boss"] is not None
    # A failed sign-in is no sign-in.
    assert client.http.post("/login", data={"login": "alice", "password": "wrong"}).status_code != 303
    assert {u["login"]: u["last_sign_in_at"] for u in client.api("GET", "/users")}["alice"] is None
    # On the page: boss's row has two of today's times (signed in, added), alice's one (added).
    page, today = boss.get("/users").text, datetime.now(UTC).strftime("%Y-%m-%d")
    rows = {m[1]: m[0] for m in re.finditer(r"<tr><td><a href=\"/users/\d+\">(\w+)</a>.*?</tr>", page)}
    assert (rows["boss"].count(today), rows["alice"].count(today)) == (2, 1)
