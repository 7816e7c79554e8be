"""Diagnosis of an advertiser's (or an offer's, or everyone's) postbacks over a period: the
outcomes, the top refusal reasons with examples, and what the detectors found (core/diagnosis.py)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clickback.core import diagnosis as core
from clickback.core.model import Catalog, State
from clickback.store import diagnosis as store
from clickback.store.db import Database
from clickback.store.diagnosis import Scope

TOP_REASONS = 5
EXAMPLES = 3
SPIKE_WINDOW = timedelta(hours=1)
SPIKE_BEFORE = timedelta(hours=24)
SILENT_BEFORE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class TopReason:
    code: str
    count: int
    # The newest log entries refused for it (their tokens masked, as the log keeps them).
    examples: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    scope: Scope
    summary: core.Summary
    top_reasons: list[TopReason]
    findings: list[core.Finding]


async def diagnose(
    db: Database, catalog: Catalog, scope: Scope, now: datetime, pending_days: int, silent_hours: int
) -> Diagnosis:
    summary = core.summary(await store.outcomes(db, scope))
    codes = [code for code in summary.by_reason if code != "duplicate"][:TOP_REASONS]
    examples = await store.examples(db, scope, codes, EXAMPLES)
    queries = [entry["query"] for entries in examples.values() for entry in entries]

    findings = core.misspelt_parameters(await store.ignored_names(db, scope))
    findings += core.reason_hints(summary.by_reason, queries)

    recent = await store.refusals_by_advertiser(db, now - SPIKE_WINDOW, now)
    before = await store.refusals_by_advertiser(db, now - SPIKE_WINDOW - SPIKE_BEFORE, now - SPIKE_WINDOW)
    for advertiser_id, counts in sorted(recent.items()):
        if scope.advertiser_id in (None, advertiser_id):
            name = _advertiser(catalog, advertiser_id)
            spike = core.refusal_spike(counts, before.get(advertiser_id, (0, 0)), name)
            findings += [spike] if spike else []

    differing = await store.warned(db, scope, "payout_differs")
    findings += core.payout_differences([(_offer(catalog, offer), n) for offer, n in differing])

    pending = await store.pending_before(
        db, now - timedelta(days=pending_days), scope.advertiser_id, scope.offer_id
    )
    findings += core.stale_pending(
        [core.StalePending(_offer(catalog, offer), n, oldest) for offer, n, oldest in pending], pending_days
    )

    offers = [
        o.id
        for o in catalog.offers.values()
        if o.status is State.ACTIVE
        and scope.advertiser_id in (None, o.advertiser_id)
        and scope.offer_id in (None, o.id)
    ]
    quiet_since = now - timedelta(hours=silent_hours)
    activity = await store.offer_activity(db, offers, quiet_since, quiet_since - SILENT_BEFORE)
    findings += core.silent_offers(
        [core.OfferActivity(_offer(catalog, offer), *activity[offer]) for offer in offers], silent_hours
    )
    checks = await store.failed_link_checks(db, offers)
    findings += core.failed_links(
        [(_offer(catalog, o), verdict, code, hint) for o, verdict, code, hint in checks]
    )
    top = [TopReason(code, summary.by_reason[code], examples[code]) for code in codes]
    return Diagnosis(scope, summary, top, findings)


def _advertiser(catalog: Catalog, advertiser_id: int) -> str:
    advertiser = catalog.advertisers.get(advertiser_id)
    return f"advertiser {advertiser_id}" + (f" ({advertiser.name})" if advertiser else "")


def _offer(catalog: Catalog, offer_id: int) -> str:
    offer = catalog.offers.get(offer_id)
    return f"offer {offer_id}" + (f" ({offer.name})" if offer else "")
