"""Conversion events: the standard names and the spellings other platforms send for them."""

from collections.abc import Mapping
from datetime import datetime

# The iGaming player journey, then generic affiliate events.
IGAMING_EVENTS = frozenset(
    {
        "registration",
        "verification",
        "first_deposit",
        "deposit",
        "withdrawal",
        "bonus",
        "wager",
        "net_revenue",
        "chargeback",
        "qualified_cpa",
    }
)
STANDARD_EVENTS = IGAMING_EVENTS | {"revenue", "lead", "sale"}

# Amounts that may be negative: a player's net gaming revenue for a period is often a loss.
SIGNED_EVENTS = frozenset({"net_revenue"})

EVENT_ALIASES: Mapping[str, str] = {
    "reg": "registration",
    "signup": "registration",
    "sign_up": "registration",
    "register": "registration",
    "kyc": "verification",
    "verified": "verification",
    "ftd": "first_deposit",
    "first_dep": "first_deposit",
    "firstdeposit": "first_deposit",
    "dep": "deposit",
    "withdraw": "withdrawal",
    "cashout": "withdrawal",
    "bonus_granted": "bonus",
    "bet": "wager",
    "bets": "wager",
    "turnover": "wager",
    "rake": "wager",
    "ngr": "net_revenue",
    "net_gaming_revenue": "net_revenue",
    "cb": "chargeback",
    "charge_back": "chargeback",
    "cpa": "qualified_cpa",
    "qftd": "qualified_cpa",
}


def normalise_event(raw: str, names: Mapping[str, str] | None = None) -> str:
    """Our name for an event: the advertiser's own names first (configured through the API),
    then the common spellings."""
    name = raw.strip().lower().replace("-", "_").replace(" ", "_")
    if names and name in names:
        return names[name]
    return EVENT_ALIASES.get(name, name)


def dedupe_family(event: str) -> str:
    """A first deposit is a deposit: advertisers report one transaction under either name (often
    both), and clickback may itself relabel a deposit as the player's first. One key for both."""
    return "deposit" if event == "first_deposit" else event


def deposit_label(event: str, first_deposit_at: datetime | None, at: datetime) -> tuple[str, bool]:
    """What a player's deposit is recorded as, whatever the advertiser called it: the player's
    first deposit by event time is the first_deposit, every other one a deposit. The second
    value says whether the player's current first deposit (at `first_deposit_at`) becomes a plain
    deposit: a deposit reported late but made earlier takes its place."""
    if dedupe_family(event) != "deposit":
        return event, False
    if first_deposit_at is None:
        return "first_deposit", False
    if at < first_deposit_at:
        return "first_deposit", True
    return "deposit", False
