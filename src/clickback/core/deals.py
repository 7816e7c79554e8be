"""What a PUT of a deal makes of the deal in force: it changes only the fields it names.

The deal in force for an offer and affiliate is the affiliate's own deal, else the offer's
default deal (the store finds these), else the offer's vertical preset. A request's `cpa` and
`revshare` change field by field too; a field given as null removes that rule. A CPA amount finer
than the currency's minor unit is refused.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

from clickback.core.commission import CpaRules, Deal, DealKind, RevShareTerms
from clickback.core.money import finer_than_minor_unit
from clickback.core.verticals import Vertical, preset_deal


@dataclass(frozen=True, slots=True)
class DealChange:
    """The fields a request names: `cpa` and `revshare` map field names to values (None removes
    that rule); `removed` lists the parts given as null, which go altogether."""

    kind: DealKind | None = None
    currency: str | None = None
    cpa: Mapping[str, Any] | None = None
    revshare: Mapping[str, Any] | None = None
    removed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DealProblem:
    loc: tuple[str, ...]  # the request field at fault, e.g. ("cpa", "amount")
    message: str


Terms = TypeVar("Terms", CpaRules, RevShareTerms)


def changed_deal(
    stored: Deal | None, change: DealChange, offer_currency: str, vertical: str
) -> Deal | DealProblem:
    """The deal after `change`. `stored`: the affiliate's own deal, else the offer's default;
    None when neither exists, and then the offer's vertical preset is in force, if it has one."""
    current = stored or (preset_deal(Vertical(vertical), offer_currency) if vertical else None)
    cpa = _changed_terms(
        "cpa", "amount", CpaRules, current.cpa if current else None, change.cpa, "cpa" in change.removed
    )
    if isinstance(cpa, DealProblem):
        return cpa
    revshare = _changed_terms(
        "revshare",
        "percent",
        RevShareTerms,
        current.revshare if current else None,
        change.revshare,
        "revshare" in change.removed,
    )
    if isinstance(revshare, DealProblem):
        return revshare
    kind = change.kind or (current.kind if current else None)
    if kind is None:
        kind = DealKind.HYBRID if cpa and revshare else DealKind.CPA if cpa else DealKind.REVSHARE
    if kind in (DealKind.CPA, DealKind.HYBRID) and cpa is None:
        return DealProblem(("cpa",), f"a {kind} deal needs cpa terms")
    if kind in (DealKind.REVSHARE, DealKind.HYBRID) and revshare is None:
        return DealProblem(("revshare",), f"a {kind} deal needs revshare terms")
    currency = change.currency or (current.currency if current else offer_currency)
    return _too_fine(cpa, currency) or Deal(kind, currency, cpa, revshare)


def _too_fine(cpa: CpaRules | None, currency: str) -> DealProblem | None:
    """A CPA is booked as configured, so its amounts must be payable in the deal's currency (an
    amount inherited from the deal in force too, when the change is to the currency)."""
    if cpa is None:
        return None
    amounts: list[tuple[tuple[str, ...], Decimal]] = [(("cpa", "amount"), cpa.amount)]
    amounts += [(("cpa", "geo_amounts", country), a) for country, a in sorted(cpa.geo_amounts.items())]
    for loc, amount in amounts:
        if (why := finer_than_minor_unit(amount, currency)) is not None:
            return DealProblem(loc, why)
    return None


def _changed_terms(
    part: str,
    required: str,
    make: type[Terms],
    current: Terms | None,
    given: Mapping[str, Any] | None,
    removed: bool,
) -> Terms | DealProblem | None:
    if removed:
        return None
    if given is None:
        return current
    if required in given and given[required] is None:
        return DealProblem(
            (part, required), f"{part} terms cannot do without {required}: give one, or set {part} to null"
        )
    if current is not None:
        return replace(current, **given)
    if required not in given:
        return DealProblem((part, required), f"no {part} terms are in force to start from: give {required}")
    return make(**given)
