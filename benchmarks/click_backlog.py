#!/usr/bin/env python3
"""Does the click writer keep up? Clicks served against clicks written, under full load, on SQLite.

`clickback serve --workers N` on a fresh SQLite file (every worker's writer shares it and queues on
its write lock), loaded by wrk as fast as it answers (or at `--rate R`, open loop, by
click_vs_nginx.py's client, benchmarks/openloop.py). While the load runs and after, every SAMPLE_S
the script counts the rows in `clicks` (a read-only connection: WAL readers do not wait for
writers) and reads each worker's resident memory from /proc. It prints, per run:

- served/s: the redirects wrk received, per second of load;
- written/s: rows added to `clicks` during the load, per second: the rate the writers sustained
  while the click path used the same CPUs; written/served is the figure to compare across commits
  (both are measured in the same run);
- the backlog when the load stopped (redirects not yet in the table), also in seconds of traffic:
  a writer that keeps up leaves about one flush interval (CLICKBACK_CLICK_FLUSH_SECONDS, 0.5 s)
  or less, one that falls behind more the longer the load; the share stored 2 s later, and how
  long the rest took;
- each worker's largest RSS during the run (MB), and at the start;
- what /api/runtime said (whichever worker answered each sample): click_write_capacity, and the
  clicks moved to the spool (past CLICKBACK_CLICK_BUFFER_MAX, which --buffer-max sets).

Standard library only, like click_vs_nginx.py, whose helpers it reuses (wrk, the server, the
link). The server is stopped with SIGTERM at the end and the final count checked: a click missing
then is a lost click, reported as such.

Usage: python3 benchmarks/click_backlog.py [--runs 3] [--duration 10] [--workers 2] [--rate R]
           [--buffer-max N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click_vs_nginx as cvn

SAMPLE_S = 0.1
CATCH_UP_TIMEOUT_S = 120.0
AFTER_S = 2.0  # the yardstick: how much was stored this long after the load stopped


@dataclass
class Samples:
    """(monotonic time, rows in clicks) and each worker's RSS peak, taken by a thread."""

    db: Path
    root: int
    port: int
    counts: list[tuple[float, int]] = field(default_factory=list)
    peak_rss: dict[int, int] = field(default_factory=dict)
    # /api/runtime of whichever worker answered, by process: the last capacity seen, the most
    # clicks spilled to the spool
    capacity: dict[int, int] = field(default_factory=dict)
    spilled: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)) as conn:
            while not self.stop.is_set():
                with contextlib.suppress(OSError, ValueError, KeyError, http.client.HTTPException):
                    status, _, raw = cvn.request(self.port, "GET", "/api/runtime", timeout=1.0)
                    if status == 200:
                        state = json.loads(raw)
                        pid = int(state["process_id"])
                        if state.get("click_write_capacity"):  # not in commits before it
                            self.capacity[pid] = int(state["click_write_capacity"])
                        self.spilled[pid] = max(self.spilled.get(pid, 0), int(state["clicks_spilled"]))
                with contextlib.suppress(sqlite3.OperationalError):
                    count = conn.execute("SELECT count(*) FROM clicks").fetchone()[0]
                    self.counts.append((time.monotonic(), count))
                for pid in workers(self.root):
                    rss = rss_kb(pid)
                    if rss:
                        self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), rss)
                self.stop.wait(SAMPLE_S)

    def at(self, moment: float) -> int:
        """Rows counted at the last sample taken at or before `moment`."""
        before = [count for t, count in self.counts if t <= moment]
        return before[-1] if before else 0


def workers(root: int) -> list[int]:
    """Uvicorn's worker processes: the children of the server's main process started by
    multiprocessing's spawn (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = cvn.read_stat(int(entry.name))
            with contextlib.suppress(OSError):
                if stat is not None and stat[0] == root and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass(frozen=True)
class Run:
    served_per_s: float
    written_per_s: float
    backlog_at_stop: int
    stored_after: float  # share of the redirects in the table AFTER_S after the load stopped
    catch_up_s: float | None  # seconds after the load until every redirect was stored
    start_rss_mb: list[float]
    peak_rss_mb: list[float]
    final_missing: int
    cpu_ms_per_click: float
    capacity: list[int]  # click_write_capacity per worker, as last seen
    spilled: int


def one_run(wrk: str, args: argparse.Namespace, tmp: Path) -> Run:
    data = tmp / "clickback"
    data.mkdir(parents=True)
    port = cvn.free_port()
    cmd = (
        str(cvn.CLICKBACK),
        "serve",
        "--host",
        cvn.HOST,
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    )
    log = data / "server.log"
    store = cvn.Store(data, None, 0)  # SQLite: data / "bench.db"
    db = store.file
    env = cvn.clickback_env(data, args, store.url)
    if args.buffer_max:
        env["CLICKBACK_CLICK_BUFFER_MAX"] = str(args.buffer_max)
    with cvn.running(cmd, log, env) as proc:
        cvn.wait_ready(proc, port, "/healthz", log)
        path = f"/c/{cvn.create_link(port)}?sub1=bench&source=wrk"
        cvn.wait_link_live(port, path)  # one click by hand
        start_rss = [rss_kb(pid) / 1024 for pid in sorted(workers(proc.pid))]
        samples = Samples(db, proc.pid, port)
        sampler = threading.Thread(target=samples.run, daemon=True)
        sampler.start()
        try:
            time.sleep(3 * SAMPLE_S)
            cpu_before = cvn.tree_cpu_seconds(proc.pid)
            began = time.monotonic()
            result = cvn.run_load(wrk, port, cvn.Load(path), args, data)
            ended = time.monotonic()
            expected = result.requests - result.non_3xx + 1
            deadline = ended + CATCH_UP_TIMEOUT_S
            caught_up = None
            while time.monotonic() < deadline and proc.poll() is None:
                if samples.counts and samples.counts[-1][1] >= expected:
                    caught_up = samples.counts[-1][0]
                    break
                time.sleep(SAMPLE_S)
            time.sleep(2 * SAMPLE_S)
            cpu = cvn.tree_cpu_seconds(proc.pid) - cpu_before
        finally:
            samples.stop.set()
            sampler.join(10)
    stored_final = store.count_clicks()
    load_s = ended - began
    written = samples.at(ended) - samples.at(began)
    return Run(
        served_per_s=(expected - 1) / load_s,
        written_per_s=written / load_s,
        backlog_at_stop=expected - samples.at(ended),
        stored_after=samples.at(ended + AFTER_S) / expected,
        catch_up_s=None if caught_up is None else caught_up - ended,
        start_rss_mb=start_rss,
        peak_rss_mb=[kb / 1024 for _, kb in sorted(samples.peak_rss.items())],
        final_missing=max(0, expected - stored_final),
        cpu_ms_per_click=cpu * 1000 / max(expected, 1),
        capacity=[samples.capacity[pid] for pid in sorted(samples.capacity)],
        spilled=sum(samples.spilled.values()),
    )


def line(n: int, args: argparse.Namespace, run: Run, state: str) -> str:
    catch = f"{run.catch_up_s:.1f} s" if run.catch_up_s is not None else f"> {CATCH_UP_TIMEOUT_S:.0f} s"
    rss = ", ".join(f"{a:.0f}→{b:.0f}" for a, b in zip(run.start_rss_mb, run.peak_rss_mb, strict=False))
    return (
        f"run {n}/{args.runs} ({state}): served {run.served_per_s:,.0f}/s, written during load "
        f"{run.written_per_s:,.0f}/s (written/served {run.written_per_s / run.served_per_s:.2f}); "
        f"backlog at stop {run.backlog_at_stop:,} ({run.backlog_at_stop / run.served_per_s:.2f} s of "
        f"traffic), stored {AFTER_S:.0f} s later {run.stored_after:.0%}, "
        f"all stored after {catch}; worker RSS MB start→peak {rss}; "
        f"CPU ms/click {run.cpu_ms_per_click:.4f}; /api/runtime click_write_capacity "
        f"{', '.join(f'{c:,}' for c in run.capacity) or 'n/a'}, clicks spilled {run.spilled:,}; "
        f"missing after SIGTERM {run.final_missing}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="fixed total rate (requests/s), sent open loop"
    )
    parser.add_argument("--buffer-max", type=int, default=0, help="CLICKBACK_CLICK_BUFFER_MAX (>= 1000)")
    args = parser.parse_args()
    if not (1 <= args.duration <= 600 and 1 <= args.runs <= 20 and 1 <= args.workers <= 16):
        parser.error("--duration 1..600, --runs 1..20, --workers 1..16")
    if args.rate and not 1 <= args.rate <= cvn.MAX_RATE:
        parser.error(f"--rate must be between 1 and {cvn.MAX_RATE:,}")
    args.durable, args.traffic = False, "simple"  # what cvn.clickback_env and cvn.run_load read
    _, wrk = cvn.ensure_tools(install=False)
    signal.signal(signal.SIGTERM, cvn.interrupt)  # stop the server through `finally`
    runs = []
    with tempfile.TemporaryDirectory(prefix="clickback-backlog-") as tmp:
        try:
            for n in range(1, args.runs + 1):
                state = f"load {os.getloadavg()[0]:.2f}"
                runs.append(one_run(wrk, args, Path(tmp) / f"run{n}"))
                print(line(n, args, runs[-1], state), flush=True)
        except cvn.BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; server stopped", file=sys.stderr)
            return 130
    ratios = [r.written_per_s / r.served_per_s for r in runs]
    peak = max(max(r.peak_rss_mb, default=0) for r in runs)
    print(
        f"medians of {len(runs)}: served {statistics.median(r.served_per_s for r in runs):,.0f}/s, written "
        f"{statistics.median(r.written_per_s for r in runs):,.0f}/s, written/served "
        f"{statistics.median(ratios):.2f} (runs {', '.join(f'{x:.2f}' for x in ratios)}); "
        f"stored {AFTER_S:.0f} s after the load {statistics.median(r.stored_after for r in runs):.0%}; "
        f"largest worker RSS {peak:.0f} MB; missing after SIGTERM {sum(r.final_missing for r in runs)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
