"""Starting points for a new offer of a given vertical: its usual events, a typical deal, and
which events show that a player is active (core/activity.py).

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
    # The events that make a player active in a month: the operator's own measure of "playing".
    activity: frozenset[str]


_GAMING = ("registration", "verification", "first_deposit", "deposit", "withdrawal", "bonus")
_PLAY = ("wager", "net_revenue", "chargeback")

# An offer without a vertical: any money the player put in or played, or an NGR report.
DEFAULT_ACTIVITY = frozenset({"first_deposit", "deposit", "wager", "net_revenue"})

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
        # Casinos count a player who deposited or played real money; a month's NGR report for the
        # player says they played, also when they won (negative NGR).
        activity=frozenset({"first_deposit", "deposit", "wager", "net_revenue"}),
    ),
    # Poker earns rake, which cannot go negative: RevShare without carryover; CPA on rake played.
    Vertical.POKER: Preset(
        events=_GAMING + _PLAY,
        kind=DealKind.REVSHARE,
        cpa=CpaRules(amount=Decimal(75), ftd_min=Decimal(20), wager_min=Decimal(50), window_days=60),
        revshare=RevShareTerms(percent=Decimal(30)),
        # Poker rooms count raked players (rake arrives as `wager`: core/events.py): money sits on a
        # poker account between sessions, so a deposit alone is not play.
        activity=frozenset({"wager", "net_revenue"}),
    ),
    # Sportsbooks usually require turnover on top of the deposit to rule out bonus abuse.
    Vertical.SPORTSBOOK: Preset(
        events=_GAMING + _PLAY,
        kind=DealKind.CPA,
        cpa=CpaRules(
            amount=Decimal(80), ftd_min=Decimal(10), wager_min=Decimal(50), window_days=30, hold_days=14
        ),
        revshare=RevShareTerms(percent=Decimal(25)),
        # A bet placed or money deposited. Not NGR: a sportsbook's NGR comes when bets settle, and
        # an outright bet settles months after it was placed, when the player may be long gone.
        activity=frozenset({"first_deposit", "deposit", "wager"}),
    ),
    # An e-wallet pays for a verified customer who funds the account; its revenue is fees.
    Vertical.EWALLET: Preset(
        events=("registration", "verification", "first_deposit", "deposit", "withdrawal", "chargeback"),
        kind=DealKind.CPA,
        cpa=CpaRules(amount=Decimal(30), require_verification=True, ftd_min=Decimal(10), window_days=60),
        revshare=RevShareTerms(percent=Decimal(20)),
        # A customer who moved money, in (a deposit) or out: a wallet earns fees either way.
        activity=frozenset({"first_deposit", "deposit", "withdrawal"}),
    ),
}


def activity_events(vertical: str) -> frozenset[str]:
    """The events that make a player of an offer of this vertical ("" for none) active."""
    try:
        return PRESETS[Vertical(vertical)].activity
    except ValueError:
        return DEFAULT_ACTIVITY


def preset_deal(vertical: Vertical, currency: str) -> Deal:
    preset = PRESETS[vertical]
    return Deal(preset.kind, currency, preset.cpa, preset.revshare)
