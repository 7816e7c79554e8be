"""The click buffer: redirects append here and never wait for the database; a background task
writes batches.

A click stays findable (by the postback path) from the moment it is taken: here until its batch
is committed, in the database after. It leaves memory only once the commit succeeded, or when the
database has been failing so long that memory is full: then the backlog moves to the spool
(service/spool.py) and is read back once the database returns.

While the database takes batches but more slowly than clicks come in (a traffic peak on a
server's whole CPU), the backlog need not grow in memory: once two batches are waiting, a redirect
is held until the writer catches up, for at most HOLD_SECONDS, so clients that wait for their
answers (a proxy's or a load generator's connections) send clicks as fast as they are stored.
Nothing is held while the writer has stored nothing for STALLED_SECONDS (the database failing or
locked), nor, once a hold ran out, until the backlog is under two batches again (traffic that keeps
coming whatever the answers, which holding only slows): the backlog then grows and goes to the
spool as in an outage, and users reach the offer at once.

A batch that fails because the database refuses one of its values (store.db.refused_data) is not
retried whole, for ever: it is halved until each refused click stands alone, the rest is stored,
and the refused clicks are kept in `quarantined_clicks` with the reason.
"""

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from itertools import islice

from clickback.core.model import Click
from clickback.core.reasons import Rejected
from clickback.core.reporting import hour_of
from clickback.metrics import (
    CLICK_BACKLOG,
    CLICK_BATCH_SECONDS,
    CLICKS,
    CLICKS_HELD,
    SPOOL_FILES,
    show_caches,
    worker,
)
from clickback.service.spool import Spool, encode
from clickback.store.clicks import prune_visitors, quarantine, write_batch
from clickback.store.db import Database, refused_data

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 300
RETRY_MAX_SECONDS = 5.0
# quarantined_clicks: the reason's column, and how much of an unreadable spool line is kept.
MAX_REASON_LEN = 512
MAX_UNREADABLE_LEN = 64 * 1024
CAPACITY_SECONDS = 10.0
# The longest a redirect is held for a writer behind the traffic; and how recent the writer's last
# stored batch must be for it to hold any: a batch of 1,000 took up to 0.9 s on a loaded 2-core
# machine, and a stalled writer must not slow every redirect.
HOLD_SECONDS = 1.0
STALLED_SECONDS = 1.0


class ClickWriter:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        batch_size: int,
        flush_seconds: float,
        max_pending: int,
        unique_window_ms: int,
        spool: Spool,
        durable: bool,
    ) -> None:
        # Called after every flush: conversions that arrived before their click may match now.
        self.after_flush: Callable[[datetime], Awaitable[object]] | None = None
        self._db = db
        self._clock = clock
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._max_pending = max_pending
        self._unique_window_ms = unique_window_ms
        self.spool = spool
        self.durable = durable
        self._pending: dict[str, Click] = {}
        self._refusals: Counter[tuple[int, str, str]] = Counter()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pruned_at = 0.0
        self.written = 0
        self.spilled = 0
        self.failures = 0
        self.failing = 0  # flushes failed in a row (0: the last one succeeded)
        self.spool_failures = 0
        self.quarantined = 0
        self.held = 0  # redirects held for the writer to catch up
        self._held_shown = 0  # of them, counted in CLICKS_HELD (at each batch, not each click)
        # Held redirects wait on this; resolved when the backlog is under _hold_at again.
        self._caught_up: asyncio.Future[None] | None = None
        self._hold_at = max(batch_size, min(2 * batch_size, max_pending // 2))
        # Redirects held now: at most a batch's worth, so that traffic which does not wait for
        # its answers cannot pile up waiters on one future (each removed from it on its timeout).
        self._holding = 0
        # A hold ran out before the writer caught up: traffic that does not wait for its answers
        # (new users keep coming), which holding only slows. No more holds until it catches up.
        self._outrun = False
        self._stored_at = float("-inf")  # time.monotonic() of the last batch stored
        # (when, clicks, seconds) of the last batches written, for write_capacity
        self._batches: deque[tuple[float, int, float]] = deque(maxlen=1000)
        self._gauges()

    async def take(self, click: Click) -> None:
        """Accept a redirected click; return once it is on disk (durable mode) and once the writer
        is not too far behind."""
        await self.synced(self.put(click))

    def put(self, click: Click, *, may_hold: bool = True) -> Awaitable[None] | None:
        """Accept a redirected click without waiting. Returns what `synced` must await before
        the redirect is sent (durable mode: the spool's fsync; a held redirect: the writer
        catching up), or None: the click is already taken."""
        # Decided before the click is added, as the fast click path asks `behind` before it
        # takes a click: both hold from the click after the backlog reached two batches.
        hold = may_hold and self.behind
        # Into the spool file and into memory in one synchronous step, before any await: a flush
        # then either sees the click in memory or finds its line in a segment it must not delete.
        synced = self._spool(click) if self.durable else None
        self._pending[click.click_id] = click
        if len(self._pending) >= self._max_pending:
            # The database has been failing for a long time: keep the backlog on disk instead.
            self._spill()
            return synced
        if len(self._pending) >= self._batch_size:
            self._wake.set()
        return self._hold(synced) if hold else synced

    @property
    def behind(self) -> bool:
        """Whether a redirect taken now is held: the backlog is two batches or more while the
        writer is storing batches, and holding keeps the traffic in step with it."""
        return self._backlogged and self._holding < self._batch_size and not self._outrun and self._storing

    @property
    def _backlogged(self) -> bool:
        return len(self._pending) >= self._hold_at

    @property
    def _storing(self) -> bool:
        """The writer is storing batches: none failing, not stopping, one stored lately."""
        return (
            not self.failing
            and not self._stopping.is_set()
            and time.monotonic() - self._stored_at < STALLED_SECONDS
        )

    def _hold(self, synced: Awaitable[None] | None) -> Coroutine[None, None, None]:
        loop = asyncio.get_running_loop()
        if self._caught_up is None or self._caught_up.done():
            self._caught_up = loop.create_future()
        caught_up = self._caught_up
        deadline = loop.time() + HOLD_SECONDS  # from now: a durable click's fsync included
        self.held += 1

        async def held() -> None:
            self._holding += 1
            try:
                await self.synced(synced)
                left = deadline - loop.time()
                if left > 0:
                    await asyncio.wait([caught_up], timeout=left)
                if not caught_up.done():
                    self._outrun = True
            finally:
                self._holding -= 1

        return held()

    def _let_go(self) -> None:
        """Send the held redirects once the backlog is under two batches or the writer stopped
        storing (a failing database, a shutdown)."""
        backlogged = self._backlogged
        if not backlogged:
            self._outrun = False
        caught_up = self._caught_up
        if caught_up is not None and not caught_up.done() and not (backlogged and self._storing):
            caught_up.set_result(None)

    async def synced(self, synced: Awaitable[None] | None) -> None:
        if synced is not None:
            try:
                await synced
            except OSError:
                self._spool_failed()

    def _spool(self, click: Click) -> "asyncio.Future[None] | None":
        try:
            return self.spool.append(click)
        except OSError:
            self._spool_failed()
            return None

    def _spill(self) -> None:
        try:
            self.spilled += self.spool.spill(self._pending.values())
        except OSError:
            # No disk either: the backlog stays in memory (over the limit) rather than be lost;
            # clicks already spilled are stored once, as a replayed spool is.
            self._spool_failed()
            return
        log.error("click buffer full: %d clicks moved to the spool", len(self._pending))
        self._pending.clear()
        self._let_go()

    def _spool_failed(self) -> None:
        # A full or broken disk must not stop users reaching the offer: the click stays in
        # memory (as in default mode), and the failure is counted and logged.
        self.spool_failures += 1
        if self.spool_failures % 1000 == 1:
            log.exception("durable spool failed %d times; clicks kept in memory", self.spool_failures)

    def refuse(self, rejected: Rejected, at: datetime) -> None:
        self._refusals[(hour_of(at), rejected.reason.code, rejected.detail)] += 1

    def get(self, click_id: str) -> Click | None:
        return self._pending.get(click_id)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def max_pending(self) -> int:
        return self._max_pending

    async def flush(self) -> int:
        """Write everything pending now, then any spooled backlog; returns clicks inserted."""
        try:
            return await self._flush()
        finally:
            self._let_go()
            self._gauges()

    def _gauges(self) -> None:
        if self.held > self._held_shown:
            CLICKS_HELD.labels(worker()).inc(self.held - self._held_shown)
            self._held_shown = self.held
        CLICK_BACKLOG.labels(worker()).set(self.pending)
        SPOOL_FILES.labels(worker()).set(self.spool.files)

    async def _flush(self) -> int:
        async with self._lock:
            # The segments closed here hold only clicks pending now, and only what is pending now
            # is written: under load, clicks arriving meanwhile wait for the next flush rather
            # than keeping this one (and a shutdown waiting on it) going for ever.
            self.spool.rotate()
            written = 0
            for _ in range(max(1, -(-len(self._pending) // self._batch_size))):
                if not (self._pending or self._refusals):
                    break
                batch = list(islice(self._pending.values(), self._batch_size))
                written += await self._timed_write(batch)
                for click in batch:
                    self._pending.pop(click.click_id, None)  # a spill may have emptied memory
                self._let_go()
            self.spool.written_from_memory()
            written += await self._drain()
            self.written += written
            now = self._clock()
            if self.after_flush is not None:
                await self.after_flush(now)
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
                cutoff = int(now.timestamp() * 1000) - self._unique_window_ms
                await prune_visitors(self._db, cutoff)
                self._pruned_at = time.monotonic()
            return written

    @property
    def write_capacity(self) -> int:
        """Clicks a second this process stored while it was writing (waiting for the write lock
        included), over its batches of the last CAPACITY_SECONDS: the most it can keep up with
        now. 0 when it wrote nothing meanwhile."""
        since = time.monotonic() - CAPACITY_SECONDS
        recent = [(clicks, seconds) for at, clicks, seconds in self._batches if at >= since]
        busy = sum(seconds for _, seconds in recent)
        return int(sum(clicks for clicks, _ in recent) / busy) if busy else 0

    async def _timed_write(self, batch: Sequence[Click]) -> int:
        started = time.monotonic()
        written = await self._write(batch)
        now = self._stored_at = time.monotonic()
        self._batches.append((now, len(batch), now - started))
        CLICK_BATCH_SECONDS.labels(worker()).observe(now - started)
        return written

    async def _write(self, batch: Sequence[Click]) -> int:
        """One batch, with the refused-click counts gathered since the last one. If the database
        refuses a value of it, the rest is stored and the clicks it refused are quarantined."""
        refusals, self._refusals = self._refusals, Counter()
        try:
            written = await write_batch(self._db, batch, refusals, self._unique_window_ms)
        except BaseException as exc:
            if not (isinstance(exc, Exception) and refused_data(exc)):
                self._refusals.update(refusals)
                raise
            refused = exc
        else:
            _count(written, refusals)
            return written
        log.warning("the database refused a batch of %d clicks (%s); isolating", len(batch), _why(refused))
        if refusals:
            try:
                await write_batch(self._db, [], refusals, self._unique_window_ms)
            except BaseException as exc:
                if not (isinstance(exc, Exception) and refused_data(exc)):
                    self._refusals.update(refusals)
                    raise
                # Counters, not clicks: nothing to keep them as. Their values are cropped in
                # core like the clicks', so this is not expected.
                log.error("refused-click counts dropped: the database refused them (%s)", _why(exc))
            else:
                _count(0, refusals)
        kept: list[tuple[str, str, str]] = []
        written = await self._isolate(batch, refused, kept)
        await self._quarantine(kept)
        _count(written, Counter())
        return written

    async def _isolate(
        self, batch: Sequence[Click], error: Exception, kept: list[tuple[str, str, str]]
    ) -> int:
        """Store what the database takes of a refused batch by halves, until each click it refuses
        stands alone (into `kept`): one bad click in 1,000 costs about 20 small transactions.
        A failure that is not the data's (the connection lost meanwhile) stops it: the batch is
        then retried later, and the halves already stored are skipped as stored."""
        if not batch:  # only refused-click counts were in it: written or dropped already
            return 0
        if len(batch) == 1:
            kept.append((ascii(batch[0].click_id)[1:-1][:64], _why(error), encode(batch[0]).decode()))
            return 0
        written = 0
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            try:
                written += await write_batch(self._db, half, {}, self._unique_window_ms)
            except Exception as exc:
                if not refused_data(exc):
                    raise
                written += await self._isolate(half, exc, kept)
        return written

    async def _quarantine(self, kept: Sequence[tuple[str, str, str]]) -> None:
        if kept:
            await quarantine(self._db, kept, self._clock())
            self.quarantined += len(kept)
            log.error("%d clicks quarantined (quarantined_clicks), first: %s", len(kept), kept[0][1])

    async def _drain(self) -> int:
        written = 0
        # At most as many files as there are now: when the traffic outruns the writer, the
        # backlog it spills meanwhile waits for the next flush, as new clicks do, rather than keep
        # this one (and attribute_waiting after it) from ever ending.
        for _ in range(self.spool.files):
            if (claimed := self.spool.claim()) is None:
                break
            try:
                for start in range(0, len(claimed.clicks), self._batch_size):
                    written += await self._timed_write(claimed.clicks[start : start + self._batch_size])
                # Lines that are not clicks (a damaged file): kept as they are, not retried.
                await self._quarantine([_unreadable(line, why) for line, why in claimed.unreadable])
            except BaseException:
                self.spool.release(claimed.path)
                raise
            self.spool.drained(claimed.path)
        return written

    async def run(self) -> None:
        """Flush on size and on interval until stop(); on error keep the clicks and retry later.

        Never cancelled mid-write: a batch abandoned half-way would keep SQLite's write lock
        until it timed out, and the final flush would wait behind it."""
        while not self._stopping.is_set():
            await self._nap(self._wake)
            if self._stopping.is_set():
                break
            try:
                await self.flush()
                self.failing = 0
            except Exception:
                self.failures += 1
                self.failing += 1
                self._let_go()
                failing = self.failing
                # Logged at the first failure and then once a minute, not once per attempt.
                if failing == 1 or failing % max(1, int(60 / RETRY_MAX_SECONDS)) == 0:
                    log.exception("click flush failing (%d tries); %d clicks kept", failing, self.pending)
                # Back off whatever wakes arrive: the database is down, not the buffer full.
                await self._nap(self._stopping, min(RETRY_MAX_SECONDS, self._flush_seconds * 2**failing))

    async def _nap(self, event: asyncio.Event, seconds: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds or self._flush_seconds)
        self._wake.clear()

    def stop(self) -> None:
        """Let run() finish the flush it may be in, then return."""
        self._stopping.set()
        self._wake.set()
        self._let_go()

    async def close(self) -> None:
        """At shutdown: write what is pending; if the database will not take it, spool it."""
        try:
            await self.flush()
        except Exception:
            log.exception("final click flush failed; spooling %d clicks", self.pending)
            self.spilled += self.spool.spill(self._pending.values())
            self._pending.clear()
        finally:
            self.spool.close()


def _count(stored: int, refusals: Counter[tuple[int, str, str]]) -> None:
    """The metrics of a batch just committed: counted here, once per batch, not on the click path
    (a click stored twice, from memory and from its spool line, is stored and counted once)."""
    if stored:
        CLICKS.labels(worker(), "taken", "").inc(stored)
    by_reason: Counter[str] = Counter()
    for (_, reason, _), clicks in refusals.items():
        by_reason[reason] += clicks
    for reason, clicks in by_reason.items():
        CLICKS.labels(worker(), "refused", reason).inc(clicks)
    show_caches()


def _why(error: BaseException) -> str:
    """The driver's own message (SQLAlchemy's wrapper adds the statement and every row's
    parameters), as ASCII without control characters: PostgreSQL's text refuses a NUL."""
    cause = getattr(error, "orig", None) or error
    return ascii(f"{type(cause).__name__}: {cause}")[1:-1][:MAX_REASON_LEN]


def _unreadable(line: bytes, why: str) -> tuple[str, str, str]:
    key = "line:" + hashlib.sha256(line).hexdigest()[:32]
    return key, ascii(why)[1:-1][:MAX_REASON_LEN], ascii(line[:MAX_UNREADABLE_LEN])[2:-1]
