"""The integration guide's URLs, filled in as each platform would, read back by clickback's own
intake into the right fields."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from clickback.core.clickids import ClickIdCodec
from clickback.core.intake import Postback, RawPostback, read_postback
from clickback.core.integration import PLATFORMS, guide, markdown, offer_events
from clickback.core.lifecycle import Status
from clickback.core.macros import compile_template
from clickback.core.model import NO_NAMES, Advertiser, Catalog, Offer

CODEC = ClickIdCodec(b"k" * 32)
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
CLICK = CODEC.mint(NOW - timedelta(minutes=5))
ADVERTISER = Advertiser(1, "Northstar Gaming", "northstar-token-0123456789")
CASINO = Offer(
    10, 1, "Northstar Casino", compile_template("https://c.example/?cid={click_id}"), "EUR", vertical="casino"
)
SHOP = Offer(11, 1, "Northstar Shop", compile_template("https://s.example/?cid={click_id}"), "USD")
CATALOG = Catalog.build(1, [ADVERTISER], [CASINO, SHOP], [], [])
GUIDE = guide("https://track.example.com/", ADVERTISER, CASINO, NO_NAMES)
# What each platform puts where its macros (or the guide's placeholders) stand.
FILLED = {
    "click_id": CLICK,
    "payout": "50.00",
    "txn_id": "T-1001",
    "event": "first_deposit",
    "status": "1",
    "currency": "EUR",
}


def filled(url: str, values: dict[str, str]) -> Postback:
    """The URL's query with each field's macro replaced by its value, read by intake."""
    pieces = []
    # Not urlsplit: CAKE's #macros# would read as a fragment before CAKE fills them in.
    for piece in url.split("?", 1)[1].split("&"):
        name, _, value = piece.partition("=")
        if re.fullmatch(r"[{#<].*[}#>]", value):
            value = values[name]
        pieces.append(f"{name}={value}")
    raw = RawPostback(NOW, "203.0.113.7", "GET", "&".join(pieces).encode())
    read = read_postback(raw, CATALOG, CODEC)
    assert isinstance(read, Postback), read
    return read


@pytest.mark.parametrize("preset", GUIDE.presets, ids=lambda p: p.platform)
def test_each_platform_preset_reads_back_into_the_right_fields(preset: object) -> None:
    from clickback.core.integration import Preset

    assert isinstance(preset, Preset)
    postback = filled(preset.url, FILLED)
    assert postback.advertiser == ADVERTISER and postback.click_value == CLICK
    assert postback.event == "first_deposit"
    assert preset.url.startswith("https://track.example.com/postback?")
    if preset.macros_public:
        assert postback.payout == Decimal("50.00")
        if "txn_id=" in preset.url:
            assert postback.txn_id == "T-1001"
        if "status=" in preset.url:
            assert postback.status is Status.APPROVED  # Affise's 1
    else:
        assert "does not publish" in preset.note and "click_id=<click_id_variable>" in preset.url


def test_every_platform_named_by_the_issue_has_a_preset() -> None:
    names = {p.name for p in PLATFORMS}
    for wanted in ("Income Access", "MyAffiliates", "NetRefer", "Cellxpert", "Affilka", "ReferOn"):
        assert wanted in names
    for wanted in ("TUNE", "Everflow", "Affise", "CAKE"):
        assert any(wanted in n for n in names)


def test_each_example_is_a_valid_postback_of_its_event() -> None:
    assert GUIDE.events[:3] == ("registration", "verification", "first_deposit")
    for example in GUIDE.examples:
        postback = filled(example.url, {"click_id": CLICK})
        assert postback.event == example.event
        assert postback.txn_id is not None


def test_an_offer_without_a_vertical_shows_its_own_events() -> None:
    assert offer_events(SHOP) == ("sale",)
    priced = Offer(
        12, 1, "Leads", SHOP.url, "USD", payouts={"lead": Decimal(2)}, custom_events=frozenset({"demo"})
    )
    assert offer_events(priced) == ("lead", "demo")


def test_the_page_holds_the_url_the_parameters_and_the_reasons() -> None:
    page = markdown(GUIDE)
    assert GUIDE.postback_url in page
    assert "| `click_id` | `clickid`, `cid`, `subid`, `cnv_id`, `click` |" in page
    assert "| `bad_token` | 403 |" in page
    assert "### Cellxpert (its macro names are not public)" in page
    assert "`hold` → pending" in page
