"""Operators' endpoints beside the API: Prometheus metrics."""

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from clickback.metrics import exposition
from clickback.service.runtime import Runtime
from clickback.web.guard import given_key, is_bootstrap_key


async def metrics(request: Request) -> Response:
    """The whole server's figures (every worker's), for a Prometheus scrape with the API key: they
    tell traffic volumes, which are nobody else's business."""
    runtime: Runtime = request.app.state.runtime
    # The API key, as `Authorization: Bearer` (what Prometheus sends) or `X-API-Key`: the
    # bootstrap key, or a manager's own.
    given = given_key(dict(request.scope["headers"]))
    if not is_bootstrap_key(given, runtime.settings.api_token.encode()):
        try:
            who = await runtime.accounts.by_key(given.decode("ascii", "replace"))
        except (SQLAlchemyError, OSError):
            # A user's key needs the database (the bootstrap key does not).
            return Response(status_code=503, headers={"retry-after": "1"})
        if who is None:
            return Response(status_code=401, headers={"www-authenticate": "Bearer"})
        if not who.is_manager:
            return Response(status_code=403)
    body, content_type = exposition()
    return Response(body, media_type=content_type)
