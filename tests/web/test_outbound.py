"""Outbound postbacks end to end: templates through the API, conversions through the postback
endpoint, deliveries sent by the server's own dispatcher to a real local receiver."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest

from clickback.core.outbound import verify_signature
from tests.conftest import Client, World
from tests.receiver import Answer, Receiver, receiving

T = TypeVar("T")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def eventually(look: Callable[[], T | None], timeout: float = 30) -> T:
    """`look`'s first truthy answer. The dispatcher records an attempt after the receiver has
    answered it, and nothing tells the test when: look again until it shows."""
    deadline = time.monotonic() + timeout
    while True:
        found = look()
        if found:
            return found
        assert time.monotonic() < deadline, "not within the time allowed"
        threading.Event().wait(0.02)


def add_template(client: Client, world: World, url: str, **fields: Any) -> dict[str, Any]:
    body = {"affiliate_id": world.alice["id"], "url": url, **fields}
    return dict(client.api("POST", "/outbound/templates", json=body))


def convert(client: Client, world: World, event: str = "registration", **params: str) -> int:
    """A click on Alice's casino link (the tracker's click ID in sub1), and a postback for it."""
    click_id = client.click(world.alice_casino, sub1="trk-123", sub2="zone 7&x", source="push")
    client.flush()
    response = client.postback(click_id=click_id, event=event, token=world.token, **params)
    assert response.status_code == 200, response.text
    return int(response.json()["conversion_id"])


def delivery(client: Client, state: str) -> Callable[[], dict[str, Any] | None]:
    def look() -> dict[str, Any] | None:
        rows = client.items("/outbound/deliveries", state=state)
        return client.api("GET", f"/outbound/deliveries/{rows[0]['id']}") if rows else None

    return look


def query_of(target: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}


def test_an_accepted_postback_reaches_the_affiliates_tracker(
    client: Client, world: World, receiver: Receiver
) -> None:
    url = receiver.url("/pb?subid={subid}&status={status}&payout={payout}&ev={event}&s2={sub2}&src={source}")
    add_template(client, world, url, status_map={"approved": "sale"})

    conversion_id = convert(client, world)

    (got,) = receiver.wait_for(1)
    assert got.method == "GET"
    q = query_of(got.target)
    assert q == {
        "subid": "trk-123",
        "status": "sale",
        "payout": "0.00",
        "ev": "registration",
        "s2": "zone 7&x",
        "src": "push",
    }
    assert "zone%207%26x" in got.target  # every value URL-encoded
    done = eventually(delivery(client, "delivered"))
    assert done["conversion_id"] == conversion_id
    assert got.headers["x-clickback-delivery"] == done["delivery_id"]
    (attempt,) = done["attempt_log"]
    assert attempt["http_status"] == 200 and attempt["reply"] == "ok" and attempt["error"] == ""


def test_500_then_success_keeps_one_delivery_id(client: Client, world: World, receiver: Receiver) -> None:
    receiver.script = [Answer(500, b"boom"), Answer(503, b"later")]
    add_template(client, world, receiver.url("/pb?id={delivery_id}"))

    convert(client, world)

    got = receiver.wait_for(3)
    ids = {g.headers["x-clickback-delivery"] for g in got}
    assert len(ids) == 1
    assert {query_of(g.target)["id"] for g in got} == ids  # the {delivery_id} macro too
    done = eventually(delivery(client, "delivered"))
    assert [a["http_status"] for a in done["attempt_log"]] == [500, 503, 200]
    assert done["attempt_log"][0]["reply"] == "boom"


def test_a_timeout_is_retried(client: Client, world: World, receiver: Receiver) -> None:
    hold = threading.Event()
    receiver.script = [Answer(200, hold=hold)]
    add_template(client, world, receiver.url())
    try:
        convert(client, world)
        receiver.wait_for(2)  # the first timed out (1 s in tests), the second is answered
    finally:
        hold.set()
    done = eventually(delivery(client, "delivered"))
    first, second = done["attempt_log"]
    assert first["http_status"] is None and "timed out" in first["error"]
    assert second["http_status"] == 200


def test_a_redirect_is_not_followed_and_fails(client: Client, world: World, receiver: Receiver) -> None:
    receiver.script = [Answer(301, headers={"location": receiver.url("/elsewhere")})]
    add_template(client, world, receiver.url("/pb"))

    convert(client, world)

    failed = eventually(delivery(client, "failed"))
    assert [g.target for g in receiver.got] == ["/pb"]
    assert failed["attempt_log"][0]["http_status"] == 301


def test_400_is_permanent(client: Client, world: World, receiver: Receiver) -> None:
    receiver.default = Answer(400, b"bad subid")
    add_template(client, world, receiver.url())

    convert(client, world)

    failed = eventually(delivery(client, "failed"))
    assert failed["attempts"] == 1 and failed["last_status"] == 400
    assert len(receiver.got) == 1


def test_429_waits_for_retry_after(client: Client, world: World, receiver: Receiver) -> None:
    receiver.script = [Answer(429, headers={"retry-after": "1"})]
    add_template(client, world, receiver.url())

    convert(client, world)

    first, second = receiver.wait_for(2)
    # The retry base is a millisecond in tests: only Retry-After made it wait.
    assert second.at - first.at >= 0.95
    eventually(delivery(client, "delivered"))


def test_a_json_body_gets_json_escaped_values(client: Client, world: World, receiver: Receiver) -> None:
    body = '{"click": "{subid}", "where": "{sub2}", "amount": "{payout}", "conv": {conversion_id}}'
    add_template(client, world, receiver.url(), method="POST", body_format="json", body=body)

    click_id = client.click(world.alice_casino, sub1='say "hi"\\', sub2="line\nbreak")
    client.flush()
    client.postback(click_id=click_id, event="registration", token=world.token)

    (got,) = receiver.wait_for(1)
    assert got.method == "POST" and got.headers["content-type"] == "application/json"
    sent = json.loads(got.body)
    assert sent["click"] == 'say "hi"\\'
    assert isinstance(sent["conv"], int)


def test_the_signature_verifies_and_a_wrong_secret_does_not(
    client: Client, world: World, receiver: Receiver
) -> None:
    secret = "s3cret-key-of-the-affiliate"
    add_template(client, world, receiver.url("/pb?subid={subid}"), secret=secret)
    template = client.items("/outbound/templates")[0]
    assert template["signed"] is True and "secret" not in template

    convert(client, world)

    (got,) = receiver.wait_for(1)
    header = got.headers["x-clickback-signature"]
    assert verify_signature(secret, header, got.target.encode())
    assert documented_verify(secret, header, got.target.encode())
    assert not documented_verify("another-secret-key", header, got.target.encode())


def documented_verify(secret: str, header: str, payload: bytes) -> bool:
    # The snippet of docs/outbound.md ("Verifying the signature"), verbatim.
    import hashlib
    import hmac
    import time

    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp, received = fields["t"], fields["v1"]
    if abs(time.time() - int(timestamp)) > 300:
        return False  # too old: a replay
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


def test_receiver_down_ends_as_a_dead_letter_then_replay_delivers(client: Client, world: World) -> None:
    with receiving() as gone:
        url = gone.url("/pb?subid={subid}")
    # The port is closed now: every attempt is refused.
    add_template(client, world, url)
    convert(client, world)

    dead = eventually(delivery(client, "dead"))
    assert dead["attempts"] == 15 and len(dead["attempt_log"]) == 15
    assert all(a["http_status"] is None and a["error"] for a in dead["attempt_log"])

    port = int(urlsplit(url).port or 0)
    with receiving_on(port) as back:
        assert client.api("POST", "/outbound/replay", json={"state": "dead"}) == {"replayed": 1}
        (got,) = back.wait_for(1)
        assert got.headers["x-clickback-delivery"] == dead["delivery_id"]
        eventually(delivery(client, "delivered"))


def receiving_on(port: int) -> Any:
    """A receiver on the port another one had (free again once that one closed)."""
    import contextlib
    from http.server import ThreadingHTTPServer

    @contextlib.contextmanager
    def run() -> Iterator[Receiver]:
        r = Receiver()
        handler = r.server.RequestHandlerClass
        r.server.server_close()
        r.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        r.port = port
        thread = threading.Thread(target=r.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield r
        finally:
            r.server.shutdown()
            r.server.server_close()

    return run()


def test_a_failing_destination_pauses_visibly_and_resume_sends_the_backlog(
    client: Client, world: World, receiver: Receiver
) -> None:
    dispatcher = client.node.runtime.dispatcher
    assert dispatcher is not None
    policy = dispatcher.policy
    dispatcher.policy = replace(policy, pause_after=3)
    try:
        receiver.default = Answer(502, b"bad gateway")
        add_template(client, world, receiver.url())
        convert(client, world)

        def paused() -> dict[str, Any] | None:
            found = client.api("GET", "/outbound/destinations", params={"paused": "true"})
            return found[0] if found else None

        destination = eventually(paused)
        assert destination["destination"] == f"127.0.0.1:{receiver.port}"
        assert destination["failures"] == 3 and "paused after 3" in destination["reason"]
        # More conversions wait rather than being sent or dropped.
        convert(client, world, event="first_deposit", payout="20")
        assert eventually(lambda: paused() if paused()["waiting"] == 2 else None)  # type: ignore[index]
        assert len(receiver.got) == 3

        receiver.default = Answer(200)
        resumed = client.api("POST", f"/outbound/destinations/{destination['destination']}/resume")
        assert resumed["due"] == 2
        receiver.wait_for(5)
        assert eventually(lambda: len(client.items("/outbound/deliveries", state="delivered")) == 2)
        assert client.api("GET", "/outbound/destinations", params={"paused": "true"}) == []
    finally:
        dispatcher.policy = policy
