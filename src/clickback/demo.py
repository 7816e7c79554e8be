"""Demo data for a newcomer: one advertiser, two offers, two affiliates, four tracking links, and
a week of clicks and postbacks sent through the real click and postback paths."""

import random
from datetime import timedelta
from decimal import Decimal
from functools import partial
from urllib.parse import urlencode

from clickback.core.clicks import ClickRequest, ClickTaken, take_click
from clickback.core.intake import RawPostback
from clickback.service.runtime import Runtime, utcnow
from clickback.store import admin

DEMO_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
)
DEMO_DAYS = 7
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
            payouts={"registration": Decimal(0), "first_deposit": Decimal(payout)},
            custom_events=[],
            now=now,
        )
        for name, host, payout in (
            ("Northstar Casino", "casino.example.com", "50"),
            ("Northstar Sportsbook", "sports.example.com", "35"),
        )
    ]
    affiliates = [await admin.create_affiliate(db, n, now) for n in ("Alice Media", "Bob Traffic")]
    links = [
        await admin.create_link(db, affiliate_id=a["id"], offer_id=o["id"], campaign="launch", now=now)
        for a in affiliates
        for o in offers
    ]
    await runtime.catalog.reload()
    await _traffic(runtime, [link["code"] for link in links], adv["token"])
    public = runtime.settings.public_url.rstrip("/")
    return [
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
                partial(runtime.enricher.traits, ip, agent, "GET"),
            )
            assert isinstance(taken, ClickTaken)
            await runtime.writer.take(taken.click)
            if rng.random() < 0.2:
                await runtime.writer.flush()
                await _postbacks(runtime, rng, taken, token)
    await runtime.writer.flush()


async def _postbacks(runtime: Runtime, rng: random.Random, taken: ClickTaken, token: str) -> None:
    events = ["registration"] + (["first_deposit"] if rng.random() < 0.4 else [])
    for i, event in enumerate(events):
        params = {"click_id": taken.click.click_id, "event": event, "token": token}
        if event == "first_deposit":
            params["status"] = rng.choice(["approved", "approved", "pending"])
        raw = RawPostback(
            received_at=taken.click.clicked_at + timedelta(minutes=5 + 30 * i),
            ip="198.51.100.20",
            method="GET",
            query=urlencode(params).encode(),
        )
        await runtime.tracker.postback(raw)
