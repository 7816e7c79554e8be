"""The in-memory catalog: loads that overlap (the refresh loop's and an API change's) leave the
newest catalog in place, whichever ends last."""

import asyncio

import pytest

from clickback.core.model import Catalog
from clickback.service import catalog_cache
from clickback.store import admin
from clickback.store.db import Database
from tests.conftest import Client, World


def test_a_load_read_before_a_change_and_ending_after_it_keeps_the_change(
    client: Client, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = client.node.runtime
    real = catalog_cache.load_catalog

    async def scenario() -> Catalog:
        read, release = asyncio.Event(), asyncio.Event()

        async def slow(db: Database) -> Catalog:
            loaded = await real(db)
            read.set()
            await release.wait()  # ends after the change's own load
            return loaded

        monkeypatch.setattr(catalog_cache, "load_catalog", slow)
        stale = asyncio.create_task(runtime.catalog.reload())
        await read.wait()
        monkeypatch.setattr(catalog_cache, "load_catalog", real)
        await admin.set_pixel(runtime.db, world.casino["id"], True)
        await runtime.catalog.reload()  # as the API does after a change
        release.set()
        await stale
        return runtime.catalog.current

    current = client.node.call(scenario)
    assert current.offers[world.casino["id"]].pixel_code  # the pixel switched on stays on
    assert [o.id for o in current.offers_by_pixel.values()] == [world.casino["id"]]
