"""Click enrichment: geography from the IP, device and bot verdict from the User-Agent."""

import functools
from dataclasses import dataclass, replace
from os import PathLike

from clickback.core.clicks import fit_traits
from clickback.core.model import Traits
from clickback.enrich.bots import BotReason, bot_reason
from clickback.enrich.device import DEVICE_CACHE_SIZE, Device, parse_device
from clickback.enrich.geo import Geo, GeoLookup
from clickback.metrics import watch_cache

__all__ = ["BotReason", "Device", "Enricher", "Enrichment", "Geo", "GeoLookup", "bot_reason", "parse_device"]

# A visitor's clicks in a row (a reload, a second link of the page) find their traits here. On a
# campaign's traffic nearly every click brings a new address (0.2% hits on benchmarks/traffic.py's
# mix): a bigger cache only held memory (16,384 entries, about 6 MB) and gave the garbage
# collector more to walk.
TRAITS_CACHE_SIZE = 4_096

# Real User-Agents of the common kinds, parsed at start-up, so that clicks do not pay for compiling
# the UA rules (0.07 s) and crawlerdetect's pattern (0.05 s), nor for the first steps of the rules'
# automata, built as they are first used: after one such User-Agent the first parse of each other
# kind took up to 0.6-0.7 ms, after these 0.2 (a parse takes about 25 us).
_WARM_UP_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/21E219 [FBAN/FBIOS;FBAV/458.0.0.38.108;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4]",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram 329.0.0.41.93",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)


# Browser families (as ua-parser names them) common enough that a clean UA naming one is a person.
MAINSTREAM_BROWSERS = frozenset(
    {
        "Chrome",
        "Chrome Mobile",
        "Chrome Mobile iOS",
        "Chrome Mobile WebView",
        "Safari",
        "Mobile Safari",
        "Mobile Safari UI/WKWebView",
        "Firefox",
        "Firefox Mobile",
        "Firefox iOS",
        "Edge",
        "Edge Mobile",
        "Opera",
        "Opera Mobile",
        "Samsung Internet",
        "Yandex Browser",
        "UC Browser",
        "MiuiBrowser",
        "Facebook",
        "Instagram",
    }
)


@dataclass(frozen=True, slots=True)
class Enrichment:
    geo: Geo
    device: Device
    bot: BotReason  # "" for a human


class Enricher:
    def __init__(self, mmdb_path: str | PathLike[str] | None = None) -> None:
        """Raises ValueError naming the path when the .mmdb cannot be opened."""
        self._geo = GeoLookup(mmdb_path)
        self._traits = functools.lru_cache(maxsize=TRAITS_CACHE_SIZE)(self._flat)
        for agent in _WARM_UP_UAS:
            parse_device(agent)
        bot_reason(_WARM_UP_UAS[0], "GET")
        self.watch()

    def watch(self) -> None:
        """Its caches are the ones /metrics shows (a worker has one Enricher; the last made wins)."""
        watch_cache("traits", self._traits.cache_info)
        watch_cache("geo", self._geo.cache_info)

    def enrich(self, ip: str, user_agent: str, method: str) -> Enrichment:
        device, bot = _agent(user_agent, method)
        return Enrichment(self._geo.lookup(ip), device, bot)

    def traits(self, ip: str, user_agent: str, method: str) -> Traits:
        """enrich() flattened into the domain's Traits, the shape clicks are stored in. Cached as
        a whole too: a visitor's clicks repeat all three inputs, and Traits are immutable."""
        return self._traits(ip, user_agent, method)

    def _flat(self, ip: str, user_agent: str, method: str) -> Traits:
        # A campaign's clicks nearly all bring a new address while their User-Agents repeat: the
        # User-Agent's half comes from a cache of its own, so a new visitor costs a GEO lookup.
        geo = self._geo.lookup(ip)
        return fit_traits(
            Traits(geo.country, geo.region, geo.city, geo.asn, *_agent_traits(user_agent, method))
        )


def _agent(user_agent: str, method: str) -> tuple[Device, BotReason]:
    device = parse_device(user_agent)
    known = device.browser in MAINSTREAM_BROWSERS and device.os not in ("", "Other")
    bot = bot_reason(user_agent, method, known)
    # The two verdicts agree, so a report filtering on either counts the same clicks:
    # ua-parser's spiders are (so far) a subset of crawlerdetect's, and anything bot_reason
    # names is a bot whatever device it claims to be.
    if not bot and device.type == "bot":
        bot = "crawler"
    elif bot and device.type != "bot":
        device = replace(device, type="bot")
    return device, bot


@functools.lru_cache(maxsize=DEVICE_CACHE_SIZE)
def _agent_traits(user_agent: str, method: str) -> tuple[str, str, str, str]:
    """The User-Agent's half of the traits: device type, OS, browser, bot reason."""
    device, bot = _agent(user_agent, method)
    return device.type, device.os, device.browser, bot


# The caches a click meets: the visitor's whole traits and the address's GEO (per Enricher), the
# User-Agent's half; ua-parser's and crawlerdetect's own only on a User-Agent's first click.
watch_cache("agent", _agent_traits.cache_info)
watch_cache("device", parse_device.cache_info)
watch_cache("bot", bot_reason.cache_info)
