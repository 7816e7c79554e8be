#!/usr/bin/env python3
"""Granian's per-request cost through ASGI vs RSGI: the same fixed 302, no application code.

Both servers run the apps defined below (`bare_asgi`, `bare_rsgi`) under .venv/bin/granian with
the same workers, loop and defaults; wrk loads each in turn on 127.0.0.1, the order alternating
run by run, and the server's CPU (the process tree, from /proc) is divided by the requests served.
It answers one question before any RSGI work on clickback: how much server CPU per request would
moving from ASGI to RSGI save at best? Standard library only, like click_vs_nginx.py, whose
helpers it reuses.

Usage: python3 benchmarks/asgi_vs_rsgi.py [--runs 3] [--duration 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GRANIAN = HERE.parent / ".venv" / "bin" / "granian"
LOCATION = "https://offer.example.com/landing?cid=123"

_ASGI_HEADERS = [
    (b"location", LOCATION.encode()),
    (b"cache-control", b"no-store"),
    (b"content-length", b"0"),
]
_RSGI_HEADERS = [("location", LOCATION), ("cache-control", "no-store")]


async def bare_asgi(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 302, "headers": _ASGI_HEADERS})
    await send({"type": "http.response.body", "body": b""})


class BareRSGI:
    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        protocol.response_empty(302, _RSGI_HEADERS)


bare_rsgi = BareRSGI()


def measure(kind: str, wrk: str, args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    """(requests/s, server CPU µs/request) of one wrk run against a fresh server."""
    import click_vs_nginx as bench

    port = bench.free_port()
    cmd = (
        str(GRANIAN),
        "--interface",
        kind,
        "--workers",
        str(args.workers),
        "--host",
        bench.HOST,
        "--port",
        str(port),
        "--working-dir",
        str(HERE),
        f"asgi_vs_rsgi:bare_{kind}",
    )
    log = tmp / f"{kind}.log"
    with bench.running(cmd, log) as proc:
        deadline = time.monotonic() + bench.START_TIMEOUT_S
        while True:
            try:
                if bench.request(port, "GET", "/c/x", timeout=1.0)[0] == 302:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise bench.BenchError(f"{kind} server did not answer:\n{bench.tail(log)}")
            time.sleep(0.1)
        time.sleep(1.0)  # every worker up
        before = bench.tree_cpu_seconds(proc.pid)
        result = bench.run_wrk(wrk, f"http://{bench.HOST}:{port}/c/x?sub1=bench&source=wrk", args)
        cpu = bench.tree_cpu_seconds(proc.pid) - before
    if result.non_3xx or result.socket_errors:
        raise bench.BenchError(f"{kind}: {result.non_3xx} non-3xx, {result.socket_errors} socket errors")
    return result.rps, cpu * 1e6 / max(result.requests, 1)


def main(argv: Sequence[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    import click_vs_nginx as bench

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each interface (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="Granian workers (default 2)")
    args = parser.parse_args(argv)
    if not (1 <= args.runs <= 20 and 1 <= args.duration <= 600 and 1 <= args.workers <= 16):
        parser.error("at most --runs 20, --duration 600, --workers 16 (each at least 1)")
    args.rate, args.threads, args.connections, args.lua = 0.0, 2, 64, None
    wrk = bench.find_tool("wrk")
    if wrk is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    figures: dict[str, list[tuple[float, float]]] = {"asgi": [], "rsgi": []}
    with tempfile.TemporaryDirectory(prefix="clickback-rsgi-") as tmp:
        try:
            for n in range(args.runs):
                for kind in ("asgi", "rsgi") if n % 2 == 0 else ("rsgi", "asgi"):
                    rps, us = measure(kind, wrk, args, Path(tmp))
                    figures[kind].append((rps, us))
                    print(
                        f"run {n + 1}/{args.runs} {kind}: {rps:,.0f} req/s, {us:.1f} µs CPU/req", flush=True
                    )
        except bench.BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    for kind, rows in figures.items():
        print(
            f"{kind}: median {statistics.median(r for r, _ in rows):,.0f} req/s, "
            f"{statistics.median(u for _, u in rows):.1f} µs server CPU/request"
        )
    ratios = [r[1] / a[1] for a, r in zip(figures["asgi"], figures["rsgi"], strict=True)]
    print(
        "rsgi/asgi CPU per request, run by run: "
        + " ".join(f"{x:.2f}" for x in ratios)
        + f" (median {statistics.median(ratios):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
