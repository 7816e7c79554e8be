"""The root ASGI application: tracking routes as plain Starlette endpoints, the API mounted beside."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from clickback.config import Settings
from clickback.service.runtime import Runtime
from clickback.web import tracking
from clickback.web.api import create_api


def create_app(settings: Settings | None = None) -> Starlette:
    runtime = Runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(
        routes=[
            Route("/c/{code}", tracking.click, methods=["GET", "HEAD"]),
            Route("/postback", tracking.postback, methods=["GET", "POST"]),
            Route("/healthz", tracking.healthz),
            Mount("/api", app=create_api(runtime)),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
