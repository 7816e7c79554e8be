"""The postback tester's rules (ADR 13): what each parameter of a postback meant to intake, and
what a test conversion would earn and announce under its deal, computed, never booked."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from clickback.core.commission import Deal, PlayerEvent, qualify, revshare_period
from clickback.core.events import SIGNED_EVENTS, dedupe_family, normalise_event
from clickback.core.intake import field_of, json_pairs
from clickback.core.lifecycle import PAYABLE, Status, parse_status
from clickback.core.limits import MAX_PARAM_NAME_LEN, MAX_PARAM_VALUE_LEN, MAX_PARAMS
from clickback.core.model import AdvertiserNames
from clickback.core.money import money_text, parse_amount, parse_currency, parse_period
from clickback.core.outbound import Template, mask_url, notice

# Where a tester's click says it comes from: visible in exports and outbound {source} previews.
TEST_SOURCE = "clickback-tester"
# The events a CPA's rules count (registration, deposits, wagers...) when they are payable.
_QUALIFYING_STATUSES = frozenset(s.value for s in PAYABLE)
# What may come before a JSON body's "{" (core/redact's, intake's).
_JSON_LEADING = "\ufeff \t\r\n"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter as it arrived, and what intake made of it: the field it fills (None: ignored)
    and its value as read, or why it could not be read."""

    name: str
    value: str
    field: str | None
    understood: str


def read_parameters(query: str, names: AdvertiserNames, body: str = "") -> tuple[Parameter, ...]:
    """The parameters of a query string and a body (a form, or a JSON object), one by one, as
    intake reads them."""
    pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=None) + _body_pairs(body)
    cropped = [(name[:MAX_PARAM_NAME_LEN], value[:MAX_PARAM_VALUE_LEN]) for name, value in pairs[:MAX_PARAMS]]
    # An amount may be negative for the events that allow it only, as intake reads it.
    event = next((v.strip() for n, v in cropped if field_of(n) == "event"), "")
    signed = normalise_event(event, names.events) in SIGNED_EVENTS if event else False
    return tuple(_read(name, value, names, signed) for name, value in cropped)


def _body_pairs(body: str) -> list[tuple[str, str]]:
    if not body.strip():
        return []
    # A JSON object, as the postback log keeps one (core/redact reads a body the same way);
    # one the log cut short no longer parses, and shows no parameters.
    if body.lstrip(_JSON_LEADING).startswith("{"):
        pairs = json_pairs(body)
        return pairs if isinstance(pairs, list) else []
    return parse_qsl(body, keep_blank_values=True, max_num_fields=None)


def _read(name: str, value: str, names: AdvertiserNames, signed: bool) -> Parameter:
    field = field_of(name)
    if field is None:
        return Parameter(name, value, None, "ignored: not a parameter clickback reads")
    if field == "token":
        return Parameter(name, value, field, "the advertiser's token (masked)")
    return Parameter(name, value, field, _understood(field, value.strip(), names, signed))


def _understood(field: str, value: str, names: AdvertiserNames, signed: bool) -> str:
    if field == "event":
        return normalise_event(value, names.events)
    if field == "status":
        status = names.statuses.get(value.lower()) or parse_status(value)
        return status.value if status is not None else f"not a status word: {value!r}"
    if field == "payout":
        amount = parse_amount(value, signed=signed)
        if amount is None and parse_amount(value, signed=True) is not None:
            only = ", ".join(sorted(SIGNED_EVENTS))
            return f"not an amount for this event: {value!r} (only {only} may be negative)"
        return str(amount) if amount is not None else f"not an amount: {value!r}"
    if field == "currency":
        return parse_currency(value) or f"not a currency code: {value!r}"
    if field == "period":
        return parse_period(value) or f"not a month (YYYY-MM): {value!r}"
    return value


@dataclass(frozen=True, slots=True)
class CommissionPreview:
    """What the deal would book for the test click's conversions so far (nothing is booked)."""

    deal: str  # cpa, revshare, hybrid, or "" when the offer has no deal for the affiliate
    currency: str
    cpa_amount: Decimal | None = None
    cpa_qualified: bool = False
    cpa_explanation: str = ""
    revshare_percent: Decimal | None = None
    revshare_ngr: Decimal = Decimal(0)
    revshare_ftds: int = 0
    revshare_earnings: Decimal | None = None


def as_one_player(conversions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A test click's conversions as a real player's would be recorded: its earliest standing
    deposit is the first_deposit, every other one a deposit (a test click gets no player row, so
    intake names its deposits as sent)."""
    rows = [dict(c) for c in conversions]
    deposits = [r for r in rows if dedupe_family(r["event"]) == "deposit"]
    standing = [r for r in deposits if r["status"] in _QUALIFYING_STATUSES]
    first = min(standing, key=lambda r: (r["event_at"], r["id"]), default=None)
    for r in deposits:
        if r["status"] in _QUALIFYING_STATUSES:
            r["event"] = "first_deposit" if r is first else "deposit"
    return rows


def preview_commission(
    deal: Deal | None, country: str, conversions: Sequence[Mapping[str, Any]]
) -> CommissionPreview:
    """CPA qualification over the click's payable conversions (as one player's history) and one
    RevShare month of their NGR and first deposits, without carry-over from earlier months."""
    if deal is None:
        return CommissionPreview("", "")
    payable = [c for c in conversions if c["status"] in _QUALIFYING_STATUSES]
    preview = CommissionPreview(deal.kind.value, deal.currency)
    cpa: dict[str, Any] = {}
    if deal.cpa is not None:
        events = [
            PlayerEvent(c["id"], c["event"], c["event_at"], c["deal_amount"] or Decimal(0)) for c in payable
        ]
        verdict = qualify(deal.cpa, events, deal.currency)
        cpa = {
            "cpa_amount": deal.cpa_amount(country),
            "cpa_qualified": verdict is not None,
            "cpa_explanation": verdict.explanation if verdict is not None else "not yet: " + needs(deal),
        }
    share: dict[str, Any] = {}
    if deal.revshare is not None:
        ngr = sum(
            (c["deal_amount"] or Decimal(0) for c in payable if c["event"] == "net_revenue"), Decimal(0)
        )
        ftds = sum(1 for c in payable if c["event"] == "first_deposit")
        month = revshare_period(deal.revshare, deal.currency, ngr, ftds, Decimal(0))
        share = {
            "revshare_percent": month.percent,
            "revshare_ngr": ngr,
            "revshare_ftds": ftds,
            "revshare_earnings": month.earnings,
        }
    return CommissionPreview(preview.deal, preview.currency, **cpa, **share)


def needs(deal: Deal) -> str:
    """A CPA's rules in words, for a player who has not met them yet."""
    assert deal.cpa is not None
    r = deal.cpa
    parts = []

    def money(amount: Decimal) -> str:
        return money_text(amount, deal.currency)

    if r.require_registration:
        parts.append("a registration")
    if r.require_verification:
        parts.append("a verification")
    if r.ftd_min is not None:
        parts.append(f"a first deposit of at least {money(r.ftd_min)}")
    if r.deposits_min is not None:
        days = f" within {r.deposits_days} days" if r.deposits_days is not None else ""
        parts.append(f"deposits of at least {money(r.deposits_min)}{days}")
    if r.wager_min is not None:
        parts.append(f"wagers of at least {money(r.wager_min)}")
    if r.window_days is not None:
        parts.append(f"all within {r.window_days} days")
    return ", ".join(parts) + f" (amounts in {deal.currency})" if parts else "any payable event"


@dataclass(frozen=True, slots=True)
class OutboundPreview:
    """An outbound postback a conversion would fire: rendered as the dispatcher would send it,
    secrets in the URL masked."""

    template_id: int
    event: str
    status: str
    method: str
    url: str
    body: str
    content_type: str


def preview_outbound(
    templates: Sequence[Template],
    conversion: Mapping[str, Any],
    *,
    source: str,
    lp: str,
    commission: Decimal,
    currency: str,
) -> tuple[OutboundPreview, ...]:
    status = Status(conversion["status"])
    found = []
    for t in templates:
        if not t.fires_on(conversion["affiliate_id"], conversion["offer_id"], conversion["event"], status):
            continue
        values = notice(
            conversion,
            status.value,
            source=source,
            lp=lp,
            commission=commission,
            currency=currency,
            delivery_id=f"test-{conversion['id']}",
        )
        url, body = t.render(values)
        found.append(
            OutboundPreview(
                t.id, conversion["event"], status.value, t.method.value, mask_url(url), body, t.content_type
            )
        )
    return tuple(found)


def qualified_cpa_notice(
    conversion: Mapping[str, Any], amount: Decimal, currency: str, at: datetime
) -> dict[str, Any]:
    """The qualified_cpa conversion a CPA's qualification would add (what outbound postbacks on
    qualified_cpa announce), as a row to preview them with."""
    return {
        **conversion,
        "event": "qualified_cpa",
        "status": Status.APPROVED.value,
        "txn_id": None,
        "payout": amount,
        "currency": currency,
        "event_at": at,
    }
