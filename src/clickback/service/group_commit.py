"""Group commit: what concurrent requests ask to write is applied together, in one transaction.

A commit costs a disk flush (SQLite `synchronous=FULL`, PostgreSQL's WAL) and each statement a
round trip; one transaction per postback caps a server at a few hundred postbacks a second. Here
one task per process applies whatever arrived while the previous group was being written, so an
idle server still answers one postback at once and a busy one amortises the commit over many.
Every caller is answered only after its group committed: a reply still means "recorded".
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)
# Groups following each other this closely mean a busy server: the next one lingers.
BUSY_SECONDS = 0.005
LINGER_SECONDS = 0.001


class GroupCommit(Generic[T, R]):
    def __init__(self, apply: Callable[[Sequence[T]], Awaitable[Sequence[R]]], max_size: int) -> None:
        """`apply` writes a group in one transaction and returns one result per item, in order."""
        self._apply = apply
        self._max_size = max_size
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.groups = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        if self._closing:
            raise RuntimeError("group commit closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="group-commit")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        busy_until = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                if loop.time() < busy_until and len(self._queue) < self._max_size and not self._closing:
                    # Under load, a moment's wait lets the requests already on their way join:
                    # fewer, larger groups, each a commit and a few round trips.
                    await asyncio.sleep(LINGER_SECONDS)
                group, self._queue = self._queue[: self._max_size], self._queue[self._max_size :]
                await self._apply_group(group)
                busy_until = loop.time() + BUSY_SECONDS
            if self._closing:
                return

    async def _apply_group(self, group: list[tuple[T, "asyncio.Future[R]"]]) -> None:
        try:
            results = await self._apply([item for item, _ in group])
        except Exception as exc:
            if len(group) > 1:
                # One postback the database refuses (or a deadlock with another process) must not
                # fail the others: each is tried again in a transaction of its own.
                log.warning("a group of %d failed (%s); applying each alone", len(group), exc)
                for one in group:
                    await self._apply_group([one])
                return
            _, future = group[0]
            if not future.done():
                future.set_exception(exc)
            return
        self.groups += 1
        self.items += len(group)
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        """Apply what is queued, then stop."""
        self._closing = True
        if self._task is not None:
            self._wake.set()
            await self._task
