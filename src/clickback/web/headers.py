"""Headers that keep a browser from reading our replies as something else."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON reply or a text page is never to be run as a script or shown as HTML because it looks like one.
NOSNIFF = (b"x-content-type-options", b"nosniff")
# Pages we build load nothing, run nothing, send no form and may not be framed.
STRICT_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
STRICT_CSP = (b"content-security-policy", STRICT_POLICY.encode())


class SecurityHeaders:
    """Every response of the wrapped app gets `nosniff`, and the strict policy unless it sets one
    of its own (the API docs page)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("content-security-policy", STRICT_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
