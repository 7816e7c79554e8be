"""The outbox dispatcher: claims due deliveries, sends each (delivery/sender.py), logs the attempt
and moves the delivery on: delivered, tried again later (core/retry.py), failed for good, or a
dead letter. Runs inside `clickback serve` (beside the click writer) and in `clickback worker`.

Isolation: at most `per_destination` attempts of one destination are in flight in a dispatcher
(a semaphore each), and a claim takes at most twice that many of one destination and none of a
destination with that many in flight already, so a destination that answers slowly (or not at
all, until the timeout) only ever holds its own share of the `concurrency` slots, and its backlog
stays in the database. Outcomes are written in groups (service/group_commit.py): one transaction
for however many attempts ended together.

Order: a conversion's deliveries to one destination go one at a time, in the order they were
made (store/outbound.py: the rest are held until the one before ends, and released in the same
transaction that records its end).
"""

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from clickback.core.outbound import mask_url
from clickback.core.retry import Verdict, after_failure, retry_after, verdict
from clickback.delivery.sender import Reply, Request, Sender
from clickback.logs import Repeated
from clickback.metrics import OUTBOUND_DELIVERIES, worker
from clickback.service.group_commit import GroupCommit
from clickback.store import outbound as store
from clickback.store.db import Database

log = logging.getLogger(__name__)
# A claimed row waits for at most two attempts of its destination before its own: its claim
# lasts three attempts' longest time, and then some. A dispatcher that died mid-attempt (kill -9)
# leaves its rows to others once that runs out.
LEASE_MARGIN = timedelta(seconds=5)
MAX_GROUP = 500
# How often a dispatcher looks for held deliveries with nothing ahead of them (none should be:
# store.outbound.release_stranded), a read of the held rows alone.
SWEEP_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float = 10
    retry_base: float = 30
    concurrency: int = 256
    per_destination: int = 16
    pause_after: int = 50
    poll: float = 1.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=3 * self.timeout) + LEASE_MARGIN


class Dispatcher:
    def __init__(self, db: Database, sender: Sender, policy: Policy, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._sender = sender
        self.policy = policy
        self._clock = clock
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._kick = asyncio.Event()
        # Claimed and not yet sent, by destination; at most per_destination of them sending.
        self._in_flight: Counter[str] = Counter()
        self._sending: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._recorder: GroupCommit[store.Recorded, frozenset[str]] = GroupCommit(
            self._record_group, MAX_GROUP
        )
        self._swept: datetime | None = None
        self._stopping = False
        self._failures = Repeated(log, "outbound dispatcher cannot reach the database")
        self.attempts = 0

    def wake(self) -> None:
        """New deliveries committed in this process: look now rather than at the next poll."""
        self._kick.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._sweep()
                more = await self._round()
                self._failures.succeeded()
            except self._db.errors as exc:
                self._failures.failed(exc)
                more = False
            except Exception:
                # A bug must not stop every outbound postback of the process: said, and retried.
                log.exception("outbound dispatcher round failed")
                more = False
            if not more:
                await self._idle()

    async def _round(self) -> bool:
        """Claim what this dispatcher has room for and start sending it; whether to look again."""
        p = self.policy
        free = p.concurrency - len(self._tasks)
        if free <= 0:
            return False
        busy = [d for d, n in self._in_flight.items() if n >= p.per_destination]
        claimed = await store.claim(
            self._db, self.owner, self._clock(), p.lease, free, 2 * p.per_destination, busy
        )
        for row in claimed:
            self._in_flight[row.destination] += 1
            task = asyncio.create_task(self._attempt(row), name=f"outbound-{row.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return bool(claimed)

    async def _sweep(self) -> None:
        now = self._clock()
        if self._swept is not None and now - self._swept < SWEEP_EVERY:
            return
        self._swept = now
        released = await store.release_stranded(self._db, now)
        if released:
            log.warning("outbound: %d held deliveries had nothing ahead of them; made due", released)

    async def _idle(self) -> None:
        """Until woken, an attempt ends, or the next delivery falls due (polling other processes'
        work at most `poll` seconds apart)."""
        wait = self.policy.poll
        with contextlib.suppress(*self._db.errors):
            due = await store.next_due(self._db)
            if due is not None and due > self._clock():
                wait = min(wait, (due - self._clock()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), wait)
        self._kick.clear()

    async def _attempt(self, row: store.Claimed) -> None:
        p = self.policy
        sending = self._sending.setdefault(row.destination, asyncio.Semaphore(p.per_destination))
        try:
            try:
                async with sending:
                    request = Request(
                        row.delivery_id, row.method, row.url, row.body, row.content_type, row.secret
                    )
                    at = self._clock()
                    reply = await self._sender.send(request, at)
            finally:
                self._sent(row.destination)
            # Recorded in a group with others that ended meanwhile; the claim goes on meanwhile.
            paused = await self._recorder.submit(self._recorded(row, at, reply))
            if row.destination in paused:
                log.warning(
                    "outbound destination %s paused after %d failed attempts in a row; resume it with "
                    "POST /api/outbound/destinations/%s/resume",
                    row.destination,
                    p.pause_after,
                    row.destination,
                )
        except Exception:
            # The lease runs out and the delivery is tried again: logged, never lost.
            log.exception("outbound delivery %s: attempt not recorded", row.id)

    def _sent(self, destination: str) -> None:
        p = self.policy
        left = self._in_flight[destination] = self._in_flight[destination] - 1
        if not left:
            del self._in_flight[destination]
            self._sending.pop(destination, None)
        # Claim again once a destination is no longer busy (not after every attempt: a claim is
        # a write transaction, worth making for several rows).
        if left <= p.per_destination // 2 or len(self._tasks) <= p.concurrency // 2:
            self._kick.set()

    def _recorded(self, row: store.Claimed, at: datetime, reply: Reply) -> store.Recorded:
        p = self.policy
        now = self._clock()
        judged = Verdict.PERMANENT if reply.refused else verdict(reply.status)
        if judged is Verdict.DELIVERED:
            outcome = store.Outcome(store.DELIVERED, now, False, True)
        elif judged is Verdict.PERMANENT:
            outcome = store.Outcome(store.FAILED, now, False, not reply.refused)
        else:
            after = after_failure(row.attempts + 1, now, p.retry_base, retry_after(reply.retry_after, now))
            state = store.WAITING if after.at is not None else store.DEAD
            failing = reply.status is None or reply.status >= 500 or reply.status == 408
            outcome = store.Outcome(state, after.at or now, failing, False)
        attempt = store.Attempt(
            at=at,
            url=mask_url(row.url),
            http_status=reply.status,
            latency_ms=reply.latency_ms,
            reply=reply.reply,
            error=reply.error,
            worker=self.owner,
        )
        return store.Recorded(row, attempt, outcome)

    async def _record_group(self, done: Sequence[store.Recorded]) -> list[frozenset[str]]:
        moved = await store.record_attempts(self._db, self.owner, done, self.policy.pause_after)
        self.attempts += len(done)
        for r in done:
            OUTBOUND_DELIVERIES.labels(worker(), _label(r.outcome.state)).inc()
        if moved.released:
            self._kick.set()  # their turn came: due now, not at the next poll
        return [moved.paused] * len(done)

    async def stop(self) -> None:
        """Stop claiming; attempts in flight finish (each bounded by the timeout)."""
        self._stopping = True
        self._kick.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.policy.timeout + 1)
        for task in list(self._tasks):
            task.cancel()
        await self._recorder.close()
        await self._sender.close()


def _label(state: str) -> str:
    return {store.WAITING: "retry"}.get(state, state)
