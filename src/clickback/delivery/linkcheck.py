"""Requesting offer URLs as a browser would, behind the outbound postbacks' SSRF guard.

Redirects are followed here, one request at a time, because each target must pass the guard
before it is requested (aiohttp's own following would connect first) and because the chain is
what the check reports. Every hop is checked by `destination_check`, as a template's URL is,
and connected through the guarded resolver (delivery/guarded.py), as a postback is: a name
resolving elsewhere between the two cannot reach the operator's network.

Politeness: at most `concurrency` checks at once, at most one request to a host at a time, and
`host_gap` seconds between two requests to the same host, so that a round of checks over an
advertiser's fifty offers is not a burst their firewall takes for an attack. The time waited for
a host's turn is not the offer's time: `elapsed_ms` and the timeout count only the requests.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from clickback.core.addresses import Allowlist
from clickback.core.limits import MAX_URL_LEN
from clickback.core.linkcheck import (
    MAX_BODY_BYTES,
    MAX_ERROR_LEN,
    Failure,
    Hop,
    Observed,
    Policy,
    next_hop,
)
from clickback.delivery.guarded import Refused, guarded_connector, literal_problem
from clickback.delivery.sender import destination_check

# A current desktop browser: some landing pages answer bots (and unknown agents) differently,
# and the check must see what a user sees.
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
HEADERS = {
    "user-agent": BROWSER_UA,
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-US,en;q=0.9",
}


class _HostTurns:
    """One request per host at a time, `gap` seconds apart."""

    def __init__(self, gap: float, clock: Callable[[], float]) -> None:
        self._gap = gap
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    @asynccontextmanager
    async def turn(self, host: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            wait = self._last.get(host, -math.inf) + self._gap - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)  # the polite gap itself, not a wait for anything
            try:
                yield
            finally:
                self._last[host] = self._clock()


class LinkFetcher:
    """Used for one round of checks, then closed (its host turns and connections go with it)."""

    def __init__(self, allow: Allowlist, policy: Policy) -> None:
        self.policy = policy
        self._allow = allow
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._hosts = _HostTurns(policy.host_gap, time.monotonic)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=guarded_connector(self._allow, self.policy.concurrency),
                headers=HEADERS,
                # Cookies are kept per check (a jar each), never from one offer to another.
                cookie_jar=aiohttp.DummyCookieJar(),
                # Proxies from the environment would move the connection away from the checked address.
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def observe(self, url: str) -> Observed:
        async with self._slots:
            return await self._follow(url)

    async def _follow(self, url: str) -> Observed:
        chain: list[Hop] = []
        jar = aiohttp.CookieJar(unsafe=True)  # unsafe: cookies of hosts named by address too
        spent = 0.0
        target = url
        body, content_type = "", ""
        while True:
            key = _host_key(target)
            failure: Failure | None = None
            error = ""
            async with self._hosts.turn(key):
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(max(self.policy.timeout - spent, 0.001)):
                        hop, body, content_type = await self._request(target, jar)
                except TimeoutError:
                    failure, error = Failure.TIMEOUT, f"no answer within {self.policy.timeout:g} s"
                except _Refused as exc:
                    failure, error = Failure.REFUSED, str(exc)
                except _Unresolved as exc:
                    failure, error = Failure.UNRESOLVED, str(exc)
                except aiohttp.ClientConnectorError as exc:
                    refused = isinstance(exc.os_error, Refused)
                    failure = Failure.REFUSED if refused else Failure.CONNECTION
                    error = str(exc.os_error) if refused else _error(exc)
                except (aiohttp.ClientError, OSError, ValueError) as exc:
                    # ValueError: a Location no URL parser takes.
                    failure, error = Failure.CONNECTION, _error(exc)
                spent += time.perf_counter() - started
            if failure is not None:
                return Observed(url, tuple(chain), _ms(spent), failure=failure, error=error[:MAX_ERROR_LEN])
            chain.append(hop)
            step = next_hop(tuple(chain))
            if not isinstance(step, str):
                return Observed(url, tuple(chain), _ms(spent), body, content_type)
            target = step

    async def _request(self, target: str, jar: aiohttp.CookieJar) -> tuple[Hop, str, str]:
        problem = await destination_check(target, self._allow)
        if problem is not None:
            raise _Unresolved(problem.text) if problem.unresolved else _Refused(problem.text)
        address = URL(target)
        # The URL as aiohttp reads it: an address there is connected to without the resolver.
        if (refused := literal_problem(address.host or "", self._allow)) is not None:
            raise _Refused(refused)
        async with self._open().get(
            address, allow_redirects=False, cookies=jar.filter_cookies(address)
        ) as response:
            jar.update_cookies(response.cookies, response.url)
            location = _header_text(response.headers.get("location", ""))[:MAX_URL_LEN]
            hop = Hop(target, response.status, location)
            if 300 <= response.status < 400 and location:
                return hop, "", ""  # a redirect's own page is never shown
            data = await _first_bytes(response.content)
            charset = response.charset or "utf-8"
            try:
                text = data.decode(charset, errors="replace")
            except (LookupError, UnicodeError):
                # A charset Python does not know, or a codec of Python's that is no text encoding
                # (`idna`, which refuses `errors="replace"`): the page is read as UTF-8.
                text = data.decode("utf-8", errors="replace")
            return hop, text, _header_text(response.headers.get("content-type", ""))[:200]


def _header_text(value: str) -> str:
    """A header as text a database stores: aiohttp keeps bytes that are not UTF-8 as lone
    surrogates, which no database takes (a Location of them stopped every offer's checks)."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Refused(Exception):
    """A hop the SSRF guard refuses before any connection."""


class _Unresolved(Exception):
    """A hop whose host name does not resolve: nothing to request, nothing refused."""


async def _first_bytes(stream: aiohttp.StreamReader) -> bytes:
    data = bytearray()
    while len(data) < MAX_BODY_BYTES:
        chunk = await stream.read(MAX_BODY_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _host_key(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return url[:200]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_LEN]
