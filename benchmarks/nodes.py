#!/usr/bin/env python3
"""One clickback node against two on the same PostgreSQL, behind nginx, measured in one run.

What a second `clickback serve` node buys, for docs/scaling.md. Each run measures both layouts,
alternating which goes first, on the machine's PostgreSQL (a database `bench_nodes`, created
afresh for each layout and dropped at the end): N nodes (`clickback serve --workers W`, W = 1 by
default; the same secret and API key, a data directory each) behind nginx (an upstream of the N
nodes, keep-alive, `proxy_next_upstream error timeout`), loaded by wrk through nginx:

1. **reference**: `GET /reference`, which nginx passes to the first node's /healthz: the HTTP
   path alone, in the same run, because this machine's speed drifts from minute to minute;
2. **clicks**: `GET /c/{code}` with a browser User-Agent, as fast as answered; clicks redirected
   per second, and once the nodes are stopped with SIGTERM every redirected click must be in the
   database;
3. **plain postbacks**: `event=sale&payout=10&txn_id=…` for clicks taken beforehand, each sent
   once, as fast as answered (postbacks.py's plain phase); accepted postbacks/s are the
   conversions the database holds afterwards over the phase's duration, and every postback
   answered 200 must be among them.

Before the phases, a warm-up of --warmup plain postbacks at 400/s and ANALYZE, as postbacks.py
does, so that the tables have the statistics autovacuum keeps on a database in use.

CPU is counted per group of processes from /proc (every clickback process, every PostgreSQL
process, nginx, wrk) with the share of the machine that was busy: all of them share the same
cores, so a second node cannot double the rate here, and the CPU per click and per postback of
each group is what to extrapolate from to nodes on machines of their own. A phase in which other
work took more than 10% of the CPUs is marked DISTURBED and measured again (--retries, the last
attempt counts); --wait-quiet waits before each layout until the machine is idle. Also measured:
the write-ahead log PostgreSQL writes per click and per postback (what a replica receives), the
bytes a click, a conversion and a postback log row take, and (--partition-rows, after the last
run) a month of clicks removed by DELETE against by dropping its partition: time, WAL, space.

Standard library only, with the helpers of click_vs_nginx.py and postbacks.py; starts the app
from .venv/bin/clickback and needs nginx and wrk (Debian), psql, and a PostgreSQL server that
trusts connections from 127.0.0.1 (the machine's own; its other databases are not touched, but
its CPU is counted whole, so other work on it shows up in the PostgreSQL figures). Everything
listens on 127.0.0.1; every process started is stopped, on Ctrl-C too.

Usage: python3 benchmarks/nodes.py [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
           [--runs 3] [--duration 8] [--workers 1] [--connections 64] [--postback-connections 16]
           [--postbacks 20000] [--warmup 1600] [--nginx-workers 2] [--partition-rows 400000]
           [--retries 2] [--wait-quiet]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from click_vs_nginx import (
    API_KEY,
    CATALOG_SETTLE_S,
    CLICKBACK,
    FLUSH_TIMEOUT_S,
    HOST,
    OFFER_URL,
    START_TIMEOUT_S,
    USER_AGENT,
    BenchError,
    WrkResult,
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
from postbacks import (
    POSTBACK_LUA,
    SETTLE_S,
    WARMUP_RATE,
    Database,
    open_loop,
    plain_paths,
    take_clicks,
    wait_clicks,
)

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "bench_nodes"  # dropped and created afresh for every layout, dropped at the end
THREADS = 2  # wrk threads, one per core of this machine
REFERENCE_S = 4  # seconds of the reference load: shorter than a phase, long enough to settle
CPUS = os.cpu_count() or 1
SALES = "SELECT count(*) FROM conversions WHERE event = 'sale'"
GROUPS = ("nodes", "postgres", "nginx", "wrk")
SHARES = (*GROUPS, "interrupts", "steal", "other", "busy")
SCRIPT_TIMEOUT_S = 600  # the partition measurement: copying and vacuuming --partition-rows rows
# Before each layout the machine's busy share is sampled for IDLE_SAMPLE_S (every process of the
# previous layout has stopped by then). --wait-quiet waits, checking every IDLE_POLL_S for at most
# IDLE_MAX_WAIT_S, until it is below IDLE_BUSY: other work on the machine (a test suite on the
# same PostgreSQL) changes the figures more than anything measured here.
IDLE_BUSY = 0.15
IDLE_SAMPLE_S = 3.0
IDLE_POLL_S = 10.0
IDLE_MAX_WAIT_S = 20 * 60.0
OTHERS_PATTERN = "clickback serve|pytest|benchmarks/"
# A phase in which work outside the measured groups took more than this share of the CPUs is
# marked DISTURBED: its figures are not this code's.
DISTURBED = 0.10

NGINX_CONF = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # wrk keeps its connections for the whole phase; nginx's default of 1000 requests per
    # connection would add reconnects that clickback alone would not see.
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    upstream clickback {{
{servers}
        # clickback answers a click from its HTTP parser only on a kept-alive HTTP/1.1 connection
        # (ADR 8); these are reused across requests.
        keepalive 64;
        keepalive_requests 1000000;
        # Shorter than clickback's own idle limit (CLICKBACK_KEEP_ALIVE_SECONDS, 5 s), so nginx
        # never sends a request down a connection clickback is closing.
        keepalive_timeout 4s;
    }}
    upstream reference {{
        server {host}:{first_port};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 4s;
    }}
    server {{
        listen {host}:{port};
        proxy_http_version 1.1;
        location / {{
            proxy_pass http://clickback;
            # In each location: one proxy_set_header there drops every one inherited from the
            # server block, and without this nginx would close the connection after each request.
            proxy_set_header Connection "";
            # The nodes run with CLICKBACK_PROXY_HOPS=1 and record this last entry.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_redirect off;
            # A node that refuses the connection or does not answer: the next one takes the
            # request (a repeated postback is refused as a duplicate by the database's key).
            proxy_next_upstream error timeout;
            proxy_connect_timeout 1s;
            proxy_read_timeout 60s;
        }}
        location = /reference {{
            proxy_pass http://reference/healthz;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

# A month of clicks removed two ways, on copies of the run's own click rows: DELETE from one
# table, against detaching and dropping the month's partition of a table partitioned by
# clicked_at. The primary key of a partitioned table must include the partition key, hence
# (click_id, clicked_at). CHECKPOINT first: a month-old page has been checkpointed since it was
# written, so the DELETE's first change to each page writes the whole page to the WAL, as it
# would in production.
PARTITION_SQL = """\
\\set ON_ERROR_STOP on
DROP TABLE IF EXISTS exp_flat, exp_monthly;
CREATE TABLE exp_flat (LIKE clicks INCLUDING ALL);
CREATE TABLE exp_monthly (LIKE clicks INCLUDING DEFAULTS) PARTITION BY RANGE (clicked_at);
ALTER TABLE exp_monthly ADD PRIMARY KEY (click_id, clicked_at);
CREATE TABLE exp_m1 PARTITION OF exp_monthly FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE exp_m2 PARTITION OF exp_monthly FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
INSERT INTO exp_flat ({columns})
    SELECT {values} FROM (
        SELECT clicks.*, row_number() OVER () AS n FROM clicks, generate_series(1, {copies}) LIMIT {rows}
    ) c;
INSERT INTO exp_monthly SELECT * FROM exp_flat;
VACUUM ANALYZE exp_flat;
VACUUM ANALYZE exp_monthly;
CHECKPOINT;
SELECT 'size flat', pg_total_relation_size('exp_flat');
SELECT 'rows month', count(*) FROM exp_flat WHERE clicked_at < '2026-02-01';
SELECT pg_current_wal_lsn() AS lsn \\gset
\\timing on
\\echo MARK delete
DELETE FROM exp_flat WHERE clicked_at < '2026-02-01';
\\timing off
SELECT 'wal delete', pg_wal_lsn_diff(pg_current_wal_lsn(), :'lsn');
SELECT pg_current_wal_lsn() AS lsn \\gset
\\timing on
\\echo MARK vacuum
VACUUM exp_flat;
\\timing off
SELECT 'wal vacuum', pg_wal_lsn_diff(pg_current_wal_lsn(), :'lsn');
SELECT 'size flat after', pg_total_relation_size('exp_flat');
SELECT 'size monthly', pg_total_relation_size('exp_m1') + pg_total_relation_size('exp_m2');
SELECT pg_current_wal_lsn() AS lsn \\gset
\\timing on
\\echo MARK drop
BEGIN;
ALTER TABLE exp_monthly DETACH PARTITION exp_m1;
DROP TABLE exp_m1;
COMMIT;
\\timing off
SELECT 'wal drop', pg_wal_lsn_diff(pg_current_wal_lsn(), :'lsn');
SELECT 'size monthly after', pg_total_relation_size('exp_m2');
DROP TABLE exp_flat, exp_monthly;
"""


@dataclass
class Phase:
    """One wrk load through nginx, and the CPU each group of processes spent on it."""

    count: int  # clicks redirected, or postbacks accepted (conversions in the database)
    seconds: float
    cpu: dict[str, float]  # CPU seconds per group (GROUPS), the flush of the phase's work included
    load: dict[str, float]  # each group's share of the machine's CPUs while wrk ran, 0 to 1
    # Shares of the machine's CPU time while wrk ran, 0 to 1: "busy" (not idle; every process,
    # interrupts and steal included), "interrupts" (hard and soft, where loopback TCP is mostly
    # processed: on this machine that time shows in the interrupted processes' own figures too,
    # as the groups add up to the busy share only with it inside them) and "steal" (the
    # hypervisor's, for other guests).
    machine: dict[str, float]
    p99_ms: float
    errors: int  # wrk's non-2xx/3xx answers and socket errors
    wal: int = 0  # bytes of write-ahead log the server wrote meanwhile (what a replica receives)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def ms(self, group: str) -> float:
        return self.cpu[group] * 1000 / max(self.count, 1)

    def share(self, group: str) -> float:
        return self.load[group]

    @property
    def other(self) -> float:
        """The busy share neither a group nor steal explains: other work on the machine."""
        return self.machine["busy"] - self.machine["steal"] - sum(self.share(g) for g in GROUPS)


@dataclass
class Layout:
    """N nodes behind nginx, measured once."""

    nodes: int
    state: str
    reference: float = 0.0  # req/s of GET /reference
    clicks: Phase | None = None
    postbacks: Phase | None = None
    written: list[int] = field(default_factory=list)  # clicks each node wrote in the click phase
    stored: int = 0  # clicks of the loaded link in the database after SIGTERM, hand-made ones excluded
    groups: float = 0.0  # mean postbacks per group commit
    exhausted: bool = False  # the prepared postbacks ran out before wrk's deadline
    pg_connections: int = 0
    sizes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # rows, total, heap, index

    @property
    def disturbed(self) -> bool:
        return any(phase and phase.other > DISTURBED for phase in (self.clicks, self.postbacks))

    @property
    def missing(self) -> int:
        return max(0, self.clicks.count - self.stored) if self.clicks else 0


@dataclass
class Node:
    name: str
    port: int
    data: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class NodesDatabase(Database):
    """postbacks.py's PostgreSQL helper, on a database of this script's own."""

    @property
    def url(self) -> str:
        assert self.pg is not None
        return self.pg.rsplit("/", 1)[0] + "/" + PG_DATABASE

    def create(self) -> None:
        self.drop()
        self._psql("postgres", f"CREATE DATABASE {PG_DATABASE}")

    def drop(self) -> None:
        self._psql("postgres", f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")

    def count(self, sql: str) -> int:
        return int(self._psql(PG_DATABASE, sql).strip())

    def analyze(self) -> None:
        """Planner statistics, as autovacuum keeps them on a database in use (postbacks.py says why)."""
        self._psql(PG_DATABASE, "ANALYZE")

    def wal_position(self) -> int:
        """The server's write-ahead log position, in bytes: the difference of two is the WAL
        written in between, by every database of the server."""
        return int(float(self._psql(PG_DATABASE, "SELECT pg_current_wal_lsn() - '0/0'").strip()))

    def others(self) -> int:
        """Sessions of the server's other databases (this query's own excluded)."""
        mine = f"datname <> '{PG_DATABASE}' AND pid <> pg_backend_pid()"
        sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL AND {mine}"  # noqa: S608
        return int(self._psql("postgres", sql).strip())

    def rows(self, sql: str) -> list[list[str]]:
        return [line.split("|") for line in self._psql(PG_DATABASE, sql).splitlines() if line]

    def script(self, sql: str, tmp: Path) -> str:
        """A psql script, run whole in one session (its meta-commands and timing included)."""
        path = tmp / "script.sql"
        path.write_text(sql)
        parts = urlsplit((self.pg or "").replace("+asyncpg", ""))
        cmd = ["psql", "-X", "-t", "-A", "-h", parts.hostname or HOST, "-p", str(parts.port or 5432)]
        cmd += ["-U", parts.username or "postgres", "-d", PG_DATABASE, "-f", str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S, check=False)
        if done.returncode:
            raise BenchError(f"psql -f {path} failed: {done.stderr.strip()}")
        return done.stdout


# --- measuring ---------------------------------------------------------------------------


def machine_ticks() -> list[int]:
    """CPU ticks of the whole machine since boot, from /proc/stat: user, nice, system, idle,
    iowait, irq, softirq, steal (guest time is inside user already)."""
    return [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_shares(before: Sequence[int], after: Sequence[int]) -> dict[str, float]:
    d = [b - a for a, b in zip(before, after, strict=True)]
    whole = max(sum(d), 1)
    return {
        "busy": (whole - d[3] - d[4]) / whole,
        "interrupts": (d[5] + d[6]) / whole,
        "steal": d[7] / whole,
    }


class Meter:
    """CPU seconds of each group of processes from start() to mark(), the load's window (for the
    shares of the machine), and from start() to stop(), which includes writing what the load left
    behind (for the cost per click or postback)."""

    def __init__(self, nodes: Sequence[Node], db: NodesDatabase, nginx_pid: int) -> None:
        self.nodes, self.db, self.nginx_pid = nodes, db, nginx_pid
        self.begin: dict[str, float] = {}
        self.marked: dict[str, float] = {}
        self.ticks: list[int] = []
        self.machine: dict[str, float] = {}
        self.started = self.window = 0.0

    def read(self) -> dict[str, float]:
        return {
            "nodes": sum(tree_cpu_seconds(node.pid) for node in self.nodes),
            "postgres": self.db.server_cpu_s(),
            "nginx": tree_cpu_seconds(self.nginx_pid),
        }

    def start(self) -> None:
        self.begin = self.read()
        self.ticks, self.started = machine_ticks(), time.monotonic()

    def mark(self) -> None:
        self.machine = machine_shares(self.ticks, machine_ticks())
        self.window = time.monotonic() - self.started
        self.marked = self.read()

    def stop(self, wrk_cpu: float) -> tuple[dict[str, float], dict[str, float]]:
        """CPU seconds per group to now, and each group's share of the CPUs over the load."""
        end = self.read()
        whole = self.window * CPUS
        cpu = {name: end[name] - self.begin[name] for name in end} | {"wrk": wrk_cpu}
        load = {name: (self.marked[name] - self.begin[name]) / whole for name in end}
        return cpu, load | {"wrk": wrk_cpu / whole}


def run_wrk(
    wrk: str,
    url: str,
    connections: int,
    seconds: int,
    script: Path | None = None,
    meter: Meter | None = None,
) -> tuple[WrkResult, float, str]:
    """wrk through nginx: its result, its own CPU seconds and its output; the meter, if any,
    started just before and marked just after."""
    extra = ("-s", str(script)) if script else ()
    cmd = (
        wrk,
        "-H",
        f"User-Agent: {USER_AGENT}",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        *extra,
        url,
    )
    if meter:
        meter.start()
    # wrk is the only child reaped meanwhile (the meter runs pgrep), so the children's usage
    # grows by wrk's alone.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if meter:
        meter.mark()
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return parse_wrk(done.stdout), cpu, done.stdout


def runtime(node: Node, workers: int) -> dict[int, dict[str, object]]:
    """/api/runtime of each worker of a node, by process id: a new connection may reach any
    worker, so ask until each has answered."""
    seen: dict[int, dict[str, object]] = {}
    for _ in range(50 * workers):
        status, _, body = request(node.port, "GET", "/api/runtime")
        if status == 200:
            doc = json.loads(body)
            seen[int(doc["process_id"])] = doc
        if len(seen) == workers:
            return seen
    raise BenchError(f"node {node.name}: only {len(seen)} of {workers} workers answered /api/runtime")


def total(nodes: Sequence[Node], workers: int, key: str) -> list[int]:
    """A counter of /api/runtime summed over each node's workers, per node."""
    return [sum(int(str(doc[key])) for doc in runtime(node, workers).values()) for node in nodes]


def wait_written(nodes: Sequence[Node], workers: int) -> None:
    """Until every worker of every node has written its clicks (the CPU window stays open for
    the batched write, which is part of a click's cost)."""
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while any(total(nodes, workers, "clicks_pending")) or any(total(nodes, workers, "spool_files")):
        if time.monotonic() > deadline:
            raise BenchError(f"clicks still pending {FLUSH_TIMEOUT_S:.0f}s after the load")
        time.sleep(0.1)


# --- one layout --------------------------------------------------------------------------


def setup(port: int) -> tuple[str, str, str]:
    """Through nginx: an advertiser, an offer, an affiliate and two links (one loaded by wrk, one
    whose clicks the postbacks name); the advertiser's token and the two link codes."""
    adv = api_post(port, "/api/advertisers", {"name": "Bench Advertiser"})
    offer = api_post(
        port,
        "/api/offers",
        {
            "advertiser_id": adv["id"],
            "name": "Bench Offer",
            "url_template": OFFER_URL + "?cid={click_id}&s1={sub1}",
            "currency": "EUR",
        },
    )
    aff = api_post(port, "/api/affiliates", {"name": "Bench Affiliate"})
    codes = [
        str(api_post(port, "/api/links", {"affiliate_id": aff["id"], "offer_id": offer["id"]})["code"])
        for _ in range(2)
    ]
    return str(adv["token"]), codes[0], codes[1]


def wait_known(nodes: Sequence[Node], paths: Sequence[str], workers: int) -> None:
    """Each node redirects each path: a link made through one node is unknown (404, no click
    recorded) to the others until their catalog refresh. Makes exactly one click per node and path."""
    for node in nodes:
        for path in paths:
            deadline = time.monotonic() + START_TIMEOUT_S
            while (status := request(node.port, "GET", path)[0]) == 404:
                if time.monotonic() > deadline:
                    raise BenchError(f"node {node.name}: GET {path} still 404 after {START_TIMEOUT_S:.0f}s")
                time.sleep(0.05)
            if status != 302:
                raise BenchError(f"node {node.name}: GET {path} gave {status}, want 302")
    if workers > 1:
        time.sleep(CATALOG_SETTLE_S)  # the node's other workers refresh their catalog too


def node_env(node: Node, db: NodesDatabase, secret: str, public_url: str) -> dict[str, str]:
    # Drop any CLICKBACK_* from the caller's shell so the run cannot touch a real database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
    env |= {
        "CLICKBACK_DATA_DIR": str(node.data),  # its own: the spool is per node
        "CLICKBACK_DATABASE_URL": db.url,
        "CLICKBACK_API_KEY": API_KEY,
        "CLICKBACK_SECRET_KEY": secret,  # the same on every node: any node verifies any click ID
        "CLICKBACK_PUBLIC_URL": public_url,
        "CLICKBACK_PROXY_HOPS": "1",
    }
    return env


def nginx_cmd(nginx: str, prefix: Path, port: int, nodes: Sequence[Node], workers: int) -> list[str]:
    (prefix / "tmp").mkdir(parents=True)
    servers = "\n".join(f"        server {HOST}:{node.port};" for node in nodes)
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=workers, prefix=prefix, servers=servers, host=HOST, port=port, first_port=nodes[0].port
        )
    )
    # -e: nginx opens its error log before reading the config; keep even that one in our prefix.
    return [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"]


def one_layout(
    n_nodes: int, nginx: str, wrk: str, db: NodesDatabase, args: argparse.Namespace, tmp: Path, state: str
) -> Layout:
    db.create()
    port = free_port()
    secret = secrets.token_hex(32)
    nodes = [Node(name, free_port(), tmp / f"node-{name}") for name in "abcdefgh"[:n_nodes]]
    layout = Layout(n_nodes, state)
    stack = contextlib.ExitStack()
    with stack:
        for node in nodes:
            node.data.mkdir(parents=True)
            cmd = [str(CLICKBACK), "serve", "--host", HOST, "--port", str(node.port)]
            cmd += ["--workers", str(args.workers)]
            node.proc = stack.enter_context(
                running(cmd, node.log, node_env(node, db, secret, f"http://{HOST}:{port}"))
            )
            # One at a time: the first migrates the new database, the others find it current.
            wait_ready(node.proc, node.port, "/readyz", node.log)
        prefix = tmp / "nginx"
        ngx = stack.enter_context(
            running(nginx_cmd(nginx, prefix, port, nodes, args.nginx_workers), prefix / "stdout.log")
        )
        wait_ready(ngx, port, "/healthz", prefix / "error.log")

        token, load_code, postback_code = setup(port)
        load_path = f"/c/{load_code}?sub1=bench&source=wrk"
        wait_known(nodes, [load_path, f"/c/{postback_code}"], args.workers)
        # Clicks for the postbacks, through nginx (so on every node), in the database before
        # the measured phases: the postbacks find their click there.
        paths = [f"/c/{postback_code}?sub1=s{n % 50}" for n in range(args.postbacks + args.warmup)]
        taken = asyncio.run(take_clicks(port, paths))
        wait_clicks(db, len(taken) + 2 * n_nodes)
        ids, warm_ids = taken[: args.postbacks], taken[args.postbacks :]
        # A warm-up and ANALYZE, as postbacks.py does: the tables then have the statistics
        # autovacuum keeps on a database in use; a statement prepared on a new, near-empty table
        # would keep a plan that scans it.
        if warm_ids:
            asyncio.run(open_loop(port, plain_paths(warm_ids, token, "W"), WARMUP_RATE))
        db.analyze()
        meter = Meter(nodes, db, ngx.pid)

        ref, _, _ = run_wrk(wrk, f"http://{HOST}:{port}/reference", args.connections, REFERENCE_S)
        if ref.non_3xx or ref.socket_errors:
            raise BenchError(f"reference: {ref.non_3xx} non-2xx answers, {ref.socket_errors} socket errors")
        layout.reference = ref.rps

        # Clicks, as fast as answered.
        written0 = total(nodes, args.workers, "clicks_written")
        wal0 = db.wal_position()
        result, wrk_cpu, _ = run_wrk(
            wrk, f"http://{HOST}:{port}{load_path}", args.connections, args.duration, meter=meter
        )
        wait_written(nodes, args.workers)
        cpu, load = meter.stop(wrk_cpu)
        layout.written = [
            b - a for a, b in zip(written0, total(nodes, args.workers, "clicks_written"), strict=True)
        ]
        layout.clicks = Phase(
            result.requests - result.non_3xx,
            result.seconds,
            cpu,
            load,
            meter.machine,
            result.p99_ms,
            result.non_3xx + result.socket_errors,
            db.wal_position() - wal0,
        )

        # Plain postbacks, each sent once, as fast as answered.
        path_file = tmp / "postbacks.paths"
        path_file.write_text("\n".join(plain_paths(ids, token, "T")) + "\n")
        lua = tmp / "postbacks.lua"
        lua.write_text(POSTBACK_LUA.format(paths=path_file, threads=THREADS))
        before = db.count(SALES)
        recorded0 = total(nodes, args.workers, "postbacks_recorded")
        groups0 = total(nodes, args.workers, "postback_groups")
        wal0 = db.wal_position()
        result, wrk_cpu, out = run_wrk(
            wrk, f"http://{HOST}:{port}", args.postback_connections, args.duration, lua, meter
        )
        time.sleep(SETTLE_S)  # replies still in flight at wrk's deadline
        cpu, load = meter.stop(wrk_cpu)
        counts = dict(item.split("=") for item in out.split("POSTBACKS ")[1].split()[:4])
        sent, spare = int(counts["sent"]), int(counts["spare"])
        ok = int(counts["ok"]) - spare  # /healthz, asked once the postbacks ran out, answers 200
        accepted = db.count(SALES) - before
        if accepted < ok:
            raise BenchError(f"{ok} postbacks answered 200 but only {accepted} are in the database")
        recorded = sum(total(nodes, args.workers, "postbacks_recorded")) - sum(recorded0)
        layout.groups = recorded / max(sum(total(nodes, args.workers, "postback_groups")) - sum(groups0), 1)
        layout.exhausted = spare > 0
        # The phase ends when the postbacks do, if they ran out before wrk's deadline.
        seconds = result.seconds * sent / (sent + spare) if spare else result.seconds
        layout.postbacks = Phase(
            accepted,
            seconds,
            cpu,
            load,
            meter.machine,
            result.p99_ms,
            int(counts["refused"]) + result.socket_errors,
            db.wal_position() - wal0,
        )
        # The nodes' pools, less psql's own session.
        layout.pg_connections = (
            db.count(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{PG_DATABASE}'")  # noqa: S608
            - 1
        )
        for node in nodes:
            assert node.proc is not None
            if node.proc.poll() is not None:
                raise BenchError(f"node {node.name} died during the run:\n{tail(node.log)}")
        # Leaving the block stops nginx, then each node with SIGTERM: it writes what it holds.
    for node in nodes:
        assert node.proc is not None
        if node.proc.returncode not in (0, -signal.SIGTERM):
            raise BenchError(f"node {node.name} exited with {node.proc.returncode}:\n{tail(node.log)}")
    layout.stored = (
        db.count(
            "SELECT count(*) FROM clicks JOIN links ON links.id = clicks.link_id"  # noqa: S608
            f" WHERE links.code = '{load_code}'"
        )
        - n_nodes  # wait_known's click on each node
    )
    for table in ("clicks", "conversions", "postbacks"):
        row = db.rows(
            f"SELECT count(*), pg_total_relation_size('{table}'), pg_relation_size('{table}'),"  # noqa: S608
            f" pg_indexes_size('{table}') FROM {table}"
        )[0]
        rows, total_b, heap, index = (int(v) for v in row)
        layout.sizes[table] = (rows, total_b, heap, index)
    return layout


# --- a month of clicks: DELETE against dropping a partition --------------------------------


def partition_experiment(db: NodesDatabase, rows: int, tmp: Path) -> dict[str, float]:
    """Run PARTITION_SQL on copies of the last layout's click rows; its figures by name."""
    columns = [
        r[0]
        for r in db.rows(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'clicks' ORDER BY ordinal_position"
        )
    ]
    have = db.count("SELECT count(*) FROM clicks")
    # Each copy gets a new click ID and a time in January or February 2026, alternately.
    made = {
        "click_id": "left(md5(c.n::text || c.click_id), 32)",
        "clicked_at": "timestamptz '2026-01-01 00:00+00' + (c.n % 2) * interval '1 month'"
        " + random() * interval '27 days'",
    }
    values = ", ".join(made.get(name, f"c.{name}") for name in columns)
    sql = PARTITION_SQL.format(
        columns=", ".join(columns), values=values, copies=-(-rows // max(have, 1)), rows=rows
    )
    out = db.script(sql, tmp)
    figures: dict[str, float] = {}
    mark = None
    for line in out.splitlines():
        if line.startswith("MARK "):
            mark = line.split()[1]
        elif (timing := re.match(r"Time: ([\d.]+) ms", line)) and mark:
            # Every statement until the next mark: DETACH, DROP and their COMMIT are one step.
            figures[f"ms {mark}"] = figures.get(f"ms {mark}", 0.0) + float(timing[1])
        elif "|" in line:
            name, value = line.split("|")
            figures[name] = float(value)
    figures["rows"] = rows
    return figures


def others_running() -> list[str]:
    """Pids of other servers, test suites and benchmarks on the machine (between layouts none of
    ours runs): they come and go, and a busy share sampled between their bursts misses them."""
    try:
        done = subprocess.run(
            ("pgrep", "-f", OTHERS_PATTERN), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"pgrep -f {OTHERS_PATTERN!r} failed: {exc}") from exc
    return [pid for pid in done.stdout.split() if int(pid) not in (os.getpid(), os.getppid())]


def machine_state(wait: bool) -> str:
    """The machine's busy share over IDLE_SAMPLE_S, after waiting (with `wait`) for it to fall
    below IDLE_BUSY with no other server, test suite or benchmark running; for the report."""
    deadline = time.monotonic() + IDLE_MAX_WAIT_S
    while True:
        ticks = machine_ticks()
        time.sleep(IDLE_SAMPLE_S)
        busy = machine_shares(ticks, machine_ticks())["busy"]
        others = others_running() if wait else []
        state = f"{busy:.0%} busy before, load {os.getloadavg()[0]:.2f}"
        state += f", other processes {' '.join(others)}" if others else ""
        if not wait or (busy < IDLE_BUSY and not others):
            return state
        if time.monotonic() > deadline:
            print(f"WARNING: not idle after {IDLE_MAX_WAIT_S / 60:.0f} min ({state})", file=sys.stderr)
            return f"NOT IDLE: {state}"
        print(
            f"waiting for an idle machine ({state}; want < {IDLE_BUSY:.0%} busy and no {OTHERS_PATTERN!r})",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(IDLE_POLL_S)


# --- report ------------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str) -> str:
    low, mid, high = (format(v, fmt) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low} to {high})" if len(values) > 1 else mid


def layout_line(n: int, runs: int, lay: Layout) -> str:
    c, p = lay.clicks, lay.postbacks
    assert c is not None and p is not None

    def cpu(phase: Phase) -> str:
        return " ".join(f"{g} {phase.ms(g):.3f}" for g in GROUPS)

    def shares(phase: Phase) -> str:
        m = phase.machine
        return (
            " ".join(f"{g} {phase.share(g):.0%}" for g in GROUPS)
            + f" (interrupts {m['interrupts']:.0%} of it) steal {m['steal']:.0%} other {phase.other:.0%},"
            f" machine busy {m['busy']:.0%}"
        )

    split = "/".join(f"{w / max(sum(lay.written), 1):.0%}" for w in lay.written)
    missing = f"  MISSING {lay.missing:,}" if lay.missing else ""
    disturbed = "".join(
        f"  DISTURBED: other work took {phase.other:.0%} of the CPUs during the {name}"
        for name, phase in (("clicks", c), ("postbacks", p))
        if phase.other > DISTURBED
    )
    short = "  POSTBACKS RAN OUT: raise --postbacks" if lay.exhausted else ""
    errors = f"  wrk errors: clicks {c.errors}, postbacks {p.errors}" if c.errors or p.errors else ""
    return (
        f"run {n}/{runs}, {lay.nodes} node(s) ({lay.state}): reference {lay.reference:,.0f} req/s\n"
        f"  clicks {c.rate:,.0f}/s ({c.rate / lay.reference:.3f} of reference, split {split}), "
        f"p99 {c.p99_ms:.1f} ms; CPU ms/click {cpu(c)}; of the CPUs: {shares(c)}; "
        f"WAL {c.wal / max(c.count, 1):,.0f} bytes/click; "
        f"stored {lay.stored:,} / redirected {c.count:,}{missing}\n"
        f"  postbacks {p.rate:,.0f}/s ({p.rate / lay.reference:.3f} of reference), groups of "
        f"{lay.groups:.1f}, p99 {p.p99_ms:.1f} ms; CPU ms/postback {cpu(p)}; of the CPUs: {shares(p)}; "
        f"WAL {p.wal / max(p.count, 1):,.0f} bytes/postback; PostgreSQL connections {lay.pg_connections}"
        f"{short}{errors}{disturbed}"
    )


def summary(args: argparse.Namespace, runs: Sequence[dict[int, Layout]], storage: dict[str, float]) -> str:
    one = [r[1] for r in runs]
    two = [r[2] for r in runs]

    def clicks(lay: Layout) -> Phase:
        assert lay.clicks is not None
        return lay.clicks

    def postbacks(lay: Layout) -> Phase:
        assert lay.postbacks is not None
        return lay.postbacks

    def cpu_of(phase: Callable[[Layout], Phase], group: str) -> Callable[[Layout], float]:
        return lambda x: phase(x).ms(group)

    def share_of(phase: Callable[[Layout], Phase], name: str) -> Callable[[Layout], float]:
        def get(x: Layout) -> float:
            p = phase(x)
            if name in GROUPS:
                return 100 * p.share(name)
            return 100 * (p.other if name == "other" else p.machine[name])

        return get

    def row(
        label: str, get: Callable[[Layout], float], fmt: str, ratio: bool = False
    ) -> tuple[str, str, str, str]:
        a, b = [float(get(x)) for x in one], [float(get(x)) for x in two]
        # The ratio of each run's two layouts, measured minutes apart, not of the medians.
        r = spread([y / x for x, y in zip(a, b, strict=True)], ".2f") if ratio else ""
        return label, spread(a, fmt), spread(b, fmt), r

    rows = [
        row("reference: nginx → /healthz req/s", lambda x: x.reference, ",.0f", True),
        row("clicks redirected/s", lambda x: clicks(x).rate, ",.0f", True),
        row("clicks/s ÷ reference", lambda x: clicks(x).rate / x.reference, ".3f", True),
        row("clicks: p99 ms", lambda x: clicks(x).p99_ms, ".1f"),
        *(row(f"clicks: {g} CPU ms/click", cpu_of(clicks, g), ".4f") for g in GROUPS),
        *(row(f"clicks: {g}, % of the CPUs", share_of(clicks, g), ".0f") for g in SHARES),
        row("clicks: WAL bytes/click", lambda x: clicks(x).wal / max(clicks(x).count, 1), ",.0f"),
        row("plain postbacks accepted/s", lambda x: postbacks(x).rate, ",.0f", True),
        row("postbacks/s ÷ reference", lambda x: postbacks(x).rate / x.reference, ".3f", True),
        row("postbacks: p99 ms", lambda x: postbacks(x).p99_ms, ".1f"),
        row("postbacks: mean group size", lambda x: x.groups, ".1f"),
        *(row(f"postbacks: {g} CPU ms/postback", cpu_of(postbacks, g), ".3f") for g in GROUPS),
        *(row(f"postbacks: {g}, % of the CPUs", share_of(postbacks, g), ".0f") for g in SHARES),
        row("postbacks: WAL bytes/postback", lambda x: postbacks(x).wal / max(postbacks(x).count, 1), ",.0f"),
        row("PostgreSQL connections held", lambda x: x.pg_connections, ".0f"),
    ]
    head = (
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs shared by the nodes, PostgreSQL, nginx "
        f"(worker_processes {args.nginx_workers}) and wrk; each node `clickback serve --workers "
        f"{args.workers}`; wrk -t{THREADS}, clicks -c{args.connections}, postbacks "
        f"-c{args.postback_connections}, -d{args.duration}s; median (min to max) of {len(runs)} run(s)"
    )
    table = [
        head,
        "| | one node | two nodes | two ÷ one (per run) |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
    ]
    layouts = one + two
    stored = sum(x.stored for x in layouts)
    redirected = sum(clicks(x).count for x in layouts)
    missing = sum(x.missing for x in layouts)
    table.append(
        f"clicks stored after SIGTERM / redirected, all layouts: {stored:,} / {redirected:,}"
        + (f"  WARNING: {missing:,} redirected clicks missing" if missing else " (none missing)")
    )
    disturbed = [
        f"run {n} with {lay.nodes} node(s)"
        for n, run in enumerate(runs, 1)
        for lay in run.values()
        if lay.disturbed
    ]
    table.append(
        f"disturbed (other work took more than {DISTURBED:.0%} of the CPUs): {', '.join(disturbed) or 'none'}"
    )
    for name in ("clicks", "conversions", "postbacks"):
        n, total_b, heap, index = layouts[-1].sizes[name]
        table.append(
            f"{name}: {n:,} rows, {total_b / max(n, 1):,.0f} bytes a row with its indexes "
            f"(table {heap / max(n, 1):,.0f}, indexes {index / max(n, 1):,.0f})"
        )
    # What one CPU core of each group does at the measured cost: for nodes on machines of their own.
    per_core = []
    for label, get in (("clicks", clicks), ("plain postbacks", postbacks)):
        for group in ("nodes", "postgres"):
            ms = statistics.median(get(x).ms(group) for x in layouts)
            per_core.append(f"{label} per {group} CPU-second {1000 / ms:,.0f}")
    table.append("at the median CPU cost of both layouts: " + "; ".join(per_core))
    if storage:
        table.append(partition_line(storage))
    return "\n".join(table)


def partition_line(s: dict[str, float]) -> str:
    mb = 1024 * 1024  # MiB, as PostgreSQL's pg_size_pretty counts
    return (
        f"a month of {s['rows month']:,.0f} clicks (of {s['rows']:,.0f}): DELETE {s['ms delete']:,.0f} ms, "
        f"{s['wal delete'] / mb:,.1f} MiB of WAL, then VACUUM {s['ms vacuum']:,.0f} ms, "
        f"{s['wal vacuum'] / mb:,.1f} MiB of WAL; table {s['size flat'] / mb:,.1f} MiB before, "
        f"{s['size flat after'] / mb:,.1f} MiB after (space kept for reuse). Partitioned: DETACH + "
        f"DROP {s['ms drop']:,.1f} ms, {s['wal drop'] / 1024:,.1f} KiB of WAL; "
        f"{s['size monthly'] / mb:,.1f} MiB before, {s['size monthly after'] / mb:,.1f} MiB after"
    )


# --- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pg", default=PG_DEFAULT, help=f"a PostgreSQL URL; its server gets database {PG_DATABASE}"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs, each of both layouts (default 3)")
    parser.add_argument("--duration", type=int, default=8, help="seconds of each wrk phase (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="clickback serve --workers of each node")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections for clicks (default 64)")
    parser.add_argument(
        "--postback-connections",
        type=int,
        default=16,
        help="wrk connections for postbacks: concurrent senders (default 16, as postbacks.py)",
    )
    parser.add_argument(
        "--postbacks", type=int, default=20_000, help="plain postbacks prepared per layout (default 20000)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1600,
        help="plain postbacks sent before the phases, then ANALYZE (default 1600, as postbacks.py)",
    )
    parser.add_argument("--nginx-workers", type=int, default=2, help="nginx worker_processes (default 2)")
    parser.add_argument(
        "--partition-rows",
        type=int,
        default=400_000,
        help="clicks copied for the DELETE against DROP PARTITION measurement; 0 skips it",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times a layout DISTURBED by other work is measured again (default 2); the last counts",
    )
    parser.add_argument(
        "--wait-quiet",
        action="store_true",
        help=f"before each layout, wait (at most {IDLE_MAX_WAIT_S / 60:.0f} min) until the machine is "
        f"less than {IDLE_BUSY:.0%}% busy over {IDLE_SAMPLE_S:.0f} s and no process matches "
        f"{OTHERS_PATTERN!r}",
    )
    args = parser.parse_args(argv)
    if not (1 <= args.runs <= 20 and 1 <= args.duration <= 120 and 1 <= args.workers <= 16):
        parser.error("--runs 1..20, --duration 1..120, --workers 1..16")
    if not (THREADS <= args.connections <= 10_000 and THREADS <= args.postback_connections <= 1000):
        parser.error(f"--connections {THREADS}..10000, --postback-connections {THREADS}..1000")
    if not (100 <= args.postbacks <= 500_000 and 1 <= args.nginx_workers <= 16):
        parser.error("--postbacks 100..500000, --nginx-workers 1..16")
    if not (0 <= args.retries <= 10 and 0 <= args.warmup <= 100_000):
        parser.error("--retries 0..10, --warmup 0..100000")
    if not (args.partition_rows == 0 or 1000 <= args.partition_rows <= 10_000_000):
        parser.error("--partition-rows 0, or 1000..10000000")
    if not args.pg.startswith("postgresql+asyncpg://"):
        parser.error("--pg must be a postgresql+asyncpg:// URL")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    nginx, wrk = find_tool("nginx"), find_tool("wrk")
    if nginx is None or wrk is None or find_tool("psql") is None or not os.access(CLICKBACK, os.X_OK):
        print(
            "needs nginx, wrk and psql (apt-get install nginx-light wrk postgresql-client) "
            "and the app in .venv (python3 dev.py test)",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, interrupt)
    runs: list[dict[int, Layout]] = []
    storage: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="clickback-nodes-") as tmp:
        db = NodesDatabase(args.pg, Path(tmp))
        try:
            for n in range(1, args.runs + 1):
                run: dict[int, Layout] = {}
                # Alternate which layout goes first, so drift on the machine hits both alike.
                for nodes in (1, 2) if n % 2 else (2, 1):
                    for attempt in range(args.retries + 1):
                        where = Path(tmp) / f"run{n}-{nodes}-{attempt}"
                        state = machine_state(args.wait_quiet)
                        # Sessions of other databases on the server: their CPU counts as PostgreSQL's.
                        others = db.others()
                        state += f", {others} session(s) of other databases" if others else ""
                        run[nodes] = one_layout(nodes, nginx, wrk, db, args, where, state)
                        print(layout_line(n, args.runs, run[nodes]), flush=True)
                        if not run[nodes].disturbed:
                            break
                        if attempt < args.retries:
                            print(f"  measuring run {n} with {nodes} node(s) again", flush=True)
                runs.append(run)
                c1, c2 = run[1].clicks, run[2].clicks
                p1, p2 = run[1].postbacks, run[2].postbacks
                assert c1 and c2 and p1 and p2
                print(
                    f"run {n}/{args.runs}: two nodes ÷ one: clicks {c2.rate / c1.rate:.2f}, "
                    f"postbacks {p2.rate / p1.rate:.2f}, reference {run[2].reference / run[1].reference:.2f}",
                    flush=True,
                )
            if args.partition_rows:
                storage = partition_experiment(db, args.partition_rows, Path(tmp))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130
        finally:
            with contextlib.suppress(BenchError):
                db.drop()
    print(summary(args, runs, storage))
    return 1 if any(lay.missing for run in runs for lay in run.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
