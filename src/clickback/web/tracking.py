"""The hot endpoints: each parses the request, makes one call, and maps the result to a response."""

from html import escape
from ipaddress import ip_address
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from clickback.core.clicks import MAX_LINK_CODE_LEN, ClickRequest
from clickback.core.intake import RawPostback
from clickback.core.limits import MAX_BODY_BYTES
from clickback.core.reasons import Rejected
from clickback.service.runtime import Runtime, utcnow


def client_ip(request: Request, proxy_hops: int) -> str:
    peer = request.client.host if request.client else ""
    return forwarded_ip(peer, request.headers.get("x-forwarded-for", ""), proxy_hops)


def forwarded_ip(peer: str, forwarded_for: str, proxy_hops: int) -> str:
    if not proxy_hops:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")]
    if len(hops) < proxy_hops:
        return peer
    try:
        return str(ip_address(hops[-proxy_hops]))
    except ValueError:  # a proxy that writes garbage: fall back to what we can vouch for
        return peer


def click_endpoint(runtime: Runtime) -> ASGIApp:
    """GET|HEAD /c/{code}, the hottest endpoint, as plain ASGI: Starlette's request, routing and
    response objects would cost more CPU than taking the click itself."""
    tracker = runtime.tracker
    proxy_hops = runtime.settings.proxy_hops

    async def click(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _send(send, 405, [(b"allow", b"GET, HEAD")], b"")
            return
        headers = dict(scope["headers"])
        peer = scope["client"][0] if scope.get("client") else ""
        taken = await tracker.click(
            ClickRequest(
                code=scope["path"][3:][:MAX_LINK_CODE_LEN],
                params=query_params(scope["query_string"]),
                ip=forwarded_ip(peer, headers.get(b"x-forwarded-for", b"").decode("latin-1"), proxy_hops),
                user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
                referrer=headers.get(b"referer", b"").decode("latin-1"),
                method=method,
            )
        )
        if isinstance(taken, Rejected):
            page = refusal_page(taken)
            await page(scope, receive, send)
            return
        # no-store: a cached redirect would skip the next click (and reuse its click ID).
        reply = [(b"location", taken.location.encode("latin-1")), *_REDIRECT]
        await send({"type": "http.response.start", "status": 302, "headers": reply})
        await send({"type": "http.response.body", "body": b""})

    return click


_REDIRECT = ((b"cache-control", b"no-store"), (b"content-length", b"0"))


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


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def refusal_page(rejected: Rejected) -> HTMLResponse:
    reason = rejected.reason
    html = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Link unavailable</title>"
        f"<h1>{escape(reason.sentence)}</h1><p>{escape(reason.hint)}</p>"
        f"<p><small>reason: <code>{escape(reason.code)}</code></small></p></html>"
    )
    return HTMLResponse(html, status_code=reason.http_status, headers={"x-clickback-reason": reason.code})


async def postback(request: Request) -> Response:
    if request.method == "HEAD":  # Starlette adds HEAD to GET routes; a HEAD must not record
        return Response(status_code=405, headers={"allow": "GET, POST"})
    runtime: Runtime = request.app.state.runtime
    body, too_large = await read_capped(request, MAX_BODY_BYTES)
    raw = RawPostback(
        received_at=utcnow(),
        ip=client_ip(request, runtime.settings.proxy_hops),
        method=request.method,
        query=request.scope["query_string"],
        body=body,
        content_type=request.headers.get("content-type", ""),
        body_too_large=too_large,
    )
    outcome = await runtime.tracker.postback(raw)
    return JSONResponse(outcome.body(), status_code=outcome.http_status)


async def read_capped(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, unless it is over `limit`: then stop reading and say so."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")
