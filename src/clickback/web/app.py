"""The root ASGI application: tracking routes as plain Starlette endpoints, the API mounted beside."""

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clickback.config import Settings
from clickback.metrics import time_full_collections
from clickback.service.runtime import Runtime
from clickback.web import dashboard, login, ops, pixel, tracking
from clickback.web.access import route_access
from clickback.web.api import PUBLIC_PATHS, create_api
from clickback.web.guard import ApiGuard
from clickback.web.headers import SecurityHeaders

access = logging.getLogger("clickback.access")


class ClickbackApp:
    """The ASGI entry point: clicks, postbacks and pixels go straight to their endpoints, everything else
    (lifespan included) to the Starlette app."""

    def __init__(self, runtime: Runtime, rest: Starlette) -> None:
        self.state = rest.state
        self._click = tracking.click_endpoint(runtime)
        self._postback = tracking.postback_endpoint(runtime)
        self._pixel = pixel.pixel_endpoint(runtime)
        self._rest = rest
        # For web/server.py, which answers most clicks without an ASGI call.
        self.answer_click = tracking.click_answerer(runtime)

    @property
    def routes(self) -> list[BaseRoute]:
        """The routes beside the tracking paths (the access matrix test reads them)."""
        return self._rest.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._rest(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/c/"):  # counted (/metrics), not logged: a line costs more than a click
            await self._click(scope, receive, send)
        elif path == "/postback":  # logged by the service, with its outcome
            await self._postback(scope, receive, send)
        elif path.startswith("/p/"):  # the tracking pixel: a postback too
            await self._pixel(scope, receive, send)
        else:
            await _logged(self._rest, scope, receive, send)


async def _logged(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """One access line a request: method, path (not the query: it may hold a key), status, time."""
    started = time.perf_counter()
    status = 0

    async def sending(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        ms = round((time.perf_counter() - started) * 1000, 1)
        access.info(
            "%s %s %d %.1f ms",
            scope["method"],
            scope["path"],
            status,
            ms,
            extra={"method": scope["method"], "path": scope["path"], "status": status, "ms": ms},
        )


YOUNG_COLLECTION = 10_000


def settle_heap() -> None:
    """What a worker imported and built at its start lives as long as the process: frozen out of
    the collector's reach, so that a full collection no longer walks it. Such a walk (130,000
    objects) held the event loop for 50 to 170 ms: the one redirect in a thousand that waited as
    long as a page load (issue 17). GC_SECONDS shows the full collections left."""
    gc.collect()
    gc.freeze()
    # Young collections every 10,000 allocations, not 700: a click allocates a few dozen objects
    # and frees them at once (reference counts), so the collector's walks were mostly for
    # nothing, and each one ran the timing callback (1% of a worker's CPU at full load).
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])
    time_full_collections()


def served_app() -> ClickbackApp:
    """A `clickback serve` worker's app: create_app's, with its heap settled once it has started."""
    return create_app(worker=True)


def create_app(settings: Settings | None = None, *, worker: bool = False) -> ClickbackApp:
    runtime = Runtime(settings or Settings.from_environment())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        if worker:
            settle_heap()
        try:
            yield
        finally:
            await runtime.stop()

    fastapi = create_api(runtime)
    api = ApiGuard(fastapi, runtime.settings.api_token, PUBLIC_PATHS, runtime.accounts, route_access(fastapi))
    app = Starlette(
        routes=[
            Route("/healthz", tracking.healthz),
            Route("/metrics", ops.metrics),
            Route("/readyz", tracking.readyz_endpoint(runtime)),
            Mount("/api", app=api),
            *login.routes(runtime),
            *dashboard.routes(runtime),
        ],
        middleware=[Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )
    # Unknown paths are 404s: a redirect to the path with(out) its slash would name the request's
    # Host header (Location: http://evil.example/...), and http behind a TLS proxy.
    app.router.redirect_slashes = False
    app.state.runtime = runtime
    return ClickbackApp(runtime, app)
