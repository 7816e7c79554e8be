"""A conversion's deliveries to one template go out one at a time, in the order they were made: a
tracker keeps the last status it hears, so "approved" then "rejected" must not arrive the other
way round. Deliveries of different conversions still go out together. End to end through the
server's own dispatcher and a real local receiver, and the claim itself on rows set up by hand."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clickback.core.outbound import destination_of
from clickback.store import outbound as store
from clickback.store.tables import outbound_deliveries
from tests.conftest import Client, Node, World
from tests.receiver import Answer, Got, Receiver, receiving
from tests.web.test_outbound import add_template, convert, eventually, patient, query_of

# How long the receiver keeps the first attempt of a conversion's first delivery before answering
# it: time for a request sent alongside it (as every due delivery was before) to arrive meanwhile,
# which the tests then see in the arrival times. Well under the tests' 1 s attempt timeout, and
# a timeout would only make the first delivery's later attempts come first, still in order.
HELD_SECONDS = 0.3


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@contextmanager
def paused(client: Client, receiver: Receiver) -> Iterator[None]:
    """The receiver's destination paused while the block commits conversions and their changes,
    resumed after: every delivery is waiting before the dispatcher may send any of them."""
    destination = destination_of(receiver.url())
    client.api("POST", f"/outbound/destinations/{destination}/pause", json={"reason": "changes first"})
    yield
    client.api("POST", f"/outbound/destinations/{destination}/resume")


def reject(client: Client, conversion_id: int) -> None:
    body = {"status": "rejected", "reason": "fraud check"}
    assert client.api("POST", f"/conversions/{conversion_id}/status", json=body)["status"] == "rejected"


def held_first(script: dict[str, list[Answer]]) -> Any:
    """An answer function: the scripted answers of each status in turn (then 200), the first
    request held HELD_SECONDS."""
    first = threading.Event()  # never set: the hold lasts HELD_SECONDS

    def answer(got: Got) -> Answer:
        st = query_of(got.target)["st"]
        answer = script[st].pop(0) if script.get(st) else Answer(200)
        if not first.is_set():
            first.set()
            return Answer(answer.status, answer.body, hold=threading.Event(), hold_seconds=HELD_SECONDS)
        return answer

    return answer


def test_a_conversions_two_changes_arrive_in_the_order_they_were_made(
    client: Client, world: World, receiver: Receiver
) -> None:
    receiver.answer = held_first({})
    add_template(client, world, receiver.url("/pb?st={status}&c={conversion_id}"))
    with paused(client, receiver):
        conversion_id = convert(client, world, event="sale", payout="40")  # approved
        reject(client, conversion_id)

    first, second = receiver.deliveries(2)
    assert [query_of(g.target)["st"] for g in (first, second)] == ["approved", "rejected"]
    # The rejection was sent once the approval had been answered, not beside it.
    assert second.at >= first.at + HELD_SECONDS
    assert eventually(lambda: len(client.items("/outbound/deliveries", state="delivered")) == 2)


def test_the_next_change_waits_while_the_first_is_retried(
    client: Client, world: World, receiver: Receiver
) -> None:
    # The approval's first attempt fails (held, then a 503): it is retried, and the rejection is
    # sent only after the approval got through.
    receiver.answer = held_first({"approved": [Answer(503, b"later")]})
    add_template(client, world, receiver.url("/pb?st={status}&c={conversion_id}"))
    with paused(client, receiver):
        conversion_id = convert(client, world, event="sale", payout="40")
        reject(client, conversion_id)

    got = receiver.wait_for(3)
    assert [query_of(g.target)["st"] for g in got] == ["approved", "approved", "rejected"]
    assert got[2].at >= got[0].at + HELD_SECONDS
    done = [
        client.api("GET", f"/outbound/deliveries/{r['id']}") for r in client.items("/outbound/deliveries")
    ]
    by_status = {d["status"]: [a["http_status"] for a in d["attempt_log"]] for d in done}
    assert by_status["approved"][:2] == [503, 200]


def test_different_conversions_still_go_out_together(
    client: Client, world: World, receiver: Receiver
) -> None:
    # Every reply held until two requests are in: only deliveries sent together get through
    # quickly. Each conversion's first goes out beside the other's; their rejections after them.
    together = threading.Event()

    def answer(got: Got) -> Answer:
        if len(receiver.got) >= 2:
            together.set()
        return Answer(200, hold=together, hold_seconds=30)

    receiver.answer = answer
    with patient(client.node):
        add_template(client, world, receiver.url("/pb?st={status}&c={conversion_id}"))
        with paused(client, receiver):
            one = convert(client, world, event="sale", payout="40")
            two = convert(client, world, event="sale", payout="50")
            reject(client, one)
            reject(client, two)

        got = receiver.deliveries(4, timeout=20)
        assert together.is_set()
        firsts = {(query_of(g.target)["c"], query_of(g.target)["st"]) for g in got[:2]}
        assert firsts == {(str(one), "approved"), (str(two), "approved")}
        for conversion_id in (one, two):
            mine = [query_of(g.target)["st"] for g in got if query_of(g.target)["c"] == str(conversion_id)]
            assert mine == ["approved", "rejected"]


def test_a_delivery_given_up_does_not_hold_back_the_next(
    client: Client, world: World, receiver: Receiver
) -> None:
    # A 400 fails the approval for good: the rejection goes out after it all the same.
    receiver.answer = held_first({"approved": [Answer(400, b"no such click")]})
    add_template(client, world, receiver.url("/pb?st={status}&c={conversion_id}"))
    with paused(client, receiver):
        conversion_id = convert(client, world, event="sale", payout="40")
        reject(client, conversion_id)

    got = receiver.wait_for(2)
    assert [query_of(g.target)["st"] for g in got] == ["approved", "rejected"]
    assert got[1].at >= got[0].at + HELD_SECONDS
    (failed,) = client.items("/outbound/deliveries", state="failed")
    assert failed["conversion_id"] == conversion_id and failed["status"] == "approved"


# --- the claim itself -----------------------------------------------------------------------------


def _row(conversion_id: int, template_id: int, state: str, due: datetime, n: int) -> dict[str, Any]:
    return {
        "delivery_id": f"00000000-0000-0000-0000-{n:012d}",
        "template_id": template_id,
        "affiliate_id": 1,
        "conversion_id": conversion_id,
        "event": "sale",
        "status": "approved",
        "method": "GET",
        "url": "http://tracker.invalid/pb",
        "body": "",
        "content_type": "",
        # Not the node's receivers: nothing of this test is due for its own dispatcher.
        "destination": "tracker.invalid",
        "state": state,
        "attempts": 0,
        "next_at": due,
        "last_error": "",
        "created_at": due,
        "updated_at": due,
    }


def test_a_claim_skips_deliveries_behind_an_earlier_one_still_waiting(clean: Node) -> None:
    db = clean.runtime.db
    # An hour ahead of the clock: the node's own dispatcher never finds these due.
    now = datetime.now(UTC) + timedelta(hours=2)
    due = now - timedelta(hours=1)
    lease = timedelta(minutes=1)

    async def add(conversion_id: int, template_id: int, state: str) -> int:
        async with db.write() as conn:
            n = 1 + len(made)
            stmt = outbound_deliveries.insert().values(_row(conversion_id, template_id, state, due, n))
            return int((await conn.execute(stmt.returning(outbound_deliveries.c.id))).scalar_one())

    async def claim() -> set[int]:
        return {r.id for r in await store.claim(db, "me", now, lease, 100, 100, [])}

    made: dict[str, int] = {}

    async def setup() -> None:
        # Conversion 1, template 1: three given up or done, then two waiting.
        for name, state in [
            ("dead", store.DEAD),
            ("failed", store.FAILED),
            ("delivered", store.DELIVERED),
            ("first", store.WAITING),
            ("second", store.WAITING),
        ]:
            made[name] = await add(1, 1, state)
        made["other_template"] = await add(1, 2, store.WAITING)
        made["other_conversion"] = await add(2, 1, store.WAITING)

    clean.call(setup)
    # The first of each conversion and template; not the second, behind the first.
    assert clean.call(claim) == {made["first"], made["other_template"], made["other_conversion"]}
    # The first in flight (leased) still holds the second back.
    assert clean.call(claim) == set()

    def ended(row_id: int, state: str, at: datetime) -> list[store.Recorded]:
        claimed = store.Claimed(row_id, "", 1, "GET", "", "", "", "tracker.invalid", 0, None)
        attempt = store.Attempt(at, "", 503, 1, "", "", "me")
        return [store.Recorded(claimed, attempt, store.Outcome(state, at, False, False))]

    def record(row_id: int, state: str, at: datetime) -> None:
        clean.call(lambda: store.record_attempts(db, "me", ended(row_id, state, at), 50))

    # The other two delivered; the first to be tried again in five minutes (retrying, waiting
    # again): the second still waits.
    record(made["other_template"], store.DELIVERED, now)
    record(made["other_conversion"], store.DELIVERED, now)
    record(made["first"], store.WAITING, now + timedelta(minutes=5))
    assert clean.call(claim) == set()
    # Its retry is claimed when due, and once it ended (here: dead, given up) the second is next.
    now = now + timedelta(minutes=10)
    assert clean.call(claim) == {made["first"]}
    assert clean.call(claim) == set()
    record(made["first"], store.DEAD, now)
    assert clean.call(claim) == {made["second"]}
