"""The JSON API's door: who the key is, whether they may call the route, and the body's size,
all checked before FastAPI reads anything."""

import hmac
import logging
from collections.abc import Callable, Iterable

from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clickback.core.accounts import BOOTSTRAP, MAX_KEY_LEN, Access, Principal
from clickback.core.limits import MAX_API_BODY_BYTES
from clickback.service.accounts import Accounts
from clickback.service.reportfiles import MAX_REPORT_FILE_BYTES
from clickback.web.tracking import read_capped

log = logging.getLogger(__name__)
# Routes whose body is a file larger than a JSON body ever is (an operator's report: ADR 20),
# with the multipart form's own fields on top.
BODY_CAPS = {
    path: MAX_REPORT_FILE_BYTES + 64 * 1024 for path in ("/reconciliations", "/reconciliations/preview")
}


class ApiGuard:
    """Wraps the mounted API. FastAPI reads a request's whole body before any dependency runs, so
    a key checked there let anyone make a worker hold bodies of any size (five 20 MB bodies: +290
    MB). Here who the key is (web/access.py: and whether their role may call the route) comes
    from the headers, then the body is read up to its cap and handed on."""

    def __init__(
        self,
        api: ASGIApp,
        key: str,
        public: Iterable[str],
        accounts: Accounts,
        access: Callable[[Scope], Access | None],
    ) -> None:
        self._api = api
        # CLICKBACK_API_KEY: the bootstrap manager's, checked without the database.
        self._key = key.encode()
        self._accounts = accounts
        self._access = access
        # Paths under the mount that need no key (the docs); one ending in "/" is a prefix.
        public = tuple(public)
        self._public = frozenset(p for p in public if not p.endswith("/"))
        self._public_prefixes = tuple(p for p in public if p.endswith("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _route_path(scope)
        if scope["type"] != "http" or path in self._public or path.startswith(self._public_prefixes):
            await self._api(scope, receive, send)
            return
        headers = dict(scope["headers"])
        try:
            who = await self._who(given_key(headers))
        except (SQLAlchemyError, OSError) as exc:
            # A user's key needs the database: gone, it is a 503 to retry, as the API's own.
            log.warning("API key not checked: %s", type(exc).__name__)
            detail = "the database cannot be reached right now: nothing was changed; retry"
            await _refusal(503, detail, {"retry-after": "1"})(scope, receive, send)
            return
        if who is None:
            refusal = _refusal(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})
            await refusal(scope, receive, send)
            return
        access = self._access(scope)
        if access is not None and not who.may(access):
            # The route exists for everyone (the OpenAPI document lists it): a 403 leaks nothing.
            await _refusal(403, f"this route is not open to the {who.role.value} role")(scope, receive, send)
            return
        # For the routes (web/access.principal): Starlette's request.state reads scope["state"].
        scope["state"] = {**scope.get("state", {}), "principal": who}
        cap = BODY_CAPS.get(path, MAX_API_BODY_BYTES)
        body = await read_capped(headers, receive, cap)
        if not body.complete:
            return  # the client went away: half a request is not one
        if body.too_large:
            await _refusal(413, f"the request body is over {cap} bytes")(scope, receive, send)
            return
        await self._api(scope, _replay(body.data, receive), send)

    async def _who(self, key: bytes) -> Principal | None:
        """The bootstrap manager for CLICKBACK_API_KEY, a user for one of theirs, else None."""
        if is_bootstrap_key(key, self._key):
            return BOOTSTRAP
        if not key or len(key) > MAX_KEY_LEN:
            return None
        try:
            text = key.decode("ascii")
        except UnicodeDecodeError:
            return None
        return await self._accounts.by_key(text)


def is_bootstrap_key(given: bytes, key: bytes) -> bool:
    """Whether `given` is CLICKBACK_API_KEY. An empty configured key is no key: compared as is,
    every request sending none would be the bootstrap manager (config.py refuses one at start;
    this holds whatever reached here)."""
    return bool(key) and hmac.compare_digest(given, key)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if path.startswith(root) else path


def given_key(headers: dict[bytes, bytes]) -> bytes:
    """`Authorization: Bearer <key>`, else `X-API-Key: <key>` (as FastAPI's HTTPBearer and
    APIKeyHeader, which the OpenAPI document names, read them)."""
    scheme, _, credentials = headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and credentials.strip():
        return credentials.strip()
    return headers.get(b"x-api-key", b"")


def _refusal(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # FastAPI's own shape for an HTTPException.
    return JSONResponse({"detail": detail}, status, headers)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the client sends next (its disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
