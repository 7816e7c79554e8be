"""The access matrix: every route of the API and of the root app, by every persona (no key, the
bootstrap key, a manager's key, affiliate Alice's, advertiser Northstar's), for their own and the
other tenant's row where the route takes an id. The routes come from the app's own route table:
a route added without an entry in web/access.ACCESS (or, beside the API, in ROOT below) fails.

Expected: no key 401; a role the route is not open to 403 (before anything runs); a tenant on a
route open to them 2xx for their own row and 404 for the other tenant's (as for a row that does
not exist), their lists holding their own rows only; managers reach every route."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from clickback.core.accounts import ALLOWED, Access, Role
from clickback.service.accounts import SignedIn
from clickback.web.access import ACCESS, access_of
from clickback.web.api import create_api
from clickback.web.app import create_app
from clickback.web.pages import FORMS, PAGES
from tests.conftest import Client, World
from tests.web.personas import PASSWORD, Keys, make_keys


@dataclass(frozen=True)
class Persona:
    name: str
    key: str | None
    role: Role | None  # None: no key at all
    affiliate_id: int | None = None
    advertiser_id: int | None = None


# The root app's routes beside the API, and what each persona's key gets there. Pages take a
# session cookie, never a key: a key-holder is sent to /login like anyone (test_login.py signs in).
# "public": 2xx or 3xx for everyone; "manager": 401 without a key, 403 for tenants.
# "page": a dashboard page (web/pages.PAGES), sent to /login without a session (the last test
# here signs each persona in).
ROOT: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "manager",
    ("GET", "/login"): "public",
    ("POST", "/login"): "form",  # no CSRF cookie: 403 for anyone, key or not
    ("POST", "/logout"): "public",
    ("GET", "/assets/{name}"): "public",
    **{("GET", path): "page" for path in PAGES},
    **{("POST", path): "page" for path in FORMS},
}
# Which seeded row a page's path parameter names.
PAGE_KINDS = {
    "/conversions/{conversion_id}": "conversion",
    "/offers/{offer_id}/guide": "offer",
    "/catalog/advertisers/{advertiser_id}": "advertiser",
    "/catalog/offers/{offer_id}": "offer",
    "/catalog/affiliates/{affiliate_id}": "affiliate",
    "/catalog/links/{link_id}": "link",
    "/outbound/{template_id}": "template",
    "/deliveries/{delivery_id}": "delivery",
    "/users/{user_id}": "user",
    "/reconciliations/{reconciliation_id}": "reconciliation",
    "/reconciliations/{reconciliation_id}.csv": "reconciliation",
    "/reconciliations/{reconciliation_id}.json": "reconciliation",
}
# Answered before the route table (web/app.ClickbackApp): the tracking endpoints, open to all.
TRACKING = ("/c/{code}", "/postback", "/p/{code}")

# Which seeded row a path parameter names: rows of affiliates (Alice's and Bob's) or of
# advertisers (Northstar's and Southgate's).
KINDS = {
    "/advertisers/{item_id}": {"item_id": "advertiser"},
    "/offers/{item_id}": {"item_id": "offer"},
    "/offers/{item_id}/deals/{affiliate_id}": {"item_id": "offer", "affiliate_id": "affiliate"},
    "/affiliates/{item_id}": {"item_id": "affiliate"},
    "/links/{item_id}": {"item_id": "link"},
    "/outbound/templates/{item_id}": {"item_id": "template"},
    "/outbound/deliveries/{item_id}": {"item_id": "delivery"},
    "/conversions/{conversion_id}": {"conversion_id": "conversion"},
    "/statements/{affiliate_id}/{period}": {"affiliate_id": "affiliate"},
    "/tester/clicks/{click_id}": {"click_id": "test_click"},
    "/outbound/destinations/{destination}": {"destination": "destination"},
    "/users/{item_id}": {"item_id": "user"},
    "/reconciliations/{item_id}": {"item_id": "reconciliation"},
    "/reconciliations/items/{item_id}": {"item_id": "reconciliation_item"},
}
TODAY = datetime.now(UTC).date().isoformat()
MONTH = TODAY[:7]
# Query parameters a route cannot answer without.
QUERIES: dict[str, dict[str, Any]] = {
    "/reports": {"from": TODAY, "to": TODAY},
    "/reports/stop-or-scale": {"from": TODAY, "to": TODAY, "currency": "EUR"},
    "/reports/refused-clicks": {"from": TODAY, "to": TODAY},
    "/reports/active-players": {"from": MONTH, "to": MONTH},
    "/reports/active-players/cohorts": {"from": MONTH, "to": MONTH},
    "/tester/clicks/{click_id}/wait": {"timeout": 0},
}

# Valid bodies of the changes open to tenants that take an id: with an empty body their 422 would
# come before the row is looked up (which tells nothing either way), and the other tenant's row
# would not be shown to be a 404.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/outbound/templates/{item_id}"): {"name": "renamed"},
    ("PUT", "/outbound/templates/{item_id}/status"): {"status": "active"},
    ("POST", "/outbound/deliveries/{item_id}/replay"): {},
}


@dataclass
class Seeded:
    """Rows of each kind: "own" is Alice's side (Alice, Northstar and what is theirs), "other"
    Bob's and Southgate's."""

    ids: dict[str, dict[str, Any]]
    world: World
    keys: Keys


def seed(client: Client, world: World) -> Seeded:
    keys = make_keys(client, world)
    links = {link["code"]: link["id"] for link in client.items("/links")}
    templates = {
        side: client.api(
            "POST",
            "/outbound/templates",
            json={"affiliate_id": aff["id"], "url": "http://127.0.0.1:9/pb?cid={click_id}"},
        )["id"]
        for side, aff in (("own", world.alice), ("other", world.bob))
    }
    spare_template = client.api(
        "POST", "/outbound/templates", json={"affiliate_id": world.alice["id"], "url": "http://127.0.0.1:9/x"}
    )["id"]
    conversions = {}
    for side, code, token in (
        ("own", world.alice_casino, world.token),
        ("other", world.rival_link, world.southgate["token"]),
    ):
        cid = client.click(code)
        client.flush()
        reply = client.postback(click_id=cid, event="registration", token=token)
        conversions[side] = reply.json()["conversion_id"]
    deliveries = {
        side: client.items("/outbound/deliveries", affiliate_id=aff["id"])[0]["id"]
        for side, aff in (("own", world.alice), ("other", world.bob))
    }
    test_clicks = {
        side: client.api("POST", "/tester/clicks", json={"offer_id": offer["id"]})["click_id"]
        for side, offer in (("own", world.casino), ("other", world.rival_offer))
    }
    pixel = client.api("PUT", f"/offers/{world.casino['id']}/pixel", json={"enabled": True})["pixel_url"]
    # Users: Alice's (own) and Bob's (other), whose keys no persona uses, and a spare for a
    # manager to change.
    client.api("POST", "/users", json={"login": "spare", "role": "manager", "password": PASSWORD})
    users = {u["login"]: u["id"] for u in client.api("GET", "/users")}
    # An operator's report of each advertiser (its mapping is then saved for the advertiser).
    reconciliations = {
        side: client.http.post(
            "/api/reconciliations",
            files={"file": ("report.csv", b"Player ID,NGR,Currency\r\nP-1,10.00,EUR\r\n")},
            data={"advertiser_id": str(adv["id"]), "period": TODAY[:7]},
            headers=client.auth,
        ).json()["reconciliation"]["id"]
        for side, adv in (("own", world.northstar), ("other", world.southgate))
    }
    ids: dict[str, dict[str, Any]] = {
        "advertiser": {"own": world.northstar["id"], "other": world.southgate["id"]},
        "offer": {"own": world.casino["id"], "other": world.rival_offer["id"]},
        "affiliate": {"own": world.alice["id"], "other": world.bob["id"]},
        "link": {"own": links[world.alice_casino], "other": links[world.rival_link]},
        # A third (Alice's) for a manager to delete.
        "template": templates | {"spare": spare_template},
        "delivery": deliveries,
        "conversion": conversions,
        "test_click": test_clicks,
        "destination": {"own": "127.0.0.1:9", "other": "127.0.0.1:9"},
        "pixel": {"own": pixel.split("/p/")[1].split("?")[0]},
        "user": {"own": users["alice"], "other": users["bob"], "spare": users["spare"]},
        "reconciliation": reconciliations,
        "reconciliation_item": {
            side: client.api("GET", f"/reconciliations/{rid}")["items"]["items"][0]["id"]
            for side, rid in reconciliations.items()
        },
    }
    return Seeded(ids, world, keys)


def personas(s: Seeded) -> list[Persona]:
    return [
        Persona("anonymous", None, None),
        Persona("bootstrap", s.keys.bootstrap, Role.MANAGER),
        Persona("manager", s.keys.manager, Role.MANAGER),
        Persona("affiliate A", s.keys.alice, Role.AFFILIATE, affiliate_id=s.world.alice["id"]),
        Persona("advertiser X", s.keys.northstar, Role.ADVERTISER, advertiser_id=s.world.northstar["id"]),
    ]


def api_routes(client: Client) -> list[tuple[str, str]]:
    """(method, path) of every operation in the API's own route table."""
    api = create_api(client.node.runtime)
    return sorted(
        (method, route.path)
        for route in api.routes
        if isinstance(route, APIRoute)
        for method in route.methods
        if method != "HEAD"
    )


def filled(path: str, side: str, s: Seeded) -> str | None:
    """The path with the seeded row of `side` for each parameter; None if it takes no id."""
    kinds = next((k for prefix, k in KINDS.items() if path.startswith(prefix)), None)
    if kinds is None:
        assert "{" not in path, f"{path}: say in KINDS which row its parameters name"
        return None
    out = path.replace("{period}", MONTH)
    for name, kind in kinds.items():
        rows = s.ids[kind]
        out = out.replace("{" + name + "}", str(rows.get(side, rows["other"])))
    return out


def expected(p: Persona, access: Access, side: str | None) -> str:
    if p.role is None:
        return "401"
    if p.role not in {Role.MANAGER} | {r for r in Role if access in _OPEN[r]}:
        return "403"
    if p.role is not Role.MANAGER and side == "other":
        return "404"
    return "2xx"


_OPEN = {
    Role.MANAGER: set(Access),
    Role.AFFILIATE: {Access.AFFILIATE, Access.TENANTS},
    Role.ADVERTISER: {Access.ADVERTISER, Access.TENANTS},
}


def matches(outcome: str, status: int, method: str) -> bool:
    if outcome == "2xx" and method != "GET":
        # A change sent with an empty body: the route was reached, and found the row, when it
        # answers 2xx or the body's own refusal (400, 422) or a conflict (409).
        return 200 <= status < 300 or status in (400, 409, 422)
    if outcome == "2xx":
        return 200 <= status < 300
    return status == int(outcome)


@pytest.fixture
def seeded(client: Client, world: World) -> Seeded:
    return seed(client, world)


def test_every_api_route_answers_each_persona_as_the_access_table_says(
    client: Client, seeded: Seeded
) -> None:
    routes = api_routes(client)
    missing = sorted(set(routes) - set(ACCESS))
    assert not missing, f"routes without an entry in web/access.ACCESS: {missing}"
    assert not sorted(set(ACCESS) - set(routes)), "entries of web/access.ACCESS for no route"
    tenant_changes = {
        (m, path)
        for m, path in routes
        if m not in ("GET", "DELETE") and "{" in path and access_of(m, path) is not Access.MANAGER
    }
    assert tenant_changes == set(BODIES), "a change open to tenants needs a valid body in BODIES"

    # Reads first, then changes, deletions last: a change must not remove a row a later call
    # needs. Of a change, the tenants' calls come before the managers'.
    ordered = sorted(routes, key=lambda r: (r[0] != "GET", r[0] == "DELETE"))
    wrong: list[str] = []
    checked = 0
    for method, path in ordered:
        access = access_of(method, path)
        everyone = personas(seeded)
        if method != "GET":
            everyone.sort(key=lambda p: p.role is Role.MANAGER)
        for persona in everyone:
            sides: list[str | None] = ["other", "own"] if filled(path, "own", seeded) else [None]
            if persona.role is Role.MANAGER and method != "GET" and sides != [None]:
                # Each manager changes a row no one needs later: the bootstrap key Bob's side (a
                # tenant's change came first), the other a spare row where there is one.
                sides = ["other" if persona.name == "bootstrap" else "spare"]
            for side in sides:
                url = "/api" + ((filled(path, side, seeded) or path) if side else path)
                headers = Keys.header(persona.key) if persona.key else {}
                body = {"json": BODIES.get((method, path), {})} if method in ("POST", "PUT", "PATCH") else {}
                params = QUERIES.get(path, {})
                response = client.http.request(method, url, headers=headers, params=params, **body)
                outcome = expected(persona, access, side)
                checked += 1
                if not matches(outcome, response.status_code, method):
                    wrong.append(
                        f"{method} {url} as {persona.name}: {response.status_code}, expected {outcome}: "
                        + response.text[:200]
                    )
                elif outcome == "2xx" and method == "GET" and persona.role is not Role.MANAGER:
                    wrong += only_own_rows(persona, method, url, response)
    assert not wrong, "\n".join(wrong)
    assert checked > 5 * len(routes)


def only_own_rows(p: Persona, method: str, url: str, response: httpx.Response) -> list[str]:
    """A tenant's list holds their own rows only."""
    if not response.headers.get("content-type", "").startswith("application/json"):
        return []
    body = response.json()
    items = body.get("items", []) if isinstance(body, dict) else []
    column, own = (
        ("affiliate_id", p.affiliate_id) if p.role is Role.AFFILIATE else ("advertiser_id", p.advertiser_id)
    )
    return [
        f"{method} {url} as {p.name}: a row of {column} {item[column]}"
        for item in items
        if column in item and item[column] != own
    ]


def test_every_route_beside_the_api_answers_each_persona_as_expected(client: Client, seeded: Seeded) -> None:
    app = create_app(client.node.runtime.settings)
    root = sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and not isinstance(route, Mount)
        for method in route.methods or ()
        if method != "HEAD"
    )
    assert sorted(ROOT) == root, "a route beside the API without an entry in ROOT (or one gone)"
    wrong = []
    for method, path in root:
        for persona in personas(seeded):
            headers = Keys.header(persona.key) if persona.key else {}
            client.http.cookies.clear()
            url = page_url(path, "own", seeded).replace("{name}", "dashboard.css")
            response = client.http.request(method, url, headers=headers)
            status = response.status_code
            rule = ROOT[(method, path)]
            if rule == "public":
                ok = 200 <= status < 400
            elif rule == "page":
                ok = status == 303 and response.headers["location"] == "/login"
            elif rule == "form":
                ok = status == 403
            else:
                want = 401 if persona.role is None else 200 if persona.role is Role.MANAGER else 403
                ok = status == want
            if not ok:
                wrong.append(f"{method} {path} as {persona.name}: {status} ({rule})")
    # The tracking endpoints take no key and refuse none for one: a click is redirected, a
    # postback or pixel without a click ID refused for that (their reason code), key or not.
    w = seeded.world
    for persona in personas(seeded):
        headers = Keys.header(persona.key) if persona.key else {}
        click = client.http.get(f"/c/{w.alice_sportsbook}", headers=headers)
        postback = client.http.get("/postback", params={"token": w.token, "event": "x"}, headers=headers)
        pixel = client.http.get(f"/p/{seeded.ids['pixel']['own']}", headers=headers)
        for name, response, want in (
            ("click", click, 302),
            ("postback", postback, 400),
            ("pixel", pixel, 400),
        ):
            if response.status_code != want:
                wrong.append(f"{name} as {persona.name}: {response.status_code}, expected {want}")
    assert len(TRACKING) == 3
    assert not wrong, "\n".join(wrong)


def page_url(path: str, side: str, s: Seeded) -> str:
    kind = PAGE_KINDS.get(path)
    if kind is None:
        return path
    return path.split("{")[0] + str(s.ids[kind][side]) + path.split("}")[1]


def test_every_page_answers_each_signed_in_persona_as_the_pages_table_says(
    client: Client, seeded: Seeded
) -> None:
    """A page open to the role: 200, and 404 for the other tenant's row; not open to it: 403."""
    runtime = client.node.runtime
    people = {"boss": Role.MANAGER, "alice": Role.AFFILIATE, "northstar": Role.ADVERTISER}
    cookies = {}
    for login in people:
        signed = client.node.call(lambda login=login: runtime.accounts.sign_in(login, PASSWORD, "127.0.0.1"))
        assert isinstance(signed, SignedIn)
        cookies[login] = f"cb_session={signed.token}"
    app = create_app(runtime.settings)
    pages = sorted(r.path for r in app.routes if isinstance(r, Route) and r.path in PAGES)
    assert pages == sorted(PAGES), "a page without a route, or a route of a page not in PAGES"
    wrong = []
    for path in pages:
        for login, role in people.items():
            for side in ("own", "other") if path in PAGE_KINDS else ("own",):
                url = page_url(path, side, seeded)
                status = client.http.get(url, headers={"cookie": cookies[login]}).status_code
                if role not in ALLOWED[PAGES[path]]:
                    want = 403
                elif role is not Role.MANAGER and side == "other":
                    want = 404
                else:
                    want = 200
                if status != want:
                    wrong.append(f"GET {url} as {login}: {status}, expected {want}")
            if path in FORMS:
                # A form posted without the session's CSRF token (from another site) runs nothing.
                url = page_url(path, "own", seeded)
                posted = client.http.post(url, data={"action": "click"}, headers={"cookie": cookies[login]})
                want = 403
                if posted.status_code != want:
                    wrong.append(f"POST {path} as {login} without a token: {posted.status_code}")
    assert not wrong, "\n".join(wrong)


def test_the_documented_pages_are_the_pages_table() -> None:
    text = (Path(__file__).parents[2] / "docs" / "access.md").read_text()
    pages = text.split("## The dashboard's pages", 1)[1]
    documented = dict(re.findall(r"^\| `GET (/[^` ]*)` \| (\w+) \|", pages, re.MULTILINE))
    assert documented == {path: access.value for path, access in PAGES.items()}
