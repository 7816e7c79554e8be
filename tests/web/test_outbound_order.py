"""A conversion's changes reach an affiliate's tracker in the order they were made, also when the
first one's attempt fails and is retried: a tracker keeps the last status it hears. End to end,
through the server's own dispatcher and real local receivers; the queue itself on rows made by
hand in tests/store/test_outbound_queue.py."""

import threading
from collections.abc import Callable

from clickback.core.outbound import destination_of
from tests.conftest import Client, World
from tests.receiver import Answer, Got, Receiver, receiving
from tests.web.test_outbound import add_template, convert, eventually, patient, query_of


def heard(
    receiver: Receiver, answer: Callable[[Got], Answer], then: Callable[[], None]
) -> list[tuple[str, str]]:
    """Makes `answer` the receiver's answer function, `then` called after each; returns the
    (conversion, status) of each request it answered 2xx, in the order they arrived: what the
    tracker took in."""
    taken: list[tuple[str, str]] = []

    def answering(got: Got) -> Answer:
        given = answer(got)
        if given.status < 300:
            q = query_of(got.target)
            taken.append((q["c"], q["st"]))
        then()
        return given

    receiver.answer = answering
    return taken


def of(taken: list[tuple[str, str]], conversion_id: int) -> list[str]:
    """One conversion's statuses as its tracker heard them, a repeat of the last one left out (an
    attempt that timed out after the receiver took it is sent again)."""
    statuses: list[str] = []
    for c, status in taken:
        if c == str(conversion_id) and statuses[-1:] != [status]:
            statuses.append(status)
    return statuses


def test_a_conversions_changes_reach_its_tracker_in_order_while_the_first_is_retried(
    client: Client, world: World
) -> None:
    # The tracker holds the approval's first attempt and then answers 503: it is retried, and
    # the rejection, made a moment after the approval, must wait for it. Meanwhile the same
    # conversion's deliveries to another tracker, and another conversion's to this one, go on:
    # the held attempt is let go only once they have arrived.
    ids: dict[str, int] = {}
    gate = threading.Event()
    failed: list[str] = []

    with receiving() as tracker, receiving() as other, patient(client.node):

        def look() -> None:
            if len(of(at_other, ids["one"])) == 2 and of(at_tracker, ids["two"]) == ["approved"]:
                gate.set()

        def tracker_answer(got: Got) -> Answer:
            q = query_of(got.target)
            if (q["c"], q["st"]) == (str(ids["one"]), "approved") and not failed:
                failed.append(got.headers["x-clickback-delivery"])
                return Answer(503, b"later", hold=gate, hold_seconds=30)
            return Answer(200)

        def other_answer(got: Got) -> Answer:
            return Answer(200)

        at_tracker = heard(tracker, tracker_answer, look)
        at_other = heard(other, other_answer, look)

        for receiver in (tracker, other):
            add_template(client, world, receiver.url("/pb?st={status}&c={conversion_id}"))
        destinations = [destination_of(r.url()) for r in (tracker, other)]
        # Paused while the changes are made: every delivery is queued before any is sent.
        for destination in destinations:
            client.api(
                "POST", f"/outbound/destinations/{destination}/pause", json={"reason": "changes first"}
            )
        ids["one"] = convert(client, world, event="sale", payout="40")  # approved
        body = {"status": "rejected", "reason": "fraud check"}
        assert client.api("POST", f"/conversions/{ids['one']}/status", json=body)["status"] == "rejected"
        ids["two"] = convert(client, world, event="sale", payout="50")

        # Each tracker's rejection of conversion one is held behind its approval, in the
        # lists and the destinations' counts alike.
        held = client.items("/outbound/deliveries", state="held")
        assert sorted((d["destination"], d["conversion_id"], d["status"]) for d in held) == sorted(
            (destination, ids["one"], "rejected") for destination in destinations
        )
        paused = client.api("GET", "/outbound/destinations", params={"paused": "true"})
        assert [(d["waiting"], d["held"]) for d in paused] == [(2, 1), (2, 1)]
        for destination in destinations:
            client.api("POST", f"/outbound/destinations/{destination}/resume")

        eventually(lambda: len(of(at_tracker, ids["one"])) == 2)
        assert gate.is_set()
        assert of(at_tracker, ids["one"]) == ["approved", "rejected"]
        assert of(at_other, ids["one"]) == ["approved", "rejected"]
        assert of(at_tracker, ids["two"]) == ["approved"]
        assert eventually(lambda: len(client.items("/outbound/deliveries", state="delivered")) == 6)
        (retried,) = [
            d for d in client.items("/outbound/deliveries", destination=destinations[0]) if d["attempts"] > 1
        ]
        assert retried["delivery_id"] == failed[0]
