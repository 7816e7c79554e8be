"""Outbound postbacks: the templates an affiliate gives us, the values a conversion fills them
with, and which templates a conversion's change fires. Pure: rendering, checks and choices only.

A template is a URL (and for POST a body) with {macro} placeholders. Macros have clickback's own
names and, beside them, the names affiliates' trackers document, so a template pasted from
Keitaro's, Binom's, Voluum's or Everflow's help page works unchanged. In those trackers' templates
`{subid}`, `{clickid}`, `{external_id}`, `{transaction_id}` stand for *the tracker's own* click ID,
which it passed to us on the tracking link in one of the sub IDs: `click_id_sub` says which
(sub1 by default). `{payout}`, `{sum}`, `{amount}`, `{revenue}` are the affiliate's commission,
never the advertiser's amount, which only `{advertiser_payout}` gives.
"""

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from clickback.core.addresses import is_address
from clickback.core.caps import cap_status
from clickback.core.digits import is_digits
from clickback.core.lifecycle import Status
from clickback.core.limits import MAX_URL_LEN
from clickback.core.macros import find_dollar_placeholder, find_unreplaced_macro
from clickback.core.money import money_text

MAX_BODY_TEMPLATE_LEN = 4096
MAX_MAPPED_STATUS_LEN = 64
# Values of a delivery's reply and error, as logged with each attempt.
MAX_REPLY_BYTES = 512
MAX_ERROR_LEN = 512

# clickback's own names → the field of a conversion notice (Notice below) they stand for.
OWN_MACROS: Mapping[str, str] = {
    "click_id": "click_id",
    "sub1": "sub1",
    "sub2": "sub2",
    "sub3": "sub3",
    "sub4": "sub4",
    "sub5": "sub5",
    "source": "source",
    "lp": "lp",
    "campaign": "campaign",
    "link_id": "link_id",
    "offer_id": "offer_id",
    "affiliate_id": "affiliate_id",
    "event": "event",
    "status": "status",
    "commission": "commission",
    "currency": "currency",
    "txn_id": "txn_id",
    "conversion_id": "conversion_id",
    "player_id": "player_id",
    "country": "country",
    "conversion_time": "conversion_time",
    "conversion_timestamp": "conversion_timestamp",
    "delivery_id": "delivery_id",
    # Only when a template asks for it: what the advertiser reported (a deposit, a sale's value).
    "advertiser_payout": "advertiser_payout",
    "advertiser_currency": "advertiser_currency",
    # "over_cap" for a conversion past a cap (ADR 17: recorded, not paid), else empty.
    "cap_status": "cap_status",
}
# Trackers' names (shared/reference/postback-conventions.md). "tracker_click_id" is the sub ID the
# template's click_id_sub names.
TRACKER_MACROS: Mapping[str, str] = {
    "subid": "tracker_click_id",
    "sub_id": "tracker_click_id",
    "clickid": "tracker_click_id",
    "cid": "tracker_click_id",
    "cnv_id": "tracker_click_id",
    "external_id": "tracker_click_id",
    "externalid": "tracker_click_id",
    "transaction_id": "tracker_click_id",
    "payout": "commission",
    "sum": "commission",
    "amount": "commission",
    "revenue": "commission",
    "tid": "txn_id",
    "txid": "txn_id",
    "goal": "event",
    "cnv_status": "status",
}
MACROS: Mapping[str, str] = {**OWN_MACROS, **TRACKER_MACROS}
# Fields that are always a number once a conversion is attributed (templates fire on no other).
NUMERIC_FIELDS = frozenset(
    {"conversion_id", "commission", "link_id", "offer_id", "affiliate_id", "conversion_timestamp"}
)
CLICK_ID_SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")
_LITERAL_SAFE = "".join(chr(c) for c in range(33, 127))


class Method(StrEnum):
    GET = "GET"
    POST = "POST"


class BodyFormat(StrEnum):
    FORM = "form"
    JSON = "json"


CONTENT_TYPES: Mapping[BodyFormat, str] = {
    BodyFormat.FORM: "application/x-www-form-urlencoded",
    BodyFormat.JSON: "application/json",
}


class OutboundError(ValueError):
    """A template that cannot be used; the message says what to fix."""


def known_macros() -> str:
    return ", ".join("{" + m + "}" for m in MACROS)


@dataclass(frozen=True, slots=True)
class Compiled:
    """Literal text and fields alternating: (literal, field, literal, ..., literal)."""

    parts: tuple[str, ...]

    def render(self, values: Mapping[str, str], escape: "Escape") -> str:
        out = [self.parts[0]]
        for i in range(1, len(self.parts), 2):
            out.append(escape(values.get(self.parts[i], "")))
            out.append(self.parts[i + 1])
        return "".join(out)


class Escape:
    """How a value goes into its place: URL-encoded, or JSON-escaped inside a JSON body."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, value: str) -> str:
        if self.kind == "json":
            return json.dumps(value, ensure_ascii=False)[1:-1]
        return value if _URL_SAFE.fullmatch(value) else quote(value, safe="")


URL_ESCAPE = Escape("url")
JSON_ESCAPE = Escape("json")


def _stray_placeholder(pieces: Sequence[str], json_body: bool = False) -> str | None:
    """The first placeholder of another syntax ({{subid}}, ${payout}, [clickid], %7Bclick_id%7D,
    {click-id}) in a template's pieces, as written; None if there is none. Nothing replaces
    them, so the tracker would get the text itself (or a value with a `$` or braces around it)
    and never match the conversion. URL and form text is checked as the receiver decodes it; a
    JSON body's text once parsed (_stray_in_json), where a brace may close the object."""
    for i in range(1, len(pieces), 2):
        before, after = pieces[i - 1], pieces[i + 1]
        if json_body:
            # A brace after a macro may close the object ({"amount": {payout}}).
            opened = "{" if before.endswith("{") else ""
            closed = "}" if opened and after.startswith("}") else ""
        else:
            opened = next((o for o in ("{", "%7B", "%7b") if before.endswith(o)), "")
            closed = next((c for c in ("}", "%7D", "%7d") if after.startswith(c)), "")
        if opened or closed:
            return opened + "{" + pieces[i] + "}" + closed
        if before.endswith("$"):
            return "${" + pieces[i] + "}"
    if json_body:
        return None
    for written in pieces[::2]:
        # As written, not decoded: %24 is how a template says a dollar sign is data.
        for segment in re.split(r"[?&]", written):
            found = find_dollar_placeholder(segment.split("=", 1)[-1])
            if found is not None:
                return found
    for decoded in map(unquote, pieces[::2]):
        for segment in re.split(r"[?&]", decoded):
            # Only the value: a name like filter[status] is a form's own syntax, not a macro.
            found = find_unreplaced_macro(segment.split("=", 1)[-1])
            if found is not None:
                return found
        braced = next((part for part in re.split(r"[?&/=]", decoded) if "{" in part or "}" in part), None)
        if braced is not None:
            return braced
    return None


def _stray_in_json(value: Any) -> str | None:
    """The first placeholder of another syntax, or stray brace, in a JSON body's keys and strings
    once parsed (a `$name` is looked for in the text as written: _dollar_in_json_text)."""
    if isinstance(value, str):
        found = find_unreplaced_macro(value)
        return found if found is not None else (value if "{" in value or "}" in value else None)
    items: list[Any] = []
    if isinstance(value, dict):
        items = [x for item in value.items() for x in item]
    elif isinstance(value, list):
        items = list(value)
    return next((f for f in map(_stray_in_json, items) if f is not None), None)


# A JSON string literal as written (escapes kept), and whether it is a member's name.
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:)?')


def _dollar_in_json_text(text: str) -> str | None:
    """The first `$name` in a JSON body's string values as written: a name such as "$set" is
    the receiver's own syntax, and `\\u0024` is how a dollar sign is written as data there (a
    JSON body is not URL-decoded, so %24 would be sent as it is)."""
    for string in _JSON_STRING.finditer(text):
        found = None if string.group(2) else find_dollar_placeholder(string.group(1))
        if found is not None:
            return found
    return None


def _refuse_stray(found: str | None, where: str, json_body: bool = False) -> None:
    if found is not None:
        written = "\\u0024 in a JSON string" if json_body else "%24"
        data = (
            f" (a dollar sign meant as data is written {written})" if find_dollar_placeholder(found) else ""
        )
        raise OutboundError(
            f"{found!r} in the {where} is no macro of clickback's and would be sent as written{data}:"
            f" write each macro as {{name}}, one of: {known_macros()}"
        )


def _compile(text: str, where: str, quote_literals: bool, json_body: bool = False) -> Compiled:
    pieces = _PLACEHOLDER.split(text)
    unknown = sorted({name for name in pieces[1::2] if name not in MACROS})
    if unknown:
        names = ", ".join("{" + n + "}" for n in unknown)
        raise OutboundError(f"unknown macro {names} in the {where}; known macros: {known_macros()}")
    _refuse_stray(_stray_placeholder(pieces, json_body=json_body), where)
    fields = tuple(
        MACROS[p] if i % 2 else (quote(p, safe=_LITERAL_SAFE) if quote_literals else p)
        for i, p in enumerate(pieces)
    )
    return Compiled(fields)


@dataclass(frozen=True, slots=True)
class Template:
    """An affiliate's outbound postback, as the catalog holds it."""

    id: int
    affiliate_id: int
    url: str
    method: Method = Method.GET
    body_format: BodyFormat | None = None
    body: str = ""
    offer_id: int | None = None
    # Empty: every event / every status.
    events: frozenset[str] = frozenset()
    statuses: frozenset[Status] = frozenset()
    # Our status → the word the affiliate's tracker wants ({status} macro).
    status_map: Mapping[str, str] = field(default_factory=dict)
    click_id_sub: str = "sub1"
    active: bool = True
    _url: Compiled = Compiled(("",))
    _body: Compiled | None = None

    @property
    def host(self) -> str:
        return destination_of(self.url)

    def fires_on(self, affiliate_id: int | None, offer_id: int | None, event: str, status: Status) -> bool:
        return (
            self.active
            and affiliate_id == self.affiliate_id
            and (self.offer_id is None or self.offer_id == offer_id)
            and (not self.events or event in self.events)
            and (not self.statuses or status in self.statuses)
        )

    def render(self, notice: Mapping[str, str]) -> tuple[str, str]:
        """(URL, body) with every value escaped for its place."""
        values = dict(notice)
        values["status"] = self.status_map.get(values.get("status", ""), values.get("status", ""))
        values["tracker_click_id"] = values.get(self.click_id_sub, "")
        url = self._url.render(values, URL_ESCAPE)
        if self._body is None:
            return url, ""
        escape = JSON_ESCAPE if self.body_format is BodyFormat.JSON else URL_ESCAPE
        return url, self._body.render(values, escape)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.body_format] if self.body_format is not None else ""


def template(
    *,
    id: int,
    affiliate_id: int,
    url: str,
    method: Method = Method.GET,
    body_format: BodyFormat | None = None,
    body: str = "",
    offer_id: int | None = None,
    events: Sequence[str] = (),
    statuses: Sequence[Status] = (),
    status_map: Mapping[str, str] | None = None,
    click_id_sub: str = "sub1",
    active: bool = True,
) -> Template:
    """A checked, compiled template, or OutboundError saying what to fix (SSRF is checked apart:
    it needs DNS)."""
    if len(url) > MAX_URL_LEN:
        raise OutboundError(f"the URL is longer than {MAX_URL_LEN} characters")
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise OutboundError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(_PLACEHOLDER.sub("x", url))
        parts.hostname  # noqa: B018 - raises on a malformed address ("http://[::1")
    except ValueError:
        raise OutboundError("the URL is malformed: check its host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("the URL must start with http:// or https:// and name a host")
    if "[" in parts.netloc and not is_address(parts.hostname.split("%", 1)[0]):
        # An IPvFuture ([v1.x:y]): no tracker has one, and the sender refuses it (a host with a
        # colon is connected to as an address, without the SSRF guard's resolver).
        raise OutboundError("the URL is malformed: check its host (in brackets, an IPv6 address)")
    head = url.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "{" in head or "@" in head or "\\" in url:
        raise OutboundError("the host part of the URL must be written out, without macros or user info")
    if not head.isascii():
        # Its letters would be percent-encoded with the rest, and no DNS knows that name: every
        # postback would fail for a day and become a dead letter.
        try:
            known = (parts.hostname or "").encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundError("the URL's host is not a name DNS can know") from None
        raise OutboundError(f"write the URL's host as DNS knows it: {known}")
    try:
        port = parts.port  # None when not given; raises on one that is not a number in range
    except ValueError:
        port = 0
    if port == 0:
        raise OutboundError("the URL's port is not a number from 1 to 65535") from None
    compiled_url = _compile(url, "URL", quote_literals=True)
    if method is Method.GET and (body or body_format):
        raise OutboundError("a GET postback has no body: use method POST, or put the values in the URL")
    compiled_body = None
    if method is Method.POST:
        body_format = body_format or BodyFormat.FORM
        if len(body) > MAX_BODY_TEMPLATE_LEN:
            raise OutboundError(f"the body is longer than {MAX_BODY_TEMPLATE_LEN} characters")
        compiled_body = _compile(body, "body", quote_literals=False, json_body=body_format is BodyFormat.JSON)
        if body_format is BodyFormat.JSON:
            # A macro stands for a JSON string's content, and only a number may stand outside
            # quotes: a sample with text or a number in each place must be a JSON object, else
            # the tracker would get a body it cannot read.
            sample = compiled_body.render(
                {f: "0" if f in NUMERIC_FIELDS else "x" for f in MACROS.values()}, JSON_ESCAPE
            )
            try:
                parsed = json.loads(sample or "null")
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise OutboundError(
                    'a JSON body must be a JSON object with macros inside strings, e.g. {"click": "{subid}"}'
                    " (numbers may stand alone: {conversion_id}, {commission}, {payout}, {offer_id}, "
                    "{affiliate_id}, {link_id}, {conversion_timestamp})"
                )
            # The macros out of the way (empty, or 0 where a number stands alone), what is left
            # of each string is the template's own text.
            blank = compiled_body.render(
                {f: "0" if f in NUMERIC_FIELDS else "" for f in MACROS.values()}, JSON_ESCAPE
            )
            stray = _stray_in_json(json.loads(blank)) or _dollar_in_json_text(blank)
            _refuse_stray(stray, "body", json_body=True)
    if click_id_sub not in CLICK_ID_SUBS:
        raise OutboundError(f"click_id_sub must be one of {', '.join(CLICK_ID_SUBS)}")
    for ours, theirs in (status_map or {}).items():
        if ours not in Status.__members__.values():
            raise OutboundError(f"status_map: {ours!r} is not a status; use {', '.join(Status)}")
        if not theirs or len(theirs) > MAX_MAPPED_STATUS_LEN:
            raise OutboundError(
                f"status_map: the word for {ours} must be 1 to {MAX_MAPPED_STATUS_LEN} characters"
            )
    return Template(
        id=id,
        affiliate_id=affiliate_id,
        url=url,
        method=method,
        body_format=body_format if method is Method.POST else None,
        body=body,
        offer_id=offer_id,
        events=frozenset(events),
        statuses=frozenset(statuses),
        status_map=dict(status_map or {}),
        click_id_sub=click_id_sub,
        active=active,
        _url=compiled_url,
        _body=compiled_body,
    )


def destination_of(url: str) -> str:
    """The destination a delivery goes to, as paused and limited together: host[:port], lowercase."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    shown = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{shown}:{port}" if port else shown


# Query parameters whose values are secrets: masked wherever a delivery's URL is shown.
_SECRET_PARAM = re.compile(r"(token|key|secret|pass|password|pwd|auth|signature|sig|hash)$", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with the values of secret-looking parameters (token=, api_key=, secret= …) and any
    user info replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    head, q, query = rest.partition("?")
    if not q:
        return scheme + sep + rest
    masked = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        masked.append(f"{name}=***" if eq and value and _SECRET_PARAM.search(name) else pair)
    return scheme + sep + head + "?" + "&".join(masked)


# Of a redirect's Location in the attempt's error: enough to recognise the URL to write instead.
MAX_SHOWN_LOCATION_LEN = 200


def redirect_error(status: int, location: str | None) -> str:
    """Why a 3xx reply failed the delivery (empty for any other status): redirects are never
    followed, since only the template's destination passed the address check. The Location
    shown as the delivery log shows URLs: secrets masked, and cut short."""
    if not 300 <= status < 400:
        return ""
    if not location:
        return f"HTTP {status} without a Location: redirects are not followed; fix the URL"
    shown = "".join(ch for ch in mask_url(location) if ch.isprintable())
    if len(shown) > MAX_SHOWN_LOCATION_LEN:
        shown = shown[: MAX_SHOWN_LOCATION_LEN - 1] + "…"
    return f"HTTP {status} redirect to {shown}: redirects are not followed; fix the URL"


SIGNATURE_HEADER = "X-Clickback-Signature"
DELIVERY_HEADER = "X-Clickback-Delivery"


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over "<timestamp>.<payload>", where the payload
    is the body of a POST and the URL of a GET, as sent. The timestamp (Unix seconds) is signed
    so that a receiver can refuse an old message replayed by someone who recorded it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, payload: bytes) -> bool:
    """What a receiver does (docs/outbound.md shows the same in ten lines)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not is_digits(fields.get("t", "")):
        return False
    expected = signature(secret, int(fields["t"]), payload).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def notice(
    conversion: Mapping[str, Any],
    status: str,
    *,
    source: str,
    lp: str,
    commission: Decimal,
    currency: str,
    delivery_id: str,
) -> dict[str, str]:
    """The values a conversion's change fills a template with (by field, see MACROS)."""
    at = conversion["event_at"]
    advertiser_payout = conversion["payout"]
    return {
        "click_id": conversion["click_id"],
        **{f"sub{i}": conversion[f"sub{i}"] for i in range(1, 6)},
        "source": source,
        "lp": lp,
        "campaign": conversion["campaign"],
        "link_id": _text(conversion["link_id"]),
        "offer_id": _text(conversion["offer_id"]),
        "affiliate_id": _text(conversion["affiliate_id"]),
        "event": conversion["event"],
        "status": status,
        "commission": money_text(commission, currency or None),
        "currency": currency,
        "txn_id": conversion["txn_id"] or "",
        "conversion_id": str(conversion["id"]),
        "player_id": conversion["player_id"],
        "country": conversion["country"],
        "conversion_time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conversion_timestamp": str(int(at.timestamp())),
        "delivery_id": delivery_id,
        "advertiser_payout": ""
        if advertiser_payout is None
        else money_text(advertiser_payout, conversion["currency"]),
        "advertiser_currency": conversion["currency"] or "",
        "cap_status": cap_status(bool(conversion.get("over_cap"))),
    }


def _text(value: object) -> str:
    return "" if value is None else str(value)
