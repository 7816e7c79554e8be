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


def test_connections_renewed_while_a_task_takes_them_are_all_closed(database_url: str) -> None:
    """A running server's pool replaced (the tests' forget_connections) while its background
    tasks go on using it: a connection taken while the old pool's were being closed is closed
    too once it comes back, not left open in the discarded pool."""

    async def scenario() -> tuple[int, int]:
        db = connect(database_url)
        pool = db.read_engine.pool

        async def holding() -> None:
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
                await asyncio.sleep(0.05)

        # Several connections in the pool: closing each is an await, a moment for others to run.
        await asyncio.gather(*(holding() for _ in range(4)))
        stopping = asyncio.Event()

        async def background() -> None:  # as the dispatcher's poll or the catalog's refresh
            while not stopping.is_set():
                async with db.read() as conn:
                    await conn.execute(text("SELECT 1"))
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0)

        task = asyncio.create_task(background())
        await asyncio.sleep(0.05)
        await db.renew()
        await asyncio.sleep(0.1)
        stopping.set()
        await task
        left = pool.checkedout(), pool.checkedin()
        await db.close()
        return left

    assert asyncio.run(scenario()) == (0, 0)
