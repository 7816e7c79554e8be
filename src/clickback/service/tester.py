"""The postback tester (ADR 13): a test click through the real click path, test postbacks through
the real intake, and the trace of what became of them.

    click     a link of the offer (the affiliate's, else the offer's first) → Tracker.test_click
              (take_click, marked test, written at once so any process's postback finds it)
    fire      a RawPostback with the advertiser's token (signed if it must be) → Postbacks.receive
    trace     the click's postbacks from the log, parameter by parameter; its conversions; what
              the deal would book (core/commission) and the outbound postbacks that would fire
    wait      the trace once the log holds more postbacks for the click than the caller had seen
"""

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from clickback.core import integration
from clickback.core.clicks import ClickTaken
from clickback.core.commission import revshare_period
from clickback.core.events import IGAMING_EVENTS
from clickback.core.intake import RawPostback, sign
from clickback.core.model import AdvertiserNames, Catalog, Link, Offer, State
from clickback.core.outcome import Outcome, Result
from clickback.core.reasons import BY_CODE, Rejected
from clickback.core.redact import redact_query
from clickback.core.tester import (
    CommissionPreview,
    OutboundPreview,
    Parameter,
    as_one_player,
    preview_commission,
    preview_outbound,
    qualified_cpa_notice,
    read_parameters,
)
from clickback.service.catalog_cache import CatalogCache
from clickback.service.postbacks import Postbacks
from clickback.service.tracker import Tracker
from clickback.store import tester as store
from clickback.store.db import Database

# A trace shows this many postbacks and conversions of one test click at most.
MAX_TRACE_ROWS = 200
# Listen mode looks at the postback log this often: a postback recorded by any process shows
# within it, at the cost of one indexed query (ix_postbacks_test) per look.
WAIT_POLL_SECONDS = 0.25
# What the tester sends as the amount of an event when the caller names none (the integration
# guide's examples, with a positive NGR so that a RevShare preview earns something).
TEST_AMOUNTS: Mapping[str, str] = {**integration.EXAMPLE_VALUES, "net_revenue": "120.50"}


class Problem(Exception):
    """Why the tester cannot do what was asked (no such test click, no link for the offer...)."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True, slots=True)
class TestClick:
    click_id: str
    offer_id: int
    affiliate_id: int
    link_code: str
    clicked_at: datetime
    offer_url: str
    # The URL the advertiser configures (the click ID filled in), and one example per event.
    postback_url: str
    examples: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LoggedPostback:
    id: int
    received_at: datetime
    channel: str
    result: str
    reason: str | None
    message: str
    hint: str
    detail: str
    http_status: int
    conversion_id: int | None
    # The query as logged (the token masked), parameter by parameter.
    query: str
    parameters: tuple[Parameter, ...]
    ignored: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TracedConversion:
    row: Mapping[str, Any]
    outbound: tuple[OutboundPreview, ...]


@dataclass(frozen=True, slots=True)
class Trace:
    click: TestClick
    postbacks: tuple[LoggedPostback, ...]
    conversions: tuple[TracedConversion, ...]
    commission: CommissionPreview
    # Outbound postbacks on the qualified_cpa the deal's CPA would add.
    cpa_outbound: tuple[OutboundPreview, ...] = ()


@dataclass(frozen=True, slots=True)
class Fired:
    # The postback as sent (the token masked), and the answer the sender got.
    url: str
    parameters: tuple[Parameter, ...]
    outcome: Outcome
    trace: Trace = field(repr=False)

    @property
    def refused(self) -> bool:
        return self.outcome.result is Result.REJECTED


@dataclass(frozen=True, slots=True)
class TestPostback:
    event: str
    payout: str | None = None
    currency: str | None = None
    txn_id: str | None = None
    status: str | None = None
    player_id: str | None = None


class Tester:
    def __init__(
        self,
        db: Database,
        catalog: CatalogCache,
        tracker: Tracker,
        postbacks: Postbacks,
        public_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._tracker = tracker
        self._postbacks = postbacks
        self._public = public_url.rstrip("/")
        self._clock = clock

    async def click(self, offer_id: int, affiliate_id: int | None, sees_affiliates: bool = True) -> TestClick:
        """`sees_affiliates` False (an advertiser): an affiliate that does not exist is answered
        as one without a link to the offer, so that no one learns which affiliates exist."""
        catalog = self._catalog.current
        link = _link_for(catalog, offer_id, affiliate_id, sees_affiliates)
        taken = await self._tracker.test_click(link.code)
        if isinstance(taken, Rejected):
            raise Problem(f"{taken.reason.sentence} ({taken.reason.code})")
        return self._test_click(catalog, taken, link)

    def _test_click(self, catalog: Catalog, taken: ClickTaken, link: Link) -> TestClick:
        click = taken.click
        offer = catalog.offers[click.offer_id]
        guide = _guide(self._public, catalog, offer, click.click_id)
        return TestClick(
            click.click_id,
            click.offer_id,
            click.affiliate_id,
            link.code,
            click.clicked_at,
            taken.location,
            guide.postback_url.replace("{click_id}", click.click_id),
            {e.event: e.url.replace("{click_id}", click.click_id) for e in guide.examples},
        )

    async def fire(self, click_id: str, postback: TestPostback) -> Fired:
        """A test postback through the real intake, as the advertiser would send it."""
        row = await self._click_row(click_id)
        catalog = self._catalog.current
        offer = catalog.offers.get(row["offer_id"])
        if offer is None:
            raise Problem(f"the test click's offer {row['offer_id']} no longer exists", not_found=True)
        advertiser = catalog.advertisers[offer.advertiser_id]
        params = {"click_id": click_id, "event": postback.event}
        amount = postback.payout if postback.payout is not None else TEST_AMOUNTS.get(postback.event, "10.00")
        if amount:
            params |= {"payout": amount, "currency": postback.currency or offer.currency}
        elif postback.currency:
            params["currency"] = postback.currency
        # A fresh transaction ID unless one is named: every test postback is a new event.
        params["txn_id"] = postback.txn_id or f"test-{secrets.token_hex(6)}"
        if postback.status:
            params["status"] = postback.status
        player = postback.player_id or (f"tester-{click_id[-8:]}" if postback.event in IGAMING_EVENTS else "")
        if player:
            params["player_id"] = player
        params["token"] = advertiser.token
        query = urlencode(params).encode()
        now = self._clock()
        timestamp, signature = "", ""
        if advertiser.signing_secret:
            timestamp = str(int(now.timestamp()))
            signature = "sha256=" + sign(advertiser.signing_secret, timestamp, query, b"")
        # From the allowlist's first address when there is one: the tester checks the token,
        # the signature and everything after; the advertiser's real address is listen mode's.
        ip = str(advertiser.allowed_ips[0].network_address) if advertiser.allowed_ips else "127.0.0.1"
        raw = RawPostback(now, ip, "GET", query, timestamp=timestamp, signature=signature)
        outcome = await self._postbacks.receive(raw)
        shown = redact_query(query.decode())
        return Fired(
            f"{self._public}/postback?{shown}",
            read_parameters(shown, catalog.names_of(advertiser.id)),
            outcome,
            await self.trace(click_id),
        )

    async def trace(self, click_id: str) -> Trace:
        row = await self._click_row(click_id)
        catalog = self._catalog.current
        logged = await store.test_postbacks(self._db, click_id, MAX_TRACE_ROWS)
        converted = as_one_player(await store.test_conversions(self._db, click_id, MAX_TRACE_ROWS))
        offer = catalog.offers.get(row["offer_id"])
        names = catalog.names_of(offer.advertiser_id) if offer is not None else catalog.names_of(0)
        deal = catalog.deal_for(row["offer_id"], row["affiliate_id"])
        commission = preview_commission(deal, row["country"], converted)
        templates = catalog.outbound.get(row["affiliate_id"], ())
        source, lp = row["source"], row["landing_page"]
        traced = []
        for c in converted:
            earned = Decimal(0)
            if deal is not None and deal.revshare is not None and c["event"] == "net_revenue":
                amount = c["deal_amount"] or Decimal(0)
                earned = revshare_period(deal.revshare, deal.currency, amount, 0, Decimal(0)).earnings
            currency = deal.currency if deal is not None else (c["currency"] or "")
            previews = preview_outbound(
                templates, c, source=source, lp=lp, commission=earned, currency=currency
            )
            traced.append(TracedConversion(c, previews))
        cpa_outbound: tuple[OutboundPreview, ...] = ()
        if commission.cpa_qualified and commission.cpa_amount is not None and converted:
            last = converted[-1]
            qualified = qualified_cpa_notice(
                last, commission.cpa_amount, commission.currency, last["event_at"]
            )
            cpa_outbound = preview_outbound(
                templates,
                qualified,
                source=source,
                lp=lp,
                commission=commission.cpa_amount,
                currency=commission.currency,
            )
        return Trace(
            self._described(catalog, row),
            tuple(_logged(p, names) for p in logged),
            tuple(traced),
            commission,
            cpa_outbound,
        )

    async def wait(self, click_id: str, seconds: float, seen: int = 0) -> Trace | None:
        """The trace as soon as the log holds more than `seen` postbacks for the test click
        (recorded by any process); None if none came within `seconds`."""
        await self._click_row(click_id)
        deadline = time.monotonic() + seconds
        while True:
            if await store.count_test_postbacks(self._db, click_id) > seen:
                return await self.trace(click_id)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(WAIT_POLL_SECONDS, left))

    async def offer_of(self, click_id: str) -> int:
        """The offer a test click is of (the API shows an advertiser their own offers' only)."""
        return int((await self._click_row(click_id))["offer_id"])

    async def _click_row(self, click_id: str) -> dict[str, Any]:
        row = await store.test_click(self._db, click_id)
        if row is None:
            raise no_test_click(click_id)
        return row

    def _described(self, catalog: Catalog, row: Mapping[str, Any]) -> TestClick:
        offer = catalog.offers.get(row["offer_id"])
        link = next((k for k in catalog.links_by_code.values() if k.id == row["link_id"]), None)
        if offer is None:
            return TestClick(
                row["click_id"], row["offer_id"], row["affiliate_id"], "", row["clicked_at"], "", "", {}
            )
        click_id = row["click_id"]
        guide = _guide(self._public, catalog, offer, click_id)
        return TestClick(
            click_id,
            row["offer_id"],
            row["affiliate_id"],
            link.code if link is not None else "",
            row["clicked_at"],
            offer.url.render(
                {
                    **{f"sub{n}": row[f"sub{n}"] for n in range(1, 6)},
                    "click_id": click_id,
                    "affiliate_id": str(row["affiliate_id"]),
                    "offer_id": str(row["offer_id"]),
                    "link": link.code if link is not None else "",
                    "campaign": row["campaign"],
                    "source": row["source"],
                    "lp": row["landing_page"],
                }
            ),
            guide.postback_url.replace("{click_id}", click_id),
            {e.event: e.url.replace("{click_id}", click_id) for e in guide.examples},
        )


def _guide(public_url: str, catalog: Catalog, offer: Offer, click_id: str) -> integration.Guide:
    """The integration guide of a test click's offer, its examples' transaction IDs the click's
    own (`reg-<click ID>`): the same example fired from two test clicks is two transactions, where
    one `reg-1001` for every click made the second a transaction_conflict."""
    advertiser = catalog.advertisers[offer.advertiser_id]
    return integration.guide(
        public_url, advertiser, offer, catalog.names_of(advertiser.id), txn_suffix=click_id
    )


def no_test_click(click_id: str) -> Problem:
    return Problem(f"no test click {click_id!r}: create one with POST /api/tester/clicks", not_found=True)


def _link_for(catalog: Catalog, offer_id: int, affiliate_id: int | None, sees_affiliates: bool) -> Link:
    offer = catalog.offers.get(offer_id)
    if offer is None:
        raise Problem(f"offers {offer_id} does not exist", not_found=True)
    if sees_affiliates and affiliate_id is not None and affiliate_id not in catalog.affiliates:
        raise Problem(f"affiliates {affiliate_id} does not exist", not_found=True)
    links = sorted(
        (k for k in catalog.links_by_code.values() if k.offer_id == offer_id and k.status is State.ACTIVE),
        key=lambda k: k.id,
    )
    if affiliate_id is not None:
        links = [k for k in links if k.affiliate_id == affiliate_id]
    if not links:
        whose = f"affiliate {affiliate_id}" if affiliate_id is not None else "any affiliate"
        raise Problem(f"offer {offer_id} has no active link for {whose}: create one (POST /api/links) first")
    return links[0]


def _logged(row: Mapping[str, Any], names: AdvertiserNames) -> LoggedPostback:
    reason = BY_CODE.get(row["reason"] or "")
    return LoggedPostback(
        row["id"],
        row["received_at"],
        row["channel"],
        row["result"],
        row["reason"],
        reason.sentence if reason is not None else "",
        reason.hint if reason is not None else "",
        row["detail"],
        row["http_status"],
        row["conversion_id"],
        row["query"],
        # A body's parameters (a form's or a JSON object's) after the query's.
        read_parameters(row["query"], names, row["body"]),
        tuple(i for i in row["ignored"].split(",") if i),
    )
