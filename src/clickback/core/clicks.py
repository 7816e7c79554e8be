"""Taking a click: the tracking link's rule, from request values to the click and its redirect.

A click is never refused for odd parameters (the user is on the way to the offer): values are
cleaned of control characters and cropped to their limit. Only an unknown or paused link is
refused, with a reason. A cost passed on the link that cannot be right is refused as a field
(core/cost.py): the click is taken without it, and the refusal counted with its reason.
"""

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from clickback.core.clickids import ClickIdCodec
from clickback.core.limits import (
    MAX_ASN,
    MAX_BOT_REASON_LEN,
    MAX_COUNTRY_LEN,
    MAX_DEVICE_TYPE_LEN,
    MAX_LANDING_PAGE_LEN,
    MAX_PLACE_LEN,
    MAX_REFERRER_LEN,
    MAX_SOFTWARE_LEN,
    MAX_SOURCE_LEN,
    MAX_SUB_ID_LEN,
    MAX_UA_LEN,
)
from clickback.core.model import NO_TRAITS, Catalog, Click, State, Traits
from clickback.core.privacy import Privacy
from clickback.core.reasons import Reason, Rejected

MAX_LINK_CODE_LEN = 32
# C0, DEL and C1 (U+0080-U+009F, among them NEL, U+0085, a line break to str.splitlines and to
# some CSV readers): Unicode's control characters, all of them not printable, so the check below
# sends every value holding one here.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SUB_KEYS = ("sub1", "sub2", "sub3", "sub4", "sub5")


def clean(value: str | None, limit: int) -> str:
    if not value:
        return ""
    if len(value) <= limit and value.isprintable():  # the usual case, at C speed
        return value
    return _CONTROL.sub("", value[: limit * 2])[:limit]


def fit_traits(traits: Traits) -> Traits:
    """Traits cropped to their limits. Enrichment's names come from outside too: ua-parser copies
    a browser's name out of the User-Agent (a 53-character "QQ…QBot" was seen), an operator's
    .mmdb names places. take_click does not call it on every click: the enricher applies it once
    per distinct visitor, where it caches the traits (enrich/__init__.py)."""
    country, region, city, asn, device_type, os, browser, bot = traits
    if asn is not None and not 0 <= asn <= MAX_ASN:
        asn = None
    return Traits(
        country[:MAX_COUNTRY_LEN],
        region[:MAX_PLACE_LEN],
        city[:MAX_PLACE_LEN],
        asn,
        device_type[:MAX_DEVICE_TYPE_LEN],
        os[:MAX_SOFTWARE_LEN],
        browser[:MAX_SOFTWARE_LEN],
        bot[:MAX_BOT_REASON_LEN],
    )


# Named tuples, not frozen dataclasses (as Click, see ADR 5): built on every click, and a frozen
# dataclass's __init__ costs about 1 us more.
class ClickRequest(NamedTuple):
    code: str
    params: Mapping[str, str]
    ip: str
    user_agent: str
    referrer: str
    method: str = "GET"


class ClickTaken(NamedTuple):
    click: Click
    location: str
    # The offer has its tracking pixel on: the redirect also sets the click-ID cookie.
    pixel: bool = False
    # A field refused (the cost passed on the link): the click is taken without it.
    refused: Reason | None = None


def take_click(
    request: ClickRequest,
    catalog: Catalog,
    codec: ClickIdCodec,
    now: datetime,
    privacy: Privacy,
    enrich: Callable[[str, str, str], Traits] = lambda ip, user_agent, method: NO_TRAITS,
) -> ClickTaken | Rejected:
    """`enrich(ip, user_agent, method)` is called only for a click that is taken: refused ones
    cost no enrichment. It gets the full IP (before the privacy mode reduces it) and the cleaned,
    cropped user agent, and returns traits already within their limits (fit_traits)."""
    link = catalog.links_by_code.get(request.code[:MAX_LINK_CODE_LEN])
    if link is None:
        return Rejected(Reason.UNKNOWN_LINK, clean(request.code, MAX_LINK_CODE_LEN))
    offer = catalog.offers[link.offer_id]
    affiliate = catalog.affiliates[link.affiliate_id]
    if link.status is not State.ACTIVE or affiliate.status is not State.ACTIVE:
        archived = State.ARCHIVED in (link.status, affiliate.status)
        return Rejected(Reason.LINK_ARCHIVED if archived else Reason.LINK_PAUSED, link.code)
    if offer.status is not State.ACTIVE:
        archived = offer.status is State.ARCHIVED
        return Rejected(Reason.OFFER_ARCHIVED if archived else Reason.OFFER_PAUSED, link.code)
    get = request.params.get
    user_agent = clean(request.user_agent, MAX_UA_LEN)
    # Written out rather than a loop over SUB_KEYS: this runs on every click.
    subs = (
        clean(get("sub1"), MAX_SUB_ID_LEN),
        clean(get("sub2"), MAX_SUB_ID_LEN),
        clean(get("sub3"), MAX_SUB_ID_LEN),
        clean(get("sub4"), MAX_SUB_ID_LEN),
        clean(get("sub5"), MAX_SUB_ID_LEN),
    )
    traits = enrich(request.ip, user_agent, request.method)
    cost = link.cost.of_click(traits.country, bool(traits.bot), request.params)
    # Positional, in field order: a named tuple built with keywords costs four times more
    # (1.6 against 0.4 us), on every click. tests/core/test_clicks.py checks the order.
    click = Click(
        codec.mint(now),  # click_id
        now,  # clicked_at
        link.id,  # link_id
        link.affiliate_id,  # affiliate_id
        link.offer_id,  # offer_id
        link.campaign,  # campaign
        subs,
        clean(get("source"), MAX_SOURCE_LEN),  # source
        clean(get("lp"), MAX_LANDING_PAGE_LEN),  # landing_page
        privacy.ip(request.ip),  # ip
        user_agent,
        clean(request.referrer, MAX_REFERRER_LEN),  # referrer
        traits,
        privacy.visitor(request.ip, user_agent),  # visitor
        False,  # test
        cost.units,
        cost.currency,
    )
    location = offer.url.render(
        {
            "click_id": click.click_id,
            "sub1": click.subs[0],
            "sub2": click.subs[1],
            "sub3": click.subs[2],
            "sub4": click.subs[3],
            "sub5": click.subs[4],
            "affiliate_id": str(link.affiliate_id),
            "offer_id": str(link.offer_id),
            "link": link.code,
            "campaign": link.campaign,
            "source": click.source,
            "lp": click.landing_page,
        }
    )
    return ClickTaken(click, location, bool(offer.pixel_code), cost.refused)
