"""Ids of new rows are taken before the rows are built; on PostgreSQL each process keeps spare
ones drawn from the sequences, which no other process can be given."""

import asyncio

import pytest

from clickback.store.db import ID_BLOCK, connect
from clickback.store.tables import conversions, postbacks


@pytest.mark.postgresql_only  # SQLite's writer takes ids after the highest stored, under its lock
def test_processes_drawing_ids_together_never_get_the_same_one(database_url: str) -> None:

    async def scenario() -> list[list[int]]:
        processes = [connect(database_url), connect(database_url)]
        try:

            async def draw(n: int) -> list[int]:
                db = processes[n % 2]
                taken = await db.run_write(
                    lambda conn: db.reserve_ids(conn, {conversions: 1 + n % 7, postbacks: 3})
                )
                return taken["conversions"]

            return list(await asyncio.gather(*(draw(n) for n in range(60))))
        finally:
            for db in processes:
                await db.close()

    drawn = asyncio.run(scenario())
    every = [i for ids in drawn for i in ids]
    assert [len(ids) for ids in drawn] == [1 + n % 7 for n in range(60)]
    assert len(set(every)) == len(every)


@pytest.mark.postgresql_only
def test_a_process_uses_its_spare_ids_before_drawing_more(database_url: str) -> None:

    async def scenario() -> list[int]:
        db = connect(database_url)
        try:
            taken: list[int] = []
            for _ in range(ID_BLOCK // 4):
                ids = await db.run_write(lambda conn: db.reserve_ids(conn, {conversions: 4}))
                taken += ids["conversions"]
            return taken
        finally:
            await db.close()

    taken = asyncio.run(scenario())
    assert taken == list(range(taken[0], taken[0] + ID_BLOCK))  # one block, in order
