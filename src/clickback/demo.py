"""Demo data for a newcomer: a manager who signs in, one advertiser, a casino and a sportsbook
offer with their vertical's preset deals, two affiliates, four tracking links with what their
traffic costs, and a week of clicks and player postbacks (registrations, deposits, NGR) sent
through the real click and postback paths."""

import json
import random
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from clickback.core.accounts import Role
from clickback.core.clicks import ClickRequest, ClickTaken, take_click
from clickback.core.cost import CostKind, CostModel, stored
from clickback.core.intake import RawPostback
from clickback.core.model import EVERY_AFFILIATE
from clickback.core.verticals import Vertical, preset_deal
from clickback.service.clock import utcnow
from clickback.service.runtime import Runtime
from clickback.store import admin, deals

DEMO_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
)
DEMO_DAYS = 7
# The demo's first manager; its generated password is printed once.
DEMO_MANAGER = "admin"
CLICKS_PER_DAY = 60


async def seed(runtime: Runtime) -> list[str]:
    """Create the demo data unless the database holds advertisers already; return what to print."""
    db = runtime.db
    if await admin.list_all(db, "advertisers"):
        return ["demo data: the database is not empty, nothing added"]
    now = utcnow()
    adv = await admin.create_advertiser(db, "Northstar Gaming", now)
    offers = [
        await admin.create_offer(
            db,
            advertiser_id=adv["id"],
            name=name,
            url_template=f"https://{host}/welcome?btag={{click_id}}&s1={{sub1}}",
            currency="EUR",
            payouts={},
            custom_events=[],
            now=now,
            vertical=vertical,
        )
        for name, host, vertical in (
            ("Northstar Casino", "casino.example.com", Vertical.CASINO),
            ("Northstar Sportsbook", "sports.example.com", Vertical.SPORTSBOOK),
        )
    ]
    for offer in offers:
        await deals.put_deal(db, offer["id"], EVERY_AFFILIATE, preset_deal(offer["vertical"], "EUR"), now)
    affiliates = [await admin.create_affiliate(db, n, now) for n in ("Alice Media", "Bob Traffic")]
    # Alice buys her clicks (CPC, dearer from Germany); Bob is paid per first deposit he brings.
    costs = [
        CostModel(CostKind.CPC, "EUR", Decimal("0.35"), {"DE": Decimal("0.50")}),
        CostModel(CostKind.CPA, "EUR", Decimal(60), event="first_deposit"),
    ]
    links = [
        await admin.create_link(
            db,
            affiliate_id=a["id"],
            offer_id=o["id"],
            campaign="launch",
            now=now,
            cost=json.dumps(stored(cost)),
        )
        for a, cost in zip(affiliates, costs, strict=True)
        for o in offers
    ]
    await runtime.catalog.reload()
    await _traffic(runtime, [link["code"] for link in links], adv["token"])
    public = runtime.settings.public_url.rstrip("/")
    manager, password = await runtime.accounts.add_user(DEMO_MANAGER, Role.MANAGER)
    return [
        f"manager: sign in at {public}/login as {manager['login']}, password {password} (shown once)",
        f"advertiser {adv['name']}: postback token {adv['token']}",
        *(f"tracking link {public}/c/{link['code']}" for link in links),
    ]


async def _traffic(runtime: Runtime, codes: list[str], token: str) -> None:
    rng = random.Random(7)  # the same demo every time
    codec = runtime.tracker.codec
    now = utcnow()
    for day in range(DEMO_DAYS, 0, -1):
        for n in range(CLICKS_PER_DAY):
            at = now - timedelta(days=day, minutes=n * 13)
            sub = rng.choice(["fb-ads", "seo", "push"])
            ip = f"203.0.113.{rng.randrange(1, 255)}"  # documentation range: no real person
            agent = rng.choice(DEMO_AGENTS)
            request = ClickRequest(rng.choice(codes), {"sub1": sub}, ip, agent, "")
            taken = take_click(
                request,
                runtime.catalog.current,
                codec,
                at,
                runtime.settings.privacy,
                runtime.enricher.traits,
            )
            assert isinstance(taken, ClickTaken)
            await runtime.writer.take(taken.click)
            if rng.random() < 0.2:
                await runtime.writer.flush()
                await _postbacks(runtime, rng, taken, token)
    await runtime.writer.flush()


async def _postbacks(runtime: Runtime, rng: random.Random, taken: ClickTaken, token: str) -> None:
    """A player's life as an advertiser reports it: registration, maybe verification and deposits
    (the first named only `deposit`: clickback spots the FTD), wagering and a month's NGR."""
    player = "demo-" + taken.click.click_id[-8:]
    events: list[dict[str, str]] = [{"event": "registration"}]
    if rng.random() < 0.5:
        events.append({"event": "verification"})
        for n in range(rng.choice([1, 1, 2, 3])):
            events.append(
                {"event": "deposit", "payout": str(rng.randrange(10, 150)), "txn_id": f"{player}-d{n}"}
            )
        events.append({"event": "wager", "payout": str(rng.randrange(20, 600)), "txn_id": player + "-w"})
        events.append({"event": "ngr", "payout": str(rng.randrange(-80, 300)), "txn_id": player + "-ngr"})
    for i, fields in enumerate(events):
        params = {"player_id": player, "token": token, **fields}
        if i == 0:
            params["click_id"] = taken.click.click_id
        raw = RawPostback(
            received_at=taken.click.clicked_at + timedelta(minutes=5 + 30 * i),
            ip="198.51.100.20",
            method="GET",
            query=urlencode(params).encode(),
        )
        await runtime.postbacks.receive(raw)
