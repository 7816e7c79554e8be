"""Conversion caps (ADR 17): how many of an event an offer (or one affiliate on it) takes a day
and in total. Past the cap a conversion is still recorded, marked over-cap and not paid. Pure:
which counters a conversion fills; the store makes the check-and-increment atomic."""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

# The event a cap counts: the CPA qualification (what the affiliate is paid for). A cap on
# another event would need its own "not paid" (ADR 17, "Not done").
CAPPED_EVENT = "qualified_cpa"
EVERY_AFFILIATE = 0
TOTAL = "total"
OVER_CAP = "over_cap"
# What the {cap_status} macro of an outbound postback gives.
UNDER_CAP = ""


@dataclass(frozen=True, slots=True)
class Cap:
    id: int
    offer_id: int
    affiliate_id: int  # EVERY_AFFILIATE: the offer's, all affiliates together
    event: str
    daily: int | None
    total: int | None
    zone: str = "UTC"


def counters(cap: Cap, at: datetime) -> list[tuple[str, int]]:
    """The counters (period, limit) a conversion of `cap`'s event at `at` must fit under: the
    local day's (in the cap's zone) and the total's, where the cap has them."""
    found: list[tuple[str, int]] = []
    if cap.daily is not None:
        found.append((at.astimezone(ZoneInfo(cap.zone)).date().isoformat(), cap.daily))
    if cap.total is not None:
        found.append((TOTAL, cap.total))
    return found


def cap_status(over_cap: bool) -> str:
    return OVER_CAP if over_cap else UNDER_CAP
