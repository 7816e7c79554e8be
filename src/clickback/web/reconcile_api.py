"""The reconciliation routes of the JSON API (ADR 20, docs/reconciliation.md): an operator's report
uploaded and compared, its preview, the list, one reconciliation with its items, its CSV, and
the column mapping per advertiser. Manager only (web/access.py): an operator's report is the
whole network's players and commissions."""

import csv
import io
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NoReturn

from fastapi import FastAPI, File, Form, HTTPException, Query, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from clickback.core.audit import actor_of
from clickback.core.money import money_text
from clickback.core.reconcile import AMOUNT_FIELDS, BadRow, ReportRow
from clickback.core.reconcile import Field as ReportField
from clickback.core.reconcile_compare import Kind
from clickback.core.statements import csv_cell
from clickback.service.clock import utcnow
from clickback.service.reconciliations import Problem, accept, preview, reconcile, save_mapping
from clickback.service.reportfiles import MAX_REPORT_FILE_BYTES
from clickback.service.runtime import Runtime
from clickback.store import reconciliations as store
from clickback.web import schemas as s
from clickback.web.access import Who


def invalid(loc: tuple[str, ...], message: str) -> NoReturn:
    """A 422 in FastAPI's own shape (web/api.invalid; imported from there it would be a cycle)."""
    raise RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


ItemKind = Literal[
    "matched",
    "missing_in_clickback",
    "missing_at_operator",
    "attributed_elsewhere",
    "amount_differs",
    "cpa_disagrees",
]
FieldName = Literal[
    "player_id",
    "tracking_code",
    "period",
    "registration_date",
    "ftd_date",
    "ftd_amount",
    "deposits",
    "ngr",
    "cpa",
    "revshare",
    "commission",
    "currency",
    "transaction_id",
]


class MappingIn(BaseModel):
    """Which column of the report holds each field (header names as the file writes them)."""

    model_config = ConfigDict(extra="forbid")
    columns: dict[FieldName, Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        description="field: the header of its column; player_id is needed, every other field optional."
    )
    date_order: Literal["dmy", "mdy"] = Field(
        default="dmy", description="How 03/11/2026 is read: 3 November (dmy) or March 11 (mdy)."
    )
    currency: s.Currency | None = Field(
        default=None, description="The amounts' currency where a line names none."
    )


class MappingOut(MappingIn):
    advertiser_id: int
    updated_at: datetime | None = None
    updated_by: str | None = None


# Amounts are shown at their currency's decimals (docs/commissions.md, Rounding), also those of
# reconciliations saved before they were: each model's serializers read its own currency field.
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# The amounts of an item's operator and clickback figures (the rest: codes, days, ids).
FIGURES = ("ftd_amount", "deposits", "chargebacks", "ngr", "cpa", "revshare", "commission")


def shown(value: Any, currency: str | None) -> Any:
    """An amount (a Decimal, or kept as text) at its currency's decimals; anything else as it is."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = Decimal(value)
    return money_text(value, currency) if isinstance(value, Decimal) else value


def _figures(figures: dict[str, Any], currency: str | None) -> dict[str, Any]:
    return {k: shown(v, currency) if k in FIGURES else v for k, v in figures.items()}


def _evidence(evidence: dict[str, Any], currency: str | None) -> dict[str, Any]:
    """The evidence's amounts: the differences in the item's currency, each conversion's and
    ledger entry's in its own."""
    out = dict(evidence)
    if isinstance(out.get("differences"), dict):
        out["differences"] = {
            name: {k: shown(v, currency) for k, v in figures.items()}
            for name, figures in out["differences"].items()
        }
    if isinstance(out.get("conversions"), list):
        out["conversions"] = [
            c
            | {
                "payout": shown(c.get("payout"), c.get("currency")),
                "deal_amount": shown(c.get("deal_amount"), c.get("deal_currency")),
            }
            for c in out["conversions"]
        ]
    if isinstance(out.get("ledger"), list):
        out["ledger"] = [e | {"amount": shown(e.get("amount"), e.get("currency"))} for e in out["ledger"]]
    return out


class SummaryOut(BaseModel):
    affiliate_id: int | None = Field(description="null: players neither side attributes.")
    month: str
    currency: str | None
    operator_total: Decimal = Field(description="The operator's commission (its total, else CPA + RevShare).")
    clickback_total: Decimal = Field(
        description="Clickback's CPA and RevShare for the same players and month."
    )
    difference: Decimal = Field(description="operator_total - clickback_total.")
    items: dict[ItemKind, int]
    explained: dict[ItemKind, Decimal] = Field(description="The part of the difference each class explains.")

    @field_serializer("operator_total", "clickback_total", "difference")
    def _amount(self, amount: Decimal) -> str:
        return money_text(amount, self.currency)

    @field_serializer("explained")
    def _explained(self, explained: dict[ItemKind, Decimal]) -> dict[str, str]:
        return {str(k): money_text(v, self.currency) for k, v in explained.items()}


class ReconciliationOut(BaseModel):
    id: int
    advertiser_id: int
    file_name: str
    file_hash: str = Field(description="SHA-256 of the file: the same file is imported once per advertiser.")
    file_kind: Literal["csv", "xlsx"]
    period: str | None
    mapping: dict[str, Any]
    reading: dict[str, str] = Field(description="The decimal mark, encoding and delimiter found.")
    status: str
    created_at: datetime
    created_by: str
    lines: int = Field(description="Lines read (blank ones left out).")
    imported: int
    skipped: int = Field(
        description="Lines an earlier import holds already (the same row key): not imported again."
    )
    bad: int = Field(description="Lines refused, each with its number and reason.")
    items: int
    summary: list[SummaryOut]


class BadLineOut(BaseModel):
    line: int = Field(description="In the file, the header being line 1.")
    reason: str


class ImportOut(BaseModel):
    reconciliation: ReconciliationOut
    duplicate: bool = Field(description="The same file was reconciled before: this is that reconciliation.")
    bad_lines: list[BadLineOut] = Field(description="The first 100 lines refused.")
    booked: dict[str, int] = Field(
        default_factory=dict,
        description="With book=true: the lines' events sent through the intake, by result "
        "(`rejected: <reason>` for a refusal).",
    )


class CauseOut(BaseModel):
    cause: Literal["chargeback", "rate", "cpa_not_qualified", "negative_carryover", "exchange_rate"]
    amount: Decimal
    detail: str


class ItemOut(BaseModel):
    id: int
    player_id: str
    month: str
    kind: ItemKind
    affiliate_id: int | None
    currency: str | None
    difference: Decimal = Field(description="The operator's commission less clickback's, in `currency`.")
    operator: dict[str, Any]
    clickback: dict[str, Any]
    causes: list[CauseOut]
    evidence: dict[str, Any] = Field(
        description="By class (docs/reconciliation.md): conversions, ledger entries, refused postbacks, "
        "rates, the attribution, missing events, the postbacks that reported them; a CPA disagreement's "
        "qualification and rule_checks (each deal rule: rule, held, on, detail)."
    )
    lines: list[int]
    accepted_conversion_id: int | None
    accepted_at: datetime | None
    accepted_by: str | None

    @field_serializer("difference")
    def _difference(self, amount: Decimal) -> str:
        return money_text(amount, self.currency)

    @field_serializer("operator", "clickback")
    def _figures(self, figures: dict[str, Any]) -> dict[str, Any]:
        return _figures(figures, self.currency)

    @field_serializer("causes")
    def _causes(self, causes: list[CauseOut]) -> list[dict[str, str]]:
        return [c.model_dump() | {"amount": money_text(c.amount, self.currency)} for c in causes]

    @field_serializer("evidence")
    def _evidence(self, evidence: dict[str, Any]) -> dict[str, Any]:
        return _evidence(evidence, self.currency)


class ReconciliationDetailOut(BaseModel):
    reconciliation: ReconciliationOut
    bad_lines: list[BadLineOut]
    items: s.Page[ItemOut]


class PreviewRowOut(BaseModel):
    line: int
    cells: list[str] = Field(description="As read from the file.")
    row: dict[str, Any] | None = Field(description="Through the mapping; null for a bad line.")
    reason: str | None = None


class PreviewOut(BaseModel):
    header: list[str]
    file_kind: Literal["csv", "xlsx"]
    reading: dict[str, str]
    proposed: MappingIn = Field(description="What the header names suggest.")
    saved: MappingIn | None = Field(description="The advertiser's mapping, used when none is given.")
    rows: list[PreviewRowOut]
    problem: str = Field(
        description="Why the mapping an import would use cannot read the file; empty if it can."
    )


class SentOut(BaseModel):
    event: str
    result: Literal["accepted", "duplicate", "updated", "rejected"]
    reason: str = Field(description="The reason code of a refusal or a duplicate (docs/reasons.md).")
    conversion_id: int | None


class ChangeOut(BaseModel):
    conversion_id: int
    event: str
    status: Literal["approved", "rejected"]
    problem: str = Field(description="Why the status did not change; empty when it did.")


class AcceptOut(BaseModel):
    item_id: int
    conversion_id: int | None = Field(
        description="The first conversion booked or changed for the operator's figure."
    )
    postbacks: list[SentOut] = Field(description="Each postback sent through the intake, in order.")
    changes: list[ChangeOut] = Field(
        description="Each conversion whose status was changed through the status-change use case."
    )


class ItemsQuery(s.Paged):
    kind: ItemKind | None = None


def _refuse(exc: Problem) -> NoReturn:
    if exc.status == 422:
        # FastAPI's own shape, as the OpenAPI document promises every 422.
        invalid(("body", exc.where), str(exc))
    raise HTTPException(exc.status, str(exc))


def _mapping_field(raw: str | None) -> dict[str, Any] | None:
    if raw is None or not raw.strip():
        return None
    try:
        given = MappingIn.model_validate_json(raw)
    except ValueError as exc:
        invalid(("body", "mapping"), f"mapping: not a mapping: {str(exc)[:300]}")
    return given.model_dump()


async def _read(file: UploadFile) -> bytes:
    data = await file.read(MAX_REPORT_FILE_BYTES + 1)
    if len(data) > MAX_REPORT_FILE_BYTES:
        raise HTTPException(413, f"the file is over {MAX_REPORT_FILE_BYTES // (1024 * 1024)} MB")
    return data


def _reconciliation_out(row: dict[str, Any]) -> ReconciliationOut:
    return ReconciliationOut.model_validate(row)


def add_routes(api: FastAPI, runtime: Runtime) -> None:
    db = runtime.db

    @api.post("/reconciliations", tags=["reconciliations"])
    async def import_report(
        who: Who,
        file: Annotated[UploadFile, File(description="The operator's report: CSV (any delimiter) or XLSX.")],
        advertiser_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
        period: Annotated[
            str | None, Form(pattern=s.PERIOD, description="The month the file covers.")
        ] = None,
        mapping: Annotated[
            str | None,
            Form(
                max_length=20_000, description="A mapping (JSON, as PUT …/reconciliation-mapping takes it)."
            ),
        ] = None,
        book: Annotated[
            bool,
            Form(
                description="First send each new line's events through the postback intake, with the "
                "duplicate keys of postbacks: for an operator that sends none (a daily report)."
            ),
        ] = False,
    ) -> ImportOut:
        """Import an operator's report and compare it with what clickback recorded, player by
        player and month. The mapping given, else the advertiser's saved one, else the one the
        header proposes; the one used is saved for the advertiser's next file. A file imported
        before answers that reconciliation (`duplicate`); a line imported before is skipped and
        counted; a bad line is refused with its number and reason, the others imported."""
        try:
            done = await reconcile(
                db,
                runtime.catalog.current,
                advertiser_id,
                await _read(file),
                file.filename or "",
                period,
                _mapping_field(mapping),
                actor_of(who),
                utcnow(),
                book=runtime.postbacks if book else None,
            )
        except Problem as exc:
            _refuse(exc)
        return ImportOut(
            reconciliation=_reconciliation_out(done.reconciliation),
            duplicate=done.duplicate,
            bad_lines=[BadLineOut(**b) for b in done.bad],
            booked=done.booked,
        )

    @api.post("/reconciliations/preview", tags=["reconciliations"])
    async def preview_report(
        file: Annotated[UploadFile, File()],
        advertiser_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
        mapping: Annotated[str | None, Form(max_length=20_000)] = None,
        period: Annotated[
            str | None, Form(pattern=s.PERIOD, description="The month the file covers, as for the import.")
        ] = None,
    ) -> PreviewOut:
        """The file's first lines as read, the mapping its header proposes, the advertiser's saved
        one, and the lines through the mapping an import would use. Nothing is kept."""
        try:
            seen = await preview(
                db,
                runtime.catalog.current,
                advertiser_id,
                await _read(file),
                file.filename or "",
                _mapping_field(mapping),
                period,
            )
        except Problem as exc:
            _refuse(exc)
        cells = dict(seen.lines)
        rows = [
            PreviewRowOut(
                line=r.line,
                cells=cells.get(r.line, []),
                row=r.as_json() if isinstance(r, ReportRow) else None,
                reason=r.reason if isinstance(r, BadRow) else None,
            )
            for r in seen.rows
        ] or [PreviewRowOut(line=n, cells=c, row=None) for n, c in seen.lines]
        return PreviewOut(
            header=seen.header,
            file_kind=seen.kind,  # type: ignore[arg-type]
            reading=seen.reading,
            proposed=MappingIn.model_validate(seen.proposed.as_json()),
            saved=MappingIn.model_validate(seen.saved) if seen.saved else None,
            rows=rows,
            problem=seen.problem,
        )

    @api.get("/reconciliations", tags=["reconciliations"])
    async def list_reconciliations(
        advertiser_id: Annotated[s.Id | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=200, pattern="^[A-Za-z0-9_-]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> s.Page[ReconciliationOut]:
        """Reconciliations, newest first."""
        page = await store.page_of(db, advertiser_id, cursor, limit)
        return s.Page[ReconciliationOut](
            items=[_reconciliation_out(r) for r in page.rows], next_cursor=page.next_cursor
        )

    @api.get("/reconciliations/{item_id}.csv", tags=["reconciliations"], response_class=Response)
    async def reconciliation_csv(item_id: s.Id) -> Response:
        """Every item as CSV (text a spreadsheet would run as a formula is quoted)."""
        found = await store.get(db, item_id)
        if found is None:
            raise HTTPException(404, f"reconciliation {item_id} does not exist")
        items = await store.all_items(db, item_id)
        return Response(
            items_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="reconciliation-{item_id}.csv"'},
        )

    @api.get("/reconciliations/{item_id}", tags=["reconciliations"])
    async def get_reconciliation(item_id: s.Id, q: Annotated[ItemsQuery, Query()]) -> ReconciliationDetailOut:
        """A reconciliation: its summary per affiliate and month, its bad lines, and its items
        (one player's month each) a page at a time, of one class if `kind` is given."""
        found = await store.get(db, item_id)
        if found is None:
            raise HTTPException(404, f"reconciliation {item_id} does not exist")
        page = await store.items_page(db, item_id, q.kind, q.cursor, q.limit)
        return ReconciliationDetailOut(
            reconciliation=_reconciliation_out(found),
            bad_lines=[BadLineOut(**b) for b in await store.bad_rows(db, item_id, 100)],
            items=s.Page[ItemOut](
                items=[ItemOut.model_validate(r) for r in page.rows], next_cursor=page.next_cursor
            ),
        )

    @api.post("/reconciliations/items/{item_id}/accept", tags=["reconciliations"])
    async def accept_item(item_id: s.Id, who: Who) -> AcceptOut:
        """Accept the operator's figure of an item. Missing in clickback: its registration and
        first deposit; an amount that differs: the difference in deposits (more: a deposit;
        fewer: a chargeback) and in NGR (a net_revenue report of the month, either sign); sent
        through the postback intake as the advertiser's postback would have been (channel
        `recon`), each conversion's history naming the reconciliation, item, file, lines, who
        and when. A commission differing on the same activity is a 409: the ledger takes no
        entry by hand. Matched and attributed-elsewhere items: 409. Missing at the operator:
        clickback's conversions the operator does not count are rejected; a CPA the operator
        did not pay: the qualified_cpa conversion is rejected (its ledger entry reversed), one
        it paid that was rejected by hand is approved again;
        both through the status-change use case, with the reconciliation as the reason. The
        ledger, statements, reports and outbound postbacks follow; audited. 409 for an item
        accepted already, one with nothing to book, or a figure refused (the reasons said)."""
        try:
            done = await accept(
                db, runtime.catalog.current, runtime.postbacks, item_id, actor_of(who), utcnow()
            )
        except Problem as exc:
            _refuse(exc)
        return AcceptOut(
            item_id=done.item_id,
            conversion_id=done.conversion_id,
            postbacks=[
                SentOut(event=e, result=r, reason=why, conversion_id=c)  # type: ignore[arg-type]
                for e, r, why, c in done.postbacks
            ],
            changes=[
                ChangeOut(conversion_id=c, event=e, status=st, problem=p)  # type: ignore[arg-type]
                for c, e, st, p in done.changes
            ],
        )

    @api.get("/advertisers/{item_id}/reconciliation-mapping", tags=["reconciliations"])
    async def get_mapping(item_id: s.Id) -> MappingOut:
        """The mapping the advertiser's reports are read with (the last used or set); 404 if
        none yet: a first import proposes one from the file's header."""
        if item_id not in runtime.catalog.current.advertisers:
            raise HTTPException(404, f"advertiser {item_id} does not exist")
        saved = await store.saved_mapping(db, item_id)
        if saved is None:
            raise HTTPException(404, f"advertiser {item_id} has no mapping yet")
        return MappingOut(
            advertiser_id=item_id,
            updated_at=saved["updated_at"],
            updated_by=saved["updated_by"],
            **saved["mapping"],
        )

    @api.put("/advertisers/{item_id}/reconciliation-mapping", tags=["reconciliations"])
    async def put_mapping(item_id: s.Id, body: MappingIn, who: Who) -> MappingOut:
        """The mapping the advertiser's next reports are read with (audited)."""
        try:
            await save_mapping(
                db, runtime.catalog.current, item_id, body.model_dump(), actor_of(who), utcnow()
            )
        except Problem as exc:
            _refuse(exc)
        return await get_mapping(item_id)


CSV_COLUMNS = (
    "player_id",
    "month",
    "class",
    "affiliate_id",
    "currency",
    "difference",
    *(f"operator_{f.value}" for f in (ReportField.TRACKING_CODE, *AMOUNT_FIELDS)),
    *(f"clickback_{name}" for name in ("deposits", "ngr", "cpa", "revshare", "commission")),
    "causes",
    "lines",
    "accepted_conversion_id",
)


def items_csv(items: list[dict[str, Any]]) -> str:
    """The items as CSV; every cell through core.statements.csv_cell (no formula runs when the
    file is opened in a spreadsheet: a player ID of "=HYPERLINK(...)" stays text)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for it in items:
        op, cb, currency = it["operator"], it["clickback"], it["currency"]
        # Only amounts are read back as numbers: a player ID or tracking code is the operator's
        # text whatever it looks like ("-2" is written "'-2", as any text a formula could start).
        values = [
            it["player_id"],
            it["month"],
            Kind(it["kind"]).value,
            it["affiliate_id"] if it["affiliate_id"] is not None else "",
            it["currency"] or "",
            _amount(it["difference"], currency),
            op.get("tracking_code") or "",
            *(_amount(op.get(f.value) or "", currency) for f in AMOUNT_FIELDS),
            *(
                _amount(cb.get(name) or "", currency)
                for name in ("deposits", "ngr", "cpa", "revshare", "commission")
            ),
            "; ".join(f"{c['cause']} {shown(c['amount'], currency)}: {c['detail']}" for c in it["causes"]),
            " ".join(map(str, it["lines"])),
            it["accepted_conversion_id"] or "",
        ]
        writer.writerow([csv_cell(v) for v in values])
    return buffer.getvalue()


def _amount(value: object, currency: str | None) -> object:
    # Amounts kept as text are numbers again, so a negative one is written as it is; at the
    # currency's decimals, as the API shows them.
    text = shown(value, currency)
    return Decimal(text) if text is not value else value
