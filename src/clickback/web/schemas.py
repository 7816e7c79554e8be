"""The JSON API's request and response shapes (and so its OpenAPI document)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from clickback.core import spans
from clickback.core.commission import EntryKind, EntryStatus
from clickback.core.events import STANDARD_EVENTS, normalise_event
from clickback.core.lifecycle import Status
from clickback.core.limits import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LEN,
    MAX_EVENT_LEN,
    MAX_NAME_LEN,
    MAX_PAGE_SIZE,
    MAX_PARAM_VALUE_LEN,
    MAX_PAYOUT,
    MAX_SUB_ID_LEN,
    MAX_TXN_ID_LEN,
    MAX_URL_LEN,
    PAYOUT_DECIMALS,
    RATE_DECIMALS,
)
from clickback.core.macros import TemplateError, compile_template
from clickback.core.money import money_text, parse_amount, parse_currency, plain, written_plainly
from clickback.core.outbound import MAX_BODY_TEMPLATE_LEN, MAX_MAPPED_STATUS_LEN
from clickback.core.outcome import Result
from clickback.core.reasons import BY_CODE

# Names are shown in pages and CSV and stored as text: no control characters (PostgreSQL refuses NUL).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
# Free text that may hold line breaks and tabs (a body template), still no NUL.
NO_NUL = r"^[^\x00]*$"
Name = Field(min_length=1, max_length=MAX_NAME_LEN, pattern=PRINTABLE)
# Database integer keys: anything larger cannot exist, and would overflow the drivers.
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
StatusWord = Literal["active", "paused"]
# An offer's, affiliate's or link's: archived instead of deleted where history refers to it (its
# clicks, conversions, commissions and reports stay); it takes no new click.
CatalogState = Literal["active", "paused", "archived"]
# How a postback arrived (core.intake S2S, PIXEL, RECON: a reconciliation's accepted figure).
Channel = Literal["s2s", "pixel", "recon"]
VerticalWord = Literal["casino", "poker", "sportsbook", "ewallet"]
PERIOD = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"
Period = Annotated[str, Field(pattern=PERIOD, examples=["2026-10"])]


def _written_plainly(decimals: int) -> BeforeValidator:
    """A number sent as text is read as a postback's amount is (core.money.parse_amount): digits
    with an optional dot. Decimal alone reads 1.5E+2 too, and a deal kept it so, shown so."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and not written_plainly(value, decimals):
            raise ValueError(
                f"write {value[:40]!r} as digits with an optional dot and at most {decimals} decimals"
                " (150.00), as in postbacks: no exponent (1.5E+2), plus sign or comma"
            )
        return value

    return BeforeValidator(check)


# Shown as digits with a dot, never in exponent notation (core.money.plain).
_PLAIN = PlainSerializer(plain, return_type=str, when_used="json")
Amount = Annotated[
    Decimal,
    _written_plainly(PAYOUT_DECIMALS),
    Field(ge=0, le=MAX_PAYOUT, decimal_places=PAYOUT_DECIMALS),
    _PLAIN,
]
Percent = Annotated[
    Decimal, _written_plainly(PAYOUT_DECIMALS), Field(ge=0, le=100, decimal_places=PAYOUT_DECIMALS), _PLAIN
]
Rate = Annotated[
    Decimal,
    _written_plainly(RATE_DECIMALS),
    Field(gt=0, le=MAX_PAYOUT, decimal_places=RATE_DECIMALS),
    _PLAIN,
]
Days = Annotated[int, Field(ge=0, le=3650)]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
CurrencyCode = Annotated[str, Field(pattern="^[A-Z]{3}$")]
ClickIdText = Annotated[str, Field(max_length=64, pattern=PRINTABLE)]
# A player ID or sub ID to look for (what intake keeps of them: MAX_SUB_ID_LEN).
IdText = Annotated[str, Field(min_length=1, max_length=MAX_SUB_ID_LEN, pattern=PRINTABLE)]


# Money is shown at its currency's precision, so each response model's field serializers read its
# own currency field; their `-> str` return types keep money a string in the OpenAPI document.
def _shown(amount: Decimal | None, currency: str | None) -> str | None:
    return None if amount is None else money_text(amount, currency)


def _per_currency(amounts: dict[str, Decimal]) -> dict[str, str]:
    return {currency: money_text(amount, currency) for currency, amount in amounts.items()}


def _currency_code(value: str) -> str:
    code = parse_currency(value)
    if code is None:
        raise ValueError(f"{value!r} is not an ISO 4217 code")
    return code


Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["EUR"]), AfterValidator(_currency_code)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdvertiserIn(Strict):
    name: str = Name


class AdvertiserOut(BaseModel):
    id: int
    name: str
    status: StatusWord
    token: str
    postback_url: str = Field(description="The URL to give the advertiser, with macros to fill in.")
    created_at: datetime
    previous_token_valid_until: datetime | None = Field(
        description="After a token rotation: until when the replaced token is still accepted."
    )
    allowed_ips: list[str] = Field(description="Addresses and networks postbacks may come from; empty: any.")
    signing: bool = Field(description="Whether postbacks must carry an HMAC-SHA256 signature.")


MAX_OVERLAP_HOURS = 24 * 30


class TokenRotationIn(Strict):
    overlap_hours: int = Field(
        72,
        ge=0,
        le=MAX_OVERLAP_HOURS,
        description="How long the current token stays valid beside the new one (0: replaced at once).",
    )


MAX_ALLOWED_IPS = 50
IpEntry = Annotated[str, Field(min_length=1, max_length=64, examples=["203.0.113.0/24"])]


class SecurityIn(Strict):
    allowed_ips: list[IpEntry] = Field(
        default_factory=list,
        max_length=MAX_ALLOWED_IPS,
        description="Addresses or networks (CIDR) the advertiser's postbacks come from; empty: any.",
    )
    signing: bool = Field(False, description="Ask for an HMAC-SHA256 signature on every postback.")
    new_signing_secret: bool = Field(
        False, description="Replace the signing secret (the advertiser must switch at once)."
    )


class SecurityOut(BaseModel):
    allowed_ips: list[str]
    signing: bool
    signing_secret: str | None = Field(
        description="The HMAC key to give the advertiser; null when not signing."
    )
    signature_format: str = Field(description="How a sender signs a postback.")


MAX_ATTRIBUTION_DAYS = 3650
AttributionDays = Annotated[
    int | None,
    Field(
        ge=1,
        le=MAX_ATTRIBUTION_DAYS,
        description="Conversions count only within this many days of their click (refused with "
        "attribution_window_passed after it); a known player's later events are not limited. "
        "Null: no limit.",
    ),
]


class AttributionIn(Strict):
    days: AttributionDays


class OfferIn(Strict):
    """Validated here, so that a bad offer gets FastAPI's usual 422 naming the field."""

    advertiser_id: Id
    name: str = Name
    url_template: str = Field(
        min_length=8,
        max_length=MAX_URL_LEN,
        description="Destination URL; macros: {click_id} {sub1}..{sub5} {affiliate_id} {offer_id} "
        "{link} {campaign} {source} {lp}. The host must be literal.",
        examples=["https://casino.example.com/welcome?btag={click_id}&s1={sub1}"],
    )
    currency: Currency
    payouts: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Default payout per event when a postback names none.",
        examples=[{"registration": "0", "first_deposit": "50.00"}],
        max_length=50,
    )
    custom_events: list[str] = Field(default_factory=list, max_length=50)
    vertical: VerticalWord | None = Field(
        default=None,
        description="Start the offer's default deal from this vertical's preset (GET /api/presets).",
    )
    pixel: bool = Field(
        default=False,
        description="Switch on the tracking pixel (docs/pixel.md): for advertisers who cannot send "
        "S2S postbacks. Its clicks then also set a click-ID cookie.",
    )
    attribution_days: AttributionDays = None

    @field_validator("url_template")
    @classmethod
    def _template(cls, value: str) -> str:
        return checked_template(value)

    @field_validator("custom_events")
    @classmethod
    def _custom(cls, value: list[str]) -> list[str]:
        return checked_events(value)

    @model_validator(mode="after")
    def _payouts(self) -> "OfferIn":
        problem = payouts_problem(self.payouts, self.custom_events)
        if problem:
            raise ValueError(problem)
        self.payouts = {normalise_event(k): v for k, v in self.payouts.items()}
        return self


def checked_template(value: str) -> str:
    """An offer's URL template as on create and on edit: macros known, the host literal (no open
    redirect through a macro in the host)."""
    try:
        compile_template(value)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    return value


def checked_events(value: list[str]) -> list[str]:
    events = [normalise_event(e) for e in value]
    if not all(e and len(e) <= MAX_EVENT_LEN and e.isidentifier() for e in events):
        raise ValueError("use names of letters, digits and underscores")
    return events


def payouts_problem(payouts: dict[str, Decimal], custom_events: list[str]) -> str | None:
    for event, amount in payouts.items():
        event = normalise_event(event)
        if event not in STANDARD_EVENTS | set(custom_events):
            return f"payouts: {event!r} is neither standard nor custom"
        if not amount.is_finite() or parse_amount(str(amount)) is None:
            return f"payouts: {event!r} needs a non-negative amount"
    return None


class OfferChange(Strict):
    """Every field optional: the ones given replace the stored ones, checked as on create. A new
    URL template applies from the next click (on every process: docs/api.md, "Editing"); the
    currency and payouts to conversions recorded from now on."""

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LEN, pattern=PRINTABLE)
    url_template: str | None = Field(
        default=None,
        min_length=8,
        max_length=MAX_URL_LEN,
        description="As on create: macros known, the host literal.",
    )
    currency: Currency | None = None
    payouts: dict[str, Decimal] | None = Field(
        default=None, max_length=50, description="Given, it replaces the whole map."
    )
    custom_events: list[str] | None = Field(default=None, max_length=50)

    @field_validator("url_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else checked_template(value)

    @field_validator("custom_events")
    @classmethod
    def _custom(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else checked_events(value)


class NameChange(Strict):
    name: str = Name


class LinkChange(Strict):
    campaign: str = Field(max_length=MAX_NAME_LEN, pattern=PRINTABLE)


class CatalogStatusIn(Strict):
    status: CatalogState = Field(
        description="archived: keeps its history and reports, takes no new click (reason "
        "`link_archived` or `offer_archived`); it can be made active again."
    )


class OfferOut(BaseModel):
    id: int
    advertiser_id: int
    name: str
    url_template: str
    currency: str
    status: CatalogState
    payouts: dict[str, Decimal] = Field(description="In the offer's currency.")
    custom_events: list[str]
    vertical: str
    created_at: datetime
    pixel: bool = Field(description="Whether the tracking pixel is on.")
    attribution_days: int | None = Field(description="The attribution window in days; null: none.")
    pixel_url: str | None = Field(
        description="The pixel for the thank-you page (an <img> source), with macros to fill in; "
        "null while the pixel is off. It carries no secret: it names the offer only."
    )
    pixel_script_url: str | None = Field(
        description="The snippet that fires the pixel from the page (a <script> source); null while "
        "the pixel is off."
    )

    @field_serializer("payouts")
    def _payouts(self, payouts: dict[str, Decimal]) -> dict[str, str]:
        return {event: money_text(amount, self.currency) for event, amount in payouts.items()}


class AffiliateIn(Strict):
    name: str = Name


class AffiliateOut(BaseModel):
    id: int
    name: str
    status: CatalogState
    created_at: datetime


class CostIn(Strict):
    """What a link's traffic costs (docs/reports.md, "Traffic cost"). Applies to clicks and
    conversions from when it is saved."""

    model: Literal["none", "cpc", "cpm", "cpa", "revshare", "source"] = Field(
        description="cpc: `amount` a click (or its country's in `countries`); cpm: `amount` per "
        "thousand clicks; cpa: `amount` per payable conversion of `event`; revshare: `percent` of "
        "every commission the link's traffic earns, to a partner; source: the cost the traffic "
        "source passes on the link (`cost=`, optionally `cost_currency=`)."
    )
    currency: Currency | None = Field(default=None, description="Required unless model is none.")
    amount: Amount = Decimal(0)
    countries: dict[Country, Amount] = Field(
        default_factory=dict, max_length=300, description="CPC by the click's country."
    )
    event: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_EVENT_LEN,
        pattern=PRINTABLE,
        description="CPA: the event paid for.",
    )
    percent: Percent = Field(default=Decimal(0), description="revshare: the partner's share, to 0.01.")
    bots: bool = Field(default=True, description="Whether bot clicks are charged (cpc, cpm).")


class CostOut(BaseModel):
    model: str
    currency: str
    amount: Decimal
    countries: dict[str, Decimal]
    event: str
    percent: Decimal
    bots: bool


class SpendLineOut(BaseModel):
    line: int
    day: date
    link: str
    cost: Decimal
    currency: str

    @field_serializer("cost")
    def _cost(self, amount: Decimal) -> str | None:
        return _shown(amount, self.currency)


class SpendImportOut(BaseModel):
    lines: int = Field(description="Lines applied.")
    clicks: int = Field(description="Clicks whose cost changed.")
    total: dict[str, Decimal] = Field(description="What was spread over clicks, per currency.")
    unmatched: list[SpendLineOut] = Field(
        description="Lines whose day and link had no click matching them: their spend is in no report."
    )

    @field_serializer("total")
    def _total(self, totals: dict[str, Decimal]) -> dict[str, str]:
        return _per_currency(totals)


class CostImportOut(BaseModel):
    id: int
    imported_at: datetime
    zone: str
    day: date
    link_id: int
    subs: dict[str, str]
    cost: Decimal
    currency: str
    clicks: int

    @field_serializer("cost")
    def _cost(self, amount: Decimal) -> str | None:
        return _shown(amount, self.currency)


class LinkIn(Strict):
    affiliate_id: Id
    offer_id: Id
    campaign: str = Field(default="", max_length=MAX_NAME_LEN, pattern=PRINTABLE)
    cost: CostIn | None = None


class LinkOut(BaseModel):
    id: int
    code: str
    affiliate_id: int
    offer_id: int
    campaign: str
    status: CatalogState
    url: str = Field(description="The tracking link to give the affiliate.")
    created_at: datetime
    cost: CostOut | None = Field(description="Its cost model; null: its traffic costs nothing.")


class StatusIn(Strict):
    status: StatusWord


class PixelIn(Strict):
    enabled: bool


class PostbackLogOut(BaseModel):
    id: int
    received_at: datetime
    ip: str
    method: str
    advertiser_id: int | None
    click_id: str
    result: str
    reason: str | None
    detail: str
    conversion_id: int | None
    http_status: int
    query: str
    body: str
    ignored: str
    channel: Channel = Field(
        description="s2s: GET|POST /postback from the advertiser's server; pixel: GET /p/{code} from "
        "the user's browser (method is the request's HTTP method); recon: the operator's figure "
        "accepted from a reconciliation (docs/reconciliation.md)."
    )
    test: bool = Field(default=False, description="It named a test click of the postback tester.")


class HistoryOut(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    postback_id: int | None
    reason: str | None = Field(
        default=None,
        description="Why a person changed it by hand; for a conversion clickback booked itself (channel "
        "recon), where its figure came from: the reconciliation, its item, file and lines, or the daily "
        "report's file and line, who accepted or booked it and when.",
    )


class ConversionOut(BaseModel):
    id: int
    advertiser_id: int
    click_id: str
    txn_id: str | None
    event: str
    status: str
    payout: Decimal | None
    currency: str | None
    link_id: int | None
    affiliate_id: int | None
    offer_id: int | None
    campaign: str
    sub1: str
    sub2: str
    sub3: str
    sub4: str
    sub5: str
    player_id: str
    deal_amount: Decimal | None = Field(description="The amount in deal_currency, when a deal counts it.")
    deal_currency: str | None = Field(
        description="The currency of the deal that priced the conversion; for a net_revenue report, "
        "that of its RevShare month (the deal's when the month was first booked: a month is priced "
        "in one currency); null when unattributed, without a deal, or an event whose amount no "
        "deal counts."
    )
    fx_rate: Decimal | None = Field(description="The exchange rate that made deal_amount.")
    period: str | None = Field(description="The month a net_revenue report covers.")
    clicked_at: datetime
    event_at: datetime = Field(
        description="When the event happened: the postback's event time, else its arrival. Commission "
        "rules, exchange rates and reports by conversion date go by it."
    )
    created_at: datetime = Field(description="When its first postback arrived.")
    updated_at: datetime
    attributed_at: datetime | None
    channel: Channel = Field(
        description="How its first postback arrived. A pixel conversion is recorded pending: anyone "
        "who can open the tracking link can fire the pixel (docs/pixel.md). recon: accepted from a "
        "reconciliation (docs/reconciliation.md)."
    )
    warnings: list[str] = Field(
        description="What looked wrong though it was accepted: a payout other than the offer's for "
        "the event (payout_differs), an ignored parameter that looks misspelt (misspelt_parameter)."
    )
    test: bool = Field(
        default=False,
        description="Its click is a test click of the postback tester: counted in no report, statement "
        "or commission, announced by no outbound postback.",
    )
    over_cap: bool = Field(
        default=False,
        description='It came past a cap of its offer (docs/api.md, "Caps"): recorded, not paid.',
    )
    history: list[HistoryOut] = Field(default_factory=list)

    @field_validator("warnings", mode="before")
    @classmethod
    def _warnings(cls, stored: object) -> object:
        return [w for w in stored.split("; ") if w] if isinstance(stored, str) else stored

    @field_serializer("payout")
    def _payout(self, payout: Decimal | None) -> str | None:
        return _shown(payout, self.currency)

    @field_serializer("deal_amount")
    def _deal_amount(self, amount: Decimal | None) -> str | None:
        return _shown(amount, self.deal_currency)

    @field_serializer("fx_rate")
    def _fx_rate(self, rate: Decimal | None) -> str | None:
        return None if rate is None else plain(rate)


Amounts = dict[str, Decimal]


class FiguresOut(BaseModel):
    """Every metric (docs/reports.md gives each formula). Money per currency; ratios are null
    when there is nothing to divide by."""

    clicks: int = Field(description="Non-bot clicks (all clicks with bots=include).")
    unique_clicks: int
    bot_clicks: int
    conversions: int = Field(description="Pending and approved conversions, any event.")
    approved: int
    pending: int
    declined: int = Field(description="Rejected and cancelled conversions.")
    registrations: int
    ftds: int
    deposits: int = Field(description="First and later deposits.")
    qualified_cpas: int = Field(
        description="Standing CPA qualifications (pending or approved qualified_cpa conversions), "
        "over a cap too; what was paid is cpa_commission."
    )
    ftd_amount: Amounts
    deposit_amount: Amounts
    ngr: Amounts
    revenue: Amounts = Field(description="What the advertiser pays for the conversions.")
    conversion_cost: Amounts = Field(description="What CPA cost models pay for the conversions.")
    cpa_commission: Amounts
    revshare_commission: Amounts
    click_cost: Amounts = Field(description="What the clicks cost (CPC, CPM, the source's figure).")
    bot_cost: Amounts = Field(description="The part of click_cost bot clicks cost.")
    commission: Amounts
    profit: Amounts | None = Field(
        description="revenue - commission, in each currency revenue is known in (null: in none)"
    )
    cr_registration: float | None
    cr_ftd: float | None
    ftd_per_registration: float | None
    epc: Amounts | None = Field(description="commission / clicks")
    approval_rate: float | None = Field(description="approved / (approved + declined)")
    player_value: Amounts | None = Field(description="commission / ftds")
    cost: Amounts = Field(description="click_cost + conversion_cost")
    cpc: Amounts | None = Field(description="click_cost / clicks")
    cost_per_registration: Amounts | None = Field(description="cost / registrations")
    cost_per_ftd: Amounts | None = Field(description="cost / ftds")
    traffic_profit: Amounts = Field(description="commission - cost")
    roi: Amounts | None = Field(
        description="(commission - cost) / cost, in each currency something was spent in"
    )
    revenue_profit: Amounts | None = Field(
        description="revenue - cost, in each currency revenue is known in: a network buying traffic itself"
    )
    revenue_roi: Amounts | None = Field(
        description="(revenue - cost) / cost, in each currency spent in and revenue is known in"
    )


class PlacementOut(BaseModel):
    key: dict[str, str | int]
    clicks: int
    cost: Decimal
    earned: Decimal = Field(description="Its commission, or with earnings=revenue its revenue.")
    profit: Decimal = Field(description="earned - cost")
    roi: Decimal | None = Field(description="(earned - cost) / cost")
    spend_share: Decimal = Field(description="Its part of the report's spend, 0 to 1.")
    profit_share: Decimal = Field(description="Its part of the profit of the placements that made one.")


class StopOrScaleOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    zone: str
    by: str
    currency: str = Field(description="Every amount, converted at the recorded rates of its day.")
    earnings: str = Field(description="What a placement earns: commission or revenue.")
    stop: list[PlacementOut] = Field(
        description="Spent at least min_spend with an ROI below max_roi: the dearest loss first."
    )
    scale: list[PlacementOut] = Field(
        description="ROI at least target_roi, and a larger share of the profit than of the spend: "
        "the best return first."
    )


class ReportRowOut(FiguresOut):
    key: dict[str, str | int] = Field(
        description="The row's dimensions: hours as local times with their UTC offset, days, "
        "weeks (their Monday) and months in the report's zone; owners by id."
    )


class PreviousOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    totals: FiguresOut


class ReportOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first: date = Field(alias="from")
    last: date = Field(alias="to")
    zone: str
    basis: str
    basis_note: str
    group_by: list[str]
    currency: str | None
    currencies: list[str] = Field(description="The currencies money is shown in.")
    source: str = Field(description="What answered: days, values, hours (rollups) or raw (the tables).")
    total_rows: int
    limit: int
    offset: int
    rows: list[ReportRowOut]
    totals: FiguresOut
    previous: PreviousOut | None = None


class RefusedClicksOut(BaseModel):
    day: date
    reason: str
    code: str = Field(description="The link code that was asked for.")
    clicks: int


# --- active players (web/activity.py) ------------------------------------------------------------


class ActiveKey(BaseModel):
    month: str = Field(description="YYYY-MM, in the report's zone.")
    advertiser: int
    offer: int
    affiliate: int


class ActiveFiguresOut(BaseModel):
    active_players: int = Field(
        description="Players with activity in the month (over the period: once each)."
    )
    registrations: int = Field(description="Pending and approved registrations, as /api/reports counts them.")
    ftds: int = Field(description="Pending and approved first deposits, as /api/reports counts them.")


class ActiveRowOut(ActiveFiguresOut):
    key: ActiveKey


class ActivePlayersOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first: str = Field(alias="from")
    last: str = Field(alias="to")
    zone: str
    activity: dict[str, list[str]] = Field(
        description="The events that make a player active, by offer vertical (`default`: none)."
    )
    rows: list[ActiveRowOut]
    totals: ActiveFiguresOut


class ActiveCohortRowOut(BaseModel):
    key: ActiveKey = Field(description="The month of the players' registration, and their owners.")
    registrations: int = Field(description="Players who registered that month.")
    active: list[int | None] = Field(
        description="Of them, active n months after the registration month at index n (0: that "
        "month); null for a month not begun yet."
    )


class ActiveCohortsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first: str = Field(alias="from")
    last: str = Field(alias="to")
    zone: str
    activity: dict[str, list[str]]
    rows: list[ActiveCohortRowOut]


class ReasonOut(BaseModel):
    code: str
    http_status: int
    message: str
    hint: str


class RuntimeOut(BaseModel):
    process_id: int = Field(
        description="The server process (worker) that answered: each has its own figures."
    )
    clicks_pending: int = Field(
        description="Redirected clicks held in memory, not yet written: without durable mode, "
        "what a crash of this process right now would lose."
    )
    clicks_written: int
    clicks_spilled: int = Field(
        description="Clicks moved to the spool because the database failed or could not keep up "
        "(more than CLICKBACK_CLICK_BUFFER_MAX pending)."
    )
    clicks_held: int = Field(
        description="Redirects held (up to 1 s each) because two batches of clicks were waiting for a "
        "writer that was storing them: under more traffic than the database takes, clicks are taken as "
        "fast as they are stored instead of piling up in memory."
    )
    click_write_capacity: int = Field(
        description="Clicks a second this process stored while writing, over its batches of the last "
        "10 s (0 if none): the click rate it can keep up with now. On SQLite every worker shares one "
        "file; a steady rate above it holds redirects (clicks_held). While the database fails, "
        "clicks_pending grows, then the spool."
    )
    spool_files: int
    flush_failures: int
    clicks_quarantined: int = Field(
        description="Clicks the database refused (a value it cannot store) or unreadable spool lines: "
        "set apart in the quarantined_clicks table with the reason, so the rest of their batch is stored."
    )
    durable_clicks: bool
    spool_failures: int = Field(description="Durable-mode clicks that could not be spooled (disk).")
    catalog_version: int
    postbacks_recorded: int = Field(description="Postbacks this process has answered from a committed group.")
    postback_groups: int = Field(
        description="Transactions those postbacks were committed in: concurrent postbacks share one."
    )


class CpaTermsIn(Strict):
    """Every rule given must hold; days count from the player's registration (else first event).
    Fields left out keep the values of the deal in force (the defaults shown are a new deal's);
    null removes a rule."""

    amount: Amount | None = Field(
        default=None, description="Needed when no CPA terms are in force; cannot be removed."
    )
    geo_amounts: dict[Country, Amount] = Field(
        default_factory=dict, max_length=300, description="Given, it replaces the whole map."
    )
    require_registration: bool = True
    require_verification: bool = False
    ftd_min: Amount | None = Field(
        default=None,
        description="Baseline: the first deposit, less chargebacks (taken from it first), is at least this.",
    )
    deposits_min: Amount | None = Field(default=None, description="Cumulative deposits (net of chargebacks).")
    deposits_days: Days | None = Field(default=None, description="...counted within this many days.")
    wager_min: Amount | None = None
    window_days: Days | None = Field(
        default=None, description="Every rule must be met within this many days."
    )
    hold_days: Days = Field(default=0, description="The CPA stays pending this long before approval.")


class TierTerms(Strict):
    threshold: Amount = Field(description="NGR in the deal currency, or FTDs in the month.")
    percent: Percent


class CpaTerms(CpaTermsIn):
    """CPA terms as they apply: every rule given must hold; days count from the player's
    registration (else first event)."""

    amount: Amount


class RevShareTermsIn(Strict):
    """Fields left out keep the values of the deal in force (the defaults shown are a new deal's)."""

    percent: Percent | None = Field(
        default=None, description="Needed when no RevShare terms are in force; cannot be removed."
    )
    tiers: list[TierTerms] = Field(
        default_factory=list, max_length=20, description="Given, it replaces the whole list."
    )
    tier_basis: Literal["ngr", "ftds"] = "ngr"
    negative_carryover: bool = False


class RevShareTerms(RevShareTermsIn):
    """RevShare terms as they apply."""

    percent: Percent


class DealIn(Strict):
    """Changes only the fields it names, inside cpa and revshare too: the rest comes from the deal
    in force for the offer and affiliate (the affiliate's own, else the offer's default, else the
    offer's vertical preset). null removes a rule, or the whole cpa or revshare terms."""

    kind: Literal["cpa", "revshare", "hybrid"] | None = None
    currency: Currency | None = Field(
        default=None, description="Defaults to the deal in force's, else the offer's currency."
    )
    cpa: CpaTermsIn | None = None
    revshare: RevShareTermsIn | None = None


class DealOut(BaseModel):
    id: int
    offer_id: int
    affiliate_id: int | None = Field(description="null: the offer's default deal for every affiliate.")
    kind: str
    currency: str
    cpa: CpaTerms | None
    revshare: RevShareTerms | None
    updated_at: datetime


class PresetOut(BaseModel):
    vertical: str
    events: list[str]
    activity: list[str] = Field(description="The events that make a player active (active-players report).")
    kind: str
    cpa: CpaTerms
    revshare: RevShareTerms


EventName = Annotated[str, Field(min_length=1, max_length=MAX_EVENT_LEN, pattern=PRINTABLE)]


class NamesIn(Strict):
    """The advertiser's own words: {their event name: our event}, {their status word: our status}."""

    events: dict[EventName, EventName] = Field(
        default_factory=dict, max_length=100, examples=[{"dep": "deposit"}]
    )
    statuses: dict[EventName, Literal["pending", "approved", "rejected", "cancelled"]] = Field(
        default_factory=dict, max_length=100, examples=[{"2": "pending"}]
    )

    @model_validator(mode="after")
    def _normalise(self) -> "NamesIn":
        self.events = {
            k.strip().lower().replace("-", "_").replace(" ", "_"): normalise_event(v)
            for k, v in self.events.items()
        }
        self.statuses = {k.strip().lower(): v for k, v in self.statuses.items()}
        return self


class FxRateIn(Strict):
    base: Currency
    quote: Currency
    day: date = Field(description="The rate applies to amounts of this day and later, until a newer one.")
    rate: Rate = Field(description="1 unit of base in quote.", examples=["1.0842"])


class FxRateOut(BaseModel):
    base: str
    quote: str
    day: date
    rate: Decimal

    @field_serializer("rate")
    def _rate(self, rate: Decimal) -> str:
        return plain(rate)


class CommissionOut(BaseModel):
    id: int
    kind: str
    affiliate_id: int
    offer_id: int
    player: int | None = Field(description="The player's id in /api/players (CPA entries).")
    conversion_id: int | None = Field(
        description="The conversion whose arrival or change produced the entry."
    )
    period: str
    amount: Decimal
    currency: str
    fx_rate: Decimal | None = Field(description="The rate that converted the causing conversion's amount.")
    percent: Decimal | None = Field(description="The RevShare percent applied.")
    status: str
    hold_until: datetime | None
    reverses_id: int | None
    detail: str
    created_at: datetime

    @field_serializer("amount")
    def _amount(self, amount: Decimal) -> str:
        return money_text(amount, self.currency)

    @field_serializer("fx_rate", "percent")
    def _plain(self, number: Decimal | None) -> str | None:
        return None if number is None else plain(number)


class StatementLineOut(BaseModel):
    offer_id: int
    offer: str
    currency: str
    deal: str = Field(description="The deal in force: cpa, revshare or hybrid (empty without one).")
    players: int = Field(description="Players who registered in the month.")
    ftds: int = Field(description="First deposits made in the month (pending or approved).")
    qualified_cpas: int
    cpa_reversals: int
    cpa_earnings: Decimal
    ngr: Decimal = Field(description="The month's NGR of the affiliate's players, whatever the deal.")
    revshare_percent: Decimal | None = Field(
        description="null (and so carry_in, carry_out, revshare_earnings): RevShare is not part of this deal."
    )
    carry_in: Decimal | None = Field(
        description="The deficit brought from earlier months (negative carryover)."
    )
    carry_out: Decimal | None = Field(description="The deficit this month passes on to the next.")
    revshare_earnings: Decimal | None
    total: Decimal

    @field_serializer("cpa_earnings", "ngr", "carry_in", "carry_out", "revshare_earnings", "total")
    def _money(self, amount: Decimal | None) -> str | None:
        return _shown(amount, self.currency)


class StatementOut(BaseModel):
    affiliate_id: int
    period: str
    lines: list[StatementLineOut]
    totals: dict[str, Decimal] = Field(description="Per currency.")

    @field_serializer("totals")
    def _totals(self, totals: dict[str, Decimal]) -> dict[str, str]:
        return _per_currency(totals)


class PlayerValueOut(BaseModel):
    """What the player brought in one currency."""

    currency: str
    deposits: Decimal = Field(description="Deposits net of chargebacks, priced in this currency.")
    ngr: Decimal = Field(description="NGR priced in this currency.")
    commission: Decimal = Field(description="CPA commission booked in this currency, net of reversals.")

    @field_serializer("deposits", "ngr", "commission")
    def _money(self, amount: Decimal) -> str:
        return money_text(amount, self.currency)


class PlayerOut(BaseModel):
    id: int
    advertiser_id: int
    player_id: str
    click_id: str
    affiliate_id: int | None
    offer_id: int | None
    country: str
    sub1: str
    first_seen_at: datetime
    registered_at: datetime | None
    ftd_at: datetime | None
    qualified_at: datetime | None
    cohort: str
    currency: str | None = Field(
        description="The currency of the deal in force for the player's offer and affiliate; null "
        "without a deal. deposits, ngr and commission are the player's amounts in it."
    )
    deposits: Decimal = Field(description="Deposits net of chargebacks, in `currency`.")
    ngr: Decimal = Field(description="NGR, in `currency`.")
    commission: Decimal = Field(
        description="CPA commission booked for the player, net of reversals, in `currency`."
    )
    by_currency: list[PlayerValueOut] = Field(
        description="The player's amounts per currency, never added across currencies: those in "
        "`currency` first (zero if none), then those priced or booked in any other (the deal "
        "changed currency), by currency code. Empty without a deal and amounts."
    )

    @field_serializer("deposits", "ngr", "commission")
    def _money(self, amount: Decimal) -> str:
        return money_text(amount, self.currency)


class CohortOut(BaseModel):
    cohort: str
    currency: str | None = Field(
        description="A cohort has a row per currency: each amount is on the row of the currency it "
        "was priced or booked in; players and ftds are counted once, on the row of their deal's "
        "currency (null: players without a deal)."
    )
    players: int
    ftds: int
    deposits: Decimal
    ngr: Decimal
    commission: Decimal

    @field_serializer("deposits", "ngr", "commission")
    def _money(self, amount: Decimal) -> str:
        return money_text(amount, self.currency)


# --- lists -------------------------------------------------------------------------------------
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, in the list's order."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Give it as `cursor` for the next page; null on the last page."
    )


def _instant(value: object) -> date | datetime:
    """YYYY-MM-DD is a date (a whole UTC day); anything longer an ISO datetime, in UTC unless it
    carries an offset."""
    if isinstance(value, datetime):
        return spans.utc(value)
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("use an ISO date (YYYY-MM-DD) or datetime")
    if len(value) == len("YYYY-MM-DD"):
        return date.fromisoformat(value)
    return spans.utc(datetime.fromisoformat(value))


Instant = Annotated[
    date | datetime,
    PlainValidator(_instant),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]
UtcInstant = Annotated[datetime, AfterValidator(spans.utc)]


class Filters(BaseModel):
    """A list's query parameters. An unknown one is refused: a misspelt filter would otherwise
    answer every row."""

    model_config = ConfigDict(extra="forbid")

    def values(self) -> dict[str, Any]:
        """The filters, by name, as the store takes them: neither the page nor the range."""
        return self.model_dump(mode="json", exclude={"cursor", "limit", "first", "last", "since", "until"})


class Paged(Filters):
    cursor: str | None = Field(
        default=None,
        max_length=MAX_CURSOR_LEN,
        pattern="^[A-Za-z0-9_-]+$",
        description="The `next_cursor` of the page before; none for the first page.",
    )
    limit: int = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Rows per page, at most {MAX_PAGE_SIZE}.",
    )


class Instants(Filters):
    first: Instant | None = Field(
        default=None,
        alias="from",
        description="From this instant, or this day's start (UTC) when a date is given.",
    )
    last: Instant | None = Field(
        default=None,
        alias="to",
        description="Until this instant (left out), or to the end of this day (UTC) when a date is given.",
    )

    @field_validator("last")
    @classmethod
    def _in_order(cls, last: date | datetime | None, info: ValidationInfo) -> date | datetime | None:
        spans.instants(info.data.get("first"), last)
        return last

    def span(self) -> spans.Span[datetime]:
        return spans.instants(self.first, self.last)


class CatalogQuery(Paged):
    status: StatusWord | None = None


class ArchivableQuery(Paged):
    status: CatalogState | None = None


class OffersQuery(ArchivableQuery):
    advertiser_id: Id | None = None


class LinksQuery(ArchivableQuery):
    affiliate_id: Id | None = None
    offer_id: Id | None = None


class CostImportsQuery(Paged):
    link_id: Id | None = None


class PostbacksQuery(Paged):
    advertiser_id: Id | None = None
    result: Result | None = None
    reason: str | None = Field(
        default=None, max_length=32, pattern=PRINTABLE, description="A code of GET /api/reasons."
    )
    click_id: ClickIdText | None = None
    channel: Channel | None = None
    test: bool | None = Field(default=None, description="true: only the tester's; false: none of them.")
    since: UtcInstant | None = Field(default=None, description="Received at or after.")
    until: UtcInstant | None = Field(default=None, description="Received before.")

    @field_validator("reason")
    @classmethod
    def _known(cls, reason: str | None) -> str | None:
        if reason is not None and reason not in BY_CODE:
            raise ValueError(f"unknown code {reason!r}; see GET /api/reasons")
        return reason


class ConversionsQuery(Paged, Instants):
    click_id: ClickIdText | None = None
    advertiser_id: Id | None = None
    affiliate_id: Id | None = None
    offer_id: Id | None = None
    link_id: Id | None = None
    event: EventName | None = None
    status: Status | None = None
    player_id: IdText | None = None
    txn_id: Annotated[str, Field(min_length=1, max_length=MAX_TXN_ID_LEN, pattern=PRINTABLE)] | None = None
    sub1: IdText | None = None
    channel: Channel | None = Field(default=None, description="pixel: the conversions to review.")
    test: bool | None = Field(default=None, description="true: only the tester's; false: none of them.")
    over_cap: bool | None = Field(default=None, description="true: the conversions past a cap (not paid).")


class CommissionsQuery(Paged, Instants):
    affiliate_id: Id | None = None
    offer_id: Id | None = None
    player: Id | None = Field(default=None, description="The player's id in /api/players.")
    conversion_id: Id | None = None
    kind: EntryKind | None = None
    status: EntryStatus | None = None
    period: Period | None = None


class PlayerFilters(Instants):
    advertiser_id: Id | None = None
    affiliate_id: Id | None = None
    offer_id: Id | None = None
    player_id: IdText | None = None
    country: Country | None = None
    cohort: Period | None = Field(default=None, description="Registration month, else first postback's.")
    qualified: bool | None = Field(default=None, description="Whether the player has qualified for CPA.")


class PlayersQuery(Paged, PlayerFilters):
    pass


class FxRatesQuery(Paged):
    base: CurrencyCode | None = None
    quote: CurrencyCode | None = None
    first: date | None = Field(default=None, alias="from", description="Rates dated this day or later.")
    last: date | None = Field(default=None, alias="to", description="Rates dated this day or earlier.")

    @field_validator("last")
    @classmethod
    def _in_order(cls, last: date | None, info: ValidationInfo) -> date | None:
        spans.days(info.data.get("first"), last)
        return last

    def span(self) -> spans.Span[date]:
        return spans.days(self.first, self.last)


# --- outbound postbacks --------------------------------------------------------------------------

OutboundEvent = Annotated[str, Field(min_length=1, max_length=MAX_EVENT_LEN, pattern=r"^[A-Za-z0-9_]+$")]
StatusName = Literal["pending", "approved", "rejected", "cancelled"]
MappedWord = Annotated[str, Field(min_length=1, max_length=MAX_MAPPED_STATUS_LEN, pattern=PRINTABLE)]
SubName = Literal["sub1", "sub2", "sub3", "sub4", "sub5"]
_URL_HELP = (
    "The affiliate's postback URL with macros, e.g. "
    "https://tracker.example.com/postback?subid={subid}&status={status}&payout={payout} "
    "(docs/outbound.md lists the macros). http or https; the host must be public and literal, in"
    " ASCII (an internationalised name as xn--...)."
)


class OutboundTemplateChange(Strict):
    """Every field optional: the ones given replace the stored ones."""

    offer_id: Id | None = Field(
        default=None,
        description="Only this offer's conversions (one the affiliate has a link to); null: every offer.",
    )
    name: str | None = Field(default=None, max_length=MAX_NAME_LEN, pattern=PRINTABLE)
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LEN, description=_URL_HELP)
    method: Literal["GET", "POST"] | None = None
    body_format: Literal["form", "json"] | None = Field(
        default=None, description="POST only: form (default) or json; values are escaped for it."
    )
    body: str | None = Field(
        default=None,
        max_length=MAX_BODY_TEMPLATE_LEN,
        pattern=NO_NUL,
        description='POST only: form (a={subid}&b={payout}) or a JSON object ({"click": "{subid}"}).',
    )
    events: list[OutboundEvent] | None = Field(default=None, max_length=50, description="Empty: every event.")
    statuses: list[StatusName] | None = Field(default=None, max_length=4, description="Empty: every status.")
    status_map: dict[StatusName, MappedWord] | None = Field(
        default=None,
        description="The {status} macro's word for each of our statuses.",
        examples=[{"approved": "sale", "pending": "lead", "rejected": "rejected"}],
    )
    click_id_sub: SubName | None = Field(
        default=None,
        description="The sub ID the affiliate's tracker passed its click ID in: what {subid}, "
        "{clickid}, {external_id} and {transaction_id} give back.",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=128,
        pattern=r"^[\x21-\x7e]*$",
        description="Signs each request (X-Clickback-Signature, HMAC-SHA256); never shown again.",
    )


class OutboundTemplateIn(OutboundTemplateChange):
    affiliate_id: Id
    name: str = Field(default="", max_length=MAX_NAME_LEN, pattern=PRINTABLE)
    # No length floor: the template's own check says what a short URL lacks (http:// or https://).
    url: str = Field(min_length=1, max_length=MAX_URL_LEN, description=_URL_HELP)
    method: Literal["GET", "POST"] = "GET"
    events: list[OutboundEvent] = Field(
        default_factory=list, max_length=50, description="Empty: every event."
    )
    statuses: list[StatusName] = Field(default_factory=list, max_length=4, description="Empty: every status.")
    status_map: dict[StatusName, MappedWord] = Field(default_factory=dict)
    click_id_sub: SubName = "sub1"
    body: str = Field(default="", max_length=MAX_BODY_TEMPLATE_LEN, pattern=NO_NUL)


class OutboundTemplateOut(BaseModel):
    id: int
    affiliate_id: int
    offer_id: int | None
    name: str
    url: str
    method: str
    body_format: str | None
    body: str
    events: list[str]
    statuses: list[str]
    status_map: dict[str, str]
    click_id_sub: str
    signed: bool = Field(description="Whether a secret signs its requests (the secret is never shown).")
    status: StatusWord
    created_at: datetime
    updated_at: datetime


class OutboundTemplatesQuery(CatalogQuery):
    affiliate_id: Id | None = None
    offer_id: Id | None = None


# held: queued behind an earlier delivery of its conversion to its destination, sent once that
# one has ended (docs/outbound.md).
DeliveryState = Literal["waiting", "held", "delivered", "failed", "dead"]


class AttemptOut(BaseModel):
    at: datetime
    url: str = Field(description="Secrets in the query shown as ***.")
    http_status: int | None
    latency_ms: int
    reply: str = Field(description="The first 512 bytes of the reply.")
    error: str
    worker: str


class DeliveryOut(BaseModel):
    id: int
    delivery_id: str = Field(description="Sent as X-Clickback-Delivery with every attempt.")
    template_id: int
    affiliate_id: int
    conversion_id: int
    event: str
    status: str
    method: str
    url: str = Field(description="Secrets in the query shown as ***.")
    body: str
    destination: str
    state: DeliveryState
    attempts: int
    next_at: datetime
    last_status: int | None
    last_error: str
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut] | None = Field(
        default=None, description="Every attempt (one delivery's page)."
    )


class DeliveriesQuery(Paged):
    state: DeliveryState | None = None
    affiliate_id: Id | None = None
    template_id: Id | None = None
    conversion_id: Id | None = None
    destination: str | None = Field(default=None, max_length=300, pattern=PRINTABLE)


class ReplayIn(Strict):
    ids: list[Id] | None = Field(
        default=None,
        max_length=1000,
        description="These deliveries, whatever their state (but held: they are queued already).",
    )
    state: Literal["dead", "failed", "delivered"] | None = Field(
        default=None, description="Every delivery in this state (with ids: those of them in it)."
    )

    @model_validator(mode="after")
    def _something(self) -> "ReplayIn":
        if not self.ids and self.state is None:
            raise ValueError("name ids, or a state (e.g. dead)")
        return self


class ReplayOut(BaseModel):
    replayed: int


# --- users -------------------------------------------------------------------------------------

Password = Annotated[str, Field(min_length=12, max_length=256)]
UserZone = Annotated[
    str, Field(max_length=64, description="An IANA zone: the user's reports' when they name none.")
]


class UserIn(Strict):
    login: str = Field(
        min_length=1,
        max_length=64,
        description="1-64 lower-case letters, digits and . _ @ - (compared lower-cased).",
    )
    role: Literal["manager", "affiliate", "advertiser"]
    affiliate_id: Id | None = Field(default=None, description="An affiliate user's affiliate.")
    advertiser_id: Id | None = Field(default=None, description="An advertiser user's advertiser.")
    zone: UserZone = "UTC"
    password: Password | None = Field(
        default=None, description="Left out: one is generated and returned once, in the reply."
    )


class UserChange(Strict):
    """Every field optional: the ones given are changed."""

    zone: UserZone | None = None
    active: bool | None = Field(
        default=None,
        description="false: no sign-in, sessions ended, keys refused (never the last active manager).",
    )


class UserOut(BaseModel):
    id: int
    login: str
    role: str
    affiliate_id: int | None
    advertiser_id: int | None
    active: bool
    zone: str
    created_at: datetime
    keys: int = Field(description="API keys not revoked.")
    last_key_use: datetime | None = Field(description="When one of their keys was last used (to the minute).")
    last_sign_in_at: datetime | None = Field(None, description="When they last signed in to the dashboard.")


class UserCreatedOut(UserOut):
    password: str | None = Field(
        description="The generated password, shown this once; null when one was given."
    )


class PasswordIn(Strict):
    password: Password | None = Field(
        default=None, description="Left out: one is generated and returned once."
    )


class PasswordOut(BaseModel):
    password: str | None = Field(
        description="The generated password, shown this once; null when one was given."
    )


class KeyOut(BaseModel):
    key: str = Field(description="The new API key, shown this once: only its hash is kept.")


class RevokedOut(BaseModel):
    revoked: int


class DestinationOut(BaseModel):
    destination: str
    failures: int = Field(description="Failed attempts in a row.")
    paused_at: datetime | None = Field(description="Paused since; null: sending.")
    reason: str
    waiting: int = Field(description="Deliveries waiting for it.")
    held: int = Field(description="Deliveries held behind earlier ones of their conversions.")
    updated_at: datetime


class PauseIn(Strict):
    reason: str = Field(default="paused by hand", max_length=512, pattern=PRINTABLE)


class ResumeOut(BaseModel):
    destination: str
    due: int = Field(description="Waiting deliveries made due at once.")


class ConversionStatusIn(Strict):
    status: Literal["approved", "rejected", "cancelled"]
    reason: str = Field(min_length=1, max_length=512, pattern=PRINTABLE, description="Kept in its history.")


MAX_DIAGNOSIS_DAYS = 93


class DiagnosisQuery(Filters):
    advertiser_id: Id | None = None
    offer_id: Id | None = None
    since: UtcInstant | None = Field(default=None, description="Received at or after (default: 7 days ago).")
    until: UtcInstant | None = Field(default=None, description="Received before (default: now).")
    pending_days: int = Field(7, ge=1, le=365, description="Pending longer than this is a finding.")
    silent_hours: int = Field(
        24,
        ge=1,
        le=24 * 30,
        description="Clicks without a postback this long is a finding (if it converted before).",
    )


class TopReasonOut(BaseModel):
    code: str
    count: int
    sentence: str
    hint: str
    examples: list[PostbackLogOut]


class FindingOut(BaseModel):
    code: str
    message: str
    hint: str
    subject: str
    count: int


class DiagnosisOut(BaseModel):
    since: datetime
    until: datetime
    advertiser_id: int | None
    offer_id: int | None
    postbacks: int
    accepted: int
    duplicate: int
    rejected: int
    acceptance_rate: float | None = Field(description="Accepted over all postbacks; null without any.")
    by_reason: dict[str, int] = Field(description="Postbacks per reason code (refusals and duplicates).")
    top_reasons: list[TopReasonOut]
    findings: list[FindingOut]


class FieldOut(BaseModel):
    name: str
    aliases: list[str]
    meaning: str


class ExampleOut(BaseModel):
    event: str
    url: str


class PlatformPresetOut(BaseModel):
    platform: str
    kind: Literal["igaming", "network"]
    macros_public: bool = Field(description="False: the platform does not publish its macro names.")
    url: str
    note: str


class IntegrationOut(BaseModel):
    advertiser: str
    offer: str
    postback_url: str
    fields: list[FieldOut]
    events: list[str]
    examples: list[ExampleOut]
    statuses: dict[str, str] = Field(description="Every status word understood → the status it means.")
    reasons: list[ReasonOut]
    presets: list[PlatformPresetOut]


LinkVerdict = Literal["ok", "slow", "soft_404", "broken"]
LinkCheckCode = Literal[
    "ok",
    "slow",
    "soft_404",
    "http_error",
    "timeout",
    "connection_error",
    "refused_address",
    "redirect_loop",
    "too_many_redirects",
    "bad_redirect",
]


class RedirectHopOut(BaseModel):
    url: str
    status: int
    location: str = Field(description="The Location header as sent (empty on the last answer).")


class LinkCheckOut(BaseModel):
    """One check of an offer's URL (docs/link-checks.md)."""

    id: int
    offer_id: int
    checked_at: datetime
    url: str = Field(description="The offer URL requested, with the marked test click ID.")
    final_url: str = Field(description="The URL of the last answer, after redirects.")
    status: int | None = Field(description="The last answer's HTTP status; null: none came.")
    verdict: LinkVerdict
    code: LinkCheckCode = Field(description="Why, finer than the verdict.")
    hint: str = Field(description="What was seen and what to do, in a sentence.")
    elapsed_ms: int = Field(description="The requests' time (not the wait for a host's turn).")
    redirects: list[RedirectHopOut] = Field(description="Every request of the chain, in order.")
    error: str = Field(description="Why no answer came (timeout, connection, refused address).")


class LinkChecksLatestQuery(Paged):
    verdict: LinkVerdict | None = None


# --- the postback tester (docs/postbacks.md, "Testing an integration") -------------------------
# Values are sent to intake as the advertiser would send them, unchecked here: a wrong one gets
# intake's own refusal in the trace. Only their length and printability are the API's business.
SentText = Annotated[str, Field(min_length=1, max_length=MAX_PARAM_VALUE_LEN, pattern=PRINTABLE)]
# The alphabet of click IDs (core/clickids.py): anything else names no click.
CLICK_ID_PATTERN = "^[A-Za-z0-9_-]+$"
# The longest a listen-mode call waits: a stopping server waits for it, and the service files in
# deploy/ give a stop 30 s (ADR 13). A client wanting longer calls again.
MAX_WAIT_SECONDS = 20


class TestClickIn(Strict):
    offer_id: Id
    affiliate_id: Id | None = Field(
        default=None, description="Whose link to click; default: the offer's first active link."
    )


class TestClickOut(BaseModel):
    click_id: str
    offer_id: int
    affiliate_id: int
    link_code: str
    clicked_at: datetime
    offer_url: str = Field(description="Where the click sent the user (the offer URL, click ID in it).")
    postback_url: str = Field(
        description="The URL to give the advertiser: their token and this click ID in it."
    )
    examples: dict[str, str] = Field(description="One postback URL per event of the offer, for this click.")


class TestPostbackIn(Strict):
    click_id: Annotated[str, Field(min_length=1, max_length=64, pattern=CLICK_ID_PATTERN)]
    event: SentText
    payout: SentText | None = Field(
        default=None, description="Default: an example amount for amount events (none for a registration)."
    )
    currency: SentText | None = Field(default=None, description="Default: the offer's, with a payout.")
    txn_id: SentText | None = Field(default=None, description="Default: a new one, so each is a new event.")
    status: SentText | None = None
    player_id: SentText | None = Field(
        default=None, description="Default: a tester player for iGaming events."
    )


class ParameterOut(BaseModel):
    name: str
    value: str
    field: str | None = Field(description="The field it fills (an alias counts as its field); null: ignored.")
    understood: str = Field(description="Its value as intake reads it, or why it cannot.")


class OutcomeOut(BaseModel):
    result: Result
    reason: str | None = None
    message: str = ""
    hint: str = ""
    detail: str = ""
    conversion_id: int | None = None
    event: str | None = None
    status: str | None = None
    ignored_parameters: list[str] = Field(default_factory=list)


class LoggedPostbackOut(BaseModel):
    id: int
    received_at: datetime
    channel: Channel
    result: Result
    reason: str | None
    message: str
    hint: str
    detail: str
    http_status: int
    conversion_id: int | None
    query: str = Field(description="As the postback log keeps it (the token masked).")
    parameters: list[ParameterOut]
    ignored: list[str]


class OutboundPreviewOut(BaseModel):
    template_id: int
    event: str
    status: str
    method: str
    url: str = Field(description="Secrets in its query masked.")
    body: str
    content_type: str


class TracedConversionOut(BaseModel):
    id: int
    event: str
    status: str
    payout: Decimal | None
    currency: str | None
    deal_amount: Decimal | None
    deal_currency: str | None
    txn_id: str | None
    player_id: str
    event_at: datetime
    outbound: list[OutboundPreviewOut] = Field(description="The outbound postbacks it would fire.")


class CommissionPreviewOut(BaseModel):
    """What the deal would book for the test click's conversions (one player); nothing is booked."""

    deal: str = Field(description="cpa, revshare, hybrid; empty: no deal for this offer and affiliate.")
    currency: str
    cpa_amount: Decimal | None
    cpa_qualified: bool
    cpa_explanation: str
    revshare_percent: Decimal | None
    revshare_ngr: Decimal
    revshare_ftds: int
    revshare_earnings: Decimal | None = Field(description="One month of these conversions alone.")


class TraceOut(BaseModel):
    arrived: bool = Field(
        default=True, description="Listen mode: false when no postback came before the timeout."
    )
    click: TestClickOut
    postbacks: list[LoggedPostbackOut]
    conversions: list[TracedConversionOut]
    commission: CommissionPreviewOut
    cpa_outbound: list[OutboundPreviewOut] = Field(
        description="The outbound postbacks on the qualified_cpa a CPA qualification would add."
    )


class FiredOut(BaseModel):
    sent: str = Field(description="The postback as sent, the token masked.")
    parameters: list[ParameterOut]
    outcome: OutcomeOut
    refused: bool
    trace: TraceOut


class WaitQuery(Filters):
    timeout: float = Field(
        default=MAX_WAIT_SECONDS, ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait at most."
    )
    seen: int = Field(
        default=0, ge=0, le=1_000_000, description="Postbacks already seen for the click: wait for one more."
    )


AuditKind = Literal[
    "advertiser",
    "offer",
    "affiliate",
    "link",
    "deal",
    "cap",
    "conversion",
    "outbound_template",
    "user",
    "fx_rate",
    "spend_import",
    "delivery",
    "destination",
    "reconciliation",
    "reconciliation_mapping",
]


class AuditQuery(Paged, Instants):
    entity_kind: AuditKind | None = None
    entity_id: Id | None = None
    actor: str | None = Field(
        default=None, max_length=100, pattern=PRINTABLE, description="A user's login, or `bootstrap key`."
    )
    user_id: Id | None = None
    action: str | None = Field(default=None, max_length=32, pattern="^[a-z_]+$")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="The user's login at the time, `bootstrap key` or `system`.")
    user_id: int | None = Field(description="null: the bootstrap key (CLICKBACK_API_KEY) or the server.")
    entity_kind: str
    entity_id: int
    action: str = Field(description="create, edit, status, deal, cost, change_status …")
    before: dict[str, Any] | None = Field(description="The fields that changed, as they were; null: created.")
    after: dict[str, Any] | None = Field(description="The same fields as they became.")
    reason: str | None


class ConversionDetailOut(ConversionOut):
    """A conversion with what lies behind it (at most 200 of each, oldest first). Each party sees
    their own: an advertiser the postbacks, an affiliate the ledger entries and deliveries."""

    postbacks: list[PostbackLogOut] = Field(description="The postbacks that made and changed it.")
    commissions: list[CommissionOut] = Field(description="Its commission ledger entries.")
    deliveries: list[DeliveryOut] = Field(description="The outbound postbacks announcing it.")


class CapIn(Strict):
    """A conversion cap: past it a conversion is recorded, marked over_cap, and not paid. null: no
    limit of that kind. Counts so far are kept when the cap changes."""

    event: Literal["qualified_cpa"] = Field(
        default="qualified_cpa", description="What is counted: the CPA qualification."
    )
    daily: int | None = Field(default=None, ge=0, le=10**9, description="At most this many a day in `zone`.")
    total: int | None = Field(default=None, ge=0, le=10**9, description="At most this many ever.")
    zone: str = Field(default="UTC", max_length=64, description="The IANA time zone of the daily cap's days.")


class CapOut(BaseModel):
    id: int
    offer_id: int
    affiliate_id: int | None = Field(description="null: the offer's, every affiliate together.")
    event: str
    daily: int | None
    total: int | None
    zone: str
    today: int = Field(description="Counted on today's day in `zone`.")
    counted: int = Field(description="Counted in total (while it had a total).")
    updated_at: datetime
