"""The JSON API, mounted at /api (OpenAPI at /api/openapi.json, docs at /api/docs)."""

import functools
import json
import math
import os
import re
from base64 import b64encode
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from hashlib import sha256
from typing import Annotated, Any, Literal, NoReturn, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from clickback.core import costimport, integration, placements
from clickback.core.accounts import (
    COMMISSION_EVENTS,
    EARNINGS_FIELDS,
    NETWORK_METRICS,
    REVENUE_FIELDS,
    Principal,
    Role,
)
from clickback.core.activity import ActivityQuery
from clickback.core.addresses import parse_networks
from clickback.core.audit import actor_of
from clickback.core.commission import TierBasis
from clickback.core.cost import COST_SCALE
from clickback.core.events import STANDARD_EVENTS
from clickback.core.intake import SIGNATURE_FORMAT
from clickback.core.lifecycle import Status
from clickback.core.model import EVERY_AFFILIATE
from clickback.core.money import money_text
from clickback.core.outbound import mask_url
from clickback.core.reasons import BY_CODE, Reason
from clickback.core.reporting import (
    ALIASES as REPORT_ALIASES,
)
from clickback.core.reporting import (
    BASIS_NOTES,
    DIMENSIONS,
    MAX_DAYS,
    MAX_LIMIT,
    TIME_DIMENSIONS,
    Basis,
    ReportError,
    parse_zone,
    sort_name,
)
from clickback.core.spans import Span
from clickback.core.statements import statement_csv, totals
from clickback.core.tester import OutboundPreview
from clickback.core.verticals import PRESETS
from clickback.service import outbound as outbound_service
from clickback.service.accounts import AccountError
from clickback.service.clock import utcnow
from clickback.service.diagnosis import diagnose
from clickback.service.runtime import Runtime
from clickback.service.tester import Problem, TestClick, TestPostback, Trace, no_test_click
from clickback.store import (
    activity,
    admin,
    costs,
    deals,
    fx,
    ledger,
    linkchecks,
    outbound,
    paging,
    postback_log,
    reports,
    statements,
)
from clickback.store import (
    audit as audit_store,
)
from clickback.store import (
    caps as caps_store,
)
from clickback.store.catalog import deal_from_row, decoded
from clickback.store.db import database_problem
from clickback.store.diagnosis import Scope
from clickback.web import activity as web_activity
from clickback.web import changes, reconcile_api, reporting
from clickback.web import schemas as s
from clickback.web.access import Who, owned, scoped

MAX_REPORT_DAYS = MAX_DAYS
# Paths under /api that need no key: web/guard.py checks it on every other one.
DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
DOCS_ASSETS = "/docs-assets"
PUBLIC_PATHS = (DOCS_PATH, OPENAPI_PATH, DOCS_ASSETS + "/")
_bearer = HTTPBearer(
    auto_error=False,
    description="Authorization: Bearer <key>: CLICKBACK_API_KEY (a manager's), or a user's own key "
    "(`clickback user key LOGIN`), which reaches what the user's role may (docs/access.md)",
)
_header = APIKeyHeader(name="X-API-Key", auto_error=False)
T = TypeVar("T")


# A test click's ID in a path: the click-ID alphabet only, so nothing odd reaches a query.
TestClickId = Annotated[str, Path(max_length=64, pattern=s.CLICK_ID_PATTERN)]

# Owner filters of the active-players reports, repeatable: `affiliate=3&affiliate=4`.
Owners = Annotated[list[s.Id] | None, Query(max_length=reporting.MAX_FILTER_VALUES)]
# A request's zone; none: the user's own (`clickback user zone`), UTC for CLICKBACK_API_KEY.
Zone = Annotated[
    str | None,
    Query(max_length=64, description="IANA time zone of days, weeks and months; default: the user's own"),
]


def create_api(runtime: Runtime) -> FastAPI:
    api = FastAPI(
        title="clickback API",
        version="0.1.0",
        description="Manage advertisers, offers, affiliates, tracking links, deals and exchange "
        "rates; read the postback log, conversions, reports, the commission ledger, statements and "
        "player value. Every call needs an API key: CLICKBACK_API_KEY or a manager's reach "
        "everything; an affiliate's or advertiser's key only the routes open to them, and there "
        "their own rows (docs/access.md).",
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # served below, with the policy its page needs
        redoc_url=None,
        # A redirect to the path with(out) its slash would name the request's Host header.
        redirect_slashes=False,
    )
    serve_docs(api)
    db = runtime.db
    public = runtime.settings.public_url.rstrip("/")
    # web/guard.py checks the key before the body is read; these put it in the OpenAPI document.
    api.router.dependencies += [Depends(_bearer), Depends(_header)]

    @api.exception_handler(RequestValidationError)
    async def unprocessable(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own reply, with the input it echoes made encodable: no 500 for a body of
        # invalid UTF-8, "\ud800", NaN or 1e309.
        return JSONResponse({"detail": jsonable_encoder(_encodable(exc.errors()))}, status_code=422)

    @api.exception_handler(SQLAlchemyError)
    @api.exception_handler(OSError)
    async def database_away(request: Request, exc: Exception) -> JSONResponse:
        # The database gone (a restart, a lost connection): a 503 to retry, as a postback gets,
        # not a 500. Anything else the database refuses is a bug, and keeps its 500.
        lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
        if not lost and database_problem(exc, runtime.settings.url) is None:
            raise exc
        detail = "the database cannot be reached right now: nothing was changed; retry"
        return JSONResponse({"detail": detail}, status_code=503, headers={"retry-after": "1"})

    @api.exception_handler(admin.NotFound)
    async def not_found(request: Request, exc: admin.NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @api.exception_handler(admin.Conflict)
    async def conflict(request: Request, exc: admin.Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @api.exception_handler(changes.Invalid)
    async def refused(request: Request, exc: changes.Invalid) -> JSONResponse:
        # A rule beyond the models' (web/changes.py), answered as the models' own refusals are.
        error = RequestValidationError([{"loc": exc.loc, "msg": exc.message, "type": "value_error"}])
        return await unprocessable(request, error)

    @api.exception_handler(paging.BadCursor)
    async def bad_cursor(request: Request, exc: paging.BadCursor) -> JSONResponse:
        message = f"{exc}: give the next_cursor of a page of this list"
        error = RequestValidationError([{"loc": ("query", "cursor"), "msg": message, "type": "value_error"}])
        return await unprocessable(request, error)

    async def changed(result: dict[str, Any]) -> dict[str, Any]:
        # This process sees its own change at once; others within catalog_refresh_seconds.
        await runtime.catalog.reload()
        return result

    def advertiser_out(row: dict[str, Any]) -> s.AdvertiserOut:
        url = f"{public}/postback?click_id={{click_id}}&event={{event}}&payout={{payout}}"
        url += f"&currency={{currency}}&txn_id={{txn_id}}&status={{status}}&token={row['token']}"
        return s.AdvertiserOut(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            token=row["token"],
            postback_url=url,
            created_at=row["created_at"],
            previous_token_valid_until=row["previous_token_until"] if row["previous_token"] else None,
            allowed_ips=_entries(row["allowed_ips"]),
            signing=row["signing_secret"] is not None,
        )

    def security_out(row: dict[str, Any]) -> s.SecurityOut:
        return s.SecurityOut(
            allowed_ips=_entries(row["allowed_ips"]),
            signing=row["signing_secret"] is not None,
            signing_secret=row["signing_secret"],
            signature_format=SIGNATURE_FORMAT,
        )

    def offer_out(row: dict[str, Any]) -> s.OfferOut:
        decoded = {k: json.loads(row[k]) for k in ("payouts", "custom_events")}
        pixel = f"{public}/p/{row['pixel_code']}" if row["pixel"] else None
        return s.OfferOut(
            **(row | decoded),
            pixel_url=pixel and f"{pixel}?click_id={{click_id}}&event={{event}}&txn_id={{txn_id}}",
            pixel_script_url=pixel and f"{pixel}.js",
        )

    def link_out(row: dict[str, Any]) -> s.LinkOut:
        stored = json.loads(row["cost"]) if row["cost"] else None
        cost = stored and s.CostOut(**{"percent": "0", **stored, "model": stored["kind"]})
        return s.LinkOut(**{**row, "cost": cost}, url=f"{public}/c/{row['code']}")

    # --- advertisers -------------------------------------------------------------------------
    @api.post("/advertisers", status_code=201, tags=["advertisers"])
    async def create_advertiser(body: s.AdvertiserIn, who: Who) -> s.AdvertiserOut:
        row = await admin.create_advertiser(db, body.name, utcnow(), actor_of(who))
        return advertiser_out(await changed(row))

    @api.get("/advertisers", tags=["advertisers"])
    async def list_advertisers(q: Annotated[s.CatalogQuery, Query()]) -> s.Page[s.AdvertiserOut]:
        """Oldest first."""
        page = await admin.list_page(db, "advertisers", q.values(), q.cursor, q.limit)
        return page_out(page, advertiser_out)

    @api.get("/advertisers/{item_id}", tags=["advertisers"])
    async def get_advertiser(item_id: s.Id) -> s.AdvertiserOut:
        return advertiser_out(await admin.get(db, "advertisers", item_id))

    # --- offers ------------------------------------------------------------------------------
    @api.post("/offers", status_code=201, tags=["offers"])
    async def create_offer(body: s.OfferIn, who: Who) -> s.OfferOut:
        return offer_out(await changes.create_offer(runtime, body, who))

    @api.get("/offers", tags=["offers"])
    async def list_offers(q: Annotated[s.OffersQuery, Query()], who: Who) -> s.Page[s.OfferOut]:
        """Oldest first."""
        page = await admin.list_page(db, "offers", scoped(who, q.values()), q.cursor, q.limit)
        return page_out(page, offer_out)

    @api.get("/offers/{item_id}", tags=["offers"])
    async def get_offer(item_id: s.Id, who: Who) -> s.OfferOut:
        row = await admin.get(db, "offers", item_id)
        return offer_out(owned(who, row, f"offers {item_id}", tenant="advertiser_id"))

    @api.put("/offers/{item_id}/attribution", tags=["offers"])
    async def set_offer_attribution(item_id: s.Id, body: s.AttributionIn, who: Who) -> s.OfferOut:
        """The offer's attribution window: conversions whose event comes more than `days` after
        their click are refused with `attribution_window_passed` (null: no window)."""
        return offer_out(await changed(await admin.set_attribution(db, item_id, body.days, actor_of(who))))

    @api.put("/offers/{item_id}/pixel", tags=["offers"])
    async def set_offer_pixel(item_id: s.Id, body: s.PixelIn, who: Who) -> s.OfferOut:
        """Switch the offer's tracking pixel on or off (its URL stays the same)."""
        return offer_out(await changed(await admin.set_pixel(db, item_id, body.enabled, actor_of(who))))

    # --- affiliates --------------------------------------------------------------------------
    @api.get("/offers/{item_id}/link-checks", tags=["link checks"])
    async def list_link_checks(item_id: s.Id, q: Annotated[s.Paged, Query()]) -> s.Page[s.LinkCheckOut]:
        """The checks of the offer's URL, newest first (kept 90 days)."""
        await admin.get(db, "offers", item_id)
        page = await linkchecks.history(db, item_id, q.cursor, q.limit)
        return page_out(page, s.LinkCheckOut.model_validate)

    @api.get("/link-checks/latest", tags=["link checks"])
    async def latest_link_checks(
        q: Annotated[s.LinkChecksLatestQuery, Query()],
    ) -> s.Page[s.LinkCheckOut]:
        """Each active offer's latest check, by offer id (offers not checked yet are left out);
        `verdict=broken` lists the offers to look at."""
        page = await linkchecks.latest(db, q.verdict, q.cursor, q.limit)
        return page_out(page, s.LinkCheckOut.model_validate)

    @api.post("/affiliates", status_code=201, tags=["affiliates"])
    async def create_affiliate(body: s.AffiliateIn, who: Who) -> s.AffiliateOut:
        row = await admin.create_affiliate(db, body.name, utcnow(), actor_of(who))
        return s.AffiliateOut(**await changed(row))

    @api.get("/affiliates", tags=["affiliates"])
    async def list_affiliates(q: Annotated[s.ArchivableQuery, Query()]) -> s.Page[s.AffiliateOut]:
        """Oldest first."""
        page = await admin.list_page(db, "affiliates", q.values(), q.cursor, q.limit)
        return page_out(page, s.AffiliateOut.model_validate)

    @api.get("/affiliates/{item_id}", tags=["affiliates"])
    async def get_affiliate(item_id: s.Id) -> s.AffiliateOut:
        return s.AffiliateOut(**await admin.get(db, "affiliates", item_id))

    # --- links -------------------------------------------------------------------------------
    @api.post("/links", status_code=201, tags=["links"])
    async def create_link(body: s.LinkIn, who: Who) -> s.LinkOut:
        return link_out(await changes.create_link(runtime, body, who))

    @api.get("/links", tags=["links"])
    async def list_links(q: Annotated[s.LinksQuery, Query()], who: Who) -> s.Page[s.LinkOut]:
        """Oldest first."""
        page = await admin.list_page(db, "links", scoped(who, q.values()), q.cursor, q.limit)
        return page_out(page, link_out)

    @api.get("/links/{item_id}", tags=["links"])
    async def get_link(item_id: s.Id, who: Who) -> s.LinkOut:
        row = await admin.get(db, "links", item_id)
        return link_out(owned(who, row, f"links {item_id}", tenant="affiliate_id"))

    @api.put("/links/{item_id}/cost", tags=["links"])
    async def set_link_cost(item_id: s.Id, body: s.CostIn, who: Who) -> s.LinkOut:
        """What the link's traffic costs, from now on (clicks and conversions already recorded
        keep theirs). `{"model": "none"}` removes it."""
        row = await admin.set_link_cost(db, item_id, changes.cost_json(body, ("body",)), actor_of(who))
        return link_out(await changed(row))

    # --- traffic cost --------------------------------------------------------------------------
    @api.post(
        "/costs/import",
        tags=["links"],
        openapi_extra={
            "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
        },
    )
    async def import_spend(
        request: Request,
        who: Who,
        zone: Zone = None,
        currency: Annotated[s.Currency | None, Query()] = None,
    ) -> s.SpendImportOut:
        """Spend a traffic source reports afterwards, as CSV: `day,link,cost` and optionally
        `currency` and `sub1`…`sub5` (a link by its code or id; days in `zone`). Each line is
        spread over the matching clicks of its day and link; the file replaces what those clicks
        cost before (docs/reports.md, "Importing spend"). One wrong line refuses the file."""
        try:
            text = (await request.body()).decode("utf-8-sig")
        except UnicodeDecodeError:
            invalid(("body",), "the CSV is not UTF-8")
        try:
            where = parse_zone(zone or who.zone)
        except ReportError as exc:
            invalid(("query", "zone"), str(exc))
        try:
            groups = costimport.resolve(costimport.parse_spend(text, currency), runtime.catalog.current)
        except costimport.SpendError as exc:
            invalid(("body", f"line {exc.line}", exc.field), str(exc))
        applied = await costs.apply_spend(db, groups, where, utcnow(), actor_of(who))
        return s.SpendImportOut(
            lines=applied.lines,
            clicks=applied.clicks,
            total=applied.total,
            unmatched=[
                s.SpendLineOut(
                    line=u.line,
                    day=u.day,
                    link=u.link,
                    cost=Decimal(u.units) / COST_SCALE,
                    currency=u.currency,
                )
                for u in applied.unmatched
            ],
        )

    @api.get("/costs/imports", tags=["links"])
    async def list_cost_imports(q: Annotated[s.CostImportsQuery, Query()]) -> s.Page[s.CostImportOut]:
        """Lines of spend imported, newest first."""
        page = await costs.imports_page(db, q.link_id, q.cursor, q.limit)
        return page_out(page, lambda r: s.CostImportOut(**{**r, "subs": json.loads(r["subs"])}))

    # --- pausing any of the four, archiving three ----------------------------------------------
    def status_route(kind: str, out: Callable[[dict[str, Any]], Any]) -> None:
        async def set_status(item_id: s.Id, body: s.StatusIn, who: Who) -> Any:
            return out(await changed(await admin.set_status(db, kind, item_id, body.status, actor_of(who))))

        # Offers, affiliates and links are archived instead of deleted: their history refers to them.
        async def set_catalog_status(item_id: s.Id, body: s.CatalogStatusIn, who: Who) -> Any:
            return out(await changed(await admin.set_status(db, kind, item_id, body.status, actor_of(who))))

        archivable = kind != "advertisers"
        api.add_api_route(
            f"/{kind}/{{item_id}}/status",
            set_catalog_status if archivable else set_status,
            methods=["PUT"],
            tags=[kind],
            summary=f"Pause, activate{' or archive' if archivable else ''} one of the {kind}",
            response_model=Any,
        )

    # --- editing ---------------------------------------------------------------------------------
    def given(body: s.Strict) -> dict[str, Any]:
        """The fields a PATCH names; null is no value (leave a field out to keep it)."""
        fields = body.model_dump(exclude_unset=True)
        for name, value in fields.items():
            if value is None:
                invalid(("body", name), "give a value, or leave the field out to keep it")
        return fields

    @api.patch("/offers/{item_id}", tags=["offers"])
    async def edit_offer(item_id: s.Id, body: s.OfferChange, who: Who) -> s.OfferOut:
        """Change the offer's name, URL template (from the next click, on every process),
        currency, default payouts or custom events; checked as on create, recorded in the audit
        log. Its deal: PUT /offers/{id}/deal."""
        return offer_out(await changes.edit_offer(runtime, item_id, given(body), who))

    @api.patch("/advertisers/{item_id}", tags=["advertisers"])
    async def edit_advertiser(item_id: s.Id, body: s.NameChange, who: Who) -> s.AdvertiserOut:
        """Rename (recorded in the audit log)."""
        return advertiser_out(
            await changed(await admin.edit(db, "advertisers", item_id, given(body), actor_of(who)))
        )

    @api.patch("/affiliates/{item_id}", tags=["affiliates"])
    async def edit_affiliate(item_id: s.Id, body: s.NameChange, who: Who) -> s.AffiliateOut:
        """Rename (recorded in the audit log); pause, activate or archive: PUT …/status."""
        row = await admin.edit(db, "affiliates", item_id, given(body), actor_of(who))
        return s.AffiliateOut(**await changed(row))

    @api.patch("/links/{item_id}", tags=["links"])
    async def edit_link(item_id: s.Id, body: s.LinkChange, who: Who) -> s.LinkOut:
        """Move the link to another campaign: reports by campaign count its clicks so far under
        the new name too (each click row keeps the one it was made under). Recorded in the audit
        log."""
        return link_out(await changed(await admin.edit(db, "links", item_id, given(body), actor_of(who))))

    status_route("advertisers", advertiser_out)
    status_route("offers", offer_out)
    status_route("affiliates", lambda r: s.AffiliateOut(**r))
    status_route("links", link_out)

    def offer_guide(item_id: int, who: Principal) -> integration.Guide:
        catalog = runtime.catalog.current
        offer = catalog.offers.get(item_id)
        if offer is None or not who.owns(advertiser_id=offer.advertiser_id):
            raise admin.NotFound(f"offers {item_id} does not exist")
        advertiser = catalog.advertisers[offer.advertiser_id]
        return integration.guide(public, advertiser, offer, catalog.names_of(advertiser.id))

    @api.get("/offers/{item_id}/integration", tags=["offers"])
    async def get_integration(item_id: s.Id, who: Who) -> s.IntegrationOut:
        """The integration guide to give the advertiser's developer: the postback URL with the
        token, every parameter and its aliases, an example per event of the offer, the status
        words, the refusal reasons, and the URL in the macro syntax of common platforms."""
        g = offer_guide(item_id, who)
        return s.IntegrationOut(
            advertiser=g.advertiser,
            offer=g.offer,
            postback_url=g.postback_url,
            fields=[s.FieldOut(name=f.name, aliases=list(f.aliases), meaning=f.meaning) for f in g.fields],
            events=list(g.events),
            examples=[s.ExampleOut(event=e.event, url=e.url) for e in g.examples],
            statuses=dict(g.statuses),
            reasons=[reason_out(r) for r in g.reasons],
            presets=[s.PlatformPresetOut(**asdict(p)) for p in g.presets],
        )

    @api.get(
        "/offers/{item_id}/integration.md",
        tags=["offers"],
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/markdown": {}}}},
    )
    async def get_integration_page(item_id: s.Id, who: Who) -> PlainTextResponse:
        """The same guide as a Markdown page."""
        return PlainTextResponse(
            integration.markdown(offer_guide(item_id, who)), media_type="text/markdown; charset=utf-8"
        )

    @api.get("/diagnosis", tags=["postback log"])
    async def get_diagnosis(q: Annotated[s.DiagnosisQuery, Query()], who: Who) -> s.DiagnosisOut:
        """What goes wrong with postbacks over a period (default: the last 7 days), for one
        advertiser, one offer or everyone: outcomes, the top refusal reasons with examples, and
        findings (misspelt parameters, platform habits, a jump in refusals, conversions left
        pending, offers gone silent) each with a hint."""
        now = utcnow()
        until = q.until or now
        if q.since is None and until < datetime.min.replace(tzinfo=UTC) + timedelta(days=7):
            invalid(("query", "until"), "until must leave room for the 7 days before it")
        since = q.since or until - timedelta(days=7)
        if not since < until or until - since > timedelta(days=s.MAX_DIAGNOSIS_DAYS):
            invalid(
                ("query", "since"), f"since must be before until, at most {s.MAX_DIAGNOSIS_DAYS} days apart"
            )
        advertiser_id = q.advertiser_id if who.is_manager else who.advertiser_id
        if q.offer_id is not None:
            offer = runtime.catalog.current.offers.get(q.offer_id)
            if offer is None or not who.owns(advertiser_id=offer.advertiser_id):
                raise admin.NotFound(f"offers {q.offer_id} does not exist")
        scope = Scope(since, until, advertiser_id, q.offer_id)
        found = await diagnose(db, runtime.catalog.current, scope, now, q.pending_days, q.silent_hours)
        return s.DiagnosisOut(
            since=since,
            until=until,
            advertiser_id=advertiser_id,
            offer_id=q.offer_id,
            postbacks=found.summary.total,
            accepted=found.summary.accepted,
            duplicate=found.summary.duplicate,
            rejected=found.summary.rejected,
            acceptance_rate=found.summary.acceptance_rate,
            by_reason=dict(found.summary.by_reason),
            top_reasons=[
                s.TopReasonOut(
                    code=r.code,
                    count=r.count,
                    sentence=BY_CODE[r.code].sentence,
                    hint=BY_CODE[r.code].hint,
                    examples=[s.PostbackLogOut.model_validate(e) for e in r.examples],
                )
                for r in found.top_reasons
            ],
            findings=[s.FindingOut(**asdict(f)) for f in found.findings],
        )

    # --- postback log, conversions -----------------------------------------------------------
    @api.get("/postbacks", tags=["postback log"])
    async def list_postbacks(q: Annotated[s.PostbacksQuery, Query()], who: Who) -> s.Page[s.PostbackLogOut]:
        """Every postback received, newest first."""
        f = postback_log.LogFilter(**scoped(who, q.values()), received=Span(q.since, q.until))
        page = await postback_log.list_postbacks(db, f, q.cursor, q.limit)
        return page_out(page, s.PostbackLogOut.model_validate)

    @api.get(
        "/conversions",
        tags=["conversions"],
        description=f"Newest first; `from` and `to` select by {postback_log.CONVERSION_TIME.name}.",
    )
    async def list_conversions(
        q: Annotated[s.ConversionsQuery, Query()], who: Who
    ) -> s.Page[s.ConversionOut]:
        f = postback_log.ConversionFilter(**scoped(who, q.values()), span=q.span())
        page = await postback_log.list_conversions(db, f, q.cursor, q.limit)
        return page_out(page, lambda row: conversion_out(row, who))

    @api.get("/conversions/{conversion_id}", tags=["conversions"])
    async def get_conversion(conversion_id: s.Id, who: Who) -> s.ConversionDetailOut:
        """The conversion, its status history (with who changed it by hand and why: see also
        GET /audit), the postbacks behind it, its ledger entries and outbound deliveries."""
        row = await postback_log.get_conversion(db, conversion_id)
        if row is None or not who.owns(affiliate_id=row["affiliate_id"], advertiser_id=row["advertiser_id"]):
            raise HTTPException(404, f"conversion {conversion_id} does not exist")
        related = await postback_log.conversion_record(db, conversion_id)
        # Each party their own: the raw postbacks carry the advertiser's payout; the ledger and
        # the deliveries what the affiliate earns and is told.
        if who.role is Role.AFFILIATE:
            related["postbacks"] = []
        elif who.role is Role.ADVERTISER:
            related["commissions"] = related["deliveries"] = []
        return s.ConversionDetailOut(
            **conversion_out(row, who).model_dump(),
            postbacks=[s.PostbackLogOut.model_validate(p) for p in related["postbacks"]],
            commissions=[s.CommissionOut.model_validate(c) for c in related["commissions"]],
            deliveries=[delivery_out(d) for d in related["deliveries"]],
        )

    # --- the postback tester (ADR 13) --------------------------------------------------------
    tester = runtime.tester

    @api.exception_handler(Problem)
    async def tester_problem(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404 if exc.not_found else 409)

    async def own_test_click(click_id: str, who: Principal) -> None:
        """An advertiser tests their own offers' clicks: another's reads as no test click."""
        offer = runtime.catalog.current.offers.get(await tester.offer_of(click_id))
        if offer is None or not who.owns(advertiser_id=offer.advertiser_id):
            raise no_test_click(click_id)

    @api.post("/tester/clicks", status_code=201, tags=["postback tester"])
    async def create_test_click(body: s.TestClickIn, who: Who) -> s.TestClickOut:
        """A test click through the real click path, marked as a test: counted in no report,
        statement or commission. Give the advertiser `postback_url` (or an example per event)."""
        offer = runtime.catalog.current.offers.get(body.offer_id)
        if offer is None or not who.owns(advertiser_id=offer.advertiser_id):
            raise Problem(f"offers {body.offer_id} does not exist", not_found=True)
        made = await tester.click(body.offer_id, body.affiliate_id, sees_affiliates=who.is_manager)
        return test_click_out(made, who)

    @api.post("/tester/postbacks", tags=["postback tester"])
    async def fire_test_postback(body: s.TestPostbackIn, who: Who) -> s.FiredOut:
        """A postback for a test click through the real intake, as the advertiser would send it
        (their token, signed if they must sign), and the trace of what became of it."""
        await own_test_click(body.click_id, who)
        values = body.model_dump(exclude={"click_id"})
        fired = await tester.fire(body.click_id, TestPostback(**values))
        return s.FiredOut(
            sent=fired.url,
            parameters=[s.ParameterOut(**asdict(p)) for p in fired.parameters],
            outcome=s.OutcomeOut(**fired.outcome.body()),
            refused=fired.refused,
            trace=trace_out(fired.trace, who),
        )

    @api.get("/tester/clicks/{click_id}/trace", tags=["postback tester"])
    async def get_test_trace(click_id: TestClickId, who: Who) -> s.TraceOut:
        """Everything that happened to a test click so far: its postbacks, parameter by
        parameter, its conversions, and what they would earn and announce."""
        await own_test_click(click_id, who)
        return trace_out(await tester.trace(click_id), who)

    @api.get("/tester/clicks/{click_id}/wait", tags=["postback tester"])
    async def wait_for_test_postback(
        click_id: TestClickId, q: Annotated[s.WaitQuery, Query()], who: Who
    ) -> s.TraceOut:
        """Listen mode: answers as soon as the postback log holds more than `seen` postbacks for
        the test click (from the advertiser's server, through any clickback process), else after
        `timeout` seconds with `arrived` false."""
        await own_test_click(click_id, who)
        trace = await tester.wait(click_id, q.timeout, q.seen)
        if trace is None:
            return trace_out(await tester.trace(click_id), who).model_copy(update={"arrived": False})
        return trace_out(trace, who)

    # --- reports -----------------------------------------------------------------------------
    # Each report endpoint's own parameters: any other name but a dimension's (a filter) is
    # refused by reporting.read_query, a misspelling named rather than answered unfiltered.
    placement_params = frozenset(
        {"from", "to", "currency", "by", "zone", "min_spend", "max_roi", "target_roi", "limit", "earnings"}
    )
    report_params = frozenset(
        {
            "from",
            "to",
            "group_by",
            "zone",
            "basis",
            "sort",
            "limit",
            "offset",
            "compare",
            "currency",
            "bots",
            "format",
        }
    )

    @api.get(
        "/reports/stop-or-scale",
        tags=["reports"],
        response_model=s.StopOrScaleOut,
        response_model_by_alias=True,
    )
    async def stop_or_scale(
        request: Request,
        who: Who,
        first: Annotated[date, Query(alias="from", description="The first day, in `zone`.")],
        last: Annotated[date, Query(alias="to", description="The last day, in `zone` (inclusive).")],
        currency: Annotated[s.Currency, Query(description="what every amount is converted into")],
        by: Annotated[
            str,
            Query(max_length=32, description="the placement's dimension: sub1…sub5, country, landing_page…"),
        ] = "sub1",
        zone: Zone = None,
        min_spend: Annotated[
            Decimal, Query(ge=0, le=10**9, description="stop: spent at least this")
        ] = Decimal(50),
        max_roi: Annotated[Decimal, Query(ge=-1, le=1000, description="stop: an ROI below this")] = Decimal(
            0
        ),
        target_roi: Annotated[
            Decimal, Query(ge=-1, le=1000, description="scale: an ROI of at least this")
        ] = (Decimal("0.3")),
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        earnings: Annotated[
            Literal["commission", "revenue"],
            Query(
                description="what a placement earns: the affiliate's commission, or the advertiser's revenue"
            ),
        ] = "commission",
    ) -> Any:
        """Placements to stop (spent enough, losing money) and to scale (a good return, earning
        more than their share of the spend), in one currency; filters as for /reports
        (docs/reports.md, "Stop or scale"). An affiliate's placements are their own, judged by
        their commission."""
        zone = zone or who.zone
        catalog = runtime.catalog.current
        params = request.query_params.multi_items()
        if who.role is Role.AFFILIATE:
            if earnings == "revenue":
                invalid(("query", "earnings"), "judge your placements by your commission")
            params = affiliates_report(params, "", who)
        if by in TIME_DIMENSIONS:
            invalid(("query", "by"), "a placement is not a time: sub1…sub5, country, landing_page, …")

        async def rows(sort: str) -> tuple[list[tuple[dict[str, str | int], dict[str, object]]], bool]:
            q = reporting.read_query(
                params,
                catalog,
                first=first,
                last=last,
                zone=zone,
                basis=Basis.CONVERSION,
                group_by=by,
                sort=sort,
                limit=MAX_LIMIT,
                offset=0,
                include_bots=False,
                currency=currency,
                known=placement_params,
            )
            found = await reports.report(db, q, catalog)
            return [(key, f.metrics()) for key, f in found.rows], found.total_rows > len(found.rows)

        try:
            losers, more = await rows("traffic_profit")
            # More placements than a page holds: the best ones are read from the other end.
            winners = (await rows("-traffic_profit"))[0] if more else losers
        except ReportError as exc:
            invalid(("query", exc.field), str(exc))
        verdicts = functools.partial(
            placements.stop_or_scale,
            currency=currency,
            min_spend=min_spend,
            max_roi=max_roi,
            target_roi=target_roi,
            limit=limit,
            earned=earnings,
        )
        found = verdicts(losers)
        stop, scale = found.stop, (verdicts(winners) if more else found).scale
        return s.StopOrScaleOut.model_validate(
            {
                "first": first,
                "last": last,
                "zone": zone,
                "by": by,
                "currency": currency,
                "earnings": earnings,
                "stop": [asdict(p) for p in stop],
                "scale": [asdict(p) for p in scale],
            }
        )

    @api.get("/reports", tags=["reports"], response_model=s.ReportOut)
    async def report(
        request: Request,
        who: Who,
        first: Annotated[date, Query(alias="from", description="The first day, in `zone`.")],
        last: Annotated[date, Query(alias="to", description="The last day, in `zone` (inclusive).")],
        group_by: Annotated[
            str, Query(max_length=300, description=f"comma-separated: {', '.join(DIMENSIONS)}")
        ] = "day",
        zone: Zone = None,
        basis: Annotated[Basis, Query(description="date basis: conversion (activity) or click (cohort)")] = (
            Basis.CONVERSION
        ),
        sort: Annotated[
            str, Query(max_length=300, description="metrics or dimensions, comma-separated; -name descends")
        ] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        compare: Annotated[
            Literal["previous"] | None, Query(description="add the previous period's totals")
        ] = None,
        currency: Annotated[
            s.Currency | None, Query(description="convert money at the recorded rates")
        ] = None,
        bots: Annotated[
            Literal["exclude", "include"], Query(description="count bot clicks in clicks")
        ] = "exclude",
        format: Literal["json", "csv"] = "json",
    ) -> Any:
        """Figures by any dimensions, filtered by any (each dimension's name as a parameter,
        repeatable: `affiliate=3&affiliate=4&country=DE&sub1=spring`; not a time: the period is
        `from` and `to`; any other parameter is refused, naming it). Answered from the report
        rollups where they hold what is asked, else from the raw tables (`source`). An affiliate's
        report is of their own traffic, without the network's revenue and profit. docs/reports.md"""
        catalog = runtime.catalog.current
        params = request.query_params.multi_items()
        if who.role is Role.AFFILIATE:
            params = affiliates_report(params, sort, who)
        try:
            q = reporting.read_query(
                params,
                catalog,
                first=first,
                last=last,
                zone=zone or who.zone,
                basis=basis,
                group_by=group_by,
                sort=sort,
                limit=limit,
                offset=offset,
                include_bots=bots == "include",
                currency=currency,
                known=report_params,
            )
            if format == "csv":
                shown, rows = await reports.stream(db, q, catalog)
                name = f"report-{q.first.isoformat()}-{q.last.isoformat()}.csv"
                return StreamingResponse(
                    reporting.csv_stream(q, shown, rows, frozenset() if who.is_manager else NETWORK_METRICS),
                    media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}"'},
                )
            found = await reports.report(db, q, catalog, compare=compare == "previous")
        except ReportError as exc:
            invalid(("query", exc.field), str(exc))
        previous = None
        if found.previous is not None:
            before = q.previous()
            previous = {"from": before.first, "to": before.last, "totals": found.previous.metrics()}
        out = s.ReportOut.model_validate(
            {
                "first": q.first,
                "last": q.last,
                "zone": q.zone,
                "basis": q.basis.value,
                "basis_note": BASIS_NOTES[q.basis],
                "group_by": list(q.group_by),
                "currency": q.currency,
                "currencies": list(found.currencies),
                "source": found.source.value,
                "total_rows": found.total_rows,
                "limit": q.limit,
                "offset": q.offset,
                "rows": [{"key": key, **f.metrics()} for key, f in found.rows],
                "totals": found.totals.metrics(),
                "previous": previous,
            }
        )
        return out if who.is_manager else without_network_figures(out)

    @api.get("/reports/refused-clicks", tags=["reports"])
    async def refused_clicks(
        first: Annotated[date, Query(alias="from")], last: Annotated[date, Query(alias="to")]
    ) -> list[s.RefusedClicksOut]:
        """Clicks on unknown or paused links: a broken link shows up here, not only to the user."""
        check_range(first, last)
        return [s.RefusedClicksOut(**r) for r in await reports.refused_clicks(db, first, last)]

    # --- active players (web/activity.py) ------------------------------------------------------

    def activity_query(
        first: str, last: str, zone: str, advertiser: Owners, offer: Owners, affiliate: Owners
    ) -> ActivityQuery:
        catalog = runtime.catalog.current
        try:
            return web_activity.read_query(
                catalog, first, last, zone, advertiser or (), offer or (), affiliate or ()
            )
        except ReportError as exc:
            invalid(("query", exc.field), str(exc))

    def csv_reply(text: str, name: str) -> PlainTextResponse:
        return PlainTextResponse(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @api.get("/reports/active-players", tags=["reports"], response_model=s.ActivePlayersOut)
    async def active_players_report(
        who: Who,
        first: Annotated[
            str, Query(alias="from", pattern=s.PERIOD, description="The first month, in `zone`.")
        ],
        last: Annotated[str, Query(alias="to", pattern=s.PERIOD, description="The last month (inclusive).")],
        zone: Zone = None,
        advertiser: Owners = None,
        offer: Owners = None,
        affiliate: Owners = None,
        format: Literal["json", "csv"] = "json",
    ) -> Any:
        """Players with qualifying activity (the offer's vertical says which events) by month,
        offer and affiliate, beside registrations and FTDs; the totals count each player once.
        Filters repeat: `affiliate=3&affiliate=4`. docs/reports.md, "Active players"."""
        q = activity_query(first, last, zone or who.zone, advertiser, offer, affiliate)
        found = await activity.active_players(db, q)
        if format == "csv":
            return csv_reply(web_activity.active_csv(q, found), f"active-players-{first}-{last}.csv")
        return s.ActivePlayersOut.model_validate(web_activity.active_json(q, found))

    @api.get("/reports/active-players/cohorts", tags=["reports"], response_model=s.ActiveCohortsOut)
    async def active_player_cohorts(
        who: Who,
        first: Annotated[
            str, Query(alias="from", pattern=s.PERIOD, description="The first registration month.")
        ],
        last: Annotated[str, Query(alias="to", pattern=s.PERIOD, description="The last one (inclusive).")],
        zone: Zone = None,
        advertiser: Owners = None,
        offer: Owners = None,
        affiliate: Owners = None,
        format: Literal["json", "csv"] = "json",
    ) -> Any:
        """Each month's registered players by offer and affiliate, and how many of them were active
        that month and 1, 2 and 3 months later (also past `to`). docs/reports.md, "Active players"."""
        q = activity_query(first, last, zone or who.zone, advertiser, offer, affiliate)
        rows = await activity.cohorts(db, q)
        if format == "csv":
            return csv_reply(
                web_activity.cohorts_csv(q, rows, utcnow()), f"active-player-cohorts-{first}-{last}.csv"
            )
        return s.ActiveCohortsOut.model_validate(web_activity.cohorts_json(q, rows, utcnow()))

    # --- deals, names, exchange rates -----------------------------------------------------------
    @api.get("/presets", tags=["deals"])
    async def presets() -> list[s.PresetOut]:
        """Each vertical's usual events and typical deal: the defaults of an offer created with it."""
        return [
            s.PresetOut(
                vertical=v.value,
                events=list(p.events),
                activity=sorted(p.activity),
                kind=p.kind.value,
                cpa=s.CpaTerms(**asdict(p.cpa)),
                revshare=s.RevShareTerms(**asdict(p.revshare)),
            )
            for v, p in PRESETS.items()
        ]

    async def put_deal(offer_id: int, affiliate_id: int, body: s.DealIn, who: Principal) -> s.DealOut:
        return deal_out(await changes.put_deal(runtime, offer_id, affiliate_id, body, who))

    @api.put("/offers/{item_id}/deal", tags=["deals"])
    async def put_offer_deal(item_id: s.Id, body: s.DealIn, who: Who) -> s.DealOut:
        """The offer's default deal, for every affiliate without one of their own."""
        return await put_deal(item_id, EVERY_AFFILIATE, body, who)

    @api.put("/offers/{item_id}/deals/{affiliate_id}", tags=["deals"])
    async def put_affiliate_deal(item_id: s.Id, affiliate_id: s.Id, body: s.DealIn, who: Who) -> s.DealOut:
        """One affiliate's own deal on the offer, overriding the default."""
        return await put_deal(item_id, affiliate_id, body, who)

    # --- caps (ADR 17) ----------------------------------------------------------------------------
    async def put_cap(offer_id: int, affiliate_id: int, body: s.CapIn, who: Principal) -> s.CapOut:
        return (await caps_out([await changes.put_cap(runtime, offer_id, affiliate_id, body, who)]))[0]

    async def caps_out(rows: list[dict[str, Any]]) -> list[s.CapOut]:
        return await changes.caps_out(db, rows)

    @api.put("/offers/{item_id}/cap", tags=["caps"])
    async def put_offer_cap(item_id: s.Id, body: s.CapIn, who: Who) -> s.CapOut:
        """The offer's cap, every affiliate together: past it a CPA qualification is recorded,
        marked over_cap, and not paid; the affiliate's outbound postback says so ({cap_status})."""
        return await put_cap(item_id, EVERY_AFFILIATE, body, who)

    @api.put("/offers/{item_id}/caps/{affiliate_id}", tags=["caps"])
    async def put_affiliate_cap(item_id: s.Id, affiliate_id: s.Id, body: s.CapIn, who: Who) -> s.CapOut:
        """One affiliate's own cap on the offer (the offer's holds too)."""
        return await put_cap(item_id, affiliate_id, body, who)

    @api.get("/offers/{item_id}/caps", tags=["caps"])
    async def list_offer_caps(item_id: s.Id, q: Annotated[s.Paged, Query()]) -> s.Page[s.CapOut]:
        """The offer's caps (its own first), with what each has counted today and in total."""
        await admin.get(db, "offers", item_id)
        page = await caps_store.list_caps(db, item_id, q.cursor, q.limit)
        return s.Page[s.CapOut](items=await caps_out(page.rows), next_cursor=page.next_cursor)

    @api.get("/offers/{item_id}/deals", tags=["deals"])
    async def list_offer_deals(item_id: s.Id, q: Annotated[s.Paged, Query()]) -> s.Page[s.DealOut]:
        """The offer's default deal first, then affiliates' own, by affiliate id."""
        await admin.get(db, "offers", item_id)
        return page_out(await deals.list_deals(db, item_id, q.cursor, q.limit), deal_out)

    @api.post("/advertisers/{item_id}/token", tags=["advertisers"])
    async def rotate_token(item_id: s.Id, body: s.TokenRotationIn, who: Who) -> s.AdvertiserOut:
        """A new postback token. The current one is still accepted for `overlap_hours`, so the
        advertiser can switch without losing a postback; after that it is refused with
        `token_replaced`."""
        until = utcnow() + timedelta(hours=body.overlap_hours)
        return advertiser_out(await changed(await admin.rotate_token(db, item_id, until, actor_of(who))))

    @api.delete("/advertisers/{item_id}/previous-token", tags=["advertisers"])
    async def revoke_previous_token(item_id: s.Id, who: Who) -> s.AdvertiserOut:
        """End the overlap now: only the current token is accepted."""
        return advertiser_out(await changed(await admin.revoke_previous_token(db, item_id, actor_of(who))))

    @api.get("/advertisers/{item_id}/security", tags=["advertisers"])
    async def get_security(item_id: s.Id) -> s.SecurityOut:
        return security_out(await admin.get(db, "advertisers", item_id))

    @api.put("/advertisers/{item_id}/security", tags=["advertisers"])
    async def put_security(item_id: s.Id, body: s.SecurityIn, who: Who) -> s.SecurityOut:
        """Where the advertiser's postbacks may come from, and whether they must be signed
        (docs/postbacks.md, "Postback security"). Refusals get their own reason codes."""
        try:
            parse_networks(body.allowed_ips)
        except ValueError as exc:
            invalid(
                ("body", "allowed_ips"),
                f"{exc}; write an address (203.0.113.7) or a network (203.0.113.0/24)",
            )
        row = await admin.set_security(
            db, item_id, body.allowed_ips, body.signing, body.new_signing_secret, actor_of(who)
        )
        return security_out(await changed(row))

    @api.put("/advertisers/{item_id}/names", tags=["advertisers"])
    async def put_names(item_id: s.Id, body: s.NamesIn, who: Who) -> s.NamesIn:
        """The advertiser's own event names and status words, replacing the whole mapping."""
        await admin.get(db, "advertisers", item_id)
        catalog = runtime.catalog.current
        known = STANDARD_EVENTS | catalog.custom_events_of(item_id)
        wrong = sorted(v for v in body.events.values() if v not in known)
        if wrong:
            invalid(
                ("body", "events"), f"{', '.join(wrong)}: not an event; use one of {', '.join(sorted(known))}"
            )
        statuses = {k: Status(v) for k, v in body.statuses.items()}
        await deals.put_names(db, item_id, body.events, statuses, actor_of(who))
        await runtime.catalog.reload()
        return body

    @api.get("/advertisers/{item_id}/names", tags=["advertisers"])
    async def get_names(item_id: s.Id) -> s.NamesIn:
        await admin.get(db, "advertisers", item_id)
        names = runtime.catalog.current.names_of(item_id)
        return s.NamesIn(events=dict(names.events), statuses={k: v.value for k, v in names.statuses.items()})

    @api.post("/fx-rates", status_code=201, tags=["exchange rates"])
    async def put_fx_rate(body: s.FxRateIn, who: Who) -> s.FxRateOut:
        """Recorded in the audit log (the rate before and after)."""
        if body.base == body.quote:
            invalid(("body", "quote"), "base and quote must differ")
        put = fx.put_rate(db, body.base, body.quote, body.day, body.rate, utcnow(), actor_of(who))
        return s.FxRateOut(**await put)

    @api.get("/fx-rates", tags=["exchange rates"])
    async def list_fx_rates(q: Annotated[s.FxRatesQuery, Query()]) -> s.Page[s.FxRateOut]:
        """By base and quote currency, each pair's newest day first."""
        page = await fx.list_rates(db, q.base, q.quote, q.span(), q.cursor, q.limit)
        return page_out(page, s.FxRateOut.model_validate)

    # --- commissions ---------------------------------------------------------------------------
    @api.get("/commissions", tags=["commissions"])
    async def list_commissions(
        q: Annotated[s.CommissionsQuery, Query()], who: Who
    ) -> s.Page[s.CommissionOut]:
        """The ledger, newest first: every entry names the conversion that produced it. `from` and
        `to` select by created_at."""
        f = ledger.EntryFilter(**scoped(who, q.values()), span=q.span())
        return page_out(await ledger.entries(db, f, q.cursor, q.limit), s.CommissionOut.model_validate)

    @api.post("/commissions/settle", tags=["commissions"])
    async def settle_commissions() -> dict[str, int]:
        """Recompute the RevShare months a migration corrected (`recomputed`: how many), then
        approve CPA entries whose hold has passed and RevShare of ended months (also done by
        every server process once a minute)."""
        now = utcnow()
        recomputed = await runtime.postbacks.recompute_due(now)
        return {"approved": await ledger.settle(db, now), "recomputed": recomputed}

    @api.get("/statements/{affiliate_id}/{period}", tags=["commissions"], response_model=s.StatementOut)
    async def affiliate_statement(
        affiliate_id: s.Id,
        period: Annotated[str, Path(pattern=s.PERIOD)],
        who: Who,
        format: Literal["json", "csv"] = "json",
    ) -> Any:
        if not who.owns(affiliate_id=affiliate_id):
            raise admin.NotFound(f"affiliates {affiliate_id} does not exist")
        await admin.get(db, "affiliates", affiliate_id)
        lines = await statements.statement(
            db, affiliate_id, period, runtime.catalog.current.deals_of(affiliate_id)
        )
        if format == "csv":
            filename = f"statement-{affiliate_id}-{period}.csv"
            return Response(
                statement_csv(lines),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{filename}"'},
            )
        out = [s.StatementLineOut(**asdict(line), total=line.total) for line in lines]
        return s.StatementOut(affiliate_id=affiliate_id, period=period, lines=out, totals=dict(totals(lines)))

    @api.get("/players", tags=["players"])
    async def list_players(q: Annotated[s.PlayersQuery, Query()], who: Who) -> s.Page[s.PlayerOut]:
        """Player value: deposits, NGR and CPA commission per player, in the deal's currency and, in
        `by_currency`, in each currency they were priced or booked in (never added across
        currencies); oldest player first. `from` and `to` select by first_seen_at."""
        f = statements.PlayerFilter(**scoped(who, q.values()), span=q.span())
        return page_out(await statements.player_values(db, f, q.cursor, q.limit), s.PlayerOut.model_validate)

    @api.get("/players/cohorts", tags=["players"])
    async def player_cohorts(q: Annotated[s.PlayerFilters, Query()], who: Who) -> list[s.CohortOut]:
        """Player value by registration month (else first postback's) and currency, of the players
        the filters of /players select: each amount in the currency it was priced or booked in,
        players and FTDs (first deposits still pending or approved) on their deal's currency."""
        f = statements.PlayerFilter(**scoped(who, q.values()), span=q.span())
        rows = await statements.cohorts(db, f)
        return [s.CohortOut(**r) for r in rows]

    # --- outbound postbacks ------------------------------------------------------------------
    def template_out(row: dict[str, Any]) -> s.OutboundTemplateOut:
        return s.OutboundTemplateOut(**decoded(row), signed=bool(row["secret"]))

    async def template_saved(save: Awaitable[dict[str, Any]]) -> s.OutboundTemplateOut:
        """A template created or changed by the service, or a 422 naming what to fix."""
        try:
            row = await save
        except outbound_service.TemplateRefused as refused:
            invalid(("body", refused.field), refused.message)
        return template_out(await changed(row))

    @api.post("/outbound/templates", status_code=201, tags=["outbound postbacks"])
    async def create_template(body: s.OutboundTemplateIn, who: Who) -> s.OutboundTemplateOut:
        """An affiliate's outbound postback: sent when a conversion of theirs (of the offer, event
        and statuses named) is recorded or changes status."""
        if not who.owns(affiliate_id=body.affiliate_id):
            raise admin.NotFound(f"affiliates {body.affiliate_id} does not exist")
        allow = runtime.settings.outbound_allowlist
        given = body.model_dump()
        return await template_saved(
            outbound_service.create_template(
                db, await runtime.catalog.fresh(), allow, given, utcnow(), actor_of(who)
            )
        )

    @api.get("/outbound/templates", tags=["outbound postbacks"])
    async def list_templates(
        q: Annotated[s.OutboundTemplatesQuery, Query()], who: Who
    ) -> s.Page[s.OutboundTemplateOut]:
        """Oldest first."""
        page = await outbound.list_templates(db, scoped(who, q.values()), q.cursor, q.limit)
        return page_out(page, template_out)

    @api.get("/outbound/templates/{item_id}", tags=["outbound postbacks"])
    async def get_template(item_id: s.Id, who: Who) -> s.OutboundTemplateOut:
        row = await outbound.get_template(db, item_id)
        return template_out(owned(who, row, f"outbound template {item_id}", tenant="affiliate_id"))

    async def own_template(item_id: int, who: Principal) -> None:
        # A template's affiliate never changes: checked once, it stays theirs for the change.
        if not who.is_manager:
            owned(
                who,
                await outbound.get_template(db, item_id),
                f"outbound template {item_id}",
                tenant="affiliate_id",
            )

    @api.patch("/outbound/templates/{item_id}", tags=["outbound postbacks"])
    async def change_template(
        item_id: s.Id, body: s.OutboundTemplateChange, who: Who
    ) -> s.OutboundTemplateOut:
        """The fields given replace the stored ones (offer_id null: every offer; secret: a new key)."""
        await own_template(item_id, who)
        given = body.model_dump(exclude_unset=True)
        for name, value in given.items():
            if value is None and name not in ("offer_id", "body_format", "secret"):
                invalid(("body", name), "give a value, or leave the field out to keep it")
        allow = runtime.settings.outbound_allowlist
        return await template_saved(
            outbound_service.change_template(
                db, await runtime.catalog.fresh(), allow, item_id, given, utcnow(), actor_of(who)
            )
        )

    @api.put("/outbound/templates/{item_id}/status", tags=["outbound postbacks"])
    async def set_template_status(item_id: s.Id, body: s.StatusIn, who: Who) -> s.OutboundTemplateOut:
        """Pause (nothing is queued for it) or activate."""
        await own_template(item_id, who)
        row = await outbound.change_template(db, item_id, {"status": body.status}, utcnow(), actor_of(who))
        return template_out(await changed(row))

    @api.delete("/outbound/templates/{item_id}", status_code=204, tags=["outbound postbacks"])
    async def delete_template(item_id: s.Id, who: Who) -> Response:
        """Deliveries already queued for it are still sent as they were made, signed with its
        secret; its id is never given to another template."""
        await own_template(item_id, who)
        await outbound.delete_template(db, item_id, actor_of(who))
        await runtime.catalog.reload()
        return Response(status_code=204)

    def delivery_out(row: dict[str, Any]) -> s.DeliveryOut:
        return s.DeliveryOut(**(row | {"url": mask_url(row["url"])}))

    @api.get("/outbound/deliveries", tags=["outbound postbacks"])
    async def list_deliveries(q: Annotated[s.DeliveriesQuery, Query()], who: Who) -> s.Page[s.DeliveryOut]:
        """Newest first."""
        page = await outbound.list_deliveries(db, scoped(who, q.values()), q.cursor, q.limit)
        return page_out(page, delivery_out)

    @api.get("/outbound/deliveries/{item_id}", tags=["outbound postbacks"])
    async def get_delivery(item_id: s.Id, who: Who) -> s.DeliveryOut:
        """With every attempt: time, URL, HTTP status, latency, the reply's first bytes, the error."""
        row = await outbound.get_delivery(db, item_id)
        return delivery_out(owned(who, row, f"delivery {item_id}", tenant="affiliate_id"))

    @api.post("/outbound/deliveries/{item_id}/replay", tags=["outbound postbacks"])
    async def replay_delivery(item_id: s.Id, who: Who) -> s.ReplayOut:
        """Send it again from its first attempt, with the same delivery ID (any state: a dead
        letter, a failure, or one delivered to a tracker that lost it; not a held one, queued
        already), in its turn after what its conversion has unsent to that destination. An
        affiliate their own; recorded in the audit log."""
        owned(who, await outbound.get_delivery(db, item_id), f"delivery {item_id}", tenant="affiliate_id")
        count = await outbound.replay(db, [item_id], None, utcnow(), who.affiliate_id, actor_of(who))
        wake()
        return s.ReplayOut(replayed=count)

    @api.post("/outbound/replay", tags=["outbound postbacks"])
    async def replay_deliveries(body: s.ReplayIn, who: Who) -> s.ReplayOut:
        """Many at once: every dead letter (`{"state": "dead"}`), or the deliveries named. An
        affiliate's of their own only (another's named are left alone, as ones that do not exist)."""
        count = await outbound.replay(db, body.ids, body.state, utcnow(), who.affiliate_id, actor_of(who))
        wake()
        return s.ReplayOut(replayed=count)

    @api.get("/outbound/destinations", tags=["outbound postbacks"])
    async def list_destinations(paused: bool = False) -> list[s.DestinationOut]:
        """Destinations that have failed: failures in a row, paused since when and why, how many
        deliveries wait for each, and how many are held behind those."""
        return [s.DestinationOut(**r) for r in await outbound.destinations(db, paused)]

    @api.post("/outbound/destinations/{destination}/resume", tags=["outbound postbacks"])
    async def resume_destination(
        destination: Annotated[str, Path(max_length=300, pattern=s.PRINTABLE)], who: Who
    ) -> s.ResumeOut:
        """Send to it again: its waiting deliveries are due at once (held ones each after the
        one before it). In the audit log."""
        due = await outbound.resume(db, destination, utcnow(), actor_of(who))
        wake()
        return s.ResumeOut(destination=destination, due=due)

    @api.post("/outbound/destinations/{destination}/pause", tags=["outbound postbacks"])
    async def pause_destination(
        destination: Annotated[str, Path(max_length=300, pattern=s.PRINTABLE)], body: s.PauseIn, who: Who
    ) -> s.ResumeOut:
        """Hold its deliveries (they wait, none is dropped) until resumed. In the audit log."""
        await outbound.pause(db, destination, body.reason, utcnow(), actor_of(who))
        return s.ResumeOut(destination=destination, due=0)

    def wake() -> None:
        if runtime.dispatcher is not None:
            runtime.dispatcher.wake()

    @api.post("/conversions/{conversion_id}/status", tags=["conversions"])
    async def change_conversion_status(
        conversion_id: s.Id, body: s.ConversionStatusIn, who: Who
    ) -> s.ConversionOut:
        """Approve, reject or cancel by hand, with a reason kept in its history and the audit
        log: the ledger and outbound postbacks follow as for a postback's status change."""
        done = await runtime.postbacks.change_status(
            conversion_id, Status(body.status), body.reason, utcnow(), actor_of(who)
        )
        if not done.found:
            raise HTTPException(404, f"conversion {conversion_id} does not exist")
        if done.problem:
            raise HTTPException(409, done.problem)
        row = await postback_log.get_conversion(db, conversion_id)
        return s.ConversionOut(**row)  # type: ignore[arg-type]

    # --- users and their keys (ADR 16; the same use cases as `clickback user …`) -----------------
    accounts = runtime.accounts

    async def user_out(user_id: int) -> s.UserOut:
        await accounts.user(user_id)  # NotFound: a 404
        return next(s.UserOut(**u) for u in await accounts.users() if u["id"] == user_id)

    async def refused_as_422(work: Awaitable[T]) -> T:
        try:
            return await work
        except AccountError as exc:
            invalid(("body",), str(exc))

    @api.get("/users", tags=["users"])
    async def list_users() -> list[s.UserOut]:
        """Every user, by login."""
        return [s.UserOut(**u) for u in await accounts.users()]

    @api.post("/users", status_code=201, tags=["users"])
    async def create_user(body: s.UserIn, who: Who) -> s.UserCreatedOut:
        """A user who signs in at /login; without a password one is generated and returned once."""
        row, generated = await refused_as_422(
            accounts.add_user(
                body.login,
                Role(body.role),
                affiliate_id=body.affiliate_id,
                advertiser_id=body.advertiser_id,
                password=body.password,
                zone=body.zone,
                by=actor_of(who),
            )
        )
        return s.UserCreatedOut(**(await user_out(row["id"])).model_dump(), password=generated)

    @api.get("/users/{item_id}", tags=["users"])
    async def get_user(item_id: s.Id) -> s.UserOut:
        return await user_out(item_id)

    @api.patch("/users/{item_id}", tags=["users"])
    async def change_user(item_id: s.Id, body: s.UserChange, who: Who) -> s.UserOut:
        """Zone, active or not (deactivating ends their sessions and refuses their keys; the last
        active manager cannot be). Recorded in the audit log."""
        await accounts.user(item_id)
        if body.zone is not None:
            await refused_as_422(accounts.set_zone(item_id, body.zone, actor_of(who)))
        if body.active is not None:
            await refused_as_422(accounts.set_active(item_id, body.active, actor_of(who)))
        return await user_out(item_id)

    @api.post("/users/{item_id}/password", tags=["users"])
    async def reset_password(item_id: s.Id, body: s.PasswordIn, who: Who) -> s.PasswordOut:
        """A new password (generated and returned once unless given); their sessions end."""
        generated = await refused_as_422(accounts.new_password(item_id, body.password, actor_of(who)))
        return s.PasswordOut(password=generated)

    @api.post("/users/{item_id}/keys", status_code=201, tags=["users"])
    async def create_key(item_id: s.Id, who: Who) -> s.KeyOut:
        """A new API key of the user, with the user's access: returned once, only its hash kept."""
        return s.KeyOut(key=await accounts.new_key(item_id, actor_of(who)))

    @api.delete("/users/{item_id}/keys", tags=["users"])
    async def revoke_keys(item_id: s.Id, who: Who) -> s.RevokedOut:
        """Every key of the user stops working now."""
        return s.RevokedOut(revoked=await accounts.revoke_keys(item_id, actor_of(who)))

    # --- the audit log ------------------------------------------------------------------------
    @api.get("/audit", tags=["audit log"])
    async def list_audit(q: Annotated[s.AuditQuery, Query()]) -> s.Page[s.AuditOut]:
        """Every change made through the API, newest first: who, when, to which row, and the
        fields that changed before and after (secrets shown as `(hidden)`)."""
        f = audit_store.AuditFilter(**q.values(), at=q.span())
        page = await audit_store.page(db, f, q.cursor, q.limit)
        return page_out(page, audit_out)

    # --- reference -----------------------------------------------------------------------------
    @api.get("/reasons", tags=["reference"])
    async def reasons() -> list[s.ReasonOut]:
        return [reason_out(r) for r in Reason]

    @api.get("/runtime", tags=["reference"])
    async def runtime_state() -> s.RuntimeOut:
        w = runtime.writer
        return s.RuntimeOut(
            process_id=os.getpid(),
            clicks_pending=w.pending,
            clicks_written=w.written,
            clicks_spilled=w.spilled,
            clicks_held=w.held,
            click_write_capacity=w.write_capacity,
            spool_files=w.spool.files,
            flush_failures=w.failures,
            clicks_quarantined=w.quarantined,
            durable_clicks=w.durable,
            spool_failures=w.spool_failures,
            catalog_version=runtime.catalog.current.version,
            postbacks_recorded=runtime.postbacks.recorded,
            postback_groups=runtime.postbacks.groups,
        )

    # --- reconciliation (ADR 20) --------------------------------------------------------------
    reconcile_api.add_routes(api, runtime)
    return api


def audit_out(row: dict[str, Any]) -> s.AuditOut:
    states = {k: row[k] and json.loads(row[k]) for k in ("before", "after")}
    return s.AuditOut.model_validate(row | states)


def conversion_out(row: dict[str, Any], who: Principal) -> s.ConversionOut:
    """A conversion; an advertiser's without what its affiliate earns (the deal's amount), an
    affiliate's without what the advertiser pays for it (the network's revenue)."""
    if who.role is Role.ADVERTISER:
        row = row | dict.fromkeys(EARNINGS_FIELDS)
        if row["event"] in COMMISSION_EVENTS:
            row |= dict.fromkeys(REVENUE_FIELDS)
    elif who.role is Role.AFFILIATE:
        row = row | dict.fromkeys(REVENUE_FIELDS)
    return s.ConversionOut.model_validate(row)


def affiliates_report(params: list[tuple[str, str]], sort: str, who: Principal) -> list[tuple[str, str]]:
    """An affiliate's report parameters: their own traffic whatever the filters say, sorted by
    nothing they may not see."""
    hidden = {sort_name(key) for key in sort.split(",")} & NETWORK_METRICS
    if hidden:
        invalid(("query", "sort"), f"{', '.join(sorted(hidden))}: not among your report's metrics")
    kept = [(k, v) for k, v in params if REPORT_ALIASES.get(k, k) != "affiliate"]
    return [*kept, ("affiliate", str(who.affiliate_id))]


def without_network_figures(out: s.ReportOut) -> s.ReportOut:
    blank: dict[str, Any] = {key: {} for key in NETWORK_METRICS}
    rows = [row.model_copy(update=blank) for row in out.rows]
    previous = out.previous and out.previous.model_copy(
        update={"totals": out.previous.totals.model_copy(update=blank)}
    )
    return out.model_copy(
        update={"rows": rows, "totals": out.totals.model_copy(update=blank), "previous": previous}
    )


def test_click_out(c: TestClick, who: Principal) -> s.TestClickOut:
    out = s.TestClickOut(**{f.name: getattr(c, f.name) for f in fields(c)})
    # A link's code makes clicks that count for its affiliate: the affiliate's, not an advertiser's.
    return out if who.role is not Role.ADVERTISER else out.model_copy(update={"link_code": ""})


# What an advertiser's trace shows of the commission: nothing (what the affiliate earns is theirs).
HIDDEN_COMMISSION = s.CommissionPreviewOut(
    deal="",
    currency="",
    cpa_amount=None,
    cpa_qualified=False,
    cpa_explanation="not shown to advertisers",
    revshare_percent=None,
    revshare_ngr=Decimal(0),
    revshare_ftds=0,
    revshare_earnings=None,
)


def trace_out(trace: Trace, who: Principal) -> s.TraceOut:
    out = _trace_out(trace, who)
    if who.role is not Role.ADVERTISER:
        return out
    # Without what the affiliate earns, or what their tracker is told.
    hidden: dict[str, Any] = {"deal_amount": None, "deal_currency": None, "outbound": []}
    conversions = [c.model_copy(update=hidden) for c in out.conversions]
    return out.model_copy(
        update={"conversions": conversions, "commission": HIDDEN_COMMISSION, "cpa_outbound": []}
    )


def _trace_out(trace: Trace, who: Principal) -> s.TraceOut:
    def outbound(previews: Sequence[OutboundPreview]) -> list[s.OutboundPreviewOut]:
        return [s.OutboundPreviewOut(**asdict(o)) for o in previews]

    return s.TraceOut(
        click=test_click_out(trace.click, who),
        postbacks=[
            s.LoggedPostbackOut(
                **{f.name: getattr(p, f.name) for f in fields(p) if f.name != "parameters"},
                parameters=[s.ParameterOut(**asdict(x)) for x in p.parameters],
            )
            for p in trace.postbacks
        ],
        conversions=[
            s.TracedConversionOut(**dict(c.row), outbound=outbound(c.outbound)) for c in trace.conversions
        ],
        commission=s.CommissionPreviewOut(**asdict(trace.commission)),
        cpa_outbound=outbound(trace.cpa_outbound),
    )


def serve_docs(api: FastAPI) -> None:
    """/docs: Swagger UI with its files from the installed swagger-ui-bundle package, so the page
    works on a network without internet access, under a policy that lets it load those files, run
    its own start-up script and call this API, and nothing else. No API key needed to read the
    reference."""
    api.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")  # "/api" where the API is mounted
        page = get_swagger_ui_html(
            openapi_url=f"{root}{OPENAPI_PATH}",
            title=f"{api.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
            # Swagger UI's default would send the document's address to swagger.io's validator.
            swagger_ui_parameters={"validatorUrl": None},
        )
        scripts = re.findall(r"<script>(.*?)</script>", bytes(page.body).decode(), re.DOTALL)
        hashes = " ".join(f"'sha256-{b64encode(sha256(s.encode()).digest()).decode()}'" for s in scripts)
        page.headers["content-security-policy"] = (
            f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return page

    api.add_route(DOCS_PATH, docs, include_in_schema=False)


def page_out(page: paging.Page, out: Callable[[dict[str, Any]], T]) -> s.Page[T]:
    return s.Page[T](items=[out(row) for row in page.rows], next_cursor=page.next_cursor)


def deal_out(row: dict[str, Any]) -> s.DealOut:
    deal = deal_from_row(row["kind"], row["currency"], row["terms"])

    def money(amount: Decimal | None) -> Decimal | None:
        """With the deal currency's decimals (20.00 EUR), as every amount is shown (a deal
        stored before amounts were read as postbacks' are may hold 2E+1)."""
        return None if amount is None else Decimal(money_text(amount, deal.currency))

    cpa = revshare = None
    if deal.cpa is not None:
        c = deal.cpa
        amounts = {
            "amount": c.amount,
            "ftd_min": c.ftd_min,
            "deposits_min": c.deposits_min,
            "wager_min": c.wager_min,
        }
        cpa = s.CpaTerms(
            **asdict(c)
            | {name: money(value) for name, value in amounts.items()}
            | {"geo_amounts": {country: money(value) for country, value in c.geo_amounts.items()}}
        )
    if deal.revshare is not None:
        r = deal.revshare
        by_ngr = r.tier_basis is TierBasis.NGR  # else a count of FTDs
        tiers = [
            {"threshold": money(t.threshold) if by_ngr else t.threshold, "percent": t.percent}
            for t in r.tiers
        ]
        revshare = s.RevShareTerms(**asdict(r) | {"tiers": tiers})
    return s.DealOut(
        id=row["id"],
        offer_id=row["offer_id"],
        affiliate_id=row["affiliate_id"] or None,
        kind=deal.kind.value,
        currency=deal.currency,
        cpa=cpa,
        revshare=revshare,
        updated_at=row["updated_at"],
    )


def _encodable(value: Any) -> Any:
    """A validation error's echo of the input as JSON can carry it: invalid UTF-8 and lone
    surrogates escaped, infinite and NaN numbers as text."""
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    if isinstance(value, str):
        return value.encode(errors="backslashreplace").decode()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(v) for v in value]
    return value


def reason_out(r: Reason) -> s.ReasonOut:
    return s.ReasonOut(code=r.code, http_status=r.http_status, message=r.sentence, hint=r.hint)


def _entries(joined: str) -> list[str]:
    return [entry for entry in joined.split(",") if entry]


def invalid(loc: tuple[str, ...], message: str) -> NoReturn:
    """A 422 in FastAPI's own shape, as the OpenAPI document promises for every operation."""
    raise RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


def check_range(first: date, last: date) -> None:
    if last < first or (last - first).days > MAX_REPORT_DAYS:
        invalid(("query", "to"), f"from..to must be in order and at most {MAX_REPORT_DAYS} days")
