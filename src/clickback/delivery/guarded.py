"""The HTTP side of a delivery attempt (aiohttp), behind the SSRF guard; imported by
delivery/sender.py on a process's first delivery, and by the link checker.

Sent with aiohttp (ADR 11: httpx's AsyncClient managed 300-490 requests/s to a local receiver on
this machine, aiohttp 3,300-4,600). The destination's name is resolved by the session's own
resolver, which checks every address (core/addresses.py) and hands the connection only the
addresses it checked, so a name that resolves elsewhere between a check and the connection (DNS
rebinding) cannot steer it into the operator's network; TLS still verifies the name. An address
written in the URL is checked before the request: aiohttp connects to what it takes for an
address without asking the resolver.
"""

import asyncio
import socket
import time
from collections.abc import Callable
from datetime import datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from yarl import URL

from clickback.core.addresses import Allowlist, check_destination, is_address
from clickback.core.outbound import (
    DELIVERY_HEADER,
    MAX_ERROR_LEN,
    MAX_REPLY_BYTES,
    SIGNATURE_HEADER,
    redirect_error,
    signature,
)
from clickback.delivery.sender import Reply, Request, error_text

USER_AGENT = "clickback-postback/1"


class Refused(OSError):
    """A destination the SSRF guard refuses (raised inside the connection, told as a Reply)."""


class _GuardedResolver(AbstractResolver):
    def __init__(self, allow: Allowlist) -> None:
        self._allow = allow

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family
        )
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        problem = check_destination(host, addresses, self._allow)
        if problem is not None:
            raise Refused(problem)
        return [
            ResolveResult(
                hostname=host,
                host=str(info[4][0]),
                port=port,
                family=info[0],
                proto=info[2],
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for info in infos
        ]

    async def close(self) -> None:
        pass


def literal_problem(host: str, allow: Allowlist) -> str | None:
    """Why a URL's host that aiohttp takes for an address (and so connects to without asking the
    guarded resolver) may not be used; None for a name, left to the resolver. aiohttp's own test
    decides: any host with a colon is one, so `[v1.x:y.example]` (an IPvFuture, which the URL
    parsers take) went to the system's resolver at connection time, unchecked, and reached
    whatever the name resolved to then."""
    if not is_ip_address(host):
        return None
    if not is_address(host):
        return f"{host[:100]} is neither a host name nor an IP address"
    return check_destination(host, [host], allow)


def guarded_connector(allow: Allowlist, connections: int) -> aiohttp.TCPConnector:
    """Connections only to addresses the SSRF guard allows (also used by the link checker)."""
    return aiohttp.TCPConnector(
        resolver=_GuardedResolver(allow),
        # Every new connection asks the guarded resolver (its cache would skip the check).
        use_dns_cache=False,
        limit=connections,
    )


class GuardedSender:
    def __init__(self, allow: Allowlist, timeout: float, connections: int) -> None:
        self._allow = allow
        self._timeout = timeout
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = guarded_connector(self._allow, self._connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"user-agent": USER_AGENT},
                # Proxies from the environment would move the connection away from the checked address.
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, request: Request, now: datetime) -> Reply:
        started = time.perf_counter()

        def elapsed() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(self._timeout):
                return await self._send(request, now, elapsed)
        except TimeoutError:
            return Reply(None, elapsed(), error=f"timed out after {self._timeout:g} s")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, Refused):
                return Reply(None, elapsed(), error=str(exc.os_error)[:MAX_ERROR_LEN], refused=True)
            return Reply(None, elapsed(), error=error_text(exc))
        except (aiohttp.ClientError, OSError) as exc:
            return Reply(None, elapsed(), error=error_text(exc))

    async def _send(self, request: Request, now: datetime, elapsed: Callable[[], int]) -> Reply:
        # Sent exactly as rendered (every value already escaped): not normalised again.
        url = URL(request.url, encoded=True)
        refused = literal_problem(url.host or "", self._allow)
        if refused is not None:
            return Reply(None, elapsed(), error=refused[:MAX_ERROR_LEN], refused=True)
        body = request.body.encode()
        headers = {DELIVERY_HEADER: request.delivery_id}
        if request.content_type:
            headers["content-type"] = request.content_type
        if request.secret:
            # GET: the request target as sent (path and query); POST: the body.
            payload = body if request.method == "POST" else url.raw_path_qs.encode()
            headers[SIGNATURE_HEADER] = signature(request.secret, int(now.timestamp()), payload)
        session = self._open()
        async with session.request(
            request.method, url, data=body or None, headers=headers, allow_redirects=False
        ) as response:
            latency = elapsed()
            first = await response.content.read(MAX_REPLY_BYTES)
            status, retry_after = response.status, response.headers.get("retry-after")
            error = redirect_error(status, response.headers.get("location"))
        reply = first.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        return Reply(status, latency, reply, error=error, retry_after=retry_after)
