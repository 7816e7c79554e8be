"""What affiliates earn, re-decided inside the transaction of every postback that can change it
(ADR 7): a player's CPA when their events change, and the RevShare months those changes touch.
The rules are core/commission.py's; this module books the difference from what the ledger holds.

RevShare months are recomputed once per group of postbacks, at its end, in month order, from the
changes the group made to their inputs (each conversion's share of its month: its NGR, or one FTD,
followed by store/recording.Recording): a daily batch of a hundred NGR reports for one month costs
one recomputation of that month, not a hundred sums over its reports, and two processes
recomputing overlapping months lock them in the same order.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from clickback.core.caps import CAPPED_EVENT, OVER_CAP
from clickback.core.commission import (
    Deal,
    DealKind,
    InMonthCurrency,
    Qualified,
    RevSharePeriod,
    check_rules,
    cpa_may_change,
    crossing_day,
    in_month_currency,
    period_bounds,
    period_of,
    qualify,
    revshare_period,
)
from clickback.core.events import dedupe_family
from clickback.core.intake import player_key
from clickback.core.lifecycle import PAYABLE, Status, can_move
from clickback.core.model import Catalog
from clickback.core.money import money_text
from clickback.core.reasons import Reason, Rejected
from clickback.store import caps, ledger
from clickback.store.recording import Key, MonthChange, Player, Recording

MAX_CAUSES_SHOWN = 5


def player_changed(
    rec: Recording,
    catalog: Catalog,
    player: Player,
    cause: Mapping[str, Any],
    arrived: bool,
    now: datetime,
) -> None:
    """Conversion `cause` of the player arrived (`arrived`) or changed (status, label): their
    CPA is re-decided when it may change. (What it changes in RevShare months the Recording
    follows by itself.)"""
    if player.affiliate_id is None or player.offer_id is None:
        return  # click still in flight: decided when it lands
    deal = _cpa_deal(catalog, player)
    if deal is None:
        return
    if cause["event"] == CAPPED_EVENT and not arrived:
        _cpa_decided_by_hand(rec, player, deal, cause, now)
    elif cpa_may_change(cause["event"], arrived, player.qualified_at is not None):
        _cpa(rec, player, deal, cause["id"], now)


def _cpa_deal(catalog: Catalog, player: Player) -> Deal | None:
    """The CPA terms a player is judged by. Once they qualified, those they qualified under, kept
    on their row: a booked CPA keeps its rules and amount whatever the deal is now (a rejection
    after the deal became RevShare-only reverses it; a minimum raised since does not), as a
    RevShare month that has ended keeps its terms. Before, the deal in force if it pays CPA."""
    if (kept := ledger.kept_cpa_deal(player.cpa_currency, player.cpa_terms)) is not None:
        return kept
    assert player.offer_id is not None and player.affiliate_id is not None
    deal = catalog.deal_for(player.offer_id, player.affiliate_id)
    if deal is None or deal.cpa is None or deal.kind not in (DealKind.CPA, DealKind.HYBRID):
        return None
    return deal


def approval_refused(rec: Recording, catalog: Catalog, qualified: Mapping[str, Any], new: Status) -> str:
    """Why a conversion may not move to `new` now ('' if it may), by a person or by an
    advertiser's status postback: a `qualified_cpa` approved is a CPA paid, so under CPA terms
    (those the player qualified under, whatever the deal is now: _cpa_deal) its status and the
    ledger agree only while their rules hold. (One the rules reversed is approved again by them
    once they hold; one disallowed by hand, by a person then.) Without such terms the conversion
    is the advertiser's own report, which no rule of clickback's decides."""
    approving = new in PAYABLE and Status(qualified["status"]) not in PAYABLE
    if (
        qualified["event"] != "qualified_cpa"
        or not approving
        or qualified["test"]
        or not qualified["player_id"]
    ):
        return ""
    player = rec.player((qualified["advertiser_id"], qualified["player_id"]))
    if player is None or player.offer_id is None or player.affiliate_id is None:
        return ""
    deal = _cpa_deal(catalog, player)
    if deal is None or deal.cpa is None:
        return ""
    events = rec.player_events(player)
    if qualify(deal.cpa, events, deal.currency) is not None:
        return ""
    missing = "; ".join(
        f"{c.rule}: {c.detail.removeprefix('not held: ')}"
        for c in check_rules(deal.cpa, events, deal.currency)
        if not c.held
    )
    return (
        f"the CPA's rules do not hold now ({missing}): the ledger would pay nothing; "
        "it can be approved once they hold"
    )


def _cpa(rec: Recording, player: Player, deal: Deal, cause: int, now: datetime) -> None:
    assert deal.cpa is not None
    verdict = qualify(deal.cpa, rec.player_events(player), deal.currency)
    if verdict is not None and player.qualified_at is None:
        _book_cpa(rec, player, deal, verdict, now)
    elif verdict is None and player.qualified_at is not None:
        qualified = rec.conversion_by_key(_qualified_key(player))
        # A CPA a person (or a reconciliation) disallowed stays disallowed, whatever the events do.
        disallowed = qualified is not None and Status(qualified["status"]) not in PAYABLE
        booked = ledger.booked_cpa(rec.conn, player.id)
        if booked is not None:
            _reverse_cpa(rec, player, booked, cause, now)
        else:
            _reject_unpaid(rec, player, now)
        if not disallowed:
            # The rules may hold again (a deposit's dispute won, the next deposit after a declined
            # first one): the player qualifies again then, and the CPA is booked again.
            rec.change_player(player, qualified_at=None)


def _cpa_decided_by_hand(
    rec: Recording, player: Player, deal: Deal, qualified: Mapping[str, Any], now: datetime
) -> None:
    """A person (or a reconciliation) rejected or cancelled the player's qualified_cpa conversion:
    the CPA is disallowed and its entry reversed, while the events that qualified stand (an
    operator refusing a CPA keeps the deposits). Approved again (a dispute won): booked again;
    a person, or an advertiser's status postback of it, may do so only while the rules hold
    (approval_refused; the postback is refused cpa_rules_not_met). Disallowed, the player
    stays qualified, so no later event books it: also when the rules had already reversed it
    (qualified_at cleared)."""
    assert deal.cpa is not None
    booked = ledger.booked_cpa(rec.conn, player.id)
    if Status(qualified["status"]) not in PAYABLE:
        if booked is not None:
            why = f"conversion {qualified['id']} ({qualified['event']}) was {qualified['status']} by hand"
            _reverse_cpa(rec, player, booked, qualified["id"], now, why)
        if player.qualified_at is None:
            rec.change_player(player, qualified_at=qualified["event_at"])
        return
    verdict = qualify(deal.cpa, rec.player_events(player), deal.currency)
    if booked is None and verdict is not None and not qualified.get("over_cap"):
        _append_cpa(rec, player, deal, verdict, rec.conversion(verdict.by), now)
    elif verdict is None:
        # Allowed again while the rules do not hold: booked when they do (_cpa).
        rec.change_player(player, qualified_at=None)


def _qualified_key(player: Player) -> Key:
    # A player's CPA is never a test's: a test click's postbacks make no player (ADR 13).
    return (player.advertiser_id, player_key(player.player_id), "qualified_cpa", False)


def _book_cpa(rec: Recording, player: Player, deal: Deal, q: Qualified, now: datetime) -> None:
    """A player qualifies once at a time: qualified_at is set under the player's row lock, and
    cleared only when the rules stop holding (_cpa). The terms they first qualify under are
    kept with it, for good: qualifying again is the same qualification (as its cap slot is)."""
    assert deal.cpa is not None
    kept = ledger.kept_cpa_values(deal) if player.cpa_terms is None else {}
    rec.change_player(player, qualified_at=q.at, **kept)
    amount = deal.cpa_amount(player.country)
    source = rec.conversion(q.by)
    again = rec.conversion_by_key(_qualified_key(player))
    if again is not None:
        # Qualified again after the rules stopped holding: the same qualification, in the cap
        # slot it took the first time (a reversal frees none, ADR 17), paid again unless it was
        # past the cap then. (One disallowed by hand keeps the player qualified: not here.)
        status = Status(again["status"])
        if status not in PAYABLE and not can_move(status, Status.APPROVED):
            return  # cancelled: final
        if not again.get("over_cap"):
            _append_cpa(rec, player, deal, q, source, now)
            if (again["payout"], again["currency"]) != (amount, deal.currency):
                # Reports show what the ledger now holds (a player who qualified before their
                # terms were kept, 0032, qualifies again under the deal as it is now).
                rec.recount(
                    again,
                    payout=amount,
                    currency=deal.currency,
                    deal_amount=amount,
                    deal_currency=deal.currency,
                    updated_at=now,
                )
        if status not in PAYABLE:
            rec.change_status(again, Status.APPROVED, now, None)
        return
    # Caps (ADR 17): past one, the qualification is recorded, marked over-cap, and not paid.
    assert player.offer_id is not None and player.affiliate_id is not None
    over_cap = not caps.take(rec.db, rec.conn, player.offer_id, player.affiliate_id, CAPPED_EVENT, q.at)
    if over_cap:
        amount = Decimal(0)
        # Seen in the postback log too, on the postback that made the player qualify.
        rec.note(
            q.by, f"{OVER_CAP}: the CPA qualification came past a cap of offer {player.offer_id}: not paid"
        )
    else:
        _append_cpa(rec, player, deal, q, source, now)
    # qualified_cpa as a conversion of its own: reports count it, outbound postbacks can fire on it.
    key = _qualified_key(player)
    if rec.conversion_by_key(key) is None:
        values = {name: value for name, value in source.items() if name not in _NOT_COPIED}
        values |= {
            "dedupe_key": key[1],
            "dedupe_event": dedupe_family("qualified_cpa"),
            "txn_id": None,
            "event": "qualified_cpa",
            "status": Status.APPROVED.value,
            "payout": amount,
            "currency": deal.currency,
            "deal_amount": amount,
            "deal_currency": deal.currency,
            "fx_rate": None,
            "period": None,
            "event_at": q.at,
            "created_at": now,
            "updated_at": now,
            "attributed_at": now,
            "warnings": OVER_CAP if over_cap else "",
            "over_cap": over_cap,
        }
        added = rec.add_conversion(values)
        rec.history(added["id"], None, Status.APPROVED, now, None)
        rec.count(added, Status.APPROVED, amount, +1)


def _append_cpa(
    rec: Recording,
    player: Player,
    deal: Deal,
    q: Qualified,
    source: Mapping[str, Any],
    now: datetime,
) -> None:
    assert deal.cpa is not None
    # The hold counts from the qualifying event: one reported after its hold ended is due at once.
    hold_until = q.at + timedelta(days=deal.cpa.hold_days)
    rec.append_entry(
        now,
        kind=ledger.CPA,
        affiliate_id=player.affiliate_id,
        offer_id=player.offer_id,
        player=player.id,
        conversion_id=q.by,
        # The month the player qualified in, by event time, even when reported later.
        period=period_of(q.at),
        amount=deal.cpa_amount(player.country),
        currency=deal.currency,
        fx_rate=source["fx_rate"],
        status=ledger.PENDING if hold_until > now else ledger.APPROVED,
        hold_until=hold_until if deal.cpa.hold_days else None,
        detail=f"qualified: {q.explanation}; conversions {', '.join(map(str, q.because))}",
    )


_NOT_COPIED = frozenset({"id"})


def _reverse_cpa(
    rec: Recording, player: Player, booked: Any, cause: int, now: datetime, why: str = ""
) -> None:
    ledger.mark_reversed(rec.conn, booked.id, now)
    rec.append_entry(
        now,
        kind=ledger.CPA,
        affiliate_id=booked.affiliate_id,
        offer_id=booked.offer_id,
        player=player.id,
        conversion_id=cause,
        # A reversal lands in the month it happens, as affiliate programmes settle adjustments.
        period=period_of(now),
        amount=-booked.amount,
        currency=booked.currency,
        fx_rate=booked.fx_rate,
        status=ledger.APPROVED,
        reverses_id=booked.id,
        detail=f"reversal of entry {booked.id}: "
        + (why or f"conversion {cause} changed and the rules no longer hold"),
    )
    qualified = rec.conversion_by_key(_qualified_key(player))
    if qualified is not None and Status(qualified["status"]) in PAYABLE:
        rec.change_status(qualified, Status.REJECTED, now, None)


def _reject_unpaid(rec: Recording, player: Player, now: datetime) -> None:
    """A qualification past a cap (ADR 17) whose rules no longer hold: nothing was paid, so
    nothing is reversed, but its qualified_cpa conversion is rejected, as a paid one's is."""
    qualified = rec.conversion_by_key(_qualified_key(player))
    if qualified is not None and qualified.get("over_cap") and qualified["status"] != Status.REJECTED.value:
        rec.change_status(qualified, Status.REJECTED, now, None)


def month_currency(rec: Recording, deal: Deal, affiliate_id: int, offer_id: int, period: str) -> str:
    """The one currency a RevShare month is priced in, every NGR report of it converted into it
    (service/postbacks prices them): the currency its row was first booked in, the deal's then.
    A deal changing currency changes it only for months first booked after the change. Before
    its first row, the currency its first NGR report was priced in (under a deal that paid no
    RevShare then); before anything, the deal's."""
    return rec.month_currency(affiliate_id, offer_id, period) or deal.currency


def month_refused(
    rec: Recording, catalog: Catalog, affiliate_id: int, offer_id: int, period: str, now: datetime
) -> Rejected | None:
    """A postback counting in RevShare month `period` (an NGR report, a first deposit) refused
    missing_exchange_rate, as one whose own amount has no rate is, while recomputing this month
    or a later one would need a rate not on record: a deficit carried in from a month of another
    currency, NGR tiers of a deal in another currency than the month's (converted at the rate of
    the month's first day: core/commission.in_month_currency). A rate once on record stays, so
    the months never lack one later, but for what nothing could refuse (a conversion attributed
    when its click lands)."""
    deal = catalog.deal_for(offer_id, affiliate_id)
    if deal is None or not deal.pays_revshare:
        return None
    terms = deal.revshare
    assert terms is not None
    if not (terms.negative_carryover or terms.ngr_tiers):
        return None  # no month of these terms converts anything
    if rec.in_one_currency(affiliate_id, offer_id, period, deal.currency):
        return None  # nothing to convert: no rate to miss
    months = dict(rec.booked_months(affiliate_id, offer_id))
    if period not in months:  # month_currency may read the month's reports
        months[period] = month_currency(rec, deal, affiliate_id, offer_id, period)
    previous = ""
    for month, currency in sorted(months.items()):
        needed = []
        if month >= period and terms.negative_carryover and previous not in ("", currency):
            needed.append((previous, "the deficit carried into"))
        if month >= period and terms.ngr_tiers and period_bounds(month)[1] > now:
            needed.append((deal.currency, "the NGR tiers of"))
        for base, what in needed:
            day = crossing_day(month)
            if base != currency and rec.rate(base, currency, day) is None:
                missing = f"{base}→{currency} on {day.isoformat()}"
                why = f"{what} RevShare month {month}, priced in {currency}"
                return Rejected(Reason.MISSING_EXCHANGE_RATE, f"{missing} ({why})")
        previous = currency
    return None


def recompute_months(rec: Recording, catalog: Catalog, now: datetime) -> None:
    """The RevShare months whose inputs the group changed (Recording.months), and each later
    month whose carry-in changes as a result. The group's rows must be written (flush) first: a
    month's first row counts its inputs from scratch."""
    by_offer: dict[tuple[int, int], dict[str, MonthChange]] = {}
    for (affiliate_id, offer_id, period), change in rec.months.items():
        by_offer.setdefault((affiliate_id, offer_id), {})[period] = change
    for (affiliate_id, offer_id), changes in sorted(by_offer.items()):
        deal = catalog.deal_for(offer_id, affiliate_id)
        paying = deal if deal is not None and deal.pays_revshare else None
        _cascade(rec, affiliate_id, offer_id, changes, paying, now)
    rec.months.clear()


def recompute_due(rec: Recording, catalog: Catalog, now: datetime, limit: int) -> int:
    """Up to `limit` months whose kept inputs a migration corrected (store.ledger.take_due),
    recomputed as a group's change of nothing to them would: each books the difference from
    what it booked, and each later month whose carry-in changes with it books its own."""
    rec.check_catalog()
    due = ledger.take_due(rec.conn, limit)
    for row in due:
        key = (row.affiliate_id, row.offer_id, row.period)
        rec.months[key] = MonthChange(causes=[row.conversion_id], why=row.why)
    recompute_months(rec, catalog, now)
    return len(due)


def _cascade(
    rec: Recording,
    affiliate_id: int,
    offer_id: int,
    changes: Mapping[str, MonthChange],
    deal: Deal | None,
    now: datetime,
) -> None:
    """`deal`: the deal in force if it pays RevShare, else None (CPA-only, or no deal). Without
    one, no month is booked for the first time, and only the months that have ended with terms
    kept are recomputed, by those terms: what was booked under them follows their inputs (a
    report rejected late, a claim a migration took out) whatever the deal pays now. The others'
    inputs are kept current, should RevShare be paid again."""
    terms = deal.revshare if deal is not None else None
    conn = rec.conn
    first, last = min(changes), max(changes)
    booked = ledger.lock_months(conn, affiliate_id, offer_id, first)
    # A month's first row counts its inputs from scratch, this group's own conversions included.
    counted: dict[str, tuple[Decimal, int]] = {}
    for period in sorted(set(changes) - set(booked)):
        if deal is None or terms is None:
            break  # a month without a row books nothing under a deal paying no RevShare
        currency = month_currency(rec, deal, affiliate_id, offer_id, period)
        inputs = ledger.month_inputs(conn, affiliate_id, offer_id, period, currency)
        created = ledger.new_month(rec.db, conn, affiliate_id, offer_id, period, currency, terms, inputs, now)
        if created is not None:
            counted[period] = inputs
        booked[period] = created or ledger.lock_months(conn, affiliate_id, offer_id, period)[period]
    # The deficit carried on, in the currency of the month it comes from.
    carry = ledger.carry_before(conn, affiliate_id, offer_id, first)
    causes: list[int] = []
    why = ""
    for period, row in sorted(booked.items()):
        change = changes.get(period)
        # A month that has ended keeps the terms it was priced under: a deal changed since (a new
        # percentage from December) applies to the running month and those after it, not to
        # October's late adjustment. Months booked before the terms were kept take the deal's.
        # A month first booked here holds the deal's terms as they are, in the deal's currency,
        # not yet its own: priced as the deal's (its NGR tiers converted), then kept converted.
        ended = period_bounds(period)[1] <= now and period not in counted
        stored = ledger.month_terms(row) if ended else None
        # Kept terms are in the month's currency; the deal's are in its own.
        if stored is not None:
            priced_under, terms_currency = stored, row.currency
        elif deal is not None and terms is not None:
            priced_under, terms_currency = terms, deal.currency
        else:
            # Priced under no terms now: what it booked stays, and its carry-out with it.
            if change is not None:
                ledger.add_to_month(conn, affiliate_id, offer_id, period, change.ngr, change.ftds)
            elif period > last:
                return
            carry = (row.carry_out, row.currency)
            continue
        converted = in_month_currency(row.currency, period, priced_under, terms_currency, *carry, rec.rate)
        carry_in = converted.carry_in if converted.terms.negative_carryover else Decimal(0)
        if change is None and row.carry_in == carry_in:
            if period > last:
                return  # nothing changes from here on
            carry = (row.carry_out, row.currency)
            continue
        if period in counted:
            ngr, ftds = counted[period]
        elif change is not None:
            ngr, ftds = row.ngr + change.ngr, row.ftds + change.ftds
        else:
            ngr, ftds = row.ngr, row.ftds
        # A later month whose carry-in changed is caused by what changed the months before it.
        causes, why = (change.causes, change.why) if change is not None else (causes, why)
        month = revshare_period(converted.terms, row.currency, ngr, ftds, converted.carry_in)
        _book_month(rec, affiliate_id, offer_id, period, month, row, causes, why, converted, now)
        # Tiers left out for want of a rate are not kept so: the month takes the deal's again
        # when recomputed, and converts them once the rate is on record.
        kept = None if converted.tiers_dropped else converted.terms
        ledger.save_month(conn, affiliate_id, offer_id, period, month, kept, now)
        carry = (month.carry_out, row.currency)


def _book_month(
    rec: Recording,
    affiliate_id: int,
    offer_id: int,
    period: str,
    month: RevSharePeriod,
    row: Any,
    causes: list[int],
    why: str,
    converted: InMonthCurrency,
    now: datetime,
) -> None:
    """The difference between the month's RevShare and what is booked, as an entry in the
    month's currency; `why`, if given, says what changed it instead of the causes."""
    delta = month.earnings - row.earnings
    if not delta:
        return
    cause = causes[-1]
    shown = ", ".join(map(str, causes[-MAX_CAUSES_SHOWN:]))
    currency = row.currency
    carry_note = f" ({converted.carry_note})" if converted.carry_note else ""
    terms_note = f" ({converted.terms_note})" if converted.terms_note else ""
    rec.append_entry(
        now,
        kind=ledger.REVSHARE,
        affiliate_id=affiliate_id,
        offer_id=offer_id,
        conversion_id=cause,
        period=period,
        amount=delta,
        currency=currency,
        fx_rate=rec.conversion(cause)["fx_rate"],
        percent=str(month.percent),
        status=ledger.APPROVED if period_bounds(period)[1] <= now else ledger.PENDING,
        reverses_id=ledger.reversible(rec.conn, cause) if delta < 0 else None,
        detail=(
            f"NGR {money_text(month.ngr, currency)}, "
            f"carry-in {money_text(month.carry_in, currency)}{carry_note}, "
            f"FTDs {month.ftds}, {month.percent}%{terms_note} ⇒ {money_text(month.earnings, currency)} "
            f"(booked {money_text(row.earnings, currency)}); "
            + (why or f"after conversion{'s' if len(causes) > 1 else ''} {shown}")
        ),
    )
