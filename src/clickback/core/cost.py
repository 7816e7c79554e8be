"""What traffic costs: a tracking link's cost model, and the cost of one click or conversion.

A media buyer pays for each click (CPC, possibly per GEO; CPM, a thousandth of its rate a click),
for each conversion of one event (CPA), a share of the commission the traffic earns to the
partner who brought it (RevShare), or what the traffic source says a click cost, passed on the
link (`?cost=0.05`, the name Keitaro, Binom, Voluum and RedTrack all accept). The cost of a
click is worked out on the click path from the link in memory: a lookup, never a query.

Amounts are kept as integers of 1/10,000 of their currency, as every money column is (a cost
per click is small: a CPM of 2.50 is 0.0025 a click). A rate whose per-click cost is finer than
that is refused when the model is saved, not rounded click by click.

A cost passed on the link that cannot be right (not a number, negative, above MAX_CLICK_COST, an
unknown currency) is refused as a field: the click is still recorded and redirected, without a
cost, and the refusal is counted with its reason like a refused click's.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import NamedTuple

from clickback.core.money import CURRENCIES, parse_amount
from clickback.core.reasons import Reason

COST_SCALE = 10_000  # units of 1/10,000 of the currency, as tables.Money keeps money
# The most one click may cost when its source says so: a bid above this is a typo or an attack
# on the reports, not a price (the dearest search clicks cost a few hundred).
MAX_CLICK_COST = Decimal(1_000)
# The largest rate a model may name (a CPM or a CPA is dearer than a click).
MAX_RATE = Decimal(1_000_000)
# Query parameters a source puts its cost (and, optionally, its currency) in.
COST_PARAMETER = "cost"
COST_CURRENCY_PARAMETER = "cost_currency"


class CostKind(StrEnum):
    NONE = "none"
    CPC = "cpc"  # `amount` a click, or the click's country's amount in `countries`
    CPM = "cpm"  # `amount` per thousand clicks, charged a thousandth a click
    CPA = "cpa"  # `amount` per payable conversion of `event`
    REVSHARE = "revshare"  # `percent` of every commission its traffic earns, to a partner
    SOURCE = "source"  # what the traffic source passes on the link, in `currency` unless it says


class ClickCost(NamedTuple):
    """A click's cost: units of 1/10,000 of `currency` ("" and 0 when it costs nothing), and the
    reason a cost passed on the link was refused, if one was."""

    units: int = 0
    currency: str = ""
    refused: Reason | None = None


FREE = ClickCost()


class CostError(ValueError):
    """A cost model that cannot be kept: which field, and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class CostModel:
    kind: CostKind = CostKind.NONE
    currency: str = ""
    amount: Decimal = Decimal(0)
    # CPC by the click's country (ISO 3166 alpha-2, as enrichment gives it); others pay `amount`.
    countries: Mapping[str, Decimal] = field(default_factory=dict)
    event: str = ""  # CPA: the event paid for
    percent: Decimal = Decimal(0)  # REVSHARE: the partner's share of each commission, to 0.01
    # Whether bot clicks are charged (CPC, CPM): sources bill them, so they are unless told. A
    # cost the source passes is always taken: it billed that click.
    bots: bool = True
    # Precomputed: units a click, and by country.
    _units: int = field(default=0, init=False, compare=False, repr=False)
    _by_country: Mapping[str, int] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind in (CostKind.CPC, CostKind.CPM):
            per = Decimal(1000) if self.kind is CostKind.CPM else Decimal(1)
            object.__setattr__(self, "_units", _units(self.amount / per, "amount"))
            object.__setattr__(
                self, "_by_country", {c: _units(a, f"countries.{c}") for c, a in self.countries.items()}
            )

    def of_click(self, country: str, bot: bool, params: Mapping[str, str]) -> ClickCost:
        """What one click costs. `params`: the click's query parameters (SOURCE reads its cost there)."""
        kind = self.kind
        if kind is CostKind.CPC or kind is CostKind.CPM:
            if bot and not self.bots:
                return FREE
            units = self._by_country.get(country, self._units) if self._by_country else self._units
            return ClickCost(units, self.currency) if units else FREE
        if kind is CostKind.SOURCE:
            return passed_cost(params, self.currency)
        return FREE

    def of_conversion(self, event: str) -> tuple[Decimal, str] | None:
        """What a payable conversion of `event` costs (CPA), as (amount, currency)."""
        if self.kind is CostKind.CPA and event == self.event and self.amount:
            return self.amount, self.currency
        return None

    def of_commission(self, amount: Decimal) -> Decimal:
        """The partner's share (REVSHARE) of a commission in its own currency: a reversal's too,
        negative. Whole 1/10,000s, cut toward zero, as integer arithmetic on stored units does
        (the raw-table reports compute it so)."""
        if self.kind is not CostKind.REVSHARE or not self.percent:
            return Decimal(0)
        return Decimal(share_units(int(amount * COST_SCALE), basis_points(self.percent))) / COST_SCALE


NO_COST = CostModel()


def passed_cost(params: Mapping[str, str], currency: str) -> ClickCost:
    """The cost a traffic source passed on the link, checked: a refused one is no cost, with why."""
    raw = params.get(COST_PARAMETER)
    if raw is None or raw == "":
        return FREE
    stated = params.get(COST_CURRENCY_PARAMETER)
    if stated:
        if stated.upper() not in CURRENCIES:
            return ClickCost(refused=Reason.INVALID_COST_CURRENCY)
        currency = stated.upper()
    amount = parse_amount(raw[:32])
    if amount is None or amount > MAX_CLICK_COST:
        return ClickCost(refused=Reason.INVALID_COST)
    units = int(amount * COST_SCALE)
    return ClickCost(units, currency) if units else FREE


def basis_points(percent: Decimal) -> int:
    return int(percent * 100)


def share_units(units: int, points: int) -> int:
    """units x points / 10,000, cut toward zero (as SQL's integer division on both dialects)."""
    share = abs(units) * points // 10_000
    return share if units >= 0 else -share


def _units(amount: Decimal, name: str) -> int:
    scaled = amount * COST_SCALE
    if scaled != scaled.to_integral_value():
        raise CostError(name, f"{amount:f} a click is finer than 0.0001")
    return int(scaled)


def model_of(doc: Mapping[str, object] | None) -> CostModel:
    """A cost model from its stored form (`links.cost`, JSON), checked as when it was saved."""
    if not doc:
        return NO_COST
    try:
        kind = CostKind(str(doc.get("kind", "none")))
        amount = Decimal(str(doc.get("amount", "0")))
        raw_countries = doc.get("countries") or {}
        if not isinstance(raw_countries, Mapping):
            raise ValueError("countries is not a mapping")
        countries = {str(k): Decimal(str(v)) for k, v in raw_countries.items()}
    except (ValueError, InvalidOperation) as exc:
        raise CostError("cost", f"unreadable: {exc}") from exc
    model = CostModel(
        kind=kind,
        currency=str(doc.get("currency", "")),
        amount=amount,
        countries=countries,
        event=str(doc.get("event", "")),
        percent=Decimal(str(doc.get("percent", "0"))),
        bots=bool(doc.get("bots", True)),
    )
    check(model)
    return model


def check(model: CostModel) -> None:
    """Refuse a model that cannot be applied, naming the field."""
    if model.kind is CostKind.NONE:
        return
    if model.kind is CostKind.REVSHARE:
        if model.currency:
            raise CostError("currency", "a RevShare model's cost is in each commission's currency")
    elif model.currency not in CURRENCIES:
        raise CostError("currency", f"{model.currency!r} is not an ISO 4217 code")
    amounts = [("amount", model.amount), *((f"countries.{c}", a) for c, a in model.countries.items())]
    for name, amount in amounts:
        if not 0 <= amount <= MAX_RATE:
            raise CostError(name, f"{amount:f} is out of range (0 to {MAX_RATE})")
    if model.countries and model.kind is not CostKind.CPC:
        raise CostError("countries", "only a CPC model has amounts by country")
    if model.kind is CostKind.CPA and not model.event:
        raise CostError("event", "a CPA model names the event it pays for")
    if model.kind is not CostKind.CPA and model.event:
        raise CostError("event", "only a CPA model names an event")
    if model.kind in (CostKind.CPC, CostKind.CPM, CostKind.CPA) and not (model.amount or model.countries):
        raise CostError("amount", "a rate is needed")
    if model.kind is CostKind.REVSHARE:
        if not 0 < model.percent <= 100 or model.percent != model.percent.quantize(Decimal("0.01")):
            raise CostError("percent", f"{model.percent:f} is not a share from 0.01 to 100 with 2 decimals")
        if model.amount:
            raise CostError("amount", "a RevShare model takes a percent of each commission")
    elif model.percent:
        raise CostError("percent", "only a RevShare model takes a percent")


def stored(model: CostModel) -> dict[str, object] | None:
    """The model as `links.cost` keeps it (None: no cost)."""
    if model.kind is CostKind.NONE:
        return None
    return {
        "kind": model.kind.value,
        "currency": model.currency,
        "amount": str(model.amount),
        "countries": {c: str(a) for c, a in sorted(model.countries.items())},
        "event": model.event,
        "percent": str(model.percent),
        "bots": model.bots,
    }
