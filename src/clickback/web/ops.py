"""Operators' endpoints beside the API: Prometheus metrics."""

import hmac

from starlette.requests import Request
from starlette.responses import Response

from clickback.metrics import exposition
from clickback.service.runtime import Runtime


def has_api_key(request: Request, runtime: Runtime) -> bool:
    """The API key, as `Authorization: Bearer` (what Prometheus sends) or `X-API-Key`."""
    bearer = request.headers.get("authorization", "")
    given = bearer[7:] if bearer[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
    return hmac.compare_digest(given.encode(), runtime.settings.api_token.encode())


async def metrics(request: Request) -> Response:
    """The whole server's figures (every worker's), for a Prometheus scrape with the API key: they
    tell traffic volumes, which are nobody else's business."""
    runtime: Runtime = request.app.state.runtime
    if not has_api_key(request, runtime):
        return Response(status_code=401, headers={"www-authenticate": "Bearer"})
    body, content_type = exposition()
    return Response(body, media_type=content_type)
