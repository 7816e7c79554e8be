"""The click buffer: redirects append here and never wait; a background task writes batches.

A click stays findable (by the postback path) from the moment it is taken: here until its batch
is committed, in the database after. It leaves the buffer only once the commit succeeded.
"""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import islice

from clickback.core.model import Click
from clickback.core.reasons import Rejected
from clickback.service.catalog_cache import CatalogCache
from clickback.store.clicks import write_batch
from clickback.store.conversions import attribute_waiting
from clickback.store.db import Database
from clickback.store.tables import hour_of

log = logging.getLogger(__name__)


class ClickWriter:
    def __init__(
        self,
        db: Database,
        catalog: CatalogCache,
        clock: Callable[[], datetime],
        batch_size: int,
        flush_seconds: float,
        max_pending: int,
        in_flight_window: timedelta,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._clock = clock
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._max_pending = max_pending
        self._in_flight_window = in_flight_window
        self._pending: dict[str, Click] = {}
        self._refusals: Counter[tuple[int, str, str]] = Counter()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.written = 0
        self.dropped = 0

    def add(self, click: Click) -> None:
        if len(self._pending) >= self._max_pending:
            # The database has been unreachable for a long time; counted, and logged once per 1000.
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.error("click buffer full (%d): %d clicks dropped", self._max_pending, self.dropped)
            return
        self._pending[click.click_id] = click
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    def refuse(self, rejected: Rejected, at: datetime) -> None:
        self._refusals[(hour_of(at), rejected.reason.code, rejected.detail)] += 1

    def get(self, click_id: str) -> Click | None:
        return self._pending.get(click_id)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write everything pending now; returns how many clicks were written."""
        async with self._lock:
            written = 0
            while self._pending or self._refusals:
                batch = list(islice(self._pending.values(), self._batch_size))
                refusals, self._refusals = self._refusals, Counter()
                try:
                    await write_batch(self._db, batch, refusals)
                except BaseException:
                    self._refusals.update(refusals)
                    raise
                for click in batch:
                    del self._pending[click.click_id]
                written += len(batch)
            self.written += written
            now = self._clock()
            await attribute_waiting(self._db, self._catalog.current, now, now - self._in_flight_window)
            return written

    async def run(self) -> None:
        """Flush on size, on interval, forever; on error keep the clicks and try again later."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("click flush failed; %d clicks kept for the next try", self.pending)
                await asyncio.sleep(self._flush_seconds)
