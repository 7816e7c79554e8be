"""The rows a group of postbacks reads and writes, in the one transaction that commits them all.

The use case (service/postbacks.py) decides; this module reads and writes rows, as synchronous
code inside `Database.run_write`. A statement costs far more than a row within a statement, so
the group's reads are made up front, for all of its postbacks at once (clicks, players, the
conversions their duplicate keys name, the players' events), and its writes are collected and
written at the end, one statement per table and kind of change whatever the group's size. The
ids of new rows are reserved first (Database.reserve_ids), so rows written together can point
at each other. Rows read or written are kept once, by id: every later look in the group sees
the change.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, bindparam, delete, select, update

from clickback.core.commission import MonthShare, PlayerEvent, month_share
from clickback.core.intake import S2S, RawPostback, is_claim
from clickback.core.lifecycle import PAYABLE, Status
from clickback.core.limits import MAX_RAW_LOG_LEN
from clickback.core.metrics import Contribution, conversion_contributions, ledger_contribution
from clickback.core.model import Catalog, Click
from clickback.core.outcome import Outcome
from clickback.core.redact import known_secrets, mask_known, redact_body, redact_query, scrubbed
from clickback.store import fx, ledger
from clickback.store.bulk import SHARE, insert_all, select_keys, select_keys_together
from clickback.store.catalog import VERSION_ROW, StaleCatalog
from clickback.store.clicks import clicks_from_rows
from clickback.store.db import Database
from clickback.store.rollups import CLICK_TIME, EVENT_TIME, Rollups, row_values
from clickback.store.tables import (
    catalog_version,
    clicks,
    conversion_history,
    conversions,
    outbound_deliveries,
    players,
    postback_signatures,
    postbacks,
)

# (advertiser_id, dedupe_key, dedupe_event, test): a conversion's duplicate key. A test
# conversion's (ADR 13) is never a real one's.
Key = tuple[int, str, str, bool]
# The same without the test flag: what a group reads by, before it knows which clicks are tests.
LookupKey = tuple[int, str, str]
# (advertiser_id, player_id)
PlayerKey = tuple[int, str]
# (advertiser_id, signature) of a signed postback
SignatureKey = tuple[int, str]
# A LookupKey's columns: the rows of both flags are read (and locked) at once.
_LOOKUP_KEY = ("advertiser_id", "dedupe_key", "dedupe_event")
_PLAYER_KEY = ("advertiser_id", "player_id")
MAX_DEDUPE_KEY_LEN = 300  # conversions.dedupe_key


@dataclass(slots=True)
class Player:
    """A player row as the group changes it."""

    id: int
    advertiser_id: int
    player_id: str
    click_id: str
    affiliate_id: int | None
    offer_id: int | None
    link_id: int | None
    country: str
    sub1: str
    first_seen_at: datetime
    registered_at: datetime | None = None
    ftd_conversion_id: int | None = None
    ftd_at: datetime | None = None
    qualified_at: datetime | None = None
    cpa_terms: str | None = None
    cpa_currency: str | None = None


_PLAYER_COLUMNS = [f.name for f in fields(Player)]
# (affiliate_id, offer_id, period): a RevShare month.
MonthKey = tuple[int, int, str]


class Known(NamedTuple):
    """What a process last read of an affiliate's RevShare months on an offer, under a catalog
    version: the booked months with their currencies, and the currencies any NGR report was
    priced in (Recording.booked_months)."""

    version: int
    months: dict[str, str]
    reported: frozenset[str]


# By (affiliate, offer): kept by service.postbacks across groups.
KnownMonths = dict[tuple[int, int], Known]


@dataclass(slots=True)
class MonthChange:
    """How a group changed a RevShare month's inputs, and the conversions that changed them."""

    ngr: Decimal = Decimal(0)
    ftds: int = 0
    causes: list[int] = field(default_factory=list)
    # Said in the entries instead of the causes when no change of theirs moved the month (a
    # correction of its kept inputs: store.ledger.take_due).
    why: str = ""


def _share(row: Mapping[str, Any]) -> MonthShare | None:
    if row.get("test"):
        return None  # a test conversion earns nothing (ADR 13)
    return month_share(
        row["event"],
        row["status"],
        row["affiliate_id"],
        row["offer_id"],
        row["period"],
        row["event_at"],
        row["deal_amount"],
        claim=is_claim(row["channel"], row["confirmed"]),
    )


class Recording:
    def __init__(
        self,
        db: Database,
        conn: Connection,
        catalog: Catalog | None = None,
        known_months: KnownMonths | None = None,
    ) -> None:
        self.db = db
        # Offers' listed payouts: the revenue of player money (core.metrics).
        self.catalog = catalog
        self.conn = conn
        self._catalog_checked = catalog is None
        self._by_id: dict[int, dict[str, Any]] = {}
        self._by_key: dict[Key, dict[str, Any]] = {}
        self._looked_up: set[LookupKey] = set()
        self._players: dict[PlayerKey, Player | None] = {}
        self._player_rows: dict[PlayerKey, dict[int, dict[str, Any]]] | None = None
        self._rates: dict[tuple[str, str, date], Decimal | None] = {}
        self._booked_months: dict[tuple[int, int], dict[str, str]] = {}
        self._known_months: KnownMonths = {} if known_months is None else known_months
        self._reports_currencies: dict[MonthKey, str | None] = {}
        self._ids: dict[str, list[int]] = {}
        self._given: dict[str, int] = {}
        self._new_players: list[Player] = []
        self._changed_players: dict[int, dict[str, Any]] = {}
        self._new_conversions: list[dict[str, Any]] = []
        self._changed_conversions: dict[int, dict[str, Any]] = {}
        self._logs: list[dict[str, Any]] = []
        self._signatures: set[SignatureKey] = set()
        self._new_signatures: list[dict[str, Any]] = []
        self._history: list[dict[str, Any]] = []
        self.rollups = Rollups(db.local_days)
        # Ledger entries appended, by kind (counted once the transaction has committed).
        self.entries: Counter[str] = Counter()
        # Every change to a conversion moves its share of a RevShare month here (never missed:
        # add_conversion and change_conversion are the only ways a group changes one).
        self.months: dict[MonthKey, MonthChange] = {}
        # What outbound postbacks announce, in order: a conversion (the row as the group leaves
        # it) and the status it reached; RevShare booked per causing conversion, per currency (a
        # late report's cascade can reach a month of another currency).
        self.notices: list[tuple[dict[str, Any], Status]] = []
        self.revshare: dict[int, dict[str, Decimal]] = {}
        self.outbound: list[dict[str, Any]] = []
        self.enqueued = 0
        # Conversions this transaction made: nothing of theirs is in the outbox before it.
        self.created: set[int] = set()

    # --- reads, for a whole group at once ---------------------------------------------------

    def clicks(self, ids: Sequence[str]) -> dict[str, Click]:
        return self.load(ids, ())

    def load(
        self, click_ids: Sequence[str], keys: Iterable[LookupKey], signatures: Iterable[SignatureKey] = ()
    ) -> dict[str, Click]:
        """The clicks named, load_conversions(keys), and which of the signatures were seen
        before (first_use), in one round trip on PostgreSQL; the first time, check_catalog's
        read too."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._looked_up]
        self._looked_up.update(wanted)
        version, found_clicks, found, seen = select_keys_together(
            self.conn,
            [
                (catalog_version, ("id",), [] if self._catalog_checked else [(VERSION_ROW,)], SHARE),
                (clicks, ("click_id",), [(i,) for i in click_ids], False),
                (conversions, _LOOKUP_KEY, wanted, True),
                (postback_signatures, ("advertiser_id", "signature"), signatures, False),
            ],
        )
        if not self._catalog_checked:
            self._catalog_checked = True
            assert self.catalog is not None
            if version[0]["version"] != self.catalog.version:
                raise StaleCatalog(version[0]["version"])
        for row in found:
            self._remember(row)
        self._signatures |= {(row["advertiser_id"], row["signature"]) for row in seen}
        return clicks_from_rows(found_clicks)

    def check_catalog(self) -> None:
        """That the catalog this transaction decides with (deals, offers' payouts, templates) is
        the one the database holds, else StaleCatalog: another process may have changed it less
        than a refresh ago, and a deposit priced without the deal set then would be left unpriced
        for good. Made by a group's first load (no round trip of its own), before anything is
        decided. On PostgreSQL the version's row is held FOR SHARE until the commit: a change
        (which updates it) commits either before this read, which then sees it, or after this
        transaction; groups do not wait for each other. SQLite's writers take turns anyway."""
        if not self._catalog_checked:
            self.load((), ())

    @property
    def catalog_checked(self) -> bool:
        return self._catalog_checked

    def first_use(self, key: SignatureKey, now: datetime) -> bool:
        """Whether a signed postback's signature is new (it is then kept: a replay is refused).
        Another process keeping the same one meanwhile fails this group's insert, and the group
        runs again (service.postbacks: store.db.lost_race), finding it."""
        if key in self._signatures:
            return False
        self._signatures.add(key)
        self._new_signatures.append({"advertiser_id": key[0], "signature": key[1], "seen_at": now})
        return True

    def load_players(self, keys: Iterable[PlayerKey]) -> None:
        """The players named, locked for the rest of the transaction in id order (so two
        processes lock the same players in the same order): one player's postbacks apply one at
        a time, as the first deposit and the CPA are decided per player."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._players]
        if not wanted:
            return
        self._players.update(dict.fromkeys(wanted))
        for row in select_keys(self.conn, players, ("advertiser_id", "player_id"), wanted, lock=True):
            self._players[(row["advertiser_id"], row["player_id"])] = Player(
                **{name: row[name] for name in _PLAYER_COLUMNS}
            )

    def player(self, key: PlayerKey) -> Player | None:
        if key not in self._players:
            self.load_players([key])
        return self._players[key]

    def load_conversions(self, keys: Iterable[LookupKey]) -> None:
        """The conversions already recorded under these duplicate keys, locked (FOR UPDATE: two
        status changes racing on PostgreSQL apply one after the other; SQLite writers are
        serialised already)."""
        self.load((), keys)

    def conversion_by_key(self, key: Key) -> dict[str, Any] | None:
        if key[:3] not in self._looked_up:
            self.load_conversions([key[:3]])
        return self._by_key.get(key)

    def conversion(self, conversion_id: int, *, lock: bool = False) -> dict[str, Any]:
        if conversion_id not in self._by_id:
            (row,) = select_keys(self.conn, conversions, ("id",), [(conversion_id,)], lock=lock)
            self._remember(row)
        return self._by_id[conversion_id]

    def player_of(self, conversion_id: int) -> PlayerKey | None:
        """The player a conversion names (not locked, not kept: for taking locks in order)."""
        found = select_keys(self.conn, conversions, ("id",), [(conversion_id,)])
        if not found or not found[0]["player_id"]:
            return None
        return (found[0]["advertiser_id"], found[0]["player_id"])

    def find_conversion(self, conversion_id: int, *, lock: bool = False) -> dict[str, Any] | None:
        if conversion_id not in self._by_id:
            found = select_keys(self.conn, conversions, ("id",), [(conversion_id,)], lock=lock)
            if not found:
                return None
            self._remember(found[0])
        return self._by_id[conversion_id]

    def player_events(self, player: Player) -> list[PlayerEvent]:
        """The player's payable events, as the group has changed them. The first call reads the
        events of every player the group has loaded, in one query."""
        if self._player_rows is None:
            self._player_rows = {}
            keys = {k for k, p in self._players.items() if p is not None}
            for row in select_keys(self.conn, conversions, _PLAYER_KEY, keys):
                self._remember(row)
            for known in self._by_id.values():
                self._index_player_row(known)
        key = (player.advertiser_id, player.player_id)
        if key not in self._player_rows:  # a player loaded after the first call
            for row in select_keys(self.conn, conversions, _PLAYER_KEY, [key]):
                self._remember(row)
            self._player_rows.setdefault(key, {})
        return [
            PlayerEvent(r["id"], r["event"], r["event_at"], r["deal_amount"] or Decimal(0))
            for r in self._player_rows[key].values()
            # A test conversion naming the player earns them nothing (ADR 13).
            if Status(r["status"]) in PAYABLE and not r["test"]
        ]

    def rate(self, base: str, quote: str, day: date) -> Decimal | None:
        """The rate of the day (store/fx), asked once per group."""
        key = (base, quote, day)
        if key not in self._rates:
            self._rates[key] = fx.rate_on(self.conn, base, quote, day)
        return self._rates[key]

    def booked_months(self, affiliate_id: int, offer_id: int) -> Mapping[str, str]:
        """The affiliate's booked RevShare months on the offer and their currencies (store/ledger),
        read once per group, before its months are recomputed."""
        key = (affiliate_id, offer_id)
        if key not in self._booked_months:
            booked = ledger.booked_currencies(self.conn, affiliate_id, offer_id)
            self._booked_months[key] = booked
            if self.catalog is not None:
                version = self.catalog.version
                known = self._known_months.get(key)
                # A report pins the currency of a month without a row (month_currency); under one
                # catalog version no report is priced in a currency none of these is in, nor
                # the deal's: read once a version.
                reported = (
                    known.reported
                    if known is not None and known.version == version
                    else ledger.reported_currencies(self.conn, affiliate_id, offer_id)
                )
                self._known_months[key] = Known(version, booked, reported)
        return self._booked_months[key]

    def _known(self, affiliate_id: int, offer_id: int) -> Known | None:
        """What this process last read of the months, if under this group's catalog version (a
        test's wipe, a deal's change: another version)."""
        known = self._known_months.get((affiliate_id, offer_id))
        if known is None or self.catalog is None or known.version != self.catalog.version:
            return None
        return known

    def in_one_currency(self, affiliate_id: int, offer_id: int, period: str, currency: str) -> bool:
        """Whether `period` and every other booked month of the affiliate on the offer are in
        `currency`, and every NGR report of theirs was priced in it, as this process last read
        them under this group's catalog version, without reading them again. A month's currency
        never changes once booked, and a month booked since under the same version takes its
        first report's currency or its deal's (a deal changing currency is a new catalog
        version). Asked on every NGR report and first deposit of a RevShare deal: the read it
        spares cost a casino's postbacks 10-15% of their throughput on PostgreSQL."""
        known = self._known(affiliate_id, offer_id)
        if known is None:
            return False
        in_it = all(c == currency for c in known.months.values()) and known.reported <= {currency}
        return period in known.months and in_it

    def month_currency(self, affiliate_id: int, offer_id: int, period: str) -> str | None:
        """The currency a RevShare month is priced in: its row's, else its first NGR report's;
        None before anything of it was priced."""
        known = self._known(affiliate_id, offer_id)
        if known is not None and period in known.months:
            return known.months[period]  # booked: its currency for good
        booked = self.booked_months(affiliate_id, offer_id)
        if period in booked:
            return booked[period]
        key = (affiliate_id, offer_id, period)
        if key not in self._reports_currencies:
            self._reports_currencies[key] = ledger.reports_currency(self.conn, affiliate_id, offer_id, period)
        return self._reports_currencies[key]

    def _remember(self, row: dict[str, Any]) -> dict[str, Any]:
        known = self._by_id.get(row["id"])
        if known is None:
            known = self._by_id[row["id"]] = row
            self._by_key[_key_of(known)] = known
            self._index_player_row(known)
        return known

    def _index_player_row(self, row: dict[str, Any]) -> None:
        if self._player_rows is not None and row["player_id"]:
            self._player_rows.setdefault((row["advertiser_id"], row["player_id"]), {})[row["id"]] = row

    # --- ids ---------------------------------------------------------------------------------

    def reserve(self, expected: Mapping[Table, int]) -> None:
        """Take ids for the new rows a group expects; more are taken if it needs more."""
        self._ids.update(self.db.reserve_ids(self.conn, expected))

    def _next_id(self, table: Table) -> int:
        ids = self._ids.setdefault(table.name, [])
        if not ids:
            ids.extend(self.db.reserve_ids(self.conn, {table: 8}, self._given)[table.name])
        given = self._given[table.name] = ids.pop(0)
        return given

    # --- writes, collected -------------------------------------------------------------------

    def new_player(self, key: PlayerKey, click_id: str, click: Click | None, now: datetime) -> Player:
        player = Player(
            id=self._next_id(players),
            advertiser_id=key[0],
            player_id=key[1],
            click_id=click_id,
            first_seen_at=now,
            **player_attribution(click),  # type: ignore[arg-type]
        )
        self._players[key] = player
        self._new_players.append(player)
        if self._player_rows is not None:
            self._player_rows.setdefault(key, {})
        return player

    def change_player(self, player: Player, **values: Any) -> None:
        for name, value in values.items():
            setattr(player, name, value)
        if player not in self._new_players:
            self._changed_players.setdefault(player.id, {}).update(values)

    def add_conversion(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A new conversion; its id is given here. The caller has made sure its key is free: a
        conversion that another process records under the same key meanwhile makes the
        group's insert fail, and the group runs again (service.postbacks: store.db.lost_race),
        finding it."""
        # Every row of a group's insert has the same columns: over_cap is set by a cap only,
        # confirmed by a confirmation only.
        added = {"over_cap": False, "confirmed": False, **row, "id": self._next_id(conversions)}
        self._moved(None, _share(added), added["id"])
        self._new_conversions.append(added)
        self.created.add(added["id"])
        self.notify(added)
        self._by_id[added["id"]] = added
        self._by_key[_key_of(added)] = added
        self._index_player_row(added)
        return added

    def change_conversion(self, row: dict[str, Any], **values: Any) -> None:
        before = _share(row)
        if "test" in values and self._by_key.get(_key_of(row)) is row:
            # A conversion that came before its click, the click a test's: its key moves with it.
            del self._by_key[_key_of(row)]
            self._by_key[_key_of({**row, "test": values["test"]})] = row
        row.update(values)
        if "player_id" in values:
            self._index_player_row(row)  # one of the player's events from now on
        self._moved(before, _share(row), row["id"])
        if not any(row is new for new in self._new_conversions):
            self._changed_conversions.setdefault(row["id"], {}).update(values)

    def release_key(self, row: dict[str, Any]) -> None:
        """Free a conversion's duplicate key for the conversion recorded in its place (the
        server's, over a pixel's it never confirmed). Its transaction ID stays. Written at once
        for a stored row: the group inserts its new rows before it changes stored ones."""
        if self._by_key.get(_key_of(row)) is row:
            del self._by_key[_key_of(row)]
        released = f"overridden:{row['id']}:{row['dedupe_key']}"[:MAX_DEDUPE_KEY_LEN]
        row["dedupe_key"] = released
        self._by_key[_key_of(row)] = row
        self._looked_up.add((row["advertiser_id"], released, row["dedupe_event"]))
        if not any(row is new for new in self._new_conversions):
            stmt = update(conversions).where(conversions.c.id == row["id"]).values(dedupe_key=released)
            self.conn.execute(stmt)

    def _moved(self, before: MonthShare | None, after: MonthShare | None, cause: int) -> None:
        for share, sign in ((before, -1), (after, +1)):
            if share is not None:
                change = self.months.setdefault(
                    (share.affiliate_id, share.offer_id, share.period), MonthChange()
                )
                change.ngr += share.ngr * sign
                change.ftds += share.ftds * sign
                if cause not in change.causes:
                    change.causes.append(cause)

    def append_entry(self, now: datetime, *, detail: str, **entry: Any) -> None:
        """A ledger entry, counted in the report rollups under the conversion that caused it."""
        ledger.append(self.conn, now, detail=detail, **entry)
        self.entries[str(entry["kind"])] += 1
        cause = entry.get("conversion_id")
        row = self.find_conversion(int(cause)) if cause is not None else None
        if row is not None:
            counted = [ledger_contribution(str(entry["kind"]), entry["amount"], entry["currency"])]
            link = self.catalog.links.get(row["link_id"]) if self.catalog is not None else None
            if link is not None and (share := link.cost.of_commission(entry["amount"])):
                # A partner's RevShare of the commission is what this traffic cost.
                counted.append(Contribution(entry["currency"], {"conversion_cost": share}))
            # A CPA reversal happens now: by conversion date it counts now, as the ledger books
            # it in this month (ADR 7), not at its conversion's event months before.
            reverses = entry.get("reverses_id") is not None
            reversed_now = now if reverses and entry["kind"] == ledger.CPA else None
            self._roll(row, counted, 1, event_at=reversed_now)
        if entry["kind"] == ledger.REVSHARE and entry.get("conversion_id") is not None:
            booked = self.revshare.setdefault(int(entry["conversion_id"]), {})
            booked[entry["currency"]] = booked.get(entry["currency"], Decimal(0)) + entry["amount"]

    def log(
        self, raw: RawPostback, advertiser_id: int | None, click_id: str, outcome: Outcome, test: bool = False
    ) -> int:
        """The postback as it arrived, with its outcome; returns its id. The token and signing
        secret masked wherever they are (core/redact.py): the log shows how it came, never a secret."""
        log_id = self._next_id(postbacks)
        secrets = known_secrets(raw, self.catalog, advertiser_id) if self.catalog is not None else ()
        outcome = scrubbed(outcome, secrets)
        query, body = _text(raw.query, len(raw.query)), _text(raw.body, len(raw.body))
        self._logs.append(
            {
                "id": log_id,
                "received_at": raw.received_at,
                "ip": raw.ip[:45],
                "method": raw.method[:8],
                "advertiser_id": advertiser_id,
                "click_id": _text(click_id.encode(errors="replace"), 64),
                "result": outcome.result.value,
                "reason": outcome.reason.code if outcome.reason else None,
                "detail": _text(outcome.detail.encode(errors="replace"), 512),
                "conversion_id": outcome.conversion_id,
                "http_status": outcome.http_status,
                "query": mask_known(redact_query(query), secrets)[:MAX_RAW_LOG_LEN],
                "body": mask_known(redact_body(body), secrets)[:MAX_RAW_LOG_LEN],
                "ignored": _text(",".join(outcome.ignored).encode(errors="replace"), 1024),
                "channel": raw.channel,
                "test": test,
            }
        )
        return log_id

    def confirmed_by_server(self, conversion_id: int) -> bool:
        """Whether an S2S postback was taken for the conversion (accepted, or changing it): a
        pixel conversion is confirmed once; later postbacks repeat the server's own."""
        taken = ("accepted", "updated")
        if any(
            log["conversion_id"] == conversion_id and log["channel"] == S2S and log["result"] in taken
            for log in self._logs
        ):
            return True
        p = postbacks.c
        mine = (p.conversion_id == conversion_id) & (p.channel == S2S) & p.result.in_(taken)
        return self.conn.execute(select(p.id).where(mine).limit(1)).first() is not None

    def note(self, conversion_id: int, text: str) -> None:
        """Add `text` to the detail of this group's logged postbacks of the conversion (what was
        decided after they were logged, e.g. a qualification past a cap: ADR 17)."""
        for row in self._logs:
            if row["conversion_id"] == conversion_id:
                row["detail"] = "; ".join(filter(None, (row["detail"], text)))[:512]

    def history(
        self,
        conversion_id: int,
        old: Status | None,
        new: Status,
        at: datetime,
        postback_id: int | None,
        reason: str | None = None,
    ) -> None:
        self._history.append(
            {
                "conversion_id": conversion_id,
                "at": at,
                "from_status": old.value if old else None,
                "to_status": new.value,
                "postback_id": postback_id,
                "reason": None if reason is None else reason[:512],  # the column's length
            }
        )

    def notify(self, row: dict[str, Any]) -> None:
        """Announce the conversion as it stands to outbound postbacks; a test conversion's are
        only previewed by the tester (ADR 13)."""
        if not row.get("test"):
            self.notices.append((row, Status(row["status"])))

    def count(self, row: Mapping[str, Any], status: Status, payout: Decimal, sign: int) -> None:
        """Move one conversion into (+1) or out of (-1) the report rollups: at the time its event
        happened and at its click's, under its click's dimensions."""
        catalog = self.catalog
        offer = catalog.offers.get(row["offer_id"]) if catalog is not None else None
        price = cost = None
        if offer is not None and row["event"] in offer.payouts:
            price = (offer.payouts[row["event"]], offer.currency)
        link = catalog.links.get(row["link_id"]) if catalog is not None and row["link_id"] else None
        if link is not None:
            cost = link.cost.of_conversion(row["event"])
        contributions = conversion_contributions(row["event"], status, payout, row["currency"], price, cost)
        self._roll(row, contributions, sign)

    def _roll(
        self,
        row: Mapping[str, Any],
        contributions: list[Contribution],
        sign: int,
        event_at: datetime | None = None,
    ) -> None:
        """Under the conversion's click's dimensions, at its event's time (else `event_at`) and
        at its click's."""
        if row.get("test") or row["link_id"] is None:
            return  # a test counts nowhere (ADR 13); an unattributed one once attributed
        owners, values = (row["affiliate_id"], row["offer_id"]), row_values(row)
        for basis, moment in ((EVENT_TIME, event_at or row["event_at"]), (CLICK_TIME, row["clicked_at"])):
            self.rollups.add(
                basis, int(moment.timestamp()), owners, row["country"], values, contributions, sign
            )

    def recount(self, row: dict[str, Any], **values: Any) -> dict[str, Any]:
        """A conversion's event or amount changed: moved in the report rollups from what it was
        (returned) to what it is."""
        before = {**row}
        self.change_conversion(row, **values)
        if row["attributed_at"] is not None and row["link_id"] is not None:
            status = Status(row["status"])
            self.count(before, status, before["payout"], -1)
            self.count(row, status, row["payout"], +1)
        return before

    def change_status(
        self,
        row: dict[str, Any],
        new: Status,
        now: datetime,
        postback_id: int | None,
        reason: str | None = None,
    ) -> None:
        """Its report counters move with it when it is attributed; outbound postbacks announce it."""
        old = Status(row["status"])
        self.change_conversion(row, status=new.value, updated_at=now)
        self.history(row["id"], old, new, now, postback_id, reason)
        if row.get("test"):
            return  # counted in no report, announced to no one (ADR 13)
        self.notices.append((row, new))
        if row["attributed_at"] is not None and row["link_id"] is not None:
            self.count(row, old, row["payout"], -1)
            self.count(row, new, row["payout"], +1)

    def flush(self) -> None:
        """Write what the group collected: the new rows of every table at once (insert_all),
        then the changes to rows that were already stored (which may point at the new ones)."""
        insert_all(
            self.conn,
            [
                (players, [{n: getattr(p, n) for n in _PLAYER_COLUMNS} for p in self._new_players], None),
                (conversions, self._new_conversions, None),
                (postbacks, self._logs, None),
                (conversion_history, self._history, None),
                *self.rollups.write(self.conn, self.db),
                (outbound_deliveries, self.outbound, None),
                (postback_signatures, self._new_signatures, None),
            ],
        )
        _update_by_id(self.conn, players, self._changed_players)
        _update_by_id(self.conn, conversions, self._changed_conversions)
        self.outbound, self._new_signatures = [], []
        self._new_players, self._new_conversions, self._logs, self._history = [], [], [], []
        self._changed_players, self._changed_conversions = {}, {}

    def finish(self) -> None:
        """Write the report rollups of what came after the last flush (RevShare booked by
        recompute_months): a statement only when there is any."""
        if self.rollups.hours:
            insert_all(self.conn, self.rollups.write(self.conn, self.db))

    def unattributed(self) -> list[dict[str, Any]]:
        """Conversions whose click was in flight when they arrived (a partial index), locked;
        those another process is attributing right now are left to it (SKIP LOCKED)."""
        query = select(conversions).where(conversions.c.attributed_at.is_(None))
        rows = self.conn.execute(query.with_for_update(skip_locked=True))
        return [self._remember(dict(row._mapping)) for row in rows]

    def attribute_players(self, advertiser_id: int, click: Click) -> list[Player]:
        """Players first seen while their click was in flight, attributed now that it landed:
        only the advertiser's own (another advertiser naming the click never gets a player)."""
        stmt = (
            update(players)
            .where(
                (players.c.click_id == click.click_id)
                & (players.c.advertiser_id == advertiser_id)
                & players.c.affiliate_id.is_(None)
            )
            .values(player_attribution(click))
            .returning(players.c.advertiser_id, players.c.player_id)
        )
        keys = [(r.advertiser_id, r.player_id) for r in self.conn.execute(stmt)]
        for key in keys:
            self._players.pop(key, None)
        self.load_players(keys)
        return [p for p in (self._players[k] for k in keys) if p is not None]


async def clicks_landed(db: Database) -> bool:
    """Whether a conversion waits for a click that has landed since: a cheap read, so that
    nothing takes the write lock for it otherwise."""
    waiting = select(conversions.c.id).where(conversions.c.attributed_at.is_(None))
    landed = waiting.join_from(conversions, clicks, clicks.c.click_id == conversions.c.click_id)
    async with db.read() as conn:
        return (await conn.execute(landed.limit(1))).first() is not None


async def forget_signatures(db: Database, before: datetime) -> None:
    """Signatures older than their timestamps' window: a replay of those is refused by its time."""
    async with db.write() as conn:
        await conn.execute(delete(postback_signatures).where(postback_signatures.c.seen_at < before))


def _key_of(row: Mapping[str, Any]) -> Key:
    return (row["advertiser_id"], row["dedupe_key"], row["dedupe_event"], bool(row["test"]))


def _update_by_id(conn: Connection, table: Table, changes: Mapping[int, Mapping[str, Any]]) -> None:
    """One executemany per set of columns changed."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in changes.items():
        by_columns.setdefault(tuple(sorted(values)), []).append({"row_id": row_id, **values})
    for columns, rows in by_columns.items():
        stmt = (
            update(table).where(table.c.id == bindparam("row_id")).values({c: bindparam(c) for c in columns})
        )
        conn.execute(stmt, rows)


def player_attribution(click: Click | None) -> dict[str, object]:
    if click is None:
        return {"affiliate_id": None, "offer_id": None, "link_id": None, "country": "", "sub1": ""}
    return {
        "link_id": click.link_id,
        "affiliate_id": click.affiliate_id,
        "offer_id": click.offer_id,
        "country": click.traits.country,
        "sub1": click.subs[0],
    }


def _text(data: bytes, limit: int) -> str:
    """Kept as it came, cropped, with what no database can store (invalid UTF-8, NUL) shown as
    U+FFFD. Escaped wherever it is shown."""
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")[:limit]
