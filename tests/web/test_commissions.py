"""Players, deals and the commission ledger end to end over HTTP postbacks, on both databases."""

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from clickback.core.clicks import ClickRequest, ClickTaken, take_click
from clickback.core.commission import RevShareTerms, period_bounds, revshare_period
from clickback.store import ledger as store_ledger
from clickback.store.tables import deals, players, revshare_periods
from tests.conftest import BROWSER_UA, Client, World, make_world

THIS_MONTH = datetime.now(UTC).strftime("%Y-%m")


def month(shift: int, at: datetime | None = None) -> str:
    """The month (YYYY-MM) `shift` months after the one `at` (now) falls in; before it if negative."""
    at = at or datetime.now(UTC)
    index = at.year * 12 + at.month - 1 + shift
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


# The months NGR tests report: ended ones, all within the maximum event age (180 days by default),
# each after the click of the players they register (LONG_AGO).
EARLIEST_MONTH = -5
LONG_AGO = period_bounds(month(EARLIEST_MONTH))[0] + timedelta(hours=1)
CPA_100 = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}


def deal(
    client: Client, offer: dict[str, Any], body: dict[str, Any], affiliate: dict[str, Any] | None = None
) -> Any:
    path = (
        f"/offers/{offer['id']}/deal"
        if affiliate is None
        else f"/offers/{offer['id']}/deals/{affiliate['id']}"
    )
    return client.api("PUT", path, json=body)


def new_offer(client: Client, world: World, name: str, currency: str, **extra: Any) -> dict[str, Any]:
    """A Northstar offer beside the world's."""
    body = {
        "advertiser_id": world.northstar["id"],
        "name": name,
        "url_template": "https://offer.example.com/?cid={click_id}",
        "currency": currency,
        **extra,
    }
    return dict(client.api("POST", "/offers", json=body))


def alice_link(client: Client, world: World, offer: dict[str, Any]) -> str:
    body = {"affiliate_id": world.alice["id"], "offer_id": offer["id"]}
    return str(client.api("POST", "/links", json=body)["code"])


def send(client: Client, world: World, **params: str) -> httpx.Response:
    return client.postback(token=world.token, **params)


def old_click(client: Client, code: str, at: datetime, **params: str) -> str:
    """A click taken `at` (in the past), through the real click rule and writer."""
    runtime = client.node.runtime

    async def take() -> str:
        request = ClickRequest(code, params, "203.0.113.9", BROWSER_UA, "")
        taken = take_click(
            request, runtime.catalog.current, runtime.tracker.codec, at, runtime.settings.privacy
        )
        assert isinstance(taken, ClickTaken)
        await runtime.writer.take(taken.click)
        await runtime.writer.flush()
        return taken.click.click_id

    return client.node.call(take)


def register(client: Client, world: World, link: str, player: str, clicked_at: datetime | None = None) -> str:
    """A player registered through a click now, or one taken `clicked_at`."""
    if clicked_at is None:
        click_id = client.click(link)
        client.flush()
    else:
        click_id = old_click(client, link, clicked_at)
    reply = send(client, world, click_id=click_id, event="reg", player_id=player)
    assert reply.json()["result"] == "accepted", reply.text
    return click_id


def ledger(client: Client, **params: Any) -> list[dict[str, Any]]:
    return client.items("/commissions", **params)


def statement(client: Client, affiliate: dict[str, Any], period: str = THIS_MONTH) -> dict[str, Any]:
    return dict(client.api("GET", f"/statements/{affiliate['id']}/{period}"))


def test_player_qualifies_for_cpa_through_later_events_naming_only_the_player(
    client: Client, world: World
) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P-1")

    ftd = send(client, world, event="deposit", player_id="P-1", payout="25", currency="EUR", txn_id="D-1")

    assert ftd.status_code == 200, ftd.text
    assert ftd.json()["event"] == "first_deposit"  # detected: the player's first deposit
    (entry,) = ledger(client)
    assert (entry["kind"], entry["amount"], entry["currency"], entry["status"]) == (
        "cpa",
        "100.00",
        "EUR",
        "approved",
    )
    assert entry["affiliate_id"] == world.alice["id"]
    assert entry["conversion_id"] == ftd.json()["conversion_id"]
    assert "first deposit 25" in entry["detail"]
    events = [c["event"] for c in client.items("/conversions")]
    assert sorted(events) == ["first_deposit", "qualified_cpa", "registration"]
    line = statement(client, world.alice)["lines"][0]
    assert (line["players"], line["ftds"], line["qualified_cpas"], line["cpa_earnings"]) == (
        1,
        1,
        1,
        "100.00",
    )


def test_another_players_transaction_of_the_same_click_neither_repeats_nor_changes_it(
    client: Client, world: World
) -> None:
    """Two players of one click (one household) and transaction IDs numbered per player."""
    deal(client, world.casino, CPA_100)
    click_id = register(client, world, world.alice_casino, "P1")
    assert send(client, world, click_id=click_id, event="reg", player_id="P2").json()["result"] == "accepted"
    first = send(client, world, event="deposit", player_id="P1", payout="50", txn_id="1")

    for status in ("approved", "rejected"):
        other = send(client, world, event="deposit", player_id="P2", payout="70", txn_id="1", status=status)
        assert (other.status_code, other.json()["reason"]) == (409, "transaction_conflict"), other.text
        assert other.json()["detail"] == "1: recorded for player P1"

    kept = client.api("GET", f"/conversions/{first.json()['conversion_id']}")
    assert (kept["event"], kept["status"], kept["player_id"]) == ("first_deposit", "approved", "P1")
    assert [(e["amount"], e["status"]) for e in ledger(client, kind="cpa")] == [("100.00", "approved")]


def t1(client: Client, world: World, status: str | None = None) -> httpx.Response:
    """Player P1's deposit T1 of 50 (the CPA's baseline is 20), with a status when given."""
    given = {"status": status} if status else {}
    return send(client, world, event="deposit", player_id="P1", payout="50", txn_id="T1", **given)


def reversed_by_the_rules(client: Client, world: World) -> dict[str, Any]:
    """P1 qualifies for a CPA of 100 with T1, then T1 is rejected: the CPA is reversed. The
    qualified_cpa conversion, rejected by the rules."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    t1(client, world)
    t1(client, world, "rejected")
    (qualified,) = client.items("/conversions", event="qualified_cpa")
    return dict(qualified)


def cpa_total(client: Client) -> Decimal:
    return sum((Decimal(e["amount"]) for e in ledger(client, kind="cpa")), Decimal(0))


def qualified_cpa(client: Client) -> dict[str, Any]:
    """The one qualified_cpa conversion."""
    (qualified,) = client.items("/conversions", event="qualified_cpa")
    return qualified


def qualified_status(client: Client) -> str:
    return str(qualified_cpa(client)["status"])


def test_the_deposit_after_a_cancelled_first_one_is_the_first_deposit_and_qualifies(
    client: Client, world: World
) -> None:
    """A first payment declined, the second gone through: the second is the player's FTD."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    first = t1(client, world, "pending")
    assert (first.json()["event"], cpa_total(client)) == ("first_deposit", Decimal(100))
    t1(client, world, "cancelled")
    assert cpa_total(client) == 0

    second = send(client, world, event="deposit", player_id="P1", payout="60", txn_id="T2")

    assert second.json()["event"] == "first_deposit", second.text
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    (player,) = client.items("/players", player_id="P1")
    assert player["qualified_at"] is not None
    line = statement(client, world.alice)["lines"][0]
    assert (line["ftds"], line["qualified_cpas"], line["cpa_reversals"], line["cpa_earnings"]) == (
        1,
        2,
        1,
        "100.00",
    )
    # The declined one keeps its name (no FTD figure counts it); the one that went through is first.
    labels = {
        c["txn_id"]: (c["event"], c["status"]) for c in client.items("/conversions", event="first_deposit")
    }
    assert labels == {"T1": ("first_deposit", "cancelled"), "T2": ("first_deposit", "approved")}


def test_a_first_deposit_rejected_then_approved_again_takes_its_place_back(
    client: Client, world: World
) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    t1(client, world)
    send(client, world, event="deposit", player_id="P1", payout="10", txn_id="T2")  # below the 20 baseline
    t1(client, world, "rejected")
    # T2 is the first deposit now, and below the baseline: the CPA is reversed.
    events = {c["txn_id"]: c["event"] for c in client.items("/conversions") if c["txn_id"]}
    assert (events, cpa_total(client), qualified_status(client)) == (
        {"T1": "first_deposit", "T2": "first_deposit"},
        Decimal(0),
        "rejected",
    )

    back = t1(client, world, "approved")

    assert back.json()["result"] == "updated"
    events = {c["txn_id"]: c["event"] for c in client.items("/conversions") if c["txn_id"]}
    assert events == {"T1": "first_deposit", "T2": "deposit"}
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    amounts = sorted(Decimal(e["amount"]) for e in ledger(client, kind="cpa"))
    assert amounts == [Decimal(-100), Decimal(100), Decimal(100)]
    line = statement(client, world.alice)["lines"][0]
    assert (line["ftds"], line["cpa_earnings"]) == (1, "100.00")


def test_a_player_qualifying_again_after_the_deal_changed_is_paid_the_amount_they_qualified_for(
    client: Client, world: World
) -> None:
    reversed_by_the_rules(client, world)
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "120", "ftd_min": "20"}})

    t1(client, world, "approved")

    assert cpa_total(client) == Decimal(100)  # +100, -100, +100: the terms kept when they qualified
    (qualified,) = client.items("/conversions", event="qualified_cpa")
    assert (qualified["status"], qualified["payout"]) == ("approved", "100.00")


def test_a_player_qualified_before_terms_were_kept_qualifies_again_under_the_deal_and_shows_it(
    client: Client, world: World
) -> None:
    """Qualified before 0032 under a deal holding no CPA terms at the upgrade: none kept, so
    qualifying again takes the deal as it is then, and reports show what the ledger holds."""
    reversed_by_the_rules(client, world)

    async def as_qualified_before_0032() -> None:
        async with client.node.runtime.db.write() as conn:
            await conn.execute(update(players).values(cpa_terms=None, cpa_currency=None))

    client.node.call(as_qualified_before_0032)
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "120", "ftd_min": "20"}})

    t1(client, world, "approved")

    assert cpa_total(client) == Decimal(120)  # +100, -100, +120
    (qualified,) = client.items("/conversions", event="qualified_cpa")
    assert (qualified["status"], qualified["payout"]) == ("approved", "120.00")
    assert client.report(group_by="day")["rows"][0]["cpa_commission"] == {"EUR": "120.00"}
    # Qualified again, the player keeps these terms from now on.
    deal(client, world.casino, {"kind": "cpa", "cpa": {"amount": "150", "ftd_min": "20"}})
    t1(client, world, "rejected")
    t1(client, world, "approved")
    assert cpa_total(client) == Decimal(120)


def test_a_cpa_cancelled_by_hand_after_the_rules_reversed_it_is_not_booked_again(
    client: Client, world: World
) -> None:
    qualified = reversed_by_the_rules(client, world)
    client.api(
        "POST", f"/conversions/{qualified['id']}/status", json={"status": "cancelled", "reason": "abuse"}
    )

    t1(client, world, "approved")

    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "cancelled")


def test_a_declined_first_deposit_approved_after_an_earlier_one_became_first_is_a_deposit(
    client: Client, world: World
) -> None:
    """One first deposit at a time, whatever order the statuses and the late reports come in."""
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    before_d1 = datetime.now(UTC).isoformat()  # after the click, before D1 arrives
    send(client, world, event="deposit", player_id="P1", payout="50", txn_id="D1")
    send(client, world, event="deposit", player_id="P1", payout="50", txn_id="D1", status="rejected")
    made_first = {"event_time": before_d1}  # reported late, made before D1
    send(client, world, event="deposit", player_id="P1", payout="40", txn_id="D0", **made_first)
    send(client, world, event="deposit", player_id="P1", payout="50", txn_id="D1", status="approved")

    events = {c["txn_id"]: c["event"] for c in client.items("/conversions") if c["txn_id"]}
    assert events == {"D0": "first_deposit", "D1": "deposit"}
    assert statement(client, world.alice)["lines"][0]["ftds"] == 1
    assert client.report(group_by="day")["rows"][0]["ftds"] == 1


def test_a_cpa_the_rules_reversed_can_still_be_rejected_by_hand_and_stays_unpaid(
    client: Client, world: World
) -> None:
    qualified = reversed_by_the_rules(client, world)
    assert qualified["status"] == "rejected"

    body = {"status": "rejected", "reason": "bonus abuse"}
    client.api("POST", f"/conversions/{qualified['id']}/status", json=body)
    t1(client, world, "approved")

    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "rejected")
    history = client.api("GET", f"/conversions/{qualified['id']}")["history"]
    assert history[-1]["reason"] == "bonus abuse"


def test_a_cpa_a_person_disallowed_is_not_booked_again_by_later_events(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P1")
    t1(client, world)
    (qualified,) = client.items("/conversions", event="qualified_cpa")
    client.api(
        "POST", f"/conversions/{qualified['id']}/status", json={"status": "rejected", "reason": "fraud"}
    )
    assert cpa_total(client) == 0

    t1(client, world, "rejected")
    t1(client, world, "approved")
    send(client, world, event="deposit", player_id="P1", payout="80", txn_id="T3")

    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "rejected")


def test_a_player_whose_events_all_came_before_their_click_landed_qualifies_when_it_lands(
    client: Client, world: World
) -> None:
    """Registration with the click ID and the first deposit naming only the player, both while
    the click is still in the writer's buffer: the CPA is decided once both are attributed."""
    deal(client, world.casino, CPA_100)
    with client.node.writer_held():
        click_id = client.click(world.alice_casino)
        send(client, world, click_id=click_id, event="reg", player_id="P1")
        ftd = send(client, world, event="deposit", player_id="P1", payout="25", txn_id="T1")
        assert ftd.json()["event"] == "first_deposit" and ledger(client) == []
    client.flush()  # the click lands; the conversions waiting for it are attributed after it

    (entry,) = ledger(client, kind="cpa")
    assert (entry["amount"], entry["conversion_id"]) == ("100.00", ftd.json()["conversion_id"])
    assert qualified_status(client) == "approved"


def test_a_month_that_has_ended_keeps_its_terms_when_the_deal_changes_after_it(
    client: Client, world: World
) -> None:
    """25 % until the deal is raised to 40 %: a late adjustment of a month that had ended is
    priced at its 25 %, not the whole month again at 40 %; the running month follows the deal."""
    ended = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    deal(client, world.casino, {"kind": "revshare", "revshare": {"percent": "25"}})
    register(client, world, world.alice_casino, "P1", clicked_at=LONG_AGO)
    send(client, world, event="ngr", player_id="P1", payout="10000", period=ended, txn_id="N1")
    send(client, world, event="ngr", player_id="P1", payout="1000", period=THIS_MONTH, txn_id="N2")
    assert [e["amount"] for e in ledger(client, period=ended)] == ["2500.00"]

    deal(client, world.casino, {"kind": "revshare", "revshare": {"percent": "40"}})
    adjusted = send(client, world, event="ngr", player_id="P1", payout="1", period=ended, txn_id="N1-adj")
    running = send(client, world, event="ngr", player_id="P1", payout="1", period=THIS_MONTH, txn_id="N2-adj")

    assert adjusted.status_code == running.status_code == 200
    assert sorted(e["amount"] for e in ledger(client, period=ended)) == ["0.25", "2500.00"]
    # The running month is priced at the deal in force: 1001 at 40 %, 250 booked before.
    assert sorted(e["amount"] for e in ledger(client, period=THIS_MONTH)) == ["150.40", "250.00"]
    line = statement(client, world.alice, ended)["lines"][0]
    assert (line["revshare_earnings"], line["revshare_percent"]) == ("2500.25", "25")


def month_terms(client: Client, period: str) -> str | None:
    async def read() -> str | None:
        async with client.node.runtime.db.read() as conn:
            query = select(revshare_periods.c.terms).where(revshare_periods.c.period == period)
            return (await conn.execute(query)).scalar_one()

    return client.node.call(read)


def test_a_deal_change_keeps_the_outgoing_terms_for_ended_months_and_none_for_the_running_one(
    client: Client, world: World
) -> None:
    """The terms a month keeps are those in force when it ended: a month booked before they
    were kept gets the outgoing deal's at the change; the running month's are cleared, so that
    once it ends (its reports come late) it is priced under the deal that was in force then."""
    ended = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    deal(client, world.casino, {"kind": "revshare", "revshare": {"percent": "25"}})
    register(client, world, world.alice_casino, "P1", clicked_at=LONG_AGO)
    send(client, world, event="ngr", player_id="P1", payout="10000", period=ended, txn_id="N1")
    send(client, world, event="ngr", player_id="P1", payout="1000", period=THIS_MONTH, txn_id="N2")

    async def as_booked_before_0023() -> None:
        async with client.node.runtime.db.write() as conn:
            await conn.execute(update(revshare_periods).values(terms=None))

    client.node.call(as_booked_before_0023)
    deal(client, world.casino, {"kind": "revshare", "revshare": {"percent": "40"}})

    kept = month_terms(client, ended)
    assert kept is not None and json.loads(kept)["revshare"]["percent"] == "25"
    assert month_terms(client, THIS_MONTH) is None
    send(client, world, event="ngr", player_id="P1", payout="1", period=ended, txn_id="N1-adj")
    assert sorted(e["amount"] for e in ledger(client, period=ended)) == ["0.25", "2500.00"]


def test_a_player_qualifies_once_and_only_the_first_deposit_is_the_ftd(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P-2")

    first = send(client, world, event="ftd", player_id="P-2", payout="30", txn_id="D-1")
    same_under_other_name = send(client, world, event="deposit", player_id="P-2", payout="30", txn_id="D-1")
    second_ftd = send(client, world, event="ftd", player_id="P-2", payout="40", txn_id="D-2")

    assert first.json()["result"] == "accepted"
    assert same_under_other_name.json()["result"] == "duplicate"
    assert (second_ftd.json()["result"], second_ftd.json()["event"]) == ("accepted", "deposit")
    assert len(ledger(client, kind="cpa")) == 1
    totals = client.report()["totals"]
    assert [totals[k] for k in ("conversions", "registrations", "ftds", "deposits", "qualified_cpas")] == [
        4,  # with the qualified_cpa the CPA added
        1,
        1,
        2,
        1,
    ]


def test_concurrent_deposits_of_a_new_player_make_exactly_one_ftd(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    click_id = register(client, world, world.alice_casino, "P-3")

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=client.node.base_url, timeout=60) as http:
            return await asyncio.gather(
                *(
                    http.get(
                        "/postback",
                        params={
                            "click_id": click_id,
                            "event": "deposit",
                            "player_id": "P-3",
                            "payout": "25",
                            "txn_id": f"D-{i}",
                            "token": world.token,
                        },
                    )
                    for i in range(20)
                )
            )

    replies = [r.json() for r in asyncio.run(storm())]

    assert all(r["result"] == "accepted" for r in replies), replies
    assert sorted(r["event"] for r in replies) == ["deposit"] * 19 + ["first_deposit"]
    assert len(ledger(client)) == 1


def test_rejected_ftd_reverses_the_cpa_with_a_visible_entry(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P-4")
    send(client, world, event="ftd", player_id="P-4", payout="50", txn_id="D-1")

    reply = send(client, world, event="ftd", player_id="P-4", txn_id="D-1", status="rejected")

    assert reply.json()["result"] == "updated"
    reversal, original = ledger(client)
    assert (original["status"], original["amount"]) == ("reversed", "100.00")
    assert (reversal["amount"], reversal["reverses_id"]) == ("-100.00", original["id"])
    assert reversal["conversion_id"] == reply.json()["conversion_id"]
    qualified = next(c for c in client.items("/conversions") if c["event"] == "qualified_cpa")
    assert qualified["status"] == "rejected"
    assert [h["to_status"] for h in client.api("GET", f"/conversions/{qualified['id']}")["history"]] == [
        "approved",
        "rejected",
    ]
    line = statement(client, world.alice)["lines"][0]
    assert (line["qualified_cpas"], line["cpa_reversals"], line["cpa_earnings"], line["total"]) == (
        1,
        1,
        "0.00",
        "0.00",
    )
    # The rejected FTD was no deposit: the next one is the player's first, and qualifies them
    # again. Net, one CPA; a further deposit books nothing more.
    again = send(client, world, event="deposit", player_id="P-4", payout="500", txn_id="D-2")
    assert again.json()["event"] == "first_deposit"
    assert sorted(e["amount"] for e in ledger(client)) == ["-100.00", "100.00", "100.00"]
    send(client, world, event="deposit", player_id="P-4", payout="500", txn_id="D-3")
    assert len(ledger(client)) == 3 and qualified_status(client) == "approved"


def test_chargeback_that_breaks_the_rules_reverses_the_cpa(client: Client, world: World) -> None:
    deal(client, world.casino, {"cpa": {"amount": "80", "deposits_min": "50"}})
    register(client, world, world.alice_casino, "P-5")
    send(client, world, event="deposit", player_id="P-5", payout="60", txn_id="D-1")
    assert len(ledger(client)) == 1

    send(client, world, event="chargeback", player_id="P-5", payout="20", txn_id="CB-1")

    amounts = sorted(e["amount"] for e in ledger(client))
    assert amounts == ["-80.00", "80.00"]


FTD_ONLY = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20", "deposits_min": None, "hold_days": 3}}


def test_a_chargeback_of_the_first_deposit_reverses_a_cpa_on_the_ftd_alone(
    client: Client, world: World
) -> None:
    """The presets' sportsbook, poker and ewallet deals read the first deposit and no deposit
    total: a chargeback counts against the first deposit, up to its amount."""
    deal(client, world.casino, FTD_ONLY)
    register(client, world, world.alice_casino, "H1")
    send(client, world, event="deposit", player_id="H1", payout="30", txn_id="H1D")
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")

    # Partly charged back, the first deposit still meets the baseline (30 - 10 = 20 ≥ 20).
    send(client, world, event="chargeback", player_id="H1", payout="10", txn_id="H1CB0")
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    # All of it charged back: the CPA is reversed, the qualified_cpa rejected.
    cb = send(client, world, event="chargeback", player_id="H1", payout="20", txn_id="H1CB")
    assert cb.json()["result"] == "accepted", cb.text
    assert (cpa_total(client), qualified_status(client)) == (Decimal(0), "rejected")
    (reversal,) = [e for e in ledger(client, kind="cpa") if e["reverses_id"]]
    assert reversal["conversion_id"] == cb.json()["conversion_id"]
    # A later deposit does not make up for the first one's baseline.
    send(client, world, event="deposit", player_id="H1", payout="500", txn_id="H1D2")
    assert cpa_total(client) == 0

    # The chargeback's dispute won: the first deposit counts again, and so does the CPA.
    send(client, world, event="chargeback", player_id="H1", payout="20", txn_id="H1CB", status="rejected")
    assert (cpa_total(client), qualified_status(client)) == (Decimal(100), "approved")
    assert sorted(Decimal(e["amount"]) for e in ledger(client, kind="cpa")) == [-100, 100, 100]


def test_affiliate_deal_overrides_the_offer_default(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    deal(client, world.casino, {"cpa": {"amount": "150", "ftd_min": "20"}}, affiliate=world.bob)
    for link, player in ((world.alice_casino, "A"), (world.bob_casino, "B")):
        register(client, world, link, player)
        send(client, world, event="ftd", player_id=player, payout="20", txn_id="D-" + player)

    by_affiliate = {e["affiliate_id"]: e["amount"] for e in ledger(client)}

    assert by_affiliate == {world.alice["id"]: "100.00", world.bob["id"]: "150.00"}
    incomplete = client.http.put(
        f"/api/offers/{world.casino['id']}/deal", headers=client.auth, json={**CPA_100, "kind": "hybrid"}
    )
    assert incomplete.status_code == 422 and "needs revshare terms" in incomplete.text
    deals = client.items(f"/offers/{world.casino['id']}/deals")
    assert [(d["affiliate_id"], d["cpa"]["amount"]) for d in deals] == [
        (None, "100.00"),
        (world.bob["id"], "150.00"),
    ]


def test_revshare_with_negative_carryover_across_three_months(client: Client, world: World) -> None:
    deal(client, world.casino, {"revshare": {"percent": "25", "negative_carryover": True}})
    register(client, world, world.alice_casino, "P-6", clicked_at=LONG_AGO)
    first, second, third = month(-5), month(-4), month(-3)
    for period, ngr in ((first, "-1000"), (second, "600"), (third, "1000")):
        reply = send(
            client, world, event="ngr", player_id="P-6", payout=ngr, period=period, txn_id="NGR-" + period
        )
        assert reply.status_code == 200, reply.text

    def month_figures(period: str) -> tuple[str, str, str, str]:
        (line,) = statement(client, world.alice, period)["lines"]
        return line["ngr"], line["carry_in"], line["revshare_earnings"], line["carry_out"]

    assert month_figures(first) == ("-1000.00", "0.00", "0.00", "-1000.00")
    assert month_figures(second) == ("600.00", "-1000.00", "0.00", "-400.00")
    assert month_figures(third) == ("1000.00", "-400.00", "150.00", "0.00")

    # A late report for the first month wipes out its loss: the two after it are recomputed and the
    # difference is booked as new entries caused by that report, never as edits.
    late = send(client, world, event="ngr", player_id="P-6", payout="1000", period=first, txn_id="NGR-late")

    assert month_figures(first) == ("0.00", "0.00", "0.00", "0.00")
    assert month_figures(second)[2] == "150.00"
    assert month_figures(third)[2] == "250.00"
    entries = ledger(client, kind="revshare")
    for period, earned in ((second, "150"), (third, "250")):
        assert sum(Decimal(e["amount"]) for e in entries if e["period"] == period) == Decimal(earned)
    assert {e["conversion_id"] for e in entries if e["period"] == second} == {late.json()["conversion_id"]}
    assert {e["percent"] for e in entries} == {"25"}
    assert entries[0]["detail"] == (  # newest first: the third month, the end of the cascade
        f"NGR 1000.00, carry-in 0.00, FTDs 0, 25% ⇒ 250.00 (booked 150.00); "
        f"after conversion {late.json()['conversion_id']}"
    )
    # Months that have ended are approved at once.
    assert {e["status"] for e in entries} == {"approved"}


def test_rejected_ngr_report_is_reversed(client: Client, world: World) -> None:
    deal(client, world.casino, {"revshare": {"percent": "30"}})
    register(client, world, world.alice_casino, "P-7", clicked_at=LONG_AGO)
    ended = month(-2)
    send(client, world, event="ngr", player_id="P-7", payout="200", period=ended, txn_id="N-1")

    send(client, world, event="ngr", player_id="P-7", status="rejected", period=ended, txn_id="N-1")

    reversal, original = ledger(client)
    assert (original["amount"], reversal["amount"], reversal["reverses_id"]) == (
        "60.00",
        "-60.00",
        original["id"],
    )
    (line,) = statement(client, world.alice, ended)["lines"]
    assert (line["ngr"], line["revshare_earnings"]) == ("0.00", "0.00")


def test_hybrid_pays_cpa_and_revshare_for_the_same_player(client: Client, world: World) -> None:
    deal(client, world.casino, {"cpa": {"amount": "50", "ftd_min": "10"}, "revshare": {"percent": "20"}})
    register(client, world, world.alice_casino, "P-8")
    send(client, world, event="ftd", player_id="P-8", payout="10", txn_id="D-1")
    send(client, world, event="ngr", player_id="P-8", payout="300", txn_id="N-1")

    (line,) = statement(client, world.alice)["lines"]

    assert (line["cpa_earnings"], line["revshare_percent"], line["revshare_earnings"]) == (
        "50.00",
        "20",
        "60.00",
    )
    assert line["total"] == "110.00"
    assert statement(client, world.alice)["totals"] == {"EUR": "110.00"}


def ledger_sums(entries: list[dict[str, Any]]) -> dict[tuple[int, str, str], Decimal]:
    """The ledger summed per offer, currency and kind: what a statement must show."""
    sums: dict[tuple[int, str, str], Decimal] = {}
    for e in entries:
        key = (e["offer_id"], e["currency"], e["kind"])
        sums[key] = sums.get(key, Decimal(0)) + Decimal(e["amount"])
    return sums


def statement_sums(lines: list[dict[str, Any]]) -> dict[tuple[int, str, str], Decimal]:
    sums: dict[tuple[int, str, str], Decimal] = {}
    for line in lines:
        for kind, column in (("cpa", "cpa_earnings"), ("revshare", "revshare_earnings")):
            if line[column] is not None and Decimal(line[column]):
                key = (line["offer_id"], line["currency"], kind)
                sums[key] = sums.get(key, Decimal(0)) + Decimal(line[column])
    return sums


def currency_totals(entries: list[dict[str, Any]]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for e in entries:
        totals[e["currency"]] = totals.get(e["currency"], Decimal(0)) + Decimal(e["amount"])
    return totals


def test_a_deal_changing_currency_mid_month_gives_each_currency_its_cpa_line(
    client: Client, world: World
) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "E-1")
    send(client, world, event="ftd", player_id="E-1", payout="25", txn_id="D-1")
    deal(client, world.casino, {"currency": "USD", "cpa": {"amount": "120"}})
    register(client, world, world.alice_casino, "U-1")
    send(client, world, event="ftd", player_id="U-1", payout="25", currency="USD", txn_id="D-2")

    entries = ledger(client)
    month = statement(client, world.alice)
    csv = client.http.get(
        f"/api/statements/{world.alice['id']}/{THIS_MONTH}", params={"format": "csv"}, headers=client.auth
    )

    assert sorted((e["amount"], e["currency"]) for e in entries) == [("100.00", "EUR"), ("120.00", "USD")]
    assert [(ln["currency"], ln["qualified_cpas"], ln["cpa_earnings"]) for ln in month["lines"]] == [
        ("EUR", 1, "100.00"),
        ("USD", 1, "120.00"),
    ]
    assert statement_sums(month["lines"]) == ledger_sums(entries)
    assert {c: Decimal(t) for c, t in month["totals"].items()} == currency_totals(entries)
    # Players and FTDs are the offer's, counted once whatever the currency.
    assert sum(ln["players"] for ln in month["lines"]) == 2
    assert sum(ln["ftds"] for ln in month["lines"]) == 2
    rows = csv.text.strip().split("\r\n")[1:]
    assert [row.split(",")[2] for row in rows] == ["EUR", "USD"]


def test_a_deal_changing_currency_mid_month_moves_its_cpas_not_its_revshare_month(
    client: Client, world: World
) -> None:
    """After the change CPAs are booked in USD, on a line of their own; the RevShare month was
    booked in EUR and stays in EUR, a report sent in USD converted into it: one month, one
    currency (test_revshare_currency.py)."""
    today = datetime.now(UTC).date().isoformat()
    client.api("POST", "/fx-rates", json={"base": "EUR", "quote": "USD", "day": today, "rate": "1.5"})
    hybrid = {"kind": "hybrid", "cpa": {"amount": "100", "ftd_min": "20"}, "revshare": {"percent": "25"}}
    deal(client, world.casino, hybrid)
    register(client, world, world.alice_casino, "E-2")
    send(client, world, event="ngr", player_id="E-2", payout="100", txn_id="N-1")
    deal(client, world.casino, {"currency": "USD", "cpa": {"amount": "120"}})
    register(client, world, world.alice_casino, "U-2")
    send(client, world, event="ftd", player_id="U-2", payout="30", currency="USD", txn_id="D-2")
    send(client, world, event="ngr", player_id="U-2", payout="300", currency="USD", txn_id="N-2")

    entries = ledger(client)
    month = statement(client, world.alice)

    # 300 USD at 1.5 is 200 EUR: the month's NGR is 300 EUR, 75 EUR at 25 %.
    assert sorted((e["kind"], e["amount"], e["currency"]) for e in entries) == [
        ("cpa", "120.00", "USD"),
        ("revshare", "25.00", "EUR"),
        ("revshare", "50.00", "EUR"),
    ]
    assert [
        (ln["currency"], ln["qualified_cpas"], ln["cpa_earnings"], ln["ngr"], ln["revshare_earnings"])
        for ln in month["lines"]
    ] == [("EUR", 0, "0.00", "300.00", "75.00"), ("USD", 1, "120.00", "0.00", "0.00")]
    assert statement_sums(month["lines"]) == ledger_sums(entries)
    assert {c: Decimal(t) for c, t in month["totals"].items()} == currency_totals(entries)


def test_ftd_tiers_raise_the_month_share(client: Client, world: World) -> None:
    tiers = [{"threshold": "2", "percent": "40"}]
    deal(client, world.casino, {"revshare": {"percent": "20", "tiers": tiers, "tier_basis": "ftds"}})
    for player in ("T-1", "T-2"):
        register(client, world, world.alice_casino, player)
    send(client, world, event="ngr", player_id="T-1", payout="100", txn_id="N-1")
    assert statement(client, world.alice)["lines"][0]["revshare_earnings"] == "20.00"

    for player in ("T-1", "T-2"):
        send(client, world, event="deposit", player_id=player, payout="10", txn_id="D-" + player)

    (line,) = statement(client, world.alice)["lines"]
    assert (line["ftds"], line["revshare_percent"], line["revshare_earnings"]) == (2, "40", "40.00")


def test_amounts_in_another_currency_need_a_dated_rate(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    register(client, world, world.alice_casino, "P-9")

    refused = send(client, world, event="ftd", player_id="P-9", payout="30", currency="USD", txn_id="D-1")

    assert (refused.status_code, refused.json()["reason"]) == (422, "missing_exchange_rate")
    assert "USD→EUR" in refused.json()["detail"]
    (logged,) = client.items("/postbacks", reason="missing_exchange_rate")
    assert logged["result"] == "rejected"

    today = datetime.now(UTC).date().isoformat()
    client.api("POST", "/fx-rates", json={"base": "EUR", "quote": "USD", "day": today, "rate": "1.2"})
    accepted = send(client, world, event="ftd", player_id="P-9", payout="30", currency="USD", txn_id="D-1")

    conversion = client.api("GET", f"/conversions/{accepted.json()['conversion_id']}")
    # The inverse of EUR→USD 1.2; 30 USD is 25 EUR, over the 20 EUR baseline.
    assert (conversion["payout"], conversion["currency"], conversion["deal_amount"]) == (
        "30.00",
        "USD",
        "25.00",
    )
    assert Decimal(conversion["fx_rate"]) * Decimal("1.2") == pytest.approx(Decimal(1))
    (entry,) = ledger(client)
    assert entry["fx_rate"] == conversion["fx_rate"]  # the rate behind the entry is on it


def test_an_amount_too_large_once_converted_is_refused_and_logged(client: Client, world: World) -> None:
    # Amount and rate each within MAX_PAYOUT; their product, 10^15 VND, was past what the
    # database holds: a 500, and the postback missing from the log.
    offer = new_offer(client, world, "Northstar Dong", "VND")
    deal(client, offer, {"kind": "revshare", "revshare": {"percent": "30"}})
    register(client, world, alice_link(client, world, offer), "P1")
    today = datetime.now(UTC).date().isoformat()
    client.api("POST", "/fx-rates", json={"base": "USD", "quote": "VND", "day": today, "rate": "1000000"})

    big = {"event": "ngr", "player_id": "P1", "currency": "USD", "txn_id": "N1"}
    refused = send(client, world, amount="1000000000", **big)

    assert refused.status_code == 422, refused.text
    assert refused.json()["reason"] == "converted_amount_too_large"
    assert "USD→VND" in refused.json()["detail"]
    (logged,) = client.items("/postbacks", reason="converted_amount_too_large")
    assert (logged["result"], logged["http_status"]) == ("rejected", 422)
    assert client.items("/conversions", event="net_revenue") == []
    # The largest amount that fits, converted, is taken.
    fits = send(client, world, amount="1000", **big)
    assert fits.status_code == 200 and fits.json()["result"] == "accepted", fits.text
    conversion = client.api("GET", f"/conversions/{fits.json()['conversion_id']}")
    assert (conversion["deal_amount"], conversion["deal_currency"]) == ("1000000000", "VND")


def test_advertiser_names_map_to_ours_and_unmapped_names_are_explained(client: Client, world: World) -> None:
    names = {
        "events": {"Depo-Sit": "deposit", "signup_ok": "registration"},
        "statuses": {"ok": "approved", "wait": "pending"},
    }
    client.api("PUT", f"/advertisers/{world.northstar['id']}/names", json=names)
    click_id = client.click(world.alice_casino)
    client.flush()

    reg = send(client, world, click_id=click_id, event="signup_ok", status="wait", player_id="N-1")
    dep = send(
        client,
        world,
        click_id=click_id,
        event="depo_sit",
        status="ok",
        player_id="N-1",
        payout="5",
        txn_id="1",
    )
    unknown = send(client, world, click_id=click_id, event="depot", player_id="N-1")
    bad_status = send(client, world, click_id=click_id, event="deposit", status="maybe", txn_id="2")

    assert (reg.json()["event"], reg.json()["status"]) == ("registration", "pending")
    assert (dep.json()["event"], dep.json()["status"]) == ("first_deposit", "approved")
    assert (unknown.status_code, unknown.json()["reason"]) == (422, "unknown_event")
    assert (
        "'depot' arrived; your names mapped: depo_sit→deposit, signup_ok→registration"
        in unknown.json()["detail"]
    )
    assert bad_status.json()["reason"] == "unknown_status"
    assert "ok→approved" in bad_status.json()["detail"]
    got = client.api("GET", f"/advertisers/{world.northstar['id']}/names")
    assert got["events"] == {"depo_sit": "deposit", "signup_ok": "registration"}
    wrong = client.http.put(
        f"/api/advertisers/{world.northstar['id']}/names",
        headers=client.auth,
        json={"events": {"x": "jackpot"}},
    )
    assert wrong.status_code == 422


def test_unknown_player_without_click_id_is_refused(client: Client, world: World) -> None:
    reply = send(client, world, event="deposit", player_id="nobody", payout="10", txn_id="X")

    assert (reply.status_code, reply.json()["reason"]) == (404, "unknown_player")


def test_player_stays_with_the_click_of_their_first_postback(client: Client, world: World) -> None:
    register(client, world, world.alice_casino, "P-10")
    bob_click = client.click(world.bob_casino)
    client.flush()

    reply = send(
        client, world, click_id=bob_click, event="deposit", player_id="P-10", payout="10", txn_id="D"
    )

    conversion = client.api("GET", f"/conversions/{reply.json()['conversion_id']}")
    assert conversion["affiliate_id"] == world.alice["id"]


def in_cents(cpa: dict[str, Any]) -> dict[str, Any]:
    """A preset's CPA terms (amounts as written) as a deal in EUR or GBP shows them."""

    def cents(amount: str | None) -> str | None:
        return None if amount is None else f"{Decimal(amount):.2f}"

    money = {name: cents(cpa[name]) for name in ("amount", "ftd_min", "deposits_min", "wager_min")}
    return cpa | money | {"geo_amounts": {k: cents(v) for k, v in cpa["geo_amounts"].items()}}


def test_vertical_preset_gives_a_new_offer_its_deal(client: Client, world: World) -> None:
    presets = {p["vertical"]: p for p in client.api("GET", "/presets")}
    offer = new_offer(client, world, "Northstar Poker", "GBP", vertical="poker")

    (made,) = client.items(f"/offers/{offer['id']}/deals")
    assert (offer["vertical"], made["kind"], made["currency"]) == ("poker", "revshare", "GBP")
    assert made["revshare"] == presets["poker"]["revshare"]
    # Overriding one part keeps the rest of the preset.
    changed = deal(client, offer, {"revshare": {"percent": "35"}})
    assert (changed["kind"], changed["revshare"]["percent"], changed["cpa"]) == (
        "revshare",
        "35",
        in_cents(presets["poker"]["cpa"]),
    )


def test_a_deal_change_keeps_the_rest_of_the_deal_in_force(client: Client, world: World) -> None:
    offer = new_offer(client, world, "Northstar Slots", "EUR", vertical="casino")
    preset = next(p for p in client.api("GET", "/presets") if p["vertical"] == "casino")

    changed = deal(client, offer, {"cpa": {"amount": "55"}})
    bobs = deal(client, offer, {"cpa": {"ftd_min": None}, "revshare": {"tiers": []}}, affiliate=world.bob)
    bare = client.http.put(
        f"/api/offers/{world.sportsbook['id']}/deals/{world.bob['id']}",
        headers=client.auth,
        json={"cpa": {"ftd_min": "10"}},
    )

    # The preset's FTD, deposit and hold rules stay: only the amount changed.
    assert (changed["kind"], changed["cpa"], changed["revshare"]) == (
        "hybrid",
        in_cents(preset["cpa"]) | {"amount": "55.00"},
        preset["revshare"],
    )
    # Bob's own deal starts from the offer's default in force.
    assert (bobs["kind"], bobs["cpa"], bobs["revshare"]) == (
        "hybrid",
        in_cents(preset["cpa"]) | {"amount": "55.00", "ftd_min": None},
        preset["revshare"] | {"tiers": []},
    )
    assert bare.status_code == 422
    assert bare.json()["detail"][0]["loc"] == ["body", "cpa", "amount"]


def test_a_deal_refuses_cpa_amounts_finer_than_its_currency_pays(client: Client, world: World) -> None:
    def put(path: str, body: dict[str, Any]) -> tuple[int, list[str], str]:
        reply = client.http.put(f"/api/offers/{world.casino['id']}{path}", headers=client.auth, json=body)
        return reply.status_code, reply.json()["detail"][0]["loc"], reply.json()["detail"][0]["msg"]

    jpy = put("/deal", {"currency": "JPY", "cpa": {"amount": "12000.5"}})
    gbp = put(
        f"/deals/{world.bob['id']}",
        {"currency": "GBP", "cpa": {"amount": "110", "geo_amounts": {"GB": "110.005"}}},
    )

    assert jpy == (422, ["body", "cpa", "amount"], "JPY has no decimals: 12000.5 is finer than 1")
    assert gbp == (
        422,
        ["body", "cpa", "geo_amounts", "GB"],
        "GBP amounts have 2 decimals: 110.005 is finer than 0.01",
    )
    assert client.items(f"/offers/{world.casino['id']}/deals") == []


def test_statement_csv_is_escaped_and_player_value_adds_up(client: Client, world: World) -> None:
    offer = new_offer(client, world, '=HYPERLINK("http://evil")', "EUR")
    link = alice_link(client, world, offer)
    deal(client, offer, {"cpa": {"amount": "70", "ftd_min": "20"}, "revshare": {"percent": "10"}})
    register(client, world, link, "V-1")
    send(client, world, event="ftd", player_id="V-1", payout="40", txn_id="D-1")
    send(client, world, event="deposit", player_id="V-1", payout="60", txn_id="D-2")
    send(client, world, event="ngr", player_id="V-1", payout="-15", txn_id="N-1")

    csv = client.http.get(
        f"/api/statements/{world.alice['id']}/{THIS_MONTH}", params={"format": "csv"}, headers=client.auth
    )

    assert csv.headers["content-type"].startswith("text/csv")
    header, row = csv.text.strip().split("\r\n")
    assert header.startswith("offer_id,offer,currency,deal,players,ftds,qualified_cpas")
    # The percent is not money: written as in the JSON statement.
    assert row.startswith(
        f'{offer["id"]},"\'=HYPERLINK(""http://evil"")",EUR,hybrid,1,1,1,0,70.00,-15.00,10,'
    )
    assert row.endswith(",70.00")
    (player,) = client.items("/players", affiliate_id=world.alice["id"])
    assert (player["deposits"], player["ngr"], player["commission"], player["cohort"]) == (
        "100.00",
        "-15.00",
        "70.00",
        THIS_MONTH,
    )
    (cohort,) = client.api("GET", "/players/cohorts", params={"affiliate_id": world.alice["id"]})
    assert (cohort["players"], cohort["ftds"], cohort["deposits"]) == (1, 1, "100.00")


def test_money_is_shown_at_its_currencys_precision(client: Client, world: World) -> None:
    offer = new_offer(client, world, "Northstar Tokyo", "JPY", payouts={"registration": "100"})
    deal(client, offer, {"cpa": {"amount": "5000", "ftd_min": "3000"}})
    register(client, world, alice_link(client, world, offer), "J-1")
    register(client, world, world.alice_casino, "E-1")  # an offer without a deal: no currency
    ftd = send(client, world, event="ftd", player_id="J-1", payout="12000.5", currency="JPY", txn_id="D-1")

    conversion = client.api("GET", f"/conversions/{ftd.json()['conversion_id']}")
    registration = next(c for c in client.items("/conversions") if c["player_id"] == "E-1")
    (entry,) = ledger(client)
    month = statement(client, world.alice)
    csv = client.http.get(
        f"/api/statements/{world.alice['id']}/{THIS_MONTH}", params={"format": "csv"}, headers=client.auth
    )
    players = {p["player_id"]: p for p in client.items("/players")}
    cohorts = client.api("GET", "/players/cohorts")

    assert offer["payouts"] == {"registration": "100"}
    assert [conversion[k] for k in ("payout", "currency", "deal_amount", "deal_currency")] == [
        "12000.5",  # an advertiser's finer amount is shown, not hidden
        "JPY",
        "12000.5",
        "JPY",
    ]
    assert registration["deal_currency"] is None
    assert (entry["amount"], entry["currency"]) == ("5000", "JPY")
    assert [(ln["currency"], ln["cpa_earnings"], ln["ngr"], ln["total"]) for ln in month["lines"]] == [
        ("", "0.00", "0.00", "0.00"),  # the deal-less casino, where E-1 registered
        ("JPY", "5000", "0", "5000"),
    ]
    assert month["totals"] == {"": "0.00", "JPY": "5000"}
    not_in_deal = ",".join(["not part of this deal"] * 4)
    assert (
        csv.text.split("\r\n")[2]
        == f"{offer['id']},Northstar Tokyo,JPY,cpa,1,1,1,0,5000,0,{not_in_deal},5000"
    )
    assert [players["J-1"][k] for k in ("currency", "deposits", "ngr", "commission")] == [
        "JPY",
        "12000.5",
        "0",
        "5000",
    ]
    assert (players["E-1"]["currency"], players["E-1"]["deposits"]) == (None, "0.00")
    assert [(c["currency"], c["players"], c["deposits"]) for c in cohorts] == [
        (None, 1, "0.00"),
        ("JPY", 1, "12000.5"),
    ]
    totals = client.report(offer_id=str(offer["id"]))["totals"]
    assert (totals["revenue"], totals["deposit_amount"]) == ({"JPY": "100"}, {"JPY": "12000.5"})
    assert (totals["cpa_commission"], totals["profit"]) == ({"JPY": "5000"}, {"JPY": "-4900"})


def test_cpa_amount_follows_the_players_country(proxied: Client) -> None:
    world = make_world(proxied)
    deal(proxied, world.casino, {"cpa": {"amount": "100", "geo_amounts": {"GB": "180"}}})
    for ip, player in (("81.2.69.142", "uk"), ("8.8.8.8", "us")):
        response = proxied.http.get(f"/c/{world.alice_casino}", headers={"x-forwarded-for": ip})
        click_id = response.headers["location"].split("cid=")[1].split("&")[0]
        proxied.flush()
        send(proxied, world, click_id=click_id, event="registration", player_id=player)

    by_player = {p["player_id"]: p for p in proxied.items("/players")}

    assert {k: (p["country"], p["commission"]) for k, p in by_player.items()} == {
        "uk": ("GB", "180.00"),
        "us": ("US", "100.00"),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_revshare_ledger_always_sums_to_the_months_recomputed_from_scratch(
    client: Client, world: World, seed: int
) -> None:
    """Reports in any order, late ones, rejections: the incremental ledger must equal a fresh
    month-by-month computation over the final NGR."""
    deal(client, world.casino, {"revshare": {"percent": "30", "negative_carryover": True}})
    register(client, world, world.alice_casino, "R", clicked_at=LONG_AGO)
    rng = random.Random(seed)
    months = [month(n) for n in range(EARLIEST_MONTH, EARLIEST_MONTH + 4)]
    live: dict[str, tuple[str, Decimal]] = {}
    for n in range(10):
        if live and rng.random() < 0.25:
            txn = rng.choice(sorted(live))
            period, _ = live.pop(txn)
            reply = send(
                client, world, event="ngr", player_id="R", txn_id=txn, period=period, status="rejected"
            )
        else:
            txn, period, amount = f"N{n}", rng.choice(months), Decimal(rng.randrange(-500, 500))
            live[txn] = (period, amount)
            reply = send(
                client, world, event="ngr", player_id="R", txn_id=txn, period=period, payout=str(amount)
            )
        assert reply.status_code == 200, reply.text

    terms, carry = RevShareTerms(percent=Decimal(30), negative_carryover=True), Decimal(0)
    entries = ledger(client, kind="revshare", limit=1000)
    for period in months:
        ngr = sum((a for p, a in live.values() if p == period), Decimal(0))
        expected = revshare_period(terms, "EUR", ngr, 0, carry)
        carry = expected.carry_out
        booked = sum((Decimal(e["amount"]) for e in entries if e["period"] == period), Decimal(0))
        lines = statement(client, world.alice, period)["lines"]
        if lines:
            assert Decimal(lines[0]["revshare_earnings"]) == booked
        assert booked == expected.earnings, (period, ngr)


def test_cpa_on_hold_is_approved_once_the_hold_has_passed(client: Client, world: World) -> None:
    deal(client, world.casino, {"cpa": {"amount": "100", "ftd_min": "20", "hold_days": 14}})
    register(client, world, world.alice_casino, "H-1")
    send(client, world, event="ftd", player_id="H-1", payout="20", txn_id="D-1")
    (entry,) = ledger(client)
    hold_until = datetime.fromisoformat(entry["hold_until"])
    assert entry["status"] == "pending"
    assert (
        timedelta(days=14)
        <= hold_until - datetime.fromisoformat(entry["created_at"])
        < timedelta(days=14, seconds=5)
    )
    db = client.node.runtime.db

    early = client.node.call(lambda: store_ledger.settle(db, hold_until - timedelta(seconds=1)))
    assert (early, ledger(client)[0]["status"]) == (0, "pending")
    due = client.node.call(lambda: store_ledger.settle(db, hold_until))
    assert (due, ledger(client)[0]["status"]) == (1, "approved")
    # Cancelled later: reversed like a rejection, the approved entry kept and marked.
    send(client, world, event="ftd", player_id="H-1", txn_id="D-1", status="cancelled")
    assert [(e["amount"], e["status"]) for e in ledger(client)] == [
        ("-100.00", "approved"),
        ("100.00", "reversed"),
    ]


def test_cohort_ftds_count_only_first_deposits_still_payable(client: Client, world: World) -> None:
    deal(client, world.casino, CPA_100)
    for player, status in (
        ("C-1", "approved"),
        ("C-2", "pending"),
        ("C-3", "rejected"),
        ("C-4", "cancelled"),
    ):
        register(client, world, world.alice_casino, player)
        send(client, world, event="ftd", player_id=player, payout="30", txn_id="D-" + player)
        if status != "approved":
            send(client, world, event="ftd", player_id=player, txn_id="D-" + player, status=status)
    register(client, world, world.alice_casino, "C-5")  # never deposited

    (cohort,) = client.api("GET", "/players/cohorts")

    # Only the approved and the pending first deposits count; so do only their amounts.
    assert (cohort["cohort"], cohort["players"], cohort["ftds"], cohort["deposits"]) == (
        THIS_MONTH,
        5,
        2,
        "60.00",
    )


def test_amounts_in_exponent_notation_are_refused_as_postbacks_refuse_them(
    client: Client, world: World
) -> None:
    # Decimal reads 1.5E+2; a postback's payout of 1e2 is invalid_payout: the API reads its
    # amounts as postbacks do, and never shows one in exponent notation.
    path = f"/api/offers/{world.casino['id']}/deal"
    exponents = {
        "kind": "hybrid",
        "cpa": {"amount": "1.5E+2", "ftd_min": "2E+1", "geo_amounts": {"DE": "1.2e2"}},
    }
    exponents["revshare"] = {"percent": "2.5E+1", "tiers": [{"threshold": "1E+3", "percent": "3E+1"}]}
    refused = client.http.put(path, headers=client.auth, json=exponents)
    payout = send(client, world, click_id=client.click(world.alice_casino), event="sale", payout="1e2")

    assert refused.status_code == 422
    assert sorted(tuple(e["loc"][1:]) for e in refused.json()["detail"]) == [
        ("cpa", "amount"),
        ("cpa", "ftd_min"),
        ("cpa", "geo_amounts", "DE"),
        ("revshare", "percent"),
        ("revshare", "tiers", 0, "percent"),
        ("revshare", "tiers", 0, "threshold"),
    ]
    assert "no exponent" in refused.json()["detail"][0]["msg"]
    assert payout.json()["reason"] == "invalid_payout"
    assert client.items(f"/offers/{world.casino['id']}/deals") == []

    # Written plainly (or as JSON numbers), amounts are shown with the deal currency's decimals.
    plainly = {"kind": "hybrid", "cpa": {"amount": 150, "ftd_min": "20", "geo_amounts": {"DE": "120.5"}}}
    plainly["revshare"] = {"percent": "25", "tiers": [{"threshold": "1000", "percent": "30"}]}
    shown = deal(client, world.casino, plainly)
    assert (shown["cpa"]["amount"], shown["cpa"]["ftd_min"], shown["cpa"]["geo_amounts"]) == (
        "150.00",
        "20.00",
        {"DE": "120.50"},
    )
    assert shown["revshare"]["tiers"] == [{"threshold": "1000.00", "percent": "30"}]
    assert client.items(f"/offers/{world.casino['id']}/deals")[0]["cpa"] == shown["cpa"]

    register(client, world, world.alice_casino, "P1")
    send(client, world, event="deposit", player_id="P1", payout="20", txn_id="T1")
    (cpa,) = ledger(client, kind="cpa")
    assert "first deposit 20.00 ≥ 20.00" in cpa["detail"], cpa["detail"]

    # A deal stored while exponents were read shows its amounts as any other.
    async def stored_with_exponents() -> None:
        async with client.node.runtime.db.write() as conn:
            row = (await conn.execute(select(deals.c.id, deals.c.terms))).one()
            terms = json.loads(row.terms)
            terms["cpa"] |= {"amount": "1.5E+2", "ftd_min": "2E+1", "geo_amounts": {"DE": "1.2E+2"}}
            await conn.execute(update(deals).where(deals.c.id == row.id).values(terms=json.dumps(terms)))

    client.node.call(stored_with_exponents)
    cpa_terms = client.items(f"/offers/{world.casino['id']}/deals")[0]["cpa"]
    assert (cpa_terms["amount"], cpa_terms["ftd_min"], cpa_terms["geo_amounts"]) == (
        "150.00",
        "20.00",
        {"DE": "120.00"},
    )


def test_exchange_rates_are_read_and_shown_as_digits_with_a_dot(client: Client) -> None:
    def put(rate: object) -> httpx.Response:
        body = {"base": "USD", "quote": "EUR", "day": "2026-01-01", "rate": rate}
        return client.http.post("/api/fx-rates", headers=client.auth, json=body)

    refused = put("1E-8")
    tiny = put("0.00000001")

    assert refused.status_code == 422 and "no exponent" in refused.json()["detail"][0]["msg"]
    assert (tiny.status_code, tiny.json()["rate"]) == (201, "0.00000001")
    assert put(1e-8).json()["rate"] == "0.00000001"  # a JSON number, whatever its text
    assert [r["rate"] for r in client.items("/fx-rates")] == ["0.00000001"]


def test_a_statements_players_are_the_registrations_that_stand_as_in_reports(
    client: Client, world: World
) -> None:
    """A player whose registration was rejected (the advertiser's status postback, or by hand as
    a reconciliation's accept does) is no player of the month's statement, as in reports."""
    deal(client, world.casino, CPA_100)
    for name in ("P-1", "P-2", "P-3", "P-4"):
        register(client, world, world.alice_casino, name)
    assert send(client, world, event="reg", player_id="P-2", status="rejected").json()["result"] == "updated"
    (reg,) = client.items("/conversions", player_id="P-3", event="registration")
    changed = client.http.post(
        f"/api/conversions/{reg['id']}/status",
        json={"status": "cancelled", "reason": "test"},
        headers=client.auth,
    )
    assert changed.status_code == 200, changed.text
    (line,) = statement(client, world.alice)["lines"]
    assert line["players"] == 2 == client.report()["totals"]["registrations"]
    csv = client.http.get(
        f"/api/statements/{world.alice['id']}/{THIS_MONTH}", params={"format": "csv"}, headers=client.auth
    )
    header, row = csv.text.strip().split("\r\n")
    assert dict(zip(header.split(","), row.split(","), strict=True))["players"] == "2"
    # Approved again, the registration counts again.
    send(client, world, event="reg", player_id="P-2", status="approved")
    assert statement(client, world.alice)["lines"][0]["players"] == 3
