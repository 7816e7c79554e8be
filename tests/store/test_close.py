"""Closing the database while a task still holds a connection (a request or a background task
unwinding from a cancellation at shutdown) leaves no connection open behind it."""

import asyncio

from sqlalchemy import text

from clickback.store.db import connect


def test_a_connection_in_use_at_close_is_closed_once_it_is_returned(database_url: str) -> None:
    async def scenario() -> tuple[int, int]:
        db = connect(database_url)
        pool = db.engine.pool
        taken = asyncio.Event()

        async def holding() -> None:
            async with db.write() as conn:
                await conn.execute(text("SELECT 1"))
                taken.set()
                await asyncio.sleep(0.2)

        task = asyncio.create_task(holding())
        await taken.wait()
        await db.close()
        await task
        # Left in the pool that close() discarded, a connection stays open until collected.
        return pool.checkedout(), pool.checkedin()

    assert asyncio.run(scenario()) == (0, 0)
