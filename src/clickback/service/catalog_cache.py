"""The catalog held in memory, so that a click costs no database round trip."""

import asyncio
import logging

from clickback.core.model import EMPTY_CATALOG, Catalog
from clickback.store.catalog import current_version, load_catalog
from clickback.store.db import Database

log = logging.getLogger(__name__)


class CatalogCache:
    def __init__(self, db: Database, refresh_seconds: float) -> None:
        self._db = db
        self._refresh_seconds = refresh_seconds
        self.current: Catalog = EMPTY_CATALOG
        # False until the first load: a server started while its database was unreachable must
        # not answer "no such link" for every link (clicks and postbacks are answered not ready).
        self.loaded = False

    async def reload(self, seen: int | None = None) -> None:
        """`seen`: the version a write transaction found in the database (StaleCatalog), taken
        even if lower than the one held (a database restored under a running server), so that
        the transaction can be done again under it."""
        # Replaced whole: a request that already holds the old catalog finishes with it.
        loaded = await load_catalog(self._db)
        # Loads overlap (the refresh loop's, an API change's): one read before a change may end
        # after the change's own, and must not put the older catalog back (the version counts
        # every change, in the change's transaction, and is read with the catalog).
        floor = self.current.version if seen is None else min(seen, self.current.version)
        if not self.loaded or loaded.version >= floor:
            self.current = loaded
        self.loaded = True

    async def refresh(self) -> bool:
        """Reload if another process changed links, offers or advertisers (one tiny query)."""
        if await current_version(self._db) == self.current.version:
            return False
        await self.reload()
        return True

    async def fresh(self) -> Catalog:
        """The catalog as the database holds it now, for a change checked against it: one that
        another process made under a second ago is not yet in `current`."""
        await self.refresh()
        return self.current

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception:
                # The old catalog keeps serving clicks; the next tick tries again.
                log.exception("catalog refresh failed")
