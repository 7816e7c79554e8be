"""take_click puts every request value in its own field of the click (Click is built positionally
for speed, so a swap of two text fields would type-check)."""

from datetime import UTC, datetime

import pytest

from clickback.core.clickids import ClickIdCodec, VerifiedClickId
from clickback.core.clicks import ClickRequest, ClickTaken, take_click
from clickback.core.macros import compile_template
from clickback.core.model import Affiliate, Catalog, Link, Offer, Traits
from clickback.core.privacy import IpMode, Privacy

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
KEY = b"k" * 32
CODEC = ClickIdCodec(KEY)
TEMPLATE = (
    "https://casino.example.com/go?cid={click_id}&s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}&s5={sub5}"
    "&a={affiliate_id}&o={offer_id}&l={link}&c={campaign}&src={source}&lp={lp}"
)
CATALOG = Catalog(
    version=1,
    advertisers={},
    offers={7: Offer(7, 1, "Casino", compile_template(TEMPLATE), "EUR")},
    affiliates={3: Affiliate(3, "Alice")},
    links_by_code={"abc": Link(11, "abc", 3, 7, "spring")},
    advertisers_by_token={},
)
REQUEST = ClickRequest(
    "abc",
    {"sub1": "one", "sub2": "two", "sub3": "three", "sub4": "four", "sub5": "five"}
    | {"source": "src", "lp": "page"},
    "198.51.100.7",
    "Agent/1.0",
    "https://ref.example/",
    "HEAD",
)


def seen_by_enrichment(ip: str, user_agent: str, method: str) -> Traits:
    return Traits(country=ip, os=user_agent, browser=method)


@pytest.mark.parametrize("mode", list(IpMode))
def test_every_request_value_lands_in_its_own_field(mode: IpMode) -> None:
    privacy = Privacy(mode, KEY)

    taken = take_click(REQUEST, CATALOG, CODEC, NOW, privacy, seen_by_enrichment)

    assert isinstance(taken, ClickTaken)
    click = taken.click
    assert isinstance(CODEC.verify(click.click_id, NOW), VerifiedClickId)
    assert click.clicked_at == NOW
    assert (click.link_id, click.affiliate_id, click.offer_id, click.campaign) == (11, 3, 7, "spring")
    assert click.subs == ("one", "two", "three", "four", "five")
    assert (click.source, click.landing_page) == ("src", "page")
    assert click.ip == privacy.ip("198.51.100.7")
    assert (click.user_agent, click.referrer) == ("Agent/1.0", "https://ref.example/")
    # Enrichment sees the full address whatever the privacy mode keeps.
    assert click.traits == Traits(country="198.51.100.7", os="Agent/1.0", browser="HEAD")
    assert click.visitor == privacy.visitor("198.51.100.7", "Agent/1.0")
    assert taken.location == (
        f"https://casino.example.com/go?cid={click.click_id}&s1=one&s2=two&s3=three&s4=four&s5=five"
        "&a=3&o=7&l=abc&c=spring&src=src&lp=page"
    )


def test_c1_control_characters_are_removed_as_c0_ones_are() -> None:
    params = {"sub1": "a\x85b\x9fc\x80", "sub2": "\x00x\x7fy\r\n", "source": "caf\xe9 \u202eok"}
    request = REQUEST._replace(params=params, user_agent="Agent\x85/1.0", referrer="https://r.example/\x9b")

    taken = take_click(request, CATALOG, CODEC, NOW, Privacy(IpMode.FULL, KEY))

    assert isinstance(taken, ClickTaken)
    click = taken.click
    assert click.subs[:2] == ("abc", "xy")
    assert click.source == "caf\xe9 \u202eok"  # printable, or a format character: data
    assert (click.user_agent, click.referrer) == ("Agent/1.0", "https://r.example/")
