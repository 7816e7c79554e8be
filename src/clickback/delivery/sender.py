"""One attempt at one delivery over HTTP, behind the SSRF guard.

The destination's name is resolved here and every address checked (core/addresses.py); the
request then goes to the address that was checked, with the URL's host in the Host header and in
TLS (SNI and certificate), so a name that resolves elsewhere between the check and the connection
(DNS rebinding) cannot steer it into the operator's network. Redirects are never followed: their
target was not checked, and a postback that moved is the affiliate's to fix.
"""

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx

from clickback.core.addresses import Allowlist, check_destination
from clickback.core.outbound import (
    DELIVERY_HEADER,
    MAX_ERROR_LEN,
    MAX_REPLY_BYTES,
    SIGNATURE_HEADER,
    signature,
)

USER_AGENT = "clickback-postback/1"
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
    def __init__(self, allow: Allowlist, timeout: float, connections: int) -> None:
        self._allow = allow
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            # Proxies from the environment would move the connection away from the checked address.
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, request: Request, now: datetime) -> Reply:
        started = time.perf_counter()

        def elapsed() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(self._timeout):
                return await self._send(request, now, elapsed)
        except TimeoutError:
            return Reply(None, elapsed(), error=f"timed out after {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return Reply(None, elapsed(), error=_error(exc))

    async def _send(self, request: Request, now: datetime, elapsed: Callable[[], int]) -> Reply:
        url = httpx.URL(request.url)
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await _resolve(host, port)
        except OSError as exc:
            return Reply(
                None, elapsed(), error=f"cannot resolve {host}: {exc.strerror or exc}"[:MAX_ERROR_LEN]
            )
        refused = check_destination(host, addresses, self._allow)
        if refused is not None:
            return Reply(None, elapsed(), error=refused[:MAX_ERROR_LEN], refused=True)
        address = addresses[0]
        pinned = url.copy_with(host=address)
        body = request.body.encode()
        headers = {
            "host": url.netloc.decode("ascii"),
            DELIVERY_HEADER: request.delivery_id,
        }
        if request.content_type:
            headers["content-type"] = request.content_type
        if request.secret:
            # GET: the request target as sent (path and query); POST: the body.
            payload = body if request.method == "POST" else url.raw_path
            headers[SIGNATURE_HEADER] = signature(request.secret, int(now.timestamp()), payload)
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        built = self._client.build_request(
            request.method, pinned, headers=headers, content=body or None, extensions=extensions
        )
        response = await self._client.send(built, stream=True)
        try:
            latency = elapsed()
            first = bytearray()
            async for chunk in response.aiter_raw():
                first += chunk
                if len(first) >= MAX_REPLY_BYTES:
                    break
        finally:
            await response.aclose()
        reply = bytes(first[:MAX_REPLY_BYTES]).decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        return Reply(response.status_code, latency, reply, retry_after=response.headers.get("retry-after"))


async def _resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (an address literal: itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _error(exc: httpx.HTTPError) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_LEN]


async def destination_problem(url: str, allow: Allowlist) -> str | None:
    """Why a template's URL may not be used (the SSRF guard, as at each attempt), or None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if allow.allows_host(host):
        return None
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            addresses = await _resolve(host, port)
    except (OSError, TimeoutError) as exc:
        return f"{host} does not resolve ({getattr(exc, 'strerror', None) or 'no answer'})"
    return check_destination(host, addresses, allow)
