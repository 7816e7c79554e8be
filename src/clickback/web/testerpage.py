"""The postback tester as a page (/tester, ADR 13): an advertiser makes a test click on one of
their offers, then fires a postback for it through the real intake and reads what became of it,
parameter by parameter. Both are forms posted with the session's CSRF token; what the affiliate
earns stays hidden, as in the API (web/api.trace_out)."""

from dataclasses import asdict
from typing import Any

from starlette.responses import Response

from clickback.core import integration
from clickback.core.accounts import Role
from clickback.core.digits import id_of
from clickback.service.tester import Problem, TestPostback
from clickback.web.login import read_form, same_token
from clickback.web.pages import Viewer, render, shown_name

MAX_VALUE_LEN = 200


async def tester(v: Viewer) -> Response:
    offers = sorted(
        (o for o in v.catalog.offers.values() if v.who.owns(advertiser_id=o.advertiser_id)),
        key=lambda o: o.id,
    )
    values: dict[str, Any] = {
        "offers": [(o.id, shown_name(v, "offer", o.id)) for o in offers],
        "click": None,
        "fired": None,
        "events": (),
    }
    if v.request.method == "GET":
        return render(v, "tester.html", title="Postback tester", **values)
    form = await read_form(v.request)
    if form is None or not same_token(form.get("csrf", ""), v.session.csrf):
        problem = "The form expired or came from elsewhere. Try again."
        return render(v, "tester.html", 403, title="Postback tester", problems=[problem], **values)
    runtime = v.runtime
    try:
        if form.get("action") == "click":
            raw = form.get("offer", "")
            offer = v.catalog.offers.get(id_of(raw) or 0)
            if offer is None or not v.who.owns(advertiser_id=offer.advertiser_id):
                raise Problem(f"offer {raw[:20]} does not exist", not_found=True)
            click = await runtime.tester.click(offer.id, None)
        else:
            click_id = form.get("click_id", "")[:64]
            offer = v.catalog.offers.get(await runtime.tester.offer_of(click_id))
            if offer is None or not v.who.owns(advertiser_id=offer.advertiser_id):
                raise Problem(f"no test click {click_id}", not_found=True)
            sent = TestPostback(
                event=form.get("event", "")[:MAX_VALUE_LEN],
                payout=form.get("payout", "")[:MAX_VALUE_LEN] or None,
                status=form.get("status", "")[:MAX_VALUE_LEN] or None,
            )
            fired = await runtime.tester.fire(click_id, sent)
            values["fired"] = {
                "sent": fired.url,
                "outcome": fired.outcome.body(),
                "parameters": [asdict(p) for p in fired.parameters],
            }
            click = fired.trace.click
    except Problem as exc:
        status = 404 if exc.not_found else 409
        return render(v, "tester.html", status, title="Postback tester", problems=[f"{exc}."], **values)
    # A link's code makes clicks that count for its affiliate: not an advertiser's to see.
    values["click"] = asdict(click) | ({"link_code": ""} if v.who.role is Role.ADVERTISER else {})
    values["events"] = integration.offer_events(offer)
    return render(v, "tester.html", title="Postback tester", **values)
