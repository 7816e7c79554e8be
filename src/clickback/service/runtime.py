"""Everything a server process holds, started and stopped in one place."""

import asyncio
import contextlib
import logging
import sys
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from clickback.config import Settings
from clickback.core.clickids import ClickIdCodec
from clickback.enrich import Enricher
from clickback.service.catalog_cache import CatalogCache
from clickback.service.clickwriter import ClickWriter
from clickback.service.postbacks import Postbacks
from clickback.service.spool import Spool
from clickback.service.tracker import Tracker
from clickback.store import ledger
from clickback.store.db import Database, connect

log = logging.getLogger(__name__)
SETTLE_SECONDS = 60
GIL_SWITCH_SECONDS = 0.0005


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db: Database = connect(settings.url)
        if self.db.executor is not None:
            # SQLite writes postbacks from a thread of its own (Database.run_write). Each of its
            # statements gives up the GIL and must win it back from the event loop, which holds
            # it up to the switch interval: at the default 5 ms a group of postbacks waited 20-50
            # ms and throughput fell to a third (measured: 720 against 2,600 postbacks/s).
            sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self.catalog = CatalogCache(self.db, settings.catalog_refresh_seconds)
        self.writer = ClickWriter(
            self.db,
            utcnow,
            batch_size=settings.click_batch_size,
            flush_seconds=settings.click_flush_seconds,
            max_pending=settings.click_buffer_max,
            unique_window_ms=settings.unique_window_ms,
            spool=Spool(settings.spool_dir),
            durable=settings.durable_clicks,
        )
        self.enricher = Enricher(settings.geoip_mmdb)
        codec = ClickIdCodec(settings.click_id_key)
        self.tracker = Tracker(
            self.catalog, self.writer, codec, utcnow, settings.privacy, self.enricher.traits
        )
        self.postbacks = Postbacks(
            self.db, self.catalog, self.writer, codec, settings.in_flight_window, settings.max_event_age
        )
        self.writer.after_flush = self.postbacks.attribute_waiting
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.catalog.reload()
        self._tasks = [
            asyncio.create_task(self.writer.run(), name="click-writer"),
            asyncio.create_task(self.catalog.watch(), name="catalog-watch"),
            asyncio.create_task(self._settle(), name="commission-settle"),
        ]

    async def _settle(self) -> None:
        """Approve commissions whose hold has passed; every process may, the UPDATE is idempotent."""
        while True:
            try:
                await ledger.settle(self.db, utcnow())
            except (SQLAlchemyError, OSError):
                log.warning("settling commissions failed; retrying in a minute", exc_info=True)
            await asyncio.sleep(SETTLE_SECONDS)

    async def stop(self) -> None:
        writer_task, *others = self._tasks
        for task in others:
            task.cancel()
        for task in others:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Postbacks already received are answered (their groups committed) before anything closes.
        await self.postbacks.close()
        # The writer is told to stop rather than cancelled, so no batch is abandoned mid-write.
        self.writer.stop()
        await writer_task
        # Every click already redirected is written (or spooled) before the process exits.
        try:
            await self.writer.close()
        finally:
            await self.db.close()
