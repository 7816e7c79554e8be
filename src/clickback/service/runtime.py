"""Everything a server process holds, started and stopped in one place."""

import asyncio
import contextlib
import logging
import os
import sys
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from clickback.config import Settings
from clickback.core import linkcheck
from clickback.core.clickids import ClickIdCodec
from clickback.core.intake import SIGNATURE_WINDOW
from clickback.delivery.dispatcher import Dispatcher, Policy
from clickback.delivery.sender import Sender
from clickback.enrich import Enricher
from clickback.service.accounts import Accounts
from clickback.service.catalog_cache import CatalogCache
from clickback.service.clickwriter import ClickWriter
from clickback.service.clock import utcnow
from clickback.service.linkchecks import LinkChecks
from clickback.service.postbacks import Postbacks
from clickback.service.spool import Spool
from clickback.service.tester import Tester
from clickback.service.tracker import Tracker
from clickback.store import ledger
from clickback.store.db import Database, connect, database_problem, ping
from clickback.store.recording import forget_signatures
from clickback.store.weeks import sum_weeks

log = logging.getLogger(__name__)
SETTLE_SECONDS = 60
# While the database is unreachable at start: how often to try again, and to say so again.
RECONNECT_SECONDS = 2.0
RECONNECT_LOG_SECONDS = 60.0
READY_CHECK_SECONDS = 2.0
GIL_SWITCH_SECONDS = 0.0005


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db: Database = connect(settings.url, settings.report_zone_list)
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
        self.tester = Tester(self.db, self.catalog, self.tracker, self.postbacks, settings.public_url, utcnow)
        self.dispatcher = dispatcher_for(settings, self.db) if settings.outbound_dispatch else None
        if self.dispatcher is not None:
            self.postbacks.on_outbound = self.dispatcher.wake
        self.link_checks = link_checks_for(settings, self.db, codec)
        self.accounts = Accounts(self.db, utcnow, timedelta(hours=settings.session_hours))
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start serving. A database that cannot be reached now does not stop the start: the
        server answers (clicks and postbacks "not ready", /readyz 503) and catches up when the
        database answers."""
        self._tasks = [asyncio.create_task(self.writer.run(), name="click-writer")]
        try:
            await self.catalog.reload()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("%s; serving anyway, retrying every %g s", self._why(exc), RECONNECT_SECONDS)
            self._tasks.append(asyncio.create_task(self._wait_for_database(), name="database-wait"))
        else:
            self._tasks.append(asyncio.create_task(self.catalog.watch(), name="catalog-watch"))
        self._tasks.append(asyncio.create_task(self._settle(), name="commission-settle"))
        if self.dispatcher is not None:
            self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="outbound-dispatcher"))
        every = self.settings.link_check_every
        if every is not None:
            # Every process runs it; the database gives each offer to one of them (claim_due).
            checks = self.link_checks.run(lambda: self.catalog.current, every)
            self._tasks.append(asyncio.create_task(checks, name="link-checks"))

    async def _wait_for_database(self) -> None:
        """Until the database answers: then migrate (if `serve` could not: CLICKBACK_MIGRATE_ON_START)
        and load the catalog, and go on watching it as usual."""
        tries = 0
        while True:
            await asyncio.sleep(RECONNECT_SECONDS)
            tries += 1
            try:
                if self.settings.migrate_on_start:
                    # Imported here: alembic (10 MB) is no part of a worker that does not migrate.
                    from clickback.store.migrate import upgrade

                    # Every worker may get here at once: upgrade() serialises them.
                    await upgrade(self.db)
                await self.catalog.reload()
            except (SQLAlchemyError, OSError) as exc:
                if tries % int(RECONNECT_LOG_SECONDS / RECONNECT_SECONDS) == 0:
                    log.warning("%s; still retrying (%.0f s)", self._why(exc), tries * RECONNECT_SECONDS)
                continue
            log.warning("database reachable: catalog loaded, serving clicks")
            await self.catalog.watch()

    def _why(self, exc: BaseException) -> str:
        problem = database_problem(exc, self.settings.url)
        return str(problem).replace("\n ", ";") if problem else f"database failing: {exc!r}"

    async def readiness(self) -> dict[str, Any]:
        """What /readyz reports: each part with `ok`, and `ready` when every part is."""
        try:
            await asyncio.wait_for(ping(self.db), READY_CHECK_SECONDS)
            database: dict[str, Any] = {"ok": True}
        except (SQLAlchemyError, OSError) as exc:
            database = {"ok": False, "error": self._why(exc)}
        w = self.writer
        parts: dict[str, dict[str, Any]] = {
            "database": database,
            "catalog": {"ok": self.catalog.loaded, "version": self.catalog.current.version},
            # Flushes failing in a row: redirected clicks wait in memory; at the limit they go
            # to the spool.
            "click_writer": {
                "ok": w.failing == 0 and w.pending < w.max_pending,
                "pending": w.pending,
                "limit": w.max_pending,
                "failing_flushes": w.failing,
            },
            # Files waiting to be written to the database (a spill, a dead process's clicks).
            "spool": {
                "ok": os.access(w.spool.directory, os.W_OK),
                "files": w.spool.files,
                "directory": str(w.spool.directory),
            },
        }
        return {"ready": all(part["ok"] for part in parts.values()), **parts}

    async def _settle(self) -> None:
        """Approve commissions whose hold has passed, forget signatures too old to replay, sum
        the report weeks that are over, and recompute the RevShare months a migration corrected
        (postbacks.recompute_due); every process may, each is idempotent."""
        while True:
            try:
                now = utcnow()
                await ledger.settle(self.db, now)
                await forget_signatures(self.db, now - 2 * SIGNATURE_WINDOW)
                await sum_weeks(self.db, int(now.timestamp()))
                await self.postbacks.recompute_due(now)
            except (SQLAlchemyError, OSError) as exc:
                # The database being away is said in a line; anything else keeps its traceback.
                known = database_problem(exc, self.settings.url) is not None
                log.warning(
                    "settling (commissions, signatures, report weeks, RevShare months) failed (%s); "
                    "retrying in a minute",
                    self._why(exc),
                    exc_info=not known,
                )
            await asyncio.sleep(SETTLE_SECONDS)

    async def stop(self) -> None:
        if self.dispatcher is not None:
            # Attempts in flight finish and are recorded (or their leases run out) first.
            await self.dispatcher.stop()
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


def dispatcher_for(settings: Settings, db: Database) -> Dispatcher:
    policy = Policy(
        timeout=settings.outbound_timeout_seconds,
        retry_base=settings.outbound_retry_base_seconds,
        concurrency=settings.outbound_concurrency,
        per_destination=settings.outbound_per_destination,
        pause_after=settings.outbound_pause_after,
        poll=settings.outbound_poll_seconds,
    )
    sender = Sender(settings.outbound_allowlist, policy.timeout, policy.concurrency)
    return Dispatcher(db, sender, policy, utcnow)


def link_checks_for(settings: Settings, db: Database, codec: ClickIdCodec) -> LinkChecks:
    policy = linkcheck.Policy(
        timeout=settings.link_check_timeout_seconds,
        slow_ms=round(settings.link_check_slow_seconds * 1000),
    )
    return LinkChecks(db, settings.outbound_allowlist, policy, codec, utcnow)
