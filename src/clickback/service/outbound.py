"""Outbound postbacks into the outbox: inside the transaction that records a conversion or
changes its status, each change the affiliate has a template for becomes a delivery row, written
with the rest (a 2xx to the advertiser means the affiliate will be told; a rolled-back group tells
nobody). The dispatcher (delivery/dispatcher.py) sends them.

Cheap when nobody has a template: the templates come from the in-memory catalog, and a group
whose conversions' affiliates have none costs a dictionary lookup per conversion.

The affiliate's commission for a conversion ({commission}, {payout}, {sum}): a CPA is announced by
the `qualified_cpa` conversion clickback records when the player qualifies (its amount is the
CPA); RevShare by the conversion that changed the month (an NGR report: the difference it booked
in this transaction); any other conversion earns the affiliate nothing by itself: 0.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from clickback.core.addresses import Allowlist
from clickback.core.audit import SYSTEM, Actor
from clickback.core.events import STANDARD_EVENTS, normalise_event
from clickback.core.lifecycle import Status
from clickback.core.model import Catalog, Click
from clickback.core.outbound import OutboundError, Template, notice
from clickback.delivery.sender import destination_problem
from clickback.store import admin
from clickback.store import outbound as outbox
from clickback.store.catalog import decoded, template_of
from clickback.store.db import Database
from clickback.store.outbound import WAITING
from clickback.store.recording import Recording


class TemplateRefused(Exception):
    """A template that cannot be saved: which field, and what to do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# What a change may replace (the rest, e.g. status, has calls of its own).
CHANGEABLE = frozenset(
    {"offer_id", "name", "url", "method", "body_format", "body", "events", "statuses"}
    | {"status_map", "click_id_sub", "secret"}
)


async def create_template(
    db: Database,
    catalog: Catalog,
    allow: Allowlist,
    given: Mapping[str, Any],
    now: datetime,
    by: Actor = SYSTEM,
) -> dict[str, Any]:
    """A new template (the API's and the command line's), checked first: TemplateRefused or
    NotFound (the affiliate) say what to fix."""
    await admin.get(db, "affiliates", given["affiliate_id"])
    values = await _checked(catalog, allow, dict(given))
    return await outbox.create_template(db, values, now, by)


async def change_template(
    db: Database,
    catalog: Catalog,
    allow: Allowlist,
    template_id: int,
    given: Mapping[str, Any],
    now: datetime,
    by: Actor = SYSTEM,
) -> dict[str, Any]:
    """The fields given replace the stored ones; the template as a whole is checked again."""
    stored = decoded(await outbox.get_template(db, template_id))
    values = await _checked(catalog, allow, stored | dict(given))
    return await outbox.change_template(
        db, template_id, {k: v for k, v in values.items() if k in CHANGEABLE}, now, by
    )


async def _checked(catalog: Catalog, allow: Allowlist, values: dict[str, Any]) -> dict[str, Any]:
    """A template's fields as they are saved, or TemplateRefused naming what to fix: its macros
    and shape (core/outbound.py), its offer (one the affiliate has a link to), its events, its
    destination (the SSRF guard)."""
    body_format = values.get("body_format")
    if values["method"] == "GET":
        values["body_format"] = None
    elif body_format is None:
        values["body_format"] = "form"
    try:
        template_of(values)
    except OutboundError as exc:
        raise TemplateRefused("body" if "body" in str(exc) else "url", str(exc)) from None
    offer_id, affiliate_id = values.get("offer_id"), values["affiliate_id"]
    linked = {link.offer_id for link in catalog.links.values() if link.affiliate_id == affiliate_id}
    # An offer the affiliate sends no traffic to: the same refusal whether it exists or not, or an
    # affiliate writing templates would learn which offer ids exist (docs/access.md).
    if offer_id is not None and offer_id not in linked:
        raise TemplateRefused("offer_id", f"affiliate {affiliate_id} has no link to offer {offer_id}")
    # The custom events of the affiliate's own offers: the refusal names them, and other
    # advertisers' event names are theirs.
    known = STANDARD_EVENTS | {
        e for o in linked if o in catalog.offers for e in catalog.offers[o].custom_events
    }
    values["events"] = [normalise_event(e) for e in values["events"]]
    wrong = sorted(e for e in values["events"] if e not in known)
    if wrong:
        raise TemplateRefused(
            "events", f"{', '.join(wrong)}: not an event; use one of {', '.join(sorted(known))}"
        )
    problem = await destination_problem(values["url"], allow)
    if problem is not None:
        raise TemplateRefused("url", problem)
    return values


def enqueue(rec: Recording, catalog: Catalog, clicks: Mapping[str, Click], now: datetime) -> int:
    """Delivery rows for the group's notices that a template fires on; written with rec.flush().
    Call once the group's ledger entries are booked (after recompute_months). Returns how many."""
    notices, rec.notices = rec.notices, []
    fired: list[tuple[Template, dict[str, Any], Status]] = []
    for row, status in notices:
        templates = catalog.outbound.get(row["affiliate_id"]) if row["affiliate_id"] is not None else None
        for t in templates or ():
            if t.fires_on(row["affiliate_id"], row["offer_id"], row["event"], status):
                fired.append((t, row, status))
    if not fired:
        return 0
    missing = [row["click_id"] for _, row, _ in fired if row["click_id"] not in clicks]
    known = dict(clicks) | (rec.clicks(sorted(set(missing))) if missing else {})
    for t, row, status in fired:
        click = known.get(row["click_id"])
        commission, currency = _commission(rec, catalog, row)
        delivery_id = str(uuid.uuid4())
        values = notice(
            row,
            status.value,
            source=click.source if click else "",
            lp=click.landing_page if click else "",
            commission=commission,
            currency=currency,
            delivery_id=delivery_id,
        )
        url, body = t.render(values)
        rec.outbound.append(
            {
                "delivery_id": delivery_id,
                "template_id": t.id,
                "affiliate_id": t.affiliate_id,
                "conversion_id": row["id"],
                "event": row["event"],
                "status": status.value,
                "method": t.method.value,
                "url": url,
                "body": body,
                "content_type": t.content_type,
                "destination": t.host,
                "state": WAITING,  # or held behind an earlier one: outbox.in_turn
                "attempts": 0,
                "next_at": now,
                "last_error": "",
                "created_at": now,
                "updated_at": now,
            }
        )
    outbox.in_turn(rec.conn, rec.outbound, rec.created)
    rec.flush()
    rec.enqueued += len(fired)
    return len(fired)


def _commission(rec: Recording, catalog: Catalog, row: Mapping[str, Any]) -> tuple[Decimal, str]:
    deal = None
    if row["offer_id"] is not None and row["affiliate_id"] is not None:
        deal = catalog.deal_for(row["offer_id"], row["affiliate_id"])
    currency = deal.currency if deal is not None else (row["deal_currency"] or row["currency"] or "")
    if row["event"] == "qualified_cpa":
        return row["payout"] or Decimal(0), row["currency"] or currency
    booked = rec.revshare.get(row["id"], {})
    if row["event"] == "net_revenue" and row["deal_currency"]:
        currency = row["deal_currency"]  # its RevShare month's, which may not be the deal's now
    elif len(booked) == 1:
        (currency,) = booked
    return booked.get(currency, Decimal(0)), currency
