"""Taking a click: the redirect never waits for the database. It may wait, for a second at most,
for a click writer behind the traffic to catch up (ADR 22). service/postbacks.py receives
postbacks."""

from collections.abc import Awaitable, Callable
from datetime import datetime

from clickback.core.clickids import ClickIdCodec
from clickback.core.clicks import ClickRequest, ClickTaken, take_click
from clickback.core.model import Traits
from clickback.core.privacy import Privacy
from clickback.core.reasons import Reason, Rejected
from clickback.core.tester import TEST_SOURCE
from clickback.service.catalog_cache import CatalogCache
from clickback.service.clickwriter import ClickWriter


class Tracker:
    def __init__(
        self,
        catalog: CatalogCache,
        writer: ClickWriter,
        codec: ClickIdCodec,
        clock: Callable[[], datetime],
        privacy: Privacy,
        enrich: Callable[[str, str, str], Traits],
    ) -> None:
        self._catalog = catalog
        self._writer = writer
        self.codec = codec
        self._clock = clock
        self._privacy = privacy
        self._enrich = enrich

    @property
    def redirect_waits(self) -> bool:
        """Whether a redirect may have to wait: for the click to reach the disk (durable mode), or
        for the writer to catch up with the traffic (ClickWriter.behind)."""
        return self._writer.durable or self._writer.behind

    def take(self, request: ClickRequest) -> ClickTaken | Rejected:
        """Take a click without waiting: only when `redirect_waits` is false."""
        taken, synced = self._take(request, may_hold=False)
        assert synced is None, "durable mode: use click(), which waits for the spool"
        return taken

    async def click(self, request: ClickRequest) -> ClickTaken | Rejected:
        taken, synced = self._take(request)
        await self._writer.synced(synced)
        return taken

    async def test_click(self, code: str) -> ClickTaken | Rejected:
        """A test click on the link (the postback tester, ADR 13): the click rule itself, the
        click marked test, and written before this returns, so that a postback reaching any
        process finds it."""
        if not self._catalog.loaded:
            return Rejected(Reason.NOT_READY)
        request = ClickRequest(code, {"source": TEST_SOURCE}, "127.0.0.1", TEST_SOURCE, "")
        taken = take_click(
            request, self._catalog.current, self.codec, self._clock(), self._privacy, self._enrich
        )
        if isinstance(taken, Rejected):
            return taken
        taken = taken._replace(click=taken.click._replace(test=True))
        await self._writer.synced(self._writer.put(taken.click, may_hold=False))  # flushed below
        await self._writer.flush()
        return taken

    def _take(
        self, request: ClickRequest, *, may_hold: bool = True
    ) -> tuple[ClickTaken | Rejected, Awaitable[None] | None]:
        now = self._clock()
        if not self._catalog.loaded:
            return Rejected(Reason.NOT_READY), None
        taken = take_click(request, self._catalog.current, self.codec, now, self._privacy, self._enrich)
        if isinstance(taken, ClickTaken):
            if taken.refused is not None:
                self._writer.refuse(Rejected(taken.refused, request.code), now)
            return taken, self._writer.put(taken.click, may_hold=may_hold)
        self._writer.refuse(taken, now)
        return taken, None
