"""Every value of a click fits its column before it reaches a batch: on PostgreSQL one value too
long fails the whole batch. Checked against the declared tables, so a column made narrower than
the limit core crops to fails here, not in production."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import String

from clickback.core.clicks import ClickRequest, ClickTaken, fit_traits, take_click
from clickback.core.model import Traits
from clickback.core.privacy import IpMode, Privacy
from clickback.core.reasons import Reason
from clickback.enrich import Enricher
from clickback.store.bulk import CLICK_COLUMNS
from clickback.store.clicks import _record
from clickback.store.tables import click_refusals, clicks
from tests.core.test_clicks import CATALOG, CODEC, KEY

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
HUGE = "\x01é" + "x" * 5000
# ua-parser names the browser after the UA's own "...Bot/1.0" token: a 53-character family.
HOSTILE_UA = "Mozilla/5.0 (Windows NT 10.0) " + "Q" * 400 + "Bot/1.0"
ENRICHER = Enricher()


def huge_traits(ip: str, user_agent: str, method: str) -> Traits:
    """What a hostile .mmdb and User-Agent could make enrichment say, cropped as the enricher does."""
    return fit_traits(Traits(HUGE, HUGE, HUGE, 2**70, HUGE, HUGE, HUGE, HUGE))


@pytest.mark.parametrize("mode", list(IpMode))
@pytest.mark.parametrize("enrich", [huge_traits, ENRICHER.traits], ids=["huge_traits", "enricher"])
def test_every_value_of_a_hostile_click_fits_its_column(mode: IpMode, enrich: object) -> None:
    params = {name: HUGE for name in ("sub1", "sub2", "sub3", "sub4", "sub5", "source", "lp")}
    # A peer or forwarded address with a zone ID: the zone has no length limit.
    request = ClickRequest("abc", params, "fe80::1%" + "z" * 40, HOSTILE_UA, HUGE)

    taken = take_click(request, CATALOG, CODEC, NOW, Privacy(mode, KEY), enrich)  # type: ignore[arg-type]

    assert isinstance(taken, ClickTaken)
    row = dict(zip(CLICK_COLUMNS, _record(taken.click, True, str), strict=True))
    too_long = {
        name: len(row[name])
        for name, column in clicks.columns.items()
        if isinstance(column.type, String) and len(row[name]) > (column.type.length or 0)
    }
    assert too_long == {}
    assert row["asn"] is None or row["asn"] < 2**63
    if mode is IpMode.FULL:
        assert row["ip"] == "fe80::1"


def test_refused_clicks_fit_their_counters() -> None:
    longest_reason = max(
        len(r.code)
        for r in (Reason.UNKNOWN_LINK, Reason.LINK_PAUSED, Reason.OFFER_PAUSED, Reason.OFFER_ARCHIVED)
    )

    taken = take_click(
        ClickRequest("?" * 500, {}, "", "", ""), CATALOG, CODEC, NOW, Privacy(IpMode.FULL, KEY)
    )

    assert not isinstance(taken, ClickTaken)
    assert longest_reason <= (click_refusals.c.reason.type.length or 0)
    assert len(taken.detail) <= (click_refusals.c.code.type.length or 0)
