#!/usr/bin/env python3
"""What the HTTP server itself costs per request: the same fixed 302, no click taken.

Three servers answer `GET /c/x` with the same 302, each with `--workers` processes on uvloop:

- `granian`: Granian through ASGI (clickback's server until ADR 8);
- `uvicorn`: Uvicorn's httptools protocol through ASGI (a task, a scope, two `send` awaits);
- `clickback`: web/server.py's ClickProtocol, which answers from the parser callback through the
  app's `answer_click`, as `clickback serve` answers clicks.

wrk loads each in turn on 127.0.0.1, the order rotating run by run, and the server's CPU (its
process tree, from /proc) is divided by the requests served. Standard library only, like
click_vs_nginx.py, whose helpers it reuses; the servers run from .venv (Granian comes with the
dev extra, for this comparison only).

Usage: python3 benchmarks/http_servers.py [--runs 3] [--duration 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV_BIN = HERE.parent / ".venv" / "bin"
LOCATION = b"https://offer.example.com/landing?cid=123"
_HEADERS = [(b"location", LOCATION), (b"cache-control", b"no-store"), (b"content-length", b"0")]
KINDS = ("granian", "uvicorn", "clickback")


class Bare302:
    """An ASGI app answering every request with the fixed 302, and offering the same answer to
    ClickProtocol as `answer_click`."""

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 302, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b""})

    def answer_click(
        self, method: str, path: str, query: bytes, headers: Iterable[tuple[bytes, bytes]], peer: str
    ) -> Any:
        from clickback.web.tracking import ClickReply

        return ClickReply(302, _HEADERS, b"")


def bare() -> Bare302:
    return Bare302()


def command(kind: str, port: int, workers: int, host: str) -> tuple[str, ...]:
    if kind == "granian":
        return (
            str(VENV_BIN / "granian"),
            *("--interface", "asgi", "--workers", str(workers), "--host", host, "--port", str(port)),
            *("--working-dir", str(HERE), "--factory", "http_servers:bare"),
        )
    http = "httptools" if kind == "uvicorn" else "clickback.web.server:ClickProtocol"
    return (
        str(VENV_BIN / "uvicorn"),
        *("--workers", str(workers), "--host", host, "--port", str(port), "--app-dir", str(HERE)),
        *("--http", http, "--loop", "uvloop", "--no-access-log", "--no-proxy-headers"),
        *("--factory", "http_servers:bare"),
    )


def measure(kind: str, wrk: str, args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    """(requests/s, server CPU µs/request) of one wrk run against a fresh server."""
    import click_vs_nginx as bench

    port = bench.free_port()
    log = tmp / f"{kind}.log"
    with bench.running(command(kind, port, args.workers, bench.HOST), log) as proc:
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
    parser.add_argument("--runs", type=int, default=3, help="runs of each server (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    if not (1 <= args.runs <= 20 and 1 <= args.duration <= 600 and 1 <= args.workers <= 16):
        parser.error("at most --runs 20, --duration 600, --workers 16 (each at least 1)")
    args.rate, args.threads, args.connections, args.lua = 0.0, 2, 64, None
    wrk = bench.find_tool("wrk")
    if wrk is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    figures: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="clickback-servers-") as tmp:
        try:
            for n in range(args.runs):
                for kind in KINDS[n % 3 :] + KINDS[: n % 3]:
                    rps, us = measure(kind, wrk, args, Path(tmp))
                    figures[kind].append((rps, us))
                    line = f"run {n + 1}/{args.runs} {kind}: {rps:,.0f} req/s, {us:.1f} µs CPU/req"
                    print(line, flush=True)
        except bench.BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    for kind, rows in figures.items():
        print(
            f"{kind:>9}: median {statistics.median(r for r, _ in rows):,.0f} req/s, "
            f"{statistics.median(u for _, u in rows):.1f} µs server CPU/request"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
