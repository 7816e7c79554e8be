"""What an affiliate earns for a player: CPA qualification, RevShare of NGR, and both (Hybrid).

Pure functions over values: the store gathers a player's events (already converted into the
deal's currency) and a period's NGR, these decide. Rounding rules (docs/commissions.md):
- an amount converted between currencies keeps 4 decimals (the ledger's scale), half-even;
- a commission is rounded once, to the deal currency's minor unit, half-up: a CPA amount as
  configured (`Deal.cpa_amount`), a RevShare on the period's total (never per event, so the sum
  of a period's ledger entries is exactly the period's RevShare).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum

from clickback.core.lifecycle import PAYABLE
from clickback.core.limits import MAX_PAYOUT
from clickback.core.money import minor_units, money_text, plain

# Events that move a player's deposits (chargebacks take money back out).
DEPOSIT_EVENTS = frozenset({"first_deposit", "deposit"})
# Events CPA rules read; of those, the ones whose arrival can only help a player qualify.
CPA_EVENTS = DEPOSIT_EVENTS | {"registration", "verification", "wager", "chargeback"}
_ONLY_ADD = DEPOSIT_EVENTS | {"verification", "wager"}
# Events whose amount a deal counts, so it must be in (or convertible into) the deal's currency.
AMOUNT_EVENTS = DEPOSIT_EVENTS | {"chargeback", "wager", "net_revenue"}
LEDGER_SCALE = Decimal("0.0001")
_PAYABLE_WORDS = frozenset(s.value for s in PAYABLE)


def round_commission(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), ROUND_HALF_UP)


def convert(amount: Decimal, rate: Decimal) -> Decimal | None:
    """`amount` at `rate`; None past MAX_PAYOUT either way, as no amount from outside may be.
    Amounts and rates are each bounded by it, their product is not: 10^9 at a rate of 10^6 did
    not fit the database's integer of 1/10,000 (a 500, the postback unlogged)."""
    converted = at_rate(amount, rate)
    return converted if abs(converted) <= MAX_PAYOUT else None


def at_rate(amount: Decimal, rate: Decimal) -> Decimal:
    """`amount` at `rate`, at the ledger's scale: an amount of clickback's own (a month's
    deficit, a tier's threshold), which no bound on amounts from outside applies to."""
    return (amount * rate).quantize(LEDGER_SCALE, ROUND_HALF_EVEN)


class DealKind(StrEnum):
    CPA = "cpa"
    REVSHARE = "revshare"
    HYBRID = "hybrid"


class EntryKind(StrEnum):
    CPA = "cpa"
    REVSHARE = "revshare"


class EntryStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVERSED = "reversed"


class TierBasis(StrEnum):
    NGR = "ngr"
    FTDS = "ftds"


@dataclass(frozen=True, slots=True)
class CpaRules:
    """Every condition set must hold, each counted from the player's registration (or first event)."""

    amount: Decimal
    geo_amounts: Mapping[str, Decimal] = field(default_factory=dict)
    require_registration: bool = True
    require_verification: bool = False
    ftd_min: Decimal | None = None
    deposits_min: Decimal | None = None
    deposits_days: int | None = None
    wager_min: Decimal | None = None
    # Conditions met later than this many days after the start do not count.
    window_days: int | None = None
    hold_days: int = 0

    def amount_for(self, country: str) -> Decimal:
        return self.geo_amounts.get(country, self.amount)


@dataclass(frozen=True, slots=True)
class Tier:
    """From `threshold` (NGR in the deal currency, or FTDs in the period) upwards, `percent`."""

    threshold: Decimal
    percent: Decimal


@dataclass(frozen=True, slots=True)
class RevShareTerms:
    percent: Decimal
    tiers: tuple[Tier, ...] = ()
    tier_basis: TierBasis = TierBasis.NGR
    negative_carryover: bool = False

    @property
    def ngr_tiers(self) -> bool:
        """Whether a threshold is an amount (of NGR), in the terms' currency."""
        return self.tier_basis is TierBasis.NGR and bool(self.tiers)

    def at_rate(self, rate: Decimal) -> "RevShareTerms":
        """The terms for a month in another currency than theirs: NGR thresholds at `rate`
        (FTD thresholds are counts)."""
        if not self.ngr_tiers:
            return self
        tiers = tuple(Tier(at_rate(t.threshold, rate), t.percent) for t in self.tiers)
        return replace(self, tiers=tiers)

    def percent_for(self, ngr: Decimal, ftds: int) -> Decimal:
        basis = ngr if self.tier_basis is TierBasis.NGR else Decimal(ftds)
        percent = self.percent
        for tier in sorted(self.tiers, key=lambda t: t.threshold):
            if basis >= tier.threshold:
                percent = tier.percent
        return percent


@dataclass(frozen=True, slots=True)
class Deal:
    kind: DealKind
    currency: str
    cpa: CpaRules | None = None
    revshare: RevShareTerms | None = None

    @property
    def pays_revshare(self) -> bool:
        """Whether the deal pays RevShare now: terms it holds under a CPA-only kind are kept
        for when it does again, and pay nothing meanwhile."""
        return self.revshare is not None and self.kind is not DealKind.CPA

    def cpa_amount(self, country: str) -> Decimal:
        """What a CPA books for a player from `country`. A deal refuses amounts finer than its
        currency's minor unit, but one stored before that rule may hold one (GBP 110.005):
        rounded here, half-up like every commission."""
        assert self.cpa is not None, "a deal without CPA terms books no CPA"
        return round_commission(self.cpa.amount_for(country), self.currency)


@dataclass(frozen=True, slots=True)
class PlayerEvent:
    """One payable (pending or approved) event of a player, its amount in the deal's currency."""

    conversion_id: int
    event: str
    at: datetime
    amount: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Qualified:
    at: datetime
    by: int  # the conversion whose arrival completed the rules
    because: tuple[int, ...]  # every conversion the rules counted
    explanation: str


def qualify(rules: CpaRules, events: Sequence[PlayerEvent], currency: str) -> Qualified | None:
    """The first moment the player met every rule, walking their events in time order; the
    explanation shows amounts as `currency` (the deal's) does."""
    ordered = sorted(events, key=lambda e: (e.at, e.conversion_id))
    if not ordered:
        return None
    registrations = [e for e in ordered if e.event == "registration"]
    start = registrations[0].at if registrations else ordered[0].at
    # A chargeback takes back a deposit already made, whenever it arrives: it counts from the start.
    charged_back = sum((e.amount for e in ordered if e.event == "chargeback"), Decimal(0))
    state = _Progress(rules, start, deposits=-charged_back, charged_back=charged_back)
    for e in ordered:
        if not state.within(e.at, rules.window_days):
            break
        state.add(e)
        if state.met():
            return Qualified(e.at, e.conversion_id, tuple(state.counted), state.explain(currency))
    return None


@dataclass(slots=True)
class _Progress:
    rules: CpaRules
    start: datetime
    registration: bool = False
    verification: bool = False
    ftd: Decimal | None = None
    deposits: Decimal = Decimal(0)
    wager: Decimal = Decimal(0)
    charged_back: Decimal = Decimal(0)
    counted: list[int] = field(default_factory=list)

    @property
    def ftd_net(self) -> Decimal | None:
        """The first deposit less the player's chargebacks, down to 0 at most. A chargeback names
        no deposit: it is taken from the first one first, the deposit a CPA pays for (depositing
        the baseline to qualify, then charging it back, is the fraud chargebacks catch)."""
        if self.ftd is None:
            return None
        return self.ftd - min(self.ftd, max(self.charged_back, Decimal(0)))

    def within(self, at: datetime, days: int | None) -> bool:
        return days is None or at <= self.start + timedelta(days=days)

    def add(self, e: PlayerEvent) -> None:
        used = True
        if e.event == "registration":
            self.registration = True
        elif e.event == "verification":
            self.verification = True
        elif e.event in DEPOSIT_EVENTS:
            if e.event == "first_deposit" and self.ftd is None:
                self.ftd = e.amount
            if self.within(e.at, self.rules.deposits_days):
                self.deposits += e.amount
        elif e.event == "wager":
            self.wager += e.amount
        else:
            used = False
        if used:
            self.counted.append(e.conversion_id)

    def met(self) -> bool:
        r = self.rules
        return (
            (self.registration or not r.require_registration)
            and (self.verification or not r.require_verification)
            and (r.ftd_min is None or ((ftd := self.ftd_net) is not None and ftd >= r.ftd_min))
            and (r.deposits_min is None or self.deposits >= r.deposits_min)
            and (r.wager_min is None or self.wager >= r.wager_min)
        )

    def explain(self, currency: str) -> str:
        r = self.rules
        parts = []

        def money(amount: Decimal | None) -> str:
            return "none" if amount is None else money_text(amount, currency)

        if r.require_registration:
            parts.append("registered")
        if r.require_verification:
            parts.append("verified")
        if r.ftd_min is not None:
            after = f" (after {money(self.charged_back)} of chargebacks)" if self.charged_back else ""
            parts.append(f"first deposit {money(self.ftd_net)}{after} ≥ {money(r.ftd_min)}")
        if r.deposits_min is not None:
            days = f" within {r.deposits_days} days" if r.deposits_days is not None else ""
            parts.append(f"deposits {money(self.deposits)} ≥ {money(r.deposits_min)}{days}")
        if r.wager_min is not None:
            parts.append(f"wagered {money(self.wager)} ≥ {money(r.wager_min)}")
        if r.window_days is not None:
            parts.append(f"all within {r.window_days} days of {self.start.date().isoformat()}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One CPA rule and whether the player's events met it: `on` the day it first held."""

    rule: str
    held: bool
    on: date | None
    detail: str

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "held": self.held,
            "on": self.on.isoformat() if self.on else None,
            "detail": self.detail,
        }


def check_rules(rules: CpaRules, events: Sequence[PlayerEvent], currency: str) -> tuple[RuleCheck, ...]:
    """Each rule of `rules` on its own, walking the player's events as `qualify` does (time order,
    chargebacks taken from the start, nothing after the window): whether it held, when it first
    did and with what figure, or what is missing. The evidence of a CPA disagreement: which rule
    the player met and which not, where `qualify` says only whether all did."""
    ordered = sorted(events, key=lambda e: (e.at, e.conversion_id))
    registrations = [e for e in ordered if e.event == "registration"]
    start = registrations[0].at if registrations else ordered[0].at if ordered else None
    charged_back = sum((e.amount for e in ordered if e.event == "chargeback"), Decimal(0))
    state = _Progress(
        rules, start or datetime.min.replace(tzinfo=UTC), deposits=-charged_back, charged_back=charged_back
    )

    def money(amount: Decimal) -> str:
        return f"{money_text(amount, currency)} {currency}"

    # (rule, the events it reads, whether it holds in the state so far, the figure it reads)
    tests: list[tuple[str, frozenset[str], Callable[[], bool], Callable[[], str]]] = []
    if rules.require_registration:
        tests.append(("registration", frozenset({"registration"}), lambda: state.registration, lambda: ""))
    if rules.require_verification:
        tests.append(("verification", frozenset({"verification"}), lambda: state.verification, lambda: ""))
    if (ftd_min := rules.ftd_min) is not None:
        tests.append(
            (
                f"first deposit ≥ {money(ftd_min)}",
                frozenset({"first_deposit"}),
                lambda: (ftd := state.ftd_net) is not None and ftd >= ftd_min,
                lambda: (
                    money(ftd) + (f" (after {money(charged_back)} of chargebacks)" if charged_back else "")
                    if (ftd := state.ftd_net) is not None
                    else ""
                ),
            )
        )
    if (deposits_min := rules.deposits_min) is not None:
        days = f" within {rules.deposits_days} days" if rules.deposits_days is not None else ""
        tests.append(
            (
                f"deposits ≥ {money(deposits_min)}{days}",
                DEPOSIT_EVENTS,
                lambda: state.deposits >= deposits_min,
                lambda: (
                    money(state.deposits)
                    + (f" (after {money(charged_back)} of chargebacks)" if charged_back else "")
                ),
            )
        )
    if (wager_min := rules.wager_min) is not None:
        tests.append(
            (
                f"wagered ≥ {money(wager_min)}",
                frozenset({"wager"}),
                lambda: state.wager >= wager_min,
                lambda: money(state.wager),
            )
        )
    held: dict[str, tuple[date, str]] = {}
    # Events after the window, by kind; chargebacks are not among them: they count from the
    # start, wherever they fall (as in qualify).
    late: list[str] = []
    for e in ordered:
        if e.event == "chargeback":
            continue
        if not state.within(e.at, rules.window_days):
            late.append(e.event)
            continue
        state.add(e)
        for rule, _, holds, figure in tests:
            if rule not in held and holds():
                held[rule] = (e.at.date(), figure())
    out = []
    for rule, _, _, figure in tests:
        if rule in held:
            on, shown = held[rule]
            out.append(
                RuleCheck(rule, True, on, f"held on {on.isoformat()}" + (f", {shown}" if shown else ""))
            )
        else:
            shown = figure()
            out.append(RuleCheck(rule, False, None, f"not held: {shown}" if shown else "missing"))
    if rules.window_days is not None and start is not None:
        until = (start + timedelta(days=rules.window_days)).date().isoformat()
        rule = f"within {rules.window_days} days of {start.date().isoformat()}"
        detail = (
            f"{len(late)} later event{'s' if len(late) != 1 else ''} not counted (after {until})"
            if late
            else f"every event by {until}"
        )
        # The window failed the player only if an event it left out is one a rule still unmet reads.
        unmet = set().union(*(reads for name, reads, _, _ in tests if name not in held))
        out.append(RuleCheck(rule, not unmet.intersection(late), None, detail))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RevSharePeriod:
    ngr: Decimal
    ftds: int
    carry_in: Decimal
    percent: Decimal
    earnings: Decimal
    carry_out: Decimal


def revshare_period(
    terms: RevShareTerms, currency: str, ngr: Decimal, ftds: int, carry_in: Decimal
) -> RevSharePeriod:
    """One month of RevShare. A negative month earns nothing; with negative carryover on, the
    deficit is also subtracted from the following months' NGR until it is used up."""
    percent = terms.percent_for(ngr, ftds)
    carry_in = carry_in if terms.negative_carryover else Decimal(0)
    base = ngr + carry_in
    if base < 0:
        return RevSharePeriod(
            ngr, ftds, carry_in, percent, Decimal(0), base if terms.negative_carryover else Decimal(0)
        )
    earnings = round_commission(base * percent / 100, currency)
    return RevSharePeriod(ngr, ftds, carry_in, percent, earnings, Decimal(0))


def crossing_day(period: str) -> date:
    """The day whose rate converts into a RevShare month what comes from another currency than
    the month's (a deficit carried in from a month of another one, a deal's NGR tiers): its
    first (the newest rate dated on or before it)."""
    return period_bounds(period)[0].date()


# The rate of `base` into `quote` on a day, None when none is on record.
RateOf = Callable[[str, str, date], Decimal | None]


@dataclass(frozen=True, slots=True)
class InMonthCurrency:
    """A RevShare month's terms and carry-in in the month's currency, and what was converted to
    get them (the notes say it in the month's ledger entry)."""

    terms: RevShareTerms
    carry_in: Decimal
    carry_note: str = ""
    terms_note: str = ""
    tiers_dropped: bool = False  # the deal's NGR tiers left out: no rate to convert them


def in_month_currency(
    currency: str,
    period: str,
    terms: RevShareTerms,
    terms_currency: str,
    carry: Decimal,
    carry_currency: str,
    rate: RateOf,
) -> InMonthCurrency:
    """A month priced wholly in its `currency`: a deficit carried from a month of another
    currency, and NGR tiers in another, converted at the rate of the month's first day. Without
    that rate the deficit is left out and the tiers are not applied (no more is paid on a guess),
    and the notes say so: a recomputation once the rate is on record books the difference."""
    day = crossing_day(period)
    terms_note = ""
    dropped = False
    if terms_currency != currency and terms.ngr_tiers:
        found = rate(terms_currency, currency, day)
        if found is None:
            terms, dropped = (
                replace(terms, tiers=()),
                True,
            )
            terms_note = (
                f"NGR tiers in {terms_currency} not applied: no {terms_currency}→{currency} rate on {day}"
            )
        else:
            terms, terms_note = terms.at_rate(found), f"NGR tiers in {terms_currency} at {plain(found)}"
    if not carry or carry_currency in ("", currency):
        return InMonthCurrency(terms, carry, "", terms_note, dropped)
    was = f"{money_text(carry, carry_currency)} {carry_currency}"
    found = rate(carry_currency, currency, day)
    if found is None:
        missing = f"{was} not converted: no {carry_currency}→{currency} rate on {day}"
        return InMonthCurrency(terms, Decimal(0), missing, terms_note, dropped)
    return InMonthCurrency(terms, at_rate(carry, found), f"{was} at {plain(found)}", terms_note, dropped)


def cpa_may_change(event: str, arrived: bool, qualified: bool) -> bool:
    """Whether an event's arrival (or a status change, `arrived` false) can change the player's
    CPA: a qualified player's new deposit, wager or verification cannot, and the rules never read
    NGR, withdrawals or bonuses. Anything else is re-decided from the player's whole history."""
    if event not in CPA_EVENTS:
        return False
    return not (arrived and qualified and event in _ONLY_ADD)


@dataclass(frozen=True, slots=True)
class MonthShare:
    """What one conversion adds to its affiliate's RevShare month: NGR (a net_revenue report's
    amount in the month's currency) or one FTD (a first deposit, in the month it was made)."""

    affiliate_id: int
    offer_id: int
    period: str
    ngr: Decimal = Decimal(0)
    ftds: int = 0


def month_share(
    event: str,
    status: str,
    affiliate_id: int | None,
    offer_id: int | None,
    period: str | None,
    at: datetime,
    deal_amount: Decimal | None,
    *,
    claim: bool,
) -> MonthShare | None:
    """A conversion counts in a month only while it is attributed and pending or approved, and
    is not a `claim`: a pixel conversion neither the advertiser's server has confirmed nor anyone
    approved. Anyone who opens an affiliate's link can fire the pixel with any amount, and a
    month's RevShare is approved once the month has ended, reviewed or not: a claim's NGR, or its
    FTD raising a tier, would pay the affiliate for what they wrote themselves (docs/pixel.md)."""
    if affiliate_id is None or offer_id is None or status not in _PAYABLE_WORDS or claim:
        return None
    counted = counted_month(event, period, at)
    if counted is None:
        return None
    if event == "net_revenue":
        return None if deal_amount is None else MonthShare(affiliate_id, offer_id, counted, ngr=deal_amount)
    return MonthShare(affiliate_id, offer_id, counted, ftds=1)


def counted_month(event: str, period: str | None, at: datetime) -> str | None:
    """The RevShare month an event counts in: an NGR report's period, a first deposit's month."""
    if event == "net_revenue":
        return period
    if event == "first_deposit":
        return period_of(at)
    return None


def rate_day(event: str, period: str | None, at: datetime) -> date:
    """The day whose exchange rate prices an amount: the day it happened; a month's NGR report
    at the latest on that month's last day (a late report is priced at its own month's rate)."""
    if event == "net_revenue" and period is not None:
        last = period_bounds(period)[1] - timedelta(days=1)
        return min(at.date(), last.date())
    return at.date()


def period_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in UTC."""
    nxt = next_period(period)
    return (
        datetime(int(period[:4]), int(period[5:]), 1, tzinfo=UTC),
        datetime(int(nxt[:4]), int(nxt[5:]), 1, tzinfo=UTC),
    )


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"
