"""The hot endpoints: each parses the request, makes one call, and maps the result to a response."""

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from html import escape
from socket import inet_ntop
from typing import NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from clickback.config import Settings
from clickback.core.clicks import MAX_LINK_CODE_LEN, ClickRequest, ClickTaken
from clickback.core.intake import RawPostback
from clickback.core.limits import MAX_BODY_BYTES
from clickback.core.pixel import COOKIE_NAME, cookie_attributes
from clickback.core.reasons import Rejected
from clickback.enrich.geo import packed_address
from clickback.service.clock import utcnow
from clickback.service.runtime import Runtime
from clickback.web.headers import NOSNIFF, STRICT_CSP


def forwarded_ip(peer: str, forwarded_for: str, proxy_hops: int) -> str:
    """The client's address: the peer's, or behind `proxy_hops` proxies the entry of
    `forwarded_for` (every X-Forwarded-For line joined: forwarded_for_header) that many from the
    right. An IPv4 client is always written as such (unmapped)."""
    if not proxy_hops:
        return unmapped(peer)
    hops = forwarded_for.split(",")
    if len(hops) < proxy_hops:
        return unmapped(peer)
    hop = hops[-proxy_hops].strip()
    # Without its zone ID ("fe80::1%eth0"): that names an interface of the proxy's host, is
    # not part of the client's address, and has no length limit.
    found = packed_address(hop.partition("%")[0])
    if found is None:
        # With a port, as some load balancers write it ("192.0.2.1:5678", "[2001:db8::1]:443"):
        # refused as garbage, every click behind them had the proxy's address.
        found = packed_address(_without_port(hop).partition("%")[0])
    # A proxy that writes garbage: fall back to what we can vouch for.
    return unmapped(peer if found is None else inet_ntop(*found))


def _without_port(hop: str) -> str:
    if hop.startswith("["):
        inside, closed, _ = hop[1:].partition("]")
        return inside if closed else ""
    return hop.partition(":")[0] if hop.count(":") == 1 else hop


def unmapped(ip: str) -> str:
    """An IPv4 address as a dual-stack socket (`--host ::`) or proxy writes it, ::ffff:192.0.2.1,
    in its own form: kept mapped, it was another visitor than the same client's plain address,
    and the truncated IP mode (a /48 of IPv6) stored it as "::", whatever the client. `ip` is in
    canonical form (the socket's, or inet_ntop's): lower case, dotted."""
    return ip[7:] if ip.startswith("::ffff:") and "." in ip else ip


def forwarded_for_header(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """Every X-Forwarded-For line of a request, in order, as one list: lines of a field are one
    comma-separated list (RFC 9110 5.3), and a proxy may add a line of its own rather than
    append to the client's (HAProxy's `option forwardfor`). Read as the last line alone, a
    second proxy's entry was missing (the proxy's address taken for every client); as the first,
    the client's own line (the address its writer chose)."""
    return ",".join([value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"])


def client_ip(peer: str, headers: Iterable[tuple[bytes, bytes]], proxy_hops: int) -> str:
    """The client's address from the peer's and the request's headers (forwarded_ip): the
    headers are read only behind proxies."""
    return forwarded_ip(peer, forwarded_for_header(headers), proxy_hops) if proxy_hops else unmapped(peer)


class ClickReply(NamedTuple):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def click_request(
    method: str, path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]], peer: str, proxy_hops: int
) -> ClickRequest:
    """A click from the parts of an HTTP request as ASGI gives them: `path` (`/c/{code}`) decoded,
    header names in lower case."""
    wanted = dict(headers)
    ip = client_ip(peer, headers, proxy_hops)
    # Positional (code, params, ip, user_agent, referrer, method): see take_click's Click.
    return ClickRequest(
        path[3 : 3 + MAX_LINK_CODE_LEN],
        query_params(query),
        ip,
        header_text(wanted.get(b"user-agent", b"")),
        header_text(wanted.get(b"referer", b"")),
        method,
    )


def header_text(value: bytes) -> str:
    """A header's value as text: UTF-8, as an app's webview writes its name in its User-Agent
    ("小米浏览器"; read as Latin-1, it was stored as "å°\x8fç±³…"), else Latin-1, which reads any
    bytes (a value no UTF-8 encoder wrote)."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def click_reply(taken: ClickTaken | Rejected, cookie: bytes) -> ClickReply:
    """`cookie`: the attributes after the click ID in the cookie of a click whose offer has the
    tracking pixel on (click_cookie_attributes)."""
    if isinstance(taken, Rejected):
        reason = taken.reason
        page = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Link unavailable</title>"
            f"<h1>{escape(reason.sentence)}</h1><p>{escape(reason.hint)}</p>"
            f"<p><small>reason: <code>{escape(reason.code)}</code></small></p></html>"
        ).encode()
        headers = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"x-clickback-reason", reason.code.encode()),
            NOSNIFF,
            STRICT_CSP,
            (b"content-length", str(len(page)).encode()),
        ]
        return ClickReply(reason.http_status, headers, page)
    # no-store: a cached redirect would skip the next click (and reuse its click ID).
    headers = [(b"location", taken.location.encode("latin-1")), *_REDIRECT]
    if taken.pixel:
        headers.append((b"set-cookie", _COOKIE_PREFIX + taken.click.click_id.encode() + cookie))
    if taken.refused is not None:
        # A refused field: the redirect goes on, and whoever tests the link sees why.
        headers.append((b"x-clickback-reason", taken.refused.code.encode()))
    return ClickReply(302, headers, b"")


def click_cookie_attributes(settings: Settings) -> bytes:
    https = settings.public_url.lower().startswith("https:")
    return cookie_attributes(https, settings.pixel_cookie_days * 86_400).encode()


# "sha256=" and 64 hex digits, with room; a longer header is cut and fails as a bad signature.
MAX_SIGNATURE_HEADER = 128
_REDIRECT = ((b"cache-control", b"no-store"), (b"content-length", b"0"))
_COOKIE_PREFIX = COOKIE_NAME.encode() + b"="
_NOT_ALLOWED = ClickReply(405, [(b"allow", b"GET, HEAD"), (b"content-length", b"0")], b"")


def click_endpoint(runtime: Runtime) -> ASGIApp:
    """GET|HEAD /c/{code}, the hottest endpoint, as plain ASGI: Starlette's request, routing and
    response objects would cost more CPU than taking the click itself. Under `clickback serve`
    most clicks never get here: web/server.py answers them from the HTTP parser."""
    tracker = runtime.tracker
    proxy_hops = runtime.settings.proxy_hops
    cookie = click_cookie_attributes(runtime.settings)

    async def click(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            reply = _NOT_ALLOWED
        else:
            peer = scope["client"][0] if scope.get("client") else ""
            path, query = scope["path"], scope["query_string"]
            request = click_request(method, path, query, scope["headers"], peer, proxy_hops)
            reply = click_reply(await tracker.click(request), cookie)
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else reply.body})

    return click


# (method, decoded path, query string, headers with lower-case names, peer address) → the reply
AnswerClick = Callable[[str, str, bytes, Sequence[tuple[bytes, bytes]], str], ClickReply | None]


def click_answerer(runtime: Runtime) -> AnswerClick:
    """The click endpoint as one synchronous call, for a server that can write the reply itself.
    It answers None when the redirect may have to wait (durable mode, or a click writer behind the
    traffic): then the ASGI endpoint must serve."""
    tracker = runtime.tracker
    proxy_hops = runtime.settings.proxy_hops
    cookie = click_cookie_attributes(runtime.settings)

    def answer(
        method: str, path: str, query: bytes, headers: Sequence[tuple[bytes, bytes]], peer: str
    ) -> ClickReply | None:
        if tracker.redirect_waits:
            return None
        taken = tracker.take(click_request(method, path, query, headers, peer, proxy_hops))
        return click_reply(taken, cookie)

    return answer


def query_params(query_string: bytes) -> dict[str, str]:
    """The query string as Starlette reads it: latin-1 text, `parse_qsl` with blank values kept,
    UTF-8 escapes decoded with replacement, the last of repeated names winning."""
    query = query_string.decode("latin-1")
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True, errors="replace"))
    # Nothing escaped (the usual tracking link): what parse_qsl returns, without its ~4 us of
    # per-field unquoting.
    params = {}
    for field in query.split("&"):
        if field:
            name, _, value = field.partition("=")
            params[name] = value
    return params


def postback_endpoint(runtime: Runtime) -> ASGIApp:
    """GET|POST /postback as plain ASGI, for the same reason as the click endpoint: Starlette's
    request, routing and middleware cost a fifth of a postback's CPU."""
    postbacks = runtime.postbacks
    proxy_hops = runtime.settings.proxy_hops

    async def postback(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "POST"):  # a HEAD must not record
            await _reply(send, 405, b"", [(b"allow", b"GET, POST")])
            return
        headers = dict(scope["headers"])
        body = await read_capped(headers, receive, MAX_BODY_BYTES)
        if not body.complete:
            return  # nobody to answer, and half a request is not a postback
        peer = scope["client"][0] if scope.get("client") else ""
        raw = RawPostback(
            received_at=utcnow(),
            ip=client_ip(peer, scope["headers"], proxy_hops),
            method=method,
            query=scope["query_string"],
            body=body.data,
            content_type=headers.get(b"content-type", b"").decode("latin-1"),
            body_too_large=body.too_large,
            timestamp=headers.get(b"x-clickback-timestamp", b"")[:MAX_SIGNATURE_HEADER].decode("latin-1"),
            signature=headers.get(b"x-clickback-signature", b"")[:MAX_SIGNATURE_HEADER].decode("latin-1"),
        )
        outcome = await postbacks.receive(raw)
        reply = json.dumps(outcome.body(), ensure_ascii=False, separators=(",", ":")).encode()
        await _reply(send, outcome.http_status, reply, [(b"content-type", b"application/json"), NOSNIFF])

    return postback


async def _reply(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Body(NamedTuple):
    data: bytes
    too_large: bool = False
    # False when the client went away (or was cut off) before its body ended: what arrived is a
    # fragment, never to be taken for the request (a form cut before `&currency=` still parses).
    complete: bool = True


async def read_capped(headers: dict[bytes, bytes], receive: Receive, limit: int) -> Body:
    """The body, unless it is over `limit`: then stop reading and say so."""
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        return Body(b"", too_large=True)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return Body(b"", complete=False)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return Body(b"", too_large=True)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return Body(b"".join(chunks))


async def healthz(request: Request) -> Response:
    """Liveness: the process answers. Nothing else is checked: a load balancer or supervisor
    restarting servers because the database is down would only lose clicks."""
    return PlainTextResponse("ok")


def readyz_endpoint(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    """Readiness: the database answers, the catalog is loaded, clicks are being written, the spool
    is writable; 503 with the same JSON saying which part is not."""

    async def readyz(request: Request) -> Response:
        state = await runtime.readiness()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    return readyz
