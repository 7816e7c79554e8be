"""What every dashboard page shares: who may open it (PAGES, as web/access.ACCESS is for the API),
the session it needs, the layout it is drawn in, and how its figures are written. docs/access.md,
ADR 19.

A page is a plain GET route on the root app: it reads the signed-in person's session, checks the
page's access, and calls the store or the use case directly (never this server's own API over
HTTP). What a tenant sees is scoped as the API scopes it (web/access.scoped and owned): another
tenant's row is a 404, as a row that does not exist."""

import functools
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clickback.core import metrics
from clickback.core.accounts import Access, Principal
from clickback.core.model import Catalog
from clickback.service.accounts import Session
from clickback.service.runtime import Runtime
from clickback.store.admin import NotFound
from clickback.store.db import database_problem
from clickback.store.paging import BadCursor
from clickback.web.login import page, read_form, same_token, signed_in

# A form posted without the session's CSRF token (an old page, or another site's).
EXPIRED = "The form expired or came from elsewhere. Reload the page and try again."
# What a page shows for no figure at all.
NOTHING = "\u2013"
M, AFF, ADV, ALL = Access.MANAGER, Access.AFFILIATE, Access.ADVERTISER, Access.TENANTS

# GET path -> who may open it. Every page route is named here (tests/web/test_access_matrix.py).
PAGES: Mapping[str, Access] = {
    # A manager's and an affiliate's figures; an advertiser's own offers and their tools.
    "/": ALL,
    # The report builder and its CSV: an affiliate's of their own traffic, as GET /api/reports.
    "/reports": AFF,
    "/reports.csv": AFF,
    "/conversions": ALL,
    "/conversions/{conversion_id}": ALL,
    # Players and what each is worth: an affiliate's own, as GET /api/players.
    "/players": AFF,
    # The postback log and its diagnosis: an advertiser's own postbacks, as GET /api/postbacks.
    "/postbacks": ADV,
    "/diagnosis": ADV,
    # The postback tester on an advertiser's own offers (a form: GET shows it, POST runs it).
    "/tester": ADV,
    # An affiliate's tracking links and the link builder, statements, outbound postbacks and their
    # delivery log.
    "/links": AFF,
    "/statements": AFF,
    "/statements.csv": AFF,
    "/outbound": AFF,
    "/deliveries": AFF,
    # One template of theirs edited, paused, resumed or deleted; one delivery with its attempts,
    # sent again. Another affiliate's is a 404 (as GET /api/outbound/templates/{id}).
    "/outbound/{template_id}": AFF,
    "/deliveries/{delivery_id}": AFF,
    # Trackers that failed, paused or not (the API's /outbound/destinations).
    "/destinations": M,
    # Users and their keys (the API's /users); everyone's own password and keys.
    "/users": M,
    "/users/{user_id}": M,
    "/account": ALL,
    # An advertiser's integration guide for one of their offers.
    "/offers/{offer_id}/guide": ADV,
    # The catalog, the manager's: lists with a form to create, and each row's page with its forms
    # to edit, pause or archive it and its audit history (as the API's POST/PATCH/PUT routes).
    "/catalog/advertisers": M,
    "/catalog/advertisers/{advertiser_id}": M,
    "/catalog/offers": M,
    "/catalog/offers/{offer_id}": M,
    "/catalog/affiliates": M,
    "/catalog/affiliates/{affiliate_id}": M,
    "/catalog/links": M,
    "/catalog/links/{link_id}": M,
    # Operators' reports reconciled (the API's /reconciliations, a manager's alone: the whole
    # network's players and commissions): the list with the upload form, one with its items and
    # the accept button, and its items as CSV and JSON.
    "/reconciliations": M,
    "/reconciliations/{reconciliation_id}.csv": M,
    "/reconciliations/{reconciliation_id}.json": M,
    "/reconciliations/{reconciliation_id}": M,
}

# Pages that take a form posted with the session's CSRF token as well, and who may post it:
# those who may open the page, but for a conversion's status, changed by a manager only (as
# POST /api/conversions/{conversion_id}/status).
FORMS: Mapping[str, Access] = {
    path: PAGES[path]
    for path in (
        "/tester",
        "/outbound",
        "/outbound/{template_id}",
        "/deliveries",
        "/deliveries/{delivery_id}",
        "/destinations",
        "/users",
        "/users/{user_id}",
        "/account",
        "/reconciliations",
        "/reconciliations/{reconciliation_id}",
        *(path for path in PAGES if path.startswith("/catalog/")),
    )
} | {"/conversions/{conversion_id}": M}

# The navigation: (path, label), shown to those the path is open to.
NAV = (
    ("/", "Overview"),
    ("/reports", "Reports"),
    ("/conversions", "Conversions"),
    ("/players", "Players"),
    ("/postbacks", "Postback log"),
    ("/diagnosis", "Diagnosis"),
    ("/tester", "Tester"),
    ("/links", "Links"),
    ("/statements", "Statements"),
    ("/outbound", "Outbound"),
    ("/deliveries", "Deliveries"),
    ("/catalog/advertisers", "Advertisers"),
    ("/catalog/offers", "Offers"),
    ("/catalog/affiliates", "Affiliates"),
    ("/catalog/links", "Manage links"),
    ("/reconciliations", "Reconciliations"),
    ("/users", "Users"),
)

# Our own files, served from the package: the style sheet and the copy button's few lines.
ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Viewer:
    """A page request of a signed-in person."""

    request: Request
    session: Session
    runtime: Runtime

    @property
    def who(self) -> Principal:
        return self.session.principal

    @property
    def catalog(self) -> Catalog:
        return self.runtime.catalog.current


Handler = Callable[[Viewer], Awaitable[Response]]


def policy(nonce: str) -> str:
    # Charts are inline SVG whose <style> carries the page's nonce; our own style sheet and script
    # (the copy button) come from this server; nothing else loads or runs.
    return (
        f"default-src 'none'; style-src 'self' 'nonce-{nonce}'; script-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def render(v: Viewer, name: str, status: int = 200, **values: Any) -> Response:
    """The page `name` in the layout: the navigation of the person's role, who they are, and the
    sign-out form with their session's CSRF token."""
    nonce = values.pop("nonce", None) or new_nonce()
    who = v.who
    tenant = ""
    if who.affiliate_id is not None:
        tenant = shown_name(v, "affiliate", who.affiliate_id)
    elif who.advertiser_id is not None:
        tenant = shown_name(v, "advertiser", who.advertiser_id)
    nav = [(path, label) for path, label in NAV if who.may(PAGES[path])]
    layout = {
        "nav": nav,
        "here": v.request.url.path,
        "login": who.login,
        "role": who.role.value,
        "tenant": tenant,
        "csrf": v.session.csrf,
        "nonce": nonce,
        "when": when,
    }
    return page(name, status, {"content-security-policy": policy(nonce)}, **(layout | values))


def download(body: str, filename: str, media_type: str = "text/csv; charset=utf-8") -> Response:
    """A file a page offers (a statement, a reconciliation): saved, not shown, and not cached."""
    headers = {"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"}
    return Response(body, media_type=media_type, headers=headers)


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def guarded(runtime: Runtime, path: str, handler: Handler) -> Route:
    """The page at `path`: a session needed (else to /login), the role checked against PAGES (a
    form posted: FORMS) (403), another tenant's row or a missing one a 404."""
    access, posting = PAGES[path], FORMS.get(path)

    async def endpoint(request: Request) -> Response:
        session = await signed_in(runtime, request)
        if session is None:
            return RedirectResponse("/login", 303)
        v = Viewer(request, session, runtime)
        if not v.who.may(posting if request.method == "POST" and posting is not None else access):
            return render(v, "problem.html", 403, title="Not yours", problem="This page is not open to you.")
        try:
            return await handler(v)
        except NotFound as exc:
            return render(v, "problem.html", 404, title="Not found", problem=f"{exc}.")
        except BadCursor:
            problem = "This link to a later page is not one of this list's: start again from its first page."
            return render(v, "problem.html", 400, title="Not a page of this list", problem=problem)
        except (SQLAlchemyError, OSError) as exc:
            # The database away: a page to retry, as the API's 503 (web/api.py), not a 500.
            lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
            if not lost and database_problem(exc, runtime.settings.url) is None:
                raise
            problem = "The database cannot be reached right now. Try again in a moment."
            return render(v, "problem.html", 503, title="Try again", problem=problem)

    return Route(path, endpoint, methods=["GET", "POST"] if path in FORMS else ["GET"])


async def asset(request: Request) -> Response:
    """/assets/{name}: our own style sheet and script, from the installed package."""
    name = request.path_params["name"]
    if name not in ASSETS:
        return Response("no such file", 404, media_type="text/plain")
    return Response(
        _asset(name),
        media_type=ASSETS[name],
        headers={"cache-control": "public, max-age=3600"},
    )


@functools.cache
def _asset(name: str) -> bytes:
    return (resources.files("clickback.web") / "static" / name).read_bytes()


# --- how figures are written --------------------------------------------------------------------


def amount(value: object) -> str:
    """A metric's value as a page shows it: counts with thousands separators, money per currency,
    ratios as percentages, nothing as a dash."""
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value * 100:.2f}%"
    if isinstance(value, Mapping):
        if not value:
            return "0"
        return "; ".join(f"{_decimal(a)} {c}" for c, a in value.items())
    return str(value)


def when(moment: datetime | None) -> str:
    """A stored instant as pages show it: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else NOTHING


def metric_text(name: str, value: object) -> str:
    if name in metrics.RATIOS_OF_MONEY and isinstance(value, Mapping):
        return "; ".join(f"{float(a) * 100:.1f}% ({c})" for c, a in value.items()) or NOTHING
    return amount(value)


def _decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{value:,}"
    return str(value)


def change(now: float | Decimal | int, before: float | Decimal | int) -> float | None:
    """The change against the previous period, as a fraction; None when there was nothing before."""
    if not before:
        return None
    return float((Decimal(now) - Decimal(before)) / Decimal(before))


def change_text(fraction: float | None) -> str:
    if fraction is None:
        return "no figures before"
    return f"{fraction * 100:+.1f}%"


def shown_name(v: Viewer, dimension: str, value: object) -> str:
    """owner_name, for the owners the person may know the name of: a manager every one; a
    tenant themselves and what their rows name (an affiliate the offers they have links to and
    those offers' advertisers). Others are shown by id, as the API shows them: an affiliate
    typing another advertiser's offer id into a URL learns no name."""
    if v.who.is_manager or not isinstance(value, int) or _known(v, dimension, value):
        return owner_name(v.catalog, dimension, value)
    return f"#{value}"


def own_offers(v: Viewer) -> set[int]:
    """The offers the person has rows of: an affiliate's through their links, an advertiser's own."""
    who, catalog = v.who, v.catalog
    if who.affiliate_id is not None:
        return {k.offer_id for k in catalog.links.values() if k.affiliate_id == who.affiliate_id}
    return {o.id for o in catalog.offers.values() if who.owns(advertiser_id=o.advertiser_id)}


def _known(v: Viewer, dimension: str, value: int) -> bool:
    who, catalog = v.who, v.catalog
    if dimension == "affiliate":
        return value == who.affiliate_id
    if dimension == "link":
        link = catalog.links.get(value)
        return link is not None and link.affiliate_id == who.affiliate_id
    offers = own_offers(v)
    if dimension == "offer":
        return value in offers
    if dimension == "advertiser":
        advertisers = {catalog.offers[o].advertiser_id for o in offers if o in catalog.offers}
        return value == who.advertiser_id or value in advertisers
    return True


def owner_name(catalog: Catalog, dimension: str, value: object) -> str:
    """An advertiser's, offer's or affiliate's name beside its id; other values as they are."""
    found: Any = None
    if isinstance(value, int):
        found = {
            "advertiser": catalog.advertisers,
            "offer": catalog.offers,
            "affiliate": catalog.affiliates,
        }.get(dimension, {}).get(value)
    if found is not None:
        return f"{found.name} (#{value})"
    if dimension == "link" and isinstance(value, int):
        link = catalog.links.get(value)
        return f"{link.code} (#{value})" if link else f"#{value}"
    return "(none)" if value == "" else str(value)


async def csrf_form(v: Viewer) -> dict[str, str] | None:
    """The posted form, None when it came without the session's CSRF token (or no form at all)."""
    form = await read_form(v.request)
    if form is None or not same_token(form.get("csrf", ""), v.session.csrf):
        return None
    return form
