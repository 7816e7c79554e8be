"""Reconciling an operator's report with what clickback recorded (issue 15, ADR 20).

    read      the file (service/reportfiles) → its lines through the column mapping (the one
              given, else the advertiser's saved one, else proposed from the header) → rows, or
              bad lines with their number and reason (core/reconcile)
    once      a file seen before (its SHA-256) is that earlier reconciliation; a line whose row
              key an earlier import holds is skipped (not kept or booked again) and counted
    compare   every line of the file, skipped ones too, summed by player and month, against
              clickback's figures for those players and months (store/reconciliations.gather)
              → an item per player and month (core/reconcile_compare) → refused postbacks and
              reporting postbacks as evidence → the summary per affiliate and month
    save      the reconciliation, its lines and items, the mapping (saved for the advertiser's
              next file) and the audit log, in one transaction

The comparison reads outside the write transaction: on SQLite a write transaction is the file's
one writer, and postbacks must not wait behind a 100,000-line comparison.
"""

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection

from clickback.core.audit import Actor, Change, Kind, change
from clickback.core.commission import check_rules, period_bounds
from clickback.core.intake import RECON, RawPostback, sign
from clickback.core.lifecycle import PAYABLE, Status, can_move
from clickback.core.model import Catalog
from clickback.core.reconcile import (
    PREVIEW_ROWS,
    BadRow,
    ColumnMapping,
    Field,
    MappingError,
    ReportRow,
    check_mapping,
    figures_of,
    mapping_from_json,
    propose_mapping,
    read_rows,
)
from clickback.core.reconcile_compare import (
    ACCEPTABLE,
    UNCONVERTED,
    Item,
    amounts_now,
    amounts_to_accept,
    compare,
    summarise,
)
from clickback.core.reconcile_compare import Kind as ItemKind
from clickback.service.postbacks import Postbacks
from clickback.service.reportfiles import FileError, ReportTable, read_report
from clickback.store import audit
from clickback.store import reconciliations as store
from clickback.store.db import Database

# Bad lines a reply lists (all are kept with the reconciliation).
MAX_BAD_SHOWN = 100
Progress = Callable[[str, int, int], None]


class Problem(Exception):
    """Why a file cannot be reconciled: `status` 404 (no such advertiser), 422 (not a report, a
    mapping that does not fit it), 409 (the same lines imported meanwhile)."""

    def __init__(self, message: str, status: int = 422, where: str = "file") -> None:
        super().__init__(message)
        self.status = status
        self.where = where  # the form field at fault: "file" or "mapping"


@dataclass(frozen=True, slots=True)
class Imported:
    reconciliation: dict[str, Any]
    # The same file was reconciled before: `reconciliation` is that one, nothing was imported.
    duplicate: bool
    bad: list[dict[str, Any]]
    # With `book` (a daily report of an operator that sends no postbacks): what the intake made
    # of the lines' events, by result ("rejected: <reason>" for a refusal).
    booked: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Preview:
    header: list[str]
    kind: str
    reading: dict[str, str]
    proposed: ColumnMapping
    saved: dict[str, Any] | None
    # The first lines: cells as read, then through the mapping that would be used.
    lines: list[tuple[int, list[str]]]
    rows: list[ReportRow | BadRow]
    problem: str = ""


def _nothing(stage: str, done: int, total: int) -> None:
    pass


def _advertiser(catalog: Catalog, advertiser_id: int) -> None:
    if advertiser_id not in catalog.advertisers:
        raise Problem(f"advertiser {advertiser_id} does not exist", 404)


async def _table(data: bytes, name: str) -> ReportTable:
    try:
        return await asyncio.to_thread(read_report, data, name)
    except FileError as exc:
        raise Problem(str(exc)) from None


async def _mapping(
    db: Database, advertiser_id: int, given: dict[str, Any] | None, header: Sequence[str]
) -> ColumnMapping:
    try:
        if given is not None:
            mapping = mapping_from_json(given)
        else:
            saved = await store.saved_mapping(db, advertiser_id)
            mapping = mapping_from_json(saved["mapping"]) if saved else propose_mapping(header)
        check_mapping(mapping, header)
    except MappingError as exc:
        proposed = json.dumps(propose_mapping(header).as_json()["columns"])
        raise Problem(f"mapping: {exc} (the file's header proposes {proposed})", where="mapping") from None
    return mapping


async def preview(
    db: Database,
    catalog: Catalog,
    advertiser_id: int,
    data: bytes,
    name: str,
    given: dict[str, Any] | None,
    period: str | None = None,
) -> Preview:
    """The file's first lines as read, the mapping its header proposes and the advertiser's saved
    one, and those lines through the mapping an import would use (a problem with it, said), in
    `period` as an import of it would read them."""
    _advertiser(catalog, advertiser_id)
    table = await _table(data, name)
    saved = await store.saved_mapping(db, advertiser_id)
    lines = table.lines[:PREVIEW_ROWS]
    try:
        mapping = await _mapping(db, advertiser_id, given, table.header)
        rows = list(read_rows(table.header, lines, mapping, table.reading, period))
        problem = ""
    except Problem as exc:
        rows, problem = [], str(exc)
    return Preview(
        table.header,
        table.kind,
        _reading(table),
        propose_mapping(table.header),
        saved["mapping"] if saved else None,
        lines,
        rows,
        problem,
    )


def _reading(table: ReportTable) -> dict[str, str]:
    return {"decimal": table.reading.decimal, "encoding": table.encoding, "delimiter": table.delimiter}


async def reconcile(
    db: Database,
    catalog: Catalog,
    advertiser_id: int,
    data: bytes,
    name: str,
    period: str | None,
    given: dict[str, Any] | None,
    by: Actor,
    now: datetime,
    progress: Progress = _nothing,
    book: Postbacks | None = None,
) -> Imported:
    """`book`: the intake the lines' own events are first sent through, as the advertiser's
    postbacks (channel `recon`), for an operator that sends none (docs/reconciliation.md)."""
    _advertiser(catalog, advertiser_id)
    file_hash = hashlib.sha256(data).hexdigest()
    earlier = await store.by_hash(db, advertiser_id, file_hash)
    if earlier is not None:
        return Imported(store.decoded(earlier), True, await store.bad_rows(db, earlier["id"], MAX_BAD_SHOWN))
    progress("read", 0, 1)
    table = await _table(data, name)
    mapping = await _mapping(db, advertiser_id, given, table.header)
    read = await asyncio.to_thread(
        lambda: list(read_rows(table.header, table.lines, mapping, table.reading, period))
    )
    good = [(r, r.key) for r in read if isinstance(r, ReportRow)]
    bad = [r for r in read if isinstance(r, BadRow)]
    progress("read", 1, 1)

    # Reads on the read connection; the CPU-bound comparison in a thread (on SQLite, run_sync
    # runs its Python on the event loop, which has clicks and postbacks to answer meanwhile).
    async with db.read() as conn:
        known = await conn.run_sync(lambda c: store.known_keys(c, advertiser_id, {key for _, key in good}))
    # A line imported before is not imported (kept, booked) again, but it is still the operator's
    # figure for its player and month: the comparison takes every line the file holds, once each,
    # or a file saved again would leave its players with nothing at the operator. Accepting stays
    # exactly-once whatever the items compared: an accept books against clickback's figures as
    # they are then (_as_now), under the item's own transaction IDs.
    held, fresh, seen = [], [], set()
    for row, key in good:
        if key not in seen:
            seen.add(key)
            held.append(row)
            if key not in known:
                fresh.append((row, key))
    source = f"{name[:200] or 'report'} (SHA-256 {file_hash[:16]})"
    booked = (
        await _book(book, catalog, advertiser_id, [row for row, _ in fresh], now, source, by) if book else {}
    )
    figures, mixed = await asyncio.to_thread(figures_of, held)
    refused_lines = {b.line for b in mixed}
    fresh = [(row, key) for row, key in fresh if row.line not in refused_lines]
    skipped = len(good) - len(fresh) - len(mixed)
    bad += mixed
    months = {month for _, month in figures} | ({period} if period else set())
    wanted = {key: (f.currency, f.tracking_code) for key, f in figures.items()}
    async with db.read() as conn:
        recorded = await conn.run_sync(
            lambda c: store.gather(c, catalog, advertiser_id, wanted, months, mapping.currency)
        )
    columns = frozenset(mapping.columns)

    def compare_all() -> list[Item]:
        items = []
        total = len(recorded.figures)
        for n, (key, ours) in enumerate(recorded.figures.items()):
            items.append(compare(figures.get(key), ours, recorded.rates, columns, mapping.currency))
            if n % 5000 == 0:
                progress("compare", n, total)
        return items

    items = await asyncio.to_thread(compare_all)
    async with db.read() as conn:
        items = await conn.run_sync(lambda c: _with_evidence(c, catalog, advertiser_id, items))
    progress("compare", 1, 1)
    summary = summarise(items)
    new = store.NewReconciliation(
        advertiser_id=advertiser_id,
        file_name=name or "report",
        file_hash=file_hash,
        file_kind=table.kind,
        period=period,
        mapping=mapping.as_json(),
        reading=_reading(table),
        created_at=now,
        created_by=by.name,
        user_id=by.user_id,
        lines=len(read),
        skipped=skipped,
    )
    cells = dict(table.lines)
    # The rows as written, built before the write transaction (which then only inserts).
    rows = await asyncio.to_thread(
        store.rows_of, new, fresh, [(b, cells.get(b.line, [])) for b in bad], items
    )

    def write(conn: Connection) -> int:
        rid = store.save(conn, new, rows, len(fresh), len(bad), len(items), summary)
        shown = {"file_name": new.file_name, "file_hash": file_hash, "period": period, "lines": len(read)}
        imported = change(
            by, Kind.RECONCILIATION, rid, "import", None, shown | {"bad": len(bad), "skipped": skipped}
        )
        audit.record_sync(
            conn, [imported, _mapping_saved(conn, advertiser_id, mapping, by, now, always=False)], now
        )
        return rid

    progress("save", 0, 1)
    try:
        rid = await db.run_write(write)
    except store.unique_violations(db):
        # The unique keys (a file's hash, a line's row key) are the guard, not the look-up above:
        # another import of the same file or lines committed meanwhile.
        raise Problem(
            "this file or some of its lines were imported meanwhile: retry to see how", 409
        ) from None
    progress("save", 1, 1)
    saved = await store.get(db, rid)
    assert saved is not None
    bad.sort(key=lambda b: b.line)
    return Imported(saved, False, [{"line": b.line, "reason": b.reason} for b in bad[:MAX_BAD_SHOWN]], booked)


# Postbacks a daily import sends together: a group's worth (service/postbacks.MAX_GROUP).
BOOK_CONCURRENCY = 200


def _row_events(row: ReportRow, now: datetime) -> list[dict[str, str]]:
    """A line's events as the advertiser's postbacks would carry them, with the same duplicate
    keys: a registration the player's (once a player); the line's transaction ID its first
    deposit's, else its deposits' (first deposits and deposits are one family of keys), and its
    NGR's; deposits beside a first deposit on the same line `<transaction ID>-more`. Without a
    transaction ID a first deposit takes the player's key, and deposits and NGR are not booked:
    no key would make the advertiser's later postback of them a duplicate.

    Deposits and NGR are dated the last second of the day the line reports (or of its first
    deposit's day, if later), else of the month (now, where that is earlier): never before they
    were made. A deposit dated earlier than the player's first deposit would take its place (the
    intake labels deposits by time: core.events.deposit_label), as the sign-up day or the month's
    first did, and a day's midnight could be before that day's first deposit."""
    txn = row.transaction_id
    events: list[dict[str, str]] = []
    if row.registered_on is not None:
        events.append({"event": "registration", "event_time": row.registered_on.isoformat(), "txn_id": ""})
    ftd = row.ftd_amount if row.ftd_amount is not None else Decimal(0)
    if row.ftd_on is not None:
        first = {"event": "first_deposit", "event_time": row.ftd_on.isoformat(), "payout": f"{ftd:f}"}
        events.append(first | {"txn_id": txn})
    if row.day is not None or row.ftd_on is not None:
        last = max(d for d in (row.day, row.ftd_on) if d is not None)
        day = min(datetime.combine(last, time(23, 59, 59), UTC), now).isoformat()
    else:
        day = _latest_in(row.month, now).isoformat()
    rest = (row.deposits or Decimal(0)) - (ftd if row.ftd_on is not None else Decimal(0))
    if txn and rest > 0:
        more = f"{txn}-more" if row.ftd_on is not None else txn
        events.append({"event": "deposit", "event_time": day, "payout": f"{rest:f}", "txn_id": more})
    if txn and row.ngr:
        ngr = {"event": "net_revenue", "event_time": day, "payout": f"{row.ngr:f}", "period": row.month}
        events.append(ngr | {"txn_id": txn})
    return events


async def _book(
    postbacks: Postbacks,
    catalog: Catalog,
    advertiser_id: int,
    rows: Sequence[ReportRow],
    now: datetime,
    source: str,
    by: Actor,
) -> dict[str, int]:
    """`source`: the file, named as the reconciliation will list it (its name and SHA-256; the
    reconciliation's own ID is given once the comparison is saved, after the booking)."""
    advertiser = catalog.advertisers[advertiser_id]
    raws, when = [], now.isoformat(timespec="seconds")
    for row in rows:
        note = f"daily report {source}, line {row.line}: booked by {by.name} at {when}"
        for fields in _row_events(row, now):
            params = {
                "token": advertiser.token,
                "player_id": row.player_id,
                "click_id": row.tracking_code,
                "currency": row.currency or "",
                **fields,
            }
            raws.append(_raw(advertiser, params, now, note))
    counts: dict[str, int] = {}
    for start in range(0, len(raws), BOOK_CONCURRENCY):
        outcomes = await asyncio.gather(
            *(postbacks.receive(raw) for raw in raws[start : start + BOOK_CONCURRENCY])
        )
        for outcome in outcomes:
            key = outcome.result.value
            if outcome.result.value == "rejected" and outcome.reason is not None:
                key += ": " + outcome.reason.code
            counts[key] = counts.get(key, 0) + 1
    return counts


def _raw(advertiser: Any, params: dict[str, str], now: datetime, note: str) -> RawPostback:
    """A postback as the advertiser would send it: its token, signed if it signs, from an address
    its allowlist admits; `note` says where it comes from (kept in its conversion's history)."""
    query = urlencode({k: v for k, v in params.items() if v}).encode()
    timestamp = signature = ""
    if advertiser.signing_secret:
        timestamp = str(int(now.timestamp()))
        signature = "sha256=" + sign(advertiser.signing_secret, timestamp, query, b"")
    ip = str(advertiser.allowed_ips[0].network_address) if advertiser.allowed_ips else "127.0.0.1"
    return RawPostback(
        now,
        ip,
        "GET",
        query,
        timestamp=timestamp,
        signature=signature,
        channel=RECON,
        note=note,
    )


def _with_evidence(conn: Connection, catalog: Catalog, advertiser_id: int, items: list[Item]) -> list[Item]:
    """Refused postbacks of the players clickback misses, the postbacks that reported what the
    operator does not count (dispute evidence), and each CPA rule checked on the player's events
    where the two sides disagree on a CPA."""
    missing = {
        it.player_id: str(it.operator.get("tracking_code") or "")
        for it in items
        if it.kind is ItemKind.MISSING_IN_CLICKBACK
    }
    months = {it.month for it in items}
    refused = store.refusals(conn, advertiser_id, missing, months)
    extra = [it for it in items if it.kind is ItemKind.MISSING_AT_OPERATOR]
    conversion_ids = {c["id"] for it in extra for c in it.evidence.get("conversions", [])}
    reported = store.reported_by(conn, conversion_ids)
    disputed = {it.player_id for it in items if it.kind is ItemKind.CPA_DISAGREES}
    histories = store.cpa_histories(conn, advertiser_id, disputed) if disputed else {}
    out = []
    for it in items:
        if it.kind is ItemKind.MISSING_IN_CLICKBACK and it.player_id in refused:
            found = [
                {
                    "postback_id": r.postback_id,
                    "received_at": r.received_at,
                    "reason": r.reason,
                    "detail": r.detail,
                }
                for r in refused[it.player_id]
            ]
            it = replace(it, evidence={**it.evidence, "refused_postbacks": found})
        elif it.kind is ItemKind.MISSING_AT_OPERATOR:
            postbacks = sorted(
                {reported[c["id"]] for c in it.evidence.get("conversions", []) if c["id"] in reported}
            )
            it = replace(it, evidence={**it.evidence, "reported_by": postbacks})
        elif it.kind is ItemKind.CPA_DISAGREES and it.player_id in histories:
            checked = _rule_checks(catalog, histories[it.player_id])
            if checked:
                it = replace(it, evidence={**it.evidence, "rule_checks": checked})
        out.append(it)
    return out


def _rule_checks(catalog: Catalog, history: store.CpaHistory) -> list[dict[str, object]]:
    """The CPA rules that judge the player (those they qualified under, else the deal's in
    force), each checked on their events (none without CPA rules)."""
    if history.offer_id is None or history.affiliate_id is None:
        return []
    deal = history.kept or catalog.deal_for(history.offer_id, history.affiliate_id)
    if deal is None or deal.cpa is None:
        return []
    return [c.as_json() for c in check_rules(deal.cpa, history.events, deal.currency)]


async def save_mapping(
    db: Database, catalog: Catalog, advertiser_id: int, given: dict[str, Any], by: Actor, now: datetime
) -> ColumnMapping:
    """The advertiser's mapping from now on (checked against a file when one is imported)."""
    _advertiser(catalog, advertiser_id)
    try:
        mapping = mapping_from_json(given)
    except MappingError as exc:
        raise Problem(f"mapping: {exc}", where="mapping") from None
    if Field.PLAYER_ID not in mapping.columns:
        raise Problem("mapping: no column is mapped to player_id", where="mapping")

    def write(conn: Connection) -> None:
        audit.record_sync(conn, [_mapping_saved(conn, advertiser_id, mapping, by, now, always=True)], now)

    await db.run_write(write)
    return mapping


def _mapping_saved(
    conn: Connection, advertiser_id: int, mapping: ColumnMapping, by: Actor, now: datetime, always: bool
) -> Change | None:
    """The mapping saved for the advertiser, and its audit change (an import that used the saved
    mapping unchanged records none; a PUT always does)."""
    before = store.save_mapping(conn, advertiser_id, mapping, by.name, now)
    if not always and before == json.dumps(mapping.as_json()):
        return None
    before_json = json.loads(before) if before else None
    return change(
        by, Kind.RECONCILIATION_MAPPING, advertiser_id, "set_mapping", before_json, mapping.as_json()
    )


@dataclass(frozen=True, slots=True)
class Accepted:
    item_id: int
    # Each postback sent through intake: (event, result, reason code or "", conversion ID).
    postbacks: list[tuple[str, str, str, int | None]]
    conversion_id: int | None
    # Each conversion whose status was changed for it: (conversion ID, event, new status, why
    # not, or "" when it changed).
    changes: list[tuple[int, str, str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Change:
    conversion_id: int
    event: str
    status: Status


def _events_to_accept(item: dict[str, Any], now: datetime) -> list[dict[str, str]]:
    """The postbacks that book the operator's figure, as the advertiser would have sent them.
    A missing player's events name the tracking code as their click (it must be one of
    clickback's click IDs); a known player's are attributed through the player."""
    op, month = item["operator"], item["month"]
    kind = ItemKind(item["kind"])
    wanted: list[dict[str, str]] = []
    if kind is ItemKind.MISSING_IN_CLICKBACK:
        missing = item["evidence"].get("missing_events", [])
        if ("player" in missing or "registration" in missing) and op.get("registered_on"):
            wanted.append({"event": "registration", "event_time": op["registered_on"]})
        if ("player" in missing or "first_deposit" in missing) and op.get("ftd_on"):
            amount = op.get("ftd_amount") or op.get("deposits") or "0"
            wanted.append({"event": "first_deposit", "event_time": op["ftd_on"], "payout": amount})
    elif kind is ItemKind.AMOUNT_DIFFERS:
        # The correction is the latest event of the month (a deposit dated a day, i.e. its
        # midnight, before the player's first deposit would become their first).
        wanted += amounts_to_accept(item, _latest_in(month, now).isoformat())
    return wanted


def _latest_in(month: str, now: datetime) -> datetime:
    """The month's last second, or now in a month still running (the intake refuses an event
    time in the future)."""
    return min(period_bounds(month)[1] - timedelta(seconds=1), now)


def _changes_to_accept(conn: Connection, advertiser_id: int, item: dict[str, Any]) -> list[_Change]:
    """The status changes that make clickback's figure the operator's, as the advertiser's status
    postback would: what the operator does not count is rejected; a CPA the operator did not pay
    is rejected as a qualified_cpa conversion (the ledger reverses it, the deposits stand); a CPA
    the operator paid that a person rejected before is approved again."""
    kind, player, month = ItemKind(item["kind"]), item["player_id"], item["month"]
    if kind is ItemKind.MISSING_AT_OPERATOR:
        # Without the player in the report, none of their month counts; else the events it lacks.
        events = item["evidence"].get("missing_events") or store.MONEY_EVENTS
        found = store.month_conversions(conn, advertiser_id, player, month, events)
        return [_Change(c["id"], c["event"], Status.REJECTED) for c in found]
    if kind is not ItemKind.CPA_DISAGREES:
        return []
    cpa = store.qualified_cpa(conn, advertiser_id, player)
    if cpa is None:
        return []
    paid_by_operator = item["evidence"].get("qualification", {}).get("operator") == "paid"
    payable = Status(cpa["status"]) in PAYABLE
    if payable and not paid_by_operator:
        return [_Change(cpa["id"], cpa["event"], Status.REJECTED)]
    if not payable and paid_by_operator and can_move(Status(cpa["status"]), Status.APPROVED):
        return [_Change(cpa["id"], cpa["event"], Status.APPROVED)]
    return []


async def accept(
    db: Database, catalog: Catalog, postbacks: Postbacks, item_id: int, by: Actor, now: datetime
) -> Accepted:
    """The operator's figure of one item, made clickback's through the normal paths: what
    clickback lacks is booked through the postback intake (channel `recon`), what the operator
    does not count is rejected through the status-change use case; the conversions, their ledger
    entries, report counters and outbound postbacks follow as for the advertiser's own postbacks.
    Claimed once (a second accept is a 409); audited."""
    async with db.read() as conn:
        item = await conn.run_sync(lambda c: store.item_with_file(c, item_id))
    if item is None:
        raise Problem(f"reconciliation item {item_id} does not exist", 404)
    if item["accepted_at"] is not None:
        raise Problem(f"item {item_id} was accepted by {item['accepted_by']} already", 409)
    if ItemKind(item["kind"]) not in ACCEPTABLE:
        raise Problem(_nothing_to_accept(item), 409)
    advertiser = catalog.advertisers.get(item["advertiser_id"])
    if advertiser is None:
        raise Problem(f"advertiser {item['advertiser_id']} does not exist", 404)
    if ItemKind(item["kind"]) is ItemKind.AMOUNT_DIFFERS:
        item = await _as_now(db, catalog, advertiser.id, item)
    wanted = _events_to_accept(item, now)
    async with db.read() as conn:
        changes = await conn.run_sync(lambda c: _changes_to_accept(c, advertiser.id, item))
    if not wanted and not changes:
        raise Problem(_nothing_to_accept(item), 409)
    if not await db.run_write(lambda c: store.claim(c, item_id, by.name, now)):
        raise Problem(f"item {item_id} was accepted meanwhile", 409)
    because = _accepted_because(item, by, now)
    sent = await _send(postbacks, advertiser, item, wanted, now, because) if wanted else []
    changed = []
    for c in changes:
        by_hand = await postbacks.change_status(c.conversion_id, c.status, because, now, by)
        problem = by_hand.problem if by_hand.found else f"conversion {c.conversion_id} does not exist"
        changed.append((c.conversion_id, c.event, c.status.value, problem))
    booked = [c for _, result, _, c in sent if result in ("accepted", "duplicate") and c is not None]
    booked += [c for c, _, _, problem in changed if not problem]
    first = booked[0] if booked else None
    done = change(
        by,
        Kind.RECONCILIATION,
        item["reconciliation_id"],
        "accept",
        None,
        {
            "item": item_id,
            "player_id": item["player_id"],
            "month": item["month"],
            "file": item["file_name"],
            "lines": item["lines"],
            "postbacks": [
                {"event": e, "result": r, "reason": why, "conversion_id": c} for e, r, why, c in sent
            ],
            "changes": [
                {"conversion_id": c, "event": e, "status": st, "problem": problem}
                for c, e, st, problem in changed
            ],
        },
    )

    def settle(conn: Connection) -> None:
        if booked:
            store.mark_accepted(conn, item_id, first, by.name, now)
        else:
            store.unclaim(conn, item_id)  # nothing booked: it can be accepted again once fixed
        audit.record_sync(conn, [done], now)

    await db.run_write(settle)
    if not booked:
        reasons = ", ".join([f"{e}: {why}" for e, _, why, _ in sent] + [p for *_, p in changed])
        raise Problem(f"the operator's figure could not be booked ({reasons}); see the postback log", 409)
    return Accepted(item_id, sent, first, changed)


async def _as_now(db: Database, catalog: Catalog, advertiser_id: int, item: dict[str, Any]) -> dict[str, Any]:
    """The item with clickback's deposits, chargebacks and NGR as they are now, not as compared at
    the import: a postback that came since, or another file's item accepted for the same month,
    is then not corrected a second time. Refused (409) where clickback's figures cannot be
    brought into the operator's currency: a difference of two currencies is no amount to book."""
    key = (item["player_id"], item["month"])
    code = str(item["operator"].get("tracking_code") or "")
    currency = item["currency"]
    async with db.read() as conn:
        recorded = await conn.run_sync(
            lambda c: store.gather(
                c, catalog, advertiser_id, {key: (currency, code)}, {item["month"]}, currency, unnamed=False
            )
        )
    amounts, notes = amounts_now(recorded.figures[key], recorded.rates, currency)
    missing = [note for note in notes if note.endswith(UNCONVERTED)]
    if missing:
        raise Problem(
            f"clickback's figures cannot be brought into {currency} ({'; '.join(missing)}): record the "
            "month's exchange rate, or correct it (POST /api/fx-rates), and accept again",
            409,
        )
    return item | {"clickback": item["clickback"] | amounts}


def _accepted_because(item: dict[str, Any], by: Actor, now: datetime) -> str:
    """Where an accepted figure comes from, kept with what it books: the history reason of each
    conversion booked or changed (the audit log has the rest)."""
    lines = ", ".join(map(str, item["lines"][:20])) + (", …" if len(item["lines"]) > 20 else "")
    return (
        f"reconciliation {item['reconciliation_id']} item {item['id']} ({item['file_name'][:200]}"
        + (f", lines {lines}" if lines else "")
        + f"): the operator's figure for {item['player_id']} in {item['month']} accepted by "
        + f"{by.name} at {now.isoformat(timespec='seconds')}"
    )


def _nothing_to_accept(item: dict[str, Any]) -> str:
    kind = ItemKind(item["kind"])
    if kind is ItemKind.CPA_DISAGREES:
        rules = item["evidence"].get("qualification", {}).get("rules") or "none recorded"
        checked = [
            f"{c['rule']}: {c['detail']}" for c in item["evidence"].get("rule_checks", []) if not c["held"]
        ]
        return (
            "clickback's CPA rules did not hold for this player ("
            + rules
            + (f"; not held: {'; '.join(checked)}" if checked else "")
            + "): a CPA is booked only from the player's events, so send the event the rules lack "
            "or change the deal's rules"
        )
    if kind is ItemKind.AMOUNT_DIFFERS:
        op, cb = item["operator"], item["clickback"]
        return (
            f"no event would bring clickback's figures (deposits {cb['deposits']}, "
            f"{cb.get('chargebacks') or 0} of them charged back; NGR {cb['ngr']}) nearer the operator's "
            f"(deposits {op.get('deposits') or '-'}; NGR {op.get('ngr') or '-'}): what differs is the "
            "commission the deal gives for them (see the item's causes), or chargebacks the operator "
            "counts only in part. A commission is booked only from the player's events under the deal, "
            "and the ledger takes no entry by hand: change the deal, or send the activity that differs"
        )
    if kind is ItemKind.ATTRIBUTED_ELSEWHERE:
        return "a player attributed to another affiliate is not moved by reconciliation: see the evidence"
    return f"a {kind} item has no figure of the operator's to book"


async def _send(
    postbacks: Postbacks,
    advertiser: Any,
    item: dict[str, Any],
    wanted: list[dict[str, str]],
    now: datetime,
    note: str,
) -> list[tuple[str, str, str, int | None]]:
    """The operator's events through the postback intake, in order, each noting its source."""
    item_id = item["id"]
    code = str(item["operator"].get("tracking_code") or "")
    known = bool(item["clickback"].get("known"))
    sent: list[tuple[str, str, str, int | None]] = []
    for n, fields in enumerate(wanted):
        params = {
            "token": advertiser.token,
            "player_id": item["player_id"],
            "currency": item["currency"] or "",
            "txn_id": f"recon-{item_id}-{fields['event']}"
            if fields["event"] in ("deposit", "chargeback", "net_revenue")
            else "",
            **fields,
        }
        if not known:
            params["click_id"] = code
        raw = _raw(advertiser, params, now + timedelta(microseconds=n), note)
        outcome = await postbacks.receive(raw)
        reason = outcome.reason.code if outcome.reason else ""
        sent.append((fields["event"], outcome.result.value, reason, outcome.conversion_id))
        if n == 0 and not known and outcome.result.value == "accepted":
            known = True  # the player exists now: later events go through them
    return sent
