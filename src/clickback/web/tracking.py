"""The hot endpoints: each parses the request, makes one call, and maps the result to a response."""

from html import escape
from ipaddress import ip_address

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from clickback.core.clicks import MAX_LINK_CODE_LEN, ClickRequest
from clickback.core.intake import RawPostback
from clickback.core.limits import MAX_BODY_BYTES
from clickback.core.reasons import Rejected
from clickback.service.runtime import Runtime, utcnow


def client_ip(request: Request, proxy_hops: int) -> str:
    peer = request.client.host if request.client else ""
    if not proxy_hops:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    if len(hops) < proxy_hops:
        return peer
    try:
        return str(ip_address(hops[-proxy_hops]))
    except ValueError:  # a proxy that writes garbage: fall back to what we can vouch for
        return peer


async def click(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    headers = request.headers
    taken = await runtime.tracker.click(
        ClickRequest(
            code=request.path_params["code"][:MAX_LINK_CODE_LEN],
            # A plain dict: the domain reads seven keys, and MultiDict lookups cost more.
            params=dict(request.query_params.items()),
            ip=client_ip(request, runtime.settings.proxy_hops),
            user_agent=headers.get("user-agent", ""),
            referrer=headers.get("referer", ""),
            method=request.method,
        )
    )
    if isinstance(taken, Rejected):
        return refusal_page(taken)
    # no-store: a cached redirect would skip the next click (and reuse its click ID).
    return Response(status_code=302, headers={"location": taken.location, "cache-control": "no-store"})


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
