"""Receiving a postback, from the raw request to the committed answer the sender gets.

    read      core/intake: parse → alias → macros → token → click ID → event → status → amount
              → currency → period → event time (no I/O; a refusal is only logged)
    group     service/group_commit: postbacks arriving together share one transaction, which
              first checks that the catalog it prices with is the database's (a deal set through
              another process a moment ago): else the catalog is reloaded and the group read and
              applied again under it
    accept    for each, in that transaction: its player (locked) → its click (the local buffer,
              else the database, else "in flight") → attribute (core/intake, with the event time)
              → price in the deal's currency → the conversion, exactly once (a repeat is a
              duplicate, a status change or a conflict) → log, history, report counters
              → the player's commissions (service/commissions)
    then      the RevShare months the group touched, the collected rows, commit; only then replies

Conversions whose click was still in flight are attributed when it lands (attribute_waiting).
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection

from clickback.core.audit import SYSTEM, Actor, Kind, change
from clickback.core.clickids import CLICK_ID_LEN, ClickIdCodec
from clickback.core.commission import AMOUNT_EVENTS, convert, counted_month, period_of, rate_day
from clickback.core.diagnosis import conversion_warnings, sent_fields
from clickback.core.events import dedupe_family, deposit_label
from clickback.core.intake import (
    PIXEL,
    S2S,
    Attribution,
    Duplicate,
    Existing,
    Overrides,
    Postback,
    RawPostback,
    Refused,
    StatusChange,
    attribute,
    check_offer,
    is_claim,
    on_repeat,
    price,
    read_postback,
    restates_amount,
)
from clickback.core.lifecycle import PAYABLE, Status, can_move
from clickback.core.model import Catalog, Click
from clickback.core.money import plain
from clickback.core.outcome import Outcome, Result
from clickback.core.reasons import Reason, Rejected
from clickback.core.redact import known_secrets, scrubbed
from clickback.logs import Repeated
from clickback.metrics import LEDGER_ENTRIES, POSTBACK_SECONDS, POSTBACKS, worker
from clickback.service import commissions, outbound
from clickback.service.catalog_cache import CatalogCache
from clickback.service.clickwriter import ClickWriter
from clickback.service.group_commit import GroupCommit
from clickback.store import audit, ledger
from clickback.store.catalog import StaleCatalog
from clickback.store.db import Database, lost_race
from clickback.store.recording import KnownMonths, Player, Recording, clicks_landed
from clickback.store.tables import conversions, postbacks
from clickback.store.tables import players as player_table

log = logging.getLogger(__name__)
T = TypeVar("T")
# Large enough to amortise a commit, small enough that the first postback of a group is not
# kept waiting by the last.
MAX_GROUP = 200
# Each attempt after a lost race reads the rows the winner committed; more than one lost race in
# a row takes yet other processes recording the group's keys meanwhile.
RACE_ATTEMPTS = 3
# RevShare months a migration corrected, recomputed per transaction (recompute_due): a database
# with thousands of them is worked off in short transactions, not in one that holds them all.
DUE_MONTHS_AT_ONCE = 100


@dataclass(frozen=True, slots=True)
class _Item:
    raw: RawPostback
    read: Postback | Refused
    # The version of the catalog it was read with.
    version: int


@dataclass(frozen=True, slots=True)
class _Priced:
    """The amount in the currency its deal counts it in (an NGR report's: its RevShare month's),
    that currency, and the rate that made it."""

    amount: Decimal | None = None
    currency: str | None = None
    rate: Decimal | None = None


class Postbacks:
    def __init__(
        self,
        db: Database,
        catalog: CatalogCache,
        clicks: ClickWriter,
        codec: ClickIdCodec,
        in_flight_window: timedelta,
        max_event_age: timedelta,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._clicks = clicks
        self._codec = codec
        self._in_flight_window = in_flight_window
        self._max_event_age = max_event_age
        self._group: GroupCommit[_Item, Outcome] = GroupCommit(self._apply, MAX_GROUP)
        self._known_months: KnownMonths = {}  # Recording.in_one_currency
        self._failures = Repeated(log, "postbacks not recorded (answered 503 storage_unavailable)")
        # Called once a transaction that wrote outbound deliveries has committed (the dispatcher
        # of this process sends them at once instead of at its next look).
        self.on_outbound: Callable[[], None] = lambda: None

    async def receive(self, raw: RawPostback) -> Outcome:
        started = time.perf_counter()
        outcome = await self._record(raw)
        elapsed = time.perf_counter() - started
        reason = outcome.reason.code if outcome.reason else ""
        POSTBACKS.labels(worker(), outcome.result.value, reason).inc()
        POSTBACK_SECONDS.labels(worker()).observe(elapsed)
        # One line a postback, without its query: the token is in it (the postback log keeps it).
        log.info(
            "postback %s %s %s",
            outcome.result.value,
            reason or outcome.event or "",
            outcome.conversion_id or "",
            extra={
                "ip": raw.ip,
                "channel": raw.channel,
                "result": outcome.result.value,
                "reason": reason,
                "conversion_id": outcome.conversion_id,
                "ms": round(elapsed * 1000, 1),
            },
        )
        return outcome

    async def _record(self, raw: RawPostback) -> Outcome:
        if not self._catalog.loaded:
            # Started while the database was unreachable: no token can be checked yet, and
            # nothing can be recorded. The sender retries later.
            return Outcome(Result.REJECTED, Reason.STORAGE_UNAVAILABLE)
        catalog = self._catalog.current
        item = self._read(raw, catalog)
        try:
            outcome = await self._group.submit(item)
        except self._db.errors as exc:
            # Nothing was committed, so the sender must not get a 2xx: it retries later.
            self._failures.failed(exc)
            return Outcome(Result.REJECTED, Reason.STORAGE_UNAVAILABLE)
        self._failures.succeeded()
        # What the reply echoes (a detail, ignored names) masked as the log keeps it: the token
        # may have come where intake did not look for it (a JSON body read as a form).
        if not outcome.detail and not outcome.ignored:
            return outcome  # nothing echoed: no secrets to look for (most postbacks)
        read = item.read
        advertiser = read.advertiser.id if isinstance(read, Postback) else read.advertiser_id
        return scrubbed(outcome, known_secrets(raw, catalog, advertiser))

    def _read(self, raw: RawPostback, catalog: Catalog) -> _Item:
        return _Item(raw, read_postback(raw, catalog, self._codec, self._max_event_age), catalog.version)

    async def close(self) -> None:
        await self._group.close()

    @property
    def recorded(self) -> int:
        return self._group.items

    @property
    def groups(self) -> int:
        return self._group.groups

    async def _apply(self, items: Sequence[_Item]) -> list[Outcome]:
        def group_for(catalog: Catalog) -> Callable[[Recording], list[Outcome]]:
            # A postback read with another catalog than the group is written with (it changed
            # while the postback waited, or the group found it stale) is read again: its token,
            # names and offer as they are now.
            read = [
                item if item.version == catalog.version else self._read(item.raw, catalog) for item in items
            ]
            # Clicks still in this process's buffer are looked up here, on the event loop that
            # owns the buffer; the group's database work may run in another thread
            # (Database.run_write).
            buffered = {}
            for item in read:
                click = self._clicks.get(_click_named(item.read))
                if click is not None:
                    buffered[click.click_id] = click
            group = _Group(self._codec, self._in_flight_window, catalog, buffered)
            return lambda rec: group.write(rec, read)

        return await self._write(group_for)

    async def attribute_waiting(self, now: datetime) -> int:
        """Attribute conversions that arrived before their click row did (those whose click never
        lands stay unattributed, and visible as such).

        Every process runs this after writing clicks, rather than only checking its own batch: on
        PostgreSQL a postback can commit just after another process's batch looked for it, and
        only a later look from anyone catches that.
        """
        if not await clicks_landed(self._db):
            return 0
        return await self._write(lambda catalog: lambda rec: _attribute_waiting(rec, catalog, now))

    async def recompute_due(self, now: datetime) -> int:
        """Recompute the RevShare months a migration corrected (store.ledger.take_due), each
        booking its difference as a postback's change would; returns how many. Every process
        may: each month is taken by one transaction."""
        done = 0
        while await ledger.months_due(self._db):
            taken = await self._write(
                lambda catalog: lambda rec: commissions.recompute_due(rec, catalog, now, DUE_MONTHS_AT_ONCE)
            )
            if not taken:
                break  # the rest are another process's right now
            done += taken
        return done

    async def _write(self, work_for: Callable[[Catalog], Callable[[Recording], T]]) -> T:
        """The work `work_for` makes for the catalog in memory, in one write transaction that
        checks that catalog against the database's before deciding anything
        (Recording.check_catalog). Another process may have changed it (a deal set) less than a
        refresh ago: the transaction is then rolled back, the catalog reloaded, and the work made
        again, so that whatever is recorded after a change is decided under it. Once the work
        has committed, the entries it booked count.

        Two processes given the same new conversion (or player, or signature) at once both find
        its key free, and both insert it: PostgreSQL makes the second wait for the first and,
        once that commits, refuses it (store.db.lost_race). Nothing of it was written, so the
        work runs again in a new transaction, which reads the first one's rows: the postback is
        then the repeat it is (a duplicate, as a retry sent later is answered), not a 503."""
        races = 0
        while True:
            catalog = self._catalog.current
            try:
                result, rec = await self._db.run_write(partial(self._run, catalog, work_for(catalog)))
                break
            except StaleCatalog as stale:
                log.info("catalog %d is out of date (%d): reloaded", catalog.version, stale.version)
                await self._catalog.reload(stale.version)
            except self._db.errors as exc:
                races += 1
                if races == RACE_ATTEMPTS or not lost_race(exc):
                    raise
                log.info("a write lost a race on a unique key to another process; running it again")
        for kind, booked in rec.entries.items():
            LEDGER_ENTRIES.labels(worker(), kind).inc(booked)
        if rec.enqueued:
            self.on_outbound()
        return result

    def _run(self, catalog: Catalog, work: Callable[[Recording], T], conn: Connection) -> tuple[T, Recording]:
        rec = Recording(self._db, conn, catalog, self._known_months)
        result = work(rec)
        assert rec.catalog_checked, "decided with a catalog not checked against the database's"
        rec.finish()
        return result, rec

    async def change_status(
        self, conversion_id: int, new: Status, reason: str, now: datetime, by: Actor = SYSTEM
    ) -> "ManualChange":
        """A person approves, rejects or cancels a conversion: the same change a postback makes
        (history, report counters, the ledger, outbound postbacks), with their reason kept and
        the change in the audit log, in the same transaction."""
        return await self._write(
            lambda catalog: lambda rec: _change_by_hand(rec, catalog, conversion_id, new, reason, now, by)
        )


class _Group:
    """One group of postbacks, written in one transaction (synchronous: see Database.run_write)."""

    def __init__(
        self,
        codec: ClickIdCodec,
        in_flight_window: timedelta,
        catalog: Catalog,
        buffered: Mapping[str, Click],
    ) -> None:
        self._codec = codec
        self._in_flight_window = in_flight_window
        self._catalog = catalog
        self._clicks = dict(buffered)

    def write(self, rec: Recording, items: Sequence[_Item]) -> list[Outcome]:
        read = [item.read for item in items if isinstance(item.read, Postback)]
        # Everything the group will look at, read at once: players (locked), clicks, conversions
        # already recorded under the same duplicate keys (locked), and the catalog's version
        # (rec.load checks the group's catalog with it: Recording.check_catalog).
        rec.load_players((p.advertiser.id, p.player_id) for p in read if p.player_id)
        players = [rec.player((p.advertiser.id, p.player_id)) for p in read if p.player_id]
        wanted = {p.click.value for p in read if p.click} | {p.click_id for p in players if p is not None}
        # A refused postback's click too, in the same query: one naming a test click is shown
        # by the tester with its reason (ADR 13).
        wanted |= {_click_named(item.read) for item in items if isinstance(item.read, Refused)} - {""}
        self._clicks |= rec.load(
            [c for c in wanted if c not in self._clicks],
            ((p.advertiser.id, p.dedupe_key, dedupe_family(p.event)) for p in read),
            ((p.advertiser.id, p.signature) for p in read if p.signature),
        )
        rec.reserve({conversions: len(read), postbacks: len(items), player_table: len(players)})
        outcomes = {}
        for n in sorted(range(len(items)), key=lambda n: _lock_order(items[n].read)):
            outcomes[n] = self._accept(rec, items[n])
        rec.flush()
        # A month's first RevShare row counts its conversions: the group's own are written first.
        now = max(item.raw.received_at for item in items)
        commissions.recompute_months(rec, self._catalog, now)
        outbound.enqueue(rec, self._catalog, self._clicks, now)
        return [outcomes[n] for n in range(len(items))]

    def _accept(self, rec: Recording, item: _Item) -> Outcome:
        raw, postback = item.raw, item.read
        if isinstance(postback, Refused):
            return _refuse(rec, raw, postback, self._test(postback.click_id))
        now = raw.received_at
        advertiser = postback.advertiser.id
        if postback.signature and not rec.first_use((advertiser, postback.signature), now):
            replayed = Rejected(Reason.REPLAYED_SIGNATURE)
            refused = Refused(replayed, advertiser, postback.click_value, postback.ignored)
            return _refuse(rec, raw, refused, self._test(postback.click_value))
        player, named_click = None, postback.click_value
        # A test click's postback is never a player's (ADR 13), even naming a real player's ID:
        # through the player it would be attributed to their real click, and paid. Nor a pixel's:
        # anyone can write any player ID on it, and a player is attributed for life; the server
        # names the player when it confirms the conversion (_player_named).
        if postback.player_id and not self._test(named_click) and postback.pixel_offer_id is None:
            # A known player stays attributed to the click of their first postback, whatever click
            # ID later postbacks carry; a postback naming only the player is attributed through it.
            player = rec.player((advertiser, postback.player_id))
            if player is None and postback.click is None:
                rejected = Rejected(Reason.UNKNOWN_PLAYER, postback.player_id[:64])
                return _refuse(rec, raw, Refused(rejected, advertiser, "", postback.ignored))
            if player is not None:
                verified = self._codec.verify(player.click_id, now)
                if isinstance(verified, Rejected):  # the click-ID key changed since the player came
                    return _refuse(rec, raw, Refused(verified, advertiser, player.click_id, postback.ignored))
                postback = replace(postback, click=verified)
        assert postback.click is not None
        click_id = postback.click.value
        click = self._clicks.get(click_id)
        # A test click's conversion counts nowhere: no player, no report counter, no commission,
        # no outbound postback (ADR 13); the tester previews those instead.
        test = self._test(click_id)
        attribution = attribute(
            postback, click, self._catalog, now, self._in_flight_window, through_player=player is not None
        )
        if isinstance(attribution, Rejected):
            return _refuse(rec, raw, Refused(attribution, advertiser, click_id, postback.ignored), test)
        # Test and real conversions keep to their own keys: neither repeats nor blocks the other.
        existing = rec.conversion_by_key(
            (advertiser, postback.dedupe_key, dedupe_family(postback.event), test)
        )
        overrides = None
        if existing is not None:
            repeat = self._repeat(rec, raw, postback, attribution, existing, player, named_click)
            if isinstance(repeat, Outcome):
                return repeat
            overrides = repeat

        # What the player's deposit is recorded as (their first?) decides the RevShare month it
        # counts in, which its pricing checks.
        event, demote = postback.event, False
        names_player = bool(postback.player_id) and not test and postback.pixel_offer_id is None
        if player is not None or names_player:
            ftd_at = player.ftd_at if player is not None else None
            event, demote = deposit_label(postback.event, ftd_at, attribution.event_at)
        priced = _priced(rec, self._catalog, postback, attribution, event, now)
        if isinstance(priced, Rejected):
            return _refuse(rec, raw, Refused(priced, advertiser, click_id, postback.ignored), test)
        if overrides is not None:
            assert existing is not None
            rec.release_key(existing)  # the pixel's: the server's conversion takes its key
        if player is None and names_player:
            player = rec.new_player((advertiser, postback.player_id), click_id, click, now)
        offer = self._catalog.offers.get(click.offer_id) if click is not None else None
        warnings = conversion_warnings(
            postback.event,
            postback.payout,
            offer.payouts if offer else {},
            postback.ignored,
            sent_fields(postback),
            postback.currency,
            offer.currency if offer else "",
        )
        row = rec.add_conversion(_conversion(raw, postback, attribution, event, priced, warnings, test))
        outcome = Outcome(
            Result.ACCEPTED,
            conversion_id=row["id"],
            status=postback.status,
            event=event,
            ignored=postback.ignored,
            warnings=warnings,
        )
        logged = rec.log(raw, advertiser, click_id, outcome, test)
        rec.history(row["id"], None, postback.status, now, logged, raw.note or None)
        if click is not None and not test:
            rec.count(row, postback.status, row["payout"], +1)
        if player is not None:
            self._player_event(rec, player, row, demote, now)
        if existing is not None and overrides is not None:
            self._overridden(rec, existing, overrides, now, logged)
        return outcome

    def _overridden(
        self, rec: Recording, row: dict[str, Any], overrides: Overrides, now: datetime, postback_id: int
    ) -> None:
        """The pixel's claim the server's conversion replaced: rejected as any conversion is, so
        that what it counted moves out with it (reports, RevShare months, a CPA of its player),
        and its affiliate's tracker is told of the rejection as of any other."""
        old = Status(row["status"])
        if old is not Status.REJECTED and can_move(old, Status.REJECTED):
            _change_status(rec, self._catalog, row, Status.REJECTED, now, postback_id, None, overrides.why)
        else:  # declined already: only its history says why it no longer holds its transaction
            rec.history(row["id"], old, old, now, postback_id, overrides.why)

    def _test(self, click_id: str) -> bool:
        click = self._clicks.get(click_id)
        return click is not None and click.test

    def _repeat(
        self,
        rec: Recording,
        raw: RawPostback,
        postback: Postback,
        attribution: Attribution,
        existing: dict[str, Any],
        player: Player | None,
        named_click: str,
    ) -> Outcome | Overrides:
        """The same transaction again: a duplicate, a status change, or a conflict; or the
        server's own conversion over a pixel's (Overrides), recorded by the caller."""
        channel = existing["channel"]
        if channel == PIXEL and postback.channel == S2S and rec.confirmed_by_server(existing["id"]):
            # Confirmed by the server once: a retry, or a later status, is the server's own repeat
            # (no status is a duplicate, the amount stays), not another confirmation.
            channel = S2S
        stored = Existing(
            existing["id"],
            existing["click_id"],
            Status(existing["status"]),
            channel,
            existing["player_id"] or "",
        )
        decision = on_repeat(postback, stored, named_click)
        if isinstance(decision, Overrides):
            # The same kind: test and real conversions have keys of their own (ADR 13).
            return decision
        restated: _Priced | None = None
        if isinstance(decision, StatusChange) and restates_amount(postback, stored):
            # Priced for the month it counts in, the row's (a server's confirmation of a pixel's
            # NGR claim may state another): an amount in another month's currency would be added
            # to this one.
            restating = replace(postback, period=existing["period"]) if existing["period"] else postback
            priced = _priced(rec, self._catalog, restating, attribution, existing["event"], raw.received_at)
            decision, restated = (priced, None) if isinstance(priced, Rejected) else (decision, priced)
        if isinstance(decision, StatusChange) and (
            refused := commissions.approval_refused(rec, self._catalog, existing, decision.new)
        ):
            # As a person's approval (_change_by_hand): approved, a CPA is paid, so not while
            # the ledger would pay nothing; the affiliate would be told of a CPA never booked.
            decision = Rejected(Reason.CPA_RULES_NOT_MET, refused)
        ignored = postback.ignored
        if isinstance(decision, Rejected):
            outcome = Outcome(Result.REJECTED, decision.reason, decision.detail, ignored=ignored)
        elif isinstance(decision, Duplicate):
            outcome = Outcome(
                Result.DUPLICATE,
                Reason.DUPLICATE,
                conversion_id=existing["id"],
                status=existing["status"],
                event=existing["event"],
                ignored=ignored,
            )
        else:
            outcome = Outcome(
                Result.UPDATED,
                conversion_id=existing["id"],
                status=decision.new,
                event=existing["event"],
                ignored=ignored,
            )
        log_id = rec.log(raw, postback.advertiser.id, postback.click_value, outcome, bool(existing["test"]))
        if isinstance(decision, StatusChange):
            if restated is not None:
                _restate(rec, existing, attribution, restated, raw.received_at)
                # The server's word: no longer a claim, it counts in commissions (with this status).
                rec.change_conversion(existing, confirmed=True)
            if (
                stored.channel == PIXEL
                and postback.player_id
                and not existing["player_id"]
                and not existing["test"]
            ):
                player = self._player_named(rec, postback, existing, player, raw.received_at)
            _change_status(rec, self._catalog, existing, decision.new, raw.received_at, log_id, player)
            # What it became: a deposit the change made the player's first, or no longer.
            outcome = replace(outcome, event=existing["event"])
        return outcome

    def _player_named(
        self, rec: Recording, postback: Postback, row: dict[str, Any], player: Player | None, now: datetime
    ) -> Player:
        """The advertiser's server names the player of a conversion the pixel reported without
        one (a thank-you page rarely knows it): it becomes one of the player's events, as it
        would have had the server reported it first (their first deposit, their CPA)."""
        key = (postback.advertiser.id, postback.player_id)
        if player is None:
            player = rec.new_player(key, row["click_id"], self._clicks.get(row["click_id"]), now)
        rec.change_conversion(row, player_id=postback.player_id)
        event, demote = deposit_label(row["event"], player.ftd_at, row["event_at"])
        if event != row["event"]:
            rec.recount(row, event=event, updated_at=now)
        self._player_event(rec, player, row, demote, now)
        return player

    def _player_event(
        self, rec: Recording, player: Player, row: dict[str, Any], demote: bool, now: datetime
    ) -> None:
        """Milestones kept on the player row, then what the new event changes in commissions."""
        at = row["event_at"]
        if row["event"] == "registration" and (player.registered_at is None or at < player.registered_at):
            rec.change_player(player, registered_at=at)
        elif row["event"] == "first_deposit":
            if demote and player.ftd_conversion_id is not None:
                # A deposit made earlier but reported later is the player's first: the old first
                # deposit is a plain deposit from now on, in reports and in its month's RevShare.
                old = rec.conversion(player.ftd_conversion_id)
                before = rec.recount(old, event="deposit", updated_at=now)
                commissions.player_changed(rec, self._catalog, player, before, False, now)
            rec.change_player(player, ftd_conversion_id=row["id"], ftd_at=at)
        commissions.player_changed(rec, self._catalog, player, row, True, now)


def _first_deposit_again(rec: Recording, player: Player, now: datetime) -> None:
    """After one of the player's deposits changed status: their first deposit is the earliest
    that stands (pending or approved). A first deposit declined or cancelled was no deposit, and
    the next one takes its place (a first payment refused, the second gone through); one that
    stands again (a dispute won) takes its place back if it came first. Moved in reports and
    RevShare months here; the caller decides the player's CPA after."""
    standing = [e for e in rec.player_events(player) if dedupe_family(e.event) == "deposit"]
    first = min(standing, key=lambda e: (e.at, e.conversion_id), default=None)
    # Every other standing one is a plain deposit: also one that kept its name while declined
    # (no FTD figure counts a declined one) and stands again after another became the first.
    for event in standing:
        if event is not first and event.event == "first_deposit":
            rec.recount(rec.conversion(event.conversion_id), event="deposit", updated_at=now)
    if first is not None and first.event != "first_deposit":
        rec.recount(rec.conversion(first.conversion_id), event="first_deposit", updated_at=now)
    first_id = first.conversion_id if first is not None else None
    if first_id != player.ftd_conversion_id:
        rec.change_player(player, ftd_conversion_id=first_id, ftd_at=first.at if first is not None else None)


def _restate(
    rec: Recording, row: dict[str, Any], attribution: Attribution, priced: _Priced, now: datetime
) -> None:
    """The conversion's amount as the advertiser's server states it, in reports and (through
    the status change that follows) in its player's CPA."""
    rec.recount(
        row,
        payout=attribution.payout,
        currency=attribution.currency,
        deal_amount=priced.amount,
        deal_currency=priced.currency,
        fx_rate=None if priced.rate is None else plain(priced.rate),
        updated_at=now,
    )


def _change_status(
    rec: Recording,
    catalog: Catalog,
    existing: dict[str, Any],
    new: Status,
    now: datetime,
    postback_id: int | None,
    player: Player | None,
    reason: str | None = None,
) -> None:
    """A conversion's status changes (a postback or a person): history, counters, its player's CPA.
    The same status: only its amount changed (a pixel's, as the server states it), and with it
    perhaps its player's CPA."""
    if new is Status.APPROVED and is_claim(existing["channel"], existing["confirmed"]):
        # Approved (by a person, a reconciliation), a pixel's claim counts in commissions.
        rec.change_conversion(existing, confirmed=True)
    if Status(existing["status"]) is not new:
        rec.change_status(existing, new, now, postback_id, reason)
    if existing["player_id"] and not existing["test"]:
        player = player or rec.player((existing["advertiser_id"], existing["player_id"]))
    if player is not None:
        if existing["player_id"] == player.player_id and dedupe_family(existing["event"]) == "deposit":
            _first_deposit_again(rec, player, now)
        commissions.player_changed(rec, catalog, player, existing, False, now)


@dataclass(frozen=True, slots=True)
class ManualChange:
    """The conversion after a change by hand, or why there was none (found False: no such one)."""

    found: bool
    problem: str = ""


def _change_by_hand(
    rec: Recording,
    catalog: Catalog,
    conversion_id: int,
    new: Status,
    reason: str,
    now: datetime,
    by: Actor = SYSTEM,
) -> ManualChange:
    rec.check_catalog()
    # The player first, then the conversion, as a postback group locks them (no deadlock).
    key = rec.player_of(conversion_id)
    if key is not None:
        rec.load_players([key])
    row = rec.find_conversion(conversion_id, lock=True)
    if row is None:
        return ManualChange(False)
    old = Status(row["status"])
    # A CPA the rules already reversed (its qualified_cpa rejected) is still the person's to
    # disallow: rejected by hand too, it is not paid should the rules hold again.
    disallowing = row["event"] == "qualified_cpa" and new not in PAYABLE
    if old is new and not disallowing:
        return ManualChange(True, f"the conversion is {old} already")
    if old is not new and not can_move(old, new):
        return ManualChange(True, f"a conversion cannot go from {old} to {new}")
    # Approved, a CPA is paid: not while the ledger would pay nothing (its rules do not hold).
    if refused := commissions.approval_refused(rec, catalog, row, new):
        return ManualChange(True, refused)
    if old is new:
        rec.history(row["id"], old, new, now, None, reason)
    _change_status(rec, catalog, row, new, now, None, None, reason)
    done = change(
        by, Kind.CONVERSION, conversion_id, "change_status", {"status": old}, {"status": new}, reason
    )
    audit.record_sync(rec.conn, [done], now)
    rec.flush()
    commissions.recompute_months(rec, catalog, now)
    outbound.enqueue(rec, catalog, {}, now)
    return ManualChange(True)


def _lock_order(read: Postback | Refused) -> tuple[str, ...]:
    """The order a group applies its postbacks in: by player, else by duplicate key, so that two
    processes' groups lock the same rows in the same order on PostgreSQL (no deadlock); a sort that
    keeps one player's postbacks in their order of arrival."""
    if isinstance(read, Refused):
        return ("",)
    if read.player_id:
        return ("p", str(read.advertiser.id), read.player_id)
    return ("t", str(read.advertiser.id), read.dedupe_key)


def _click_named(read: Postback | Refused) -> str:
    """The click ID a postback names, if it can be one."""
    if isinstance(read, Postback):
        return read.click.value if read.click is not None else ""
    return read.click_id if len(read.click_id) == CLICK_ID_LEN else ""


def _refuse(rec: Recording, raw: RawPostback, refused: Refused, test: bool = False) -> Outcome:
    outcome = Outcome(
        Result.REJECTED, refused.rejected.reason, refused.rejected.detail, ignored=refused.ignored
    )
    rec.log(raw, refused.advertiser_id, refused.click_id, outcome, test)
    return outcome


def _priced(
    rec: Recording,
    catalog: Catalog,
    postback: Postback,
    attribution: Attribution,
    event: str,
    now: datetime,
) -> _Priced | Rejected:
    """The amount as its deal counts it; refused without a rate that it, or the RevShare month it
    counts in (service/commissions.month_refused), needs."""
    click = attribution.click
    if click is None:
        return _Priced()  # priced when the click lands (_attribute_late)
    period = _period(postback.event, postback.period, attribution.event_at)
    day = rate_day(postback.event, period, attribution.event_at)
    priced = _in_deal_currency(
        rec, catalog, click, postback.event, attribution.payout, attribution.currency, day, period
    )
    month = counted_month(event, period, attribution.event_at)
    if isinstance(priced, Rejected) or month is None or click.test:
        return priced
    return commissions.month_refused(rec, catalog, click.affiliate_id, click.offer_id, month, now) or priced


def _in_deal_currency(
    rec: Recording,
    catalog: Catalog,
    click: Click,
    event: str,
    amount: Decimal | None,
    currency: str | None,
    day: date,
    period: str | None,
) -> _Priced | Rejected:
    """The amount in the currency the click's deal counts it in, at the rate of the day it
    happened: the deal's, and for an NGR report its RevShare month's (a month is priced in one
    currency: service/commissions.month_currency). A test click's is in the deal's: it counts in
    no month (ADR 13)."""
    deal = catalog.deal_for(click.offer_id, click.affiliate_id)
    if deal is None or event not in AMOUNT_EVENTS or amount is None or currency is None:
        return _Priced()
    target = deal.currency
    if event == "net_revenue" and period is not None and not click.test:
        target = commissions.month_currency(rec, deal, click.affiliate_id, click.offer_id, period)
    rate = rec.rate(currency, target, day)
    if rate is None:
        return Rejected(Reason.MISSING_EXCHANGE_RATE, f"{currency}→{target} on {day.isoformat()}")
    converted = convert(amount, rate)
    if converted is None:
        return Rejected(
            Reason.CONVERTED_AMOUNT_TOO_LARGE,
            f"{plain(amount)} {currency} at {plain(rate)} ({currency}→{target} on {day.isoformat()})",
        )
    return _Priced(converted, target, rate)


def _period(event: str, stated: str | None, at: datetime) -> str | None:
    """The month a net_revenue report covers: as stated, else the month it happened in."""
    return (stated or period_of(at)) if event == "net_revenue" else None


def _conversion(
    raw: RawPostback,
    postback: Postback,
    attribution: Attribution,
    event: str,
    priced: _Priced,
    warnings: tuple[str, ...],
    test: bool,
) -> dict[str, Any]:
    assert postback.click is not None
    return {
        "advertiser_id": postback.advertiser.id,
        "click_id": postback.click.value,
        "dedupe_key": postback.dedupe_key,
        "dedupe_event": dedupe_family(event),
        "txn_id": postback.txn_id,
        "event": event,
        "status": postback.status.value,
        "payout": attribution.payout,
        "currency": attribution.currency,
        # A pixel's player ID is not the player's until the server names it (_player_named).
        "player_id": postback.player_id if postback.pixel_offer_id is None else "",
        "deal_amount": priced.amount,
        "deal_currency": priced.currency,
        "fx_rate": None if priced.rate is None else plain(priced.rate),
        "period": _period(event, postback.period, attribution.event_at),
        "clicked_at": postback.click.clicked_at,
        "event_at": attribution.event_at,
        "created_at": raw.received_at,
        "updated_at": raw.received_at,
        "channel": postback.channel,
        "pixel_offer_id": postback.pixel_offer_id,
        "warnings": "; ".join(warnings)[:512],
        "test": test,
        **{f"adv_sub{i}": value for i, value in enumerate(postback.subs, 1)},
        **_attribution_columns(attribution.click, raw.received_at),
    }


def _attribution_columns(click: Click | None, now: datetime) -> dict[str, Any]:
    if click is None:
        return {
            "link_id": None,
            "affiliate_id": None,
            "offer_id": None,
            "campaign": "",
            "country": "",
            "device_type": "",
            "source": "",
            "landing_page": "",
            "os": "",
            "browser": "",
            "attributed_at": None,
            **{f"sub{i}": "" for i in range(1, 6)},
        }
    return {
        "link_id": click.link_id,
        "affiliate_id": click.affiliate_id,
        "offer_id": click.offer_id,
        "campaign": click.campaign,
        "country": click.traits.country,
        "device_type": click.traits.device_type,
        "source": click.source,
        "landing_page": click.landing_page,
        "os": click.traits.os,
        "browser": click.traits.browser,
        "attributed_at": now,
        **{f"sub{i}": value for i, value in enumerate(click.subs, 1)},
    }


def _attribute_waiting(rec: Recording, catalog: Catalog, now: datetime) -> int:
    rec.check_catalog()
    waiting = rec.unattributed()
    landed = rec.clicks([row["click_id"] for row in waiting]) if waiting else {}
    done = 0
    arrived: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in waiting:
        click = landed.get(row["click_id"])
        if click is not None and _attribute_late(rec, catalog, row, click, now):
            done += 1
            if row["player_id"] and not click.test:
                arrived.setdefault((row["advertiser_id"], row["player_id"]), []).append(row)
    # A player's CPA is decided once all their waiting events are attributed and priced: decided
    # at their registration, it would not see the deposit attributed after it, and nothing would
    # decide it again (the player is attributed by then).
    rec.load_players(arrived)
    for key, rows in arrived.items():
        player = rec.player(key)
        if player is not None:
            for row in rows:
                commissions.player_changed(rec, catalog, player, row, True, now)
    rec.flush()
    commissions.recompute_months(rec, catalog, now)
    outbound.enqueue(rec, catalog, landed, now)
    return done


def _attribute_late(
    rec: Recording, catalog: Catalog, row: dict[str, Any], click: Click, now: datetime
) -> bool:
    offer = catalog.offers.get(click.offer_id)
    rejected = check_offer(
        row["advertiser_id"], row["event"], offer, row["click_id"], catalog, row["pixel_offer_id"]
    )
    if rejected is not None or offer is None:
        # The click belongs to another advertiser's offer, or to another offer than the pixel's
        # that reported it (or the event is not the offer's).
        rec.change_conversion(row, attributed_at=now)
        rec.change_status(row, Status.REJECTED, now, None)
        return False
    payout, currency = price(row["event"], row["payout"], row["currency"], offer)
    values: dict[str, Any] = {
        **_attribution_columns(click, now),
        "payout": payout,
        "currency": currency,
        "test": click.test,
    }
    day = rate_day(row["event"], row["period"], row["event_at"])
    priced = _in_deal_currency(rec, catalog, click, row["event"], payout, currency, day, row["period"])
    # No rate on record leaves the amount out of commissions (it cannot be refused any more).
    if isinstance(priced, _Priced) and priced.currency is not None:
        values |= {
            "deal_amount": priced.amount,
            "deal_currency": priced.currency,
            "fx_rate": None if priced.rate is None else plain(priced.rate),
        }
    rec.change_conversion(row, **values)
    if click.test:
        return True  # previewed by the tester only (ADR 13)
    rec.notify(row)
    rec.count(row, Status(row["status"]), payout, +1)
    rec.attribute_players(row["advertiser_id"], click)
    return True
