"""Conversion events: the standard names and the spellings other platforms send for them."""

from collections.abc import Mapping

STANDARD_EVENTS = frozenset(
    {
        "registration",
        "verification",
        "first_deposit",
        "deposit",
        "qualified_cpa",
        "revenue",
        "lead",
        "sale",
    }
)

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
    "cpa": "qualified_cpa",
    "qftd": "qualified_cpa",
}


def normalise_event(raw: str) -> str:
    name = raw.strip().lower().replace("-", "_").replace(" ", "_")
    return EVENT_ALIASES.get(name, name)
