"""A partner's own pages beyond figures: an affiliate's monthly statement (and its CSV) and their
outbound postback settings, an advertiser's postback diagnosis. Scoped as the API scopes the same
reads (GET /api/statements, /api/outbound/templates, /api/diagnosis)."""

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from clickback.core.accounts import Role
from clickback.core.digits import id_of
from clickback.core.reasons import BY_CODE
from clickback.core.statements import COLUMNS, line_cells, statement_csv, totals
from clickback.service.diagnosis import diagnose
from clickback.service.outbound import TemplateRefused, create_template
from clickback.store import admin, outbound, statements
from clickback.store.catalog import decoded
from clickback.store.diagnosis import Scope
from clickback.web import schemas as s
from clickback.web.access import scoped
from clickback.web.login import read_form, same_token
from clickback.web.pages import Viewer, amount, download, own_offers, render, shown_name
from clickback.web.records import read_filters

_PERIOD = re.compile(s.PERIOD)
DIAGNOSIS_DAYS = 7


def _statement_of(v: Viewer) -> tuple[int | None, str, list[str]]:
    """Whose statement and which month: an affiliate's own whatever is asked; a manager's choice."""
    problems: list[str] = []
    period = v.request.query_params.get("period", "")
    if not _PERIOD.fullmatch(period[:8]):
        if period:
            problems.append(f"period: '{period[:20]}' is no month (YYYY-MM); this month is shown")
        period = datetime.now(UTC).strftime("%Y-%m")
    if v.who.role is Role.AFFILIATE:
        return v.who.affiliate_id, period, problems
    raw = v.request.query_params.get("affiliate", "")
    if (affiliate_id := id_of(raw)) in v.catalog.affiliates:
        return affiliate_id, period, problems
    if raw:
        problems.append(f"affiliate: no affiliate {raw[:20]}")
    return min(v.catalog.affiliates, default=None), period, problems


async def statement(v: Viewer) -> Response:
    affiliate_id, period, problems = _statement_of(v)
    lines = []
    if affiliate_id is not None:
        lines = await statements.statement(
            v.runtime.db, affiliate_id, period, v.catalog.deals_of(affiliate_id)
        )
    query = urlencode({"period": period} | ({"affiliate": affiliate_id} if v.who.is_manager else {}))
    return render(
        v,
        "statement.html",
        title="Statement",
        problems=problems,
        period=period,
        affiliate_id=affiliate_id,
        affiliates=[(i, shown_name(v, "affiliate", i)) for i in sorted(v.catalog.affiliates)],
        columns=COLUMNS,
        lines=[line_cells(line) for line in lines],
        totals=amount(dict(totals(lines))),
        download=f"/statements.csv?{query}",
    )


async def statement_download(v: Viewer) -> Response:
    affiliate_id, period, _ = _statement_of(v)
    if affiliate_id is None:
        raise admin.NotFound("no affiliate has a statement yet")
    lines = await statements.statement(v.runtime.db, affiliate_id, period, v.catalog.deals_of(affiliate_id))
    return download(statement_csv(lines), f"statement-{affiliate_id}-{period}.csv")


async def outbound_settings(v: Viewer) -> Response:
    """The affiliate's outbound postbacks: what is sent to their tracker, when (the delivery log
    is /deliveries); a form adds one, checked as POST /api/outbound/templates checks it."""
    problems: list[str] = []
    if v.request.method == "POST":
        added = await _add_template(v)
        if added is None:
            return RedirectResponse("/outbound", 303)  # shown in the list, not posted again on reload
        problems, status = added
    else:
        status = 200
    q, refused, _ = read_filters(v, s.OutboundTemplatesQuery)
    page = await outbound.list_templates(v.runtime.db, scoped(v.who, q.values()), None, 100)
    rows = [template(row) for row in page.rows]
    # An affiliate's offers are those of their links (the API lists them no others).
    offers = sorted(v.catalog.offers) if v.who.is_manager else sorted(own_offers(v))
    return render(
        v,
        "outbound.html",
        status,
        title="Outbound postbacks",
        problems=refused + problems,
        rows=rows,
        offer_name=lambda i: shown_name(v, "offer", i) if i else "every offer",
        affiliate_name=lambda i: shown_name(v, "affiliate", i),
        affiliates=[(i, shown_name(v, "affiliate", i)) for i in sorted(v.catalog.affiliates)],
        offers=[(i, shown_name(v, "offer", i)) for i in offers],
        subs=("sub1", "sub2", "sub3", "sub4", "sub5"),
    )


def template(row: dict[str, Any]) -> dict[str, Any]:
    # As the API shows it: the secret never, only whether there is one.
    return s.OutboundTemplateOut(**decoded(row), signed=bool(row["secret"])).model_dump()


async def _add_template(v: Viewer) -> tuple[list[str], int] | None:
    """The template the form asks for, saved (None), or what is wrong with it and the status."""
    form = await read_form(v.request)
    if form is None or not same_token(form.get("csrf", ""), v.session.csrf):
        return ["The form expired or came from elsewhere. Try again."], 403
    if v.who.role is Role.AFFILIATE:
        affiliate: object = v.who.affiliate_id  # their own, whatever the form says
    else:
        affiliate = form.get("affiliate", "")
    offer = form.get("offer", "")
    given = {
        "affiliate_id": affiliate,
        "name": form.get("name", ""),
        "url": form.get("url", ""),
        "offer_id": offer or None,
        "events": [e.strip() for e in form.get("events", "").split(",") if e.strip()],
        "click_id_sub": form.get("click_id_sub", "") or "sub1",
    }
    try:
        body = s.OutboundTemplateIn.model_validate(given)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()], 400
    runtime = v.runtime
    allow = runtime.settings.outbound_allowlist
    try:
        catalog = await runtime.catalog.fresh()
        await create_template(runtime.db, catalog, allow, body.model_dump(), datetime.now(UTC))
    except TemplateRefused as refused:
        return [f"{refused.field}: {refused.message}"], 400
    except admin.NotFound as exc:
        return [f"{exc}."], 400
    await runtime.catalog.reload()  # this process at once; the others within their refresh
    return None


async def diagnosis(v: Viewer) -> Response:
    """What goes wrong with the advertiser's postbacks this week (GET /api/diagnosis's figures)."""
    now = datetime.now(UTC)
    advertiser_id = v.who.advertiser_id
    if v.who.is_manager:
        raw = v.request.query_params.get("advertiser", "")
        advertiser_id = id_of(raw)
    scope = Scope(now - timedelta(days=DIAGNOSIS_DAYS), now, advertiser_id, None)
    found = await diagnose(v.runtime.db, v.catalog, scope, now, 7, 24)
    summary = found.summary
    return render(
        v,
        "diagnosis.html",
        title="Postback diagnosis",
        days=DIAGNOSIS_DAYS,
        summary=summary,
        rate=amount(summary.acceptance_rate),
        reasons=[
            {
                "code": r.code,
                "count": r.count,
                "sentence": BY_CODE[r.code].sentence,
                "hint": BY_CODE[r.code].hint,
            }
            for r in found.top_reasons
        ],
        findings=[asdict(f) for f in found.findings],
    )
