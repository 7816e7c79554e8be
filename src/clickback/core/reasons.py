"""The closed catalogue of reasons a click or postback is refused (or answered as a duplicate).

The code is a stable public contract: senders match on it, the postback log and reports count it.
docs/reasons.md is generated from this table and a test keeps the two in step.
"""

from dataclasses import dataclass
from enum import Enum

from clickback.core.limits import MAX_PAYOUT, PAYOUT_DECIMALS


class Reason(Enum):
    # (code, HTTP status, what happened, what the sender should do)
    BODY_TOO_LARGE = (
        "body_too_large",
        413,
        "The request body is larger than clickback accepts.",
        "Send postback parameters in the query string or a small form body (16 KiB at most).",
    )
    TOO_MANY_PARAMETERS = (
        "too_many_parameters",
        400,
        "The request carries more parameters than clickback accepts.",
        "Send only the documented postback parameters (64 at most).",
    )
    PARAMETER_TOO_LONG = (
        "parameter_too_long",
        400,
        "A parameter name or value is longer than its limit.",
        "Check the named parameter: a macro may have expanded to a whole URL or page.",
    )
    INVALID_CHARACTERS = (
        "invalid_characters",
        400,
        "A parameter contains control characters or invalid UTF-8.",
        "URL-encode values as UTF-8 and strip line breaks from them.",
    )
    WRONG_CONTENT_TYPE = (
        "wrong_content_type",
        415,
        "The body is a JSON object, but the request's Content-Type does not say it is JSON.",
        "Send the JSON body with the header Content-Type: application/json, or send the parameters"
        " in the query string.",
    )
    REPEATED_PARAMETER = (
        "repeated_parameter",
        400,
        "A parameter appears more than once with different values.",
        "Send each parameter once; check that the postback template does not repeat it.",
    )
    CONFLICTING_ALIASES = (
        "conflicting_aliases",
        400,
        "Two names for the same field carry different values (for example click_id and cid).",
        "Send the field under one name only.",
    )
    MISSING_TOKEN = (
        "missing_token",
        401,
        "The postback has no token.",
        "Add token=<your advertiser token> to the postback URL.",
    )
    BAD_TOKEN = (
        "bad_token",
        403,
        "The token does not belong to any advertiser.",
        "Copy the postback URL again from your clickback advertiser page; the token may have changed.",
    )
    TOKEN_REPLACED = (
        "token_replaced",
        403,
        "The token was replaced and its overlap period has ended.",
        "Use the advertiser's current token: copy the postback URL again from clickback.",
    )
    IP_NOT_ALLOWED = (
        "ip_not_allowed",
        403,
        "The postback came from an address the advertiser's allowlist does not include.",
        "Send postbacks from your listed servers, or ask the affiliate manager to add this address.",
    )
    MISSING_SIGNATURE = (
        "missing_signature",
        401,
        "The advertiser signs postbacks, and this one has no signature.",
        "Send X-Clickback-Timestamp (Unix seconds) and X-Clickback-Signature: sha256=<hex HMAC-SHA256"
        " of timestamp, newline, query string, newline, body>.",
    )
    BAD_SIGNATURE = (
        "bad_signature",
        403,
        "The signature does not match the request.",
        "Sign the exact query string and body sent, with the current signing secret (see the hint"
        " of missing_signature for the format).",
    )
    SIGNATURE_EXPIRED = (
        "signature_expired",
        401,
        "The signature's timestamp is too far from clickback's clock.",
        "Sign each postback when it is sent (within 300 s of clickback's time) and keep the server's"
        " clock synchronised (NTP).",
    )
    REPLAYED_SIGNATURE = (
        "replayed_signature",
        409,
        "A postback with this signature was already received.",
        "Sign every postback afresh; a signed request is accepted once.",
    )
    ATTRIBUTION_WINDOW_PASSED = (
        "attribution_window_passed",
        422,
        "The event happened after the offer's attribution window for its click had closed.",
        "Conversions count within the offer's window from the click (its attribution_days): check"
        " that the click ID belongs to this event, or ask the affiliate manager about the window.",
    )
    UNKNOWN_PIXEL = (
        "unknown_pixel",
        404,
        "No offer with the tracking pixel switched on has this pixel code.",
        "Copy the pixel again from the offer in clickback; the offer's pixel may have been switched off.",
    )
    UNREPLACED_MACRO = (
        "unreplaced_macro",
        400,
        "A parameter still holds a placeholder instead of a value.",
        "Your platform did not substitute the macro: check its exact name and syntax there.",
    )
    MISSING_CLICK_ID = (
        "missing_click_id",
        400,
        "The postback carries no click ID.",
        "Pass the click ID you received on the offer URL as click_id (aliases: clickid, cid, subid),"
        " or player_id for a player whose registration was already reported.",
    )
    MALFORMED_CLICK_ID = (
        "malformed_click_id",
        400,
        "The click ID is not in clickback's format (32 URL-safe characters).",
        "Pass the click ID exactly as received; it may have been truncated or re-encoded.",
    )
    FORGED_CLICK_ID = (
        "forged_click_id",
        400,
        "The click ID was not issued by this clickback installation.",
        "Pass the click ID exactly as received from this tracker, not one from another system.",
    )
    UNKNOWN_CLICK = (
        "unknown_click",
        404,
        "The click ID is genuine but no such click is recorded.",
        "The click may predate a database restore; contact the affiliate manager.",
    )
    FOREIGN_CLICK = (
        "foreign_click",
        403,
        "The click belongs to an offer of another advertiser.",
        "Use the token of the advertiser that owns the offer the user clicked.",
    )
    WRONG_PIXEL = (
        "wrong_pixel",
        403,
        "The click belongs to another offer than the pixel's.",
        "Put each offer's own pixel on that offer's thank-you page.",
    )
    MISSING_EVENT = (
        "missing_event",
        400,
        "The postback does not say which event happened.",
        "Add event=registration, first_deposit, deposit or one of the offer's custom events.",
    )
    UNKNOWN_EVENT = (
        "unknown_event",
        422,
        "The event name is not a standard event nor a custom event of the offer.",
        "Use a standard event name or add the custom event to the offer.",
    )
    UNKNOWN_STATUS = (
        "unknown_status",
        422,
        "The status word is not one clickback knows.",
        "Use pending, approved, rejected or cancelled (or 1, 2, 3 as Affise sends them).",
    )
    INVALID_PAYOUT = (
        "invalid_payout",
        422,
        "The amount is not a decimal number clickback accepts.",
        f"Send digits with a dot as the decimal separator, at most {PAYOUT_DECIMALS} decimals and no"
        f" more than {MAX_PAYOUT}, e.g. payout=25.50; only net_revenue may be negative.",
    )
    INVALID_PERIOD = (
        "invalid_period",
        422,
        "The period is not a month in the form YYYY-MM.",
        "Send the month the revenue belongs to, e.g. period=2026-10, or leave period out.",
    )
    PERIOD_IN_THE_FUTURE = (
        "period_in_the_future",
        422,
        "The period is a month that has not begun yet.",
        "Send the month the revenue was earned in; check the sender's month and time zone.",
    )
    PERIOD_TOO_OLD = (
        "period_too_old",
        422,
        "The period is a month that ended longer ago than clickback accepts.",
        "Send the month the revenue was earned in; months that ended more than"
        " CLICKBACK_MAX_EVENT_AGE_DAYS (180 by default) ago need the affiliate manager to raise it.",
    )
    PERIOD_BEFORE_CLICK = (
        "period_before_click",
        422,
        "The period is a month that ended before the click the report is attributed to.",
        "Send the month the revenue was earned in (revenue comes after the click), and check that"
        " the click ID or player_id belongs to this report.",
    )
    INVALID_EVENT_TIME = (
        "invalid_event_time",
        422,
        "The event time is not a date, an ISO 8601 time or a Unix timestamp.",
        "Send when the event happened as event_time=2026-11-30T14:05:00Z (or with its offset,"
        " +02:00 URL-encoded as %2B02:00), a date such as 2026-11-30 (UTC), or Unix seconds;"
        " or leave it out when the event happened as it is reported.",
    )
    EVENT_TIME_OUT_OF_RANGE = (
        "event_time_out_of_range",
        422,
        "The event time is in the future or older than clickback accepts.",
        "Check the sender's clock and time zone (a time without an offset is UTC); events older than"
        " CLICKBACK_MAX_EVENT_AGE_DAYS (180 by default) need the affiliate manager to raise it.",
    )
    EVENT_BEFORE_CLICK = (
        "event_before_click",
        422,
        "The event time is before the click it is attributed to.",
        "Check that the event time is the event's own (in UTC or with its offset) and that the"
        " click ID or player_id belongs to this event.",
    )
    UNKNOWN_PLAYER = (
        "unknown_player",
        404,
        "No player with this player_id was reported with a click ID.",
        "Send the registration (with click_id and player_id) first, or add click_id to this postback.",
    )
    MISSING_EXCHANGE_RATE = (
        "missing_exchange_rate",
        422,
        "The amount must be converted (into the deal's currency, or an NGR report's RevShare month's) "
        "and no exchange rate is on record for that day.",
        "Ask the affiliate manager to add the rate (API /api/fx-rates or clickback fx set), then resend.",
    )
    CONVERTED_AMOUNT_TOO_LARGE = (
        "converted_amount_too_large",
        422,
        "The amount, converted into the deal's currency at that day's exchange rate, is larger than"
        " clickback can record.",
        f"Check the amount and its currency (converted, an amount may be at most {MAX_PAYOUT}); if"
        " both are right, ask the affiliate manager to check that day's exchange rate, then resend.",
    )
    UNKNOWN_CURRENCY = (
        "unknown_currency",
        422,
        "The currency is not an ISO 4217 code.",
        "Send a three-letter ISO 4217 code such as EUR, USD or GBP.",
    )
    INVALID_STATUS_TRANSITION = (
        "invalid_status_transition",
        409,
        "The conversion cannot move from its current status to the one sent.",
        "A cancelled conversion is final; send a new transaction ID for a new conversion.",
    )
    CPA_RULES_NOT_MET = (
        "cpa_rules_not_met",
        409,
        "The postback approves a qualified CPA whose rules do not hold now: the ledger would pay"
        " nothing for it.",
        "Approve it once the player meets the rules the CPA was booked under again (the detail"
        " names the rules missing); the CPA is then booked and approved by clickback itself.",
    )
    TRANSACTION_CONFLICT = (
        "transaction_conflict",
        409,
        "This transaction ID is already recorded for this event on a different click or player.",
        "Transaction IDs must be unique per event; check the macro used for txn_id, and that"
        " click_id and player_id are this transaction's.",
    )
    DUPLICATE = (
        "duplicate",
        200,
        "This conversion is already recorded; nothing changed.",
        "No action needed. To record a repeat event send a new transaction ID.",
    )
    STORAGE_UNAVAILABLE = (
        "storage_unavailable",
        503,
        "clickback could not record the postback durably right now.",
        "Retry later: nothing was recorded.",
    )
    NOT_READY = (
        "not_ready",
        503,
        "clickback has just started and cannot reach its database yet.",
        "Try again in a minute; the operator can see why at /readyz.",
    )
    UNKNOWN_LINK = (
        "unknown_link",
        404,
        "No tracking link has this code.",
        "Check the tracking link for typos or ask the affiliate manager for a new one.",
    )
    LINK_PAUSED = (
        "link_paused",
        410,
        "This tracking link is paused.",
        "Ask the affiliate manager to re-activate the link.",
    )
    OFFER_PAUSED = (
        "offer_paused",
        410,
        "The offer behind this tracking link is paused.",
        "Ask the affiliate manager which offer to promote instead.",
    )
    LINK_ARCHIVED = (
        "link_archived",
        410,
        "This tracking link (or its affiliate) is archived: it takes no new clicks.",
        "Stop sending traffic to it; ask the affiliate manager for a current link.",
    )
    OFFER_ARCHIVED = (
        "offer_archived",
        410,
        "The offer behind this tracking link is archived: it takes no new clicks.",
        "Stop sending traffic to it; ask the affiliate manager which offer to promote instead.",
    )

    # Refused fields of a click: the click itself is taken and redirected, without the field.
    INVALID_COST = (
        "invalid_cost",
        400,
        "The cost passed on the tracking link is not an amount from 0 to 1000 with at most 4"
        " decimals: the click was recorded without a cost.",
        "Pass the click's cost as digits and a dot (cost=0.05); check the traffic source's cost macro.",
    )
    INVALID_COST_CURRENCY = (
        "invalid_cost_currency",
        400,
        "The currency passed with the cost is not an ISO 4217 code: the click was recorded without a cost.",
        "Pass a three-letter code (cost_currency=USD), or leave it out to use the link's currency.",
    )

    def __init__(self, code: str, http_status: int, sentence: str, hint: str) -> None:
        self.code = code
        self.http_status = http_status
        self.sentence = sentence
        self.hint = hint


BY_CODE: dict[str, Reason] = {reason.code: reason for reason in Reason}


@dataclass(frozen=True, slots=True)
class Rejected:
    """A refusal: a result, not an exception. `detail` names what arrived (escaped by whoever shows it)."""

    reason: Reason
    detail: str = ""
