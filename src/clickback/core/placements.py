"""Stop or scale: which placements (sub IDs, GEOs, landing pages…) lose the media buyer money, and
which earn more than their share and could take more budget.

Figures are in one currency (the report converts each amount at its day's recorded rate), so
that a placement's spend and earnings compare. What it earns is the affiliate's commission (a
media buyer's view), or the advertiser's revenue (a network buying traffic itself). ROI is
(earned - cost) / cost, as in reports:
a placement whose ROI is below `max_roi` (0 by default: it earns less than it costs) after
spending at least `min_spend` is to stop, the dearest loss first. One whose ROI reaches
`target_roi` and whose share of the profit is larger than its share of the spend has room to
grow: the best return first.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from clickback.core.metrics import returned


@dataclass(frozen=True, slots=True)
class Placement:
    key: Mapping[str, str | int]
    clicks: int
    cost: Decimal
    earned: Decimal
    profit: Decimal
    roi: Decimal | None
    spend_share: Decimal  # of all the spend in the report
    profit_share: Decimal  # of all the profit made by placements that made one


@dataclass(frozen=True, slots=True)
class Verdicts:
    stop: list[Placement]
    scale: list[Placement]


def stop_or_scale(
    rows: Iterable[tuple[Mapping[str, str | int], Mapping[str, object]]],
    currency: str,
    *,
    min_spend: Decimal,
    max_roi: Decimal,
    target_roi: Decimal,
    limit: int,
    earned: str = "commission",
) -> Verdicts:
    """`rows`: a report's (key, metrics) with money in `currency` only; `earned`: the metric
    that is what a placement earns (commission or revenue)."""
    seen = []
    for key, m in rows:
        cost = _amount(m["cost"], currency)
        earnings = _amount(m[earned], currency)
        seen.append((key, int(str(m["clicks"])), cost, earnings, earnings - cost))
    spent = sum((cost for _, _, cost, _, _ in seen), Decimal(0))
    made = sum((profit for *_, profit in seen if profit > 0), Decimal(0))
    placements = [
        Placement(
            key,
            clicks,
            cost,
            earnings,
            profit,
            (returned({currency: earnings}, {currency: cost}) or {}).get(currency),
            _share(cost, spent),
            _share(max(profit, Decimal(0)), made),
        )
        for key, clicks, cost, earnings, profit in seen
    ]
    stop = [p for p in placements if p.roi is not None and p.cost >= min_spend and p.roi < max_roi]
    scale = [
        p for p in placements if p.roi is not None and p.roi >= target_roi and p.profit_share > p.spend_share
    ]
    stop.sort(key=lambda p: (p.profit, -p.cost))
    scale.sort(key=lambda p: (-(p.roi or 0), -p.profit))
    return Verdicts(stop[:limit], scale[:limit])


def _amount(value: object, currency: str) -> Decimal:
    if not isinstance(value, Mapping):
        return Decimal(0)
    return Decimal(value.get(currency, 0))


def _share(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole).quantize(Decimal("0.0001")) if whole else Decimal(0)
