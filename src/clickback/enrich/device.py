"""Device type, OS and browser from the User-Agent, parsed by ua-parser and cached.

The type is decided from ua-parser's device, OS and browser results, first rule wins:
1. empty (or blank) User-Agent -> "unknown";
2. device family "Spider" (ua-parser's name for crawlers and preview fetchers) -> "bot";
3. device family iPad*, Kindle* or "Generic Tablet", or brand "Generic_Android_Tablet" (ua-parser's
   verdict for an Android UA without the "Mobile" token, which phones send and tablets omit) -> "tablet";
4. OS iOS, Android, Windows Phone, KaiOS, BlackBerry OS, Symbian OS or Firefox OS -> "mobile";
5. any other OS that ua-parser recognised -> "desktop";
6. nothing recognised (curl, game consoles, gibberish) -> "unknown".

The device results come from ua-parser's device rules of crawlers, Apple, Amazon and the generic
kinds only (DEVICE_RULE_BRANDS: 58 of its 633), not from the 575 rules naming a maker's models:
clickback keeps no model, and those rules took 11 MB of each worker's memory (issue 17's 150 MB).
They also came first, so an Android tablet without "Mobile" that one of them named (a Lenovo
TB-X606F, a Pixel Tablet, a Samsung SM-T585's in-app browser) was not the generic Android tablet
and counted as "mobile"; rule 3 now holds for every maker.

Known blind spots, all from the UA string itself: Safari on iPadOS 13+ asks for desktop sites and sends
a Macintosh UA, so most iPads count as "desktop"; Android TVs and set-top boxes omit "Mobile" and count
as "tablet", as does a phone whose browser omits it; an Android app's own HTTP client (Dalvik/...)
counts as "mobile".

os and browser are ua-parser's family names ("iOS", "Mac OS X", "Chrome Mobile", "Mobile Safari"),
"" when not recognised.
"""

import functools
from dataclasses import dataclass
from typing import Literal

from ua_parser import Parser, load_lazy_builtins
from ua_parser.core import Device as ParsedDevice
from ua_parser.core import Matcher
from ua_parser.lazy import DeviceMatcher

try:
    # Imported directly, not through ua_parser's best-available choice, so a missing accelerator
    # fails loudly instead of silently falling back to the pure-Python resolver (75x slower).
    from ua_parser.regex import Resolver as RegexResolver
except ImportError as exc:  # pragma: no cover - only without the extra installed
    raise ImportError("clickback needs ua-parser[regex] (the ua-parser-rs accelerator)") from exc

DeviceType = Literal["desktop", "mobile", "tablet", "bot", "unknown"]

# A miss costs 20-70 us of regex work, a hit 0.1 us; UAs are cropped to 512 characters upstream, so a
# full cache stays around 10 MB.
DEVICE_CACHE_SIZE = 16_384

MOBILE_OS = frozenset(
    {"iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS", "Symbian OS", "Firefox OS"}
)


@dataclass(frozen=True, slots=True)
class Device:
    type: DeviceType = "unknown"
    os: str = ""
    browser: str = ""


# The brands of the device rules whose results decide a type (see the module's docstring).
DEVICE_RULE_BRANDS = frozenset(
    {"Spider", "Apple", "Amazon", "Generic", "Generic_Android", "Generic_Android_Tablet"}
)


@functools.cache
def _parser() -> Parser:
    # Built on first use: compiling the ~700 rules takes ~0.07 s, which command-line runs that
    # never parse a UA should not pay. No ua-parser cache inside: parse_device's LRU sits in front.
    agents, systems, devices = load_lazy_builtins()
    kept: list[Matcher[ParsedDevice]] = [
        rule for rule in devices if isinstance(rule, DeviceMatcher) and rule.brand in DEVICE_RULE_BRANDS
    ]
    return Parser(RegexResolver((agents, systems, kept)))


@functools.lru_cache(maxsize=DEVICE_CACHE_SIZE)
def parse_device(user_agent: str) -> Device:
    if not user_agent.strip():
        return Device()
    result = _parser().parse(user_agent)
    os_family = result.os.family if result.os else ""
    browser = result.user_agent.family if result.user_agent else ""
    family = result.device.family if result.device else ""
    brand = result.device.brand if result.device else None
    kind: DeviceType
    if family == "Spider":
        kind = "bot"
    elif (
        family.startswith(("iPad", "Kindle"))
        or family == "Generic Tablet"
        or brand == "Generic_Android_Tablet"
    ):
        kind = "tablet"
    elif os_family in MOBILE_OS:
        kind = "mobile"
    elif os_family and os_family != "Other":
        kind = "desktop"
    else:
        kind = "unknown"
    return Device(type=kind, os=os_family, browser=browser)
