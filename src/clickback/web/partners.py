"""A partner's own pages beyond figures: an affiliate's monthly statement (and its CSV) and their
outbound postback settings, an advertiser's postback diagnosis. Scoped as the API scopes the same
reads (GET /api/statements, /api/outbound/templates, /api/diagnosis)."""

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.responses import Response

from clickback.core.accounts import Role
from clickback.core.reasons import BY_CODE
from clickback.core.statements import COLUMNS, line_cells, statement_csv, totals
from clickback.service.diagnosis import diagnose
from clickback.store import admin, outbound, statements
from clickback.store.catalog import decoded
from clickback.store.diagnosis import Scope
from clickback.web import schemas as s
from clickback.web.access import scoped
from clickback.web.pages import Viewer, amount, owner_name, render
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
    if raw.isdigit() and len(raw) <= 18 and int(raw) in v.catalog.affiliates:
        return int(raw), period, problems
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
        affiliates=[(i, owner_name(v.catalog, "affiliate", i)) for i in sorted(v.catalog.affiliates)],
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
    return Response(
        statement_csv(lines),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="statement-{affiliate_id}-{period}.csv"',
            "cache-control": "no-store",
        },
    )


async def outbound_settings(v: Viewer) -> Response:
    """The affiliate's outbound postbacks: what is sent to their tracker, when (the delivery log
    is /deliveries)."""
    q, problems, _ = read_filters(v, s.OutboundTemplatesQuery)
    page = await outbound.list_templates(v.runtime.db, scoped(v.who, q.values()), None, 100)
    rows = [
        s.OutboundTemplateOut(**decoded(row), signed=bool(row["secret"])).model_dump() for row in page.rows
    ]
    return render(
        v,
        "outbound.html",
        title="Outbound postbacks",
        problems=problems,
        rows=rows,
        offer_name=lambda i: owner_name(v.catalog, "offer", i) if i else "every offer",
        affiliate_name=lambda i: owner_name(v.catalog, "affiliate", i),
    )


async def diagnosis(v: Viewer) -> Response:
    """What goes wrong with the advertiser's postbacks this week (GET /api/diagnosis's figures)."""
    now = datetime.now(UTC)
    advertiser_id = v.who.advertiser_id
    if v.who.is_manager:
        raw = v.request.query_params.get("advertiser", "")
        advertiser_id = int(raw) if raw.isdigit() and len(raw) <= 18 else None
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
