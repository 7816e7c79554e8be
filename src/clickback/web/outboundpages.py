"""An affiliate's outbound postbacks beyond adding one (web/partners.outbound_settings): a template
edited, paused, resumed or deleted; one delivery with every attempt; deliveries replayed; and a
manager's destinations, paused and resumed. Each form is posted with the session's CSRF token and
makes the API's own call (the same models, service functions and audit records), scoped as the
API scopes it: another affiliate's template or delivery is a 404."""

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from clickback.core.audit import Kind, actor_of
from clickback.core.digits import id_of
from clickback.core.outbound import mask_url
from clickback.service.outbound import TemplateRefused, change_template
from clickback.store import admin, outbound
from clickback.store import audit as audit_store
from clickback.store.catalog import decoded
from clickback.web import records
from clickback.web import schemas as s
from clickback.web.access import owned
from clickback.web.api import audit_out
from clickback.web.pages import EXPIRED, Viewer, csrf_form, own_offers, render, shown_name

# Fields of the edit form a POST template alone takes.
SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")
STATUSES = ("pending", "approved", "rejected", "cancelled")
# Replays a page offers for many at once: the states that mean "not received" (the API's ReplayIn).
REPLAYABLE = ("dead", "failed")
# The history a page shows of its row (the audit log, newest first).
HISTORY_ROWS = 20


async def history(v: Viewer, kind: Kind, entity_id: int) -> list[dict[str, Any]]:
    """The row's lines of the audit log, newest first, as GET /api/audit shows them."""
    f = audit_store.AuditFilter(entity_kind=kind.value, entity_id=entity_id)
    page = await audit_store.page(v.runtime.db, f, None, HISTORY_ROWS)
    return [audit_out(row).model_dump() for row in page.rows]


# --- a template -------------------------------------------------------------------------------------


async def _own_template(v: Viewer) -> dict[str, Any]:
    template_id = id_of(v.request.path_params["template_id"])
    row = await outbound.get_template(v.runtime.db, template_id) if template_id else None
    what = f"outbound template {v.request.path_params['template_id'][:20]}"
    if row is None:
        raise admin.NotFound(f"{what} does not exist")
    return owned(v.who, row, what, tenant="affiliate_id")


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """The template as the form shows it (its secret never: only whether there is one)."""
    t = s.OutboundTemplateOut(**decoded(row), signed=bool(row["secret"])).model_dump()
    return t | {
        "events": ", ".join(t["events"]),
        "status_map": ", ".join(f"{k}={w}" for k, w in t["status_map"].items()),
        "offer": str(t["offer_id"] or ""),
    }


def _given(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as PATCH /api/outbound/templates/{id} takes them."""
    status_map: dict[str, str] = {}
    for pair in form.get("status_map", "").split(","):
        name, _, word = pair.partition("=")
        if name.strip():
            status_map[name.strip()] = word.strip()
    given: dict[str, Any] = {
        "name": form.get("name", ""),
        "url": form.get("url", ""),
        "offer_id": form.get("offer", "") or None,
        "method": form.get("method", "GET"),
        "body_format": form.get("body_format", "") or None,
        "body": form.get("body", ""),
        "events": [e.strip() for e in form.get("events", "").split(",") if e.strip()],
        "statuses": [st for st in STATUSES if form.get(f"status_{st}")],
        "status_map": status_map,
        "click_id_sub": form.get("click_id_sub", "") or "sub1",
    }
    if form.get("secret", ""):
        given["secret"] = form["secret"]  # blank: the secret stays as it is
    elif form.get("unsign"):
        given["secret"] = None
    return given


async def template_page(v: Viewer) -> Response:
    """/outbound/{template_id}: the template's form (a save checks it as PATCH does), pause or
    resume, delete; and its history from the audit log."""
    row = await _own_template(v)
    problems: list[str] = []
    status = 200
    shown = _shown(row)
    if v.request.method == "POST":
        form = await csrf_form(v)
        if form is None:
            problems, status = [EXPIRED], 403
        else:
            done = await _change(v, row, form)
            if isinstance(done, Response):
                return done
            problems, status = done
            # What was typed stays in the form, to be corrected rather than typed again.
            shown |= {k: form.get(k, "") for k in ("name", "url", "offer", "events", "status_map", "body")}
            shown |= {k: form.get(k, shown[k]) for k in ("method", "click_id_sub")}
            shown |= {"body_format": form.get("body_format") or None}
            shown |= {"statuses": [st for st in STATUSES if form.get(f"status_{st}")]}
    offers = sorted(v.catalog.offers) if v.who.is_manager else sorted(own_offers(v))
    return render(
        v,
        "outbound_template.html",
        status,
        title=f"Outbound postback {row['id']}",
        problems=problems,
        t=shown,
        affiliate=shown_name(v, "affiliate", row["affiliate_id"]),
        offers=[(i, shown_name(v, "offer", i)) for i in offers],
        subs=SUBS,
        statuses=STATUSES,
        history=await history(v, Kind.TEMPLATE, row["id"]),
    )


async def _change(v: Viewer, row: dict[str, Any], form: dict[str, str]) -> Response | tuple[list[str], int]:
    """The change the form asks for, made (a redirect), or what is wrong with it and the status."""
    runtime, who, template_id = v.runtime, v.who, row["id"]
    action = form.get("action", "")
    now = datetime.now(UTC)
    here = RedirectResponse(f"/outbound/{template_id}", 303)
    if action == "delete":
        await outbound.delete_template(runtime.db, template_id, actor_of(who))
        await runtime.catalog.reload()
        return RedirectResponse("/outbound", 303)
    if action in ("pause", "resume"):
        status = "paused" if action == "pause" else "active"
        await outbound.change_template(runtime.db, template_id, {"status": status}, now, actor_of(who))
        await runtime.catalog.reload()
        return here
    if action != "save":
        return [f"action: '{action[:20]}' is none of save, pause, resume, delete"], 400
    try:
        body = s.OutboundTemplateChange.model_validate(_given(form))
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()], 400
    allow = runtime.settings.outbound_allowlist
    given = body.model_dump(exclude_unset=True)
    try:
        catalog = await runtime.catalog.fresh()
        await change_template(runtime.db, catalog, allow, template_id, given, now, actor_of(who))
    except TemplateRefused as refused:
        return [f"{refused.field}: {refused.message}"], 400
    except admin.NotFound as exc:
        return [f"{exc}."], 400
    await runtime.catalog.reload()  # this process at once; the others within their refresh
    return here


# --- deliveries ----------------------------------------------------------------------------------


async def delivery_page(v: Viewer) -> Response:
    """/deliveries/{delivery_id}: what was sent and every attempt (its reply or error), when the
    next is due; a form sends it again (POST /api/outbound/deliveries/{id}/replay)."""
    delivery_id = id_of(v.request.path_params["delivery_id"])
    what = f"delivery {v.request.path_params['delivery_id'][:20]}"
    if delivery_id is None:
        raise admin.NotFound(f"{what} does not exist")
    row = owned(v.who, await outbound.get_delivery(v.runtime.db, delivery_id), what, tenant="affiliate_id")
    if v.request.method == "POST":
        form = await csrf_form(v)
        if form is None:
            return await _delivery(v, row, [EXPIRED], 403)
        await _replay(v, [delivery_id], None)
        return RedirectResponse(f"/deliveries/{delivery_id}", 303)
    return await _delivery(v, row, [], 200)


async def _delivery(v: Viewer, row: dict[str, Any], problems: list[str], status: int) -> Response:
    attempts = [a | {"url": mask_url(a["url"])} for a in row["attempt_log"]]
    return render(
        v,
        "delivery.html",
        status,
        title=f"Delivery {row['id']}",
        problems=problems,
        d=row | {"url": mask_url(row["url"])},
        attempts=attempts,
        affiliate=shown_name(v, "affiliate", row["affiliate_id"]),
        history=await history(v, Kind.DELIVERY, row["id"]),
    )


async def _replay(v: Viewer, ids: list[int] | None, state: str | None) -> int:
    """Sent again, of the person's own deliveries only (an affiliate's), under their name in the
    audit log."""
    runtime = v.runtime
    now = datetime.now(UTC)
    count = await outbound.replay(runtime.db, ids, state, now, v.who.affiliate_id, actor_of(v.who))
    if runtime.dispatcher is not None:
        runtime.dispatcher.wake()
    return count


async def deliveries(v: Viewer) -> Response:
    """/deliveries: the log (web/records.deliveries); POST sends every delivery of a state (dead
    or failed) again, the person's own (POST /api/outbound/replay), and says how many."""
    if v.request.method != "POST":
        return await records.deliveries(v)
    form = await csrf_form(v)
    if form is None:
        return await records.deliveries(v, problems=[EXPIRED], status=403)
    state = form.get("state", "")
    if state not in REPLAYABLE:
        problem = f"state: '{state[:20]}' is neither of {', '.join(REPLAYABLE)}"
        return await records.deliveries(v, problems=[problem], status=400)
    count = await _replay(v, None, state)
    return await records.deliveries(v, notice=f"{count} {state} deliveries are sent again.")


# --- a manager's destinations ----------------------------------------------------------------------


async def destinations(v: Viewer) -> Response:
    """/destinations: trackers that have failed, paused or not, with a form to pause or resume
    each (POST /api/outbound/destinations/{destination}/pause and …/resume)."""
    runtime = v.runtime
    problems: list[str] = []
    status = 200
    if v.request.method == "POST":
        form = await csrf_form(v)
        if form is None:
            problems, status = [EXPIRED], 403
        else:
            destination = form.get("destination", "")[:300]
            now = datetime.now(UTC)
            try:
                if form.get("action") == "pause":
                    await outbound.pause(runtime.db, destination, "paused by hand", now, actor_of(v.who))
                else:
                    await outbound.resume(runtime.db, destination, now, actor_of(v.who))
                    if runtime.dispatcher is not None:
                        runtime.dispatcher.wake()
                return RedirectResponse("/destinations", 303)
            except admin.NotFound as exc:
                problems, status = [f"{exc}."], 404
    rows = await outbound.destinations(runtime.db, False)
    return render(v, "destinations.html", status, title="Destinations", problems=problems, rows=rows)
