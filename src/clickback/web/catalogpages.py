"""The manager's catalog pages (issue 14, "Entities"): advertisers, offers (with their deal, caps
and integration guide), affiliates and tracking links, listed, created and edited by forms.

A form is read into the API's own model (web/schemas.py) and goes through the call the API's
route makes (web/changes.py, store/admin.py): a form refuses exactly what the API refuses, and
every change is in the audit log under the signed-in manager's login. A refused value
re-renders the form with what was typed and the problem beside its field; a change is answered
with a redirect to the row's page (a reload posts nothing again), whose history shows it."""

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args

from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from clickback.core.audit import actor_of
from clickback.core.digits import id_of
from clickback.core.macros import compile_template
from clickback.core.model import EVERY_AFFILIATE
from clickback.service.clock import utcnow
from clickback.store import admin, deals, paging
from clickback.store import audit as audit_store
from clickback.store import caps as caps_store
from clickback.web import changes
from clickback.web import schemas as s
from clickback.web.api import deal_out
from clickback.web.login import read_form, same_token
from clickback.web.pages import EXPIRED, Viewer, render, shown_name
from clickback.web.records import next_link, page_at, read_filters

# An offer's form is the longest: a URL template (2048), payouts and events, and a deal's dozen
# fields. Anything longer is no form of ours.
MAX_FORM_BYTES = 16384
MAX_FORM_FIELDS = 24
# Changes of a row shown at once on its page (older ones page on).
HISTORY_ROWS = 20
# The field a refusal of another row names: a link's affiliate or offer, a deal's affiliate.
REFERENCED = {"advertisers": "advertiser_id", "offers": "offer_id", "affiliates": "affiliate_id"}
T = TypeVar("T")


@dataclass
class Form:
    """One form of a page, for its template: what was typed (when it was posted and refused)
    and what is wrong with it, by field ("" : the form as a whole)."""

    id: str
    posted: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, default: object = "") -> str:
        if self.posted:
            return self.posted.get(name, "")
        return "" if default is None else str(default)

    def checked(self, name: str, default: bool) -> bool:
        return name in self.posted if self.posted else default


@dataclass(frozen=True)
class Refused:
    """What is wrong with a posted form, by field ("": the form as a whole)."""

    errors: dict[str, str]


def _field_of(loc: Iterable[object], message: str, fields: Iterable[str], aliases: Mapping[str, str]) -> str:
    """The form field a refusal names: the innermost part of its location that is a field (or
    stands for one: a deal's `cpa` for its amount), else the field its message starts with."""
    names = set(fields)
    for part in reversed([str(p) for p in loc]):
        if part in names:
            return part
        if part in aliases:
            return aliases[part]
    head = message.split(":", 1)[0]
    return head if head in names else ""


async def _attempt(
    make: Callable[[], Awaitable[T]], fields: Iterable[str], aliases: Mapping[str, str] | None = None
) -> T | Refused:
    """The change made, or what is wrong with it by field. A refusal the model, a rule, or the
    store (a row named that does not exist or is archived) makes is the form's to show."""
    aliases = aliases or {}
    fields = tuple(fields)
    try:
        return await make()
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for e in exc.errors():
            message = str(e["msg"]).removeprefix("Value error, ")
            errors.setdefault(_field_of(e["loc"], message, fields, aliases), message)
        return Refused(errors)
    except changes.Invalid as exc:
        return Refused({_field_of(exc.loc, exc.message, fields, aliases): exc.message})
    except admin.NotFound as exc:
        return Refused({REFERENCED.get(str(exc).split(" ", 1)[0], ""): f"{exc}"})
    except admin.Conflict as exc:
        return Refused({"": str(exc)})


async def _posted(v: Viewer) -> dict[str, str] | Response:
    """The posted form, or the page's refusal of it: 403 without the session's CSRF token."""
    form = await read_form(v.request, MAX_FORM_BYTES, MAX_FORM_FIELDS)
    if form is None:
        problem = "That was not a form of this page. Try again."
        return render(v, "problem.html", 400, title="Not saved", problem=problem)
    if not same_token(form.get("csrf", ""), v.session.csrf):
        return render(v, "problem.html", 403, title="Not saved", problem=EXPIRED)
    return form


def _id(v: Viewer, name: str, kind: str) -> int:
    raw = v.request.path_params[name]
    found = id_of(raw)
    if found is None:
        raise admin.NotFound(f"{kind} {raw[:20]} does not exist")
    return found


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.replace("\n", ",").split(",") if w.strip()]


def _payouts(text: str) -> dict[str, str] | str:
    """The payouts field: a line per event, `event = amount`; what is wrong with it otherwise."""
    found: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        event, sep, amount = line.replace(":", "=").partition("=")
        if not sep or not event.strip() or not amount.strip():
            return f"line {line_no}: write one event a line as event = amount (registration = 1.50)"
        found[event.strip()] = amount.strip()
    return found


def _payouts_text(payouts: Mapping[str, object]) -> str:
    return "\n".join(f"{event} = {amount}" for event, amount in payouts.items())


async def _history(
    v: Viewer, read: Callable[[str | None], Awaitable[paging.Page]], path: str
) -> dict[str, Any]:
    """The row's changes, newest first, each field before and after (the audit log's own), a page
    at a time (`history` holds the cursor: a wrong one starts again from the newest)."""
    found, _ = await page_at(v.request.query_params.get("history") or None, read)
    entries = []
    for row in found.rows:
        before = json.loads(row["before"]) if row["before"] else {}
        after = json.loads(row["after"]) if row["after"] else {}
        names = list(dict.fromkeys([*before, *after]))
        if row["before"] is None:  # a creation: the fields it was given, not every empty column
            names = [n for n in names if after.get(n) not in (None, "", [], {})]
        entries.append(row | {"fields": [(n, _shown(before.get(n)), _shown(after.get(n))) for n in names]})
    older = f"{path}?history={found.next_cursor}" if found.next_cursor else ""
    return {"history": entries, "older": older}


def _rows_history(v: Viewer, kind: str, item_id: int) -> Callable[[str | None], Awaitable[paging.Page]]:
    def read(cursor: str | None) -> Awaitable[paging.Page]:
        return audit_store.history(v.runtime.db, {kind: [item_id]}, cursor, HISTORY_ROWS)

    return read


def _shown(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _redirect(path: str) -> Response:
    return RedirectResponse(path, 303)


def _names(v: Viewer, kind: str) -> list[tuple[int, str]]:
    rows = {"advertiser": v.catalog.advertisers, "offer": v.catalog.offers, "affiliate": v.catalog.affiliates}
    return [(i, shown_name(v, kind, i)) for i in sorted(rows[kind])]


def _status_change(v: Viewer, kind: str, item_id: int, form: dict[str, str]) -> Awaitable[dict[str, Any]]:
    async def run() -> dict[str, Any]:
        model = s.StatusIn if kind == "advertisers" else s.CatalogStatusIn
        body = model.model_validate({"status": form.get("status", "")})
        row = await admin.set_status(v.runtime.db, kind, item_id, body.status, actor_of(v.who))
        return await changes.changed(v.runtime, row)

    return run()


# --- advertisers --------------------------------------------------------------------------------


async def advertisers(v: Viewer) -> Response:
    offers = _count(v.catalog.offers.values(), "advertiser_id")
    return await _named_list(v, NAMED["advertisers"], s.CatalogQuery, offers=offers)


async def advertiser(v: Viewer) -> Response:
    item_id = _id(v, "advertiser_id", "advertiser")
    offers = sorted((o for o in v.catalog.offers.values() if o.advertiser_id == item_id), key=lambda o: o.id)
    return await _named_row(v, NAMED["advertisers"], item_id, offers=offers)


@dataclass(frozen=True)
class Named:
    """Advertisers and affiliates alike: a name and a status, made by a name, edited by both."""

    table: str
    kind: str
    title: str
    make: Callable[..., Awaitable[dict[str, Any]]]
    body: type[s.AdvertiserIn] | type[s.AffiliateIn]


NAMED = {
    "advertisers": Named("advertisers", "advertiser", "Advertiser", admin.create_advertiser, s.AdvertiserIn),
    "affiliates": Named("affiliates", "affiliate", "Affiliate", admin.create_affiliate, s.AffiliateIn),
}


async def _named_list(
    v: Viewer, named: Named, query: type[s.CatalogQuery] | type[s.ArchivableQuery], **shown: Any
) -> Response:
    """The list of advertisers or affiliates, and its form to make one."""
    create, status = Form("create"), 200
    if v.request.method == "POST":
        form = await _posted(v)
        if isinstance(form, Response):
            return form

        async def make() -> dict[str, Any]:
            body = named.body.model_validate({"name": form.get("name", "")})
            row = await named.make(v.runtime.db, body.name, utcnow(), actor_of(v.who))
            return await changes.changed(v.runtime, row)

        done = await _attempt(make, ("name",))
        if not isinstance(done, Refused):
            return _redirect(f"/catalog/{named.table}/{done['id']}")
        create, status = Form("create", form, done.errors), 400
    q, problems, given = read_filters(v, query)
    found = await admin.list_page(v.runtime.db, named.table, q.values(), q.cursor, q.limit)
    return render(
        v,
        f"catalog_{named.table}.html",
        status,
        title=f"{named.title}s",
        problems=problems,
        given=given,
        rows=found.rows,
        create=create,
        next_page=_next(f"/catalog/{named.table}", given, found),
        **shown,
    )


async def _named_row(v: Viewer, named: Named, item_id: int, **shown: Any) -> Response:
    """An advertiser's or affiliate's page: its name and status edited, its history."""
    path = f"/catalog/{named.table}/{item_id}"
    row = await admin.get(v.runtime.db, named.table, item_id)
    forms = {"edit": Form("edit"), "status": Form("status")}
    status = 200
    if v.request.method == "POST":
        form = await _posted(v)
        if isinstance(form, Response):
            return form
        which = form.get("form", "")
        if which == "status":
            done = await _attempt(lambda: _status_change(v, named.table, item_id, form), ("status",))
        else:
            which = "edit"
            done = await _attempt(lambda: _rename(v, named.table, item_id, form.get("name", "")), ("name",))
        if not isinstance(done, Refused):
            return _redirect(path)
        forms[which], status = Form(which, form, done.errors), 400
    return render(
        v,
        f"catalog_{named.kind}.html",
        status,
        title=f"{named.title}: {row['name']}",
        row=row,
        forms=forms,
        **shown,
        **await _history(v, _rows_history(v, named.kind, item_id), path),
    )


async def _rename(v: Viewer, kind: str, item_id: int, name: str) -> dict[str, Any]:
    body = s.NameChange.model_validate({"name": name})
    row = await admin.edit(v.runtime.db, kind, item_id, {"name": body.name}, actor_of(v.who))
    return await changes.changed(v.runtime, row)


def _count(rows: Iterable[Any], attribute: str) -> dict[int, int]:
    counted: dict[int, int] = {}
    for r in rows:
        key = getattr(r, attribute)
        counted[key] = counted.get(key, 0) + 1
    return counted


def _next(path: str, given: dict[str, str], found: paging.Page) -> str:
    return next_link(path, {k: x for k, x in given.items() if k != "cursor"}, found)


# --- offers -------------------------------------------------------------------------------------

OFFER_FIELDS = ("advertiser_id", "name", "url_template", "currency", "payouts", "custom_events", "vertical")
DEAL_FIELDS = (
    "affiliate_id",
    "kind",
    "currency",
    "amount",
    "ftd_min",
    "hold_days",
    "window_days",
    "require_registration",
    "require_verification",
    "percent",
    "negative_carryover",
)
# A deal's whole terms refused stand for their one required field in the form.
DEAL_ALIASES = {"cpa": "amount", "revshare": "percent"}
CAP_FIELDS = ("affiliate_id", "daily", "total", "zone")


def _offer_values(form: dict[str, str]) -> dict[str, Any] | str:
    payouts = _payouts(form.get("payouts", ""))
    if isinstance(payouts, str):
        return payouts
    return {
        "name": form.get("name", ""),
        "url_template": form.get("url_template", ""),
        "currency": form.get("currency", ""),
        "payouts": payouts,
        "custom_events": _words(form.get("custom_events", "")),
    }


async def offers(v: Viewer) -> Response:
    create, status = Form("create"), 200
    if v.request.method == "POST":
        form = await _posted(v)
        if isinstance(form, Response):
            return form
        values = _offer_values(form)

        async def make() -> dict[str, Any]:
            assert isinstance(values, dict)
            given = values | {
                "advertiser_id": form.get("advertiser_id", ""),
                "vertical": form.get("vertical", "") or None,
            }
            return await changes.create_offer(v.runtime, s.OfferIn.model_validate(given), v.who)

        done = Refused({"payouts": values}) if isinstance(values, str) else await _attempt(make, OFFER_FIELDS)
        if not isinstance(done, Refused):
            return _redirect(f"/catalog/offers/{done['id']}")
        create, status = Form("create", form, done.errors), 400
    q, problems, given = read_filters(v, s.OffersQuery)
    found = await admin.list_page(v.runtime.db, "offers", q.values(), q.cursor, q.limit)
    return render(
        v,
        "catalog_offers.html",
        status,
        title="Offers",
        problems=problems,
        given=given,
        rows=found.rows,
        create=create,
        advertisers=_names(v, "advertiser"),
        advertiser_name=lambda i: shown_name(v, "advertiser", i),
        verticals=get_args(s.VerticalWord),
        next_page=_next("/catalog/offers", given, found),
    )


async def offer(v: Viewer) -> Response:
    item_id = _id(v, "offer_id", "offer")
    path = f"/catalog/offers/{item_id}"
    db = v.runtime.db
    row = await admin.get(db, "offers", item_id)
    forms: dict[str, Form] = {}
    status = 200
    if v.request.method == "POST":
        form = await _posted(v)
        if isinstance(form, Response):
            return form
        which, done = await _offer_change(v, item_id, form)
        if not isinstance(done, Refused):
            return _redirect(path)
        forms[which], status = Form(which, form, done.errors), 400
    found_deals = [deal_out(d) for d in (await deals.list_deals(db, item_id, None, 100)).rows]
    default = next((d for d in found_deals if d.affiliate_id is None), None)
    found_caps = await changes.caps_out(db, (await caps_store.list_caps(db, item_id, None, 100)).rows)
    return render(
        v,
        "catalog_offer.html",
        status,
        title=f"Offer: {row['name']}",
        row=row,
        payouts=_payouts_text(json.loads(row["payouts"])),
        custom_events=", ".join(json.loads(row["custom_events"])),
        form_of=lambda name: forms.get(name) or Form(name),
        deal=default,
        deals=[d for d in found_deals if d.affiliate_id is not None],
        caps=found_caps,
        affiliates=_names(v, "affiliate"),
        advertiser=shown_name(v, "advertiser", row["advertiser_id"]),
        affiliate_name=lambda i: shown_name(v, "affiliate", i),
        links=sum(1 for k in v.catalog.links.values() if k.offer_id == item_id),
        # A URL without {click_id} is the API's to accept (a pixel offer may do without): a warning.
        no_click_id=not compile_template(row["url_template"]).passes_click_id,
        **await _history(
            v, lambda cursor: audit_store.offer_history(db, item_id, cursor, HISTORY_ROWS), path
        ),
    )


async def _offer_change(
    v: Viewer, item_id: int, form: dict[str, str]
) -> tuple[str, dict[str, Any] | Refused]:
    """Which of the offer page's forms was posted, and what came of it."""
    which = form.get("form", "")
    runtime, who = v.runtime, v.who
    if which == "status":
        return which, await _attempt(lambda: _status_change(v, "offers", item_id, form), ("status",))
    if which == "deal":
        return which, await _attempt(lambda: _put_deal(v, item_id, form), DEAL_FIELDS, DEAL_ALIASES)
    if which.startswith("cap-"):
        # A cap's row form is named by its affiliate; "cap-new" adds one.
        key = which if which == "cap-new" else f"cap-{form.get('affiliate_id', '')[:12]}"
        return key, await _attempt(lambda: _put_cap(v, item_id, form), CAP_FIELDS)
    values = _offer_values(form)
    if isinstance(values, str):
        return "edit", Refused({"payouts": values})

    async def edit() -> dict[str, Any]:
        body = s.OfferChange.model_validate(values)
        return await changes.edit_offer(runtime, item_id, body.model_dump(exclude_unset=True), who)

    return "edit", await _attempt(edit, OFFER_FIELDS)


class _AffiliateField(s.Strict):
    # Checked as the API's path checks an affiliate's id: a number of its range.
    affiliate_id: s.Id


def _affiliate_of(form: dict[str, str]) -> int:
    """The affiliate a deal or cap form names; none (or 0): the offer's own, every affiliate's."""
    raw = form.get("affiliate_id", "")
    if raw in ("", "0"):
        return EVERY_AFFILIATE
    return _AffiliateField.model_validate({"affiliate_id": raw}).affiliate_id


async def _put_deal(v: Viewer, offer_id: int, form: dict[str, str]) -> dict[str, Any]:
    """The deal form names the whole deal but its tiers and GEO amounts (the API's): a part
    left blank that the kind needs is refused by the API's own rule, one it does not need is
    removed."""
    kind = form.get("kind", "")
    given: dict[str, Any] = {"kind": kind or None}
    if form.get("currency", ""):
        given["currency"] = form["currency"]
    amount, percent = form.get("amount", ""), form.get("percent", "")
    if amount or kind in ("cpa", "hybrid"):
        given["cpa"] = {
            "amount": amount or None,
            "ftd_min": form.get("ftd_min", "") or None,
            "hold_days": form.get("hold_days", "") or 0,
            "window_days": form.get("window_days", "") or None,
            "require_registration": "require_registration" in form,
            "require_verification": "require_verification" in form,
        }
    elif kind:
        given["cpa"] = None
    if percent or kind in ("revshare", "hybrid"):
        given["revshare"] = {"percent": percent or None, "negative_carryover": "negative_carryover" in form}
    elif kind:
        given["revshare"] = None
    body = s.DealIn.model_validate(given)
    return await changes.put_deal(v.runtime, offer_id, _affiliate_of(form), body, v.who)


async def _put_cap(v: Viewer, offer_id: int, form: dict[str, str]) -> dict[str, Any]:
    """A cap added or changed; "remove" leaves it without limits (the API keeps the row and its
    counts: a cap given again later goes on counting)."""
    removing = form.get("action", "") == "remove"
    body = s.CapIn.model_validate(
        {
            "daily": None if removing else form.get("daily", "") or None,
            "total": None if removing else form.get("total", "") or None,
            "zone": form.get("zone", "") or "UTC",
        }
    )
    return await changes.put_cap(v.runtime, offer_id, _affiliate_of(form), body, v.who)


# --- affiliates ---------------------------------------------------------------------------------


async def affiliates(v: Viewer) -> Response:
    links = _count(v.catalog.links.values(), "affiliate_id")
    return await _named_list(v, NAMED["affiliates"], s.ArchivableQuery, links=links)


async def affiliate(v: Viewer) -> Response:
    item_id = _id(v, "affiliate_id", "affiliate")
    links = _count(v.catalog.links.values(), "affiliate_id").get(item_id, 0)
    return await _named_row(v, NAMED["affiliates"], item_id, links=links)


# --- links --------------------------------------------------------------------------------------

LINK_FIELDS = ("affiliate_id", "offer_id", "campaign")


async def catalog_links(v: Viewer) -> Response:
    create, status = Form("create"), 200
    if v.request.method == "POST":
        form = await _posted(v)
        if isinstance(form, Response):
            return form

        async def make() -> dict[str, Any]:
            given = {k: form.get(k, "") for k in LINK_FIELDS}
            return await changes.create_link(v.runtime, s.LinkIn.model_validate(given), v.who)

        done = await _attempt(make, LINK_FIELDS)
        if not isinstance(done, Refused):
            return _redirect(f"/catalog/links/{done['id']}")
        create, status = Form("create", form, done.errors), 400
    q, problems, given = read_filters(v, s.LinksQuery)
    found = await admin.list_page(v.runtime.db, "links", q.values(), q.cursor, q.limit)
    public = v.runtime.settings.public_url.rstrip("/")
    return render(
        v,
        "catalog_links.html",
        status,
        title="Tracking links",
        problems=problems,
        given=given,
        rows=[r | {"url": f"{public}/c/{r['code']}"} for r in found.rows],
        create=create,
        affiliates=_names(v, "affiliate"),
        offers=_names(v, "offer"),
        named=lambda kind, i: shown_name(v, kind, i),
        next_page=_next("/catalog/links", given, found),
    )


async def catalog_link(v: Viewer) -> Response:
    item_id = _id(v, "link_id", "link")
    path = f"/catalog/links/{item_id}"
    row = await admin.get(v.runtime.db, "links", item_id)
    forms = {"edit": Form("edit"), "status": Form("status"), "cost": Form("cost")}
    status = 200
    if v.request.method == "POST":
        form = await _posted(v)
        if isinstance(form, Response):
            return form
        which = form.get("form", "")
        if which == "status":
            done = await _attempt(lambda: _status_change(v, "links", item_id, form), ("status",))
        elif which == "cost":
            done = await _attempt(lambda: _set_cost(v, item_id, row, form), COST_FIELDS)
        else:
            which = "edit"

            async def edit() -> dict[str, Any]:
                body = s.LinkChange.model_validate({"campaign": form.get("campaign", "")})
                values = {"campaign": body.campaign}
                row = await admin.edit(v.runtime.db, "links", item_id, values, actor_of(v.who))
                return await changes.changed(v.runtime, row)

            done = await _attempt(edit, ("campaign",))
        if not isinstance(done, Refused):
            return _redirect(path)
        forms[which], status = Form(which, form, done.errors), 400
    public = v.runtime.settings.public_url.rstrip("/")
    return render(
        v,
        "catalog_link.html",
        status,
        title=f"Tracking link {row['code']}",
        row=row,
        url=f"{public}/c/{row['code']}",
        forms=forms,
        offer=shown_name(v, "offer", row["offer_id"]),
        affiliate=shown_name(v, "affiliate", row["affiliate_id"]),
        cost=json.loads(row["cost"]) if row["cost"] else None,
        **await _history(v, _rows_history(v, "link", item_id), path),
    )


COST_FIELDS = ("model", "currency", "amount", "event", "percent", "bots")


async def _set_cost(v: Viewer, link_id: int, row: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The link's cost model, as PUT /api/links/{id}/cost sets it. The form shows one rate; a
    CPC model's rates by country (the API's) are kept while the model stays CPC."""
    model = form.get("model", "") or "none"
    given: dict[str, Any] = {"model": model, "bots": "bots" in form}
    for name in ("currency", "amount", "event", "percent"):
        if form.get(name, ""):
            given[name] = form[name]
    kept = json.loads(row["cost"]) if row["cost"] else None
    if kept and kept["kind"] == "cpc" and model == "cpc" and kept["countries"]:
        given["countries"] = kept["countries"]
    body = s.CostIn.model_validate(given)
    cost = changes.cost_json(body, ())
    changed = await admin.set_link_cost(v.runtime.db, link_id, cost, actor_of(v.who))
    return await changes.changed(v.runtime, changed)
