"""Signing in and out in a browser: argon2id passwords, server-side sessions in a cookie, CSRF
tokens on every form, failed sign-ins limited per login and per address (in the database)."""

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request

from clickback.core.accounts import LOGIN_WINDOW, Role
from clickback.service.accounts import Accounts, Limited, Refused, SignedIn
from clickback.store.tables import sessions
from clickback.web.login import person_ip
from tests.conftest import Client, Node, fresh_schema, serve, settings_for
from tests.web.personas import PASSWORD, add_user


@pytest.fixture
def boss(client: Client) -> str:
    add_user(client, "boss", Role.MANAGER)
    return "boss"


def form_token(response: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found, response.text
    return found.group(1)


def sign_in(client: Client, login: str, password: str) -> httpx.Response:
    form = client.http.get("/login")
    return client.http.post("/login", data={"csrf": form_token(form), "login": login, "password": password})


def set_cookie(response: httpx.Response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))


def test_the_sign_in_form_sets_its_csrf_cookie_and_the_pages_policy(client: Client) -> None:
    form = client.http.get("/login")

    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    cookie = set_cookie(form, "cb_login_csrf")
    assert f"cb_login_csrf={form_token(form)};" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/login" in cookie
    assert "Secure" not in cookie  # the public URL is http: a Secure cookie would never come back
    assert "form-action 'self'" in form.headers["content-security-policy"]
    assert form.headers["cache-control"] == "no-store"
    assert client.http.get("/").status_code == 303


def test_signing_in_and_out(client: Client, boss: str) -> None:
    signed = sign_in(client, "Boss", PASSWORD)

    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = set_cookie(signed, "cb_session")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    token = client.http.cookies["cb_session"]
    stored = client.node.call(lambda: _session_hashes(client.node))
    assert len(stored) == 1 and token not in stored[0]  # only its hash is kept
    home = client.http.get("/")
    assert home.status_code == 200 and "Signed in as <strong>boss</strong> (manager)" in home.text
    assert client.http.get("/login").status_code == 303  # already signed in

    # Signing out needs the session's own token: a form posted from elsewhere is refused.
    refused = client.http.post("/logout", data={"csrf": "x" * 43})
    assert refused.status_code == 403 and client.http.get("/").status_code == 200
    assert client.http.post("/logout").status_code == 403
    out = client.http.post("/logout", data={"csrf": form_token(home)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.node.call(lambda: _session_hashes(client.node)) == []
    # The old cookie, sent again, is nobody's.
    again = client.http.get("/", headers={"cookie": f"cb_session={token}"})
    assert again.status_code == 303 and again.headers["location"] == "/login"


async def _session_hashes(node: Node) -> list[str]:
    async with node.runtime.db.read() as conn:
        return [r.token_hash for r in (await conn.execute(select(sessions.c.token_hash))).all()]


def test_a_sign_in_form_without_its_cookie_is_refused(client: Client, boss: str) -> None:
    token = form_token(client.http.get("/login"))
    client.http.cookies.clear()
    posted = client.http.post("/login", data={"csrf": token, "login": "boss", "password": PASSWORD})
    assert posted.status_code == 403 and "came from elsewhere" in posted.text
    client.http.get("/login")
    other = client.http.post("/login", data={"csrf": token, "login": "boss", "password": PASSWORD})
    assert other.status_code == 403
    assert "cb_session" not in client.http.cookies


@pytest.mark.parametrize(
    ("sent_by", "status"), [("same-site", 403), ("cross-site", 403), ("same-origin", 303)]
)
def test_a_sign_in_form_another_origin_posted_is_refused_with_its_cookie(
    client: Client, boss: str, sent_by: str, status: int
) -> None:
    # Another origin of the same site can set the form's cookie (cookies know no port; a sibling
    # subdomain sets them for the parent domain): the browser's Sec-Fetch-Site tells it apart.
    token = form_token(client.http.get("/login"))
    posted = client.http.post(
        "/login",
        data={"csrf": token, "login": "boss", "password": PASSWORD},
        headers={"sec-fetch-site": sent_by},
    )
    assert posted.status_code == status
    assert ("cb_session" in client.http.cookies) is (status == 303)


def test_signing_out_without_a_session_leaves_the_cookies_alone(client: Client, boss: str) -> None:
    # Another site's form comes without the session cookie (SameSite=Lax): deleting it in the
    # reply signed the person out.
    out = client.http.post("/logout", headers={"cookie": "cb_login_csrf=x"})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert out.headers.get_list("set-cookie") == []


def test_wrong_passwords_and_unknown_logins_read_alike(client: Client, boss: str) -> None:
    wrong = sign_in(client, "boss", PASSWORD + "!")
    nobody = sign_in(client, "nobody", PASSWORD)
    assert wrong.status_code == nobody.status_code == 401
    assert "Wrong login or password." in wrong.text and "Wrong login or password." in nobody.text
    assert "cb_session" not in client.http.cookies


def test_what_is_echoed_is_escaped_and_no_form_is_a_500(client: Client) -> None:
    echoed = sign_in(client, '"><script>alert(1)</script>', "x")
    assert echoed.status_code == 401
    assert "<script>" not in echoed.text and "&lt;script&gt;" in echoed.text
    headers = {"content-type": "application/x-www-form-urlencoded"}
    too_big = client.http.post("/login", content=b"login=" + b"a" * 30000, headers=headers)
    not_utf8 = client.http.post("/login", content=b"login=\xff\xfe", headers=headers)
    many = client.http.post("/login", content=b"&".join(b"f%d=1" % n for n in range(50)), headers=headers)
    form = client.http.get("/login")
    long_values = client.http.post(
        "/login", data={"csrf": form_token(form), "login": "b" * 300, "password": "p" * 3000}
    )
    assert [too_big.status_code, not_utf8.status_code, many.status_code] == [400, 400, 400]
    assert long_values.status_code == 401
    assert client.http.post("/logout", content=b"\xff" * 100, headers=headers).status_code == 303


def test_five_failures_limit_the_login_with_retry_after(client: Client, boss: str) -> None:
    for _ in range(5):
        assert sign_in(client, "boss", "wrong password").status_code == 401
    limited = sign_in(client, "boss", PASSWORD)  # the right password too: no hash is checked
    assert limited.status_code == 429
    assert 0 < int(limited.headers["retry-after"]) <= LOGIN_WINDOW.total_seconds()
    assert "Too many failed sign-ins" in limited.text
    assert "cb_session" not in client.http.cookies


def test_guesses_sent_at_once_are_checked_five_times_at_most(client: Client, boss: str) -> None:
    # Right passwords use none of the address's allowance: six in a row, then five wrong ones.
    for _ in range(6):
        assert sign_in(client, "boss", PASSWORD).status_code == 303
        client.http.cookies.clear()  # signed out: the form again
    form = client.http.get("/login")
    token = form_token(form)

    async def guess(browser: httpx.AsyncClient, password: str) -> int:
        data = {"csrf": token, "login": "boss", "password": password}
        return (await browser.post("/login", data=data)).status_code

    async def at_once(passwords: list[str]) -> list[int]:
        async with httpx.AsyncClient(
            base_url=client.node.base_url, cookies={"cb_login_csrf": token}, timeout=30
        ) as browser:
            return list(await asyncio.gather(*(guess(browser, p) for p in passwords)))

    # Each checked in a thread for a tenth of a second: all twelve are in flight together.
    statuses = asyncio.run(at_once([f"wrong {n}" for n in range(12)]))
    assert sorted(statuses) == [401] * 5 + [429] * 7
    assert sign_in(client, "boss", PASSWORD).status_code == 429  # the right one too, while limited


def test_failures_count_per_login_and_per_address_in_the_database(clean: Node) -> None:
    client = Client(clean)
    add_user(client, "boss", Role.MANAGER)
    add_user(client, "other", Role.MANAGER)
    now = [datetime.now(UTC)]
    # A second process's view of the same database, on a clock of the test's.
    accounts = Accounts(clean.runtime.db, lambda: now[0], timedelta(hours=12))

    def attempt(login: str, password: str, ip: str) -> object:
        return clean.call(lambda: accounts.sign_in(login, password, ip))

    for n in range(5):
        assert isinstance(attempt("boss", "wrong", f"198.51.100.{n}"), Refused)
    assert isinstance(attempt("boss", PASSWORD, "198.51.100.99"), Limited)  # per login
    assert isinstance(attempt("other", PASSWORD, "198.51.100.0"), SignedIn)  # the address is fine
    for n in range(5):
        assert isinstance(attempt(f"guess{n}", "wrong", "203.0.113.9"), Refused)
    assert isinstance(attempt("other", PASSWORD, "203.0.113.9"), Limited)  # per address
    # The node's own Accounts (another worker) sees the same failures.
    assert isinstance(
        clean.call(lambda: clean.runtime.accounts.sign_in("boss", PASSWORD, "192.0.2.1")), Limited
    )

    now[0] += LOGIN_WINDOW
    signed = attempt("boss", PASSWORD, "203.0.113.9")
    assert isinstance(signed, SignedIn)
    # A session lasts its lifetime, and not a second more.
    now[0] += timedelta(hours=12) - timedelta(seconds=1)
    assert clean.call(lambda: accounts.by_session(signed.token)) is not None
    now[0] += timedelta(seconds=1)
    assert clean.call(lambda: accounts.by_session(signed.token)) is None
    client.http.close()


@pytest.fixture
def https_node(clean: Node, database_url: str, tmp_path: Path) -> Iterator[Node]:
    # A server of its own (settings_for names the public URL itself): a new SQLite file, or the
    # PostgreSQL database `clean` has just emptied.
    url = database_url
    if url.startswith("sqlite"):
        url = fresh_schema(f"sqlite+aiosqlite:///{tmp_path / 'https.db'}")
    yield from serve(
        settings_for(url, tmp_path).model_copy(update={"public_url": "https://track.example.com"})
    )


def test_cookies_are_secure_and_host_only_when_the_public_url_is_https(https_node: Node) -> None:
    client = Client(https_node)
    add_user(client, "boss", Role.MANAGER)
    form = client.http.get("/login")
    csrf = set_cookie(form, "__Host-cb_login_csrf")
    # What a browser requires of a __Host- cookie (else it drops it): Secure, path /, no domain.
    assert "Secure" in csrf and "Path=/;" in csrf + ";" and "Domain" not in csrf
    # httpx keeps a Secure cookie from going back over http: sent by hand.
    signed = client.http.post(
        "/login",
        data={"csrf": form_token(form), "login": "boss", "password": PASSWORD},
        headers={"cookie": f"__Host-cb_login_csrf={form_token(form)}"},
    )
    assert signed.status_code == 303
    session = set_cookie(signed, "__Host-cb_session")
    assert "Secure" in session and "Path=/;" in session and "Domain" not in session
    token = session.partition("=")[2].partition(";")[0]
    assert client.http.get("/account", headers={"cookie": f"__Host-cb_session={token}"}).status_code == 200
    client.http.close()


def test_over_https_a_session_cookie_a_sibling_subdomain_could_set_is_no_session(https_node: Node) -> None:
    """evil.example.com can set `cb_session` for example.com, and the browser sends it to
    track.example.com too; it cannot set a __Host- cookie. Over https only the latter counts, so
    a session planted that way (the attacker's own, to have the person work in their account)
    signs nobody in; the same for the sign-in form's token."""
    client = Client(https_node)
    add_user(client, "mallory", Role.MANAGER)
    form = client.http.get("/login")
    signed = client.http.post(
        "/login",
        data={"csrf": form_token(form), "login": "mallory", "password": PASSWORD},
        headers={"cookie": f"__Host-cb_login_csrf={form_token(form)}"},
    )
    token = set_cookie(signed, "__Host-cb_session").partition("=")[2].partition(";")[0]

    planted = client.http.get("/account", headers={"cookie": f"cb_session={token}"})
    planted_form = client.http.post(
        "/login",
        data={"csrf": "x" * 32, "login": "mallory", "password": PASSWORD},
        headers={"cookie": f"cb_login_csrf={'x' * 32}"},
    )

    assert planted.status_code == 303 and planted.headers["location"].startswith("/login")
    assert planted_form.status_code == 403
    client.http.close()


@pytest.mark.parametrize(("hops", "address"), [(0, "10.0.0.1"), (1, "203.0.113.9"), (2, "6.6.6.6")])
def test_the_sign_in_address_is_never_the_clients_own_x_forwarded_for_line(hops: int, address: str) -> None:
    # A proxy that adds a line of its own (HAProxy's `option forwardfor`) after the client's:
    # the sign-in limit per address must count the proxy's entry, not the one the client wrote.
    lines = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.9")]
    request = Request({"type": "http", "headers": lines, "client": ("10.0.0.1", 40000)})

    assert person_ip(request, hops) == address
