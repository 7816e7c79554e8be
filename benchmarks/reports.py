#!/usr/bin/env python3
"""Report timings on a month of realistic traffic: 10 million clicks, 300,000 conversions.

**Generation** (skipped with --reuse when the database already holds a complete data set). A
fresh database (a SQLite file, or a new PostgreSQL database with --pg) is migrated with
`clickback migrate`, then `clickback serve --workers 2` is started on it and, through its HTTP
API: 20 advertisers, 60 iGaming offers (casino with the Hybrid preset deal, sportsbook CPA, poker
RevShare; a third list default payouts per event), 200 affiliates, 1,000 tracking links, and
affiliate-specific deals for the biggest affiliates.

Clicks do not go through the redirect (10 million redirects would take hours here): this script
builds `Click` values as the tracker builds them and writes them with the click writer's own store
function, `clickback.store.clicks.write_batch` (batches of --batch, 5,000 by default, where the
server's writer flushes 1,000), which decides uniqueness against the visitors table, inserts the
clicks and adds them to the report counters in one transaction: the **bulk equivalent of the real
write path**, skipping only HTTP, enrichment and the in-memory buffer. Click IDs are minted by the real
`ClickIdCodec` with the server's key, dated at the click, so postbacks verify them. The data:
the 30 days ending yesterday (UTC), in time order; a diurnal curve (low at 08:00 UTC, high at
20:00) and busier weekends; link traffic Zipf-skewed (s=1); each offer's traffic from 2-4
target countries (85%) and a tail of 40; a mix of ten device/OS/browser profiles; 3% bot clicks
(crawlers, link previews, empty user agents); 8% repeat visits (not unique). Sub IDs belong to
the link that passes them, as an affiliate's placements and creatives do: 20,000 sub1 values in
all, each link's share by its traffic (at least 3; Zipf within the link), sub2 from the link's
own 1 to 20 creatives (40% empty), sub3..sub5 mostly empty; each link's traffic from 1 to 3 of
50 sources, each offer's landing pages 3 to 6 of 30.
Visitors unseen for longer than the unique window are pruned once a simulated day, as the server
does. A sample of non-bot clicks (weighted by a per-link conversion rate) become players.

Conversions go through the **real postback path**: HTTP `GET /postback` to the server, from 16
keep-alive connections, in phases: registrations (45% of --conversions), first deposits (20%, 7%
of them first sent `pending`), deposits (22%, most by a few players), monthly `net_revenue` reports (8%,
some negative), then status changes (5%: pending first deposits approved or rejected, deposits
rejected). Each carries the click ID, `player_id`, `txn_id` where the event repeats, and an
`event_time` after its click (and after the player's previous event), never in the future. The
deals book CPA and RevShare entries in the commission ledger as the postbacks arrive. On
PostgreSQL, VACUUM ANALYZE afterwards: autovacuum would have by the time anyone reads a report
(PostgreSQL 13 and later vacuum a table after inserts too), and its visibility map is what lets
the report count a month's rows from the key's index alone.

**Timing.** A new `clickback serve --workers 2` on the generated database; over HTTP, with a new
connection per request (either worker may answer): (a) the standard report: 30 days,
group_by=day,affiliate,offer,country, limit=100; (b) sub1, top 100 by clicks; (c) hourly for the
affiliate with the most clicks, in America/New_York; (d) (a) in Europe/Berlin; (e) (a) as CSV
without limit, streamed (bytes and time). Each is asked once after the start (cold) and then
--warm times (median). Printed per report: the `source` the reply names (`-` if none), rows,
bytes, and the issue's targets (0.3 s on PostgreSQL, 0.5 s on SQLite). Each worker's peak RSS
(VmHWM) is read from /proc before and after the reports: the issue asks for none above 150 MB.
Against an API without zone/sort/limit/hour (the report engine before its rewrite), the reply's
own fields say what was ignored; a report whose grouping is refused (422) is marked `n/a`.
--report-zones sets CLICKBACK_REPORT_ZONES for the server and the same zones for the click
writer (whose rollups keep those zones' local days): e.g. UTC,Europe/Berlin for (d) from days.

Runs under the app's virtualenv (it imports clickback): .venv/bin/python benchmarks/reports.py.
Every process it starts is stopped at the end, on Ctrl-C or SIGTERM too; the temporary database
is removed (kept with --reuse or --db-file).

Usage: .venv/bin/python benchmarks/reports.py [--clicks 10000000] [--conversions 300000]
           [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--pg-db reports_bench]
           [--db-file PATH] [--reuse] [--warm 5] [--report-zones UTC] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import json
import math
import os
import random
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from bisect import bisect
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import text

from click_vs_nginx import (
    API_KEY,
    CLICKBACK,
    HOST,
    BenchError,
    api_post,
    free_port,
    interrupt,
    request,
    running,
    tail,
    wait_ready,
)
from clickback.core.clickids import ClickIdCodec
from clickback.core.model import Click, Traits
from clickback.store.clicks import prune_visitors, write_batch
from clickback.store.db import connect

DAYS = 30
ADVERTISERS, OFFERS, AFFILIATES, LINKS = 20, 60, 200, 1000
SUB1_VALUES, SOURCES, LANDING_PAGES = 20_000, 50, 30
LINK_ZIPF = 1.0
BOT_SHARE = 0.03
REPEAT_SHARE = 0.08  # clicks by a visitor who clicked the same link earlier in the hour
UNIQUE_WINDOW_MS = 24 * 3_600_000  # the server's default CLICKBACK_UNIQUE_WINDOW_HOURS
POSTBACK_CONNECTIONS = 16
CATALOG_THREADS = 4
POSTBACK_TIMEOUT_S = 30.0
MIGRATE_TIMEOUT_S = 300.0
PEAK_RSS_TARGET_MB = 150
TARGET_S = {"postgresql": 0.3, "sqlite": 0.5}
# A report slower than this once is asked only twice more: a bounded run on a slow engine.
SLOW_REPORT_S = 10.0
MANIFEST_VERSION = 2

TOP_GEOS = ["DE", "GB", "CA", "BR", "IN", "FI", "NO", "SE", "AU", "NZ", "PL", "IT", "ES", "MX", "AT", "CH"]
TAIL_GEOS = (
    "US FR NL BE IE DK PT CZ GR HU RO BG TR JP KR CL PE AR CO ZA NG KE EG MA SA AE IL TH VN ID "
    "MY PH SG HK TW UA KZ RS HR SK"
).split()
# (weight, device_type, os, browser, user agent, bot reason): what enrichment makes of each UA.
PROFILES = [
    (30, "mobile", "Android", "Chrome Mobile", "Mozilla/5.0 (Linux; Android 14) Chrome/124.0 Mobile", ""),
    (22, "mobile", "iOS", "Mobile Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Safari/604.1", ""),
    (5, "mobile", "Android", "Samsung Internet", "Mozilla/5.0 (Linux; Android 13) SamsungBrowser/24.0", ""),
    (3, "tablet", "iOS", "Mobile Safari", "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) Safari", ""),
    (18, "desktop", "Windows", "Chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0", ""),
    (6, "desktop", "Windows", "Edge", "Mozilla/5.0 (Windows NT 10.0; Win64) Chrome/124.0 Edg/124.0", ""),
    (4, "desktop", "Windows", "Firefox", "Mozilla/5.0 (Windows NT 10.0; rv:125.0) Firefox/125.0", ""),
    (6, "desktop", "Mac OS X", "Safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) Safari/605.1", ""),
    (2, "desktop", "Linux", "Firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Firefox/125.0", ""),
    (4, "unknown", "", "", "Mozilla/5.0 (compatible; unknown app webview)", ""),
]
BOT_PROFILES = [
    (5, "bot", "", "Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1)", "crawler"),
    (3, "unknown", "", "", "curl/8.5.0", "crawler"),
    (2, "unknown", "", "", "TelegramBot (like TwitterBot)", "link_preview"),
    (1, "unknown", "", "", "", "empty_user_agent"),
]
SOURCE_NAMES = ["facebook", "google", "tiktok", "telegram", "youtube", "twitter", "reddit", "seo", "email"]
VERTICALS = ["casino"] * 5 + ["sportsbook"] * 3 + ["poker"] * 2
CURRENCIES = ["EUR"] * 6 + ["USD"] * 3 + ["GBP"]
DEPOSITS = [10, 20, 20, 25, 30, 50, 50, 100, 100, 150, 200, 500, 1000]


def log(line: str) -> None:
    print(line, flush=True)


def zipf_cum(n: int, s: float) -> list[float]:
    return list(accumulate(1 / (k**s) for k in range(1, n + 1)))


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the database -------------------------------------------------------------------------


@dataclass
class Target:
    """Where the data set lives: a SQLite file or a PostgreSQL database of its own."""

    pg: str | None
    pg_db: str
    sqlite_file: Path | None

    @property
    def dialect(self) -> str:
        return "postgresql" if self.pg else "sqlite"

    @property
    def url(self) -> str:
        if self.pg:
            return self.pg.rsplit("/", 1)[0] + "/" + self.pg_db
        return f"sqlite+aiosqlite:///{self.sqlite_file}"

    @property
    def manifest_file(self) -> Path:
        assert self.sqlite_file is not None
        return self.sqlite_file.with_name(self.sqlite_file.name + ".bench.json")

    def shown(self) -> str:
        return f"PostgreSQL database {self.pg_db}" if self.pg else f"SQLite file {self.sqlite_file}"

    def drop(self) -> None:
        if self.pg:
            admin(self.pg, f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')
        else:
            assert self.sqlite_file is not None
            for suffix in ("", "-wal", "-shm", ".bench.json", ".lock", ".write-lock"):
                with contextlib.suppress(FileNotFoundError):
                    Path(str(self.sqlite_file) + suffix).unlink()

    def create(self) -> None:
        self.drop()
        if self.pg:
            admin(self.pg, f'CREATE DATABASE "{self.pg_db}"')

    def exists(self) -> bool:
        if self.pg:
            return bool(admin(self.pg, "SELECT count(*) FROM pg_database WHERE datname = :n", n=self.pg_db))
        assert self.sqlite_file is not None
        return self.sqlite_file.exists()

    def manifest(self) -> dict[str, Any] | None:
        """What a completed generation left behind: on PostgreSQL the database's comment, on
        SQLite a file beside the database."""
        raw: str | None = None
        if self.pg:
            raw = admin(
                self.pg,
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n",
                n=self.pg_db,
            )
        elif self.manifest_file.exists():
            raw = self.manifest_file.read_text()
        with contextlib.suppress(ValueError, TypeError):
            doc = json.loads(raw or "")
            if isinstance(doc, dict) and doc.get("version") == MANIFEST_VERSION:
                return doc
        return None

    def save_manifest(self, doc: dict[str, Any]) -> None:
        raw = json.dumps(doc)
        if self.pg:  # a comment is a literal, not a parameter: quotes doubled
            quoted = raw.replace("'", "''")
            admin(self.pg, f"COMMENT ON DATABASE \"{self.pg_db}\" IS '{quoted}'")
        else:
            self.manifest_file.write_text(raw)

    def analyze(self) -> None:
        if self.pg:
            admin(self.url, "VACUUM ANALYZE")


def admin(url: str, statement: str, **params: Any) -> Any:
    """One statement outside a transaction (CREATE DATABASE, VACUUM); its first value, if any."""

    async def run() -> Any:
        db = connect(url)
        try:
            async with db.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                result = await conn.execute(text(statement), params)
                return result.scalar() if result.returns_rows else None
        finally:
            await db.close()

    return asyncio.run(run())


def server_env(target: Target, data: Path, port: int, secret: str, zones: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
    return env | {
        "CLICKBACK_REPORT_ZONES": zones,
        "CLICKBACK_DATA_DIR": str(data),
        "CLICKBACK_DATABASE_URL": target.url,
        "CLICKBACK_API_KEY": API_KEY,
        "CLICKBACK_SECRET_KEY": secret,
        "CLICKBACK_PUBLIC_URL": f"http://{HOST}:{port}",
        # Nothing here is to be requested: the offers' hosts are example.com.
        "CLICKBACK_LINK_CHECK_MINUTES": "0",
    }


def serve_cmd(port: int, workers: int) -> tuple[str, ...]:
    return (str(CLICKBACK), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers))


# --- the catalog, through the API -----------------------------------------------------------


@dataclass
class Catalog:
    tokens: dict[int, str] = field(default_factory=dict)  # advertiser id → token
    # offer id → (advertiser id, currency, vertical)
    offers: dict[int, tuple[int, str, str]] = field(default_factory=dict)
    affiliates: list[int] = field(default_factory=list)
    links: list[tuple[int, int, int, str]] = field(default_factory=list)  # (id, affiliate, offer, campaign)
    deals: int = 0


def new_id(port: int, path: str, body: dict[str, object]) -> int:
    return int(str(api_post(port, path, body)["id"]))


def build_catalog(port: int, rnd: random.Random) -> Catalog:
    cat = Catalog()
    for n in range(ADVERTISERS):
        adv = api_post(port, "/api/advertisers", {"name": f"Operator {n + 1}"})
        cat.tokens[int(str(adv["id"]))] = str(adv["token"])
    advertisers = list(cat.tokens)
    for n in range(OFFERS):
        vertical = VERTICALS[n % len(VERTICALS)]
        currency = rnd.choice(CURRENCIES)
        body: dict[str, object] = {
            "advertiser_id": advertisers[n % ADVERTISERS],
            "name": f"{vertical.title()} {n + 1}",
            "url_template": f"https://brand{n + 1}.example.com/welcome?btag={{click_id}}&s1={{sub1}}",
            "currency": currency,
            "vertical": vertical,
        }
        if n % 3 == 0:  # an operator that pays a fixed revenue per event, whatever was deposited
            body["payouts"] = {"registration": "2.00", "first_deposit": "60.00", "deposit": "4.00"}
        cat.offers[new_id(port, "/api/offers", body)] = (advertisers[n % ADVERTISERS], currency, vertical)
    for n in range(AFFILIATES):
        cat.affiliates.append(new_id(port, "/api/affiliates", {"name": f"Partner {n + 1}"}))
    offers = list(cat.offers)
    aff_cum, offer_cum = zipf_cum(AFFILIATES, 1.0), zipf_cum(OFFERS, 0.8)
    planned: list[dict[str, object]] = []
    for n in range(LINKS):
        # Every affiliate has a link; the rest go mostly to the big ones.
        aff = cat.affiliates[n] if n < AFFILIATES else rnd.choices(cat.affiliates, cum_weights=aff_cum)[0]
        offer = rnd.choices(offers, cum_weights=offer_cum)[0]
        planned.append({"affiliate_id": aff, "offer_id": offer, "campaign": f"c{n + 1}"})
    # A few at a time: one by one, each waiting for its commit, they took most of a minute.
    with ThreadPoolExecutor(CATALOG_THREADS) as pool:
        ids = list(pool.map(lambda body: new_id(port, "/api/links", body), planned))
    cat.links = [
        (i, int(str(b["affiliate_id"])), int(str(b["offer_id"])), str(b["campaign"]))
        for i, b in zip(ids, planned, strict=True)
    ]
    # The ten biggest affiliates negotiated their own terms on their first offer.
    for aff in cat.affiliates[:10]:
        offer = next(o for _, a, o, _ in cat.links if a == aff)
        vertical = cat.offers[offer][2]
        deal: dict[str, object] = (
            {"revshare": {"percent": "40"}}
            if vertical == "poker"
            else {"cpa": {"amount": "150", "hold_days": 0}}
        )
        status, _, raw = request(port, "PUT", f"/api/offers/{offer}/deals/{aff}", deal)
        if status != 200:
            raise BenchError(f"PUT deal for offer {offer}, affiliate {aff} gave {status}: {raw[:300]!r}")
        cat.deals += 1
    return cat


# --- clicks, through the click writer's store function --------------------------------------


@dataclass
class Player:
    click_id: str
    clicked_ms: int
    offer_id: int


class ClickMaker:
    """Clicks of one simulated hour at a time, with the distributions of the docstring."""

    def __init__(self, cat: Catalog, codec: ClickIdCodec, rnd: random.Random, player_rate: float) -> None:
        self.cat, self.codec, self.rnd = cat, codec, rnd
        order = list(range(len(cat.links)))
        rnd.shuffle(order)  # traffic rank independent of creation order
        self.links = [cat.links[i] for i in order]
        self.link_cum = zipf_cum(len(self.links), LINK_ZIPF)
        # Some links convert far better than others.
        self.link_cr = [player_rate * rnd.lognormvariate(0, 0.6) for _ in self.links]
        self.geos: dict[int, tuple[list[str], list[float]]] = {}
        tail_cum = zipf_cum(len(TAIL_GEOS), 1.0)
        for offer in cat.offers:
            targets = rnd.sample(TOP_GEOS, rnd.randint(2, 4))
            weights = [0.85 * w / sum(range(1, len(targets) + 1)) for w in range(len(targets), 0, -1)]
            weights += [
                0.15 * (b - a) / tail_cum[-1] for a, b in zip([0.0, *tail_cum], tail_cum, strict=False)
            ]
            self.geos[offer] = (targets + TAIL_GEOS, list(accumulate(weights)))
        self.profiles = PROFILES
        self.profile_cum = list(accumulate(p[0] for p in PROFILES))
        self.bot_cum = list(accumulate(p[0] for p in BOT_PROFILES))
        # Each link its own placements (sub1), creatives (sub2) and sources; each offer its pages.
        weights = [b - a for a, b in zip([0.0, *self.link_cum], self.link_cum, strict=False)]
        total = sum(weights)
        self.sub1: list[list[str]] = []
        self.sub1_cum: list[list[float]] = []
        self.sub2: list[list[str]] = []
        self.link_sources: list[list[str]] = []
        sources = [
            f"{SOURCE_NAMES[k % len(SOURCE_NAMES)]}{k // len(SOURCE_NAMES) or ''}" for k in range(SOURCES)
        ]
        for i, w in enumerate(weights):
            n = max(3, round(SUB1_VALUES * w / total))
            prefix = rnd.choice(["fb", "pub", "cr", "ad", "kw"])
            self.sub1.append([f"{prefix}{i}_{k}" for k in range(n)])
            self.sub1_cum.append(zipf_cum(n, 1.0))
            self.sub2.append([f"cr{k}" for k in range(rnd.randint(1, 20))])
            self.link_sources.append(rnd.sample(sources, rnd.randint(1, 3)))
        pages = [f"lp-{k + 1}" for k in range(LANDING_PAGES)]
        self.offer_pages = {offer: rnd.sample(pages, rnd.randint(3, 6)) for offer in cat.offers}
        self.visitor_pool = 1 << 40
        self.players: list[Player] = []
        self.by_affiliate: Counter[int] = Counter()

    def hour(self, start_ms: int, n: int) -> list[Click]:
        rnd, choices = self.rnd, self.rnd.choices
        links = choices(range(len(self.links)), cum_weights=self.link_cum, k=n)
        profiles = choices(self.profiles, cum_weights=self.profile_cum, k=n)
        stamps = sorted(start_ms + int(rnd.random() * 3_600_000) for _ in range(n))
        clicks: list[Click] = []
        random_ = rnd.random
        for k in range(n):
            ms = stamps[k]
            at = datetime.fromtimestamp(ms / 1000, UTC)
            if clicks and random_() < REPEAT_SHARE:
                # The same visitor on the same link again: a click that is not unique.
                prev = clicks[int(random_() * len(clicks))]
                click = prev._replace(click_id=self.codec.mint(at), clicked_at=at)
                clicks.append(click)
                self.by_affiliate[click.affiliate_id] += click.traits.bot == ""
                continue
            link_id, aff, offer, campaign = self.links[links[k]]
            geos, geo_cum = self.geos[offer]
            country = geos[min(bisect(geo_cum, random_() * geo_cum[-1]), len(geos) - 1)]
            if random_() < BOT_SHARE:
                _, device, os_, browser, ua, bot = BOT_PROFILES[
                    bisect(self.bot_cum, random_() * self.bot_cum[-1])
                ]
            else:
                _, device, os_, browser, ua, bot = profiles[k]
            v = int(random_() * self.visitor_pool)
            ip = f"{1 + (v >> 24) % 222}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
            u = random_()
            li = links[k]
            pool, cum = self.sub1[li], self.sub1_cum[li]
            source = rnd.choice(self.link_sources[li])
            subs = (
                pool[min(bisect(cum, random_() * cum[-1]), len(pool) - 1)] if u < 0.85 else "",
                rnd.choice(self.sub2[li]) if u < 0.6 else "",
                f"s3_{k % 20}" if u < 0.1 else "",
                f"s4_{k % 5}" if u < 0.05 else "",
                "x" if u < 0.02 else "",
            )
            click_id = self.codec.mint(at)
            click = Click(
                click_id,
                at,
                link_id,
                aff,
                offer,
                campaign,
                subs,
                source,
                rnd.choice(self.offer_pages[offer]),
                ip,
                ua,
                f"https://{source}.example.net/" if u < 0.5 else "",
                Traits(country, "", "", None, device, os_, browser, bot),
                hashlib.blake2b(v.to_bytes(8), digest_size=16).hexdigest(),
            )
            clicks.append(click)
            if not bot:
                self.by_affiliate[aff] += 1
                if random_() < self.link_cr[links[k]]:
                    self.players.append(Player(click_id, ms, offer))
        return clicks


def hour_weights(days: int, rnd: random.Random) -> list[float]:
    """A weight per hour of the period: diurnal (low at 08:00 UTC, high at 20:00), busier
    weekends, a little day-to-day noise."""
    weights = []
    for _ in range(days):
        day_factor = rnd.uniform(0.9, 1.1)
        for h in range(24):
            diurnal = 1 + 0.65 * math.cos((h - 20) / 24 * 2 * math.pi)
            weights.append(diurnal * day_factor)
    return weights


async def write_clicks(
    target: Target, maker: ClickMaker, total: int, first_day: date, batch: int, zones: str
) -> float:
    """All clicks of the period, hour by hour in time order; returns the seconds taken."""
    rnd = maker.rnd
    weights = hour_weights(DAYS, rnd)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    for n, d in enumerate(range(DAYS)):
        if (start + timedelta(days=d)).weekday() >= 5:
            for h in range(24):
                weights[n * 24 + h] *= 1.15
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    counts[-1] += total - sum(counts)
    start_ms = int(start.timestamp() * 1000)
    # The zones whose local days the server keeps: the writer keeps them too.
    db = connect(target.url, report_zones=zones.split(","))
    written = 0
    t0 = time.monotonic()
    try:
        for hour, n in enumerate(counts):
            hour_ms = start_ms + hour * 3_600_000
            clicks = maker.hour(hour_ms, n)
            # One batch after the other: building the next one while the writer thread writes
            # this one was a third slower (both hold the GIL most of the time).
            for at in range(0, len(clicks), batch):
                part = clicks[at : at + batch]
                written += await write_batch(db, part, refusals={}, unique_window_ms=UNIQUE_WINDOW_MS)
            if hour % 24 == 23:
                await prune_visitors(db, hour_ms + 3_600_000 - UNIQUE_WINDOW_MS)
                rate = written / (time.monotonic() - t0)
                log(f"  day {hour // 24 + 1}/{DAYS}: {written:,} clicks written, {rate:,.0f}/s")
    finally:
        await db.close()
    if written != total:
        raise BenchError(f"{total:,} clicks generated but {written:,} inserted")
    return time.monotonic() - t0


# --- conversions, through the postback endpoint -------------------------------------------------


def postback_phases(
    players: list[Player], cat: Catalog, total: int, now_ms: int, rnd: random.Random
) -> list[tuple[str, list[str]]]:
    """The postback paths of each phase, in the order they are sent."""
    n_reg = int(total * 0.45)
    n_ftd = int(total * 0.20)
    n_dep = int(total * 0.22)
    n_ngr = int(total * 0.08)
    n_change = total - n_reg - n_ftd - n_dep - n_ngr
    if len(players) < n_reg:
        raise BenchError(
            f"only {len(players):,} players drawn for {n_reg:,} registrations: fewer --conversions"
        )
    chosen = rnd.sample(players, n_reg)
    latest = now_ms - 120_000

    def path(p: Player, pid: str, event: str, at: int, **extra: str) -> str:
        adv, currency, _ = cat.offers[p.offer_id]
        query = {
            "token": cat.tokens[adv],
            "click_id": p.click_id,
            "event": event,
            "player_id": pid,
            "currency": currency,
            "event_time": iso(at),
            **extra,
        }
        return "/postback?" + urlencode(query)

    def after(at: int, mean_ms: float) -> int:
        return min(latest, at + 1000 + int(rnd.expovariate(1 / mean_ms)))

    regs, ftds, deps, ngrs, changes = [], [], [], [], []
    reg_at: list[int] = []
    for n, p in enumerate(chosen):
        at = after(p.clicked_ms, 20 * 60_000)
        reg_at.append(at)
        regs.append(path(p, f"P{n}", "registration", at))
    ftd_at: dict[int, int] = {}
    pending_ftds: list[str] = []
    for n in range(n_ftd):
        at = after(reg_at[n], 86_400_000)
        ftd_at[n] = at
        amount = rnd.choice(DEPOSITS)
        status = "pending" if rnd.random() < 0.07 else "approved"
        ftds.append(
            path(
                chosen[n], f"P{n}", "first_deposit", at, payout=f"{amount}.00", txn_id=f"F{n}", status=status
            )
        )
        if status == "pending":
            pending_ftds.append(path(chosen[n], f"P{n}", "first_deposit", at, txn_id=f"F{n}"))
    depositors = list(ftd_at)
    dep_cum = zipf_cum(len(depositors), 0.9)  # a few players make most deposits
    dep_paths: list[str] = []
    for n, who in enumerate(rnd.choices(depositors, cum_weights=dep_cum, k=n_dep)):
        at = after(ftd_at[who], 3 * 86_400_000)
        amount = rnd.choice(DEPOSITS)
        deps.append(path(chosen[who], f"P{who}", "deposit", at, payout=f"{amount}.00", txn_id=f"D{n}"))
        dep_paths.append(path(chosen[who], f"P{who}", "deposit", at, txn_id=f"D{n}"))
    for n, who in enumerate(rnd.sample(depositors, min(n_ngr, len(depositors)))):
        at = after(ftd_at[who], 5 * 86_400_000)
        ngr = round(rnd.gauss(40, 80), 2)
        ngrs.append(path(chosen[who], f"P{who}", "net_revenue", at, payout=f"{ngr:.2f}", txn_id=f"N{n}"))
    for again in pending_ftds[:n_change]:
        changes.append(again + "&status=" + ("rejected" if rnd.random() < 0.2 else "approved"))
    for again in rnd.sample(dep_paths, max(0, min(len(dep_paths), n_change - len(changes)))):
        changes.append(again + "&status=rejected")
    for group in (regs, ftds, deps, ngrs):
        rnd.shuffle(group)
    return [
        ("registrations", regs),
        ("first deposits", ftds),
        ("deposits", deps),
        ("net revenue", ngrs),
        ("status changes", changes),
    ]


async def send_postbacks(port: int, paths: Sequence[str]) -> Counter[str]:
    """Each path once, from keep-alive connections; the replies counted by result or reason."""
    outcomes: Counter[str] = Counter()
    todo = iter(paths)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for p in todo:
                for attempt in (1, 2):
                    try:
                        writer.write(f"GET {p} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), POSTBACK_TIMEOUT_S)
                        break
                    except (asyncio.IncompleteReadError, ConnectionError):
                        # A connection closed by the server between two requests: send it again.
                        writer.close()
                        if attempt == 2:
                            raise
                        reader, writer = await asyncio.open_connection(HOST, port)
                lines = head.decode("latin-1").split("\r\n")
                length = next(
                    (int(x.split(":", 1)[1]) for x in lines if x.lower().startswith("content-length:")), 0
                )
                body = await reader.readexactly(length) if length else b""
                status = lines[0].split()[1]
                try:
                    doc = json.loads(body)
                    what = doc.get("reason") or doc.get("result") or "?"
                except ValueError:
                    what = body[:60].decode(errors="replace")
                outcomes[f"{status} {what}"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(POSTBACK_CONNECTIONS)))
    return outcomes


# --- generation ---------------------------------------------------------------------------------


def copy_data_set(source: Path, target: Target, tmp: Path) -> dict[str, Any]:
    """--copy-from: a data set generated on SQLite into a new PostgreSQL database, table by
    table (COPY), rollups included as the SQLite writers made them: the same rows, without
    generating them again (hours here). The PostgreSQL write path is measured by postbacks.py
    and batch_writer.py; this measures its reports over the same data."""
    if not target.pg:
        raise BenchError("--copy-from needs --pg")
    found = Target(None, "", source.resolve()).manifest()
    if found is None:
        raise BenchError(f"{source} holds no complete data set (no {source}.bench.json)")
    log(f"copying {source} into {target.shown()}")
    target.create()
    data = tmp / "copy"
    data.mkdir()
    env = server_env(target, data, free_port(), found["secret"], found.get("report_zones", "UTC"))
    done = subprocess.run((str(CLICKBACK), "migrate"), env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchError(f"clickback migrate failed:\n{done.stdout}{done.stderr}")
    t0 = time.monotonic()
    asyncio.run(_copy_tables(source, target.url))
    target.analyze()
    manifest = dict(found) | {"copied_from_sqlite": True, "copy_seconds": round(time.monotonic() - t0, 1)}
    target.save_manifest(manifest)
    log(f"  copied in {time.monotonic() - t0:.0f} s")
    return manifest


async def _copy_tables(source: Path, url: str) -> None:
    import asyncpg  # the app's own driver

    from clickback.store.tables import metadata

    lite = sqlite3.connect(source)
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for table in metadata.sorted_tables:
            await pg.execute(f'TRUNCATE "{table.name}" CASCADE')
        for table in metadata.sorted_tables:
            names = [c.name for c in table.columns]
            kinds = [str(c.type.compile(dialect=_pg_dialect())).lower() for c in table.columns]
            cursor = lite.execute(f'SELECT {", ".join(names)} FROM "{table.name}"')  # noqa: S608
            n = 0
            while rows := cursor.fetchmany(50_000):
                records = [tuple(_pg_value(v, k) for v, k in zip(row, kinds, strict=True)) for row in rows]
                await pg.copy_records_to_table(table.name, records=records, columns=names)
                n += len(rows)
            if n:
                log(f"  {table.name}: {n:,} rows")
        # Ids go on from the copied rows' highest, as they would have in the source.
        sequences = await pg.fetch(
            "SELECT pg_get_serial_sequence(c.relname, a.attname) AS s, c.relname AS t, a.attname AS col"
            " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
            " AND pg_get_serial_sequence(c.relname, a.attname) IS NOT NULL"
        )
        for seq in sequences:
            highest = f'SELECT COALESCE(max({seq["col"]}), 0) + 1 FROM "{seq["t"]}"'  # noqa: S608
            await pg.execute(f"SELECT setval('{seq['s']}', ({highest}), false)")
    finally:
        await pg.close()
        lite.close()


def _pg_dialect() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def _pg_value(value: Any, kind: str) -> Any:
    """A SQLite value as COPY takes it for a column of `kind`: times are text there, booleans
    integers."""
    if value is None:
        return None
    if kind.startswith("timestamp"):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "boolean":
        return bool(value)
    return value


def generate(args: argparse.Namespace, target: Target, tmp: Path) -> dict[str, Any]:
    rnd = random.Random(args.seed)
    secret = secrets.token_hex(32)
    today = datetime.now(UTC).date()
    first_day = today - timedelta(days=DAYS)
    log(f"generating into {target.shown()}: {args.clicks:,} clicks, {args.conversions:,} postbacks")
    target.create()
    data = tmp / "generate"
    data.mkdir()
    port = free_port()
    env = server_env(target, data, port, secret, args.report_zones)
    t0 = time.monotonic()
    done = subprocess.run(
        (str(CLICKBACK), "migrate"),
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_S,
        check=False,
    )
    if done.returncode:
        raise BenchError(f"clickback migrate failed:\n{done.stdout}{done.stderr}")
    log_file = data / "server.log"
    with running(serve_cmd(port, 2), log_file, env) as proc:
        wait_ready(proc, port, "/healthz", log_file)
        cat = build_catalog(port, rnd)
        t_catalog = time.monotonic() - t0
        log(
            f"  catalog in {t_catalog:.1f} s: {len(cat.tokens)} advertisers, {len(cat.offers)} offers, "
            f"{len(cat.affiliates)} affiliates, {len(cat.links)} links, {cat.deals} affiliate deals"
        )
        # Registrations are 45% of the postbacks; draw a third more players than needed.
        player_rate = min(1.0, args.conversions * 0.45 * 1.35 / (args.clicks * (1 - BOT_SHARE)))
        maker = ClickMaker(cat, ClickIdCodec(bytes.fromhex(secret)), rnd, player_rate)
        click_s = asyncio.run(
            write_clicks(target, maker, args.clicks, first_day, args.batch, args.report_zones)
        )
        log(f"  clicks: {args.clicks:,} in {click_s:.0f} s = {args.clicks / click_s:,.0f} clicks/s written")
        phases = postback_phases(maker.players, cat, args.conversions, int(time.time() * 1000), rnd)
        outcomes: Counter[str] = Counter()
        sent, t1 = 0, time.monotonic()
        for name, paths in phases:
            t = time.monotonic()
            got = asyncio.run(send_postbacks(port, paths))
            seconds = time.monotonic() - t
            outcomes += got
            sent += len(paths)
            log(f"  postbacks, {name}: {len(paths):,} in {seconds:.1f} s = {len(paths) / seconds:,.0f}/s")
            if proc.poll() is not None:
                raise BenchError(f"clickback died during the postbacks:\n{tail(log_file)}")
        postback_s = time.monotonic() - t1
    log(
        f"  postbacks: {sent:,} in {postback_s:.0f} s = {sent / postback_s:,.0f}/s; replies: {dict(outcomes)}"
    )
    refused = sum(n for k, n in outcomes.items() if not k.startswith("200"))
    if refused > sent * 0.01:
        raise BenchError(f"{refused:,} of {sent:,} postbacks refused: {dict(outcomes)}")
    t2 = time.monotonic()
    target.analyze()
    biggest = maker.by_affiliate.most_common(1)[0]
    manifest = {
        "version": MANIFEST_VERSION,
        "clicks": args.clicks,
        "postbacks": sent,
        "from": first_day.isoformat(),
        "to": (today - timedelta(days=1)).isoformat(),
        "biggest_affiliate": biggest[0],
        "biggest_affiliate_clicks": biggest[1],
        "secret": secret,
        "report_zones": args.report_zones,
        "seconds": {
            "catalog": round(t_catalog, 1),
            "clicks": round(click_s, 1),
            "postbacks": round(postback_s, 1),
            "analyze": round(time.monotonic() - t2, 1),
            "total": round(time.monotonic() - t0, 1),
        },
        "outcomes": dict(outcomes),
    }
    target.save_manifest(manifest)
    log(f"  generated in {time.monotonic() - t0:.0f} s in all")
    return manifest


# --- timing ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    seconds: float
    first_byte_s: float
    size: int
    lines: int
    doc: dict[str, Any] | None
    content_type: str
    text: str  # the start of a body kept (JSON, or an error's)


def get(port: int, path: str, timeout: float) -> Reply:
    """One GET on a new connection, the body read as it streams: time to the head, and in all."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {API_KEY}"})
        resp = conn.getresponse()
        head_s = time.perf_counter() - t0
        ctype = resp.getheader("content-type", "")
        size, lines, parts = 0, 0, []
        keep = "json" in ctype or resp.status != 200
        while chunk := resp.read(65536):
            size += len(chunk)
            lines += chunk.count(b"\n")
            if keep:
                parts.append(chunk)
        seconds = time.perf_counter() - t0
    finally:
        conn.close()
    doc, body = None, b"".join(parts)
    if keep:
        with contextlib.suppress(ValueError):
            doc = json.loads(body)
    return Reply(resp.status, seconds, head_s, size, lines, doc, ctype, body[:200].decode(errors="replace"))


@dataclass
class Timed:
    name: str
    path: str
    first: Reply
    warm: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.warm) if self.warm else self.first.seconds


def worker_pids(root: int) -> list[int]:
    """The server's worker processes, among its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                parents[int(entry.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == pid]
        found += kids
        frontier += kids
    # The workers are spawned by multiprocessing, which also starts its resource tracker.
    return sorted(p for p in found if b"resource_tracker" not in cmdline(p))


def cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def memory_mb(pid: int) -> dict[str, float]:
    out = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                out[name] = int(value.split()[0]) / 1024
    return out


def with_legacy_fallback(port: int, query: dict[str, str], timeout: float) -> tuple[str, Reply, str]:
    """The report asked as the report API documents it; if refused (422), as the API before the
    rewrite takes it (dimension names affiliate_id/offer_id, filter affiliate_id): path, reply, note."""
    path = "/api/reports?" + urlencode(query)
    reply = get(port, path, timeout)
    if reply.status != 422:
        return path, reply, ""
    legacy = dict(query)
    renames = {"affiliate": "affiliate_id", "offer": "offer_id", "link": "link_id"}
    legacy["group_by"] = ",".join(renames.get(d, d) for d in query["group_by"].split(","))
    if "affiliate" in legacy:
        legacy["affiliate_id"] = legacy.pop("affiliate")
    if legacy == query:
        return path, reply, "refused (422)"
    path = "/api/reports?" + urlencode(legacy)
    return path, get(port, path, timeout), "legacy names"


def time_report(port: int, name: str, query: dict[str, str], args: argparse.Namespace) -> Timed:
    path, first, note = with_legacy_fallback(port, query, args.report_timeout)
    if first.status != 200:
        detail = json.dumps(first.doc)[:120] if first.doc else first.text[:120]
        return Timed(name, path, first, [], note=f"n/a: HTTP {first.status} {detail}")
    runs = args.warm if first.seconds < SLOW_REPORT_S else min(args.warm, 2)
    warm = []
    for _ in range(runs):
        reply = get(port, path, args.report_timeout)
        if reply.status != 200:
            raise BenchError(f"{path} answered {first.status} then {reply.status}")
        warm.append(reply.seconds)
    return Timed(name, path, first, warm, note)


def ignored(t: Timed, query: dict[str, str]) -> str:
    """What an API that does not know a parameter left out, judged from its reply."""
    doc = t.first.doc or {}
    out: list[str] = []
    if t.first.status != 200:
        return ""
    if "zone" in query and doc.get("zone") != query["zone"]:
        out.append("zone ignored")
    if "limit" in query and "limit" not in doc:
        out.append("limit ignored")
    if "sort" in query and "total_rows" not in doc and "limit" not in doc:
        out.append("sort ignored")
    if query.get("format") == "csv" and "csv" not in t.first.content_type:
        out.append(f"not CSV ({t.first.content_type})")
    return ", ".join(out)


def timing(args: argparse.Namespace, target: Target, manifest: dict[str, Any], tmp: Path) -> int:
    data = tmp / "timing"
    data.mkdir()
    port = free_port()
    env = server_env(target, data, port, str(manifest["secret"]), str(manifest["report_zones"]))
    log_file = data / "server.log"
    first, last, aff = str(manifest["from"]), str(manifest["to"]), str(manifest["biggest_affiliate"])
    period = {"from": first, "to": last}
    standard = {**period, "group_by": "day,affiliate,offer,country", "limit": "100"}
    reports = [
        ("(a) standard, UTC", standard),
        ("(b) sub1 top 100 by clicks", {**period, "group_by": "sub1", "sort": "-clicks", "limit": "100"}),
        (
            f"(c) hourly, affiliate {aff}, New York",
            {**period, "group_by": "hour", "affiliate": aff, "zone": "America/New_York"},
        ),
        ("(d) standard, Berlin", {**standard, "zone": "Europe/Berlin"}),
        (
            "(e) standard as CSV, no limit",
            {k: v for k, v in standard.items() if k != "limit"} | {"format": "csv"},
        ),
    ]
    results: list[tuple[Timed, dict[str, str]]] = []
    with running(serve_cmd(port, args.workers), log_file, env) as proc:
        wait_ready(proc, port, "/healthz", log_file)
        time.sleep(2.0)  # both workers up and settled
        wait_weeks_summed(target, proc, log_file)
        workers = worker_pids(proc.pid)
        before = {pid: memory_mb(pid) for pid in workers}
        for name, query in reports:
            t = time_report(port, name, query, args)
            results.append((t, query))
            log(f"  {name}: HTTP {t.first.status}, first {t.first.seconds:.3f} s, median {t.median:.3f} s")
            if proc.poll() is not None:
                raise BenchError(f"clickback died while answering reports:\n{tail(log_file)}")
        after = {pid: memory_mb(pid) for pid in worker_pids(proc.pid)}
    if any(t.first.status >= 500 for t, _ in results):
        print(f"the server's log ends:\n{tail(log_file, 40)}", file=sys.stderr)
    print_timings(args, target, manifest, results, before, after)
    return 0


def wait_weeks_summed(target: Target, proc: subprocess.Popen[bytes], log_file: Path) -> None:
    """The server sums the weeks that are over in the background (store.weeks.sum_weeks, on
    start and then once a minute): on a database new to them (migration 0013), wait for that."""
    began = time.monotonic()
    today = int(time.time()) // 86400
    pending = "SELECT count(*) FROM report_week_state WHERE NOT kept AND 7 * week + 3 < :before"
    while admin(target.url, pending, before=today - 1):
        if proc.poll() is not None:
            raise BenchError(f"clickback died while summing report weeks:\n{tail(log_file)}")
        time.sleep(1.0)
    log(f"  report weeks summed ({time.monotonic() - began:.1f} s after start)")
    target.analyze()


def print_timings(
    args: argparse.Namespace,
    target: Target,
    manifest: dict[str, Any],
    results: list[tuple[Timed, dict[str, str]]],
    before: dict[int, dict[str, float]],
    after: dict[int, dict[str, float]],
) -> None:
    limit = TARGET_S[target.dialect]
    print()
    print(
        f"{time.strftime('%Y-%m-%d')}, {'PostgreSQL' if target.pg else 'SQLite'}, clickback serve --workers "
        f"{args.workers}; {manifest['clicks']:,} clicks and {manifest['postbacks']:,} postbacks, "
        f"{manifest['from']} to {manifest['to']}; biggest affiliate {manifest['biggest_affiliate']} "
        f"({manifest['biggest_affiliate_clicks']:,} non-bot clicks); {os.cpu_count()} CPUs shared"
    )
    sec = manifest.get("seconds", {})
    if manifest.get("copied_from_sqlite"):
        copied = manifest.get("copy_seconds", 0)
        print(f"data set generated on SQLite, copied in {copied:.0f} s (--copy-from)")
    if sec:
        clicks_s, postbacks_s = sec.get("clicks", 0) or 1, sec.get("postbacks", 0) or 1
        print(
            f"generation{' (on SQLite)' if manifest.get('copied_from_sqlite') else ''}: "
            f"{sec.get('total', 0):.0f} s; clicks {manifest['clicks'] / clicks_s:,.0f}/s written "
            f"(write_batch, bulk); postbacks {manifest['postbacks'] / postbacks_s:,.0f}/s (HTTP)"
        )
    head = ("report", "source", "first s", "median s", "rows", "bytes", f"≤ {limit} s", "note")
    print("| " + " | ".join(head) + " |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |")
    for t, query in results:
        doc = t.first.doc or {}
        rows = doc.get("rows")
        if query.get("format") == "csv":
            n_rows = f"{max(t.first.lines - 1, 0):,}"  # less the header line
        else:
            n_rows = f"{len(rows):,}" if isinstance(rows, list) else "-"
        if "total_rows" in doc:
            n_rows += f" of {doc['total_rows']:,}"
        note = "; ".join(x for x in (t.note, ignored(t, query)) if x)
        if t.first.status != 200:
            print(f"| {t.name} | - | - | - | - | - | - | {note} |")
            continue
        # The targets are for the standard, sub1 and hourly reports; (d) is the standard
        # one in another zone; the CSV export of every row is an extra figure.
        if query.get("format") == "csv":
            verdict = "(extra)"
            note = "; ".join(x for x in (note, f"first byte after {t.first.first_byte_s:.3f} s") if x)
        else:
            verdict = "met" if t.median <= limit else "MISSED"
        cells = (
            t.name,
            str(doc.get("source", "-")),
            f"{t.first.seconds:.3f}",
            f"{t.median:.3f}",
            n_rows,
            f"{t.first.size:,}",
            verdict,
            note,
        )
        print("| " + " | ".join(cells) + " |")
    print(
        f"worker peak RSS (VmHWM), MB, before → after the reports (target: none above {PEAK_RSS_TARGET_MB}):"
    )
    for pid in sorted(set(before) | set(after)):
        b, a = before.get(pid, {}).get("VmHWM", 0.0), after.get(pid, {}).get("VmHWM", 0.0)
        verdict = "met" if a <= PEAK_RSS_TARGET_MB else "MISSED"
        print(f"  pid {pid}: {b:.0f} → {a:.0f} ({verdict})")
    for t, _ in results:
        print(f"  {t.name}: GET {t.path}")


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clicks", type=int, default=10_000_000)
    parser.add_argument("--conversions", type=int, default=300_000, help="postbacks sent (default 300,000)")
    parser.add_argument("--pg", help="a PostgreSQL URL: its server gets a database of its own (--pg-db)")
    parser.add_argument(
        "--pg-db", default="reports_bench", help="PostgreSQL database (default reports_bench)"
    )
    parser.add_argument("--db-file", type=Path, help="SQLite file (default: a temporary one; kept if given)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database, and time the one a previous run generated; refused when the "
        "database is there but holds no complete data set (nothing is dropped)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warm", type=int, default=5, help="warm runs of each report (default 5)")
    parser.add_argument("--report-timeout", type=float, default=300.0, help="seconds per report request")
    parser.add_argument("--batch", type=int, default=5000, help="clicks per write_batch (default 5000)")
    parser.add_argument(
        "--report-zones",
        default="UTC",
        help="CLICKBACK_REPORT_ZONES of the server and the click writer (default UTC)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--copy-from",
        type=Path,
        help="with --pg: copy a data set generated on SQLite (an earlier run's --db-file), not generate one",
    )
    args = parser.parse_args(argv)
    if not (10_000 <= args.clicks <= 50_000_000 and 100 <= args.conversions <= 2_000_000):
        parser.error("--clicks 10,000..50,000,000 and --conversions 100..2,000,000")
    if not (1 <= args.workers <= 8 and 1 <= args.warm <= 20 and 100 <= args.batch <= 50_000):
        parser.error("--workers 1..8, --warm 1..20, --batch 100..50000")
    if not args.pg_db.replace("_", "").isalnum():
        parser.error("--pg-db: letters, digits and _")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.access(CLICKBACK, os.X_OK):
        print("needs the app in .venv (python3 dev.py test)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupt)
    with tempfile.TemporaryDirectory(prefix="clickback-reports-") as tmp_dir:
        tmp = Path(tmp_dir)
        db_file = args.db_file
        if db_file is None and not args.pg:
            db_file = (
                Path(tempfile.gettempdir()) / "clickback-reports-bench.db" if args.reuse else tmp / "bench.db"
            )
        target = Target(args.pg, args.pg_db, db_file.resolve() if db_file else None)
        keep = args.reuse or args.db_file is not None
        try:
            manifest = target.manifest() if args.reuse else None
            if manifest is not None:
                log(
                    f"reusing {target.shown()}: {manifest['clicks']:,} clicks, "
                    f"{manifest['from']} to {manifest['to']}"
                )
            elif args.copy_from:
                manifest = copy_data_set(args.copy_from, target, tmp)
            elif args.reuse and target.exists():
                # Generating drops what is there and takes an hour: never on a --reuse that found
                # an older or unfinished data set.
                raise BenchError(
                    f"--reuse: {target.shown()} holds no complete data set of this version "
                    f"({MANIFEST_VERSION}); drop it, or run without --reuse to generate a new one"
                    + (", or --copy-from a SQLite data set" if args.pg else "")
                )
            else:
                manifest = generate(args, target, tmp)
            return timing(args, target, manifest, tmp)
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130
        finally:
            if not keep:
                with contextlib.suppress(Exception):
                    target.drop()


if __name__ == "__main__":
    sys.exit(main())
