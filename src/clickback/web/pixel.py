"""GET /p/{code}: the tracking pixel, a postback fired by the user's browser (ADR 12); and
GET /p/{code}.js, the snippet that fires it from a thank-you page."""

from starlette.types import ASGIApp, Receive, Scope, Send

from clickback.core.intake import PIXEL, RawPostback
from clickback.core.pixel import PIXEL_CODE_LEN, click_id_from_cookie, without_secrets
from clickback.service.clock import utcnow
from clickback.service.runtime import Runtime
from clickback.web.headers import NOSNIFF
from clickback.web.tracking import client_ip

# A transparent 1x1 GIF: the reply to every pixel, recorded or not (a browser shows nothing
# else of it); what happened is in the status, the X-Clickback-* headers and the postback log.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_GIF_HEADERS = [
    (b"content-type", b"image/gif"),
    # Every load of the thank-you page must reach the server: a cached pixel records nothing.
    (b"cache-control", b"no-store"),
    NOSNIFF,
    # Loaded by another site's page: allowed even where that page asks for CORP (COEP).
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"content-length", str(len(GIF)).encode()),
]

# The snippet: the same for every offer (the pixel's URL is its own, without ".js"). It takes the
# click ID from the page's URL (data-param names the parameter, click_id unless told) or from
# data-click-id, and the postback fields from its data- attributes; no cookie, no storage, no
# other request. The browser sends the tracking domain's cookie with the pixel if it may.
SNIPPET = b"""(function () {
  var s = document.currentScript;
  if (!s) return;
  var d = s.dataset, q = new URLSearchParams(window.location.search), p = new URLSearchParams();
  var click = d.clickId || q.get(d.param || "click_id");
  if (click) p.set("click_id", click);
  var fields = {event: "event", txnId: "txn_id", payout: "payout", currency: "currency",
    playerId: "player_id", sub1: "sub1", sub2: "sub2", sub3: "sub3", sub4: "sub4", sub5: "sub5"};
  for (var k in fields) if (d[k]) p.set(fields[k], d[k]);
  new Image(1, 1).src = s.src.replace(/\\.js(\\?.*)?$/, "") + "?" + p.toString();
})();
"""
_SNIPPET_HEADERS = [
    (b"content-type", b"text/javascript; charset=utf-8"),
    (b"cache-control", b"public, max-age=3600"),
    NOSNIFF,
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"content-length", str(len(SNIPPET)).encode()),
]
_UNKNOWN_SNIPPET_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-clickback-reason", b"unknown_pixel"),
    (b"content-length", b"0"),
]
# A pixel code is 16 letters and digits; longer paths are no pixel's, cropped for the log.
_MAX_CODE = 2 * PIXEL_CODE_LEN


def pixel_endpoint(runtime: Runtime) -> ASGIApp:
    """Plain ASGI, like the postback endpoint it shares the intake with (a hot path: one per
    conversion page view)."""
    postbacks = runtime.postbacks
    catalog = runtime.catalog
    proxy_hops = runtime.settings.proxy_hops

    async def pixel(scope: Scope, receive: Receive, send: Send) -> None:
        code = scope["path"][3:]
        if scope["method"] != "GET":  # a HEAD must not record
            await _reply(send, 405, [(b"allow", b"GET"), (b"content-length", b"0")], b"")
            return
        if code.endswith(".js"):
            known = catalog.loaded and code[:-3] in catalog.current.offers_by_pixel
            if known:
                await _reply(send, 200, _SNIPPET_HEADERS, SNIPPET)
            else:
                await _reply(send, 404, _UNKNOWN_SNIPPET_HEADERS, b"")
            return
        headers = dict(scope["headers"])
        peer = scope["client"][0] if scope.get("client") else ""
        raw = RawPostback(
            received_at=utcnow(),
            ip=client_ip(peer, scope["headers"], proxy_hops),
            method="GET",
            query=without_secrets(scope["query_string"]),
            channel=PIXEL,
            pixel_code=code[:_MAX_CODE],
            cookie_click_id=click_id_from_cookie(headers.get(b"cookie", b"").decode("latin-1")),
        )
        outcome = await postbacks.receive(raw)
        told = [(b"x-clickback-result", outcome.result.value.encode())]
        if outcome.reason is not None:
            told.append((b"x-clickback-reason", outcome.reason.code.encode()))
        # The reason's own status (a 2xx only once recorded, 503 when storage failed), so that a
        # tester's browser tools show a refusal as one.
        await _reply(send, outcome.http_status, [*_GIF_HEADERS, *told], GIF)

    return pixel


async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
