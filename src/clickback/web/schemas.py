"""The JSON API's request and response shapes (and so its OpenAPI document)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator, model_validator

from clickback.core.events import STANDARD_EVENTS, normalise_event
from clickback.core.limits import MAX_EVENT_LEN, MAX_NAME_LEN, MAX_URL_LEN
from clickback.core.macros import TemplateError, compile_template
from clickback.core.money import money_text, parse_amount, parse_currency

Money = Annotated[Decimal, PlainSerializer(money_text, return_type=str)]

# Names are shown in pages and CSV and stored as text: no control characters (PostgreSQL refuses NUL).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Name = Field(min_length=1, max_length=MAX_NAME_LEN, pattern=PRINTABLE)
# Database integer keys: anything larger cannot exist, and would overflow the drivers.
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
StatusWord = Literal["active", "paused"]


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
    currency: str = Field(min_length=3, max_length=3, examples=["EUR"])
    payouts: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Default payout per event when a postback names none.",
        examples=[{"registration": "0", "first_deposit": "50.00"}],
        max_length=50,
    )
    custom_events: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("url_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            compile_template(value)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        code = parse_currency(value)
        if code is None:
            raise ValueError(f"{value!r} is not an ISO 4217 code")
        return code

    @field_validator("custom_events")
    @classmethod
    def _custom(cls, value: list[str]) -> list[str]:
        events = [normalise_event(e) for e in value]
        if not all(e and len(e) <= MAX_EVENT_LEN and e.isidentifier() for e in events):
            raise ValueError("use names of letters, digits and underscores")
        return events

    @model_validator(mode="after")
    def _payouts(self) -> "OfferIn":
        payouts = {normalise_event(k): v for k, v in self.payouts.items()}
        for event, amount in payouts.items():
            if event not in STANDARD_EVENTS | set(self.custom_events):
                raise ValueError(f"payouts: {event!r} is neither standard nor custom")
            if not amount.is_finite() or parse_amount(str(amount)) is None:
                raise ValueError(f"payouts: {event!r} needs a non-negative amount")
        self.payouts = payouts
        return self


class OfferOut(BaseModel):
    id: int
    advertiser_id: int
    name: str
    url_template: str
    currency: str
    status: StatusWord
    payouts: dict[str, Money]
    custom_events: list[str]
    created_at: datetime


class AffiliateIn(Strict):
    name: str = Name


class AffiliateOut(BaseModel):
    id: int
    name: str
    status: StatusWord
    created_at: datetime


class LinkIn(Strict):
    affiliate_id: Id
    offer_id: Id
    campaign: str = Field(default="", max_length=MAX_NAME_LEN, pattern=PRINTABLE)


class LinkOut(BaseModel):
    id: int
    code: str
    affiliate_id: int
    offer_id: int
    campaign: str
    status: StatusWord
    url: str = Field(description="The tracking link to give the affiliate.")
    created_at: datetime


class StatusIn(Strict):
    status: StatusWord


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


class HistoryOut(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    postback_id: int | None


class ConversionOut(BaseModel):
    id: int
    advertiser_id: int
    click_id: str
    txn_id: str | None
    event: str
    status: str
    payout: Money | None
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
    clicked_at: datetime
    created_at: datetime
    updated_at: datetime
    attributed_at: datetime | None
    history: list[HistoryOut] = Field(default_factory=list)


class ReportRowOut(BaseModel):
    day: date | None = None
    affiliate_id: int | None = None
    offer_id: int | None = None
    link_id: int | None = None
    sub1: str | None = None
    country: str | None = None
    device_type: str | None = None
    clicks: int = Field(description="Bots included only with bots=include.")
    unique_clicks: int
    bot_clicks: int
    conversions: dict[str, int]
    rejected: int = Field(description="Rejected and cancelled conversions.")
    payout: dict[str, Money] = Field(description="Pending and approved payout, per currency.")


class ReportOut(BaseModel):
    first: date
    last: date
    group_by: list[str]
    date_basis: str
    rows: list[ReportRowOut]
    totals: ReportRowOut


class RefusedClicksOut(BaseModel):
    day: date
    reason: str
    code: str = Field(description="The link code that was asked for.")
    clicks: int


class ReasonOut(BaseModel):
    code: str
    http_status: int
    message: str
    hint: str


class RuntimeOut(BaseModel):
    clicks_pending: int = Field(
        description="Redirected clicks held in memory, not yet written: without durable mode, "
        "what a crash of this process right now would lose."
    )
    clicks_written: int
    clicks_spilled: int = Field(description="Clicks moved to the spool because the database failed.")
    spool_files: int
    flush_failures: int
    durable_clicks: bool
    spool_failures: int = Field(description="Durable-mode clicks that could not be spooled (disk).")
    catalog_version: int
