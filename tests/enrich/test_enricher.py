from pathlib import Path

import pytest

import clickback.enrich
from clickback.core.model import Traits
from clickback.enrich import Device, Enricher, Enrichment, Geo

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def test_a_person_on_a_phone(geolite2_city: Path) -> None:
    assert Enricher(str(geolite2_city)).enrich("81.2.69.142", IPHONE_SAFARI, "GET") == Enrichment(
        geo=Geo("GB", "England", "London", None),
        device=Device("mobile", "iOS", "Mobile Safari"),
        bot="",
    )


def test_without_a_database_only_the_country_is_known() -> None:
    assert Enricher(None).enrich("8.8.8.8", IPHONE_SAFARI, "GET").geo == Geo(country="US")


def test_any_bot_reason_makes_the_device_a_bot() -> None:
    enrichment = Enricher(None).enrich("81.2.69.142", IPHONE_SAFARI, "HEAD")
    assert enrichment.bot == "head_request"
    assert enrichment.device == Device("bot", "iOS", "Mobile Safari")


def test_a_preview_fetcher_is_flagged_not_dropped() -> None:
    enrichment = Enricher(None).enrich("31.13.24.1", "facebookexternalhit/1.1", "GET")
    assert (enrichment.bot, enrichment.device.type, enrichment.geo.country) == ("link_preview", "bot", "IE")


def test_a_spider_device_always_has_a_bot_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    # Should ua-parser ever know a spider crawlerdetect does not, the two verdicts still agree.
    monkeypatch.setattr(clickback.enrich, "bot_reason", lambda user_agent, method, known=False: "")
    enrichment = Enricher(None).enrich("8.8.8.8", GOOGLEBOT, "GET")
    assert (enrichment.bot, enrichment.device.type) == ("crawler", "bot")


def test_empty_inputs_never_raise() -> None:
    assert Enricher(None).enrich("", "", "") == Enrichment(Geo(), Device(type="bot"), "empty_user_agent")


def test_a_bad_database_path_stops_the_enricher_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.mmdb"):
        Enricher(str(tmp_path / "missing.mmdb"))


def test_traits_carry_every_field_for_storage(geolite2_city: Path) -> None:
    assert Enricher(geolite2_city).traits("81.2.69.142", IPHONE_SAFARI, "HEAD") == Traits(
        country="GB",
        region="England",
        city="London",
        asn=None,
        device_type="bot",
        os="iOS",
        browser="Mobile Safari",
        bot="head_request",
    )


@pytest.mark.parametrize(
    "agent",
    [
        IPHONE_SAFARI + " (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.0.0 Safari/537.36",
    ],
)
def test_a_browser_like_ua_with_a_crawler_token_is_still_checked(agent: str) -> None:
    assert Enricher(None).enrich("8.8.8.8", agent, "GET").bot == "crawler"
