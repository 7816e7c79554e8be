"""Signing in and out in a browser (/login, /logout): plain Starlette
routes on the root app, server-rendered, no script. docs/access.md, ADR 16.

CSRF: the sign-in form is checked by double submit (a random cookie set with the form must come
back as the form's field: another site can post the form but cannot read or set the cookie), and
refused when the browser says another origin of the same site posted it (that one can set the
cookie: cookies know no port, and a sibling subdomain sets them for the parent domain); every form
of a signed-in browser carries its session's token, kept with the session."""

import functools
import hmac
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from clickback.core.accounts import MAX_LOGIN_LEN, MAX_PASSWORD_LEN, MAX_TOKEN_LEN, new_token
from clickback.service.accounts import Limited, Refused, Session
from clickback.service.runtime import Runtime
from clickback.web.tracking import client_ip, read_capped

SESSION_COOKIE = "cb_session"
LOGIN_CSRF_COOKIE = "cb_login_csrf"
# Over https the cookies' names carry this prefix: a browser then keeps such a cookie only as this
# host set it itself (over https, for path /, for no domain), never one that a sibling subdomain
# set for the parent domain, which it would otherwise send here too: a page on
# evil.example.com could plant its own session for track.example.com and sign people in to the
# attacker's account without a form.
HOST_ONLY = "__Host-"
# Our largest form is an outbound template's (web/outboundpages.py): a 2,048-character URL and a
# 4,096-character body, percent-encoded up to three bytes a character, and 15 fields. Anything
# longer is no form of ours.
MAX_FORM_BYTES = 24 * 1024
MAX_FORM_FIELDS = 24
# Pages load nothing but our own style sheet and run nothing; their forms post to this server only.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

Endpoint = Callable[[Request], Awaitable[Response]]


@functools.cache
def _templates() -> Environment:
    # Built on first use: a worker that serves only clicks never loads a template.
    return Environment(loader=PackageLoader("clickback.web", "templates"), autoescape=True)


def page(name: str, status: int = 200, headers: dict[str, str] | None = None, **values: Any) -> HTMLResponse:
    html = _templates().get_template(name).render(**values)
    # Pages of a signed-in person, and the sign-in form's token: no cache keeps either.
    head = {"content-security-policy": PAGE_POLICY, "cache-control": "no-store"} | (headers or {})
    return HTMLResponse(html, status, head)


async def read_form(
    request: Request, max_bytes: int = MAX_FORM_BYTES, max_fields: int = MAX_FORM_FIELDS
) -> dict[str, str] | None:
    """The form's fields (the first of each name), or None for a body that is no form of ours."""
    headers = dict(request.scope["headers"])
    body = await read_capped(headers, request.receive, max_bytes)
    if not body.complete or body.too_large:
        return None
    try:
        pairs = parse_qsl(body.data.decode(), keep_blank_values=True, max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def _same(given: str, expected: str) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


def same_token(given: str, expected: str) -> bool:
    """Whether a form's CSRF field is the token expected (in constant time)."""
    return _same(given[:MAX_TOKEN_LEN], expected)


def secure_cookies(runtime: Runtime) -> bool:
    """Whether the dashboard is served over https (its public URL's): its cookies are then Secure
    and host-only (HOST_ONLY)."""
    return runtime.settings.public_url.lower().startswith("https://")


def cookie_name(name: str, secure: bool) -> str:
    return HOST_ONLY + name if secure else name


async def signed_in(runtime: Runtime, request: Request) -> Session | None:
    """The browser's session, None when it has none (or an ended one)."""
    token = request.cookies.get(cookie_name(SESSION_COOKIE, secure_cookies(runtime)), "")
    return await runtime.accounts.by_session(token) if token and len(token) <= MAX_TOKEN_LEN else None


def routes(runtime: Runtime) -> list[Route]:
    """/login and /logout; the pages signed-in people see are web/dashboard.py's."""
    accounts = runtime.accounts
    secure = secure_cookies(runtime)
    session_cookie = cookie_name(SESSION_COOKIE, secure)
    csrf_cookie = cookie_name(LOGIN_CSRF_COOKIE, secure)
    # A host-only cookie must be for the whole site; over http the form's token goes to /login only.
    csrf_path = "/" if secure else "/login"
    lifetime = math.floor(runtime.settings.session_hours * 3600)

    async def session_of(request: Request) -> Session | None:
        return await signed_in(runtime, request)

    def login_form(status: int = 200, problem: str = "", login: str = "", **headers: str) -> Response:
        csrf = new_token()
        reply = page("login.html", status, headers, title="Sign in", csrf=csrf, problem=problem, login=login)
        reply.set_cookie(csrf_cookie, csrf, path=csrf_path, secure=secure, httponly=True, samesite="strict")
        return reply

    def home_page(session: Session, status: int = 200, problem: str = "") -> Response:
        who = session.principal
        tenant = f"affiliate {who.affiliate_id}" if who.affiliate_id else ""
        tenant = tenant or (f"advertiser {who.advertiser_id}" if who.advertiser_id else "")
        values: dict[str, Any] = {"login": who.login, "role": who.role.value, "tenant": tenant}
        return page(
            "home.html", status, None, title="clickback", problem=problem, csrf=session.csrf, **values
        )

    async def login(request: Request) -> Response:
        if request.method == "GET":
            if await session_of(request) is not None:
                return RedirectResponse("/", 303)
            return login_form()
        form = await read_form(request)
        if form is None:
            return login_form(400, "That was not a sign-in form. Try again.")
        csrf = form.get("csrf", "")[:MAX_TOKEN_LEN]
        if from_elsewhere(request) or not _same(csrf, request.cookies.get(csrf_cookie, "")):
            # No cookie, or another one: a form posted from elsewhere, or cookies switched off.
            return login_form(403, "The form expired or came from elsewhere. Sign in again.")
        name = form.get("login", "")[: MAX_LOGIN_LEN + 1]
        password = form.get("password", "")[: MAX_PASSWORD_LEN + 1]
        outcome = await accounts.sign_in(name, password, person_ip(request, runtime.settings.proxy_hops))
        shown = name[:MAX_LOGIN_LEN]
        if isinstance(outcome, Limited):
            seconds = max(1, math.ceil(outcome.retry_after.total_seconds()))
            minutes = math.ceil(seconds / 60)
            problem = f"Too many failed sign-ins. Try again in {minutes} minute{'s' * (minutes != 1)}."
            return login_form(429, problem, shown, **{"retry-after": str(seconds)})
        if isinstance(outcome, Refused):
            return login_form(401, "Wrong login or password.", shown)
        reply = RedirectResponse("/", 303)
        reply.set_cookie(
            session_cookie,
            outcome.token,
            max_age=lifetime,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        reply.delete_cookie(csrf_cookie, path=csrf_path, secure=secure, httponly=True, samesite="strict")
        return reply

    async def logout(request: Request) -> Response:
        session = await session_of(request)
        if session is None:
            # No session came with the form, so none to end; and the cookie is left alone: another
            # site's form comes without it (SameSite=Lax), and deleting it signed the person out.
            return RedirectResponse("/login", 303)
        form = await read_form(request)
        if form is None or not _same(form.get("csrf", "")[:MAX_TOKEN_LEN], session.csrf):
            return home_page(session, 403, "The form expired or came from elsewhere: still signed in.")
        await accounts.sign_out(request.cookies.get(session_cookie, ""))
        reply = RedirectResponse("/login", 303)
        reply.delete_cookie(session_cookie, path="/", secure=secure, httponly=True, samesite="lax")
        return reply

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def from_elsewhere(request: Request) -> bool:
    """Whether the browser says another origin sent the request (Fetch Metadata, a header no page
    can set; browsers since 2023 send it). Our own forms are `same-origin`; a client that is no
    browser sends none."""
    return request.headers.get("sec-fetch-site", "") in ("same-site", "cross-site")


def person_ip(request: Request, proxy_hops: int) -> str:
    """The address a person signs in (or gives a password) from, as the sign-in limit counts it."""
    peer = request.client.host if request.client else ""
    return client_ip(peer, request.headers.raw, proxy_hops)[:45]
