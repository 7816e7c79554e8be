"""One attempt at one delivery over HTTP, behind the SSRF guard: what is sent and what came back,
and whether a destination may be used at all.

The sending itself is delivery/guarded.py's (aiohttp), imported on a process's first delivery:
aiohttp is 10 MB of a worker's memory (ADR 14's 150 MB), and most workers of a tracker that
sends few postbacks never send one. Redirects are never followed: their target was not checked,
and a postback that moved is the affiliate's to fix.
"""

import asyncio
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from clickback.core.addresses import Allowlist, check_destination, is_address
from clickback.core.outbound import MAX_ERROR_LEN

if TYPE_CHECKING:
    from clickback.delivery.guarded import GuardedSender

RESOLVE_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Request:
    delivery_id: str
    method: str
    url: str
    body: str
    content_type: str
    secret: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """What an attempt got: an HTTP status (None: no reply), the first bytes, or the error."""

    status: int | None
    latency_ms: int
    reply: str = ""
    error: str = ""
    retry_after: str | None = None
    # The destination is no place to send to (the SSRF guard): no retry will change that.
    refused: bool = False


class Sender:
    """Sends each request through one aiohttp session, opened on the first request."""

    def __init__(self, allow: Allowlist, timeout: float, connections: int) -> None:
        self._allow = allow
        self._timeout = timeout
        self._connections = connections
        self._http: GuardedSender | None = None

    async def send(self, request: Request, now: datetime) -> Reply:
        if self._http is None:
            from clickback.delivery.guarded import GuardedSender

            self._http = GuardedSender(self._allow, self._timeout, self._connections)
        return await self._http.send(request, now)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


async def _resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (an address literal: itself)."""
    if is_address(host):
        return [host]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_LEN]


async def destination_problem(url: str, allow: Allowlist) -> str | None:
    """Why a template's URL may not be used (the SSRF guard, as at each attempt), or None."""
    found = await destination_check(url, allow)
    return found.text if found is not None else None


@dataclass(frozen=True, slots=True)
class Problem:
    text: str
    # The name does not resolve (now): no address was refused, there is none to connect to.
    unresolved: bool = False


async def destination_check(url: str, allow: Allowlist) -> Problem | None:
    """Why a URL may not be requested, telling a name that does not resolve (a connection
    problem, as the link checker reports it) from an address the guard refuses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if allow.allows_host(host):
        return None
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            addresses = await _resolve(host, port)
    except (OSError, TimeoutError, UnicodeError) as exc:
        # UnicodeError: a name no DNS label can encode.
        why = getattr(exc, "strerror", None) or "no answer"
        return Problem(f"{host} does not resolve ({why})", unresolved=True)
    if not addresses:
        return Problem(f"{host} does not resolve to any address", unresolved=True)
    refused = check_destination(host, addresses, allow)
    return Problem(refused) if refused is not None else None
