"""What goes wrong with an advertiser's postbacks, from what the postback log and the conversions
hold: each finding a warning with a code, what was seen, and what to do. Pure: the store counts,
this decides."""

import difflib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from clickback.core.clicks import SUB_KEYS
from clickback.core.intake import ALIASES, Postback, field_of
from clickback.core.reasons import Reason

KNOWN_NAMES = sorted({alias for aliases in ALIASES.values() for alias in aliases})
# Names that platforms send on purpose and clickback ignores: never "misspelt".
_NOT_MISSPELT = frozenset({"adv_sub", "aff_sub", "offer_id", "affiliate_id", "goal_id", "source"})
_SEPARATORS = re.compile(r"[\s_.\-]+")
# Sub IDs as platforms name them (sub_id, sub_id2, subid3, sub-4): postbacks take them as sub1…sub5.
# Not "subid" itself: Keitaro's click ID, one of click_id's names.
_SUB_ID = re.compile(r"sub[_.\-]?id[_.\-]?([1-5])?|sub[_.\-]([1-5])")
# A field's name and a word that does not change what it names: event_name is the event.
_SAME_THING: Mapping[str, frozenset[str]] = {
    "event": frozenset({"name", "code"}),
    "goal": frozenset({"name"}),
    "status": frozenset({"name", "code"}),
    "currency": frozenset({"code"}),
    **{name: frozenset({"amount", "value"}) - {name} for name in ALIASES["payout"]},
}
# A refusal rate this many times the earlier one, and this much higher, over at least this many
# refusals, is a jump worth a look (an integration changed, a token rotated, a macro broke).
SPIKE_FACTOR = 2.0
SPIKE_POINTS = 0.2
SPIKE_MIN_REFUSED = 10
# An offer with this many clicks in the quiet window and no postback, that converted before.
SILENT_MIN_CLICKS = 50


def conversion_warnings(
    event: str,
    payout: Decimal | None,
    offer_payouts: Mapping[str, Decimal],
    ignored: Iterable[str],
    sent: Collection[str] = (),
    currency: str | None = None,
    offer_currency: str = "",
) -> tuple[str, ...]:
    """What looks wrong in an accepted postback: kept on its conversion, said in the reply.
    `sent`: the fields the postback filled (sent_fields); `currency`: the one it stated (None:
    the offer's), `offer_currency` the one the offer's payouts are in."""
    warnings = []
    configured = offer_payouts.get(event)
    stated = currency or offer_currency
    if payout is not None and configured is not None:
        # Amounts in two currencies are not compared (10 USD is not "10, the offer pays 50"):
        # the currency itself is what differs.
        if stated != offer_currency:
            warnings.append(
                f"payout_differs: sent {payout} {stated}, the offer pays {configured} {offer_currency}"
                f" for {event} (another currency)"
            )
        elif payout != configured:
            warnings.append(f"payout_differs: sent {payout}, the offer pays {configured} for {event}")
    for name in ignored:
        meant = did_you_mean(name)
        # Renamed, a name whose field the postback already fills would repeat it: refused if the
        # two values differ (event=lead&event_name=purchase). Nothing to suggest then.
        if meant is not None and field_of(meant) not in sent:
            warnings.append(f"misspelt_parameter: '{name}' was ignored, did you mean '{meant}'?")
    return tuple(warnings)


def sent_fields(postback: Postback) -> frozenset[str]:
    """The fields an accepted postback filled, as far as what intake kept of it tells."""
    given = {
        "click_id": postback.click is not None,
        "event": True,
        "token": True,
        "status": postback.status_given,
        "payout": postback.payout is not None,
        "currency": postback.currency is not None,
        "txn_id": postback.txn_id is not None,
        "player_id": bool(postback.player_id),
        "period": postback.period is not None,
        "event_time": postback.event_time is not None,
        **{key: bool(value) for key, value in zip(SUB_KEYS, postback.subs, strict=True)},
    }
    return frozenset(name for name, filled in given.items() if filled)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str
    hint: str
    # What it is about: an offer, a parameter name, a reason code.
    subject: str = ""
    count: int = 0


def did_you_mean(name: str) -> str | None:
    """The postback parameter a name ignored as unknown was probably meant to be: never one that
    means something else (`sub_id` is a sub ID, not `subid`, a click ID; `event_name` is the event,
    not `event_time`)."""
    if name in _NOT_MISSPELT or name in KNOWN_NAMES:
        return None
    sub = _SUB_ID.fullmatch(name)
    if sub is not None:
        return "sub" + (sub.group(1) or sub.group(2) or "1")
    words = _words(name)
    if len(words) == 2 and words[1] in _SAME_THING.get(words[0], ()):
        return words[0]
    compact = "".join(words)
    same = next((known for known in KNOWN_NAMES if "".join(_words(known)) == compact), None)
    if same is not None:
        return same
    # A typo, word for word: "clik_id" is click_id, "event_name" is not event_time.
    for close in difflib.get_close_matches(name, KNOWN_NAMES, n=3, cutoff=0.75):
        theirs = _words(close)
        if len(theirs) == len(words) and all(_typo(a, b) for a, b in zip(words, theirs, strict=True)):
            return close
    return None


def _words(name: str) -> list[str]:
    return [w for w in _SEPARATORS.split(name.lower()) if w]


def _typo(a: str, b: str) -> bool:
    return a == b or difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


def misspelt_parameters(ignored: Mapping[str, int]) -> list[Finding]:
    """Ignored parameters that look like a known one: their values were dropped silently."""
    found = []
    for name, count in sorted(ignored.items(), key=lambda item: (-item[1], item[0])):
        meant = did_you_mean(name)
        if meant is not None:
            found.append(
                Finding(
                    "misspelt_parameter",
                    f"{count} postback(s) sent '{name}', which clickback ignores: did you mean '{meant}'?",
                    f"Rename '{name}' to '{meant}' in the postback template (or drop it, if the"
                    f" template already sends '{meant}' under another name); until then its value is lost.",
                    name,
                    count,
                )
            )
    return found


def reason_hints(reasons: Mapping[str, int], queries: Iterable[str]) -> list[Finding]:
    """Platform habits behind some refusals, told from the example postbacks' parameters."""
    names = {piece.partition("=")[0].lower() for query in queries for piece in query.split("&")}
    found = []
    if reasons.get(Reason.MISSING_CLICK_ID.code) and names & {"transaction_id", "aff_sub"}:
        found.append(
            Finding(
                "click_id_in_network_field",
                "Postbacks without click_id carry transaction_id or aff_sub: on HasOffers/TUNE and "
                "Everflow, transaction_id is the network's own click ID and aff_sub the affiliate's "
                "sub ID that holds ours.",
                "Send click_id={aff_sub} (or the field the offer URL put clickback's click ID in); "
                "clickback reads transaction_id as the transaction ID.",
                Reason.MISSING_CLICK_ID.code,
                reasons[Reason.MISSING_CLICK_ID.code],
            )
        )
    return found


def refusal_spike(recent: tuple[int, int], before: tuple[int, int], advertiser: str) -> Finding | None:
    """(postbacks, refused) in the last hour against the day before it."""
    (total, refused), (earlier_total, earlier_refused) = recent, before
    if total == 0 or refused < SPIKE_MIN_REFUSED:
        return None
    rate = refused / total
    earlier = earlier_refused / earlier_total if earlier_total else 0.0
    if rate < earlier * SPIKE_FACTOR or rate - earlier < SPIKE_POINTS:
        return None
    return Finding(
        "refusal_spike",
        f"{advertiser}: {rate:.0%} of postbacks refused in the last hour ({refused} of {total}), "
        f"against {earlier:.0%} in the day before.",
        "Look at the top reasons below: a changed template, a rotated token or a broken macro.",
        advertiser,
        refused,
    )


@dataclass(frozen=True, slots=True)
class OfferActivity:
    offer: str
    clicks_recent: int
    postbacks_recent: int
    conversions_before: int


def silent_offers(activity: Sequence[OfferActivity], hours: int) -> list[Finding]:
    """Offers with clicks and no postback at all for `hours` that converted in the week before."""
    return [
        Finding(
            "silent_offer",
            f"{a.offer}: {a.clicks_recent} clicks and no postback in the last {hours} h, after "
            f"{a.conversions_before} conversion(s) in the week before.",
            "Check that the advertiser still sends postbacks (their platform, the postback URL, the "
            "token) and that the offer URL still passes the click ID.",
            a.offer,
            a.clicks_recent,
        )
        for a in activity
        if a.clicks_recent >= SILENT_MIN_CLICKS and a.postbacks_recent == 0 and a.conversions_before > 0
    ]


_FAILED = {"broken": "it broken", "soft_404": "a page saying the offer is gone (a soft 404)"}


def failed_links(checks: Sequence[tuple[str, str, str, str]]) -> list[Finding]:
    """(offer, verdict, code, hint) of offers whose latest link check failed."""
    return [
        Finding(
            "broken_link",
            f"{offer}: the offer URL's latest check found {_FAILED.get(verdict, verdict)} ({code}).",
            hint,
            offer,
            1,
        )
        for offer, verdict, code, hint in checks
    ]


def payout_differences(per_offer: Sequence[tuple[str, int]]) -> list[Finding]:
    return [
        Finding(
            "payout_differs",
            f"{offer}: {count} conversion(s) accepted with a payout other than the offer's for the event.",
            "Check the amounts the advertiser's platform sends against the offer's payouts (the "
            "conversions' warnings say both); update whichever is wrong.",
            offer,
            count,
        )
        for offer, count in per_offer
        if count
    ]


@dataclass(frozen=True, slots=True)
class StalePending:
    offer: str
    count: int
    oldest: datetime


def stale_pending(rows: Sequence[StalePending], days: int) -> list[Finding]:
    return [
        Finding(
            "stale_pending",
            f"{r.offer}: {r.count} conversion(s) pending for more than {days} days "
            f"(the oldest since {r.oldest:%Y-%m-%d}).",
            "Ask the advertiser to report their status (approved or rejected): a rejection never "
            "reported keeps the commission in doubt.",
            r.offer,
            r.count,
        )
        for r in rows
        if r.count
    ]


@dataclass(frozen=True, slots=True)
class Summary:
    total: int
    accepted: int
    duplicate: int
    rejected: int
    by_reason: Mapping[str, int] = field(default_factory=dict)

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.total if self.total else None


def summary(outcomes: Iterable[tuple[str, str | None, int]]) -> Summary:
    """(result, reason, count) rows of the log into totals."""
    totals = {"accepted": 0, "duplicate": 0, "rejected": 0}
    by_reason: dict[str, int] = {}
    for result, reason, count in outcomes:
        totals[result] = totals.get(result, 0) + count
        if reason:
            by_reason[reason] = by_reason.get(reason, 0) + count
    ordered = dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))
    return Summary(sum(totals.values()), totals["accepted"], totals["duplicate"], totals["rejected"], ordered)
