"""Forms forged by other origins, in a real browser (Debian's headless Chromium, as
tests/web/test_dashboard.py drives it): a person signed in to the dashboard at 127.0.0.1 opens an
attacker's page that posts to it at once.

Two attackers: another site (`localhost`: another host, so another site, and the session cookie,
SameSite=Lax, does not come with its posts) and another origin of the same site (127.0.0.1 on
another port: cookies know no port, so the session cookie comes along, and the page can set
cookies for the dashboard's host, as a sibling subdomain can for a parent domain)."""

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from clickback.core.accounts import Role
from tests.conftest import Client, make_world
from tests.receiver import STOP_POLL_SECONDS
from tests.web.personas import PASSWORD, add_user

# A page's answer: its HTML and the headers it is sent with.
Site = Callable[[str], tuple[str, dict[str, str]]]


@contextmanager
def attacker(site: Site) -> Iterator[int]:
    """The attacker's web server on a loopback port (its port): `site` answers each path."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            html, headers = site(self.path)
            self.send_response(200)
            for name, value in ({"content-type": "text/html; charset=utf-8"} | headers).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(html.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(STOP_POLL_SECONDS,), daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def posting(action: str, fields: dict[str, str], enctype: str = "application/x-www-form-urlencoded") -> str:
    """A page whose form posts itself to `action` as soon as it loads."""
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (
        f'<form id="f" method="post" action="{action}" enctype="{enctype}">{inputs}</form>'
        '<script>document.getElementById("f").submit()</script>'
    )


def sign_in(chromium: Browser, base_url: str, login: str) -> Page:
    page = chromium.new_context(base_url=base_url).new_page()
    page.goto("/login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert who(page) == login
    return page


def who(page: Page) -> str | None:
    """Whom the browser's session is of, as the account page says (None: signed out)."""
    page.goto("/account")
    found = re.search(r"Signed in as <strong>([^<]+)</strong>", page.content())
    return found.group(1) if found else None


def visit(page: Page, url: str, posts_to: str) -> int:
    """The attacker's page opened in a tab of the same browser; the status of what its form or
    script posted to the dashboard (at `posts_to`)."""
    tab = page.context.new_page()
    try:
        with tab.expect_response(lambda r: r.request.method == "POST" and r.url.startswith(posts_to)) as got:
            tab.goto(url)
        return got.value.status
    finally:
        tab.close()


@pytest.fixture
def boss(client: Client) -> None:
    """A manager, boss, and an affiliate's user, mallory: the attacker, with an account of their own."""
    world = make_world(client)
    add_user(client, "boss", Role.MANAGER)
    add_user(client, "mallory", Role.AFFILIATE, affiliate_id=world.bob["id"])


def test_another_sites_form_does_not_sign_the_person_out(
    chromium: Browser, client: Client, boss: None
) -> None:
    base = client.node.base_url
    page = sign_in(chromium, base, "boss")
    with attacker(lambda path: (posting(f"{base}/logout", {}), {})) as port:
        # The session cookie does not come with another site's post; the reply deleted it.
        visit(page, f"http://localhost:{port}/", f"{base}/logout")
    assert who(page) == "boss"


def test_a_page_of_the_same_site_cannot_sign_the_person_in_as_another(
    chromium: Browser, client: Client, boss: None
) -> None:
    # Login CSRF: the page sets the sign-in form's cookie itself (cookies know no port), posts the
    # form with the same value and the attacker's own login; the person would then work in the
    # attacker's account (and type there what the attacker reads).
    base = client.node.base_url
    page = sign_in(chromium, base, "boss")
    planted = "p" * 43
    form = posting(f"{base}/login", {"csrf": planted, "login": "mallory", "password": PASSWORD})
    cookie = {"set-cookie": f"cb_login_csrf={planted}; Path=/login; SameSite=Strict"}
    with attacker(lambda path: (form, cookie)) as port:
        assert visit(page, f"http://127.0.0.1:{port}/", f"{base}/login") == 403
    assert who(page) == "boss"


@pytest.mark.parametrize("origin", ["http://localhost", "http://127.0.0.1"], ids=["cross-site", "same-site"])
def test_forms_and_scripts_of_another_origin_change_nothing(
    chromium: Browser, client: Client, boss: None, origin: str
) -> None:
    base = client.node.base_url
    page = sign_in(chromium, base, "boss")
    users_before = client.api("GET", "/users")
    users, api = f"{base}/users", f"{base}/api/users"
    # Path of the attacker's page -> (the page, where it posts).
    pages = {
        "/form": (posting(users, {"login": "eve1", "role": "manager"}), users),
        "/multipart": (posting(users, {"login": "eve2", "role": "manager"}, "multipart/form-data"), users),
        # text/plain: the body, `login=eve3&role=manager&x=`, reads as a urlencoded form.
        "/text": (posting(users, {"login": "eve3&role=manager&x="}, "text/plain"), users),
        "/account": (posting(f"{base}/account", {"action": "key"}), f"{base}/account"),
        "/fetch": (
            f"<script>fetch('{users}', {{method: 'POST', mode: 'no-cors', credentials: 'include',"
            " headers: {'content-type': 'application/x-www-form-urlencoded'},"
            " body: 'login=eve4&role=manager'})"
            "</script>",
            users,
        ),
        # The API takes a key, never the session cookie.
        "/api": (
            f"<script>fetch('{api}', {{method: 'POST', mode: 'no-cors', credentials: 'include',"
            ' headers: {\'content-type\': \'text/plain\'}, body: \'{"login": "eve5", "role": "manager"}\'})'
            "</script>",
            api,
        ),
    }
    with attacker(lambda path: (pages[path][0] if path in pages else "", {})) as port:
        for path, (_, target) in pages.items():
            status = visit(page, f"{origin}:{port}{path}", target)
            # Another site's post comes without the session (to the sign-in page), the same
            # site's with it but without the session's token (403); the API wants a key.
            assert status in ((401,) if target == api else (303, 403)), (path, status)
    assert client.api("GET", "/users") == users_before
    assert who(page) == "boss"


def test_a_read_by_another_origin_is_refused_by_the_browser(
    chromium: Browser, client: Client, boss: None
) -> None:
    # The session's CSRF token is in every page: no other origin may read one (no CORS headers).
    base = client.node.base_url
    page = sign_in(chromium, base, "boss")
    script = (
        "<script>fetch('" + base + "/users', {credentials: 'include'}).then(r => r.text())"
        ".then(t => { document.title = 'read ' + t.length }, e => { document.title = 'refused' })</script>"
    )
    with attacker(lambda path: (script, {})) as port:
        tab = page.context.new_page()
        tab.goto(f"http://127.0.0.1:{port}/")
        tab.wait_for_function("document.title !== ''")
        assert tab.title() == "refused"
        tab.close()


def test_pages_with_forms_cannot_be_framed(chromium: Browser, client: Client, boss: None) -> None:
    # Clickjacking: the page under a decoy would take the person's clicks on its buttons.
    base = client.node.base_url
    page = sign_in(chromium, base, "boss")
    framing = f'<iframe src="{base}/users"></iframe>'
    with attacker(lambda path: (framing, {})) as port:
        tab = page.context.new_page()
        with tab.expect_response(f"{base}/users") as got:
            tab.goto(f"http://127.0.0.1:{port}/")
        assert "frame-ancestors 'none'" in got.value.headers["content-security-policy"]
        framed = tab.frames[1]
        framed.wait_for_load_state()
        # Chromium shows its own error page in the frame instead of ours.
        assert not framed.url.startswith(base) or "Users" not in framed.content()
        assert framed.locator("form").count() == 0
        tab.close()
