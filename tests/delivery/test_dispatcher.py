"""The dispatcher on a backlog: every delivery sent, each conversion's in the order they were made,
with the queue's releases (store/outbound.py) on a table PostgreSQL last analyzed empty (the
state that once made an in-order claim quadratic: docs/benchmarks.md)."""

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from clickback.core.addresses import parse_allowlist
from clickback.core.outbound import destination_of
from clickback.delivery.dispatcher import Dispatcher, Policy
from clickback.delivery.sender import Sender
from clickback.store import outbound
from clickback.store.bulk import insert_rows
from clickback.store.tables import outbound_deliveries
from tests.conftest import BACKENDS, scratch_database
from tests.receiver import Answer, Got, Receiver, receiving
from tests.store.test_outbound_queue import made as queued
from tests.store.test_outbound_queue import opened
from tests.web.test_outbound import query_of

CONVERSIONS = 500


def made(n: int, conversion_id: int, status: str, receiver: Receiver) -> dict[str, Any]:
    """Delivery n to the receiver, due now."""
    url = receiver.url(f"/pb?c={conversion_id}&st={status}")
    now = datetime.now(UTC)
    row = queued(n, conversion_id, status, destination_of(url))
    return row | {"url": url, "next_at": now, "created_at": now, "updated_at": now}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backlog_of_two_changes_a_conversion_is_sent_whole_and_in_order(
    backend: str, tmp_path: Path
) -> None:
    # Every approval's first attempt is answered 503: it is retried while its rejection, queued
    # since, could have gone first.
    refused: set[str] = set()
    taken: dict[str, list[str]] = {}
    lock = threading.Lock()

    def answer(got: Got) -> Answer:
        q = query_of(got.target)
        with lock:
            if q["st"] == "approved" and q["c"] not in refused:
                refused.add(q["c"])
                return Answer(503)
            statuses = taken.setdefault(q["c"], [])
            if statuses[-1:] != [q["st"]]:  # a repeat: sent again after a timeout
                statuses.append(q["st"])
        return Answer(200)

    with receiving() as receiver, scratch_database(backend, tmp_path) as url:
        receiver.answer = answer
        asyncio.run(sent(url, receiver))

    assert len(taken) == CONVERSIONS
    wrong = {c: statuses for c, statuses in taken.items() if statuses != ["approved", "rejected"]}
    assert wrong == {}


async def sent(url: str, receiver: Receiver) -> None:
    async with opened(url) as db:
        if db.dialect == "postgresql":
            async with db.write() as conn:
                await conn.execute(text("ANALYZE outbound_deliveries"))  # empty: grown since
        for status, first in (("approved", 1), ("rejected", CONVERSIONS + 1)):
            rows = [made(first + c, c + 1, status, receiver) for c in range(CONVERSIONS)]

            def work(conn: Connection, rows: list[dict[str, Any]] = rows) -> None:
                outbound.in_turn(conn, rows)
                insert_rows(conn, outbound_deliveries, rows)

            await db.run_write(work)
        counts = await outbound.counts(db)
        assert (counts[outbound.WAITING], counts[outbound.HELD]) == (CONVERSIONS, CONVERSIONS)

        policy = Policy(timeout=10, retry_base=0.001, pause_after=10 * CONVERSIONS, poll=0.1)
        sender = Sender(parse_allowlist(["127.0.0.1/32"]), policy.timeout, policy.concurrency)
        dispatcher = Dispatcher(db, sender, policy, lambda: datetime.now(UTC))
        running = asyncio.create_task(dispatcher.run())
        try:
            # Every row delivered (nothing left held or waiting), however long that takes.
            await asyncio.to_thread(receiver.deliveries, 2 * CONVERSIONS, 300)
            deadline = time.monotonic() + 60
            while (await outbound.counts(db))[outbound.DELIVERED] < 2 * CONVERSIONS:
                assert time.monotonic() < deadline, await outbound.counts(db)
                await asyncio.sleep(0.05)
        finally:
            await dispatcher.stop()
            await running
        counts = await outbound.counts(db)
        assert counts == {state: 0 for state in outbound.STATES} | {outbound.DELIVERED: 2 * CONVERSIONS}
