"""The comparison of a reconciliation (issue 15, ADR 20): for each player and month, what the
operator's report says against what clickback recorded, in one class with its evidence, and the
summary per affiliate and month.

The classes, in the order they are decided (the first that holds):

    attributed_elsewhere   the operator's tracking code is another affiliate's click or link
    missing_in_clickback   the operator counts a registration or FTD clickback never received
    missing_at_operator    clickback has a registration or FTD the operator does not count
    cpa_disagrees          one side paid a CPA, the other did not
    amount_differs         deposits, NGR or commission differ by more than the minor unit
    matched

An item's difference is the operator's commission less clickback's, in the operator's currency;
the summary splits an affiliate's month's difference by class. Known causes of a differing
amount are named with the part they explain: a chargeback, a RevShare rate, a CPA the operator
says did not qualify, a negative carryover, an exchange rate.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from clickback.core.commission import convert
from clickback.core.limits import MAX_PAYOUT
from clickback.core.money import minor_unit, money_text
from clickback.core.reconcile import Field, OperatorFigures

ZERO = Decimal(0)


class Kind(StrEnum):
    MATCHED = "matched"
    MISSING_IN_CLICKBACK = "missing_in_clickback"
    MISSING_AT_OPERATOR = "missing_at_operator"
    ATTRIBUTED_ELSEWHERE = "attributed_elsewhere"
    AMOUNT_DIFFERS = "amount_differs"
    CPA_DISAGREES = "cpa_disagrees"


# The classes whose operator figure can be accepted (service/reconciliations.accept, and the
# page's button): what clickback lacks booked through the intake, what the operator does not count
# rejected through the status change. A matched item has nothing to book, and a report does not
# move a player to another affiliate (attribution is for life: docs/commissions.md).
ACCEPTABLE = frozenset(
    {Kind.MISSING_IN_CLICKBACK, Kind.MISSING_AT_OPERATOR, Kind.CPA_DISAGREES, Kind.AMOUNT_DIFFERS}
)


class Cause(StrEnum):
    CHARGEBACK = "chargeback"
    RATE = "rate"
    CPA_NOT_QUALIFIED = "cpa_not_qualified"
    NEGATIVE_CARRYOVER = "negative_carryover"
    EXCHANGE_RATE = "exchange_rate"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A postback of the player or their click that the intake refused (the postback log)."""

    postback_id: int
    received_at: str
    reason: str
    detail: str


@dataclass(slots=True)
class ClickbackFigures:
    """What clickback recorded of one player in one month. Deposits, chargebacks and NGR are in
    `currency` (the conversions' own, as the advertiser sent them); CPA and RevShare in
    `ledger_currency` (the deal's)."""

    player_id: str
    month: str
    known: bool = False  # a player row exists
    affiliate_id: int | None = None
    click_id: str = ""
    link_code: str = ""
    currency: str | None = None
    registered_on: date | None = None
    ftd_on: date | None = None
    ftd_amount: Decimal = ZERO
    deposits: Decimal = ZERO
    chargebacks: Decimal = ZERO
    ngr: Decimal = ZERO
    ledger_currency: str | None = None
    cpa: Decimal = ZERO
    revshare: Decimal = ZERO
    revshare_percent: Decimal | None = None
    # The affiliate's month's carry-in (negative: an earlier month's loss still being paid off).
    carry_in: Decimal = ZERO
    qualified_on: date | None = None
    cpa_rules: str = ""
    conversions: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    # The affiliate the operator's tracking code names (a click or a link of clickback's), if any.
    code_affiliate_id: int | None = None
    code_is_ours: bool = False
    # Conversions whose amount could not be brought into `currency` (no rate for the month),
    # noted as the comparison notes its own conversions ("EUR→USD 2026-11: no rate"): their
    # amounts are counted as they are, which the evidence must say.
    unconverted: list[str] = field(default_factory=list)

    @property
    def has_events(self) -> bool:
        return self.registered_on is not None or self.ftd_on is not None

    @property
    def active(self) -> bool:
        """Anything clickback counts for the month: an event, an amount or a commission."""
        return self.has_events or any((self.deposits, self.ngr, self.cpa, self.revshare, self.chargebacks))


@dataclass(frozen=True, slots=True)
class Item:
    player_id: str
    month: str
    kind: Kind
    affiliate_id: int | None
    currency: str | None
    operator: Mapping[str, Any]
    clickback: Mapping[str, Any]
    difference: Decimal
    causes: tuple[tuple[Cause, Decimal, str], ...]
    evidence: Mapping[str, Any]
    lines: tuple[int, ...]


Rates = Mapping[tuple[str, str, str], Decimal]  # (base, quote, month) -> rate


def compare(
    operator: OperatorFigures | None,
    ours: ClickbackFigures,
    rates: Rates,
    columns: Collection[Field],
    default_currency: str | None = None,
) -> Item:
    """One player's month. `operator` None: the report does not list the player (clickback has
    them). `rates` bring clickback's amounts into the operator's currency where they differ;
    `columns`: the fields the report has (a report without sign-up dates says nothing of them)."""
    currency = (operator.currency if operator else None) or ours.currency or default_currency
    notes: list[str] = list(ours.unconverted)
    into = _Converter(rates, currency, ours.month, notes)
    cb_deposits = into(ours.deposits, ours.currency)
    cb_ngr = into(ours.ngr, ours.currency)
    cb_chargebacks = into(ours.chargebacks, ours.currency)
    cb_ftd = into(ours.ftd_amount, ours.currency)
    cb_cpa = into(ours.cpa, ours.ledger_currency)
    cb_revshare = into(ours.revshare, ours.ledger_currency)
    cb_commission = cb_cpa + cb_revshare
    op_commission = operator.commission_total if operator else ZERO
    difference = op_commission - cb_commission
    unit = minor_unit(currency)

    evidence: dict[str, Any] = {
        "conversions": ours.conversions,
        "ledger": ours.entries,
        "refused_postbacks": [_refusal(r) for r in ours.refusals],
    }
    if notes:
        evidence["rates"] = notes
    if ours.cpa_rules:
        evidence["cpa_rules"] = ours.cpa_rules
        evidence["qualified_on"] = ours.qualified_on.isoformat() if ours.qualified_on else None
    clickback = {
        "known": ours.known,
        "affiliate_id": ours.affiliate_id,
        "click_id": ours.click_id,
        "registered_on": _day(ours.registered_on),
        "ftd_on": _day(ours.ftd_on),
        "ftd_amount": _text(cb_ftd),
        "deposits": _text(cb_deposits),
        "chargebacks": _text(cb_chargebacks),
        "ngr": _text(cb_ngr),
        "cpa": _text(cb_cpa),
        "revshare": _text(cb_revshare),
        "commission": _text(cb_commission),
    }
    op_json = _operator_json(operator)
    causes: list[tuple[Cause, Decimal, str]] = []

    def item(kind: Kind) -> Item:
        return Item(
            ours.player_id,
            ours.month,
            kind,
            ours.affiliate_id if ours.affiliate_id is not None else ours.code_affiliate_id,
            currency,
            op_json,
            clickback,
            difference,
            tuple(causes),
            evidence,
            tuple(operator.lines) if operator else (),
        )

    if operator is None:
        evidence["reported_by"] = _postbacks_of(ours.conversions)
        return item(Kind.MISSING_AT_OPERATOR)
    if (
        ours.code_affiliate_id is not None
        and ours.affiliate_id is not None
        and ours.code_affiliate_id != ours.affiliate_id
    ):
        evidence["attribution"] = (
            f"the operator's tracking code {operator.tracking_code!r} is affiliate "
            f"{ours.code_affiliate_id}'s; clickback attributes the player to affiliate {ours.affiliate_id} "
            f"(click {ours.click_id})"
        )
        return item(Kind.ATTRIBUTED_ELSEWHERE)
    missing = _missing_events(operator, ours)
    if missing:
        evidence["missing_events"] = missing
        return item(Kind.MISSING_IN_CLICKBACK)
    extra = _extra_events(operator, ours, columns)
    if extra:
        evidence["missing_events"] = extra
        evidence["reported_by"] = _postbacks_of(ours.conversions)
        return item(Kind.MISSING_AT_OPERATOR)
    op_cpa = operator.cpa if operator.cpa is not None else None
    if op_cpa is not None and (op_cpa > 0) != (cb_cpa > 0):
        if cb_cpa > 0:
            causes.append(
                (Cause.CPA_NOT_QUALIFIED, -cb_cpa, "clickback booked a CPA the operator says did not qualify")
            )
        evidence["qualification"] = {
            "operator": "paid" if op_cpa > 0 else "not paid",
            "clickback": "qualified" if cb_cpa > 0 else "not qualified",
            "rules": ours.cpa_rules,
            "qualified_on": _day(ours.qualified_on),
        }
        return item(Kind.CPA_DISAGREES)
    differs = _differences(operator, cb_deposits, cb_ngr, cb_cpa, cb_revshare, cb_commission, unit)
    if differs:
        evidence["differences"] = differs
        causes.extend(
            _causes(
                operator, ours, cb_deposits, cb_ngr, cb_chargebacks, cb_revshare, difference, currency, notes
            )
        )
        return item(Kind.AMOUNT_DIFFERS)
    return item(Kind.MATCHED)


def amounts_now(
    ours: ClickbackFigures, rates: Rates, currency: str | None
) -> tuple[dict[str, str], list[str]]:
    """Clickback's deposits, chargebacks and NGR of a player's month in `currency`, as `compare`
    shows them, and the rates used (a missing one noted "no rate"): what an accepted
    amount_differs item books its difference against, at the time it is accepted."""
    notes: list[str] = list(ours.unconverted)
    into = _Converter(rates, currency, ours.month, notes)
    amounts = {
        "deposits": _text(into(ours.deposits, ours.currency)),
        "chargebacks": _text(into(ours.chargebacks, ours.currency)),
        "ngr": _text(into(ours.ngr, ours.currency)),
    }
    return amounts, notes


def amounts_to_accept(item: dict[str, Any], at: str) -> list[dict[str, str]]:
    """What makes clickback's deposits and NGR of an amount_differs item the operator's, each as
    an event of its own (nothing is edited in place; what the ledger books then follows from the
    deal): deposits the operator counts more of, a deposit of the difference; fewer, a chargeback
    of what clickback's deposits net of its own chargebacks exceed them by (none when its own
    chargebacks are the difference: the operator nets them out); NGR, a net_revenue report of the
    month for the difference, either way (RevShare is computed from it). Differences under the
    currency's minor unit are not differences (as in the comparison)."""
    op, cb, month = item["operator"], item["clickback"], item["month"]
    unit = minor_unit(item["currency"])
    out: list[dict[str, str]] = []
    if op.get("deposits") is not None:
        theirs, ours = Decimal(op["deposits"]), Decimal(cb["deposits"])
        net = ours - Decimal(cb.get("chargebacks") or 0)
        if theirs - ours >= unit:
            out.append({"event": "deposit", "payout": f"{theirs - ours:f}", "event_time": at})
        elif ours - theirs >= unit and net - theirs >= unit:
            out.append({"event": "chargeback", "payout": f"{net - theirs:f}", "event_time": at})
    if op.get("ngr") is not None:
        short = Decimal(op["ngr"]) - Decimal(cb["ngr"])
        if abs(short) >= unit:
            out.append({"event": "net_revenue", "payout": f"{short:f}", "event_time": at, "period": month})
    return out


def _refusal(r: Refusal) -> dict[str, Any]:
    return {
        "postback_id": r.postback_id,
        "received_at": r.received_at,
        "reason": r.reason,
        "detail": r.detail,
    }


# How a rate note (rate_note) says the rate is missing.
NO_RATE = "no rate"
TOO_LARGE = f"more than {MAX_PAYOUT} once converted"
# The notes of amounts left in their own currency: a difference across currencies is no amount.
UNCONVERTED = (NO_RATE, TOO_LARGE)


def rate_note(base: str, quote: str, month: str, rate: Decimal | None, too_large: bool = False) -> str:
    """An exchange rate a figure was converted at, or its absence, as the evidence shows it;
    `too_large`: an amount the rate made larger than any amount may be, left unconverted."""
    return f"{base}→{quote} {month}: " + (
        NO_RATE if rate is None else f"{rate}, {TOO_LARGE}" if too_large else f"{rate}"
    )


class _Converter:
    """Clickback's amounts into the operator's currency, at the month's rate; each rate used
    noted for the evidence (and a missing one)."""

    def __init__(self, rates: Rates, currency: str | None, month: str, notes: list[str]) -> None:
        self.rates, self.currency, self.month, self.notes = rates, currency, month, notes

    def __call__(self, amount: Decimal, source: str | None) -> Decimal:
        if not amount or source is None or self.currency is None or source == self.currency:
            return amount
        rate = self.rates.get((source, self.currency, self.month))
        converted = None if rate is None else convert(amount, rate)
        note = rate_note(
            source, self.currency, self.month, rate, too_large=rate is not None and converted is None
        )
        if note not in self.notes:
            self.notes.append(note)
        return amount if converted is None else converted


def _missing_events(op: OperatorFigures, ours: ClickbackFigures) -> list[str]:
    """The operator's registration or FTD of the month that clickback does not have."""
    out = []
    if not ours.known:
        return ["player"]
    if _in_month(op.registered_on, op.month) and ours.registered_on is None:
        out.append("registration")
    if _in_month(op.ftd_on, op.month) and ours.ftd_on is None:
        out.append("first_deposit")
    return out


def _extra_events(op: OperatorFigures, ours: ClickbackFigures, columns: Collection[Field]) -> list[str]:
    """Clickback's registration or FTD of the month the operator does not count. A report without
    a sign-up (or first deposit) column says nothing of them; with one, an empty cell does."""
    out = []
    if ours.registered_on is not None and op.registered_on is None and Field.REGISTRATION_DATE in columns:
        out.append("registration")
    ftd_columns = Field.FTD_DATE in columns or Field.FTD_AMOUNT in columns
    if ours.ftd_on is not None and op.ftd_on is None and not op.ftd_amount and ftd_columns:
        out.append("first_deposit")
    return out


def _in_month(day: date | None, month: str) -> bool:
    return day is not None and f"{day.year:04d}-{day.month:02d}" == month


def _differences(
    op: OperatorFigures,
    deposits: Decimal,
    ngr: Decimal,
    cpa: Decimal,
    revshare: Decimal,
    commission: Decimal,
    unit: Decimal,
) -> dict[str, dict[str, str]]:
    pairs = {
        "deposits": (op.deposits, deposits),
        "ngr": (op.ngr, ngr),
        "cpa": (op.cpa, cpa),
        "revshare": (op.revshare, revshare),
        "commission": (op.commission_total if _any_commission(op) else None, commission),
    }
    out = {}
    for name, (theirs, mine) in pairs.items():
        if theirs is not None and abs(theirs - mine) >= unit:
            out[name] = {
                "operator": _text(theirs),
                "clickback": _text(mine),
                "difference": _text(theirs - mine),
            }
    return out


def _any_commission(op: OperatorFigures) -> bool:
    return op.commission is not None or op.cpa is not None or op.revshare is not None


def _causes(
    op: OperatorFigures,
    ours: ClickbackFigures,
    deposits: Decimal,
    ngr: Decimal,
    chargebacks: Decimal,
    revshare: Decimal,
    difference: Decimal,
    currency: str | None,
    notes: Sequence[str],
) -> list[tuple[Cause, Decimal, str]]:
    """The known causes of a differing amount; their texts name amounts as the API shows them
    (core.money.money_text), in the item's currency unless they say another."""
    out: list[tuple[Cause, Decimal, str]] = []
    unit = minor_unit(currency)
    if chargebacks:
        # The operator nets chargebacks out of deposits or NGR where clickback keeps them apart
        # (or the other way round): the figures agree once the chargebacks are taken out.
        for name, theirs, mine in (("deposits", op.deposits, deposits), ("ngr", op.ngr, ngr)):
            if theirs is not None and abs(theirs - (mine - chargebacks)) < unit:
                detail = f"{name}: the operator nets {money_text(chargebacks, currency)} of chargebacks out"
                out.append((Cause.CHARGEBACK, theirs - mine, detail))
    if op.revshare is not None and op.ngr and ours.revshare_percent is not None:
        theirs_percent = (op.revshare / op.ngr * 100).quantize(Decimal("0.01"))
        if abs(theirs_percent - ours.revshare_percent) >= Decimal("0.01") and ours.carry_in >= 0:
            out.append(
                (
                    Cause.RATE,
                    op.revshare - revshare,
                    f"RevShare at {theirs_percent}% by the operator, {ours.revshare_percent}% by the deal",
                )
            )
    if op.revshare is not None and ours.carry_in < 0 and op.revshare != revshare:
        # The carry-in is the affiliate's month's, in the deal's currency: named when another.
        ledger = ours.ledger_currency
        named = f" {ledger}" if ledger and ledger != currency else ""
        carried = f"{money_text(ours.carry_in, ledger or currency)}{named}"
        out.append(
            (
                Cause.NEGATIVE_CARRYOVER,
                op.revshare - revshare,
                f"the affiliate's month carries in {carried} of earlier losses",
            )
        )
    if any("→" in n for n in notes) and not out:
        out.append((Cause.EXCHANGE_RATE, difference, "; ".join(notes)))
    return out


def _postbacks_of(conversions: Iterable[Mapping[str, Any]]) -> list[Any]:
    return [c.get("postback_id") for c in conversions if c.get("postback_id") is not None]


def _operator_json(op: OperatorFigures | None) -> dict[str, Any]:
    if op is None:
        return {}
    return {
        "tracking_code": op.tracking_code,
        "registered_on": _day(op.registered_on),
        "ftd_on": _day(op.ftd_on),
        "ftd_amount": _opt(op.ftd_amount),
        "deposits": _opt(op.deposits),
        "ngr": _opt(op.ngr),
        "cpa": _opt(op.cpa),
        "revshare": _opt(op.revshare),
        "commission": _text(op.commission_total),
    }


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _text(amount: Decimal) -> str:
    return f"{amount:f}"


def _opt(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount:f}"


@dataclass(slots=True)
class Summary:
    """One affiliate's month in one currency (affiliate None: players neither side attributes)."""

    affiliate_id: int | None
    month: str
    currency: str | None
    operator_total: Decimal = ZERO
    clickback_total: Decimal = ZERO
    items: dict[Kind, int] = field(default_factory=dict)
    explained: dict[Kind, Decimal] = field(default_factory=dict)

    @property
    def difference(self) -> Decimal:
        return self.operator_total - self.clickback_total

    def as_json(self) -> dict[str, Any]:
        return {
            "affiliate_id": self.affiliate_id,
            "month": self.month,
            "currency": self.currency,
            "operator_total": _text(self.operator_total),
            "clickback_total": _text(self.clickback_total),
            "difference": _text(self.difference),
            "items": {k.value: n for k, n in self.items.items()},
            "explained": {k.value: _text(v) for k, v in self.explained.items()},
        }


def summarise(items: Iterable[Item]) -> list[Summary]:
    """Per affiliate, month and currency: both totals, the difference, and how much of it each
    class explains (the classes' parts add up to the difference)."""
    out: dict[tuple[int, str, str], Summary] = {}
    for it in items:
        key = (it.affiliate_id or 0, it.month, it.currency or "")
        s = out.get(key)
        if s is None:
            s = out[key] = Summary(it.affiliate_id, it.month, it.currency)
        s.operator_total += Decimal(it.operator.get("commission") or 0)
        s.clickback_total += Decimal(it.clickback["commission"])
        s.items[it.kind] = s.items.get(it.kind, 0) + 1
        if it.difference:
            s.explained[it.kind] = s.explained.get(it.kind, ZERO) + it.difference
    return [out[k] for k in sorted(out)]
