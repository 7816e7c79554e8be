"""Starting points for a new offer of a given vertical: its usual events and a typical deal.

The figures are common market terms, meant to be edited: an offer created with a vertical gets
its preset as its deal, and a deal written later changes only what it names (core/deals.py).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from clickback.core.commission import CpaRules, Deal, DealKind, RevShareTerms, Tier, TierBasis


class Vertical(StrEnum):
    CASINO = "casino"
    POKER = "poker"
    SPORTSBOOK = "sportsbook"
    EWALLET = "ewallet"


@dataclass(frozen=True, slots=True)
class Preset:
    events: tuple[str, ...]
    kind: DealKind
    cpa: CpaRules
    revshare: RevShareTerms


_GAMING = ("registration", "verification", "first_deposit", "deposit", "withdrawal", "bonus")
_PLAY = ("wager", "net_revenue", "chargeback")

PRESETS: Mapping[Vertical, Preset] = {
    # Casino NGR swings negative when a player wins big: carryover on, tiers by FTD volume.
    Vertical.CASINO: Preset(
        events=_GAMING + _PLAY,
        kind=DealKind.HYBRID,
        cpa=CpaRules(
            amount=Decimal(100),
            ftd_min=Decimal(20),
            deposits_min=Decimal(50),
            deposits_days=30,
            window_days=30,
            hold_days=30,
        ),
        revshare=RevShareTerms(
            percent=Decimal(25),
            tiers=(Tier(Decimal(10), Decimal(30)), Tier(Decimal(25), Decimal(35))),
            tier_basis=TierBasis.FTDS,
            negative_carryover=True,
        ),
    ),
    # Poker earns rake, which cannot go negative: RevShare without carryover; CPA on rake played.
    Vertical.POKER: Preset(
        events=_GAMING + _PLAY,
        kind=DealKind.REVSHARE,
        cpa=CpaRules(amount=Decimal(75), ftd_min=Decimal(20), wager_min=Decimal(50), window_days=60),
        revshare=RevShareTerms(percent=Decimal(30)),
    ),
    # Sportsbooks usually require turnover on top of the deposit to rule out bonus abuse.
    Vertical.SPORTSBOOK: Preset(
        events=_GAMING + _PLAY,
        kind=DealKind.CPA,
        cpa=CpaRules(
            amount=Decimal(80), ftd_min=Decimal(10), wager_min=Decimal(50), window_days=30, hold_days=14
        ),
        revshare=RevShareTerms(percent=Decimal(25)),
    ),
    # An e-wallet pays for a verified customer who funds the account; its revenue is fees.
    Vertical.EWALLET: Preset(
        events=("registration", "verification", "first_deposit", "deposit", "withdrawal", "chargeback"),
        kind=DealKind.CPA,
        cpa=CpaRules(amount=Decimal(30), require_verification=True, ftd_min=Decimal(10), window_days=60),
        revshare=RevShareTerms(percent=Decimal(20)),
    ),
}


def preset_deal(vertical: Vertical, currency: str) -> Deal:
    preset = PRESETS[vertical]
    return Deal(preset.kind, currency, preset.cpa, preset.revshare)
