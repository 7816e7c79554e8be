"""GET /api/reports/active-players and /api/reports/active-players/cohorts: the request read into a
core.activity.ActivityQuery, the reply as JSON or CSV (docs/reports.md, "Active players")."""

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

from clickback.core.activity import (
    COHORT_MONTHS,
    ActivityQuery,
    activity_query,
    current_month,
    followed,
    month_label,
)
from clickback.core.model import Catalog
from clickback.core.statements import csv_cell
from clickback.core.verticals import DEFAULT_ACTIVITY, PRESETS
from clickback.store.activity import ActivePlayers, CohortRow


def read_query(
    catalog: Catalog,
    first: str,
    last: str,
    zone: str,
    advertisers: Sequence[int],
    offers: Sequence[int],
    affiliates: Sequence[int],
) -> ActivityQuery:
    """Raises ReportError naming the parameter at fault."""
    wanted = catalog.offers_filtered(advertisers, offers) if advertisers else sorted(set(offers))
    return activity_query(first, last, zone, tuple(wanted), tuple(sorted(set(affiliates))))


def activity_definitions() -> dict[str, list[str]]:
    return {v.value: sorted(p.activity) for v, p in PRESETS.items()} | {"default": sorted(DEFAULT_ACTIVITY)}


def _key(month: int, advertiser: int, offer: int, affiliate: int) -> dict[str, str | int]:
    return {"month": month_label(month), "advertiser": advertiser, "offer": offer, "affiliate": affiliate}


def _head(q: ActivityQuery) -> dict[str, object]:
    """What both replies say of themselves: the period, the zone and who counts as active."""
    return {
        "from": month_label(q.first),
        "to": month_label(q.last),
        "zone": q.zone,
        "activity": activity_definitions(),
    }


def active_json(q: ActivityQuery, found: ActivePlayers) -> dict[str, object]:
    return _head(q) | {
        "rows": [
            {
                "key": _key(r.month, r.advertiser_id, r.offer_id, r.affiliate_id),
                "active_players": r.active_players,
                "registrations": r.registrations,
                "ftds": r.ftds,
            }
            for r in found.rows
        ],
        "totals": {
            "active_players": found.active_players,
            "registrations": found.registrations,
            "ftds": found.ftds,
        },
    }


def _active(row: CohortRow, current: int) -> list[int | None]:
    return [n if followed(row.month, after, current) else None for after, n in enumerate(row.active)]


def cohorts_json(q: ActivityQuery, rows: Iterable[CohortRow], now: datetime) -> dict[str, object]:
    current = current_month(q.zone, now)
    return _head(q) | {
        "rows": [
            {
                "key": _key(r.month, r.advertiser_id, r.offer_id, r.affiliate_id),
                "registrations": r.registrations,
                "active": _active(r, current),
            }
            for r in rows
        ],
    }


_OWNERS = ["advertiser", "offer", "affiliate"]


def _csv(rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        # Every cell as the reports' CSV writes it: text a spreadsheet would run starts with "'".
        writer.writerow([csv_cell(cell) for cell in row])
    return buffer.getvalue()


def active_csv(q: ActivityQuery, found: ActivePlayers) -> str:
    """A row per month and owner, then the period's totals (each player once)."""
    head = [f"month in {q.zone}", *_OWNERS, "active_players", "registrations", "ftds"]
    body = [
        [
            month_label(r.month),
            r.advertiser_id,
            r.offer_id,
            r.affiliate_id,
            r.active_players,
            r.registrations,
            r.ftds,
        ]
        for r in found.rows
    ]
    total = ["total", "", "", "", found.active_players, found.registrations, found.ftds]
    return _csv([head, *body, total])


def cohorts_csv(q: ActivityQuery, rows: Iterable[CohortRow], now: datetime) -> str:
    """A row per registration month and owner; a month after it not begun yet is empty."""
    current = current_month(q.zone, now)
    head = [
        f"registration month in {q.zone}",
        *_OWNERS,
        "registrations",
        *(f"active_month_{n}" for n in range(COHORT_MONTHS + 1)),
    ]
    body = [
        [
            month_label(r.month),
            r.advertiser_id,
            r.offer_id,
            r.affiliate_id,
            r.registrations,
            *("" if n is None else n for n in _active(r, current)),
        ]
        for r in rows
    ]
    return _csv([head, *body])
