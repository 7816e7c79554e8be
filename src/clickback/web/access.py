"""Who may call each API route: one table, every route named (tests/web/test_access_matrix.py
fails for a route missing here), read by web/guard.py before the body is. docs/access.md.

A route open to affiliates or advertisers scopes what it reads to the caller's own rows
(`owned`, `scoped`): another tenant's row answers 404, as a row that does not exist, so its
existence does not leak. A route's own role check is here; its rows' are in the route."""

from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from clickback.core.accounts import Access, Principal, Role
from clickback.store.admin import NotFound

M, AFF, ADV, ALL = Access.MANAGER, Access.AFFILIATE, Access.ADVERTISER, Access.TENANTS

# (method, path under /api) -> who may call it. A route not named is the manager's alone.
ACCESS: Mapping[tuple[str, str], Access] = {
    ("POST", "/advertisers"): M,
    ("GET", "/advertisers"): M,
    ("GET", "/advertisers/{item_id}"): M,
    ("PUT", "/advertisers/{item_id}/status"): M,
    ("PATCH", "/advertisers/{item_id}"): M,
    ("POST", "/advertisers/{item_id}/token"): M,
    ("DELETE", "/advertisers/{item_id}/previous-token"): M,
    ("GET", "/advertisers/{item_id}/security"): M,
    ("PUT", "/advertisers/{item_id}/security"): M,
    ("PUT", "/advertisers/{item_id}/names"): M,
    ("GET", "/advertisers/{item_id}/names"): M,
    ("POST", "/offers"): M,
    # An advertiser's own offers, and what their developer needs to send postbacks for them.
    ("GET", "/offers"): ADV,
    ("GET", "/offers/{item_id}"): ADV,
    ("GET", "/offers/{item_id}/integration"): ADV,
    ("GET", "/offers/{item_id}/integration.md"): ADV,
    ("PUT", "/offers/{item_id}/attribution"): M,
    ("PUT", "/offers/{item_id}/pixel"): M,
    ("PUT", "/offers/{item_id}/status"): M,
    ("PATCH", "/offers/{item_id}"): M,
    ("GET", "/offers/{item_id}/link-checks"): M,
    ("GET", "/link-checks/latest"): M,
    ("PUT", "/offers/{item_id}/deal"): M,
    ("PUT", "/offers/{item_id}/deals/{affiliate_id}"): M,
    ("GET", "/offers/{item_id}/deals"): M,
    ("PUT", "/offers/{item_id}/cap"): M,
    ("PUT", "/offers/{item_id}/caps/{affiliate_id}"): M,
    ("GET", "/offers/{item_id}/caps"): M,
    ("POST", "/affiliates"): M,
    ("GET", "/affiliates"): M,
    ("GET", "/affiliates/{item_id}"): M,
    ("PUT", "/affiliates/{item_id}/status"): M,
    ("PATCH", "/affiliates/{item_id}"): M,
    ("POST", "/links"): M,
    # An affiliate's own tracking links.
    ("GET", "/links"): AFF,
    ("GET", "/links/{item_id}"): AFF,
    ("PUT", "/links/{item_id}/cost"): M,
    ("PUT", "/links/{item_id}/status"): M,
    ("PATCH", "/links/{item_id}"): M,
    ("POST", "/costs/import"): M,
    ("GET", "/costs/imports"): M,
    # An advertiser's postback log and its diagnosis.
    ("GET", "/diagnosis"): ADV,
    ("GET", "/postbacks"): ADV,
    # Conversions: an advertiser's offers' (without what the affiliate earns on them), an
    # affiliate's own (without what the advertiser pays for them).
    ("GET", "/conversions"): ALL,
    ("GET", "/conversions/{conversion_id}"): ALL,
    ("POST", "/conversions/{conversion_id}/status"): M,
    # The postback tester on an advertiser's own offers (what the affiliate would earn left out).
    ("POST", "/tester/clicks"): ADV,
    ("POST", "/tester/postbacks"): ADV,
    ("GET", "/tester/clicks/{click_id}/trace"): ADV,
    ("GET", "/tester/clicks/{click_id}/wait"): ADV,
    # An affiliate's own figures (the network's revenue and profit left out).
    ("GET", "/reports"): AFF,
    # An affiliate's own placements to stop or scale, judged by their commission.
    ("GET", "/reports/stop-or-scale"): AFF,
    ("GET", "/reports/refused-clicks"): M,
    ("GET", "/reports/active-players"): M,
    ("GET", "/reports/active-players/cohorts"): M,
    ("GET", "/presets"): M,
    ("POST", "/fx-rates"): M,
    ("GET", "/fx-rates"): M,
    # An affiliate's own commission entries and monthly statements.
    ("GET", "/commissions"): AFF,
    ("POST", "/commissions/settle"): M,
    ("GET", "/statements/{affiliate_id}/{period}"): AFF,
    # An affiliate's own players: their deposits, NGR and the affiliate's own commission.
    ("GET", "/players"): AFF,
    ("GET", "/players/cohorts"): AFF,
    # An affiliate's own outbound postback settings (sent behind the same SSRF guard as a
    # manager's) and their delivery log.
    ("POST", "/outbound/templates"): AFF,
    ("GET", "/outbound/templates"): AFF,
    ("GET", "/outbound/templates/{item_id}"): AFF,
    ("PATCH", "/outbound/templates/{item_id}"): AFF,
    ("PUT", "/outbound/templates/{item_id}/status"): AFF,
    ("DELETE", "/outbound/templates/{item_id}"): AFF,
    ("GET", "/outbound/deliveries"): AFF,
    ("GET", "/outbound/deliveries/{item_id}"): AFF,
    # Replays: an affiliate sends their own deliveries again (their tracker lost one, or was down
    # past the retries); another affiliate's is a 404. A replay only repeats what was already
    # queued for them, to the URL their own template rendered: nothing new can be aimed anywhere.
    ("POST", "/outbound/deliveries/{item_id}/replay"): AFF,
    ("POST", "/outbound/replay"): AFF,
    ("GET", "/outbound/destinations"): M,
    ("POST", "/outbound/destinations/{destination}/resume"): M,
    ("POST", "/outbound/destinations/{destination}/pause"): M,
    # Reference: the reason codes are public documentation (docs/reasons.md).
    ("GET", "/reasons"): ALL,
    ("GET", "/runtime"): M,
    ("GET", "/audit"): M,
    # Users and their keys: managers only (a user's own password and keys: the /account page).
    ("GET", "/users"): M,
    ("POST", "/users"): M,
    ("GET", "/users/{item_id}"): M,
    ("PATCH", "/users/{item_id}"): M,
    ("POST", "/users/{item_id}/password"): M,
    ("POST", "/users/{item_id}/keys"): M,
    ("DELETE", "/users/{item_id}/keys"): M,
    # Reconciliation (ADR 20): an operator's report holds the whole network's players and
    # commissions, so only a manager imports, reads and accepts (docs/access.md).
    ("POST", "/reconciliations"): M,
    ("POST", "/reconciliations/preview"): M,
    ("GET", "/reconciliations"): M,
    ("GET", "/reconciliations/{item_id}"): M,
    ("GET", "/reconciliations/{item_id}.csv"): M,
    ("POST", "/reconciliations/items/{item_id}/accept"): M,
    ("GET", "/advertisers/{item_id}/reconciliation-mapping"): M,
    ("PUT", "/advertisers/{item_id}/reconciliation-mapping"): M,
}


def access_of(method: str, path: str) -> Access:
    # HEAD is answered by a GET route.
    return ACCESS.get(("GET" if method == "HEAD" else method, path), Access.MANAGER)


def route_access(api: FastAPI) -> Callable[[Scope], Access | None]:
    """The access of the route a request is for (None: no route, FastAPI answers 404 or 405)."""
    routes = [r for r in api.routes if isinstance(r, APIRoute)]

    def find(scope: Scope) -> Access | None:
        for route in routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return access_of(scope["method"], route.path)
        return None

    return find


def principal(request: Request) -> Principal:
    """Who the request acts for: put in the scope by web/guard.py, which refused it otherwise."""
    found = request.scope.get("state", {}).get("principal")
    assert isinstance(found, Principal), "the API is mounted behind web/guard.ApiGuard"
    return found


Who = Annotated[Principal, Depends(principal)]


def owned(who: Principal, row: dict[str, Any], what: str, *, tenant: str) -> dict[str, Any]:
    """`row` if it is the caller's (its `tenant` column names them), else NotFound (404)."""
    mine = who.owns(**{tenant: row[tenant]})
    if not mine:
        raise NotFound(f"{what} does not exist")
    return row


def scoped(who: Principal, filters: dict[str, Any]) -> dict[str, Any]:
    """A list's filters with the caller's tenant forced: an affiliate's or advertiser's list
    holds their own rows, whatever was asked."""
    if who.role is Role.AFFILIATE:
        return filters | {"affiliate_id": who.affiliate_id}
    if who.role is Role.ADVERTISER:
        return filters | {"advertiser_id": who.advertiser_id}
    return filters
