#!/usr/bin/env python3
"""Click redirect endpoint vs nginx `return 302`, measured in one run on this machine.

Absolute requests/second on a shared 2-core box swing with whatever else runs; nginx serving
the same kind of 302 in the same run is the yardstick, so the figures that matter are the ratios
and the server CPU spent per click. Standard library only: it runs under the system python3,
outside the app's virtualenv, and starts the app from .venv/bin/clickback.

Two modes. By default wrk sends requests as fast as each server answers them (throughput). With
--rate R, a wrk Lua script spaces each connection's requests so that all of them together send
about R requests/s, and the figures are the latency percentiles and CPU per click at that rate.
That is only approximately open loop: a connection waits for its response before its pause, so a
slow response delays that connection's next request; the achieved rate is printed and flagged
when it falls more than 5% short of R. --durable runs clickback with CLICKBACK_DURABLE_CLICKS=true.

--cost cpc gives the link a cost model (benchmarks/click_cost.py measures what that costs a click
more precisely, in one process).

--traffic realistic sends a campaign's clicks instead of one request over and over
(benchmarks/traffic.py): each click its own IP (IPv4 and IPv6, many networks, some behind NAT
gateways) passed in X-Forwarded-For (clickback runs with CLICKBACK_PROXY_HOPS=1, as behind a
proxy), one of about 3,000 User-Agents in a long-tail mix (browsers, in-app webviews, bots), sub
IDs, source and landing page varying per click, over several links of two offers whose URL
templates use several macros. nginx gets the same requests. The run then prints the server's
enrichment cache hit rates (from /metrics).

--rate R is open loop (benchmarks/openloop.py): request k is due at k/R seconds whatever happened
before, and its latency counts from when it was due, so a stall shows in every request due
during it (p99.9 included). Before 2026-12-04 --rate paced wrk with a Lua delay() instead.

--pg URL runs clickback on PostgreSQL (a fresh database per run on that server, dropped after).

After each clickback run: the seconds from the end of the load until every redirected click is
in the database, the clicks stored a second over the load and those seconds (what the server both
answered and stored), and each worker's peak RSS (VmHWM).

Usage: python3 benchmarks/click_vs_nginx.py [--duration 10] [--runs 3] [--workers 1]
           [--rate R] [--durable] [--wait-quiet] [--cost cpc|source] [--traffic realistic]
           [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openloop
import traffic

REPO = Path(__file__).resolve().parents[1]
CLICKBACK = REPO / ".venv" / "bin" / "clickback"
INSTALL_CMD = ("apt-get", "install", "-y", "nginx-light", "wrk")
HOST = "127.0.0.1"  # loopback only: this benchmark never sends traffic anywhere else
API_KEY = "bench-key-of-the-bootstrap-manager"
OFFER_URL = "https://offer.example.com/landing"
# A browser's User-Agent on every request: without one clickback files the click as a bot, and
# the benchmark would measure that path instead of a real visitor's (UA parsing, bot check).
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
FLUSH_TIMEOUT_S = 30.0
CATALOG_SETTLE_S = 1.5  # longer than clickback's default catalog refresh interval (1 s)
# Longer than the longest interval flush clickback allows (1 s): a count unchanged for this long
# is final even if it falls short of what wrk counted.
FLUSH_SETTLE_S = 1.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_RATE = 100_000  # --rate ceiling, requests/s in total; loopback only, so this bounds the load
RATE_SHORTFALL = 0.05  # flag a --rate run whose achieved rate is more than this far below R
# --wait-quiet: the machine counts as quiet when no fault script runs and the 1-minute load average
# is below QUIET_LOAD; checked every QUIET_POLL_S for at most QUIET_MAX_WAIT_S.
QUIET_PATTERN = "benchmarks/faults.py"
QUIET_LOAD = 1.0
QUIET_POLL_S = 30.0
QUIET_MAX_WAIT_S = 20 * 60.0

NGINX_CONF = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    # Clients keep their connection for the whole run, as they do against clickback's server;
    # nginx's default of 1000 requests per connection would add reconnects to nginx's side only.
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen {host}:{port};
        location / {{ return 302 {offer}?cid=123; }}
    }}
}}
"""


class BenchError(Exception):
    """A step failed in a way the operator must see; the message says which and why."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_3xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    p999_ms: float = float("nan")  # open-loop runs only (wrk prints no 99.9th percentile)


@dataclass(frozen=True)
class Sample:
    """One server under one load run."""

    wrk: WrkResult
    cpu_s: float
    clicks: int | None = None  # rows in clickback's `clicks` table; None for nginx
    reported: int | None = None  # clicks per the reports API, as a cross-check
    stored_after_s: float | None = None  # from the end of the load until every click was stored
    peak_rss_mb: tuple[float, ...] = ()  # each worker's VmHWM
    cache_hits: dict[str, float] | None = None  # enrichment cache -> hit rate
    full_gcs: tuple[int, float] = (0, 0.0)  # full collections in the workers, the longest's bucket (s)

    @property
    def redirects(self) -> int:
        return self.wrk.requests - self.wrk.non_3xx

    @property
    def cpu_ms_per_req(self) -> float:
        return self.cpu_s * 1000 / max(self.wrk.requests, 1)

    @property
    def stored_per_s(self) -> float | None:
        """Clicks stored a second, over the load and the time after it until all were stored:
        what the server both answered and stored (a server answering faster than it stores pays
        for the difference after the load)."""
        if self.clicks is None or self.stored_after_s is None or not self.wrk.rps:
            return None
        return self.clicks / (self.wrk.requests / self.wrk.rps + self.stored_after_s)


# --- tools -------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    # /usr/sbin is not on a normal user's PATH, and that is where Debian puts nginx.
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


def ensure_tools(install: bool) -> tuple[str, str]:
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if (nginx is None or wrk is None) and install:
        subprocess.run(("apt-get", "update"), check=True, timeout=600)
        subprocess.run(INSTALL_CMD, check=True, timeout=600)
        nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if nginx is None or wrk is None:
        print("nginx and wrk are needed (Debian packages). Install them with:", file=sys.stderr)
        print(f"  {' '.join(INSTALL_CMD)}", file=sys.stderr)
        print("or rerun this script with --install (runs apt-get update first).", file=sys.stderr)
        raise SystemExit(2)
    if not os.access(CLICKBACK, os.X_OK):
        print(f"{CLICKBACK} is missing: install the app into .venv first.", file=sys.stderr)
        raise SystemExit(2)
    return nginx, wrk


def free_port() -> int:
    # The kernel picks an unused port; the short window before the server binds it is harmless.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- processes ---------------------------------------------------------------------------


def read_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces; fields after it are fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    # utime, stime, cutime, cstime: the c* pair keeps a worker's time once the server reaps it.
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def process_tree(root: int) -> dict[int, tuple[int, int]]:
    """(parent pid, CPU ticks) of a process and all its descendants (servers fork workers)."""
    stats = {int(p.name): read_stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        if stat is not None:
            children.setdefault(stat[0], []).append(pid)
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        stat = stats.get(pid)
        if stat is not None:
            tree[pid] = stat
        todo.extend(children.get(pid, ()))
    return tree


def tree_cpu_seconds(root: int) -> float:
    return sum(ticks for _, ticks in process_tree(root).values()) / CLK_TCK


def start(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # Own session: Ctrl-C reaches only this script, which then stops the server in order (a
    # clickback server must get SIGTERM, not SIGINT from the terminal, to flush its clicks), and
    # the whole group can be killed if a worker outlives its parent.
    with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the server mid-run
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(
                f"  pid {proc.pid} ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s; killing it",
                file=sys.stderr,
            )
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in its group, if any
    proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def running(
    cmd: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(cmd, log, env)
    try:
        yield proc
    finally:
        stop(proc)


def tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


# --- HTTP --------------------------------------------------------------------------------


def request(
    port: int, method: str, path: str, body: object = None, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    # http.client, not urllib: it does not follow redirects, and the 302 itself is what we check.
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {"Authorization": f"Bearer {API_KEY}", "User-Agent": USER_AGENT}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int, path: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode} before answering:\n{tail(log)}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if request(port, "GET", path, timeout=1.0)[0] in (200, 302):
                return
        time.sleep(0.1)
    raise BenchError(f"no answer on {HOST}:{port}{path} within {START_TIMEOUT_S:.0f}s:\n{tail(log)}")


def check_redirect(port: int, path: str, unknown_ok: bool = False) -> bool:
    """One request by hand, because wrk counts any 3xx (or a 200) as success.

    With unknown_ok, a 404 (this worker does not know the link yet) returns False.
    """
    status, headers, body = request(port, "GET", path)
    if status == 404 and unknown_ok:
        return False
    location = headers.get("location", "")
    if status != 302 or not location.startswith(OFFER_URL):
        raise BenchError(
            f"GET {path} gave {status} Location={location!r}, want a 302 to {OFFER_URL} (body {body[:200]!r})"
        )
    return True


def wait_link_live(port: int, path: str) -> None:
    """Make the run's first click by hand, once the new link is known everywhere."""
    # Each worker process caches the catalog and refreshes it on an interval, so a link created
    # through one worker is unknown (404) to the others for up to that interval.
    deadline = time.monotonic() + START_TIMEOUT_S
    while not check_redirect(port, path, unknown_ok=True):
        if time.monotonic() > deadline:
            raise BenchError(f"GET {path} still 404 after {START_TIMEOUT_S:.0f}s")
        time.sleep(0.1)
    time.sleep(CATALOG_SETTLE_S)  # the other workers catch up before wrk reaches them


# --- wrk ---------------------------------------------------------------------------------

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * UNIT_MS[match[2]]


def parse_wrk(out: str) -> WrkResult:
    def grab(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            if default is None:
                raise BenchError(f"wrk output lacks /{pattern}/:\n{out}")
            return default
        return match[1]

    done = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", out, re.MULTILINE)
    if done is None:
        raise BenchError(f"wrk output lacks the request count:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    # "Latency  avg  stdev  max  +/- stdev" in the thread stats
    latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.MULTILINE)
    if latency is None:
        raise BenchError(f"wrk output lacks the latency line:\n{out}")
    return WrkResult(
        requests=int(done[1]),
        seconds=to_ms(done[2] + done[3]) / 1000,
        rps=float(grab(r"^Requests/sec:\s+([\d.]+)")),
        non_3xx=int(grab(r"Non-2xx or 3xx responses: (\d+)", "0")),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        p50_ms=to_ms(grab(r"^\s+50%\s+(\S+)")),
        p90_ms=to_ms(grab(r"^\s+90%\s+(\S+)")),
        p99_ms=to_ms(grab(r"^\s+99%\s+(\S+)")),
        max_ms=to_ms(latency[3]),
    )


@dataclass(frozen=True)
class Load:
    """What a run sends: one request over and over (`path`), or a campaign's clicks (`mix`)."""

    path: str
    mix: traffic.Mix | None = None


def load_for(args: argparse.Namespace, links: Sequence[str], path: str, run: int) -> Load:
    if args.traffic == "realistic":
        return Load(path, traffic.Mix(links, args.user_agents, seed=run))
    return Load(path)


def raw_requests(port: int, load: Load) -> Callable[[], bytes]:
    """The open-loop client's requests: each a whole HTTP/1.1 request."""
    host = f"Host: {HOST}:{port}\r\n"
    if load.mix is None:
        raw = f"GET {load.path} HTTP/1.1\r\n{host}User-Agent: {USER_AGENT}\r\n\r\n".encode()
        return lambda: raw
    mix = load.mix

    def click() -> bytes:
        path, ua, ip = mix.request()
        return f"GET {path} HTTP/1.1\r\n{host}User-Agent: {ua}\r\nX-Forwarded-For: {ip}\r\n\r\n".encode()

    return click


def run_wrk(wrk: str, url: str, load: Load, args: argparse.Namespace, tmp: Path) -> WrkResult:
    script: tuple[str, ...] = ()
    if load.mix is not None:
        lua = tmp / "traffic.lua"
        lua.write_text(traffic.lua_script(load.mix))
        script = ("-s", str(lua))
    cmd = (
        wrk,
        "-H",
        f"User-Agent: {USER_AGENT}",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        *script,
        url,
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def run_open_loop(port: int, load: Load, args: argparse.Namespace) -> WrkResult:
    got = openloop.run(HOST, port, raw_requests(port, load), args.rate, args.duration, args.connections)
    return WrkResult(
        requests=got.sent,
        seconds=got.seconds,
        rps=got.sent / got.seconds,
        non_3xx=got.errors,
        socket_errors=got.statuses.get(0, 0),
        p50_ms=got.percentile(50),
        p90_ms=got.percentile(90),
        p99_ms=got.percentile(99),
        max_ms=got.latencies_ms[-1] if got.latencies_ms else float("nan"),
        p999_ms=got.percentile(99.9),
    )


def run_load(wrk: str, port: int, load: Load, args: argparse.Namespace, tmp: Path) -> WrkResult:
    if args.rate:
        return run_open_loop(port, load, args)
    return run_wrk(wrk, f"http://{HOST}:{port}{load.path}", load, args, tmp)


# --- nginx -------------------------------------------------------------------------------


def bench_nginx(nginx: str, wrk: str, args: argparse.Namespace, tmp: Path, run: int) -> Sample:
    prefix = tmp / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(workers=args.workers, prefix=prefix, host=HOST, port=port, offer=OFFER_URL)
    )
    # -e: nginx opens its error log before reading the config; keep even that one in our prefix.
    cmd = (
        nginx,
        "-p",
        str(prefix),
        "-c",
        str(conf),
        "-e",
        str(prefix / "error.log"),
        "-g",
        "daemon off;",
    )
    log = prefix / "stdout.log"
    with running(cmd, log) as proc:
        wait_ready(proc, port, "/", prefix / "error.log")
        check_redirect(port, "/")
        # The same clicks as clickback's, to links nginx answers all alike.
        load = load_for(args, NGINX_LINKS, "/", run)
        before = tree_cpu_seconds(proc.pid)
        result = run_load(wrk, port, load, args, prefix)
        cpu = tree_cpu_seconds(proc.pid) - before
    return Sample(result, cpu)


# --- clickback ---------------------------------------------------------------------------


def clickback_env(data: Path, args: argparse.Namespace, database: str) -> dict[str, str]:
    # Drop any CLICKBACK_* from the caller's shell so the run cannot touch a real database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
    env |= {
        "CLICKBACK_DATA_DIR": str(data),  # durable mode's spool goes here too
        "CLICKBACK_DATABASE_URL": database,
        "CLICKBACK_API_KEY": API_KEY,
        "CLICKBACK_SECRET_KEY": secrets.token_hex(32),
        "CLICKBACK_DURABLE_CLICKS": "true" if args.durable else "false",
    }
    if args.traffic == "realistic":
        env["CLICKBACK_PROXY_HOPS"] = "1"  # the visitor's address from X-Forwarded-For
    return env


def check_durable(port: int, want: bool) -> None:
    """The server runs in the mode asked for, per its own /api/runtime."""
    status, _, raw = request(port, "GET", "/api/runtime")
    try:
        got = json.loads(raw)["durable_clicks"] if status == 200 else None
    except (ValueError, KeyError, TypeError):
        got = None
    if got is not want:
        raise BenchError(f"/api/runtime gave {status} durable_clicks={got!r}, want {want}: {raw[:200]!r}")


def api_post(port: int, path: str, body: dict[str, object]) -> dict[str, object]:
    status, _, raw = request(port, "POST", path, body)
    if status not in (200, 201):
        raise BenchError(f"POST {path} {body} gave {status}: {raw[:300]!r}")
    reply: dict[str, object] = json.loads(raw)
    return reply


# --cost cpc: the link's clicks cost something (docs/reports.md, "Traffic cost"), the usual case
# of a media buyer's link. Its cost is worked out on the click path and added to the rollups.
COST_MODELS: dict[str, dict[str, object]] = {
    "cpc": {"model": "cpc", "currency": "EUR", "amount": "0.05", "countries": {"DE": "0.08", "GB": "0.07"}},
    "source": {"model": "source", "currency": "USD"},
}


def create_link(port: int, cost: str | None = None) -> str:
    """Advertiser → offer → affiliate → link through the public API; returns the link code."""
    return create_links(port, cost, offers=1, links_each=1)[0]


# --traffic realistic: offers whose templates pass several of the click's fields, as a network's do.
REALISTIC_TEMPLATES = (
    "?cid={click_id}&s1={sub1}&s2={sub2}&src={source}&lp={lp}",
    "?clickid={click_id}&aff={affiliate_id}&camp={campaign}&sub={sub1}",
)
REALISTIC_LINKS_EACH = 3
NGINX_LINKS = tuple(f"nginxlink{n}" for n in range(len(REALISTIC_TEMPLATES) * REALISTIC_LINKS_EACH))


def create_links(port: int, cost: str | None, offers: int, links_each: int) -> list[str]:
    adv = api_post(port, "/api/advertisers", {"name": "Bench Adv"})
    codes = []
    for n in range(offers):
        template = "?cid={click_id}&s1={sub1}" if offers == 1 else REALISTIC_TEMPLATES[n]
        offer = api_post(
            port,
            "/api/offers",
            {
                "advertiser_id": adv["id"],
                "name": f"Bench Offer {n}",
                "url_template": OFFER_URL + template,
                "currency": "EUR",
            },
        )
        for m in range(links_each):
            aff = api_post(port, "/api/affiliates", {"name": f"Bench Aff {n}-{m}"})
            body: dict[str, object] = {
                "affiliate_id": aff["id"],
                "offer_id": offer["id"],
                "campaign": f"bench-{m}",
            }
            if cost:
                body["cost"] = COST_MODELS[cost]
            codes.append(str(api_post(port, "/api/links", body)["code"]))
    return codes


def reported_clicks(port: int) -> int | None:
    """Clicks today per the reports API, or None if it does not answer as documented."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with contextlib.suppress(OSError, http.client.HTTPException):
        status, _, raw = request(port, "GET", f"/api/reports?from={today}&to={today}&group_by=day")
        if status == 200:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                rows = json.loads(raw)["rows"]
                return sum(int(row["clicks"]) + int(row.get("bot_clicks", 0)) for row in rows)
    return None


def wait_flushed(port: int, expected: int) -> int | None:
    """Wait until the run's clicks are in the database; return the reports API's count."""
    # Clicks reach the database from a buffer flushed at least every second, so the server's
    # CPU window must stay open until they land, or the write cost would be left out.
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    seen, changed = reported_clicks(port), time.monotonic()
    while seen is not None and seen < expected and time.monotonic() < deadline:
        if time.monotonic() - changed > FLUSH_SETTLE_S:
            break  # stuck short of wrk's count: clicks went missing, reported in the summary
        time.sleep(0.25)
        now = reported_clicks(port)
        if now != seen:
            seen, changed = now, time.monotonic()
    if seen is None:
        time.sleep(FLUSH_SETTLE_S)  # no usable report: give the interval flush time to run
    return seen


class Store:
    """Where a clickback run keeps its clicks: a SQLite file, or a fresh PostgreSQL database
    (created for the run, dropped after) on the --pg server, read with psql."""

    def __init__(self, data: Path, pg: str | None, run: int) -> None:
        self.file = data / "bench.db"
        self.pg = urlsplit(pg) if pg else None
        self.name = f"clickback_bench_{os.getpid()}_{run}"

    @property
    def url(self) -> str:
        if self.pg is None:
            return f"sqlite+aiosqlite:///{self.file}"
        return urlunsplit(self.pg._replace(path=f"/{self.name}"))

    def _psql(self, database: str, sql: str) -> str:
        assert self.pg is not None
        cmd = ["psql", "-X", "-q", "-tA", "-h", self.pg.hostname or HOST, "-p", str(self.pg.port or 5432)]
        cmd += ["-U", self.pg.username or "postgres", "-d", database, "-c", sql]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise BenchError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def __enter__(self) -> Store:
        if self.pg is not None:
            self._psql(self.pg.path.lstrip("/") or "postgres", f"CREATE DATABASE {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pg is not None:
            self._psql(self.pg.path.lstrip("/") or "postgres", f"DROP DATABASE IF EXISTS {self.name}")

    def count_clicks(self) -> int:
        if self.pg is not None:
            return int(self._psql(self.name, "SELECT count(*) FROM clicks"))
        # Read-only URI: a missing file must be an error, not a new empty database.
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.file}?mode=ro", uri=True)) as conn:
                count: int = conn.execute("SELECT count(*) FROM clicks").fetchone()[0]
                return count
        except sqlite3.Error as exc:
            raise BenchError(f"cannot count clicks in {self.file}: {exc}") from exc

    def stored_within(self, expected: int, limit: float = FLUSH_TIMEOUT_S) -> float | None:
        """Seconds until the table holds `expected` clicks (None: not within `limit`)."""
        began = time.monotonic()
        while time.monotonic() - began < limit:
            if self.count_clicks() >= expected:
                return time.monotonic() - began
            time.sleep(0.05)
        return None


def peak_rss_mb(root: int) -> tuple[float, ...]:
    """VmHWM of each process under `root` (the server's workers), in MB."""
    peaks = []
    for pid in [pid for pid in process_tree(root) if pid != root] or [root]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return tuple(sorted(peaks))


CACHE_LINE = re.compile(
    r'^clickback_enrich_cache\{cache="(\w+)",outcome="(\w+)"(?:,worker="\d+")?\} ([\d.e+]+)$'
)


GC_BUCKET = re.compile(r'^clickback_gc_seconds_bucket\{le="([^"]+)",worker="\d+"\} ([\d.e+]+)$')


def full_collections(port: int) -> tuple[int, float]:
    """Full garbage collections in the server's workers since their start, and the upper bound
    of the longest one's histogram bucket (seconds; inf when past the last bucket)."""
    status, _, raw = request(port, "GET", "/metrics")
    by_bound: dict[float, float] = {}
    for line in raw.decode().splitlines() if status == 200 else ():
        match = GC_BUCKET.match(line)
        if match:
            bound = float(match[1])
            by_bound[bound] = by_bound.get(bound, 0.0) + float(match[2])
    total = int(by_bound.get(float("inf"), 0))
    longest = min((b for b, n in by_bound.items() if n >= total), default=0.0) if total else 0.0
    return total, longest


def cache_hit_rates(port: int) -> dict[str, float] | None:
    """Each enrichment cache's hit rate over the server's life, summed over its workers."""
    status, _, raw = request(port, "GET", "/metrics")
    if status != 200:
        return None
    counts: dict[str, dict[str, float]] = {}
    for line in raw.decode().splitlines():
        match = CACHE_LINE.match(line)
        if match:
            by = counts.setdefault(match[1], {})
            by[match[2]] = by.get(match[2], 0.0) + float(match[3])
    return {
        name: c.get("hit", 0) / max(1.0, c.get("hit", 0) + c.get("miss", 0)) for name, c in counts.items()
    }


def bench_clickback(wrk: str, args: argparse.Namespace, tmp: Path, run: int) -> Sample:
    data = tmp / "clickback"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = (
        str(CLICKBACK),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    )
    log = data / "server.log"
    realistic = args.traffic == "realistic"
    offers, each = (len(REALISTIC_TEMPLATES), REALISTIC_LINKS_EACH) if realistic else (1, 1)
    with Store(data, args.pg, run) as store:
        with running(cmd, log, clickback_env(data, args, store.url)) as proc:
            wait_ready(proc, port, "/healthz", log)
            check_durable(port, args.durable)
            links = create_links(port, args.cost, offers, each)
            path = f"/c/{links[0]}?sub1=campaign-7&source=facebook"
            if args.cost == "source":
                path += "&cost=0.0125"
            for code in links:  # one click by hand on each
                wait_link_live(port, f"/c/{code}?sub1=campaign-7&source=facebook")
            load = load_for(args, links, path, run)
            before = tree_cpu_seconds(proc.pid)
            result = run_load(wrk, port, load, args, data)
            redirects = result.requests - result.non_3xx
            stored_after = store.stored_within(redirects + len(links))
            # The CPU window stays open until the clicks are written, or their cost would be left out.
            reported = wait_flushed(port, result.requests + len(links))
            cpu = tree_cpu_seconds(proc.pid) - before
            caches = cache_hit_rates(port)
            gcs = full_collections(port)
            peaks = peak_rss_mb(proc.pid)
            if proc.poll() is not None:
                raise BenchError(f"clickback died during the run:\n{tail(log)}")
        # Stopped with SIGTERM, which flushes the buffer: the table now holds every click it kept.
        clicks = store.count_clicks() - len(links)
    return Sample(
        result,
        cpu,
        clicks,
        None if reported is None else max(reported - len(links), 0),
        stored_after,
        peaks,
        caches,
        gcs,
    )


# --- quiet machine -----------------------------------------------------------------------


def fault_scripts() -> list[str]:
    """Pids of running fault scripts (they load the machine and would skew the figures)."""
    try:
        done = subprocess.run(
            ("pgrep", "-f", QUIET_PATTERN), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"pgrep -f {QUIET_PATTERN} failed: {exc}") from exc
    return [pid for pid in done.stdout.split() if pid != str(os.getpid())]


def wait_quiet(low_load: bool) -> str:
    """Wait, at most QUIET_MAX_WAIT_S, until no fault script runs and (with low_load) the 1-minute
    load average is below QUIET_LOAD; return the state the run starts in, for the report."""
    deadline = time.monotonic() + QUIET_MAX_WAIT_S
    while True:
        faults, load = fault_scripts(), os.getloadavg()[0]
        if not faults and (load < QUIET_LOAD or not low_load):
            return f"load {load:.2f}"
        remaining = deadline - time.monotonic()
        state = f"1-min load {load:.2f}, fault script pids: {' '.join(faults) or 'none'}"
        if remaining <= 0:
            print(f"WARNING: not quiet after {QUIET_MAX_WAIT_S / 60:.0f} min ({state})", file=sys.stderr)
            return f"NOT QUIET: {state}"
        print(
            f"waiting for a quiet machine ({state}; want no fault script"
            f"{f' and load < {QUIET_LOAD}' if low_load else ''}), next check in {QUIET_POLL_S:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(min(QUIET_POLL_S, remaining))


# --- report ------------------------------------------------------------------------------


def shortfall(args: argparse.Namespace, sample: Sample) -> float:
    """How far the achieved rate fell below --rate, as a fraction (0 when not in rate mode)."""
    return max(0.0, 1 - sample.wrk.rps / args.rate) if args.rate else 0.0


def run_line(n: int, args: argparse.Namespace, ngx: Sample, app: Sample, state: str) -> str:
    flag = ""
    if args.rate and max(shortfall(args, ngx), shortfall(args, app)) > RATE_SHORTFALL:
        flag = f"  RATE SHORT of {args.rate:g}"
    return (
        f"run {n}/{args.runs} ({state}): nginx {ngx.wrk.rps:,.0f} req/s, clickback {app.wrk.rps:,.0f} "
        f"req/s (ratio {app.wrk.rps / ngx.wrk.rps:.3f}); CPU ms/req nginx {ngx.cpu_ms_per_req:.4f}, "
        f"clickback {app.cpu_ms_per_req:.4f}; p99 ms nginx {ngx.wrk.p99_ms:.2f}, clickback "
        f"{app.wrk.p99_ms:.2f}"
        + (f", p99.9 ms nginx {ngx.wrk.p999_ms:.2f}, clickback {app.wrk.p999_ms:.2f}" if args.rate else "")
        + f"; clicks {app.clicks:,} / redirects {app.redirects:,}"
        f" (reports API: {app.reported if app.reported is not None else 'n/a'}), all stored "
        + (
            f"{app.stored_after_s:.2f} s after the load ({app.stored_per_s:,.0f} stored/s)"
            if app.stored_after_s is not None and app.stored_per_s is not None
            else "NOT within 30 s"
        )
        + f"; worker peak RSS {', '.join(f'{mb:.0f}' for mb in app.peak_rss_mb)} MB"
        + (
            "; cache hit rates " + ", ".join(f"{k} {v:.1%}" for k, v in sorted(app.cache_hits.items()))
            if app.cache_hits
            else ""
        )
        + f"; full GCs {app.full_gcs[0]} (longest <= {app.full_gcs[1] * 1000:g} ms)"
        + flag
    )


def med(samples: Sequence[Sample], key: str) -> float:
    values = {
        "rps": [s.wrk.rps for s in samples],
        "cpu": [s.cpu_ms_per_req for s in samples],
        "p50": [s.wrk.p50_ms for s in samples],
        "p90": [s.wrk.p90_ms for s in samples],
        "p99": [s.wrk.p99_ms for s in samples],
        "p99.9": [s.wrk.p999_ms for s in samples],
        "max": [s.wrk.max_ms for s in samples],
    }[key]
    return statistics.median(values)


def mode(args: argparse.Namespace) -> str:
    pace = f"--rate {args.rate:g} open loop (latency from each request's scheduled time)"
    return (
        f"{args.workers} worker(s) each, {'durable' if args.durable else 'default (non-durable)'} "
        f"clicks, {pace if args.rate else 'as fast as answered'}, {args.traffic} traffic, "
        f"{'PostgreSQL' if args.pg else 'SQLite'}"
        f"{f', link cost model {args.cost}' if args.cost else ''}"
    )


def summary(
    args: argparse.Namespace, ngx: Sequence[Sample], app: Sequence[Sample], states: Sequence[str]
) -> str:
    n_rps, a_rps, n_cpu, a_cpu = med(ngx, "rps"), med(app, "rps"), med(ngx, "cpu"), med(app, "cpu")
    rows = [("", "nginx", "clickback", "clickback/nginx"), ("---", "---:", "---:", "---:")]
    if args.rate:
        rows.append(("target requests/s", f"{args.rate:,.0f}", f"{args.rate:,.0f}", ""))
    rows += [
        (
            "achieved requests/s" if args.rate else "requests/s",
            f"{n_rps:,.0f}",
            f"{a_rps:,.0f}",
            f"{a_rps / n_rps:.3f}",
        ),
        ("server CPU ms/request", f"{n_cpu:.4f}", f"{a_cpu:.4f}", f"{a_cpu / n_cpu:.1f}x"),
        (
            "requests/server CPU-second",
            f"{1000 / n_cpu:,.0f}",
            f"{1000 / a_cpu:,.0f}",
            f"{n_cpu / a_cpu:.3f}",
        ),
    ]
    rows += [
        (f"latency {key} ms", f"{med(ngx, key):.2f}", f"{med(app, key):.2f}", "")
        for key in ("p50", "p90", "p99", *(("p99.9",) if args.rate else ()), "max")
    ]
    table = "\n".join(f"| {a:<26} | {b:>9} | {c:>9} | {d:>15} |" for a, b, c, d in rows)
    head = (
        f"{dt.date.today().isoformat()}, medians of {args.runs} run(s): "
        + (
            f"open-loop client, {args.connections} connections, {args.duration} s"
            if args.rate
            else f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency"
        )
        + f", {mode(args)}; "
        f"{os.cpu_count()} CPUs shared by wrk and the server; machine at the start of each run: "
        f"{'; '.join(states)}"
    )
    lines = [head, table, clicks_line(app, args.connections), errors_line(ngx, app), after_line(app)]
    if args.rate:
        lines.append(rate_line(args, ngx, app))
    return "\n".join(lines)


def rate_line(args: argparse.Namespace, ngx: Sequence[Sample], app: Sequence[Sample]) -> str:
    short = [
        f"{name} run {n} {s.wrk.rps:,.0f} req/s ({shortfall(args, s):.1%} short)"
        for name, samples in (("nginx", ngx), ("clickback", app))
        for n, s in enumerate(samples, 1)
        if shortfall(args, s) > RATE_SHORTFALL
    ]
    if short:
        return (
            f"WARNING: achieved rate more than {RATE_SHORTFALL:.0%} below {args.rate:g} req/s: "
            f"{', '.join(short)}. Slow responses held back their connections' next requests, so "
            "the latencies above are for a lighter load than asked for."
        )
    return f"achieved rate within {RATE_SHORTFALL:.0%} of {args.rate:g} req/s in every run"


def after_line(app: Sequence[Sample]) -> str:
    stored = ", ".join(
        "not within 30" if s.stored_after_s is None else f"{s.stored_after_s:.2f}" for s in app
    )
    peak = max((mb for s in app for mb in s.peak_rss_mb), default=float("nan"))
    rates: dict[str, list[float]] = {}
    for s in app:
        for name, rate in (s.cache_hits or {}).items():
            rates.setdefault(name, []).append(rate)
    caches = ", ".join(f"{name} {statistics.median(r):.1%}" for name, r in sorted(rates.items()))
    per_s = ", ".join("n/a" if s.stored_per_s is None else f"{s.stored_per_s:,.0f}" for s in app)
    return (
        f"clickback, each run: every redirected click stored {stored} s after the load stopped"
        f" (clicks stored a second over the load and that time: {per_s}); "
        f"largest worker peak RSS {peak:.0f} MB; enrichment cache hit rates (median) {caches or 'n/a'}"
    )


def clicks_line(app: Sequence[Sample], connections: int) -> str:
    clicks = sum(s.clicks or 0 for s in app)
    redirects = sum(s.redirects for s in app)
    line = f"clicks recorded / redirects counted by wrk, all runs: {clicks:,} / {redirects:,}"
    if clicks < redirects:
        return f"{line}  WARNING: {redirects - clicks:,} redirected clicks are not in the database"
    # wrk stops counting at its deadline; requests in flight then may still be served and recorded.
    return f"{line}  (ok: up to {connections:,} more per run are requests cut off by wrk's deadline)"


def errors_line(ngx: Sequence[Sample], app: Sequence[Sample]) -> str:
    def total(samples: Sequence[Sample]) -> str:
        bad = sum(s.wrk.non_3xx for s in samples)
        return f"{bad} non-2xx/3xx, {sum(s.wrk.socket_errors for s in samples)} socket errors"

    return f"wrk errors: nginx {total(ngx)}; clickback {total(app)}"


# --- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of each server; medians are reported (default 3)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="nginx worker_processes and clickback --workers"
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk open connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2, one per core)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help=f"fixed total request rate, requests/s (at most {MAX_RATE:,}), sent open loop; "
        "reports latency from each request's scheduled time and CPU at that rate, not maximum throughput",
    )
    parser.add_argument(
        "--durable", action="store_true", help="run clickback with CLICKBACK_DURABLE_CLICKS=true"
    )
    parser.add_argument(
        "--wait-quiet",
        action="store_true",
        help=f"before measuring, wait (up to {QUIET_MAX_WAIT_S / 60:.0f} min, checking every "
        f"{QUIET_POLL_S:.0f} s) until no {QUIET_PATTERN} runs and the 1-minute load average is "
        f"below {QUIET_LOAD}; before each later run, until no fault script runs",
    )
    parser.add_argument(
        "--cost",
        choices=sorted(COST_MODELS),
        help="give the benchmark link a cost model: cpc (by GEO), or source (the cost passed on the link)",
    )
    parser.add_argument(
        "--traffic",
        choices=("simple", "realistic"),
        default="simple",
        help="simple: one link, User-Agent and IP; realistic: a campaign's clicks (benchmarks/traffic.py)",
    )
    parser.add_argument(
        "--pg", help="run clickback on PostgreSQL: a fresh database per run on this server's URL"
    )
    parser.add_argument(
        "--install", action="store_true", help="apt-get install nginx-light and wrk if missing"
    )
    args = parser.parse_args(argv)
    if min(args.duration, args.runs, args.workers, args.threads) < 1 or args.connections < args.threads:
        parser.error("duration, runs, workers and threads must be >= 1, and connections >= threads")
    if args.duration > 600 or args.runs > 20 or args.workers > 64 or args.connections > 10_000:
        parser.error("at most --duration 600, --runs 20, --workers 64 and --connections 10000")
    if args.rate and not 1 <= args.rate <= MAX_RATE:
        parser.error(f"--rate must be between 1 and {MAX_RATE:,}")
    args.user_agents = traffic.user_agents() if args.traffic == "realistic" else ()
    return args


def bench(
    nginx: str, wrk: str, args: argparse.Namespace, tmp: Path
) -> tuple[list[Sample], list[Sample], list[str]]:
    ngx: list[Sample] = []
    app: list[Sample] = []
    states: list[str] = []
    # Alternate the servers run by run so drift on the machine hits both alike.
    for n in range(1, args.runs + 1):
        # Later runs do not wait for a low load: the previous run's own load would hold them up.
        state = wait_quiet(low_load=n == 1) if args.wait_quiet else f"load {os.getloadavg()[0]:.2f}"
        ngx.append(bench_nginx(nginx, wrk, args, tmp / f"run{n}", n))
        app.append(bench_clickback(wrk, args, tmp / f"run{n}", n))
        if args.wait_quiet and fault_scripts():
            state += ", FAULT SCRIPT RUNNING at the end of the run"
        states.append(state)
        print(run_line(n, args, ngx[-1], app[-1], state), flush=True)
    return ngx, app, states


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a SIGTERM to the script must still stop its servers via `finally`


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nginx, wrk = ensure_tools(args.install)
    signal.signal(signal.SIGTERM, interrupt)
    with tempfile.TemporaryDirectory(prefix="clickback-bench-") as tmp:
        try:
            ngx, app, states = bench(nginx, wrk, args, Path(tmp))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130
    print(summary(args, ngx, app, states))
    return 0


if __name__ == "__main__":
    sys.exit(main())
