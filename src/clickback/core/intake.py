"""An inbound postback, from raw request to a decision, as named steps read top to bottom.

    STEPS: parse → alias → macros → authenticate (token, allowlist) → signature → click ID
           → event → status → payout → currency → period → event time
    then, with the click looked up by the caller: attribute (advertiser, event of the offer, price)
    then, for a transaction seen before: repeat (duplicate, status change, or conflict)

Every step either fills in the draft or returns Rejected(reason). Nothing here does I/O.
"""

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, unquote_plus

from clickback.core.clickids import ClickIdCodec, VerifiedClickId
from clickback.core.clicks import SUB_KEYS
from clickback.core.digits import is_digits
from clickback.core.events import SIGNED_EVENTS, STANDARD_EVENTS, normalise_event
from clickback.core.eventtime import (
    EventTime,
    check_age,
    check_period,
    check_period_after_click,
    event_moment,
    parse_event_time,
)
from clickback.core.lifecycle import DEFAULT_STATUS, Status, can_move, parse_status
from clickback.core.limits import (
    MAX_BODY_BYTES,
    MAX_EVENT_LEN,
    MAX_PARAM_NAME_LEN,
    MAX_PARAM_VALUE_LEN,
    MAX_PARAMS,
    MAX_SUB_ID_LEN,
    MAX_TXN_ID_LEN,
)
from clickback.core.macros import find_unsent_macro
from clickback.core.model import Advertiser, Catalog, Click, Offer, token_digest
from clickback.core.money import parse_amount, parse_currency, parse_period
from clickback.core.reasons import Reason, Rejected

# Our field, then every name other platforms send it under (shared/reference/postback-conventions.md).
ALIASES: Mapping[str, tuple[str, ...]] = {
    "click_id": ("click_id", "clickid", "cid", "subid", "cnv_id", "click"),
    "txn_id": ("txn_id", "transaction_id", "tid", "txid", "order_id", "action_id"),
    "event": ("event", "goal", "et", "event_type", "goal_alias"),
    "status": ("status", "cnv_status", "conv_status", "conversion_status"),
    "payout": ("payout", "amount", "revenue", "sum"),
    "currency": ("currency", "cnv_currency", "cur"),
    "token": ("token", "secret"),
    "player_id": ("player_id", "playerid", "player", "customer_id"),
    "period": ("period",),
    # When the event happened (core/eventtime.py); names operators' platforms and trackers use.
    "event_time": (
        "event_time",
        "event_date",
        "event_ts",
        "date",
        "datetime",
        "time",
        "timestamp",
        "ts",
        "conversion_time",
        "conv_time",
        "occurred_at",
    ),
    **{key: (key, "s" + key[3:]) for key in SUB_KEYS},
}
_FIELD_OF = {alias: name for name, aliases in ALIASES.items() for alias in aliases}


def field_of(parameter: str) -> str | None:
    """Our field a parameter name fills (any of its aliases), None for a name intake ignores."""
    return _FIELD_OF.get(parameter.strip().lower())


_LIMITS = {"txn_id": MAX_TXN_ID_LEN, "event": MAX_EVENT_LEN, "player_id": MAX_SUB_ID_LEN} | {
    k: MAX_SUB_ID_LEN for k in SUB_KEYS
}
MAX_IGNORED_SHOWN = 10
DEFAULT_MAX_EVENT_AGE = timedelta(days=180)
# How far a signed postback's timestamp may be from clickback's clock, either way.
SIGNATURE_WINDOW = timedelta(seconds=300)
# Control characters and U+FFFD (what undecodable bytes became).
_INVALID = re.compile("[\x00-\x1f\x7f\ufffd]")
# Lone surrogates: JSON can carry them ("\ud800"), UTF-8 cannot, so no database, log or reply could
# hold them: refused as the body is read, before anything echoes the name or value.
_SURROGATE = re.compile("[\ud800-\udfff]")
# What an excerpt must not end inside: a run of the characters of a token, a key, a click ID.
_WORD_AT_END = re.compile(r"[A-Za-z0-9_-]+$")


# How a postback arrived: the advertiser's server, the user's browser on its thank-you page, or
# a person accepting the operator's figure of a reconciliation (ADR 20), which takes the same
# path as the advertiser's own postback would have.
S2S, PIXEL, RECON = "s2s", "pixel", "recon"


def is_claim(channel: str, confirmed: bool) -> bool:
    """Whether a conversion is a pixel's claim no server or person has confirmed: any visitor
    can fire the pixel, so such a claim counts in no commission (store.ledger.NOT_A_CLAIM is
    the same rule in SQL)."""
    return channel == PIXEL and not confirmed


@dataclass(frozen=True, slots=True)
class RawPostback:
    """The request as the web adapter saw it; parsing it is the domain's job."""

    received_at: datetime
    ip: str
    method: str
    query: bytes
    body: bytes = b""
    content_type: str = ""
    body_too_large: bool = False
    # X-Clickback-Timestamp and X-Clickback-Signature, for advertisers who sign (signature step).
    timestamp: str = ""
    signature: str = ""
    channel: str = S2S
    # A tracking pixel's (GET /p/{code}): the offer's public pixel code, which authenticates it in
    # place of a token, and the click ID its cookie held.
    pixel_code: str = ""
    cookie_click_id: str = ""
    # A postback clickback sends itself (channel RECON): where its figure comes from (the
    # reconciliation, its file and lines, who and when), kept as the reason of the history row
    # of the conversion it books, so the conversion points back to its source. Never read from
    # a request.
    note: str = ""

    @property
    def pixel(self) -> bool:
        return self.channel == PIXEL


def player_key(player_id: str) -> str:
    """The duplicate key of a player's events sent without a transaction ID (one per player)."""
    return "player:" + player_id


@dataclass(frozen=True, slots=True)
class Postback:
    """A postback whose every field is valid; what remains depends on the click and past postbacks."""

    advertiser: Advertiser
    # None when only the player is named: the caller attributes through the player's first click.
    click: VerifiedClickId | None
    event: str
    status: Status
    status_given: bool
    payout: Decimal | None
    currency: str | None
    txn_id: str | None
    subs: tuple[str, ...]
    player_id: str
    ignored: tuple[str, ...]
    period: str | None = None
    # As the sender stated it; None: the event happened when the postback arrived.
    event_time: EventTime | None = None
    # The verified signature of a signed postback (accepted once: the group checks replays).
    signature: str = ""
    # A pixel's offer: only clicks of that offer count.
    pixel_offer_id: int | None = None
    # S2S or RECON (a pixel's is told by pixel_offer_id).
    via: str = S2S

    @property
    def channel(self) -> str:
        return self.via if self.pixel_offer_id is None else PIXEL

    @property
    def dedupe_key(self) -> str:
        # Without a transaction ID an event counts once per player, else once per click (a second
        # deposit without one is a duplicate: the reply's hint says to send txn_id for repeats).
        if self.txn_id is not None:
            return self.txn_id
        if self.player_id:
            return player_key(self.player_id)
        assert self.click is not None
        return "click:" + self.click.value

    @property
    def click_value(self) -> str:
        return self.click.value if self.click else ""


@dataclass(slots=True)
class _Draft:
    raw: RawPostback
    catalog: Catalog
    codec: ClickIdCodec
    params: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    advertiser: Advertiser | None = None
    pixel_offer: Offer | None = None
    click: VerifiedClickId | None = None
    event: str = ""
    status: Status = DEFAULT_STATUS
    payout: Decimal | None = None
    currency: str | None = None
    period: str | None = None
    event_time: EventTime | None = None
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE
    signature: str = ""


def parse(d: _Draft) -> Rejected | None:
    if d.raw.body_too_large or len(d.raw.body) > MAX_BODY_BYTES:
        return Rejected(Reason.BODY_TOO_LARGE)
    pairs = _pairs(d.raw.query)
    if isinstance(pairs, Rejected):
        return pairs
    body_pairs = _body_pairs(d.raw)
    if isinstance(body_pairs, Rejected):
        return body_pairs
    pairs += body_pairs
    if len(pairs) > MAX_PARAMS:
        return Rejected(Reason.TOO_MANY_PARAMETERS, str(len(pairs)))
    for name, value in pairs:
        if len(name) > MAX_PARAM_NAME_LEN:
            return Rejected(Reason.PARAMETER_TOO_LONG, excerpt(name, MAX_PARAM_NAME_LEN))
        key = name.strip().lower()
        limit = _LIMITS.get(_FIELD_OF.get(key, ""), MAX_PARAM_VALUE_LEN)
        if len(value) > limit:
            return Rejected(Reason.PARAMETER_TOO_LONG, f"{key} (limit {limit})")
        if _INVALID.search(name) or _INVALID.search(value):
            return Rejected(Reason.INVALID_CHARACTERS, key)
        if d.params.setdefault(key, value) != value:
            return Rejected(Reason.REPEATED_PARAMETER, key)
    return None


def excerpt(text: str, limit: int) -> str:
    """The beginning of something sent (a JSON body read as a form is one long name), for the
    reply and the log: cut between words, never inside one. The whole of a secret in it is masked
    on the way out (core/redact.py); the first characters of one cut short could not be."""
    if len(text) <= limit:
        return text
    return cut_between_words(text[:limit])


def cut_between_words(start: str) -> str:
    """The first characters of something longer, quoted as excerpt quotes it."""
    return _WORD_AT_END.sub("", start) + "…"


def _pairs(data: bytes) -> list[tuple[str, str]] | Rejected:
    try:
        text = data.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMS)
    except UnicodeDecodeError:
        return Rejected(Reason.INVALID_CHARACTERS, "the request is not valid UTF-8")
    except ValueError:
        return Rejected(Reason.TOO_MANY_PARAMETERS, f"more than {MAX_PARAMS}")


def _body_pairs(raw: RawPostback) -> list[tuple[str, str]] | Rejected:
    if not raw.body.strip():
        return []
    kind = raw.content_type.split(";", 1)[0].strip().lower()
    if _declares_json(kind):
        return _json_pairs(raw.body)
    if _is_json_object(raw.body):
        # Some senders post JSON as text/plain (a browser's sendBeacon, no-code tools): read as
        # JSON, the object is what they meant. Sent as a form (curl -d's default) or untyped, it
        # was read as one parameter named after the whole body, refused as too long or as
        # missing every field: say what to fix instead.
        if kind == "text/plain":
            return _json_pairs(raw.body)
        if not kind:
            return Rejected(Reason.WRONG_CONTENT_TYPE, "sent without a Content-Type")
        return Rejected(Reason.WRONG_CONTENT_TYPE, f"sent as {kind[:64]}" if kind.isprintable() else "")
    # Form bodies, and bodies sent without a content type by bare-bones HTTP clients.
    return _pairs(raw.body)


def _declares_json(kind: str) -> bool:
    """application/json, the older text/json, and JSON-based types (application/vnd.api+json)."""
    return kind in ("application/json", "text/json") or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _is_json_object(body: bytes) -> bool:
    # Leading JSON whitespace and a byte order mark, as core/redact reads a body: a body taken
    # for JSON here is masked as JSON in the log. The bytes first: a form is not decoded twice.
    if not body.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(body.decode("utf-8").removeprefix("\ufeff")), dict)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False


def json_pairs(text: str) -> list[tuple[str, str]] | Rejected:
    """A JSON body's parameters as intake reads them (also how the tester shows a logged one)."""
    try:
        doc = json.loads(text.removeprefix("\ufeff"))
    except (ValueError, RecursionError):
        return Rejected(Reason.INVALID_CHARACTERS, "the JSON body does not parse")
    if not isinstance(doc, dict) or len(doc) > MAX_PARAMS:
        return Rejected(Reason.TOO_MANY_PARAMETERS, "send one flat JSON object")
    scalars = (str, int, float, Decimal)
    if not all(isinstance(v, scalars) and not isinstance(v, bool) for v in doc.values()):
        return Rejected(Reason.INVALID_CHARACTERS, "JSON values must be strings or numbers")
    pairs = [(str(k), str(v)) for k, v in doc.items()]
    for name, value in pairs:
        if _SURROGATE.search(name) or _SURROGATE.search(value):
            shown = name.encode(errors="backslashreplace").decode()
            return Rejected(Reason.INVALID_CHARACTERS, f"{shown}: a lone surrogate")
    return pairs


def _json_pairs(body: bytes) -> list[tuple[str, str]] | Rejected:
    try:
        # UTF-8 only (RFC 8259), a byte order mark allowed: json.loads would also read UTF-16
        # and UTF-32, which the postback log, keeping the body as UTF-8, could not mask.
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected(Reason.INVALID_CHARACTERS, "the JSON body is not UTF-8")
    return json_pairs(text)


def alias(d: _Draft) -> Rejected | None:
    for name, value in d.params.items():
        field_name = _FIELD_OF.get(name)
        if field_name is None:
            d.ignored.append(name)
            continue
        if d.fields.setdefault(field_name, value) != value:
            names = [a for a in ALIASES[field_name] if a in d.params]
            return Rejected(Reason.CONFLICTING_ALIASES, " and ".join(names))
    return None


def macros(d: _Draft) -> Rejected | None:
    for name, value in d.fields.items():
        found = find_unsent_macro(value)
        if found is not None:
            return Rejected(Reason.UNREPLACED_MACRO, f"{name}={found}")
    return None


def authenticate(d: _Draft) -> Rejected | None:
    if d.raw.pixel:
        return _pixel(d)
    token = d.fields.get("token", "")
    if not token:
        return Rejected(Reason.MISSING_TOKEN)
    owner = _token_owner(d.catalog, token)
    if owner is None:
        return Rejected(Reason.BAD_TOKEN)
    advertiser, current = owner
    if not current:
        until = advertiser.previous_token_until
        if until is None or d.raw.received_at >= until:
            d.advertiser = advertiser  # the log names whose old token it was
            return Rejected(
                Reason.TOKEN_REPLACED, f"replaced, valid until {until:%Y-%m-%dT%H:%M:%SZ}" if until else ""
            )
    d.advertiser = advertiser
    if not advertiser.allows(d.raw.ip):
        return Rejected(Reason.IP_NOT_ALLOWED, d.raw.ip[:45])
    return None


def _token_owner(catalog: Catalog, token: str) -> tuple[Advertiser, bool] | None:
    """The advertiser whose token this is, and whether it is their current one (else their
    previous one, whatever its overlap): found by the token's digest, compared in constant time."""
    advertiser = catalog.advertisers_by_token.get(token_digest(token))
    if advertiser is None:
        return None
    if hmac.compare_digest(token.encode(), advertiser.token.encode()):
        return advertiser, True
    if advertiser.previous_token and hmac.compare_digest(token.encode(), advertiser.previous_token.encode()):
        return advertiser, False
    return None


# A request naming more tokens than this is not read for them.
_MAX_TOKENS_READ = 4


def _sender(d: _Draft) -> Advertiser | None:
    """Whose postback a request refused before authentication is, so that the advertiser's
    diagnosis, log and key see it: the one advertiser its token(s) belong to, else None (no
    token, a wrong one, or the tokens of two advertisers). The request may not have parsed: its
    query and body are read leniently here, for the token alone."""
    if d.raw.pixel:
        offer = d.catalog.offers_by_pixel.get(d.raw.pixel_code)
        return d.catalog.advertisers[offer.advertiser_id] if offer is not None else None
    owners = {}
    for token in _tokens_sent(d.raw)[:_MAX_TOKENS_READ]:
        # A lone surrogate (JSON can carry one) has no UTF-8 to digest, and is no one's token.
        owner = None if _SURROGATE.search(token) else _token_owner(d.catalog, token)
        if owner is not None:
            owners[owner[0].id] = owner[0]
    return next(iter(owners.values())) if len(owners) == 1 else None


def _tokens_sent(raw: RawPostback) -> list[str]:
    texts = [raw.query.decode("utf-8", "replace")]
    if raw.body and not raw.body_too_large:
        if _is_json_object(raw.body):
            doc = json.loads(raw.body.decode("utf-8").removeprefix("\ufeff"))
            return [
                *_tokens_in(texts[0]),
                *(str(v) for k, v in doc.items() if str(k).strip().lower() in ALIASES["token"]),
            ]
        texts.append(raw.body.decode("utf-8", "replace"))
    return [token for text in texts for token in _tokens_in(text)]


def _tokens_in(text: str) -> list[str]:
    found = []
    for piece in text.split("&"):
        name, sep, value = piece.partition("=")
        if sep and value and unquote_plus(name).strip().lower() in ALIASES["token"]:
            found.append(unquote_plus(value))
    return found


def signature(d: _Draft) -> Rejected | None:
    """For an advertiser with a signing secret: HMAC-SHA256 over the timestamp, the query string
    and the body as sent, within SIGNATURE_WINDOW of clickback's clock."""
    assert d.advertiser is not None
    if not d.advertiser.signing_secret or d.raw.pixel:
        # A pixel cannot sign (its page is public): its code and the click's offer vouch for it.
        return None
    stamp, given = d.raw.timestamp.strip(), d.raw.signature.strip()
    if not stamp or not given:
        return Rejected(Reason.MISSING_SIGNATURE)
    if not is_digits(stamp) or len(stamp) > 12:
        return Rejected(Reason.BAD_SIGNATURE, "X-Clickback-Timestamp must be Unix seconds")
    skew = abs(d.raw.received_at.timestamp() - int(stamp))
    if skew > SIGNATURE_WINDOW.total_seconds():
        return Rejected(Reason.SIGNATURE_EXPIRED, f"{skew:.0f} s from clickback's clock")
    expected = sign(d.advertiser.signing_secret, stamp, d.raw.query, d.raw.body)
    if not hmac.compare_digest(given.removeprefix("sha256=").lower().encode(), expected.encode()):
        return Rejected(Reason.BAD_SIGNATURE)
    d.signature = expected
    return None


# How a sender signs, as the API tells the manager who passes it on.
SIGNATURE_FORMAT = (
    "X-Clickback-Timestamp: <Unix seconds>; X-Clickback-Signature: sha256=<hex HMAC-SHA256, keyed"
    " with the signing secret, of: timestamp, newline, the query string as sent, newline, the body"
    " as sent>; accepted within 300 s of clickback's clock, once."
)


def sign(secret: str, timestamp: str, query: bytes, body: bytes) -> str:
    """The hex signature of a postback, as its sender computes it (docs/postbacks.md)."""
    message = timestamp.encode() + b"\n" + query + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _pixel(d: _Draft) -> Rejected | None:
    """A pixel sits in a public page: its code names the offer, the click ID must then be one of
    that offer's own clicks (attribute), and a token is never read (the web adapter drops it)."""
    offer = d.catalog.offers_by_pixel.get(d.raw.pixel_code)
    if offer is None:
        return Rejected(Reason.UNKNOWN_PIXEL, d.raw.pixel_code[:32])
    d.pixel_offer = offer
    d.advertiser = d.catalog.advertisers[offer.advertiser_id]
    return None


def click_id(d: _Draft) -> Rejected | None:
    value = d.fields.get("click_id", "").strip()
    if d.raw.pixel:
        # The query's click ID wins: the advertiser passed on the one their page was opened with,
        # where the cookie may be an older click's of the same browser.
        value = value or d.raw.cookie_click_id
        if not value:
            return Rejected(
                Reason.MISSING_CLICK_ID, "neither the query (click_id) nor the cb_click cookie held one"
            )
    if not value:
        if d.fields.get("player_id", "").strip():
            return None  # a known player's later event: attributed through the player
        return Rejected(Reason.MISSING_CLICK_ID, _guess_click_param(d))
    verified = d.codec.verify(value, d.raw.received_at)
    if isinstance(verified, Rejected):
        return verified
    d.click = verified
    return None


def _guess_click_param(d: _Draft) -> str:
    # Ignored names first (clk_id), then another field's (transaction_id, sub1): any name but the
    # click ID's own may be where the sender's template put it.
    named = [*d.ignored, *(name for name in d.params if _FIELD_OF.get(name) not in (None, "click_id"))]
    for name in named:
        if isinstance(d.codec.verify(d.params[name], d.raw.received_at), VerifiedClickId):
            read_as = _FIELD_OF.get(name)
            also = f" ('{name}' is read as {read_as})" if read_as else ""
            return f"parameter '{name}' holds a click ID: send it as click_id{also}"
    return ""


def event(d: _Draft) -> Rejected | None:
    raw = d.fields.get("event", "").strip()
    if not raw:
        return Rejected(Reason.MISSING_EVENT)
    assert d.advertiser is not None
    d.event = normalise_event(raw, d.catalog.names_of(d.advertiser.id).events)
    return None


def status(d: _Draft) -> Rejected | None:
    raw = d.fields.get("status", "").strip()
    if d.raw.pixel:
        # Anyone who can click the link can fire its pixel: a pixel conversion waits for a person
        # or an S2S postback to approve it (ADR 12), whatever status the page states.
        d.status = Status.PENDING
        if raw:
            d.ignored.append("status")
        return None
    if raw:
        assert d.advertiser is not None
        words = d.catalog.names_of(d.advertiser.id).statuses
        parsed = words.get(raw.lower()) or parse_status(raw)
        if parsed is None:
            configured = ", ".join(f"{k}→{v}" for k, v in sorted(words.items()))
            return Rejected(
                Reason.UNKNOWN_STATUS, f"'{raw}' arrived" + (f"; mapped: {configured}" if configured else "")
            )
        d.status = parsed
    return None


def payout(d: _Draft) -> Rejected | None:
    raw = d.fields.get("payout", "").strip()
    if raw:
        d.payout = parse_amount(raw, signed=d.event in SIGNED_EVENTS)
        if d.payout is None:
            return Rejected(Reason.INVALID_PAYOUT, raw)
    return None


def currency(d: _Draft) -> Rejected | None:
    raw = d.fields.get("currency", "").strip()
    if raw:
        d.currency = parse_currency(raw)
        if d.currency is None:
            return Rejected(Reason.UNKNOWN_CURRENCY, raw)
    return None


def period(d: _Draft) -> Rejected | None:
    raw = d.fields.get("period", "").strip()
    if raw:
        d.period = parse_period(raw)
        if d.period is None:
            return Rejected(Reason.INVALID_PERIOD, raw)
        return check_period(d.period, d.raw.received_at, d.max_event_age)
    return None


def event_time(d: _Draft) -> Rejected | None:
    raw = d.fields.get("event_time", "").strip()
    if raw:
        stated = parse_event_time(raw)
        if stated is None:
            return Rejected(Reason.INVALID_EVENT_TIME, raw)
        rejected = check_age(stated, d.raw.received_at, d.max_event_age)
        if rejected is not None:
            return rejected
        d.event_time = stated
    return None


STEPS: Sequence[Callable[[_Draft], Rejected | None]] = (
    parse,
    alias,
    macros,
    authenticate,
    signature,
    click_id,
    event,
    status,
    payout,
    currency,
    period,
    event_time,
)
# Refusals decided before the token is checked: their log entry still names the advertiser
# whose token the request carries (see _sender).
_BEFORE_AUTHENTICATION = STEPS[: STEPS.index(authenticate)]


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal together with what was learnt before it, for the postback log."""

    rejected: Rejected
    advertiser_id: int | None
    click_id: str
    ignored: tuple[str, ...]


def read_postback(
    raw: RawPostback,
    catalog: Catalog,
    codec: ClickIdCodec,
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE,
) -> Postback | Refused:
    d = _Draft(raw, catalog, codec, max_event_age=max_event_age)
    for step in STEPS:
        rejected = step(d)
        if rejected is not None:
            if d.advertiser is None and step in _BEFORE_AUTHENTICATION:
                d.advertiser = _sender(d)
            return Refused(
                rejected,
                d.advertiser.id if d.advertiser else None,
                (d.fields.get("click_id", "") or d.raw.cookie_click_id)[:64],
                tuple(d.ignored[:MAX_IGNORED_SHOWN]),
            )
    assert d.advertiser is not None
    txn_id = d.fields.get("txn_id", "").strip()
    return Postback(
        advertiser=d.advertiser,
        click=d.click,
        event=d.event,
        status=d.status,
        status_given=not d.raw.pixel and bool(d.fields.get("status", "").strip()),
        payout=d.payout,
        currency=d.currency,
        txn_id=txn_id or None,
        subs=tuple(d.fields.get(key, "") for key in SUB_KEYS),
        player_id=d.fields.get("player_id", "").strip(),
        ignored=tuple(d.ignored[:MAX_IGNORED_SHOWN]),
        period=d.period,
        event_time=d.event_time,
        signature=d.signature,
        pixel_offer_id=d.pixel_offer.id if d.pixel_offer else None,
        via=RECON if raw.channel == RECON else S2S,
    )


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who is credited and with what. `click` is None while the click is still in flight: the
    conversion is kept and attributed when the click row lands (see attribute_late)."""

    click: Click | None
    payout: Decimal | None
    currency: str | None
    # When the event counts (core/eventtime.py): as stated, else its arrival.
    event_at: datetime


def attribute(
    postback: Postback,
    click: Click | None,
    catalog: Catalog,
    now: datetime,
    in_flight_window: timedelta,
    through_player: bool = False,
) -> Attribution | Rejected:
    """`through_player`: a known player's later event, which the attribution window does not
    limit (the player was acquired within it; their deposits and revenue are their lifetime's)."""
    assert postback.click is not None, "attributed through the player before this step"
    event_at = event_moment(postback.event_time, postback.click.clicked_at, now)
    if isinstance(event_at, Rejected):
        return event_at
    if postback.period is not None:
        rejected = check_period_after_click(postback.period, postback.click.clicked_at)
        if rejected is not None:
            return rejected
    if click is None:
        # A genuine ID this young may still be in a node's write buffer: keep the conversion.
        if now - postback.click.clicked_at > in_flight_window:
            return Rejected(Reason.UNKNOWN_CLICK, postback.click.value)
        known = STANDARD_EVENTS | catalog.custom_events_of(postback.advertiser.id)
        if postback.event not in known:
            return Rejected(
                Reason.UNKNOWN_EVENT, _event_detail(postback.event, known, catalog, postback.advertiser.id)
            )
        return Attribution(None, postback.payout, postback.currency, event_at)
    offer = catalog.offers.get(click.offer_id)
    rejected = check_offer(
        postback.advertiser.id, postback.event, offer, postback.click.value, catalog, postback.pixel_offer_id
    )
    if rejected is not None:
        return rejected
    assert offer is not None
    if offer.attribution_days is not None and not through_player:
        age = event_at - click.clicked_at
        if age > timedelta(days=offer.attribution_days):
            return Rejected(
                Reason.ATTRIBUTION_WINDOW_PASSED,
                f"{age.days} days after the click; the offer's window is {offer.attribution_days} days",
            )
    payout, currency = price(postback.event, postback.payout, postback.currency, offer)
    return Attribution(click, payout, currency, event_at)


def check_offer(
    advertiser_id: int,
    event_name: str,
    offer: Offer | None,
    click_value: str,
    catalog: Catalog,
    pixel_offer_id: int | None = None,
) -> Rejected | None:
    """The click must be on an offer of the posting advertiser (on the pixel's own offer, for a
    pixel), and the event one it knows."""
    if pixel_offer_id is not None and (offer is None or offer.id != pixel_offer_id):
        # A pixel has no token to change, whoever's the click is (foreign_click's hint would say
        # to use another one); and its log, the pixel's advertiser's to read, names no offer of
        # another advertiser's.
        if offer is None or offer.advertiser_id != advertiser_id:
            return Rejected(Reason.WRONG_PIXEL, f"pixel of offer {pixel_offer_id}")
        return Rejected(Reason.WRONG_PIXEL, f"click of offer {offer.id}, pixel of offer {pixel_offer_id}")
    if offer is None or offer.advertiser_id != advertiser_id:
        return Rejected(Reason.FOREIGN_CLICK, click_value)
    known = STANDARD_EVENTS | offer.custom_events
    if event_name not in known:
        return Rejected(Reason.UNKNOWN_EVENT, _event_detail(event_name, known, catalog, advertiser_id))
    return None


def price(event_name: str, payout: Decimal | None, currency: str | None, offer: Offer) -> tuple[Decimal, str]:
    """The postback's own amount wins; otherwise the offer's default for the event, else zero."""
    if payout is None:
        return offer.payouts.get(event_name, Decimal(0)), offer.currency
    return payout, currency or offer.currency


def _event_detail(arrived: str, known: frozenset[str], catalog: Catalog, advertiser_id: int) -> str:
    mapped = catalog.names_of(advertiser_id).events
    names = (
        f"; your names mapped: {', '.join(f'{k}→{v}' for k, v in sorted(mapped.items()))}" if mapped else ""
    )
    return f"'{arrived}' arrived{names}; this offer knows: {', '.join(sorted(known))}"


@dataclass(frozen=True, slots=True)
class Existing:
    """The conversion already recorded under the same advertiser, transaction ID and event.
    `channel` is PIXEL only while the advertiser's server has not confirmed it."""

    id: int
    click_id: str
    status: Status
    channel: str = S2S
    player_id: str = ""


@dataclass(frozen=True, slots=True)
class Duplicate:
    pass


@dataclass(frozen=True, slots=True)
class StatusChange:
    new: Status


# Why a pixel's conversion was rejected when the advertiser's server reported its transaction for
# another click or player (kept in the conversion's history).
OVERRIDDEN = "the advertiser's server named another click"
OVERRIDDEN_PLAYER = "the advertiser's server named another player"


@dataclass(frozen=True, slots=True)
class Overrides:
    """The advertiser's server reports, for another click or player, the transaction of a pixel
    conversion it has not confirmed: the server's postback is recorded as a conversion of its own,
    and the pixel's is rejected, `why` kept in its history. Anyone can fire a pixel with a guessed
    order ID; it must not keep the server's conversion out, nor give it to its own click."""

    why: str


def on_repeat(
    postback: Postback, existing: Existing, named_click: str = ""
) -> Duplicate | StatusChange | Overrides | Rejected:
    """`named_click`: the click ID the postback itself carried, before a known player's click
    took its place ("" when it named only the player)."""
    txn = postback.txn_id or ""
    # The advertiser's server confirming what the browser's pixel reported: its status counts,
    # stated or not (a postback without one means approved), and so does its amount.
    confirms = restates_amount(postback, existing)
    if confirms:
        # ...but only for the click (and player) the pixel reported: the authenticated server
        # decides whose conversion it is, a browser's claim it has not confirmed does not.
        for click in (postback.click_value, named_click):
            if click and click != existing.click_id:
                return Overrides(f"{OVERRIDDEN} ({click[:64]})")
        if postback.player_id and existing.player_id and postback.player_id != existing.player_id:
            return Overrides(f"{OVERRIDDEN_PLAYER} ({postback.player_id[:64]})")
    if existing.click_id != postback.click_value:
        return _conflict(txn, f"recorded on click {existing.click_id[:64]}")
    # One click can bring two players (one device, one household), and a platform may number
    # transactions per player: another player's transaction is not this one's to change.
    if postback.player_id and existing.player_id and postback.player_id != existing.player_id:
        return _conflict(txn, f"recorded for player {existing.player_id[:64]}")
    if not confirms and (not postback.status_given or postback.status is existing.status):
        return Duplicate()
    if postback.status is not existing.status and not can_move(existing.status, postback.status):
        return Rejected(Reason.INVALID_STATUS_TRANSITION, f"{existing.status} → {postback.status}")
    # A confirmation keeping the status is one all the same: the amount becomes the server's, and
    # the conversion the server's own (its later postbacks are repeats, not confirmations).
    return StatusChange(postback.status)


def restates_amount(postback: Postback, existing: Existing) -> bool:
    """Whether the postback confirms a pixel conversion, and so replaces its amount with what the
    advertiser's server would have recorded on its own: the amount it states, else the offer's
    payout for the event (price), never the browser's. The browser's figure is anyone's to write
    (docs/pixel.md); the server's is the deposit that was made."""
    return existing.channel == PIXEL and postback.channel == S2S


def _conflict(txn: str, why: str) -> Rejected:
    return Rejected(Reason.TRANSACTION_CONFLICT, f"{txn[:64]}: {why}" if txn else why)
