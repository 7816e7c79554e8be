"""What reports count, each figure defined once (docs/reports.md has the same list in words).

Stored measures are sums a rollup row can add up: counts, and money per currency. Derived metrics
(rates, EPC, profit, player value) are computed from a row's sums, never summed themselves.
Money never mixes kinds (a deposit is not a commission) nor currencies: every money figure is a
{currency: amount} mapping until a report asks for one currency (converted at recorded rates).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from clickback.core.lifecycle import PAYABLE, Status
from clickback.core.money import money_text

# Player money: what a player did with their own money. Its amount is never revenue.
PLAYER_MONEY = frozenset(
    {"first_deposit", "deposit", "withdrawal", "bonus", "wager", "net_revenue", "chargeback"}
)
# Events whose amount is not what the advertiser pays: player money, and the qualified_cpa that
# clickback books with a CPA (its amount is the affiliate's commission). Their revenue is the
# offer's listed price for the event, if it lists one.
PRICED_ONLY = PLAYER_MONEY | {"qualified_cpa"}
DEPOSITS = frozenset({"first_deposit", "deposit"})
DECLINED = frozenset({Status.REJECTED, Status.CANCELLED})

# Click measures: counted by the click writer, at the click's time.
CLICK_COUNTS = ("clicks", "unique_clicks", "bot_clicks")
# Conversion measures: counted when a conversion is attributed and moved when its status changes.
CONVERSION_COUNTS = (
    "conversions",
    "approved",
    "pending",
    "declined",
    "registrations",
    "ftds",
    "deposits",
    # Standing (pending or approved) qualified_cpa conversions: every CPA qualification, over a
    # cap too (ADR 17), moved by its status as the rules or a person change it; what was paid is
    # the ledger's cpa_commission.
    "qualified_cpas",
)
# conversion_cost: what a CPA cost model (core/cost.py) pays for the conversion, and what a
# partner's RevShare takes of the commission it earned (added with the ledger entry).
CONVERSION_MONEY = ("ftd_amount", "deposit_amount", "ngr", "revenue", "conversion_cost")
# Ledger measures: added when an entry is appended (entries are never edited but for their status).
LEDGER_MONEY = ("cpa_commission", "revshare_commission")
# What clicks cost (CPC, CPM, the source's own figure), at the click's time like the click counts;
# bot_cost is the part of click_cost that bot clicks cost.
CLICK_MONEY = ("click_cost", "bot_cost")

COUNTS = CLICK_COUNTS + CONVERSION_COUNTS
MONEY = CONVERSION_MONEY + LEDGER_MONEY + CLICK_MONEY
MEASURES = COUNTS + MONEY
# Counted at the click's time whatever the report's date basis.
CLICK_MEASURES = CLICK_COUNTS + CLICK_MONEY

Sums = dict[str, int]
Money = dict[str, dict[str, Decimal]]  # measure -> currency -> amount


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one fact adds to a rollup row of its currency ('' when it carries no money)."""

    currency: str
    values: Mapping[str, int | Decimal]


def conversion_contributions(
    event: str,
    status: Status,
    payout: Decimal,
    currency: str,
    offer_price: tuple[Decimal, str] | None,
    cost: tuple[Decimal, str] | None = None,
) -> list[Contribution]:
    """A conversion's figures while it holds `status`. Counts by status take every conversion;
    the event's figures only a payable one (pending or approved). `offer_price` is what the offer
    lists for the event (amount, currency), if it lists it: the revenue of player money. `cost`:
    what the link's CPA cost model pays for it (amount, currency), if it pays."""
    counts: dict[str, int | Decimal] = {
        "approved": int(status == Status.APPROVED),
        "pending": int(status == Status.PENDING),
        "declined": int(status in DECLINED),
    }
    money: dict[str, int | Decimal] = {}
    revenue: tuple[Decimal, str] | None = None
    if status in PAYABLE:
        counts["conversions"] = 1
        if event == "registration":
            counts["registrations"] = 1
        if event == "first_deposit":
            counts["ftds"] = 1
            money["ftd_amount"] = payout
        if event in DEPOSITS:
            counts["deposits"] = 1
            money["deposit_amount"] = payout
        if event == "net_revenue":
            money["ngr"] = payout
        if event == "qualified_cpa":
            counts["qualified_cpas"] = 1
        if event not in PRICED_ONLY:
            revenue = (payout, currency)
        elif offer_price is not None:
            revenue = offer_price
    by_currency: dict[str, dict[str, int | Decimal]] = {currency: counts | money}
    extra = [("revenue", revenue), ("conversion_cost", cost if status in PAYABLE else None)]
    for name, amount in extra:
        if amount is not None and amount[0]:
            by_currency.setdefault(amount[1], {})[name] = amount[0]
    return [Contribution(c, values) for c, values in by_currency.items()]


def ledger_contribution(kind: str, amount: Decimal, currency: str) -> Contribution:
    """A ledger entry's figures: its amount as CPA or RevShare commission, a reversal's negative.
    (Qualified players are counted by their qualified_cpa conversions, paid or not.)"""
    return Contribution(currency, {"cpa_commission" if kind == "cpa" else "revshare_commission": amount})


# --- derived metrics --------------------------------------------------------------------------


def ratio(numerator: int, denominator: int) -> float | None:
    """None, not an error, when there is nothing to divide by (no clicks, nothing decided)."""
    return numerator / denominator if denominator else None


def per(amounts: Mapping[str, Decimal], denominator: int) -> dict[str, Decimal] | None:
    """An amount per unit in each currency (EPC, player value), to 1/10,000."""
    if not denominator:
        return None
    return {c: (a / denominator).quantize(Decimal("0.0001")) for c, a in amounts.items()}


def added(*amounts: Mapping[str, Decimal], sign: tuple[int, ...] = ()) -> dict[str, Decimal]:
    """Amounts added currency by currency (each weighted by its sign, +1 unless told)."""
    out: dict[str, Decimal] = {}
    for i, each in enumerate(amounts):
        s = sign[i] if i < len(sign) else 1
        for currency, amount in each.items():
            out[currency] = out.get(currency, Decimal(0)) + s * amount
    return out


def returned(earned: Mapping[str, Decimal], cost: Mapping[str, Decimal]) -> dict[str, Decimal] | None:
    """ROI per currency: (earned - cost) / cost, to 1/10,000, where something was spent in it;
    None, not an error, where nothing was."""
    out = {
        c: ((earned.get(c, Decimal(0)) - spent) / spent).quantize(Decimal("0.0001"))
        for c, spent in cost.items()
        if spent
    }
    return out or None


def _commission(m: Money) -> dict[str, Decimal]:
    return added(m["cpa_commission"], m["revshare_commission"])


def _cost(m: Money) -> dict[str, Decimal]:
    return added(m["click_cost"], m["conversion_cost"])


def known_revenue(c: Sums, m: Money, *against: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The revenue of each currency it is known in: where the row holds revenue in it. A row
    with no payable conversion knows its revenue in every currency: none; so it is 0 in the
    currencies it holds what it is set `against` in (commission, cost). Where a row converted but
    holds no revenue in a currency (its offers list no price for player money), it is not known:
    not 0. Rollups keep sums, not how many amounts were known, so an amount summing to exactly 0
    in a currency (revenue priced at 0, a commission and its reversal) holds nothing there."""
    known = {currency: amount for currency, amount in m["revenue"].items() if amount}
    if not c["conversions"]:
        for amounts in against:
            for currency, amount in amounts.items():
                if amount:
                    known.setdefault(currency, Decimal(0))
    return known


def less(known: Mapping[str, Decimal], spent: Mapping[str, Decimal]) -> dict[str, Decimal] | None:
    """`known - spent` in each currency `known` holds (revenue, where it is known); None where
    it holds none."""
    out = {currency: amount - spent.get(currency, Decimal(0)) for currency, amount in known.items()}
    return out or None


def _profit(c: Sums, m: Money) -> dict[str, Decimal] | None:
    commission = _commission(m)
    return less(known_revenue(c, m, commission), commission)


def _revenue_profit(c: Sums, m: Money) -> dict[str, Decimal] | None:
    cost = _cost(m)
    return less(known_revenue(c, m, cost), cost)


def _revenue_roi(c: Sums, m: Money) -> dict[str, Decimal] | None:
    cost = _cost(m)
    known = known_revenue(c, m, cost)
    return returned(known, {currency: spent for currency, spent in cost.items() if currency in known})


@dataclass(frozen=True, slots=True)
class Derived:
    name: str
    formula: str
    compute: Callable[[Sums, Money], object]


DERIVED: tuple[Derived, ...] = (
    Derived(
        "commission",
        "cpa_commission + revshare_commission",
        lambda c, m: added(m["cpa_commission"], m["revshare_commission"]),
    ),
    # Only where revenue is known (known_revenue): an offer listing no price is not one earning 0.
    Derived("profit", "revenue - commission (per currency revenue is known in)", _profit),
    Derived("cr_registration", "registrations / clicks", lambda c, m: ratio(c["registrations"], c["clicks"])),
    Derived("cr_ftd", "ftds / clicks", lambda c, m: ratio(c["ftds"], c["clicks"])),
    Derived(
        "ftd_per_registration", "ftds / registrations", lambda c, m: ratio(c["ftds"], c["registrations"])
    ),
    Derived(
        "epc",
        "commission / clicks (per currency)",
        lambda c, m: per(added(m["cpa_commission"], m["revshare_commission"]), c["clicks"]),
    ),
    Derived(
        "approval_rate",
        "approved / (approved + declined)",
        lambda c, m: ratio(c["approved"], c["approved"] + c["declined"]),
    ),
    Derived(
        "player_value",
        "commission / ftds (per currency)",
        lambda c, m: per(added(m["cpa_commission"], m["revshare_commission"]), c["ftds"]),
    ),
    # The media buyer's figures: what the traffic cost against the commission it earned.
    Derived("cost", "click_cost + conversion_cost (per currency)", lambda c, m: _cost(m)),
    Derived("cpc", "click_cost / clicks (per currency)", lambda c, m: per(m["click_cost"], c["clicks"])),
    Derived(
        "cost_per_registration",
        "cost / registrations (per currency)",
        lambda c, m: per(_cost(m), c["registrations"]),
    ),
    Derived("cost_per_ftd", "cost / ftds (per currency)", lambda c, m: per(_cost(m), c["ftds"])),
    Derived(
        "traffic_profit",
        "commission - cost (per currency)",
        lambda c, m: added(_commission(m), _cost(m), sign=(1, -1)),
    ),
    Derived(
        "roi",
        "(commission - cost) / cost (per currency spent in)",
        lambda c, m: returned(_commission(m), _cost(m)),
    ),
    # The same for a network buying traffic itself: what the advertiser pays against the cost.
    Derived("revenue_profit", "revenue - cost (per currency revenue is known in)", _revenue_profit),
    Derived(
        "revenue_roi",
        "(revenue - cost) / cost (per currency spent in and revenue is known in)",
        _revenue_roi,
    ),
)
DERIVED_NAMES = tuple(d.name for d in DERIVED)
# Returns: a ratio of amounts in one currency, where exactly 0 is a figure.
RATIOS_OF_MONEY = frozenset({"roi", "revenue_roi"})
# Money figures held only in some currencies (where revenue is known, where something was
# spent): a currency left out has no figure, which is not 0, and exactly 0 is a figure.
PARTIAL_MONEY = RATIOS_OF_MONEY | {"profit", "revenue_profit"}
METRICS = MEASURES + DERIVED_NAMES
# Shown per currency. ROI is a ratio, but of amounts in one currency: per currency too.
MONEY_METRICS = frozenset(MONEY) | {
    "commission",
    "profit",
    "epc",
    "player_value",
    "cost",
    "cpc",
    "cost_per_registration",
    "cost_per_ftd",
    "traffic_profit",
    "roi",
    "revenue_profit",
    "revenue_roi",
}


def figures(counts: Sums, money: Money) -> dict[str, object]:
    """Every metric of a row (or of the totals) from its sums: counts, money per currency (zero
    amounts left out), then the derived metrics."""
    out: dict[str, object] = dict(counts)
    full = {name: money.get(name, {}) for name in MONEY}
    for name in MONEY:
        out[name] = _shown(full[name])
    for d in DERIVED:
        value = d.compute(counts, full)
        # A return or a profit of exactly nothing is a figure, not an absent one.
        out[d.name] = _shown(value, zeros=d.name in PARTIAL_MONEY) if isinstance(value, dict) else value
    return out


def _shown(amounts: Mapping[str, Decimal], *, zeros: bool = False) -> dict[str, Decimal]:
    """Amounts at their currency's decimals (more where they have more), zero ones left out
    unless `zeros`."""
    return {c: Decimal(money_text(a, c)) for c, a in sorted(amounts.items()) if a or zeros}
