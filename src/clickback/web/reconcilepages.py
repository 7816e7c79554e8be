"""The manager's reconciliation pages (issue 15, ADR 20): the list with the upload form, the
column mapping previewed and edited before an import, one reconciliation with its summary and
its items by class, each item's evidence, and the operator's figure accepted by a button.

Every form makes the API's own call (service/reconciliations: reconcile, preview, accept), so
a page refuses exactly what web/reconcile_api.py refuses, under the signed-in manager's name.

An upload is a multipart form read up to the API's cap for reports (web/guard.BODY_CAPS), not
the pages' 24 KB. A preview keeps nothing on the server: its form carries the mapping (edited
in selects of the file's headers) and the file's SHA-256, and asks for the file again (a
browser never sends a file it was not told to). The import then checks that the file is the one
previewed; another file is previewed in its turn."""

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from pydantic import ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Message, Receive

from clickback.core.audit import Kind, actor_of
from clickback.core.digits import id_of, is_digits
from clickback.core.money import money_text
from clickback.core.reconcile import AMOUNT_FIELDS, BadRow, ReportRow
from clickback.core.reconcile import Field as ReportField
from clickback.core.reconcile_compare import ACCEPTABLE
from clickback.core.reconcile_compare import Kind as ItemKind
from clickback.service.clock import utcnow
from clickback.service.reconciliations import Problem, accept, preview, reconcile
from clickback.service.reportfiles import MAX_REPORT_FILE_BYTES
from clickback.store import admin
from clickback.store import audit as audit_store
from clickback.store import reconciliations as store
from clickback.web.guard import BODY_CAPS
from clickback.web.login import same_token
from clickback.web.pages import EXPIRED, NOTHING, Viewer, csrf_form, download, render, shown_name
from clickback.web.reconcile_api import (
    BadLineOut,
    ItemOut,
    MappingIn,
    ReconciliationOut,
    SummaryOut,
    items_csv,
)
from clickback.web.records import BAD_CURSOR, PAGE_ROWS, next_link, page_at
from clickback.web.tracking import read_capped

# The upload's body: the API's cap for a report (the file and the form's few fields on top).
MAX_UPLOAD_BYTES = BODY_CAPS["/reconciliations"]
# The upload form's fields: csrf, action, advertiser, period, book, the previewed file's hash,
# a select per mapping field, the date order and the currency; anything beyond is no form of ours.
MAX_UPLOAD_FIELDS = 32
# A field other than the file: a header name (100 characters) is the longest we take.
MAX_FIELD_BYTES = 4096
KINDS = tuple(k.value for k in ItemKind)
# The classes whose items have the accept button: the service's own (a button that can only
# answer 409 is not offered).
ACCEPTED_KINDS = frozenset(k.value for k in ACCEPTABLE)
FIELDS = tuple(f.value for f in ReportField)
# The two sides of an item, field by field (the operator's report and clickback's records).
SIDES = (
    "tracking_code",
    "click_id",
    "registered_on",
    "ftd_on",
    "ftd_amount",
    "deposits",
    "chargebacks",
    "ngr",
    "cpa",
    "revshare",
    "commission",
)
# A line through the mapping, as the preview shows it (core/reconcile.ReportRow.as_json).
MAPPED = (
    "player_id",
    "month",
    "tracking_code",
    "registered_on",
    "ftd_on",
    *(f.value for f in AMOUNT_FIELDS),
    "currency",
    "transaction_id",
)
# Accept entries of a reconciliation read back for the conversions each accepted item booked.
MAX_ACCEPTS_READ = 1000
_HASH = re.compile(r"^[0-9a-f]{64}$")
_PERIOD = re.compile(r"^20[0-9]{2}-(0[1-9]|1[0-2])$")


@dataclass
class Upload:
    """The upload form as posted (what the page shows again) and the file it carried."""

    fields: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    name: str = ""

    @property
    def book(self) -> bool:
        return bool(self.fields.get("book"))


def _replay(body: bytes) -> Receive:
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            return {"type": "http.disconnect"}
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _read_upload(v: Viewer) -> Upload | tuple[int, str]:
    """The posted form and its file, or the status and sentence refusing it. The body is read up
    to the report's cap first (as the API's guard does), then parsed as multipart."""
    body = await read_capped(dict(v.request.scope["headers"]), v.request.receive, MAX_UPLOAD_BYTES)
    if not body.complete:
        return 400, "The upload was cut off. Try again."
    if body.too_large:
        return 413, f"The file is over {MAX_REPORT_FILE_BYTES // (1024 * 1024)} MB."
    if not _whole_multipart(v.request.headers.get("content-type", ""), body.data):
        return 400, "That was not an upload of this page. Try again."
    request = Request(v.request.scope, _replay(body.data))
    try:
        form = await request.form(max_files=1, max_fields=MAX_UPLOAD_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except (MultiPartException, HTTPException):
        # Starlette's refusal of a malformed body (inside an app, as an HTTPException 400): no
        # 500 for it (20,000 bodies mutated from a good upload met only these two).
        return 400, "That was not an upload of this page. Try again."
    try:
        upload = Upload()
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name == "file" and not upload.name and not upload.data:
                    upload.data = await value.read(MAX_REPORT_FILE_BYTES + 1)
                    upload.name = (value.filename or "")[:255]
            else:
                upload.fields.setdefault(name, value)
    finally:
        await form.close()
    return upload


def _whole_multipart(content_type: str, data: bytes) -> bool:
    """Whether a multipart body holds its closing delimiter. Cut short, python-multipart ends
    without an error and Starlette leaves the unfinished part's temporary file open; a form
    (any other type) is checked by its CSRF token alone."""
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        return True
    boundary = options.get(b"boundary")
    if not boundary:
        return False
    return (b"--" + boundary + b"--") in data


def _mapping_given(fields: Mapping[str, str]) -> dict[str, Any] | str | None:
    """The mapping the preview's form posted (a select per field), checked as the API checks
    one; None when the form had none; what is wrong with it otherwise."""
    if not fields.get("mapped"):
        return None
    columns = {f: fields.get(f"map_{f}", "") for f in FIELDS}
    given = {
        "columns": {f: h for f, h in columns.items() if h},
        "date_order": fields.get("date_order") or "dmy",
        "currency": (fields.get("default_currency") or "").strip().upper() or None,
    }
    try:
        return MappingIn.model_validate(given).model_dump()
    except ValidationError as exc:
        return "mapping: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )


# --- the list and the upload ---------------------------------------------------------------------


async def reconciliations(v: Viewer) -> Response:
    """/reconciliations: the list (of one advertiser with `advertiser_id`) and the upload form;
    posted, the upload is previewed or imported."""
    if v.request.method == "POST":
        return await _upload(v)
    return await _list_page(v)


async def _list_page(
    v: Viewer, status: int = 200, problems: Iterable[str] = (), posted: Upload | None = None, **more: Any
) -> Response:
    query = v.request.query_params
    problems = list(problems)
    advertiser_id = id_of(query.get("advertiser_id", "")) if query.get("advertiser_id") else None
    if query.get("advertiser_id") and advertiser_id is None:
        problems.append("advertiser_id: not an advertiser's number")
    found, refused = await page_at(
        query.get("cursor") or None, lambda c: store.page_of(v.runtime.db, advertiser_id, c, PAGE_ROWS)
    )
    if refused:
        problems.append(BAD_CURSOR)
    rows = [_listed(r) for r in found.rows]
    given = {"advertiser_id": str(advertiser_id)} if advertiser_id else {}
    next_page = next_link("/reconciliations", given, found)
    shown = posted or Upload({"advertiser_id": str(advertiser_id or "")})
    return render(
        v,
        "reconciliations.html",
        status,
        title="Reconciliations",
        problems=problems,
        rows=rows,
        next_page=next_page,
        advertiser_id=advertiser_id,
        advertisers=[(i, shown_name(v, "advertiser", i)) for i in sorted(v.catalog.advertisers)],
        advertiser_name=lambda i: shown_name(v, "advertiser", i),
        upload=shown.fields,
        kinds=KINDS,
        fields=FIELDS,
        **more,
    )


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    totals: dict[str, list[Decimal]] = {}
    for s in row["summary"]:
        for kind, n in s["items"].items():
            counts[kind] = counts.get(kind, 0) + n
        sums = totals.setdefault(s["currency"] or "", [Decimal(0), Decimal(0)])
        sums[0] += Decimal(s["operator_total"])
        sums[1] += Decimal(s["clickback_total"])
    months = sorted({s["month"] for s in row["summary"]})
    shown = [(c, op, cb, op - cb) for c, (op, cb) in sorted(totals.items())]
    return row | {
        "counts": [(k, counts[k]) for k in KINDS if counts.get(k)],
        "totals": [(c, *(money_text(a, c or None) for a in amounts)) for c, *amounts in shown],
        "months": months,
    }


async def _upload(v: Viewer) -> Response:
    got = await _read_upload(v)
    if isinstance(got, tuple):
        status, problem = got
        return await _list_page(v, status, [problem])
    if not same_token(got.fields.get("csrf", ""), v.session.csrf):
        return await _list_page(v, 403, [EXPIRED])
    problem = _check_upload(v, got)
    if problem:
        return await _list_page(v, 400, [problem], got)
    advertiser_id = int(got.fields["advertiser_id"])
    period = got.fields.get("period") or None
    given = _mapping_given(got.fields)
    if isinstance(given, str):
        return await _list_page(v, 400, [given], got)
    db, catalog = v.runtime.db, v.catalog
    previewed = got.fields.get("previewed", "")
    digest = hashlib.sha256(got.data).hexdigest()
    note = ""
    if got.fields.get("action") == "preview":
        note = "Check the columns, choose the file again and import it."
    elif given is None and await store.saved_mapping(db, advertiser_id) is None:
        note = (
            "This advertiser has no saved mapping yet: check the columns the file's header "
            "proposes, choose the file again and import it."
        )
    elif given is not None and _HASH.match(previewed) and previewed != digest:
        note = "This is not the file previewed: check its columns, then choose it again and import it."
    if note:
        return await _preview_page(v, got, given, note)
    try:
        done = await reconcile(
            db,
            catalog,
            advertiser_id,
            got.data,
            got.name,
            period,
            given,
            actor_of(v.who),
            utcnow(),
            book=v.runtime.postbacks if got.book else None,
        )
    except Problem as exc:
        if exc.where == "mapping":
            # The mapping does not fit the file: its preview, with the problem said and the
            # mapping to correct.
            note = "Correct the mapping, choose the file again and import it."
            return await _preview_page(v, got, given, note, 400)
        return await _list_page(v, _status(exc), [str(exc)], got)
    rid = done.reconciliation["id"]
    after: list[tuple[str, str]] = [("duplicate", "1")] if done.duplicate else []
    after += [("booked", f"{result}={n}") for result, n in done.booked.items()]
    return RedirectResponse(f"/reconciliations/{rid}" + (f"?{urlencode(after)}" if after else ""), 303)


def _check_upload(v: Viewer, got: Upload) -> str:
    """What is wrong with the form beside the file and the mapping (the service checks those)."""
    advertiser_id = id_of(got.fields.get("advertiser_id", ""))
    if advertiser_id is None or advertiser_id not in v.catalog.advertisers:
        return "advertiser: choose the advertiser whose operator sent the report"
    if not got.name and not got.data:
        return "file: choose the report's file (CSV or XLSX)"
    if len(got.data) > MAX_REPORT_FILE_BYTES:
        return f"file: over {MAX_REPORT_FILE_BYTES // (1024 * 1024)} MB"
    period = got.fields.get("period", "")
    if period and not _PERIOD.match(period):
        return "period: a month as YYYY-MM (2026-11), or nothing"
    return ""


def _status(exc: Problem) -> int:
    # A file or mapping refused is the form's problem (400); a missing row or a conflict keeps
    # the status the API gives it.
    return 400 if exc.status == 422 else exc.status


async def _preview_page(
    v: Viewer, got: Upload, given: dict[str, Any] | None, note: str, status: int = 200
) -> Response:
    advertiser_id = int(got.fields["advertiser_id"])
    try:
        seen = await preview(v.runtime.db, v.catalog, advertiser_id, got.data, got.name, given)
    except Problem as exc:
        return await _list_page(v, _status(exc), [str(exc)], got)
    # The mapping the form starts from: the one posted, else the saved one if it fits the file,
    # else the header's proposal (a saved one naming columns this file lacks has nothing to select).
    saved = seen.saved if seen.saved and not seen.problem else None
    used = given or saved or seen.proposed.as_json()
    cells = dict(seen.lines)
    rows = [
        {
            "line": r.line,
            "cells": cells.get(r.line, []),
            "row": r.as_json() if isinstance(r, ReportRow) else None,
            "reason": r.reason if isinstance(r, BadRow) else "",
        }
        for r in seen.rows
    ] or [{"line": n, "cells": c, "row": None, "reason": ""} for n, c in seen.lines]
    problems = [seen.problem] if seen.problem else []
    if seen.problem and status == 200:
        status = 400 if given is not None else status
    return await _list_page(
        v,
        status,
        problems,
        got,
        preview={
            "note": note,
            "file_name": got.name,
            "hash": hashlib.sha256(got.data).hexdigest(),
            "header": seen.header,
            "kind": seen.kind,
            "reading": seen.reading,
            "columns": used.get("columns", {}),
            "date_order": used.get("date_order") or "dmy",
            "currency": used.get("currency") or "",
            "saved": seen.saved is not None,
            "rows": rows,
            "mapped_fields": MAPPED,
        },
    )


# --- one reconciliation ---------------------------------------------------------------------------


async def _found(v: Viewer) -> dict[str, Any]:
    raw = v.request.path_params["reconciliation_id"]
    rid = id_of(raw)
    found = await store.get(v.runtime.db, rid) if rid else None
    if found is None:
        raise admin.NotFound(f"reconciliation {raw[:20]} does not exist")
    return found


async def reconciliation(v: Viewer) -> Response:
    """/reconciliations/{id}: the summary, the bad lines, the items of a class a page at a time
    with their evidence; posted, an item's operator figure accepted."""
    found = await _found(v)
    if v.request.method == "POST":
        return await _accept(v, found)
    return await _detail_page(v, found)


async def _detail_page(
    v: Viewer, found: dict[str, Any], status: int = 200, problems: Iterable[str] = (), **more: Any
) -> Response:
    rid = found["id"]
    query = v.request.query_params
    problems = list(problems)
    kind = query.get("kind") or None
    if kind is not None and kind not in KINDS:
        problems.append(f"kind: not a class ({', '.join(KINDS)})")
        kind = None
    cursor = query.get("cursor") or None
    page, refused = await page_at(cursor, lambda c: store.items_page(v.runtime.db, rid, kind, c, PAGE_ROWS))
    if refused:
        problems.append(BAD_CURSOR)
        cursor = None
    counts: dict[str, int] = {}
    for s in found["summary"]:
        for k, n in s["items"].items():
            counts[k] = counts.get(k, 0) + n
    next_page = next_link(f"/reconciliations/{rid}", {"kind": kind} if kind else {}, page)
    booked = [b.rpartition("=") for b in query.getlist("booked")[:20]]
    booked_shown = [(r[:60], n) for r, _, n in booked if is_digits(n)]
    # In the API's shapes: every amount (the summary's, an item's figures, difference, causes and
    # evidence) shown at its currency's decimals as the API and the CSV show it.
    items = [ItemOut.model_validate(it).model_dump() for it in page.rows]
    summary = [SummaryOut.model_validate(s).model_dump(mode="json") for s in found["summary"]]
    accepted = await _accepted_postbacks(v, rid, [it["id"] for it in items if it["accepted_at"]])
    return render(
        v,
        "reconciliation.html",
        status,
        title=f"Reconciliation {rid}: {found['file_name']}",
        problems=problems,
        r=found,
        advertiser=shown_name(v, "advertiser", found["advertiser_id"]),
        affiliate_name=lambda i: shown_name(v, "affiliate", i) if i is not None else "(nobody's)",
        summary=summary,
        bad_lines=await store.bad_rows(v.runtime.db, rid, 100),
        kinds=KINDS,
        kind=kind,
        counts=counts,
        items=items,
        sides=SIDES,
        acceptable=ACCEPTED_KINDS,
        accepted=accepted,
        next_page=next_page,
        cursor=cursor or "",
        duplicate=query.get("duplicate") == "1",
        booked=booked_shown,
        evidence_rows=_evidence_rows,
        shown_value=_shown_value,
        item_problems=more.pop("item_problems", {}),
        **more,
    )


async def _accepted_postbacks(v: Viewer, rid: int, item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """What accepting each item sent through the intake and the statuses it changed, from the
    audit log's accept entries (the item itself keeps the first conversion only)."""
    if not item_ids:
        return {}
    f = audit_store.AuditFilter(entity_kind=Kind.RECONCILIATION.value, entity_id=rid, action="accept")
    page = await audit_store.page(v.runtime.db, f, None, MAX_ACCEPTS_READ)
    wanted, out = set(item_ids), {}
    for row in page.rows:
        after = json.loads(row["after"]) if row["after"] else {}
        item = after.get("item")
        if item in wanted and item not in out:  # newest first: the accept that held
            out[item] = [p for p in after.get("postbacks", []) if isinstance(p, dict)] + [
                {
                    "event": f"{c.get('event')} {c.get('status')} by hand",
                    "result": "not changed" if c.get("problem") else "changed",
                    "reason": c.get("problem") or "",
                    "conversion_id": c.get("conversion_id"),
                }
                for c in after.get("changes", [])
                if isinstance(c, dict)
            ]
    return out


def _shown_value(value: object) -> str:
    if value is None or value == "":
        return NOTHING
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _evidence_rows(value: object) -> tuple[list[str], list[dict[str, Any]]] | None:
    """A list of records as a table's columns and rows; None for anything else."""
    if not isinstance(value, list) or not value or not all(isinstance(x, dict) for x in value):
        return None
    columns = list(dict.fromkeys(k for x in value for k in x))
    return columns, value


async def _accept(v: Viewer, found: dict[str, Any]) -> Response:
    """The operator's figure of one item booked, as POST /api/reconciliations/items/{id}/accept
    does; the service's refusal (404, 409) said on the page with its status."""
    rid = found["id"]
    form = await csrf_form(v)
    if form is None:
        return await _detail_page(v, found, 403, [EXPIRED])
    item_id = id_of(form.get("item", ""))
    async with v.runtime.db.read() as conn:
        item = await conn.run_sync(lambda c: store.item_with_file(c, item_id)) if item_id else None
    if item is None or item["reconciliation_id"] != rid:
        raise admin.NotFound(f"item {form.get('item', '')[:20]} of reconciliation {rid} does not exist")
    assert item_id is not None
    try:
        await accept(v.runtime.db, v.catalog, v.runtime.postbacks, item_id, actor_of(v.who), utcnow())
    except Problem as exc:
        message = str(exc)
        return await _detail_page(v, found, exc.status, [message], item_problems={item_id: message})
    back = {k: form[k] for k in ("kind", "cursor") if form.get(k)}
    if back.get("kind") not in KINDS:
        back.pop("kind", None)
    query = f"?{urlencode(back)}" if back else ""
    return RedirectResponse(f"/reconciliations/{rid}{query}#item-{item_id}", 303)


# --- downloads -----------------------------------------------------------------------------------


async def csv_download(v: Viewer) -> Response:
    """/reconciliations/{id}.csv: every item, as GET /api/reconciliations/{id}.csv gives it."""
    found = await _found(v)
    items = await store.all_items(v.runtime.db, found["id"])
    return download(items_csv(items), f"reconciliation-{found['id']}.csv")


async def json_download(v: Viewer) -> Response:
    """/reconciliations/{id}.json: the reconciliation, its bad lines and every item, in the API's
    own shapes (GET /api/reconciliations/{id}, every page at once)."""
    found = await _found(v)
    rid = found["id"]
    items = await store.all_items(v.runtime.db, rid)
    bad = await store.bad_rows(v.runtime.db, rid, 100)
    body = {
        "reconciliation": ReconciliationOut.model_validate(found).model_dump(mode="json"),
        "bad_lines": [BadLineOut(**b).model_dump(mode="json") for b in bad],
        "items": [ItemOut.model_validate(it).model_dump(mode="json") for it in items],
    }
    return download(json.dumps(body, ensure_ascii=False), f"reconciliation-{rid}.json", "application/json")
