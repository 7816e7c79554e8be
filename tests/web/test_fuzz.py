"""Hostile bytes on every route, over real sockets: query strings, header values (any byte but a
line break, which only a raw socket can send), path parameters and JSON bodies with lone
surrogates, huge numbers, NaN and far dates, with and without the API key. No reply is a 5xx, and
clicks taken afterwards are still stored."""

import json
import socket
from urllib.parse import quote

from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from clickback.web.api import create_api
from tests.conftest import API_KEY, Client, World

EXAMPLES_PER_ROUTE = 8
TRACKING_ROUTES = [
    ("GET", "/c/{code}"),
    ("HEAD", "/c/{code}"),
    ("GET", "/postback"),
    ("POST", "/postback"),
    ("GET", "/healthz"),
    ("GET", "/api/advertisers/"),  # no such path: a 404, never a redirect
]
HOSTILE_TEXT = [
    "\ud800",
    "x\udfff",
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "-0",
    "9" * 40,
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-23:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12",
    "{click_id}",
    "\x00",
]
NAMES = [
    *("from", "to", "since", "until", "limit", "cursor", "group_by", "bots", "format", "reason"),
    *("status", "affiliate_id", "offer_id", "click_id", "event", "player_id", "period", "cohort"),
    *("token", "payout", "currency", "txn_id", "sub1", "event_time", "name", "advertiser_id"),
    *("url_template", "payouts", "base", "quote", "day", "rate", "kind", "cpa", "revshare", "events"),
]

texts = st.text(max_size=20) | st.sampled_from(HOSTILE_TEXT) | st.characters(categories=["Cs"])
# Percent-escaped bytes: any byte reaches the server, invalid UTF-8 and escaped surrogates included.
escaped = st.binary(max_size=24).map(lambda b: quote(b, safe="")) | texts.map(
    lambda t: quote(t.encode(errors="surrogatepass"), safe="")
)
query_strings = st.lists(st.tuples(st.sampled_from(NAMES) | escaped, escaped), max_size=6).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
) | st.binary(max_size=60).map(lambda b: quote(b, safe="=&%+;"))
numbers = (
    st.integers()
    | st.integers(min_value=10**30, max_value=10**400)
    | st.floats()  # inf and nan, sent as Infinity and NaN
    | st.sampled_from([2**31, -(2**63), 1e308])
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES) | texts, inner, max_size=5)
    ),
    max_leaves=12,
)
bodies = (
    st.dictionaries(st.sampled_from(NAMES) | texts, json_values, max_size=6).map(
        lambda doc: json.dumps(doc).encode()  # lone surrogates as \\udXXX escapes
    )
    | st.sampled_from(
        [
            b'{"rate":1e309}',
            b'{"name":-1e99999}',
            b'{"\\ud800":"x"}',
            b"[" * 3000,
            b'{"a":' + b"1" * 5000 + b"}",
        ]
    )
    | st.binary(max_size=200)
)
header_names = st.sampled_from(
    [
        "user-agent",
        "referer",
        "x-forwarded-for",
        "content-type",
        "authorization",
        "x-api-key",
        "cookie",
        "host",
        "accept",
        "expect",
        "x-other",
    ]
)
header_values = st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
content_types = st.sampled_from(
    [[b"Content-Type: application/json"], [], [b"Content-Type: application/x-www-form-urlencoded"]]
)
path_values = st.sampled_from(["1", "2", "0", "-1", "2026-11", "9999-12", "99999999999999999999"]) | escaped


def routes(client: Client) -> list[tuple[str, str]]:
    """Every API route of the app's table (docs and the OpenAPI document too), then the others."""
    table = create_api(client.node.runtime).routes
    api = [
        (method, "/api" + route.path)
        for route in table
        if isinstance(route, APIRoute | Route)
        for method in sorted(route.methods or ())
    ]
    assert len(api) >= 30
    return api + TRACKING_ROUTES


@st.composite
def requests(draw: st.DrawFn, method: str, template: str, known: dict[str, str]) -> bytes:
    path = template
    for name in ("code", "item_id", "affiliate_id", "conversion_id", "period"):
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", draw(st.just(known.get(name, "1")) | path_values))
    query = draw(query_strings)
    if template == "/postback":  # a genuine token and click ID take it past the early refusals
        genuine = draw(st.lists(st.sampled_from(["token", "click_id", "event"]), unique=True))
        query = "&".join([query, *(f"{name}={known[name]}" for name in genuine)]).strip("&")
    head = [f"{method} {path}{'?' + query if query else ''} HTTP/1.1".encode(), b"Host: t"]
    head += [
        n.encode() + b": " + v for n, v in draw(st.lists(st.tuples(header_names, header_values), max_size=4))
    ]
    if draw(st.booleans()):
        head.append(f"Authorization: Bearer {API_KEY}".encode())
    if draw(st.booleans()):  # else a click is answered by the parser (web/server.py)
        head.append(b"Connection: close")
    body = draw(bodies) if method in ("POST", "PUT", "PATCH") else b""
    if body:
        head += [f"Content-Length: {len(body)}".encode(), *draw(content_types)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def send(port: int, request: bytes) -> int:
    """The reply's status (past an interim 100 Continue): a reply must come."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        stream = conn.makefile("rb")
        status = 100
        while status < 200:
            status_line = stream.readline()
            assert status_line.startswith(b"HTTP/1.1 "), (status_line, request[:300])
            status = int(status_line.split()[1])
            while status < 200 and stream.readline() not in (b"\r\n", b""):
                pass
    return status


def fuzz(port: int, strategy: st.SearchStrategy[bytes]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(request=strategy)
    def call(request: bytes) -> None:
        assert send(port, request) < 500, request[:500]

    call()


def test_no_hostile_request_gets_a_5xx_and_clicks_are_still_stored(client: Client, world: World) -> None:
    port = int(client.node.base_url.rsplit(":", 1)[1])
    click_id = client.click(world.alice_casino)
    known = {
        "code": world.alice_casino,
        "period": "2026-11",
        "token": world.token,
        "click_id": click_id,
        "event": "deposit",
    }

    for method, template in routes(client):
        fuzz(port, requests(method, template, known))

    fresh = client.api("POST", "/affiliates", json={"name": "After the fuzz"})
    offer = client.api(
        "POST",
        "/offers",
        json={
            "advertiser_id": client.api("POST", "/advertisers", json={"name": "After"})["id"],
            "name": "After",
            "url_template": "https://after.example.com/?cid={click_id}",
            "currency": "EUR",
        },
    )
    link = client.api("POST", "/links", json={"affiliate_id": fresh["id"], "offer_id": offer["id"]})
    for _ in range(20):
        client.http.get(f"/c/{link['code']}")
    client.flush()
    assert client.report(affiliate_id=str(fresh["id"]), group_by="")["totals"]["clicks"] == 20
