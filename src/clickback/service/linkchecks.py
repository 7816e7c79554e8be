"""Checking that active offers' URLs still work: now (`clickback check-links`) or on a schedule
inside every `serve` process, each offer checked by one process per interval (store.linkchecks)."""

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from clickback.core.addresses import Allowlist
from clickback.core.clickids import ClickIdCodec
from clickback.core.linkcheck import Policy, checked_url, judge
from clickback.core.model import Catalog, Offer, State
from clickback.store import linkchecks as store
from clickback.store.db import Database

log = logging.getLogger(__name__)
# Spelt into the test click ID's random part: an advertiser who sees it in a log knows it for ours.
TEST_CLICK_LABEL = "linkcheck"
# History kept: a quarter is enough to see when an offer started failing and how often it flaps.
KEEP_DAYS = 90
# How often a process looks for offers due (each is checked once per interval, whatever the tick).
TICK_SECONDS = 60.0


def active_offers(catalog: Catalog, only: int | None = None) -> list[Offer]:
    return [
        offer
        for offer in sorted(catalog.offers.values(), key=lambda o: o.id)
        if offer.status is State.ACTIVE and (only is None or offer.id == only)
    ]


@dataclass
class LinkChecks:
    db: Database
    allow: Allowlist
    policy: Policy
    codec: ClickIdCodec
    clock: Callable[[], datetime]

    @property
    def test_click_id(self) -> str:
        return self.codec.marked(TEST_CLICK_LABEL)

    async def check(self, offers: Sequence[Offer]) -> list[store.Checked]:
        """Check these offers now (bounded and polite: delivery.linkcheck) and record each check."""
        if not offers:
            return []
        now = self.clock()
        click_id = self.test_click_id
        # Imported here: aiohttp (10 MB) is no part of a worker that checks no link.
        from clickback.delivery.linkcheck import LinkFetcher

        fetcher = LinkFetcher(self.allow, self.policy)

        async def one(offer: Offer) -> store.Checked:
            seen = await fetcher.observe(checked_url(offer.url, offer.id, click_id))
            # Judged at once and the page let go: a round over thousands of offers holds no pages.
            outcome = judge(seen, self.policy.slow_ms)
            return store.Checked(offer.id, now, dataclasses.replace(seen, body=""), outcome)

        try:
            checked = list(await asyncio.gather(*(one(offer) for offer in offers)))
        finally:
            await fetcher.close()
        await store.record(self.db, checked)
        return checked

    async def round(self, catalog: Catalog, every: timedelta) -> list[store.Checked]:
        """One scheduled round: the active offers due that this process wins, then old history pruned."""
        now = self.clock()
        offers = {offer.id: offer for offer in active_offers(catalog)}
        claimed = await store.claim_due(self.db, offers, now, every)
        if not claimed:
            return []  # a tick with nothing due writes nothing (SQLite: no write lock taken)
        checked = await self.check([offers[i] for i in claimed])
        await store.prune(self.db, now - timedelta(days=KEEP_DAYS))
        for c in checked:
            if c.outcome.broken:
                log.warning("offer %d link %s: %s", c.offer_id, c.outcome.code.value, c.outcome.hint)
        return checked

    async def run(self, catalog: Callable[[], Catalog], every: timedelta) -> None:
        """Rounds until cancelled, the first a tick after the start: a process that restarts (a
        deploy, `clickback demo`) does not request every offer URL before it serves anything."""
        tick = min(TICK_SECONDS, every.total_seconds())
        while True:
            await asyncio.sleep(tick)
            try:
                await self.round(catalog(), every)
            except self.db.errors as exc:
                log.warning("link checks failed (%s); trying again in %g s", exc, tick)
            except Exception:
                # Anything else one round meets (an offer's strange answer, a fault of ours) must
                # not end the checks of every offer until a restart.
                log.exception("a round of link checks failed; trying again in %g s", tick)
