#!/usr/bin/env python3
"""Outbound postbacks: deliveries per second to a local receiver while `serve` takes clicks, and
the time from a postback's 2xx to the affiliate's tracker receiving its outbound postback.

Each run starts `clickback serve` on a fresh database (a SQLite file, or a new PostgreSQL
database with --pg) with CLICKBACK_OUTBOUND_ALLOW naming loopback, and a receiver in a process
of its own (asyncio, keep-alive, answers 200 at once, notes when each request arrived). An
advertiser, a plain offer, an affiliate with a link, and an outbound template to the receiver:

1. **throughput**: the receiver's destination is paused (POST /api/outbound/destinations/…/pause),
   --backlog postbacks are accepted (each queues one delivery), then wrk takes clicks at --click-rate
   and the destination is resumed: deliveries/s = backlog / time until the receiver has them all.
2. **latency**: postbacks at --rate per second for --duration seconds (open loop: each sent at its
   scheduled time); for each, the time from its 2xx to its outbound postback's arrival (both
   clocks are this machine's CLOCK_MONOTONIC), p50/p99/max.

Standard library only; needs wrk (Debian) and, for --pg, psql and a PostgreSQL server that trusts
local connections.

Usage: python3 benchmarks/outbound.py [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
           [--backlog 5000] [--click-rate 1000] [--rate 100] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from click_vs_nginx import (
    API_KEY,
    CLICKBACK,
    HOST,
    BenchError,
    api_post,
    find_tool,
    free_port,
    request,
    running,
    wait_ready,
)
from postbacks import Connection, Database, percentile, take_clicks

SENDERS = 16
WAIT_S = 120.0
# wrk's script for clicks at about a rate, the background traffic of the throughput phase.
RATE_LUA = """\
-- written by benchmarks/outbound.py: about {rate:g} requests/s over {connections} connections
local interval_ms = {interval_ms!r}
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("seed", threads)
end

function init(args)
    math.randomseed(os.time() * 1000 + seed)
end

function delay()
    return math.floor(interval_ms * (0.5 + math.random()) + math.random())
end
"""


# --- the receiver: an affiliate's tracker that answers at once -------------------------------------


def receiver_main(port: int, pipe: Pipe) -> None:
    """Serve until told; then send back {txn_id: arrival} through the pipe."""
    arrivals: dict[str, float] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                now = time.monotonic()
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if length:
                    await reader.readexactly(length)
                target = lines[0].split()[1]
                txn = parse_qs(urlsplit(target).query).get("t", [""])[0]
                arrivals.setdefault(txn, now)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        except asyncio.CancelledError:
            # The run is over and asyncio.run cancels the connections still open: ending quietly
            # keeps Python 3.11's streams from printing each one's traceback.
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, HOST, port, backlog=1024)
        loop = asyncio.get_running_loop()
        while True:
            ask = await loop.run_in_executor(None, pipe.recv)
            if ask == "count":
                pipe.send(len(arrivals))
            else:
                pipe.send(arrivals)
                break
        server.close()

    asyncio.run(main())


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self._pipe, theirs = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=receiver_main, args=(self.port, theirs), daemon=True)
        self._process.start()

    def count(self) -> int:
        self._pipe.send("count")
        return int(self._pipe.recv())

    def arrivals(self) -> dict[str, float]:
        self._pipe.send("all")
        found: dict[str, float] = self._pipe.recv()
        self._process.join(10)
        return found


# --- the phases --------------------------------------------------------------------------------------


async def send_postbacks(port: int, paths: Sequence[str]) -> None:
    """Each path once, SENDERS at a time, as fast as answered; every reply must be 200."""
    todo = iter(paths)

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            for path in todo:
                status, _ = await conn.get(path)
                if status != 200:
                    raise BenchError(f"GET {path} gave {status}")
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(SENDERS)))


async def open_loop(port: int, paths: Sequence[tuple[str, str]], rate: float) -> dict[str, float]:
    """Send each (txn, path) at its scheduled time; when each 2xx came back, by txn."""
    answered: dict[str, float] = {}
    idle: list[Connection] = []
    start = time.monotonic() + 0.2

    async def one(n: int, txn: str, path: str) -> None:
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        conn = idle.pop() if idle else await Connection.open(port)
        try:
            status, _ = await conn.get(path)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed a connection left idle past its keep-alive timeout before it read
            # the request: send it again on a new one (a repeat would be a duplicate anyway).
            conn.close()
            conn = await Connection.open(port)
            status, _ = await conn.get(path)
        if status != 200:
            raise BenchError(f"GET {path} gave {status}")
        answered[txn] = time.monotonic()
        idle.append(conn)

    await asyncio.gather(*(one(n, txn, path) for n, (txn, path) in enumerate(paths)))
    for conn in idle:
        conn.close()
    return answered


def wait_for(what: str, condition: object, seconds: float = WAIT_S) -> float:
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - began > seconds:
            raise BenchError(f"not within {seconds:g} s: {what}")
        time.sleep(0.01)
    return time.monotonic() - began


def run(args: argparse.Namespace, wrk: str, tmp: Path) -> dict[str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
    env |= {
        "CLICKBACK_DATA_DIR": str(tmp / "data"),
        "CLICKBACK_API_KEY": API_KEY,
        "CLICKBACK_OUTBOUND_ALLOW": "127.0.0.1/32",
        "CLICKBACK_PUBLIC_URL": f"http://{HOST}:{port}",
    }
    if args.per_destination:
        env["CLICKBACK_OUTBOUND_PER_DESTINATION"] = str(args.per_destination)
    db = Database(args.pg or None, tmp)
    db.create()
    env["CLICKBACK_DATABASE_URL"] = db.url
    receiver = Receiver()
    log = tmp / "serve.log"
    cmd = [str(CLICKBACK), "serve", "--host", HOST, "--port", str(port), "--workers", str(args.workers)]
    with running(cmd, log, env) as proc:
        wait_ready(proc, port, "/healthz", log)
        adv = api_post(port, "/api/advertisers", {"name": "Bench Advertiser"})
        offer = api_post(
            port,
            "/api/offers",
            {
                "advertiser_id": adv["id"],
                "name": "Plain",
                "url_template": "https://offer.example.com/?cid={click_id}",
                "currency": "EUR",
            },
        )
        aff = api_post(port, "/api/affiliates", {"name": "Bench Affiliate"})
        code = str(api_post(port, "/api/links", {"affiliate_id": aff["id"], "offer_id": offer["id"]})["code"])
        url = f"http://{HOST}:{receiver.port}/pb?t={{txn_id}}&s={{subid}}&p={{payout}}&id={{delivery_id}}"
        api_post(port, "/api/outbound/templates", {"affiliate_id": aff["id"], "url": url})
        time.sleep(1.5)  # every worker's catalog holds the template (refreshed each second)
        destination = f"{HOST}:{receiver.port}"
        token = adv["token"]

        # 1. throughput: a backlog, then resumed while wrk takes clicks
        api_post(port, f"/api/outbound/destinations/{destination}/pause", {"reason": "benchmark backlog"})
        clicks = asyncio.run(take_clicks(port, [f"/c/{code}?sub1=k{n}" for n in range(args.backlog)]))
        paths = [f"/postback?click_id={c}&event=sale&txn_id=b{n}&token={token}" for n, c in enumerate(clicks)]
        asyncio.run(send_postbacks(port, paths))
        lua = tmp / "rate.lua"
        interval_ms = 1000.0 * 4 / args.click_rate
        lua.write_text(RATE_LUA.format(rate=args.click_rate, connections=4, interval_ms=interval_ms))
        wrk_cmd = [wrk, "-t2", "-c4", f"-d{WAIT_S:g}s", "-s", str(lua), "-H", "User-Agent: Mozilla/5.0 bench"]
        clicking = subprocess.Popen([*wrk_cmd, f"http://{HOST}:{port}/c/{code}"], stdout=subprocess.PIPE)
        try:
            time.sleep(1.0)  # clicks flowing before the backlog goes
            status, _, body = request(port, "POST", f"/api/outbound/destinations/{destination}/resume")
            if status != 200:
                raise BenchError(f"resume gave {status}: {body[:200]!r}")
            began = time.monotonic()
            wait_for("the backlog delivered", lambda: receiver.count() >= args.backlog)
            elapsed = time.monotonic() - began
        finally:
            clicking.terminate()
            clicking.wait(10)
        throughput = args.backlog / elapsed

        # 2. latency at a fixed rate
        count = int(args.rate * args.duration)
        clicks = asyncio.run(take_clicks(port, [f"/c/{code}?sub1=l{n}" for n in range(count)]))
        sends = [
            (f"l{n}", f"/postback?click_id={c}&event=sale&txn_id=l{n}&token={token}")
            for n, c in enumerate(clicks)
        ]
        answered = asyncio.run(open_loop(port, sends, args.rate))
        wait_for("every latency delivery", lambda: receiver.count() >= args.backlog + count)
        arrivals = receiver.arrivals()
    waits = [(arrivals[txn] - answered[txn]) * 1000 for txn in answered]
    return {
        "deliveries_per_s": throughput,
        "p50_ms": percentile(waits, 0.50),
        "p99_ms": percentile(waits, 0.99),
        "max_ms": max(waits),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", default="", help="a PostgreSQL URL; a database of its own is made there")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--click-rate", type=float, default=1000.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument(
        "--per-destination",
        type=int,
        default=0,
        help="CLICKBACK_OUTBOUND_PER_DESTINATION (default: the server's)",
    )
    args = parser.parse_args(argv)
    wrk = find_tool("wrk")
    if wrk is None:
        print("needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="clickback-outbound-") as tmp:
        try:
            figures = run(args, wrk, Path(tmp))
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    backend = "PostgreSQL" if args.pg else "SQLite"
    print(
        f"{backend}, {args.workers} worker(s): {figures['deliveries_per_s']:.0f} deliveries/s "
        f"({args.backlog} queued, sent while wrk took {args.click_rate:g} clicks/s); "
        f"postback 2xx to received at {args.rate:g}/s: p50 {figures['p50_ms']:.0f} ms, "
        f"p99 {figures['p99_ms']:.0f} ms, max {figures['max_ms']:.0f} ms"
    )
    print(json.dumps({k: round(v, 1) for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
