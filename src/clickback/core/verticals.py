"""Starting points for a new offer of a given vertical: its usual events and a typical deal.

The figures are common market terms, meant to be edited: a preset only fills in what the
operator did not specify when creating the offer's deal.
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


@dataclass(frozen=True, slots=True)
class DealProblem:
    part: str  # "cpa" or "revshare": the terms the deal lacks
    message: str


def complete_deal(
    kind: DealKind | None,
    currency: str,
    cpa: CpaRules | None,
    revshare: RevShareTerms | None,
    vertical: str,
) -> Deal | DealProblem:
    """The deal asked for, with what it leaves out taken from the offer's vertical preset."""
    preset = PRESETS.get(Vertical(vertical)) if vertical else None
    if preset is not None:
        cpa = cpa or preset.cpa
        revshare = revshare or preset.revshare
        kind = kind or preset.kind
    if kind is None:
        kind = DealKind.HYBRID if cpa and revshare else DealKind.CPA if cpa else DealKind.REVSHARE
    if kind in (DealKind.CPA, DealKind.HYBRID) and cpa is None:
        return DealProblem("cpa", f"a {kind} deal needs cpa terms")
    if kind in (DealKind.REVSHARE, DealKind.HYBRID) and revshare is None:
        return DealProblem("revshare", f"a {kind} deal needs revshare terms")
    return Deal(kind, currency, cpa, revshare)
