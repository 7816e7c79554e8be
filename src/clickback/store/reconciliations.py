"""Reconciliations' rows (ADR 20), and what clickback recorded of the players an operator's report
names: their conversions, commission entries, RevShare months and refused postbacks, gathered
for core/reconcile_compare.py in a few queries per thousand players."""

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from clickback.core.clickids import CLICK_ID_LEN
from clickback.core.commission import (
    CPA_EVENTS,
    LEDGER_SCALE,
    CpaRules,
    Deal,
    PlayerEvent,
    convert,
    period_bounds,
)
from clickback.core.lifecycle import PAYABLE
from clickback.core.model import Catalog
from clickback.core.money import money_text
from clickback.core.reconcile import BadRow, ColumnMapping, ReportRow
from clickback.core.reconcile_compare import ClickbackFigures, Item, Rates, Refusal, Summary, rate_note
from clickback.store import ledger, paging
from clickback.store.bulk import chunks, insert_rows
from clickback.store.db import Database
from clickback.store.fx import rate_on
from clickback.store.tables import (
    clicks,
    commissions,
    conversions,
    players,
    postbacks,
    reconciliation_items,
    reconciliation_mappings,
    reconciliation_rows,
    reconciliations,
    revshare_periods,
)

# One encoder for every row: json.dumps with options builds a new encoder a call, which cost
# more than the encoding at 100,000 lines.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
# Refused postbacks looked through for evidence of missing players, at most (the newest).
MAX_REFUSALS_READ = 50_000
# Evidence kept per item: a player's month has a handful of each; a runaway sender's are cut.
MAX_EVIDENCE = 20
_PAYABLE = sorted(s.value for s in PAYABLE)
MONEY_EVENTS = ("registration", "first_deposit", "deposit", "chargeback", "net_revenue")


# --- mappings ------------------------------------------------------------------------------------
async def saved_mapping(db: Database, advertiser_id: int) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(reconciliation_mappings).where(
                    reconciliation_mappings.c.advertiser_id == advertiser_id
                )
            )
        ).one_or_none()
    return None if row is None else dict(row._mapping) | {"mapping": json.loads(row.mapping)}


def save_mapping(
    conn: Connection, advertiser_id: int, mapping: ColumnMapping, by: str, now: datetime
) -> str | None:
    """The advertiser's mapping from now on; the one it replaces (JSON), None if it had none."""
    t = reconciliation_mappings
    before = conn.execute(select(t.c.mapping).where(t.c.advertiser_id == advertiser_id)).scalar_one_or_none()
    values = {"mapping": json.dumps(mapping.as_json()), "updated_at": now, "updated_by": by[:100]}
    if before is None:
        conn.execute(t.insert().values(advertiser_id=advertiser_id, **values))
    else:
        conn.execute(update(t).where(t.c.advertiser_id == advertiser_id).values(**values))
    return before


# --- imports -------------------------------------------------------------------------------------
async def by_hash(db: Database, advertiser_id: int, file_hash: str) -> dict[str, Any] | None:
    r = reconciliations.c
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(reconciliations).where(r.advertiser_id == advertiser_id, r.file_hash == file_hash)
            )
        ).one_or_none()
    return None if row is None else dict(row._mapping)


def known_keys(conn: Connection, advertiser_id: int, keys: Collection[str]) -> set[str]:
    """The row keys among `keys` an earlier import of the advertiser's holds."""
    t = reconciliation_rows.c
    found: set[str] = set()
    for batch in chunks(keys):
        found.update(
            conn.execute(
                select(t.row_key).where(t.advertiser_id == advertiser_id, t.row_key.in_(batch))
            ).scalars()
        )
    return found


@dataclass(frozen=True, slots=True)
class NewReconciliation:
    advertiser_id: int
    file_name: str
    file_hash: str
    file_kind: str
    period: str | None
    mapping: Mapping[str, Any]
    reading: Mapping[str, Any]
    created_at: datetime
    created_by: str
    user_id: int | None
    lines: int
    skipped: int


@dataclass(frozen=True, slots=True)
class Rows:
    """A reconciliation's lines and items as their tables take them (reconciliation_id to fill)."""

    lines: list[dict[str, Any]]
    items: list[dict[str, Any]]


def rows_of(
    new: NewReconciliation,
    rows: Sequence[tuple[ReportRow, str]],
    bad: Sequence[tuple[BadRow, Sequence[str]]],
    items: Sequence[Item],
) -> Rows:
    """The rows to write, built outside the write transaction: `rows` with their keys."""
    adv = new.advertiser_id
    lines = [
        {
            "reconciliation_id": 0,
            "advertiser_id": adv,
            "line": row.line,
            "row_key": key,
            "data": _json(row.as_json()),
            "reason": None,
        }
        for row, key in rows
    ] + [
        {
            "reconciliation_id": 0,
            "advertiser_id": adv,
            "line": b.line,
            "row_key": None,
            "data": _json([c[:512] for c in cells[:200]]),
            "reason": b.reason[:512],
        }
        for b, cells in bad
    ]
    return Rows(lines, [_item_row(0, it) for it in items])


def unique_violations(db: Database) -> tuple[type[BaseException], ...]:
    """What a broken unique key raises here: SQLAlchemy's error, and the drivers' own where
    insert_rows uses their cursor (sqlite3's, asyncpg's as SQLAlchemy adapts it)."""
    engines = [db.engine.sync_engine] + ([db.sync_engine] if db.sync_engine is not None else [])
    return (IntegrityError, *(e.dialect.loaded_dbapi.IntegrityError for e in engines))


def save(
    conn: Connection,
    new: NewReconciliation,
    rows: Rows,
    imported: int,
    bad: int,
    items: int,
    summary: Sequence[Summary],
) -> int:
    """The reconciliation, its lines (good and bad) and its items, in the caller's transaction."""
    result = conn.execute(
        reconciliations.insert().values(
            advertiser_id=new.advertiser_id,
            file_name=new.file_name[:255],
            file_hash=new.file_hash,
            file_kind=new.file_kind,
            period=new.period,
            mapping=json.dumps(new.mapping),
            reading=json.dumps(new.reading),
            status="done",
            created_at=new.created_at,
            created_by=new.created_by[:100],
            user_id=new.user_id,
            lines=new.lines,
            imported=imported,
            skipped=new.skipped,
            bad=bad,
            items=items,
            summary=json.dumps([s.as_json() for s in summary]),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    rid = int(key[0])
    for table, written in ((reconciliation_rows, rows.lines), (reconciliation_items, rows.items)):
        for row in written:
            row["reconciliation_id"] = rid
        # The driver's own executemany (store/bulk.py): SQLAlchemy's per-row parameter handling
        # cost more than the database did for 100,000 lines.
        for batch in chunks(written, 5000):
            insert_rows(conn, table, batch)
    return rid


def _item_row(rid: int, it: Item) -> dict[str, Any]:
    return {
        "reconciliation_id": rid,
        "player_id": it.player_id,
        "month": it.month,
        "kind": it.kind.value,
        "affiliate_id": it.affiliate_id,
        "currency": it.currency,
        "difference": it.difference.quantize(LEDGER_SCALE),
        "operator": _json(it.operator),
        "clickback": _json(it.clickback),
        "causes": _json([[c.value, f"{a:f}", d] for c, a, d in it.causes]),
        "evidence": _json(it.evidence),
        "lines": ",".join(map(str, it.lines))[:512],
    }


# --- reading them back ---------------------------------------------------------------------------
def decoded(row: Mapping[str, Any]) -> dict[str, Any]:
    """A reconciliation's row with its JSON columns as values."""
    out = dict(row)
    for name in ("mapping", "reading", "summary"):
        if name in out:
            out[name] = json.loads(out[name])
    return out


def decoded_item(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in ("operator", "clickback", "causes", "evidence"):
        out[name] = json.loads(out[name])
    out["lines"] = [int(n) for n in out["lines"].split(",") if n]
    out["causes"] = [{"cause": c, "amount": a, "detail": d} for c, a, d in out["causes"]]
    return out


async def page_of(db: Database, advertiser_id: int | None, cursor: str | None, limit: int) -> paging.Page:
    r = reconciliations.c
    query = paging.equal(select(reconciliations), {r.advertiser_id: advertiser_id})
    page = await paging.page(db, query, [paging.Key(r.id, descending=True)], cursor, limit)
    return paging.Page([decoded(row) for row in page.rows], page.next_cursor)


async def get(db: Database, reconciliation_id: int) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (
            await conn.execute(select(reconciliations).where(reconciliations.c.id == reconciliation_id))
        ).one_or_none()
    return None if row is None else decoded(dict(row._mapping))


async def items_page(
    db: Database, reconciliation_id: int, kind: str | None, cursor: str | None, limit: int
) -> paging.Page:
    i = reconciliation_items.c
    query = paging.equal(select(reconciliation_items), {i.reconciliation_id: reconciliation_id, i.kind: kind})
    page = await paging.page(db, query, [paging.Key(i.id)], cursor, limit)
    return paging.Page([decoded_item(row) for row in page.rows], page.next_cursor)


async def all_items(db: Database, reconciliation_id: int) -> list[dict[str, Any]]:
    i = reconciliation_items.c
    async with db.read() as conn:
        rows = await conn.execute(
            select(reconciliation_items).where(i.reconciliation_id == reconciliation_id).order_by(i.id)
        )
        return [decoded_item(dict(r._mapping)) for r in rows]


async def bad_rows(db: Database, reconciliation_id: int, limit: int) -> list[dict[str, Any]]:
    t = reconciliation_rows.c
    async with db.read() as conn:
        rows = await conn.execute(
            select(t.line, t.reason)
            .where(t.reconciliation_id == reconciliation_id, t.row_key.is_(None))
            .order_by(t.line)
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]


def item_with_file(conn: Connection, item_id: int) -> dict[str, Any] | None:
    """An item with its reconciliation's advertiser and file name."""
    i = reconciliation_items
    query = select(i, reconciliations.c.advertiser_id, reconciliations.c.file_name).join(
        reconciliations, reconciliations.c.id == i.c.reconciliation_id
    )
    row = conn.execute(query.where(i.c.id == item_id)).one_or_none()
    return None if row is None else decoded_item(dict(row._mapping))


def claim(conn: Connection, item_id: int, by: str, now: datetime) -> bool:
    """Take the item for accepting: a conditional UPDATE, so that two people (or processes)
    accepting it together book it once."""
    i = reconciliation_items.c
    done = conn.execute(
        update(reconciliation_items)
        .where(i.id == item_id, i.accepted_at.is_(None))
        .values(accepted_at=now, accepted_by=by[:100])
    )
    return bool(done.rowcount == 1)


def unclaim(conn: Connection, item_id: int) -> None:
    i = reconciliation_items.c
    conn.execute(
        update(reconciliation_items)
        .where(i.id == item_id)
        .values(accepted_at=None, accepted_by=None, accepted_conversion_id=None)
    )


def month_conversions(
    conn: Connection, advertiser_id: int, player_id: str, month: str, events: Collection[str]
) -> list[dict[str, Any]]:
    """The player's payable conversions of `events` in `month` (by event time; NGR by its
    period), as the comparison counted them: what rejecting the operator's "not ours" touches."""
    c = conversions.c
    query = select(c.id, c.event, c.status, c.event_at, c.period).where(
        c.advertiser_id == advertiser_id,
        c.player_id == player_id,
        ~c.test,
        c.status.in_(_PAYABLE),
        c.event.in_(sorted(events)),
    )
    rows = [dict(r) for r in conn.execute(query.order_by(c.id)).mappings()]
    return [r for r in rows if _month_of(r) == month]


def qualified_cpa(conn: Connection, advertiser_id: int, player_id: str) -> dict[str, Any] | None:
    """The player's qualified_cpa conversion (one per player: its duplicate key is the player's)."""
    c = conversions.c
    query = select(c.id, c.event, c.status).where(
        c.advertiser_id == advertiser_id,
        c.player_id == player_id,
        c.event == "qualified_cpa",
        ~c.test,
    )
    row = conn.execute(query.order_by(c.id)).mappings().first()
    return None if row is None else dict(row)


@dataclass(frozen=True, slots=True)
class CpaHistory:
    """A player's attribution and the events CPA rules read: payable, in the deal's currency;
    `kept`: the CPA terms they qualified under, which judge them whatever the deal is now."""

    offer_id: int | None
    affiliate_id: int | None
    events: list[PlayerEvent]
    kept: Deal | None = None


def cpa_histories(conn: Connection, advertiser_id: int, player_ids: Collection[str]) -> dict[str, CpaHistory]:
    """The players' events as service/commissions gives them to the CPA rules (every month: the
    rules count from the registration), for the rules' evidence of a CPA disagreement."""
    p, c = players.c, conversions.c
    out: dict[str, CpaHistory] = {}
    for batch in chunks(sorted(player_ids)):
        query = select(p.player_id, p.offer_id, p.affiliate_id, p.cpa_currency, p.cpa_terms).where(
            p.advertiser_id == advertiser_id, p.player_id.in_(batch)
        )
        for player, offer, affiliate, currency, terms in conn.execute(query):
            out[player] = CpaHistory(offer, affiliate, [], ledger.kept_cpa_deal(currency, terms))
        query = select(c.id, c.player_id, c.event, c.event_at, c.deal_amount).where(
            c.advertiser_id == advertiser_id,
            c.player_id.in_(batch),
            ~c.test,
            c.status.in_(_PAYABLE),
            c.event.in_(sorted(CPA_EVENTS)),
        )
        for row in conn.execute(query.order_by(c.id)):
            if row.player_id in out:
                amount = row.deal_amount if row.deal_amount is not None else Decimal(0)
                out[row.player_id].events.append(PlayerEvent(row.id, row.event, row.event_at, amount))
    return out


def mark_accepted(conn: Connection, item_id: int, conversion_id: int | None, by: str, now: datetime) -> None:
    i = reconciliation_items.c
    conn.execute(
        update(reconciliation_items)
        .where(i.id == item_id)
        .values(accepted_conversion_id=conversion_id, accepted_at=now, accepted_by=by[:100])
    )


# --- what clickback recorded -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Recorded:
    figures: dict[tuple[str, str], ClickbackFigures]
    rates: Rates


def gather(
    conn: Connection,
    catalog: Catalog,
    advertiser_id: int,
    wanted: Mapping[tuple[str, str], tuple[str | None, str]],
    months: Collection[str],
    default_currency: str | None,
    *,
    unnamed: bool = True,
) -> Recorded:
    """Clickback's figures for each (player, month) of `wanted` (its value: the operator's
    currency and tracking code), and (`unnamed`) for each player clickback counts in `months` that
    the report does not name. Deposits and NGR come in the operator's currency (the conversion's own amount
    when it is in it, else the deal's when that is, else converted at the month's rate); CPA and
    RevShare in the deal's currency, with the rates the comparison needs to bring them over."""
    figures: dict[tuple[str, str], ClickbackFigures] = {}
    currency_of = {key: op_currency or default_currency for key, (op_currency, _) in wanted.items()}
    rates: dict[tuple[str, str, str], Decimal | None] = {}

    def rate(base: str, quote: str, month: str) -> Decimal | None:
        key = (base, quote, month)
        if key not in rates:
            last = period_bounds(month)[1] - timedelta(days=1)
            rates[key] = rate_on(conn, base, quote, last.date())
        return rates[key]

    # Players the report names, and those with payable conversions in its months.
    names = {player for player, _ in wanted}
    if unnamed:
        names |= _active_players(conn, advertiser_id, months)
    p = players.c
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(names)):
        query = select(players).where(p.advertiser_id == advertiser_id, p.player_id.in_(batch))
        found.update((r.player_id, dict(r._mapping)) for r in conn.execute(query))
    for (player, month), (_, _code) in wanted.items():
        figures[(player, month)] = _figures(player, month, found.get(player), currency_of[(player, month)])
    for player, row in found.items():
        for month in months:
            if (player, month) not in figures:
                figures[(player, month)] = _figures(player, month, row, default_currency)

    by_row_id = {row["id"]: row for row in found.values()}
    _add_conversions(conn, advertiser_id, figures, found, months, rate)
    _add_ledger(conn, figures, by_row_id, months)
    _add_revshare(conn, catalog, figures, found, months)
    _add_rules(catalog, figures, found)
    _add_codes(conn, catalog, figures, {key: code for key, (_, code) in wanted.items()})
    # Players clickback knows of only from another month: nothing to compare in these months.
    for key in [k for k, f in figures.items() if k not in wanted and not f.active]:
        del figures[key]
    needed: dict[tuple[str, str, str], Decimal] = {}
    for f in figures.values():
        target = currency_of.get((f.player_id, f.month)) or f.currency
        if f.ledger_currency and target and f.ledger_currency != target:
            found_rate = rate(f.ledger_currency, target, f.month)
            if found_rate is not None:
                needed[(f.ledger_currency, target, f.month)] = found_rate
    return Recorded(figures, needed)


def _figures(
    player: str, month: str, row: Mapping[str, Any] | None, currency: str | None
) -> ClickbackFigures:
    f = ClickbackFigures(player, month, currency=currency)
    if row is not None:
        f.known = True
        f.affiliate_id = row["affiliate_id"]
        f.click_id = row["click_id"]
        if row["qualified_at"] is not None:
            f.qualified_on = row["qualified_at"].date()
    return f


def _active_players(conn: Connection, advertiser_id: int, months: Collection[str]) -> set[str]:
    c = conversions.c
    found: set[str] = set()
    for month in months:
        start, end = period_bounds(month)
        query = (
            select(c.player_id)
            .distinct()
            .where(
                c.advertiser_id == advertiser_id,
                c.player_id != "",
                ~c.test,
                c.status.in_(_PAYABLE),
                c.event.in_(MONEY_EVENTS),
                or_(
                    and_(c.event != "net_revenue", c.event_at >= start, c.event_at < end),
                    and_(c.event == "net_revenue", c.period == month),
                ),
            )
        )
        found.update(conn.execute(query).scalars())
    return found


def _month_of(row: Mapping[str, Any]) -> str:
    if row["event"] == "net_revenue" and row["period"]:
        return str(row["period"])
    at: datetime = row["event_at"]
    return f"{at.year:04d}-{at.month:02d}"


def _add_conversions(
    conn: Connection,
    advertiser_id: int,
    figures: dict[tuple[str, str], ClickbackFigures],
    found: Mapping[str, Mapping[str, Any]],
    months: Collection[str],
    rate: Any,
) -> None:
    c = conversions.c
    columns = [c.id, c.player_id, c.event, c.status, c.payout, c.currency, c.deal_amount, c.deal_currency]
    columns += [c.fx_rate, c.period, c.event_at, c.txn_id, c.affiliate_id, c.offer_id, c.channel]
    for batch in chunks(sorted(found)):
        query = select(*columns).where(
            c.advertiser_id == advertiser_id,
            c.player_id.in_(batch),
            ~c.test,
            c.status.in_(_PAYABLE),
            c.event.in_(MONEY_EVENTS),
        )
        for found_row in conn.execute(query.order_by(c.id)).mappings():
            row = dict(found_row)
            month = _month_of(row)
            f = figures.get((row["player_id"], month))
            if f is None:
                continue
            amount = _in_currency(row, f, month, rate)
            event = row["event"]
            if event == "registration":
                f.registered_on = f.registered_on or row["event_at"].date()
            elif event == "first_deposit":
                f.ftd_on = row["event_at"].date()
                f.ftd_amount += amount
                f.deposits += amount
            elif event == "deposit":
                f.deposits += amount
            elif event == "chargeback":
                f.chargebacks += amount
            elif event == "net_revenue":
                f.ngr += amount
            if len(f.conversions) < MAX_EVIDENCE:
                f.conversions.append(
                    {
                        "id": row["id"],
                        "event": event,
                        "status": row["status"],
                        "event_at": row["event_at"].isoformat(),
                        "txn_id": row["txn_id"],
                        "payout": _text(row["payout"]),
                        "currency": row["currency"],
                        "deal_amount": _text(row["deal_amount"]),
                        "deal_currency": row["deal_currency"],
                        "fx_rate": row["fx_rate"],
                        "channel": row["channel"],
                    }
                )


def _in_currency(row: Mapping[str, Any], f: ClickbackFigures, month: str, rate: Any) -> Decimal:
    payout: Decimal = row["payout"] or Decimal(0)
    if f.currency is None:
        f.currency = row["currency"]
    if row["currency"] == f.currency or row["currency"] is None:
        return payout
    if row["deal_currency"] == f.currency and row["deal_amount"] is not None:
        return Decimal(row["deal_amount"])
    found = rate(row["currency"], f.currency, month)
    converted = None if found is None else convert(payout, found)
    if converted is None:
        note = rate_note(row["currency"], f.currency, month, found, too_large=found is not None)
        if note not in f.unconverted:
            f.unconverted.append(note)
        return payout
    return converted


def _add_ledger(
    conn: Connection,
    figures: dict[tuple[str, str], ClickbackFigures],
    by_row_id: Mapping[int, Mapping[str, Any]],
    months: Collection[str],
) -> None:
    """CPA entries are the player's own (a reversal too, in the month it happened)."""
    m = commissions.c
    for batch in chunks(sorted(by_row_id)):
        query = select(m.id, m.player, m.kind, m.period, m.amount, m.currency, m.fx_rate, m.status, m.detail)
        query = query.where(m.player.in_(batch), m.kind == "cpa")
        for row in conn.execute(query.order_by(m.id)).mappings():
            player = by_row_id[row["player"]]["player_id"]
            f = figures.get((player, row["period"]))
            if f is None:
                continue
            f.ledger_currency = row["currency"]
            f.cpa += row["amount"]
            if len(f.entries) < MAX_EVIDENCE:
                f.entries.append(
                    {
                        "id": row["id"],
                        "kind": row["kind"],
                        "amount": _text(row["amount"]),
                        "currency": row["currency"],
                        "fx_rate": row["fx_rate"],
                        "status": row["status"],
                        "detail": row["detail"],
                    }
                )


def _add_revshare(
    conn: Connection,
    catalog: Catalog,
    figures: dict[tuple[str, str], ClickbackFigures],
    found: Mapping[str, Mapping[str, Any]],
    months: Collection[str],
) -> None:
    """RevShare is booked per affiliate, offer and month: a player's part is the month's earnings
    in proportion to the player's NGR in the deal's currency (the parts add up to the month)."""
    r = revshare_periods.c
    affiliates = {row["affiliate_id"] for row in found.values() if row["affiliate_id"] is not None}
    months_rows: dict[tuple[int, int, str], Mapping[str, Any]] = {}
    for batch in chunks(sorted(affiliates)):
        query = select(revshare_periods).where(r.period.in_(list(months)), r.affiliate_id.in_(batch))
        for found_row in conn.execute(query).mappings():
            months_rows[(found_row["affiliate_id"], found_row["offer_id"], found_row["period"])] = dict(
                found_row
            )
    if not months_rows:
        return
    c = conversions.c
    ngr: dict[tuple[str, str], Decimal] = {}
    for batch in chunks(sorted(found)):
        query = select(c.player_id, c.period, func.sum(c.deal_amount)).where(
            c.player_id.in_(batch),
            c.event == "net_revenue",
            c.period.in_(list(months)),
            ~c.test,
            c.status.in_(_PAYABLE),
            c.affiliate_id.is_not(None),
        )
        for player, period, units in conn.execute(query.group_by(c.player_id, c.period)):
            ngr[(player, period)] = Decimal(units or 0)  # summed as Money: a Decimal
    for (player, month), f in figures.items():
        row = found.get(player)
        if row is None or row["affiliate_id"] is None:
            continue
        period = months_rows.get((row["affiliate_id"], row["offer_id"], month))
        if period is None:
            continue
        f.ledger_currency = f.ledger_currency or period["currency"]
        f.revshare_percent = Decimal(period["percent"])
        f.carry_in = period["carry_in"]
        mine = ngr.get((player, month), Decimal(0))
        if period["ngr"]:
            f.revshare = (period["earnings"] * mine / period["ngr"]).quantize(LEDGER_SCALE, ROUND_HALF_EVEN)
        f.entries.append(
            {
                "kind": "revshare",
                "month": month,
                "ngr": _text(period["ngr"]),
                "player_ngr": _text(mine),
                "carry_in": _text(period["carry_in"]),
                "percent": period["percent"],
                "earnings": _text(period["earnings"]),
                "currency": period["currency"],
            }
        )


def _add_rules(
    catalog: Catalog, figures: dict[tuple[str, str], ClickbackFigures], found: Mapping[str, Mapping[str, Any]]
) -> None:
    for (player, _), f in figures.items():
        row = found.get(player)
        if row is None or row["affiliate_id"] is None or row["offer_id"] is None:
            continue
        deal = catalog.deal_for(row["offer_id"], row["affiliate_id"])
        # The rules that judge the player: those they qualified under, whatever the deal is now.
        judged = ledger.kept_cpa_deal(row["cpa_currency"], row["cpa_terms"]) or deal
        if judged is not None and judged.cpa is not None:
            f.cpa_rules = describe_rules(judged, judged.cpa)
        if deal is not None:
            f.ledger_currency = f.ledger_currency or deal.currency


def describe_rules(deal: Deal, rules: CpaRules) -> str:
    def money(amount: Decimal) -> str:
        return money_text(amount, deal.currency)

    parts = [f"CPA {money(rules.amount)} {deal.currency}"]
    if rules.require_registration:
        parts.append("registration")
    if rules.require_verification:
        parts.append("verification")
    if rules.ftd_min is not None:
        parts.append(f"first deposit ≥ {money(rules.ftd_min)}")
    if rules.deposits_min is not None:
        days = f" within {rules.deposits_days} days" if rules.deposits_days else ""
        parts.append(f"deposits ≥ {money(rules.deposits_min)}{days}")
    if rules.wager_min is not None:
        parts.append(f"wagered ≥ {money(rules.wager_min)}")
    if rules.window_days is not None:
        parts.append(f"all within {rules.window_days} days")
    return "; ".join(parts)


def _add_codes(
    conn: Connection,
    catalog: Catalog,
    figures: dict[tuple[str, str], ClickbackFigures],
    codes: Mapping[tuple[str, str], str],
) -> None:
    """Whose the operator's tracking code is: a link's code, else a click ID of clickback's."""
    click_ids = {
        code for code in codes.values() if len(code) == CLICK_ID_LEN and code not in catalog.links_by_code
    }
    owner: dict[str, int] = {}
    for batch in chunks(sorted(click_ids)):
        query = select(clicks.c.click_id, clicks.c.affiliate_id).where(clicks.c.click_id.in_(batch))
        owner.update((cid, aff) for cid, aff in conn.execute(query))
    for key, code in codes.items():
        link = catalog.links_by_code.get(code)
        affiliate = link.affiliate_id if link is not None else owner.get(code)
        f = figures[key]
        f.code_affiliate_id = affiliate
        f.code_is_ours = affiliate is not None


def refusals(
    conn: Connection, advertiser_id: int, players_codes: Mapping[str, str], months: Collection[str]
) -> dict[str, list[Refusal]]:
    """Refused postbacks naming each player (or their tracking code as the click ID), from the
    advertiser's log around the months: the newest MAX_REFUSALS_READ, matched here."""
    if not players_codes or not months:
        return {}
    start = period_bounds(min(months))[0] - timedelta(days=62)
    end = period_bounds(max(months))[1] + timedelta(days=62)
    by_code = {code: player for player, code in players_codes.items() if code}
    b = postbacks.c
    query = (
        select(b.id, b.received_at, b.reason, b.detail, b.click_id, b.query, b.body)
        .where(
            b.advertiser_id == advertiser_id,
            b.result == "rejected",
            b.received_at >= start,
            b.received_at < end,
        )
        .order_by(b.id.desc())
        .limit(MAX_REFUSALS_READ)
    )
    out: dict[str, list[Refusal]] = {}
    for row in conn.execute(query):
        named = _player_named(row.query) or _player_named(row.body)
        player = named if named in players_codes else by_code.get(row.click_id)
        if player is None:
            continue
        found = out.setdefault(player, [])
        if len(found) < MAX_EVIDENCE:
            found.append(Refusal(row.id, row.received_at.isoformat(), row.reason or "", row.detail))
    return out


def _player_named(text: str) -> str:
    for name, value in parse_qsl(text or "", keep_blank_values=True):
        if name.lower() in ("player_id", "playerid", "player", "customer_id"):
            return value
    return ""


def reported_by(conn: Connection, conversion_ids: Collection[int]) -> dict[int, int]:
    """The postback that first reported each conversion (dispute evidence)."""
    b = postbacks.c
    out: dict[int, int] = {}
    for batch in chunks(sorted(conversion_ids)):
        query = (
            select(b.conversion_id, func.min(b.id))
            .where(b.conversion_id.in_(batch), b.result == "accepted")
            .group_by(b.conversion_id)
        )
        out.update((cid, pid) for cid, pid in conn.execute(query))
    return out


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{amount:f}"
