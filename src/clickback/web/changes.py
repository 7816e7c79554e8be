"""The catalog's changes that take more than one store call, as the API and the dashboard's
pages both make them (web/api.py, web/catalogpages.py): checked by the API's own models
(web/schemas.py) and rules (core/deals.py, core/cost.py), written with their audit record, and
the catalog reloaded. One place, so that a form refuses exactly what the API refuses."""

import json
from decimal import Decimal
from typing import Any

from clickback.core.accounts import Principal
from clickback.core.audit import actor_of
from clickback.core.caps import TOTAL
from clickback.core.commission import DealKind, Tier, TierBasis
from clickback.core.cost import CostError, CostKind, CostModel, check, stored
from clickback.core.deals import DealChange, DealProblem, changed_deal
from clickback.core.events import normalise_event
from clickback.core.model import EVERY_AFFILIATE
from clickback.core.reporting import ReportError, parse_zone
from clickback.core.verticals import Vertical, preset_deal
from clickback.service.clock import utcnow
from clickback.service.runtime import Runtime
from clickback.store import admin, deals
from clickback.store import caps as caps_store
from clickback.store.db import Database
from clickback.web import schemas as s


class Invalid(ValueError):
    """A value the models let through but a rule refuses: `loc` names the field as the API's 422
    does (("body", "payouts"), ("body", "cpa", "amount")), `message` what is wrong."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


async def changed(runtime: Runtime, row: dict[str, Any]) -> dict[str, Any]:
    # This process sees its own change at once (its next click); others within
    # catalog_refresh_seconds (the change bumped the catalog's version).
    await runtime.catalog.reload()
    return row


async def create_offer(runtime: Runtime, body: s.OfferIn, who: Principal) -> dict[str, Any]:
    db = runtime.db
    row = await admin.create_offer(
        db,
        advertiser_id=body.advertiser_id,
        name=body.name,
        url_template=body.url_template,
        currency=body.currency,
        payouts=body.payouts,
        custom_events=body.custom_events,
        now=utcnow(),
        vertical=body.vertical or "",
        pixel=body.pixel,
        attribution_days=body.attribution_days,
        by=actor_of(who),
    )
    if body.vertical:
        # A new offer of a known vertical earns from its first player on sensible terms.
        deal = preset_deal(Vertical(body.vertical), row["currency"])
        await deals.put_deal(db, row["id"], EVERY_AFFILIATE, deal, utcnow(), actor_of(who))
    return await changed(runtime, row)


async def edit_offer(
    runtime: Runtime, offer_id: int, values: dict[str, Any], who: Principal
) -> dict[str, Any]:
    """`values`: the fields of an OfferChange given (none null). Payouts are checked against the
    custom events the offer will have, given or kept."""
    values = dict(values)
    if "payouts" in values or "custom_events" in values:
        current = await admin.get(runtime.db, "offers", offer_id)
        events = values.get("custom_events", json.loads(current["custom_events"]))
        payouts = values.get("payouts", {k: Decimal(v) for k, v in json.loads(current["payouts"]).items()})
        problem = s.payouts_problem(payouts, events)
        if problem:
            raise Invalid(("body", "payouts"), problem)
        values["payouts"] = json.dumps({normalise_event(k): str(v) for k, v in payouts.items()})
        values["custom_events"] = json.dumps(sorted(set(events)))
    return await changed(runtime, await admin.edit(runtime.db, "offers", offer_id, values, actor_of(who)))


def cost_json(body: s.CostIn | None, at: tuple[str, ...]) -> str | None:
    """The model as links.cost keeps it, checked (core/cost.py); Invalid naming the field under
    `at` if not."""
    if body is None or body.model == "none":
        return None
    try:
        model = CostModel(
            kind=CostKind(body.model),
            currency=body.currency or "",
            amount=body.amount,
            countries=body.countries,
            event=body.event or "",
            percent=body.percent,
            bots=body.bots,
        )
        check(model)
    except CostError as exc:
        raise Invalid((*at, exc.field), str(exc)) from None
    return json.dumps(stored(model))


async def create_link(runtime: Runtime, body: s.LinkIn, who: Principal) -> dict[str, Any]:
    row = await admin.create_link(
        runtime.db,
        affiliate_id=body.affiliate_id,
        offer_id=body.offer_id,
        campaign=body.campaign,
        now=utcnow(),
        cost=cost_json(body.cost, ("body", "cost")),
        by=actor_of(who),
    )
    return await changed(runtime, row)


async def put_deal(
    runtime: Runtime, offer_id: int, affiliate_id: int, body: s.DealIn, who: Principal
) -> dict[str, Any]:
    """The offer's default deal (affiliate EVERY_AFFILIATE) or one affiliate's own, changed in the
    fields `body` names (core/deals.changed_deal)."""
    db = runtime.db
    offer = await admin.get(db, "offers", offer_id)
    if affiliate_id != EVERY_AFFILIATE:
        await admin.get(db, "affiliates", affiliate_id)
    current = await deals.deal_in_force(db, offer_id, affiliate_id)
    deal = changed_deal(current, deal_change(body), offer["currency"], offer["vertical"])
    if isinstance(deal, DealProblem):
        raise Invalid(("body", *deal.loc), deal.message)
    return await changed(
        runtime, await deals.put_deal(db, offer_id, affiliate_id, deal, utcnow(), actor_of(who))
    )


async def put_cap(
    runtime: Runtime, offer_id: int, affiliate_id: int, body: s.CapIn, who: Principal
) -> dict[str, Any]:
    db = runtime.db
    await admin.get(db, "offers", offer_id)
    if affiliate_id != EVERY_AFFILIATE:
        await admin.get(db, "affiliates", affiliate_id)
    try:
        parse_zone(body.zone)
    except ReportError as exc:
        raise Invalid(("body", "zone"), str(exc)) from None
    # Caps are read in the recording transaction, never cached: no catalog to reload (ADR 17).
    return await caps_store.put_cap(
        db,
        offer_id=offer_id,
        affiliate_id=affiliate_id,
        event=body.event,
        daily=body.daily,
        total=body.total,
        zone=body.zone,
        now=utcnow(),
        by=actor_of(who),
    )


async def caps_out(db: Database, rows: list[dict[str, Any]]) -> list[s.CapOut]:
    """Caps as the API shows them: with what each counted today (in its zone) and in total."""
    counted = await caps_store.counts(db, [r["id"] for r in rows])
    now = utcnow()
    out = []
    for r in rows:
        today = now.astimezone(parse_zone(r["zone"])).date().isoformat()
        out.append(
            s.CapOut(
                **(r | {"affiliate_id": r["affiliate_id"] or None}),
                today=counted.get((r["id"], today), 0),
                counted=counted.get((r["id"], TOTAL), 0),
            )
        )
    return out


def deal_change(body: s.DealIn) -> DealChange:
    """The fields the request names: pydantic's model_fields_set tells a field left out (kept)
    from one given as null (removed)."""
    return DealChange(
        kind=DealKind(body.kind) if body.kind else None,
        currency=body.currency,
        cpa=_given(body.cpa) if body.cpa is not None else None,
        revshare=_given(body.revshare) if body.revshare is not None else None,
        removed=frozenset(
            part
            for part, terms in (("cpa", body.cpa), ("revshare", body.revshare))
            if terms is None and part in body.model_fields_set
        ),
    )


def _given(terms: s.CpaTermsIn | s.RevShareTermsIn) -> dict[str, Any]:
    given = {name: getattr(terms, name) for name in terms.model_fields_set}
    if "tiers" in given:
        given["tiers"] = tuple(Tier(t.threshold, t.percent) for t in given["tiers"])
    if "tier_basis" in given:
        given["tier_basis"] = TierBasis(given["tier_basis"])
    return given
