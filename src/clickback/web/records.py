"""The dashboard's lists and records: conversions (each with its status history, ledger entries,
postbacks and outbound deliveries), the postback log, the outbound delivery log, an affiliate's
links with the link builder, an advertiser's integration guide. Filters are read by the API's own
query models (web/schemas.py) and scoped by its own helpers (web/access.py), so a page shows a
tenant exactly what their API key would."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, get_args
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ValidationError
from starlette.responses import RedirectResponse, Response

from clickback.core import integration
from clickback.core.accounts import Role
from clickback.core.audit import actor_of
from clickback.core.digits import id_of
from clickback.core.lifecycle import Status
from clickback.core.limits import MAX_CURSOR_LEN
from clickback.core.outbound import mask_url
from clickback.core.spans import Span
from clickback.service.clock import utcnow
from clickback.store import admin, ledger, outbound, paging, postback_log, statements
from clickback.web import schemas as s
from clickback.web.access import scoped
from clickback.web.api import conversion_out
from clickback.web.pages import EXPIRED, NOTHING, Viewer, csrf_form, render, shown_name

# Rows a list page shows; "next" pages on by the cursor, as the API does.
PAGE_ROWS = 50
# Sub ID placeholders the link builder offers: the macros most traffic sources fill in.
SUB_IDS = ("sub1", "sub2", "sub3", "sub4", "sub5", "source")
Q = TypeVar("Q", bound=BaseModel)


def read_filters(v: Viewer, model: type[Q]) -> tuple[Q, list[str], dict[str, str]]:
    """The list's filters by the API's query model; a value it refuses is named and dropped."""
    # The page's size is the page's own: a `limit` asked for is not taken.
    given = {k: val for k, val in v.request.query_params.items() if val != "" and k != "limit"}
    problems: list[str] = []
    for _ in range(len(given) + 1):
        try:
            return model.model_validate(given | {"limit": PAGE_ROWS}), problems, given
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else ""
                problems.append(f"{name}: {error['msg']}")
                if name not in given:
                    return model.model_validate({"limit": PAGE_ROWS}), problems, {}
                given.pop(name)
    return model.model_validate({"limit": PAGE_ROWS}), problems, {}


BAD_CURSOR = "cursor: not a page of this list; the first page is shown"


async def page_at(
    cursor: str | None, read: Callable[[str | None], Awaitable[paging.Page]]
) -> tuple[paging.Page, bool]:
    """The page a `cursor` from the URL names, or the first one when it names none of this list
    (True: it was refused). Cropped to the cursor's limit before it is read."""
    try:
        return await read(cursor[:MAX_CURSOR_LEN] if cursor else None), False
    except paging.BadCursor:
        return await read(None), True


def next_link(path: str, given: dict[str, str], page: paging.Page) -> str:
    if page.next_cursor is None:
        return ""
    return f"{path}?{urlencode(given | {'cursor': page.next_cursor})}"


# --- conversions --------------------------------------------------------------------------------


async def conversions(v: Viewer) -> Response:
    q, problems, given = read_filters(v, s.ConversionsQuery)
    f = postback_log.ConversionFilter(**scoped(v.who, q.values()), span=q.span())
    found = await postback_log.list_conversions(v.runtime.db, f, q.cursor, q.limit)
    rows = [conversion_out(row, v.who).model_dump() for row in found.rows]
    return render(
        v,
        "conversions.html",
        title="Conversions",
        problems=problems,
        given=given,
        rows=rows,
        offer_name=lambda i: shown_name(v, "offer", i),
        next_page=next_link("/conversions", {k: x for k, x in given.items() if k != "cursor"}, found),
    )


# What a manager may set by hand: what POST /api/conversions/{id}/status takes.
CHANGEABLE: tuple[str, ...] = get_args(s.ConversionStatusIn.model_fields["status"].annotation)


async def conversion(v: Viewer) -> Response:
    """A conversion with its history, ledger entries, postbacks and deliveries; a manager's form
    approves, rejects or cancels it by hand with a reason, as POST /api/conversions/{id}/status
    does (the same use case: history, audit, ledger and outbound postbacks follow)."""
    conversion_id = id_of(v.request.path_params["conversion_id"])
    row = await postback_log.get_conversion(v.runtime.db, conversion_id) if conversion_id else None
    if row is None or not v.who.owns(affiliate_id=row["affiliate_id"], advertiser_id=row["advertiser_id"]):
        shown_id = v.request.path_params["conversion_id"][:20]
        raise admin.NotFound(f"conversion {shown_id} does not exist")
    assert conversion_id is not None  # a row was found under it
    problems: list[str] = []
    posted: dict[str, str] = {}
    status = 200
    if v.request.method == "POST":
        form = await csrf_form(v)
        if form is None:
            problems, status = [EXPIRED], 403
        else:
            refused = await _change_status(v, conversion_id, form)
            if refused is None:
                return RedirectResponse(v.request.url.path, 303)
            status, problem = refused
            problems, posted = [problem], form
        row = await postback_log.get_conversion(v.runtime.db, conversion_id) or row
    who, db = v.who, v.runtime.db
    shown = conversion_out(row, who).model_dump()
    # What each role may see of it: the ledger is the affiliate's (and the manager's), the
    # postbacks the advertiser's, the deliveries to the affiliate's tracker the affiliate's.
    entries: list[dict[str, Any]] = []
    if who.role is not Role.ADVERTISER:
        entries = (await ledger.entries(db, ledger.EntryFilter(conversion_id=conversion_id), None, 100)).rows
    postbacks: list[dict[str, Any]] = []
    if who.role is not Role.AFFILIATE:
        f = postback_log.LogFilter(**scoped(who, {"click_id": row["click_id"]}), received=Span())
        found = await postback_log.list_postbacks(db, f, None, 100)
        postbacks = [s.PostbackLogOut.model_validate(p).model_dump() for p in found.rows]
    deliveries: list[dict[str, Any]] = []
    if who.role is not Role.ADVERTISER:
        filters = scoped(who, {"conversion_id": conversion_id})
        found = await outbound.list_deliveries(db, filters, None, 100)
        deliveries = [_delivery(d) for d in found.rows]
    return render(
        v,
        "conversion.html",
        status,
        title=f"Conversion {conversion_id}",
        problems=problems,
        posted=posted,
        statuses=CHANGEABLE,
        c=shown,
        history=row["history"],
        entries=entries,
        postbacks=postbacks,
        deliveries=deliveries,
        offer=shown_name(v, "offer", row["offer_id"]) if row["offer_id"] else "",
        affiliate=shown_name(v, "affiliate", row["affiliate_id"]) if row["affiliate_id"] else "",
    )


async def _change_status(v: Viewer, conversion_id: int, form: dict[str, str]) -> tuple[int, str] | None:
    """None when done; else the status and reason the API would refuse it with (400: the form,
    409: the change, from the conversion's present status)."""
    try:
        body = s.ConversionStatusIn.model_validate(
            {"status": form.get("status", ""), "reason": form.get("reason", "").strip()}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        return 400, f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    done = await v.runtime.postbacks.change_status(
        conversion_id, Status(body.status), body.reason, utcnow(), actor_of(v.who)
    )
    if not done.found:
        raise admin.NotFound(f"conversion {conversion_id} does not exist")
    return (409, done.problem) if done.problem else None


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    # The URL as the API shows it: secrets in its query masked (core/outbound.mask_url).
    return row | {"url": mask_url(row["url"])}


async def players(v: Viewer) -> Response:
    """Players and what each is worth, as GET /api/players: an affiliate's own."""
    q, problems, given = read_filters(v, s.PlayersQuery)
    f = statements.PlayerFilter(**scoped(v.who, q.values()), span=q.span())
    found = await statements.player_values(v.runtime.db, f, q.cursor, q.limit)
    return render(
        v,
        "players.html",
        title="Players",
        problems=problems,
        given=given,
        rows=[s.PlayerOut.model_validate(row).model_dump(mode="json") for row in found.rows],
        offer_name=lambda i: shown_name(v, "offer", i) if i else NOTHING,
        next_page=next_link("/players", {k: x for k, x in given.items() if k != "cursor"}, found),
    )


# --- postback log, deliveries -------------------------------------------------------------------


async def postbacks(v: Viewer) -> Response:
    q, problems, given = read_filters(v, s.PostbacksQuery)
    f = postback_log.LogFilter(**scoped(v.who, q.values()), received=Span(q.since, q.until))
    found = await postback_log.list_postbacks(v.runtime.db, f, q.cursor, q.limit)
    rows = [s.PostbackLogOut.model_validate(p).model_dump() for p in found.rows]
    return render(
        v,
        "postbacks.html",
        title="Postback log",
        problems=problems,
        given=given,
        rows=rows,
        next_page=next_link("/postbacks", {k: x for k, x in given.items() if k != "cursor"}, found),
    )


async def deliveries(
    v: Viewer, problems: Sequence[str] = (), status: int = 200, notice: str = ""
) -> Response:
    """The log; `problems`, `status` and `notice`: what a replay posted to it came to
    (web/outboundpages.deliveries)."""
    q, refused, given = read_filters(v, s.DeliveriesQuery)
    found = await outbound.list_deliveries(v.runtime.db, scoped(v.who, q.values()), q.cursor, q.limit)
    return render(
        v,
        "deliveries.html",
        status,
        title="Deliveries",
        problems=[*problems, *refused],
        notice=notice,
        given=given,
        rows=[_delivery(d) for d in found.rows],
        next_page=next_link("/deliveries", {k: x for k, x in given.items() if k != "cursor"}, found),
    )


# --- an affiliate's links, an advertiser's guide ------------------------------------------------


def built_url(base: str, subs: dict[str, str]) -> str:
    """A tracking link with the sub IDs asked for; a traffic source's placeholders ({zoneid},
    [clickid]) are kept as they are for the source to fill in."""
    query = "&".join(f"{k}={quote(val, safe='{}[]')}" for k, val in subs.items() if val)
    return f"{base}?{query}" if query else base


async def links(v: Viewer) -> Response:
    public = v.runtime.settings.public_url.rstrip("/")
    rows = (await admin.list_page(v.runtime.db, "links", scoped(v.who, {}), None, 1000)).rows
    subs = {name: v.request.query_params.get(name, "")[:200] for name in SUB_IDS}
    chosen = v.request.query_params.get("link", "")
    picked = next((r for r in rows if r["code"] == chosen), rows[0] if rows else None)
    built = built_url(f"{public}/c/{picked['code']}", subs) if picked else ""
    return render(
        v,
        "links.html",
        title="Links",
        rows=[
            r | {"url": f"{public}/c/{r['code']}", "offer": shown_name(v, "offer", r["offer_id"])}
            for r in rows
        ],
        affiliate_name=lambda i: shown_name(v, "affiliate", i),
        subs=subs,
        picked=picked["code"] if picked else "",
        built=built,
    )


async def guide(v: Viewer) -> Response:
    offer_id = id_of(v.request.path_params["offer_id"])
    offer = v.catalog.offers.get(offer_id or 0)
    if offer is None or not v.who.owns(advertiser_id=offer.advertiser_id):
        raise admin.NotFound(f"offer {v.request.path_params['offer_id'][:20]} does not exist")
    advertiser = v.catalog.advertisers[offer.advertiser_id]
    public = v.runtime.settings.public_url.rstrip("/")
    names = v.catalog.names_of(advertiser.id)
    text = integration.markdown(integration.guide(public, advertiser, offer, names))
    return render(v, "guide.html", title=f"Integration guide: {offer.name}", offer=offer, text=text)
