#!/usr/bin/env python3
"""Accepted postbacks per second, server CPU per postback and latency at a fixed rate.

Each run starts `clickback serve --workers N` on a fresh database (a SQLite file, or a new
PostgreSQL database with --pg), creates an advertiser with a plain offer (`sale` postbacks) and an
iGaming casino offer (a Hybrid deal: registration, then a first deposit that qualifies the player
for CPA), takes real clicks through the tracking links, then sends unique postbacks for them:

1. **plain**: `event=sale&payout=10&txn_id=…` for one click each, as fast as answered by wrk
   (-c16 by default, the issue's 16 concurrent senders); with --pixel, sent as the plain offer's
   tracking pixel (`GET /p/{code}?…`, no token) instead, as is the open loop;
2. **igaming**: a registration with `player_id`, then that player's first deposit of 50 EUR
   (which books a CPA and the month's RevShare), as fast as answered;
3. **open loop**: plain postbacks at a fixed rate (500/s by default) from an asyncio client that
   sends each request at its scheduled time whatever the previous ones did; latency counts from
   that scheduled time, so a stall delays every request behind it as it would a real sender's.

Before the phases, a warm-up (--warmup plain postbacks and a quarter as many players, at 400/s)
and, on PostgreSQL, ANALYZE: the tables then have the statistics autovacuum keeps on a database in
use, which it gathers about once a minute, after a run would be over (Database.analyze).

Figures per phase: accepted postbacks/s (conversions the database holds afterwards, over the
phase's duration), server CPU per postback (all clickback processes) and the database server's
CPU (PostgreSQL's processes; SQLite runs inside clickback). Every postback answered 2xx must be
in the database: the run fails otherwise. The machine is shared with wrk and the client, so the
run also measures a reference in the same run: the same wrk load against `GET /healthz` of the
same server (the HTTP stack alone), printed as a ratio.

Standard library only; starts the app from .venv/bin/clickback, needs wrk (Debian) and, for
--pg, psql and a PostgreSQL server that trusts local connections.

Usage: python3 benchmarks/postbacks.py [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
           [--workers 2] [--runs 3] [--duration 8] [--connections 16] [--rate 500] [--pixel]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from click_vs_nginx import (
    API_KEY,
    CLICKBACK,
    HOST,
    USER_AGENT,
    BenchError,
    api_post,
    find_tool,
    free_port,
    interrupt,
    parse_wrk,
    request,
    running,
    tail,
    tree_cpu_seconds,
    wait_ready,
)

PG_DATABASE = "clickback_bench"  # dropped and created afresh by every run
MAX_OPEN_CONNECTIONS = 512  # the open-loop client's ceiling: beyond it the server is lost anyway
SETTLE_S = 1.0  # after a phase, for the CPU window to include replies still in flight
CLICK_CONCURRENCY = 32
# The warm-up's postbacks/s: well under what either database takes, so it never queues.
WARMUP_RATE = 400.0

# Each wrk thread sends its own share of the prepared paths once, in order; once they are used
# up it asks for /healthz (counted apart) so that no postback is ever sent twice.
POSTBACK_LUA = """\
local paths = {{}}
local threads = {{}}
index, sent, spare, ok, refused = 0, 0, 0, 0, 0

function setup(thread)
    table.insert(threads, thread)
    thread:set("id", #threads - 1)
end

function init(args)
    local n = 0
    for line in io.lines("{paths}") do
        if n % {threads} == id then table.insert(paths, line) end
        n = n + 1
    end
end

function request()
    index = index + 1
    if index <= #paths then
        sent = sent + 1
        return wrk.format("GET", paths[index])
    end
    spare = spare + 1
    return wrk.format("GET", "/healthz")
end

function response(status, headers, body)
    if status == 200 then ok = ok + 1 else refused = refused + 1 end
end

function done(summary, latency, requests)
    local s, sp, o, r = 0, 0, 0, 0
    for _, t in ipairs(threads) do
        s = s + t:get("sent"); sp = sp + t:get("spare"); o = o + t:get("ok"); r = r + t:get("refused")
    end
    io.write(string.format("POSTBACKS sent=%d spare=%d ok=%d refused=%d\\n", s, sp, o, r))
end
"""


@dataclass
class Phase:
    name: str
    sent: int
    accepted: int  # conversions in the database afterwards
    answered_ok: int  # 200 replies (including /healthz once postbacks ran out)
    refused: int
    seconds: float
    cpu_s: float
    db_cpu_s: float
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    exhausted: bool = False

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / max(self.accepted, 1)

    @property
    def db_cpu_ms(self) -> float:
        return self.db_cpu_s * 1000 / max(self.accepted, 1)


@dataclass
class Run:
    phases: dict[str, Phase] = field(default_factory=dict)
    healthz_rps: float = 0.0
    healthz_cpu_ms: float = 0.0


# --- database ----------------------------------------------------------------------------


class Database:
    def __init__(self, pg: str | None, data: Path) -> None:
        self.pg = pg
        self.data = data

    @property
    def url(self) -> str:
        if self.pg is None:
            return f"sqlite+aiosqlite:///{self.data}/bench.db"
        return self.pg.rsplit("/", 1)[0] + "/" + PG_DATABASE

    def create(self) -> None:
        if self.pg is None:
            return
        self._psql("postgres", f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        self._psql("postgres", f"CREATE DATABASE {PG_DATABASE}")

    def analyze(self) -> None:
        """Statistics for PostgreSQL's planner, as autovacuum keeps them on a database in use (it
        looks about once a minute, and a run is over before then). Without them, a statement
        prepared on a new, near-empty table keeps the plan made then, a scan of the table.
        Plans made before are made again. SQLite plans each statement without statistics."""
        if self.pg is not None:
            self._psql(PG_DATABASE, "ANALYZE")

    def count(self, sql: str) -> int:
        if self.pg is None:
            import sqlite3

            with sqlite3.connect(f"file:{self.data}/bench.db?mode=ro", uri=True) as conn:
                return int(conn.execute(sql).fetchone()[0])
        return int(self._psql(PG_DATABASE, sql).strip())

    def server_cpu_s(self) -> float:
        """CPU seconds of every PostgreSQL process (0 for SQLite, which runs inside clickback)."""
        if self.pg is None:
            return 0.0
        done = subprocess.run(("pgrep", "-x", "postgres"), capture_output=True, text=True, check=False)
        roots = [int(p) for p in done.stdout.split()]
        return sum(tree_cpu_seconds(p) for p in roots if _parent_is_not_postgres(p))

    def _psql(self, dbname: str, sql: str) -> str:
        parts = urlsplit(self.pg.replace("+asyncpg", "") if self.pg else "")
        cmd = (
            "psql",
            "-X",
            "-q",
            "-t",
            "-A",
            "-h",
            parts.hostname or HOST,
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            "-d",
            dbname,
            "-c",
            sql,
        )
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode:
            raise BenchError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout


def _parent_is_not_postgres(pid: int) -> bool:
    # Count the postmaster's tree once: its children are postgres processes too.
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        parent = int(raw[raw.rindex(")") + 2 :].split()[1])
        return Path(f"/proc/{parent}/comm").read_text().strip() != "postgres"
    except (OSError, ValueError):
        return False


# --- a small HTTP/1.1 client on asyncio (clicks, and the open-loop phase) -----------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def get(self, path: str) -> tuple[int, dict[str, str]]:
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: {USER_AGENT}\r\n\r\n".encode("latin-1")
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length:
            await self.reader.readexactly(length)
        return status, headers

    def close(self) -> None:
        self.writer.close()


async def take_clicks(port: int, paths: Sequence[str]) -> list[str]:
    """Follow each tracking link once; the click IDs from the offer URLs, in order."""
    ids: list[str] = [""] * len(paths)
    todo = iter(enumerate(paths))

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            for n, path in todo:
                status, headers = await conn.get(path)
                if status != 302:
                    raise BenchError(f"GET {path} gave {status}")
                ids[n] = headers["location"].split("cid=")[1].split("&")[0]
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(CLICK_CONCURRENCY)))
    return ids


async def open_loop(port: int, paths: Sequence[str], rate: float) -> tuple[list[float], int, int]:
    """Send paths[i] at start + i/rate on whichever connection is free (a new one if none is);
    latencies in ms from each scheduled send time, and the counts of 200 and other replies."""
    idle: list[Connection] = []
    latencies: list[float] = []
    counts = {"ok": 0, "other": 0}
    opened = 0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def one(n: int, path: str) -> None:
        nonlocal opened
        scheduled = start + n / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))

        async def fresh() -> Connection:
            nonlocal opened
            opened += 1
            if opened > MAX_OPEN_CONNECTIONS:
                raise BenchError(f"more than {MAX_OPEN_CONNECTIONS} postbacks waiting at once")
            return await Connection.open(port)

        conn = idle.pop() if idle else await fresh()
        try:
            status, _ = await conn.get(path)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed a connection left idle past its keep-alive timeout before it read
            # the request: send it again on a new one (a repeat would be a duplicate anyway).
            conn.close()
            opened -= 1
            conn = await fresh()
            status, _ = await conn.get(path)
        latencies.append((loop.time() - scheduled) * 1000)
        counts["ok" if status == 200 else "other"] += 1
        idle.append(conn)

    await asyncio.gather(*(one(n, p) for n, p in enumerate(paths)))
    for conn in idle:
        conn.close()
    return latencies, counts["ok"], counts["other"]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# --- one run -------------------------------------------------------------------------------


def setup(port: int, pixel: bool) -> tuple[str, str, str, str]:
    """An advertiser with a plain offer (its tracking pixel on with `pixel`) and a casino offer,
    one affiliate, a link to each; and the plain offer's pixel code ("" without)."""
    adv = api_post(port, "/api/advertisers", {"name": "Bench Advertiser"})
    url = "https://offer.example.com/landing?cid={click_id}&s1={sub1}"
    plain = api_post(
        port,
        "/api/offers",
        {"advertiser_id": adv["id"], "name": "Plain", "url_template": url, "currency": "EUR", "pixel": pixel},
    )
    casino = api_post(
        port,
        "/api/offers",
        {
            "advertiser_id": adv["id"],
            "name": "Casino",
            "url_template": url,
            "currency": "EUR",
            "vertical": "casino",
        },
    )
    aff = api_post(port, "/api/affiliates", {"name": "Bench Affiliate"})
    links = [
        api_post(port, "/api/links", {"affiliate_id": aff["id"], "offer_id": o["id"]})["code"]
        for o in (plain, casino)
    ]
    pixel_code = urlsplit(plain["pixel_url"]).path.removeprefix("/p/") if pixel else ""
    return str(adv["token"]), str(links[0]), str(links[1]), pixel_code


def plain_paths(click_ids: Sequence[str], token: str, tag: str, pixel_code: str = "") -> list[str]:
    """Sales by S2S postback, or by the plain offer's tracking pixel when given its code."""
    if pixel_code:
        return [
            f"/p/{pixel_code}?click_id={c}&event=sale&payout=10&currency=EUR&txn_id={tag}{n}"
            for n, c in enumerate(click_ids)
        ]
    return [
        f"/postback?click_id={c}&event=sale&payout=10&currency=EUR&txn_id={tag}{n}&token={token}"
        for n, c in enumerate(click_ids)
    ]


def igaming_paths(click_ids: Sequence[str], token: str, tag: str) -> list[str]:
    """A registration per player, and their first deposit about 64 postbacks later."""
    regs = [
        f"/postback?click_id={c}&event=registration&player_id={tag}P{n}&token={token}"
        for n, c in enumerate(click_ids)
    ]
    ftds = [
        f"/postback?click_id={c}&event=first_deposit&player_id={tag}P{n}&payout=50&currency=EUR"
        f"&txn_id={tag}D{n}&token={token}"
        for n, c in enumerate(click_ids)
    ]
    out: list[str] = []
    chunk = 64
    for start in range(0, len(regs), chunk):
        out += regs[start : start + chunk] + ftds[max(0, start - chunk) : start]
    return out + ftds[(len(regs) - 1) // chunk * chunk :]


def wait_clicks(db: Database, expected: int) -> None:
    deadline = time.monotonic() + 60
    while db.count("SELECT count(*) FROM clicks") < expected:
        if time.monotonic() > deadline:
            raise BenchError(f"clicks did not reach the database ({expected} expected)")
        time.sleep(0.2)


def wrk_phase(
    name: str,
    wrk: str,
    port: int,
    server_pid: int,
    db: Database,
    paths: Sequence[str],
    count_sql: str,
    args: argparse.Namespace,
    tmp: Path,
) -> Phase:
    path_file = tmp / f"{name}.paths"
    path_file.write_text("\n".join(paths) + "\n")
    lua = tmp / f"{name}.lua"
    lua.write_text(POSTBACK_LUA.format(paths=path_file, threads=args.threads))
    before_rows = db.count(count_sql)
    groups0 = runtime_groups(port, args.workers)
    cpu0, db0 = tree_cpu_seconds(server_pid), db.server_cpu_s()
    cmd = (
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "-s",
        str(lua),
        f"http://{HOST}:{port}",
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60, check=False)
    if done.returncode:
        raise BenchError(f"wrk failed: {done.stdout}{done.stderr}")
    time.sleep(SETTLE_S)
    cpu, db_cpu = tree_cpu_seconds(server_pid) - cpu0, db.server_cpu_s() - db0
    result = parse_wrk(done.stdout)
    groups1 = runtime_groups(port, args.workers)
    pids = groups0.keys() & groups1.keys()
    recorded = sum(groups1[p][0] - groups0[p][0] for p in pids)
    groups = sum(groups1[p][1] - groups0[p][1] for p in pids)
    print(f"  {name}: {recorded} postbacks in {groups} groups ({recorded / max(groups, 1):.1f} a group)")
    counts = dict(item.split("=") for item in done.stdout.split("POSTBACKS ")[1].split()[:4])
    accepted = db.count(count_sql) - before_rows
    sent, spare = int(counts["sent"]), int(counts["spare"])
    ok = int(counts["ok"]) - spare
    if accepted < ok:
        raise BenchError(f"{name}: {ok} postbacks answered 200 but only {accepted} are in the database")
    # The run ends when the postbacks do, if they ran out before the deadline.
    seconds = result.seconds * sent / max(sent + spare, 1) if spare else result.seconds
    return Phase(
        name,
        sent,
        accepted,
        ok,
        int(counts["refused"]),
        seconds,
        cpu,
        db_cpu,
        result.p50_ms,
        result.p99_ms,
        result.max_ms,
        exhausted=spare > 0,
    )


def runtime_groups(port: int, workers: int) -> dict[int, tuple[int, int]]:
    """(postbacks recorded, groups) of each worker, by process id: each call of /api/runtime is
    a new connection, which any worker may take, so ask until every worker has answered."""
    seen: dict[int, tuple[int, int]] = {}
    for _ in range(50 * workers):
        status, _, body = request(port, "GET", "/api/runtime")
        if status == 200:
            doc = json.loads(body)
            seen[int(doc["process_id"])] = (int(doc["postbacks_recorded"]), int(doc["postback_groups"]))
        if len(seen) == workers:
            break
    return seen


def healthz_reference(wrk: str, port: int, server_pid: int, args: argparse.Namespace) -> tuple[float, float]:
    cpu0 = tree_cpu_seconds(server_pid)
    cmd = (wrk, f"-t{args.threads}", f"-c{args.connections}", "-d3s", f"http://{HOST}:{port}/healthz")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    result = parse_wrk(done.stdout + "\n    50%  0us\n    90%  0us\n    99%  0us\n")
    cpu = tree_cpu_seconds(server_pid) - cpu0
    return result.rps, cpu * 1000 / max(result.requests, 1)


def one_run(wrk: str, args: argparse.Namespace, tmp: Path) -> Run:
    data = tmp / "data"
    data.mkdir(parents=True)
    db = Database(args.pg, data)
    db.create()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
    env |= {
        "CLICKBACK_DATA_DIR": str(data),
        "CLICKBACK_DATABASE_URL": db.url,
        "CLICKBACK_API_KEY": API_KEY,
        "CLICKBACK_SECRET_KEY": secrets.token_hex(32),
        "CLICKBACK_PUBLIC_URL": f"http://{HOST}:{port}",
    }
    cmd = (str(CLICKBACK), "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers))
    log = data / "server.log"
    run = Run()
    with running(cmd, log, env) as proc:
        wait_ready(proc, port, "/healthz", log)
        token, plain_link, casino_link, pixel = setup(port, args.pixel)
        time.sleep(1.5)  # every worker's catalog knows the new links
        n_plain = args.postbacks
        n_open = int(args.rate * args.open_seconds)
        n_players = args.postbacks // 2
        n_warm = args.warmup
        click_paths = [f"/c/{plain_link}?sub1=s{n % 50}" for n in range(n_plain + n_open + n_warm)]
        click_paths += [f"/c/{casino_link}?sub1=s{n % 50}" for n in range(n_players + n_warm // 4)]
        ids = asyncio.run(take_clicks(port, click_paths))
        wait_clicks(db, len(ids))
        plain_ids, open_ids, warm_ids, casino_ids, warm_casino_ids = (
            ids[:n_plain],
            ids[n_plain : n_plain + n_open],
            ids[n_plain + n_open : n_plain + n_open + n_warm],
            ids[n_plain + n_open + n_warm : -(n_warm // 4) or None],
            ids[len(ids) - n_warm // 4 :],
        )
        if n_warm:
            warm_paths = plain_paths(warm_ids, token, "W", pixel) + igaming_paths(warm_casino_ids, token, "W")
            asyncio.run(open_loop(port, warm_paths, WARMUP_RATE))
            db.analyze()
        run.healthz_rps, run.healthz_cpu_ms = healthz_reference(wrk, port, proc.pid, args)
        sales = "SELECT count(*) FROM conversions WHERE event = 'sale'"
        run.phases["plain"] = wrk_phase(
            "plain", wrk, port, proc.pid, db, plain_paths(plain_ids, token, "T", pixel), sales, args, tmp
        )
        player_events = "SELECT count(*) FROM conversions WHERE event IN ('registration', 'first_deposit')"
        run.phases["igaming"] = wrk_phase(
            "igaming", wrk, port, proc.pid, db, igaming_paths(casino_ids, token, ""), player_events, args, tmp
        )
        before = db.count(sales)
        cpu0, db0 = tree_cpu_seconds(proc.pid), db.server_cpu_s()
        t0 = time.monotonic()
        open_paths = plain_paths(open_ids, token, "O", pixel)
        latencies, ok, other = asyncio.run(open_loop(port, open_paths, args.rate))
        seconds = time.monotonic() - t0
        time.sleep(SETTLE_S)
        accepted = db.count(sales) - before
        if accepted < ok:
            raise BenchError(f"open loop: {ok} answered 200 but {accepted} in the database")
        run.phases["open"] = Phase(
            "open",
            len(latencies),
            accepted,
            ok,
            other,
            seconds,
            tree_cpu_seconds(proc.pid) - cpu0,
            db.server_cpu_s() - db0,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            max(latencies, default=0.0),
        )
        if proc.poll() is not None:
            raise BenchError(f"clickback died during the run:\n{tail(log)}")
        status, _, body = request(port, "GET", "/api/postbacks?limit=1&result=rejected")
        if status == 200 and json.loads(body)["items"]:
            print(
                f"  note: rejected postbacks in the log, e.g. {json.loads(body)['items'][0]}", file=sys.stderr
            )
    return run


# --- report -----------------------------------------------------------------------------


def line(n: int, runs: int, run: Run) -> str:
    p, g, o = run.phases["plain"], run.phases["igaming"], run.phases["open"]
    short = " (POSTBACKS RAN OUT: raise --postbacks)" if p.exhausted or g.exhausted else ""
    return (
        f"run {n}/{runs}: plain {p.rate:,.0f}/s at {p.cpu_ms:.3f} ms CPU (+{p.db_cpu_ms:.3f} db), "
        f"p99 {p.p99_ms:.1f} ms; igaming {g.rate:,.0f}/s at {g.cpu_ms:.3f} ms (+{g.db_cpu_ms:.3f} db); "
        f"open loop {o.accepted}/{o.sent} at {o.sent / o.seconds:,.0f}/s: p50 {o.p50_ms:.1f} p99 "
        f"{o.p99_ms:.1f} max {o.max_ms:.1f} ms, {o.cpu_ms:.3f} ms CPU; /healthz {run.healthz_rps:,.0f}"
        f" req/s at {run.healthz_cpu_ms:.3f} ms{short}"
    )


def spread(values: Sequence[float], fmt: str) -> str:
    low, mid, high = (format(v, fmt) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low} to {high})"


def summary(args: argparse.Namespace, runs: Sequence[Run]) -> str:
    def col(phase: str, attr: str) -> list[float]:
        return [float(getattr(r.phases[phase], attr)) for r in runs]

    backend = "PostgreSQL" if args.pg else "SQLite"
    if args.pixel:
        backend += ", plain sales and the open loop by tracking pixel (GET /p/{code})"
    rows = [
        ("plain: accepted postbacks/s", spread(col("plain", "rate"), ",.0f")),
        ("plain: server CPU ms/postback", spread(col("plain", "cpu_ms"), ".3f")),
        ("plain: database CPU ms/postback", spread(col("plain", "db_cpu_ms"), ".3f")),
        ("plain: p99 ms (closed loop)", spread(col("plain", "p99_ms"), ".1f")),
        ("igaming: accepted postbacks/s", spread(col("igaming", "rate"), ",.0f")),
        ("igaming: server CPU ms/postback", spread(col("igaming", "cpu_ms"), ".3f")),
        ("igaming: database CPU ms/postback", spread(col("igaming", "db_cpu_ms"), ".3f")),
        (f"open loop {args.rate:g}/s: p50 ms", spread(col("open", "p50_ms"), ".1f")),
        (f"open loop {args.rate:g}/s: p99 ms", spread(col("open", "p99_ms"), ".1f")),
        (f"open loop {args.rate:g}/s: max ms", spread(col("open", "max_ms"), ".1f")),
        (f"open loop {args.rate:g}/s: server CPU ms", spread(col("open", "cpu_ms"), ".3f")),
        ("reference: GET /healthz req/s", spread([r.healthz_rps for r in runs], ",.0f")),
        (
            "plain postbacks / healthz",
            spread([r.phases["plain"].rate / r.healthz_rps for r in runs], ".3f"),
        ),
    ]
    head = (
        f"{time.strftime('%Y-%m-%d')}, {backend}, clickback serve --workers {args.workers}, "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; median (min to max) of "
        f"{len(runs)} run(s); {os.cpu_count()} CPUs shared by the server, the database and the load"
    )
    table = "\n".join(f"| {a:<36} | {b:>26} |" for a, b in rows)
    return f"{head}\n| {'':<36} | {'':>26} |\n| {'---':<36} | {'---:':>26} |\n{table}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", help="a PostgreSQL URL (its server is used; database clickback_bench)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds of each wrk phase (default 8)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--postbacks",
        type=int,
        default=40_000,
        help="plain postbacks prepared for the closed-loop phase (and half as many players)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1600,
        help="plain postbacks (and a quarter as many players) sent before the phases (default 1600)",
    )
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop postbacks/s (default 500)")
    parser.add_argument("--open-seconds", type=float, default=10.0)
    parser.add_argument(
        "--pixel",
        action="store_true",
        help="send the plain and open-loop sales as tracking pixels (GET /p/{code}) instead of postbacks",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.workers <= 16 and 1 <= args.runs <= 20 and 1 <= args.duration <= 120):
        parser.error("--workers 1..16, --runs 1..20, --duration 1..120")
    if not (1 <= args.rate <= 5000 and 1 <= args.open_seconds <= 120 and 100 <= args.postbacks <= 500_000):
        parser.error("--rate 1..5000, --open-seconds 1..120, --postbacks 100..500000")
    if not 0 <= args.warmup <= 100_000:
        parser.error("--warmup 0..100000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = find_tool("wrk")
    if wrk is None or not os.access(CLICKBACK, os.X_OK):
        print("needs wrk (apt-get install wrk) and the app in .venv (python3 dev.py test)", file=sys.stderr)
        return 2
    import signal

    signal.signal(signal.SIGTERM, interrupt)
    runs: list[Run] = []
    try:
        for n in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory(prefix="clickback-postbacks-") as tmp:
                runs.append(one_run(wrk, args, Path(tmp)))
            print(line(n, args.runs, runs[-1]), flush=True)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    print(summary(args, runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
