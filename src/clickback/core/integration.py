"""The integration guide an advertiser's developer gets for an offer: the postback URL, every
parameter with the names other platforms use for it, an example per event of the offer, the
status words, the reasons a postback can be refused for, and the URL written in the macro syntax
of the platform the advertiser runs.

Platform macros come from the platforms' public documentation as gathered in
shared/reference/postback-conventions.md; where a platform does not publish its macro names the
preset says so and shows where the value goes instead of guessing."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from clickback.core.events import IGAMING_EVENTS
from clickback.core.intake import ALIASES
from clickback.core.lifecycle import STATUS_WORDS
from clickback.core.model import Advertiser, AdvertiserNames, Offer
from clickback.core.reasons import Reason
from clickback.core.verticals import PRESETS, Vertical

# What each field is for, in the order the guide lists them.
MEANINGS: Mapping[str, str] = {
    "click_id": "The click ID clickback put in the offer URL. Required (or player_id for a known player).",
    "event": "What happened: a standard event or one of the offer's custom events. Required.",
    "txn_id": "Your transaction ID: a repeat with the same one is a duplicate or a status change.",
    "payout": "The amount (dot decimal, at most 4 decimals); the offer's configured amount when left out.",
    "currency": "ISO 4217 code of the amount; the offer's currency when left out.",
    "status": "pending, approved, rejected or cancelled (and the words below); approved when left out.",
    "player_id": "Your player's ID: later events of the player are attributed through their first click.",
    "event_time": "When the event happened (ISO 8601, a date or Unix seconds); its arrival when left out.",
    "period": "For net_revenue: the month (YYYY-MM) the revenue belongs to.",
    "token": "The advertiser's secret token. Required.",
}
EXAMPLE_VALUES: Mapping[str, str] = {
    "registration": "",
    "verification": "",
    "first_deposit": "50.00",
    "deposit": "25.00",
    "net_revenue": "-120.50",
    "sale": "10.00",
    "lead": "",
}
# The field of clickback → the placeholder the guide's generic URL carries.
PLACEHOLDERS = ("click_id", "event", "payout", "currency", "txn_id", "status")


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    kind: str  # "igaming" (operators' affiliate software) or "network"
    # clickback field → the platform's macro; None: the platform does not publish them.
    macros: Mapping[str, str] | None
    note: str


PLATFORMS: Sequence[Platform] = (
    Platform(
        "TUNE / HasOffers",
        "network",
        {"click_id": "{aff_sub}", "payout": "{payout}", "txn_id": "{adv_sub}", "event": "<goal_event>"},
        "Pass clickback's click ID in the offer URL as aff_sub. TUNE's own {transaction_id} is its"
        " click ID, not clickback's. One postback per goal: put the goal's clickback event name in"
        " event=.",
    ),
    Platform(
        "Everflow",
        "network",
        {"click_id": "{sub1}", "payout": "{payout}", "txn_id": "{order_id}", "event": "<event_name>"},
        "Pass clickback's click ID in the offer URL as sub1. Everflow's {transaction_id} is its own"
        " click ID. One postback per event (adv_event_id): put the clickback event name in event=.",
    ),
    Platform(
        "CAKE",
        "network",
        {"click_id": "#s1#", "payout": "#price#", "event": "<event_name>"},
        "Pass clickback's click ID in the offer URL as s1. CAKE's #reqid# is its own request ID.",
    ),
    Platform(
        "Affise",
        "network",
        {
            "click_id": "{sub1}",
            "payout": "{sum}",
            "txn_id": "{action_id}",
            "status": "{status}",
            "event": "{goal}",
        },
        "Pass clickback's click ID in the offer URL as sub1. Affise's status numbers (1 approved,"
        " 2 pending, 3 declined, 5 hold) are understood as they are.",
    ),
    *(
        Platform(
            name,
            "igaming",
            None,
            f"{name} does not publish its postback variables: in its postback settings, pick the"
            " variable that holds the value you passed in the offer URL (the tracking variable or"
            " 'btag'/'var' field carrying clickback's click ID) for click_id, and its amount"
            " variable for payout. These platforms send one URL per event (registration, first"
            " deposit, qualified CPA), often in daily batches: set event= to the clickback event of"
            " each URL and send event_time when batched.",
        )
        for name in ("Income Access", "MyAffiliates", "NetRefer", "Cellxpert", "Affilka", "ReferOn")
    ),
)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    aliases: tuple[str, ...]
    meaning: str


@dataclass(frozen=True, slots=True)
class Example:
    event: str
    url: str


@dataclass(frozen=True, slots=True)
class Preset:
    platform: str
    kind: str
    macros_public: bool
    url: str
    note: str


@dataclass(frozen=True, slots=True)
class Guide:
    advertiser: str
    offer: str
    postback_url: str
    fields: tuple[Field, ...]
    events: tuple[str, ...]
    examples: tuple[Example, ...]
    statuses: Mapping[str, str]
    reasons: tuple[Reason, ...]
    presets: tuple[Preset, ...]


def offer_events(offer: Offer) -> tuple[str, ...]:
    """The events to show for an offer: its vertical's, its priced and custom ones, else a sale."""
    events: list[str] = []
    if offer.vertical:
        events += PRESETS[Vertical(offer.vertical)].events
    events += [e for e in offer.payouts if e not in events]
    events += sorted(e for e in offer.custom_events if e not in events)
    return tuple(events) or ("sale",)


def guide(
    public_url: str, advertiser: Advertiser, offer: Offer, names: AdvertiserNames, txn_suffix: str = "1001"
) -> Guide:
    """`txn_suffix`: what the examples' transaction IDs end in (`reg-1001`); the tester gives each
    test click its own, so that the examples of two test clicks are two transactions."""
    base = f"{public_url.rstrip('/')}/postback"
    generic = {f: "{" + f + "}" for f in PLACEHOLDERS}
    events = offer_events(offer)
    statuses = {word: status.value for word, status in STATUS_WORDS.items()}
    statuses |= {word: status.value for word, status in names.statuses.items()}
    return Guide(
        advertiser=advertiser.name,
        offer=offer.name,
        postback_url=_url(base, generic, advertiser.token),
        fields=tuple(Field(name, ALIASES[name], meaning) for name, meaning in MEANINGS.items()),
        events=events,
        examples=tuple(
            Example(e, _url(base, _example(e, offer, txn_suffix), advertiser.token)) for e in events
        ),
        statuses=statuses,
        reasons=tuple(Reason),
        presets=tuple(_preset(base, p, advertiser.token) for p in PLATFORMS),
    )


def _example(event: str, offer: Offer, txn_suffix: str) -> dict[str, str]:
    values = {"click_id": "{click_id}", "event": event, "txn_id": f"{event[:3]}-{txn_suffix}"}
    amount = EXAMPLE_VALUES.get(event, "10.00")
    if amount:
        values |= {"payout": amount, "currency": offer.currency}
    if event in IGAMING_EVENTS:
        values["player_id"] = "P-42"
    if event == "net_revenue":
        values["period"] = "2026-11"
    return values


def _preset(base: str, platform: Platform, token: str) -> Preset:
    if platform.macros is None:
        values = {
            "click_id": "<click_id_variable>",
            "event": "<clickback_event>",
            "payout": "<amount_variable>",
        }
        return Preset(platform.name, platform.kind, False, _url(base, values, token), platform.note)
    return Preset(platform.name, platform.kind, True, _url(base, dict(platform.macros), token), platform.note)


def _url(base: str, values: Mapping[str, str], token: str) -> str:
    # Macros and placeholders stay readable ({ } # < >), everything else is URL-encoded.
    query = "&".join(f"{name}={quote(value, safe='{}#<>')}" for name, value in values.items())
    return f"{base}?{query}&token={token}"


def markdown(g: Guide) -> str:
    """The guide as a page to send to the advertiser's developer."""
    lines = [
        f"# Postback integration: {g.offer} ({g.advertiser})",
        "",
        "Call this URL from your server when an event happens (GET, or POST with the same fields as a"
        " form or a JSON object). Keep the token secret.",
        "",
        f"    {g.postback_url}",
        "",
        "## Parameters",
        "",
        "| parameter | also accepted as | meaning |",
        "|---|---|---|",
        *(
            f"| `{f.name}` | {', '.join(f'`{a}`' for a in f.aliases[1:]) or '—'} | {f.meaning} |"
            for f in g.fields
        ),
        "",
        "## An example per event",
        "",
        *(line for ex in g.examples for line in (f"- `{ex.event}`:", "", f"      {ex.url}", "")),
        "## Status words",
        "",
        ", ".join(f"`{word}` → {status}" for word, status in g.statuses.items()),
        "",
        "## Replies and refusal reasons",
        "",
        "Every postback gets a JSON reply with `result` (accepted, duplicate, rejected) and, when"
        " refused, a `reason` with a `hint`. A 2xx means it was recorded; retry a 5xx later.",
        "",
        "| reason | HTTP | what happened | what to do |",
        "|---|---|---|---|",
        *(f"| `{r.code}` | {r.http_status} | {r.sentence} | {r.hint} |" for r in g.reasons),
        "",
        "## Your platform",
        "",
    ]
    for p in g.presets:
        public = "" if p.macros_public else " (its macro names are not public)"
        lines += [f"### {p.platform}{public}", "", f"    {p.url}", "", p.note, ""]
    return "\n".join(lines)
