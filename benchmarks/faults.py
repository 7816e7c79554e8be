#!/usr/bin/env python3
"""Fault scripts for the click path: one bounded command each, measured figures printed.

Each scenario starts its own clickback server(s) on 127.0.0.1 (and, when it needs PostgreSQL, a
private cluster on a free port: never the machine's own server, which the tests use), sends
clicks with a small keep-alive load client that remembers every click ID it was redirected with,
injects one fault, and then checks the ground truth:

- every click ID that got a 302 is in the `clicks` table (its primary key makes it "at most once");
- `SUM(clicks + bot_clicks) FROM report_hours` equals the row count: no click was counted twice
  (or not at all) in the report counters, whatever was retried or replayed.

    .venv/bin/python benchmarks/faults.py sigterm [--pg]
    .venv/bin/python benchmarks/faults.py kill9 [--pg] [--mode both|durable|plain]
    .venv/bin/python benchmarks/faults.py db-outage [--outage 60] [--rate 300] [--sqlite-locked]
                                                    [--durable] [--buffer-max N] [--nofile N]
    .venv/bin/python benchmarks/faults.py two-nodes [--load 500]

Each takes under ~1.5 minutes with its defaults; `SCENARIO --help` lists every option.

Exit status: 0 every expectation held; 1 one failed (its line starts with FAIL); 2 the scenario
could not run (a tool is missing, a server did not start); 130 interrupted. Every process the
script starts is stopped before it exits, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[1]
CLICKBACK = REPO / ".venv" / "bin" / "clickback"
HOST = "127.0.0.1"  # loopback only: nothing this script starts listens or connects anywhere else
API_KEY = "faults-key-of-the-bootstrap-manager"
OFFER_TEMPLATE = "https://offer.example.com/l?cid={click_id}"
# A browser's User-Agent: without one a click is filed as a bot's, and a different path is measured.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)

START_TIMEOUT_S = 60.0  # `serve` migrates before it listens; a cold PostgreSQL migration takes seconds
STOP_TIMEOUT_S = 30.0  # a SIGTERMed server flushes its buffer first: allow a slow database
REQUEST_TIMEOUT_S = 10.0  # a redirect never waits for the database, so 10 s means the server is stuck
ERROR_BACKOFF_S = 0.05  # after a refused connection: the server is gone, do not spin on it
# Longer than catalog_refresh_seconds (default 1 s): by then every worker knows the new link, so
# no click of the load is refused as an unknown link by a worker that has not reloaded yet.
CATALOG_SETTLE_S = 2.0
DRAIN_TIMEOUT_S = 120.0  # bound on waiting for a backlog to reach the database
POLL_S = 0.25
# The app's click_flush_seconds default: the longest a click waits in memory when all is well.
FLUSH_INTERVAL_S = 0.5
# With several workers, /api/runtime is answered by whichever worker accepts the connection, so
# "nothing pending" is believed only after this many zero readings in a row on fresh connections.
ZERO_READINGS = 6


class SetupError(Exception):
    """The scenario could not run (exit status 2); the message says which step failed."""


class Interrupted(Exception):
    """SIGTERM to this script: unwind like Ctrl-C so every `finally` stops what was started."""


# --- small helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def request(
    port: int, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """One request on its own connection (so, with several workers, any worker may answer)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {API_KEY}", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def api(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    status, data = request(port, method, path, body)
    if status >= 300:
        raise SetupError(f"{method} {path} answered {status}: {data[:300]!r}")
    return json.loads(data)


def take_click(port: int, code: str) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request("GET", f"/c/{code}", headers={"User-Agent": USER_AGENT})
        resp = conn.getresponse()
        resp.read()
        cid = click_id_of(resp.getheader("location", ""))
    finally:
        conn.close()
    if resp.status != 302 or not cid:
        raise SetupError(f"click answered {resp.status}, location {resp.getheader('location')!r}")
    return cid


def click_id_of(location: str) -> str | None:
    values = parse_qs(urlsplit(location).query).get("cid")
    return values[0] if values else None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figure(name: str, value: object, note: str = "") -> None:
    print(f"  {name:<44} {value}{'   ' + note if note else ''}")


class Checks:
    """Expectations of one scenario: each printed as it is judged, failures kept for the exit code."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def expect(self, ok: bool, text: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {text}")
        if not ok:
            self.failures.append(text)


def sleep_until(deadline: float) -> None:
    # time.sleep is interrupted by Ctrl-C, so the script stays responsive while it waits.
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))


def wait_for(what: str, condition: Callable[[], bool], timeout: float, interval: float = POLL_S) -> float:
    """Poll until `condition` holds; returns the seconds it took. Bounded: raises SetupError."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):  # a busy server: ask again
            if condition():
                return time.monotonic() - started
        time.sleep(interval)
    raise SetupError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- the clickback server --------------------------------------------------------------------


class Server:
    """`clickback serve` in its own session: Ctrl-C reaches only this script (which then stops it
    in order), and the whole process group (Uvicorn's main process and its workers) can be killed."""

    def __init__(
        self,
        name: str,
        data_dir: Path,
        secret: str,
        *,
        workers: int,
        database_url: str = "",
        extra_env: dict[str, str] | None = None,
        nofile: int = 0,
    ) -> None:
        self.name = name
        self.nofile = nofile
        self.data_dir = data_dir
        self.port = free_port()
        self.workers = workers
        self.log = data_dir.parent / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
        env |= {
            "CLICKBACK_DATA_DIR": str(data_dir),
            "CLICKBACK_API_KEY": API_KEY,
            "CLICKBACK_SECRET_KEY": secret,
            "CLICKBACK_PUBLIC_URL": f"http://{HOST}:{self.port}",
        }
        if database_url:
            env["CLICKBACK_DATABASE_URL"] = database_url
        self.env = env | (extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "clickback.db"

    def start(self) -> None:
        cmd = [str(CLICKBACK), "serve", "--host", HOST, "--port", str(self.port)]
        cmd += ["--workers", str(self.workers)]
        if self.nofile:
            # An operator's file-descriptor limit (systemd's default soft limit is 1024).
            cmd = ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *cmd]
        # A file, not a pipe: a pipe nobody reads would stall the server once full. Appending keeps
        # the log of a run before a restart.
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SetupError(f"{self.name} exited with {self.proc.returncode} at start:\n{self.tail()}")
            # Ready means every worker is serving, not just the first: the load must reach all
            # of them, and a fault injected during a worker's start-up would test something else.
            started = self._log_since(offset).count("Application startup complete.")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if started >= self.workers and request(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    return
            time.sleep(0.1)
        raise SetupError(
            f"{self.name}: no /healthz or not all {self.workers} workers logged "
            f"'Application startup complete.' within {START_TIMEOUT_S:.0f} s:\n{self.tail()}"
        )

    def group_alive(self) -> bool:
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def terminate(self) -> None:
        """SIGTERM to Uvicorn's main process only, as a service manager would send it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_gone(self, timeout: float) -> bool:
        """Main process and every worker exited (workers flush on their own after the main one)."""
        if self.proc is None:
            return True
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)  # reaps it: a zombie would still count in its group
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and not self.group_alive():
                return True
            time.sleep(0.05)
        return False

    def kill_group(self) -> None:
        """kill -9 on the main process and all its workers at once: nobody gets to flush."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM, then kill -9 on the group if it overstays; a no-op once stopped."""
        if self.proc is None:
            return
        self.terminate()
        if not self.wait_gone(STOP_TIMEOUT_S):
            print(f"  {self.name} still running {STOP_TIMEOUT_S:.0f} s after SIGTERM: killing its group")
        self.kill_group()  # also any worker that outlived the main process

    def runtime(self) -> dict[str, Any]:
        result: dict[str, Any] = api(self.port, "GET", "/api/runtime")
        return result

    def _log_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join("    | " + line for line in text[-lines:])

    def log_count(self, needle: str) -> int:
        try:
            return self.log.read_text(errors="replace").count(needle)
        except FileNotFoundError:
            return 0


@dataclass(frozen=True)
class Entities:
    advertiser_id: int
    token: str
    offer_id: int
    affiliate_id: int
    code: str


def create_entities(port: int) -> Entities:
    adv = api(port, "POST", "/api/advertisers", {"name": "Faults advertiser"})
    offer = api(
        port,
        "POST",
        "/api/offers",
        {
            "advertiser_id": adv["id"],
            "name": "Faults offer",
            "url_template": OFFER_TEMPLATE,
            "currency": "EUR",
        },
    )
    aff = api(port, "POST", "/api/affiliates", {"name": "Faults affiliate"})
    link = api(port, "POST", "/api/links", {"affiliate_id": aff["id"], "offer_id": offer["id"]})
    time.sleep(CATALOG_SETTLE_S)
    return Entities(adv["id"], adv["token"], offer["id"], aff["id"], link["code"])


# --- the load client -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the request was sent
    latency: float
    status: int  # HTTP status; -1: connection refused, reset or timed out


@dataclass
class LoadResult:
    ids: list[str] = field(default_factory=list)  # click IDs of every 302, in no particular order
    ids_at: list[float] = field(default_factory=list)  # when each of those 302s arrived (monotonic)
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def redirected_between(self, start: float, end: float) -> int:
        return sum(1 for s in self.samples if start <= s.at < end and s.status == 302)


class Load:
    """Threads, one keep-alive connection each, sending GET /c/<code> with a browser User-Agent.

    Bounded three ways: stop(), a deadline, and a request cap. With `rate`, requests follow a
    fixed schedule (thread i sends request k at start + (k*connections + i)/rate), so a stalled
    server shows as latency rather than as fewer requests. A request is never re-sent: each
    would be a new click with a new ID, and only IDs seen in a 302 count.
    """

    def __init__(
        self, port: int, path: str, *, connections: int, seconds: float, rate: float | None = None
    ) -> None:
        self.port = port
        self.path = path
        self.connections = connections
        self.seconds = seconds
        self.rate = rate
        # Cap: the schedule's count with a rate; otherwise far above what 2 cores can serve.
        self.cap = int(rate * seconds) + connections if rate else 100_000 * max(1, int(seconds))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._parts: list[LoadResult] = []
        self.started = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for i in range(self.connections):
            part = LoadResult()  # one per thread: no lock on the hot path, merged after join
            self._parts.append(part)
            t = threading.Thread(target=self._run, args=(i, part), name=f"load-{i}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=REQUEST_TIMEOUT_S + 5)
        merged = LoadResult()
        for part in self._parts:
            merged.ids += part.ids
            merged.ids_at += part.ids_at
            merged.samples += part.samples
            merged.errors += part.errors
        merged.samples.sort(key=lambda s: s.at)
        return merged

    def _run(self, index: int, out: LoadResult) -> None:
        deadline = self.started + self.seconds
        per_thread = self.cap // self.connections + 1
        conn: http.client.HTTPConnection | None = None
        headers = {"User-Agent": USER_AGENT}
        try:
            for k in range(per_thread):
                if self._stop.is_set() or time.monotonic() >= deadline:
                    break
                if self.rate:
                    due = self.started + (k * self.connections + index) / self.rate
                    wait = min(due, deadline) - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        break
                sent = time.monotonic()
                status = -1
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT_S)
                    conn.request("GET", self.path, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                    if status == 302:
                        cid = click_id_of(resp.getheader("location", ""))
                        if cid:
                            out.ids.append(cid)
                            out.ids_at.append(time.monotonic())
                        else:
                            out.errors["302 without cid"] += 1
                    if resp.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as exc:
                    out.errors[type(exc).__name__] += 1
                    if conn is not None:
                        conn.close()
                    conn = None
                    self._stop.wait(ERROR_BACKOFF_S)
                out.samples.append(Sample(sent, time.monotonic() - sent, status))
        finally:
            if conn is not None:
                conn.close()


def group_fds(pgid: int) -> int:
    """Open file descriptors of every process in a group: the spool holds one per open segment."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after the ")" that ends the command name: state, ppid, pgrp, ...
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                total += len(os.listdir(stat.parent / "fd"))
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return total


class Poller:
    """Reads /api/runtime every `interval` seconds in a thread (fresh connection each time), and
    counts the server's open file descriptors."""

    def __init__(self, server: Server, interval: float = 0.5, max_seconds: float = 600.0) -> None:
        self.server = server
        self.interval = interval
        self.max_seconds = max_seconds
        self.readings: list[tuple[float, dict[str, Any] | None]] = []
        self.max_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            at = time.monotonic()
            try:
                reading: dict[str, Any] | None = self.server.runtime()
            except (OSError, http.client.HTTPException, SetupError, ValueError):
                reading = None
            self.readings.append((at, reading))
            if self.server.proc is not None:
                self.max_fds = max(self.max_fds, group_fds(self.server.proc.pid))
            self._stop.wait(self.interval)


# --- PostgreSQL: a private cluster -----------------------------------------------------------


class PrivatePG:
    """initdb into a temp dir owned by `postgres`, on a free port, listening on 127.0.0.1 only;
    stopped and removed by cleanup(). The machine's own PostgreSQL is never touched."""

    def __init__(self) -> None:
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        )
        initdb = found[-1] if found else (Path(w) if (w := shutil.which("initdb")) else None)
        if initdb is None:
            raise SetupError("no initdb: install PostgreSQL (apt-get install postgresql)")
        self.bin = initdb.parent
        self.root = Path(tempfile.mkdtemp(prefix="clickback-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.db = "clickback"
        self._out = self.root / "commands.log"
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            shutil.chown(self.root, "postgres", "postgres")
        self.initialised = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/{self.db}"

    def _run(self, *args: str, check: bool = True) -> int:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # Output to a file, never a pipe: the postmaster pg_ctl starts would inherit a pipe and
        # keep it open, and reading it to EOF would hang. Own session: Ctrl-C is ours to handle.
        with self._out.open("ab") as out:
            rc = subprocess.run(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=120,
                start_new_session=True,
                check=False,
            ).returncode
        if check and rc != 0:
            log = self._out.read_text(errors="replace")[-2000:]
            raise SetupError(f"{' '.join(args)} failed with {rc}:\n{log}")
        return rc

    def start(self) -> None:
        if not self.initialised:
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "-N")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses={HOST}"
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", opts, "-w", "-t", "60", "start")
        if not self.initialised:
            self._run("createdb", "-h", str(self.root), "-p", str(self.port), "-U", "postgres", self.db)
            self.initialised = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return self.data.exists() and self._run("pg_ctl", "-D", str(self.data), "status", check=False) == 0

    def cleanup(self) -> None:
        try:
            data = str(self.data)
            if self.running() and self._run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False):
                self._run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PgSession:
    """One asyncpg connection driven step by step from synchronous code, so that a transaction
    (and the lock it holds) stays open while the script makes HTTP calls between steps."""

    def __init__(self, pg: PrivatePG) -> None:
        import asyncpg  # type: ignore[import-untyped]  # the app's driver; imported late: --help needs none

        self._loop = asyncio.new_event_loop()
        self._conn: Any = self._loop.run_until_complete(
            asyncpg.connect(host=HOST, port=pg.port, user="postgres", database=pg.db, timeout=10)
        )

    def execute(self, sql: str) -> None:
        self._loop.run_until_complete(self._conn.execute(sql))

    def fetch(self, sql: str) -> list[Any]:
        rows: list[Any] = self._loop.run_until_complete(self._conn.fetch(sql))
        return rows

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._conn.close(timeout=5))
        finally:
            self._loop.close()


# --- the ground truth ------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    ids: set[str]  # every click_id in the clicks table
    rows: int
    counted: int  # SUM(clicks + bot_clicks) FROM report_hours


COUNT_SQL = "SELECT COALESCE(SUM(clicks + bot_clicks), 0) FROM report_hours"


def tally_sqlite(path: Path) -> Tally:
    conn = sqlite3.connect(path, timeout=30)
    try:
        ids = [r[0] for r in conn.execute("SELECT click_id FROM clicks")]
        counted = int(conn.execute(COUNT_SQL).fetchone()[0])
    finally:
        conn.close()
    return Tally(set(ids), len(ids), counted)


def tally_pg(pg: PrivatePG) -> Tally:
    session = PgSession(pg)
    try:
        ids = [r[0] for r in session.fetch("SELECT click_id FROM clicks")]
        counted = int(session.fetch(COUNT_SQL)[0][0])
    finally:
        session.close()
    return Tally(set(ids), len(ids), counted)


def judge_clicks(checks: Checks, load: LoadResult, tally: Tally, *, lost_allowed: bool = False) -> int:
    """Print the ground-truth figures; returns how many redirected clicks are missing."""
    sent = set(load.ids)
    found = len(sent & tally.ids)
    missing = len(sent) - found
    figure("redirects received (302 with a click ID)", len(load.ids))
    figure("clicks found in the DB (of those)", found)
    figure("missing", missing)
    figure("rows in clicks", tally.rows, f"({tally.rows - found} taken but their 302 never arrived)")
    figure("SUM(report_hours.clicks + bot_clicks)", tally.counted)
    figure("duplicates by counter (SUM - rows)", tally.counted - tally.rows)
    checks.expect(len(sent) == len(load.ids), "no click ID was handed out twice")
    if not lost_allowed:
        checks.expect(missing == 0, "every redirected click is in the database")
    checks.expect(tally.counted == tally.rows, "report counters equal the rows: nothing counted twice")
    return missing


def print_errors(load: LoadResult) -> None:
    statuses = Counter(s.status for s in load.samples)
    figure("requests sent", len(load.samples))
    figure("responses by status", dict(sorted(statuses.items())), "(-1: no response: refused/reset/timeout)")
    if load.errors:
        figure("client errors", dict(load.errors))


def phase_table(load: LoadResult, phases: list[tuple[str, float, float]]) -> None:
    print(
        f"  {'phase':<10} {'seconds':>7} {'requests':>8} {'302':>7} {'non-302':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7}"
    )
    for name, start, end in phases:
        part = [s for s in load.samples if start <= s.at < end]
        lat = [s.latency * 1000 for s in part]
        ok = sum(1 for s in part if s.status == 302)
        print(
            f"  {name:<10} {end - start:7.1f} {len(part):8} {ok:7} {len(part) - ok:7} "
            f"{pct(lat, 0.5):7.1f} {pct(lat, 0.99):7.1f} {max(lat, default=float('nan')):7.1f}"
        )


# --- scenarios -------------------------------------------------------------------------------


@contextlib.contextmanager
def workspace(args: argparse.Namespace) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="clickback-faults-"))
    try:
        yield tmp
    finally:
        if args.keep:
            print(f"  kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def private_pg(wanted: bool) -> Iterator[PrivatePG | None]:
    if not wanted:
        yield None
        return
    pg = PrivatePG()
    try:
        pg.start()
        print(f"  private PostgreSQL on {HOST}:{pg.port} ({pg.bin.parent.name})")
        yield pg
    finally:
        pg.cleanup()


def tally(server: Server, pg: PrivatePG | None) -> Tally:
    return tally_pg(pg) if pg else tally_sqlite(server.sqlite_path)


def show_logs_on_failure(checks: Checks, *servers: Server) -> None:
    if checks.failures:
        for server in servers:
            print(f"  last lines of {server.name}'s log:\n{server.tail()}")


def scenario_sigterm(args: argparse.Namespace) -> Checks:
    checks = Checks()
    with workspace(args) as tmp, private_pg(args.pg) as pg, contextlib.ExitStack() as stack:
        server = Server(
            "server",
            tmp / "data",
            secrets.token_hex(32),
            workers=args.workers,
            database_url=pg.url if pg else "",
        )
        stack.callback(server.stop)
        server.start()
        link = create_entities(server.port)
        # Load runs on after the signal, until the server is gone (bounded by the stop timeout).
        load = Load(
            server.port,
            f"/c/{link.code}",
            connections=args.connections,
            seconds=args.seconds + STOP_TIMEOUT_S,
        )
        stack.callback(load.stop)
        load.start()
        sleep_until(load.started + args.seconds)
        signalled = time.monotonic()
        server.terminate()
        gone = server.wait_gone(STOP_TIMEOUT_S)
        exit_s = time.monotonic() - signalled
        result = load.stop()
        rc = server.proc.returncode if server.proc else None
        server.stop()
        truth = tally(server, pg)

        print(
            f"  backend {'PostgreSQL (private)' if pg else 'SQLite'}, {args.workers} workers, "
            f"{args.connections} connections at full speed"
        )
        before = result.redirected_between(load.started, signalled)
        figure("load before SIGTERM (s)", f"{signalled - load.started:.1f}")
        figure("redirect rate before SIGTERM (/s)", f"{before / (signalled - load.started):.0f}")
        figure("302s received after SIGTERM", result.redirected_between(signalled, float("inf")))
        figure("server exit after SIGTERM (s)", f"{exit_s:.2f}", f"(exit status {rc})")
        print_errors(result)
        judge_clicks(checks, result, truth)
        checks.expect(gone, f"server and workers exited within {STOP_TIMEOUT_S:.0f} s of SIGTERM")
        checks.expect(server.log_count("Traceback") == 0, "no traceback in the server log")
        show_logs_on_failure(checks, server)
    return checks


def spooled_on_disk(spool: Path) -> tuple[int, int]:
    files = list(spool.glob("*.spool"))
    lines = 0
    for f in files:
        with f.open("rb") as fh:
            lines += sum(1 for line in fh if line.endswith(b"\n"))
    return len(files), lines


def kill9_once(args: argparse.Namespace, durable: bool, checks: Checks) -> None:
    label = "durable" if durable else "plain (not durable)"
    print(f"\n  -- {label}: CLICKBACK_DURABLE_CLICKS={'true' if durable else 'false'}")
    with workspace(args) as tmp, private_pg(args.pg) as pg, contextlib.ExitStack() as stack:
        server = Server(
            "server",
            tmp / "data",
            secrets.token_hex(32),
            workers=args.workers,
            database_url=pg.url if pg else "",
            extra_env={"CLICKBACK_DURABLE_CLICKS": "true" if durable else "false"},
        )
        stack.callback(server.stop)
        server.start()
        link = create_entities(server.port)
        load = Load(server.port, f"/c/{link.code}", connections=args.connections, seconds=args.seconds + 5)
        stack.callback(load.stop)
        load.start()
        sleep_until(load.started + args.seconds)
        killed = time.monotonic()
        server.kill_group()
        result = load.stop()
        files, lines = spooled_on_disk(server.data_dir / "spool")
        restart_at = time.monotonic()
        server.start()
        drain_s = wait_for("spool_files == 0", lambda: server.runtime()["spool_files"] == 0, DRAIN_TIMEOUT_S)
        drained_at = time.monotonic()
        restarted = server.runtime()
        server.stop()
        truth = tally(server, pg)

        last_second = result.redirected_between(killed - 1.0, killed)
        figure("load before kill -9 (s)", f"{killed - load.started:.1f}")
        figure("redirect rate in the last second (/s)", last_second)
        figure("spool after kill: files / clicks", f"{files} / {lines}")
        figure(
            "restart to spool_files == 0 (s)",
            f"{drained_at - restart_at:.1f}",
            f"(after /healthz: {drain_s:.1f} s; clicks written by the restarted server: "
            f"{restarted['clicks_written']})",
        )
        print_errors(result)
        missing = judge_clicks(checks, result, truth, lost_allowed=not durable)
        if missing:
            # When the lost clicks were redirected tells which window of the writer lost them.
            ago = sorted(killed - at for cid, at in zip(result.ids, result.ids_at, strict=True)
                         if cid not in truth.ids)  # fmt: skip
            figure("missing clicks' 302s arrived before the kill (s)", f"{ago[-1]:.3f} .. {ago[0]:.3f}")
        if durable:
            checks.expect(files > 0, "durable mode left a spool behind to recover from")
        else:
            bound = last_second * FLUSH_INTERVAL_S
            figure(
                "lost (not durable)",
                missing,
                f"(rate x flush interval = {bound:.0f}; a batch being written may add more)",
            )
            figure("lost, in seconds of traffic at that rate", f"{missing / max(last_second, 1):.2f}")
        show_logs_on_failure(checks, server)


def scenario_kill9(args: argparse.Namespace) -> Checks:
    checks = Checks()
    print(
        f"  backend {'PostgreSQL (private)' if args.pg else 'SQLite'}, {args.workers} workers, "
        f"{args.connections} connections at full speed"
    )
    for durable in {"both": (True, False), "durable": (True,), "plain": (False,)}[args.mode]:
        kill9_once(args, durable, checks)
    return checks


class SqliteLock:
    """BEGIN EXCLUSIVE on the app's SQLite file from this process: its writers wait and fail."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._held = False

    def acquire(self) -> None:
        self._conn.execute("BEGIN EXCLUSIVE")
        self._held = True

    def release(self) -> None:
        if self._held:
            self._conn.execute("ROLLBACK")
            self._held = False

    def close(self) -> None:
        try:
            self.release()
        finally:
            self._conn.close()


def scenario_db_outage(args: argparse.Namespace) -> Checks:
    checks = Checks()
    with workspace(args) as tmp, private_pg(not args.sqlite_locked) as pg, contextlib.ExitStack() as stack:
        extra = {"CLICKBACK_DURABLE_CLICKS": "true" if args.durable else "false"}
        if args.buffer_max:
            extra["CLICKBACK_CLICK_BUFFER_MAX"] = str(args.buffer_max)
        server = Server(
            "server",
            tmp / "data",
            secrets.token_hex(32),
            workers=args.workers,
            database_url=pg.url if pg else "",
            extra_env=extra,
            nofile=args.nofile,
        )
        stack.callback(server.stop)
        server.start()
        link = create_entities(server.port)
        lock: SqliteLock | None = None
        if pg is None:
            lock = SqliteLock(server.sqlite_path)
            stack.callback(lock.close)

        total = args.before + args.outage + args.after
        load = Load(
            server.port, f"/c/{link.code}", connections=args.connections, seconds=total, rate=args.rate
        )
        poller = Poller(server, max_seconds=total + DRAIN_TIMEOUT_S + 30)
        stack.callback(poller.stop)
        stack.callback(load.stop)
        load.start()
        poller.start()
        sleep_until(load.started + args.before)

        down_at = time.monotonic()
        if pg is not None:
            pg.stop("fast")
        elif lock is not None:
            lock.acquire()
        down_took = time.monotonic() - down_at
        sleep_until(down_at + args.outage)
        up_at = time.monotonic()
        if pg is not None:
            pg.start()
        elif lock is not None:
            lock.release()
        up_took = time.monotonic() - up_at
        sleep_until(load.started + total)
        result = load.stop()
        load_end = time.monotonic()

        zeros = 0

        def drained() -> bool:
            # Readings come from whichever worker accepts: believe several zeros in a row.
            nonlocal zeros
            r = server.runtime()
            zeros = zeros + 1 if r["spool_files"] == 0 and r["clicks_pending"] == 0 else 0
            return zeros >= (1 if args.workers == 1 else ZERO_READINGS)

        drain_s = wait_for("the backlog to drain", drained, DRAIN_TIMEOUT_S)
        poller.stop()
        final = server.runtime()
        server.stop()
        truth = tally(server, pg)

        fault = "private PostgreSQL stopped (pg_ctl stop -m fast)" if pg else "SQLite held BEGIN EXCLUSIVE"
        print(
            f"  fault: {fault}; {args.workers} worker(s); {args.rate:.0f} clicks/s on "
            f"{args.connections} connections; durable={args.durable}; buffer max "
            f"{args.buffer_max or 'default'}"
        )
        figure(
            "fault window (s)",
            f"{up_at - down_at:.1f}",
            f"(stop took {down_took:.1f} s, start {up_took:.1f} s)",
        )
        phase_table(
            load=result,
            phases=[
                ("before", load.started, down_at),
                ("outage", down_at, up_at),
                ("after", up_at, load_end),
            ],
        )
        during = [s for s in result.samples if down_at <= s.at < up_at]
        non_302 = sum(1 for s in result.samples if s.status != 302)
        readings = [(t, r) for t, r in poller.readings if r is not None]
        in_outage = [r for t, r in readings if down_at <= t < up_at + 1]
        figure(
            "max clicks_pending seen (one worker's)", max((r["clicks_pending"] for r in in_outage), default=0)
        )
        figure("max spool_files seen", max((r["spool_files"] for _, r in readings), default=0))
        figure(
            "max open fds of the server's processes", poller.max_fds, f"(limit {args.nofile or 'inherited'})"
        )
        figure(
            "'click flush failed' entries in the log",
            server.log_count("click flush failed"),
            f"(log {server.log.stat().st_size / 1e6:.1f} MB)",
        )
        figure(
            "clicks_spilled / flush_failures at end",
            f"{final['clicks_spilled']} / {final['flush_failures']}",
            "(the answering worker's)",
        )
        figure(
            "runtime API unanswered polls",
            sum(1 for _, r in poller.readings if r is None),
            f"of {len(poller.readings)}",
        )
        figure("drained after load stopped (s)", f"{drain_s:.1f}")
        print_errors(result)
        judge_clicks(checks, result, truth)
        checks.expect(len(during) > 0, "load ran during the outage")
        checks.expect(non_302 == 0, f"every request got a 302 ({non_302} did not)")
        show_logs_on_failure(checks, server)
    return checks


def scenario_two_nodes(args: argparse.Namespace) -> Checks:
    checks = Checks()
    with workspace(args) as tmp, private_pg(True) as pg, contextlib.ExitStack() as stack:
        assert pg is not None
        secret = secrets.token_hex(32)  # the same on both nodes: B must verify A's click IDs
        a = Server("node-a", tmp / "a", secret, workers=1, database_url=pg.url)
        b = Server("node-b", tmp / "b", secret, workers=1, database_url=pg.url)
        stack.callback(b.stop)
        stack.callback(a.stop)
        a.start()  # A migrates first; B's migration is then a no-op rather than a race
        b.start()
        ent = create_entities(a.port)
        version = a.runtime()["catalog_version"]
        wait_for("node B to see the new catalog", lambda: b.runtime()["catalog_version"] >= version, 15)

        # Optional steady traffic on both nodes (--load N clicks/s each): a production-like
        # background, under which the late attribution must still happen.
        loads: list[Load] = []
        if args.load:
            span = 60 + args.hold + 2 * args.attribution_timeout  # bound: outlives every step below
            for node in (a, b):
                load = Load(node.port, f"/c/{ent.code}", connections=4, seconds=span, rate=args.load)
                stack.callback(load.stop)
                load.start()
                loads.append(load)
            time.sleep(2)

        session = PgSession(pg)
        stack.callback(session.close)
        session.execute("BEGIN")
        session.execute("LOCK TABLE clicks IN EXCLUSIVE MODE")
        cid = take_click(a.port, ent.code)
        time.sleep(FLUSH_INTERVAL_S * 3)  # A's flush has started and is now waiting on the lock
        blocked = session.fetch(
            "SELECT count(*) FROM pg_locks WHERE relation = 'clicks'::regclass AND NOT granted"
        )[0][0]
        pending_a = a.runtime()["clicks_pending"]

        query = f"/postback?click_id={cid}&event=registration&token={ent.token}"
        status, body = request(b.port, "GET", query)
        reply = json.loads(body)
        conv_id = reply.get("conversion_id")
        waiting = api(b.port, "GET", f"/api/conversions/{conv_id}") if conv_id else {}
        time.sleep(args.hold)
        still = api(b.port, "GET", f"/api/conversions/{conv_id}") if conv_id else {}

        session.execute("ROLLBACK")
        final: dict[str, Any] = {}

        def attributed_within(timeout: float) -> float | None:
            """Seconds until B shows the conversion attributed, or None (bounded poll)."""
            nonlocal final
            began = time.monotonic()
            while conv_id and time.monotonic() - began < timeout:
                final = api(b.port, "GET", f"/api/conversions/{conv_id}")
                if final.get("attributed_at") is not None:
                    return time.monotonic() - began
                time.sleep(0.1)
            return None

        settle_s = attributed_within(args.attribution_timeout)
        after_load_s: float | None = None
        results = [load.stop() for load in loads]
        if loads and settle_s is None:
            after_load_s = attributed_within(args.attribution_timeout)
        a.stop()
        b.stop()
        truth = tally_pg(pg)

        if loads:
            redirects = sum(len(r.ids) for r in results)
            figure("background load (both nodes)", f"{args.load:.0f}/s each, {redirects} redirects")
        figure("click on A (ID)", cid)
        figure("A's flush waiting on the lock (pg_locks)", blocked, f"(A's clicks_pending {pending_a})")
        figure("postback to B", f"HTTP {status} {reply}")
        figure(
            "conversion via B while locked",
            f"affiliate_id={waiting.get('affiliate_id')} attributed_at={waiting.get('attributed_at')}",
        )
        figure(f"... again after {args.hold:.0f} s more", f"affiliate_id={still.get('affiliate_id')}")
        figure(
            "lock released -> attributed (s)",
            f"{settle_s:.2f}" if settle_s is not None else f"not within {args.attribution_timeout:.0f} s",
        )
        if after_load_s is not None:
            figure("load stopped -> attributed (s)", f"{after_load_s:.2f}")
        figure(
            "conversion after",
            {k: final.get(k) for k in ("affiliate_id", "offer_id", "link_id", "status", "attributed_at")},
        )
        checks.expect(blocked >= 1, "A's click write was held by the lock")
        checks.expect(status == 200 and reply.get("result") == "accepted", "B accepted the postback")
        checks.expect(bool(waiting) and waiting.get("affiliate_id") is None, "waiting: affiliate_id null")
        checks.expect(
            bool(still) and still.get("attributed_at") is None, "still waiting while the lock is held"
        )
        checks.expect(
            settle_s is not None,
            f"attributed within {args.attribution_timeout:.0f} s of the lock's release"
            + (" (under load)" if loads else ""),
        )
        checks.expect(final.get("affiliate_id") == ent.affiliate_id, f"affiliate_id = {ent.affiliate_id}")
        checks.expect(final.get("offer_id") == ent.offer_id, f"offer_id = {ent.offer_id}")
        checks.expect(final.get("attributed_at") is not None, "attributed_at set")
        every = LoadResult(ids=[cid] + [i for r in results for i in r.ids])
        judge_clicks(checks, every, truth)
        if not loads:
            checks.expect(truth.rows == 1, f"the clicks table holds the one click taken ({truth.rows})")
        show_logs_on_failure(checks, a, b)
    return checks


# --- command line ----------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[argparse.Namespace], Checks]] = {
    "sigterm": scenario_sigterm,
    "kill9": scenario_kill9,
    "db-outage": scenario_db_outage,
    "two-nodes": scenario_two_nodes,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="scenario", required=True)

    def common(p: argparse.ArgumentParser, workers: int, connections: int) -> None:
        p.add_argument("--workers", type=int, default=workers, help=f"server workers (default {workers})")
        p.add_argument("--connections", type=int, default=connections, help="load client connections")
        p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs) at the end")

    p = sub.add_parser("sigterm", help="SIGTERM the server under load; no redirected click lost")
    common(p, 2, 16)
    p.add_argument("--pg", action="store_true", help="private PostgreSQL instead of SQLite")
    p.add_argument("--seconds", type=float, default=5, help="load before the signal")

    p = sub.add_parser("kill9", help="kill -9 under load; durable mode loses nothing")
    common(p, 2, 16)
    p.add_argument("--pg", action="store_true", help="private PostgreSQL instead of SQLite")
    p.add_argument("--seconds", type=float, default=5, help="load before the kill")
    p.add_argument("--mode", choices=["both", "durable", "plain"], default="both")

    p = sub.add_parser("db-outage", help="the database goes away under load; redirects go on")
    common(p, 1, 8)
    p.add_argument("--outage", type=float, default=60, help="seconds the database is unavailable")
    p.add_argument("--before", type=float, default=5, help="seconds of load before the outage")
    p.add_argument("--after", type=float, default=10, help="seconds of load after it")
    p.add_argument("--rate", type=float, default=300, help="clicks per second")
    p.add_argument("--sqlite-locked", action="store_true", help="SQLite held locked instead of PG stopped")
    p.add_argument("--durable", action="store_true", help="CLICKBACK_DURABLE_CLICKS=true")
    p.add_argument("--buffer-max", type=int, default=0, help="CLICKBACK_CLICK_BUFFER_MAX (>= 1000)")
    p.add_argument("--nofile", type=int, default=0, help="the server's open-files limit (prlimit)")

    p = sub.add_parser("two-nodes", help="postback on node B for a click still buffered on node A")
    p.add_argument("--hold", type=float, default=3, help="seconds the lock stays after the postback")
    p.add_argument("--load", type=float, default=0, help="background clicks/s on each node (default none)")
    p.add_argument("--attribution-timeout", type=float, default=30, help="bound on waiting for attribution")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs) at the end")
    return parser.parse_args(argv)


def commit() -> str:
    """The code under test: figures from different commits are not comparable."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not CLICKBACK.exists():
        print(f"{CLICKBACK} not found: install the app into .venv first", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"clickback fault script: {args.scenario}  ({stamp}, {os.cpu_count()} CPUs, commit {commit()})")
    started = time.monotonic()
    try:
        checks = SCENARIOS[args.scenario](args)
    except SetupError as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted):
        print("interrupted: everything started was stopped", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - started
    figure("elapsed (s)", f"{elapsed:.1f}")
    verdict = "PASS" if not checks.failures else f"FAIL ({len(checks.failures)} expectation(s))"
    print(f"{args.scenario}: {verdict}")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())
