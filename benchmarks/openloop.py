"""An open-loop HTTP load: requests sent on a fixed schedule, latency counted from each request's
scheduled send time (standard library only).

wrk, even paced by a Lua delay(), is closed loop: a slow response holds back its connection's
next request, so a server that stalls for 150 ms is asked less during the stall and the stall
hides from the percentiles ("coordinated omission"). Here request k is due at start + k/rate
whatever happened before; it goes out on the first idle keep-alive connection, and its latency
runs from when it was due to when its response has been read. A stall therefore shows in every
request due during it, as a visitor would feel it.

The client is one asyncio process: at 2,000 requests/s it costs about a fifth of a core and adds
its own scheduling delay (a millisecond or so at the tail); the same client against nginx in the
same run shows that floor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

# A request that has not been answered after this long counts as a timeout, not a latency.
TIMEOUT_S = 10.0
MAX_HEADER = 64 * 1024


@dataclass(frozen=True)
class OpenLoopResult:
    sent: int
    statuses: dict[int, int]  # status -> count; 0 for a connection error or timeout
    latencies_ms: list[float]  # of answered requests, from their scheduled time, sorted
    seconds: float

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        k = min(len(self.latencies_ms) - 1, max(0, round(p / 100 * len(self.latencies_ms)) - 1))
        return self.latencies_ms[k]

    @property
    def redirects(self) -> int:
        return sum(n for status, n in self.statuses.items() if 300 <= status < 400)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 300 <= status < 400)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER:
        raise ValueError("response header too long")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _run(
    host: str, port: int, next_request: Callable[[], bytes], rate: float, seconds: float, connections: int
) -> OpenLoopResult:
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(due: float, raw: bytes) -> None:
        conn = await idle.get()
        status = 0
        try:
            status = await asyncio.wait_for(_exchange(*conn, raw), TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            conn[1].close()
            conn = await asyncio.open_connection(host, port)
        else:
            latencies.append((time.perf_counter() - due) * 1000)
        finally:
            statuses[status] = statuses.get(status, 0) + 1
            idle.put_nowait(conn)

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    for k in range(total):
        due = start + k / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(one(due, next_request()))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=TIMEOUT_S + 1)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    return OpenLoopResult(total, statuses, sorted(latencies), elapsed)


def run(
    host: str,
    port: int,
    next_request: Callable[[], bytes],
    rate: float,
    seconds: float,
    connections: int = 64,
) -> OpenLoopResult:
    """`rate` requests/s for `seconds`, each `next_request()` (a whole HTTP/1.1 request) sent when
    due on one of `connections` keep-alive connections."""
    return asyncio.run(_run(host, port, next_request, rate, seconds, connections))
