"""What goes wrong with an advertiser's postbacks, from what the postback log and the conversions
hold: each finding a warning with a code, what was seen, and what to do. Pure: the store counts,
this decides."""

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from clickback.core.intake import ALIASES
from clickback.core.reasons import Reason

KNOWN_NAMES = sorted({alias for aliases in ALIASES.values() for alias in aliases})
# Names that platforms send on purpose and clickback ignores: never "misspelt".
_NOT_MISSPELT = frozenset({"adv_sub", "aff_sub", "offer_id", "affiliate_id", "goal_id", "source"})
# A refusal rate this many times the earlier one, and this much higher, over at least this many
# refusals, is a jump worth a look (an integration changed, a token rotated, a macro broke).
SPIKE_FACTOR = 2.0
SPIKE_POINTS = 0.2
SPIKE_MIN_REFUSED = 10
# An offer with this many clicks in the quiet window and no postback, that converted before.
SILENT_MIN_CLICKS = 50


def conversion_warnings(
    event: str, payout: Decimal | None, offer_payouts: Mapping[str, Decimal], ignored: Iterable[str]
) -> tuple[str, ...]:
    """What looks wrong in an accepted postback: kept on its conversion, said in the reply."""
    warnings = []
    configured = offer_payouts.get(event)
    if payout is not None and configured is not None and payout != configured:
        warnings.append(f"payout_differs: sent {payout}, the offer pays {configured} for {event}")
    for name in ignored:
        meant = did_you_mean(name)
        if meant is not None:
            warnings.append(f"misspelt_parameter: '{name}' was ignored, did you mean '{meant}'?")
    return tuple(warnings)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str
    hint: str
    # What it is about: an offer, a parameter name, a reason code.
    subject: str = ""
    count: int = 0


def did_you_mean(name: str) -> str | None:
    """The postback parameter a name ignored as unknown was probably meant to be."""
    if name in _NOT_MISSPELT or name in KNOWN_NAMES:
        return None
    close = difflib.get_close_matches(name, KNOWN_NAMES, n=1, cutoff=0.75)
    return close[0] if close else None


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
                    f"Rename '{name}' to '{meant}' in the postback template; until then its value is lost.",
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
