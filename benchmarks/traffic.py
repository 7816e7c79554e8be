"""A campaign's clicks as they arrive, for benchmarks/click_vs_nginx.py --traffic realistic.

Real traffic never comes from one IP with one User-Agent: every click brings its own address (a
GEO lookup) and one of thousands of User-Agents (a parse, unless cached). This module writes that
mix, standard library only, in two forms that draw from the same tables with the same rules:
a Lua script for wrk (throughput runs) and `Mix.request()` for the open-loop client (fixed-rate
runs).

The mix, per click:
- the address: 70% IPv4, 30% IPv6, from public networks of every region (the RIRs' big
  allocations); 20% of clicks come from a pool of 2,000 carrier and office gateways (NAT: many
  users behind one address), the rest from a random host of a random network;
- the User-Agent: one of `UA_COUNT` (about 3,000) written here from the browsers, versions,
  operating systems and devices a mobile-heavy iGaming campaign sees, in-app webviews (Facebook,
  Instagram, TikTok), and bots and link previews (about 2% of the weight); drawn with a
  Zipf-like long tail (the k-th most common UA about 1/k as likely);
- the link: one of `LINKS` codes (given by the caller: links of several offers whose templates
  use several macros), Zipf-weighted too;
- `sub1` one of 400 campaign values (Zipf), `sub2` one of 30 creatives, `source` one of 8 and
  `lp` one of 5 landing pages.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# Networks clicks come from: (first octets, how many octets are fixed). Each a big allocation of
# one registry, spread over the regions an iGaming campaign buys (EU, UK, LatAm, NA, Asia, Africa).
IPV4_NETWORKS: tuple[str, ...] = (
    "2", "5", "31", "37", "46", "62", "77", "78", "79", "80", "81", "82", "83", "84", "85", "86",
    "87", "88", "89", "90", "91", "92", "93", "94", "95", "109", "151", "176", "178", "185", "188",
    "193", "194", "195", "212", "213", "217",  # RIPE (Europe, Middle East)
    "24", "50", "64", "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "96",
    "97", "98", "99", "104", "107", "108", "173", "174", "184",  # ARIN (North America)
    "177", "179", "181", "186", "187", "189", "190", "191", "200", "201",  # LACNIC
    "1", "14", "27", "36", "39", "42", "49", "58", "59", "60", "61", "101", "103", "110", "111",
    "112", "113", "114", "115", "116", "117", "118", "119", "120", "121", "122", "123", "124",
    "125", "180", "182", "183", "202", "203", "210", "211", "218", "219", "220", "221", "222",  # APNIC
    "41", "102", "105", "154", "196", "197",  # AFRINIC
)  # fmt: skip
# IPv6: the first 16 bits of the RIRs' /12s (a random host under each).
IPV6_NETWORKS: tuple[str, ...] = (
    "2a00", "2a01", "2a02", "2a03", "2a04", "2a05", "2a0a", "2a10",  # RIPE
    "2600", "2601", "2602", "2603", "2604", "2605", "2606", "2607",  # ARIN
    "2800", "2801", "2803", "2804",  # LACNIC
    "2400", "2401", "2402", "2403", "2404", "2405", "2406", "2407", "2408", "2409",  # APNIC
    "2c0f",  # AFRINIC
)  # fmt: skip
IPV6_SHARE = 0.30
GATEWAY_SHARE = 0.20
GATEWAYS = 2_000
UA_COUNT = 3_000
SUB1_VALUES = 400
SUB2_VALUES = 30
SOURCES = ("facebook", "google", "tiktok", "telegram", "push", "native", "seo", "email")
LANDING_PAGES = ("lp1", "lp2", "lp3", "quiz", "bonus")

_ANDROID_MODELS = (
    "SM-A515F", "SM-A525F", "SM-A536B", "SM-A546B", "SM-S911B", "SM-S918B", "SM-G991B", "SM-G998B",
    "SM-A145R", "SM-A055F", "Redmi Note 8 Pro", "Redmi Note 9", "Redmi Note 10S", "Redmi Note 11",
    "Redmi Note 12", "22101316G", "23021RAA2Y", "M2101K6G", "POCO X3 NFC", "Pixel 6", "Pixel 7",
    "Pixel 8 Pro", "CPH2219", "CPH2457", "RMX3363", "RMX3630", "V2111", "V2207", "moto g(30)",
    "moto g54 5G", "TECNO KG5k", "Infinix X6816", "itel A665L", "HUAWEI P30 lite", "ELE-L29",
    "LM-K420", "Nokia G21", "2201117TY", "A142", "K",
)  # fmt: skip
_ANDROID_VERSIONS = ("9", "10", "11", "12", "13", "14", "15")
_IOS_VERSIONS = ("15_7", "15_8", "16_1", "16_5", "16_6", "17_0", "17_1", "17_2", "17_4", "17_5",
                 "17_6", "18_0", "18_1", "18_2", "18_3", "18_5")  # fmt: skip
_CHROME = tuple(
    f"{major}.0.{build}.{patch}" for major in range(108, 132) for build, patch in ((6099, 144), (6261, 94))
)
_FIREFOX = tuple(f"{v}.0" for v in range(110, 134))
_WINDOWS = ("Windows NT 10.0; Win64; x64", "Windows NT 10.0; WOW64", "Windows NT 6.1; Win64; x64")
_MACS = (
    "Macintosh; Intel Mac OS X 10_15_7",
    "Macintosh; Intel Mac OS X 13_6",
    "Macintosh; Intel Mac OS X 14_5",
)
_BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot/1.0",
    "TelegramBot (like TwitterBot)",
    "WhatsApp/2.23.20.0 A",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "",
)


def user_agents(count: int = UA_COUNT, seed: int = 7) -> list[str]:
    """`count` distinct User-Agents, most common first: mobile browsers and in-app webviews lead
    (iGaming traffic is mostly phones), desktops follow, and bots are spread through the list
    (their share of the Zipf weight is about 2%)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []

    def android() -> str:
        v, model, chrome = rng.choice(_ANDROID_VERSIONS), rng.choice(_ANDROID_MODELS), rng.choice(_CHROME)
        kind = rng.random()
        base = f"Mozilla/5.0 (Linux; Android {v}; {model}) AppleWebKit/537.36 (KHTML, like Gecko)"
        if kind < 0.55:
            return f"{base} Chrome/{chrome} Mobile Safari/537.36"
        if kind < 0.70:
            return f"{base} SamsungBrowser/{rng.randint(20, 26)}.0 Chrome/{chrome} Mobile Safari/537.36"
        if kind < 0.85:  # a webview: Facebook's, Instagram's or TikTok's in-app browser
            build = f"{rng.randint(10, 60)}.{rng.randint(10, 120)}"
            app = rng.choice(
                (
                    f"[FB_IAB/FB4A;FBAV/{rng.randint(400, 480)}.0.0.{build};]",
                    f"Instagram {rng.randint(280, 330)}.0.0.{build} Android",
                    f"trill_{rng.randint(300000, 340000)} JsSdk/1.0 NetType/WIFI Channel/googleplay",
                )
            )
            return f"{base} Version/4.0 Chrome/{chrome} Mobile Safari/537.36 {app}"
        fx = rng.choice(_FIREFOX)
        return f"Mozilla/5.0 (Android {v}; Mobile; rv:{fx}) Gecko/{fx} Firefox/{fx}"

    def iphone() -> str:
        ios = rng.choice(_IOS_VERSIONS)
        base = (
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko)"
        )
        kind = rng.random()
        if kind < 0.6:
            return f"{base} Version/{ios.replace('_', '.')} Mobile/15E148 Safari/604.1"
        if kind < 0.75:
            return f"{base} CriOS/{rng.choice(_CHROME)} Mobile/15E148 Safari/604.1"
        return (
            f"{base} Mobile/21A{rng.randint(300, 400)} [FBAN/FBIOS;FBAV/{rng.randint(400, 480)}.0.0."
            f"{rng.randint(10, 60)}.{rng.randint(10, 120)};FBBV/{rng.randint(500000000, 600000000)}]"
        )

    def desktop() -> str:
        kind = rng.random()
        if kind < 0.6:
            return (
                f"Mozilla/5.0 ({rng.choice(_WINDOWS)}) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{rng.choice(_CHROME)} Safari/537.36"
                + (f" Edg/{rng.choice(_CHROME)}" if rng.random() < 0.2 else "")
            )
        if kind < 0.8:
            return (
                f"Mozilla/5.0 ({rng.choice(_MACS)}) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"Version/{rng.randint(15, 18)}.{rng.randint(0, 6)} Safari/605.1.15"
            )
        fx = rng.choice(_FIREFOX)
        return f"Mozilla/5.0 ({rng.choice(_WINDOWS)}; rv:{fx}) Gecko/20100101 Firefox/{fx}"

    makers = ((android, 0.50), (iphone, 0.30), (desktop, 0.20))
    bots = list(_BOTS)
    while len(out) < count:
        # Bots sit at every 25th place from the 10th: about 2% of a 1/k weight over the list.
        if bots and len(out) >= 10 and len(out) % 25 == 10:
            ua = bots.pop(0)
        else:
            r, acc, ua = rng.random(), 0.0, ""
            for make, share in makers:
                acc += share
                if r < acc:
                    ua = make()
                    break
        if ua not in seen:
            seen.add(ua)
            out.append(ua)
    return out


def zipf_index(u: float, n: int) -> int:
    """A Zipf-like (s=1) draw from 0..n-1 for a uniform u in [0, 1): n**u is log-uniform on
    [1, n), whose density falls as 1/k. The Lua script does the same."""
    return min(int(n**u) - 1, n - 1)


class Mix:
    """The clicks of one run: `links` (link codes) and `user_agents` (most common first)."""

    def __init__(self, links: Sequence[str], agents: Sequence[str], seed: int = 1) -> None:
        self.links, self.user_agents = tuple(links), tuple(agents)
        self._rng = random.Random(seed)
        self._gateways = tuple(self._random_ip() for _ in range(GATEWAYS))

    def _random_ip(self) -> str:
        rng = self._rng
        if rng.random() < IPV6_SHARE:
            head = rng.choice(IPV6_NETWORKS)
            return head + "".join(f":{rng.randrange(65536):x}" for _ in range(7))
        head = rng.choice(IPV4_NETWORKS)
        return head + "".join(f".{rng.randrange(1, 255)}" for _ in range(3))

    def request(self) -> tuple[str, str, str]:
        """(path, User-Agent, X-Forwarded-For) of the next click."""
        rng = self._rng
        ip = rng.choice(self._gateways) if rng.random() < GATEWAY_SHARE else self._random_ip()
        ua = self.user_agents[zipf_index(rng.random(), len(self.user_agents))]
        code = self.links[zipf_index(rng.random(), len(self.links))]
        path = (
            f"/c/{code}?sub1=campaign-{zipf_index(rng.random(), SUB1_VALUES)}"
            f"&sub2=creative-{rng.randrange(SUB2_VALUES)}&source={rng.choice(SOURCES)}"
            f"&lp={rng.choice(LANDING_PAGES)}"
        )
        return path, ua, ip


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lua_list(values: Sequence[str]) -> str:
    return "{" + ",\n".join(_lua_string(v) for v in values) + "}"


def lua_script(mix: Mix, pacing: str = "") -> str:
    """wrk's request() drawing each click from the mix (its own random stream per thread);
    `pacing` is appended (the delay() of a fixed-rate run, if any)."""
    return f"""-- written by benchmarks/traffic.py: a campaign's clicks (see its docstring)
local links = {_lua_list(mix.links)}
local uas = {_lua_list(mix.user_agents)}
local v4 = {_lua_list(IPV4_NETWORKS)}
local v6 = {_lua_list(IPV6_NETWORKS)}
local sources = {_lua_list(SOURCES)}
local lps = {_lua_list(LANDING_PAGES)}
local gateways = {{}}
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("seed", threads)
end

local function zipf(n)
    return math.min(math.floor(n ^ math.random()) , n)
end

local function random_ip()
    if math.random() < {IPV6_SHARE} then
        local parts = {{v6[math.random(#v6)]}}
        for i = 1, 7 do parts[#parts + 1] = string.format("%x", math.random(0, 65535)) end
        return table.concat(parts, ":")
    end
    return string.format("%s.%d.%d.%d", v4[math.random(#v4)], math.random(1, 254),
        math.random(1, 254), math.random(1, 254))
end

function init(args)
    math.randomseed(os.time() * 1000 + (seed or 0))
    for i = 1, {GATEWAYS} do gateways[i] = random_ip() end
end

function request()
    local ip
    if math.random() < {GATEWAY_SHARE} then ip = gateways[math.random(#gateways)] else ip = random_ip() end
    local path = string.format("/c/%s?sub1=campaign-%d&sub2=creative-%d&source=%s&lp=%s",
        links[zipf(#links)], zipf({SUB1_VALUES}) - 1, math.random(0, {SUB2_VALUES - 1}),
        sources[math.random(#sources)], lps[math.random(#lps)])
    return wrk.format("GET", path, {{["User-Agent"] = uas[zipf(#uas)], ["X-Forwarded-For"] = ip}})
end
{pacing}"""
