"""The two tracking use cases: take a click, receive a postback."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from clickback.core.clickids import ClickIdCodec
from clickback.core.clicks import ClickRequest, ClickTaken, take_click
from clickback.core.intake import Postback, RawPostback, Refused, attribute, read_postback
from clickback.core.model import Traits
from clickback.core.outcome import Outcome, Result
from clickback.core.privacy import Privacy
from clickback.core.reasons import Reason, Rejected
from clickback.service.catalog_cache import CatalogCache
from clickback.service.clickwriter import ClickWriter
from clickback.store import conversions, players
from clickback.store.clicks import find_click
from clickback.store.db import Database

log = logging.getLogger(__name__)


class Tracker:
    def __init__(
        self,
        db: Database,
        catalog: CatalogCache,
        writer: ClickWriter,
        codec: ClickIdCodec,
        clock: Callable[[], datetime],
        in_flight_window: timedelta,
        privacy: Privacy,
        enrich: Callable[[str, str, str], Traits],
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._writer = writer
        self.codec = codec
        self._clock = clock
        self._in_flight_window = in_flight_window
        self._privacy = privacy
        self._enrich = enrich

    @property
    def redirect_waits(self) -> bool:
        """Whether a redirect must wait for the click to reach the disk (durable mode)."""
        return self._writer.durable

    def take(self, request: ClickRequest) -> ClickTaken | Rejected:
        """Take a click without waiting: only when `redirect_waits` is false."""
        taken, synced = self._take(request)
        assert synced is None, "durable mode: use click(), which waits for the spool"
        return taken

    async def click(self, request: ClickRequest) -> ClickTaken | Rejected:
        taken, synced = self._take(request)
        await self._writer.synced(synced)
        return taken

    def _take(self, request: ClickRequest) -> "tuple[ClickTaken | Rejected, asyncio.Future[None] | None]":
        now = self._clock()
        taken = take_click(request, self._catalog.current, self.codec, now, self._privacy, self._enrich)
        if isinstance(taken, ClickTaken):
            return taken, self._writer.put(taken.click)
        self._writer.refuse(taken, now)
        return taken, None

    async def postback(self, raw: RawPostback) -> Outcome:
        try:
            return await self._postback(raw)
        except (SQLAlchemyError, OSError):
            # Nothing was committed, so the sender must not get a 2xx: it retries later.
            log.exception("postback not recorded")
            return Outcome(Result.REJECTED, Reason.STORAGE_UNAVAILABLE)

    async def _postback(self, raw: RawPostback) -> Outcome:
        catalog = self._catalog.current
        postback = read_postback(raw, catalog, self.codec)
        if isinstance(postback, Refused):
            return await conversions.log_refused(self._db, raw, postback)
        postback = await self._through_player(postback, raw.received_at)
        if isinstance(postback, Refused):
            return await conversions.log_refused(self._db, raw, postback)
        assert postback.click is not None
        click_id = postback.click.value
        click = self._writer.get(click_id) or await find_click(self._db, click_id)
        attribution = attribute(postback, click, catalog, raw.received_at, self._in_flight_window)
        if isinstance(attribution, Rejected):
            refused = Refused(attribution, postback.advertiser.id, click_id, postback.ignored)
            return await conversions.log_refused(self._db, raw, refused)
        return await conversions.record(self._db, raw, postback, attribution, catalog)

    async def _through_player(self, postback: Postback, now: datetime) -> Postback | Refused:
        """A known player stays attributed to the click of their first postback, whatever click ID
        later postbacks carry; a postback naming only the player is attributed through it."""
        if not postback.player_id:
            return postback
        player = await players.find(self._db, postback.advertiser.id, postback.player_id)
        if player is None:
            if postback.click is None:
                rejected = Rejected(Reason.UNKNOWN_PLAYER, postback.player_id[:64])
                return Refused(rejected, postback.advertiser.id, "", postback.ignored)
            return postback
        verified = self.codec.verify(player.click_id, now)
        if isinstance(verified, Rejected):  # the click-ID key was changed since the player came
            return Refused(verified, postback.advertiser.id, player.click_id, postback.ignored)
        return replace(postback, click=verified)
