"""Outbound postbacks end to end: templates through the API, conversions through the postback
endpoint, deliveries sent by the server's own dispatcher to a real local receiver."""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest

from clickback.core.outbound import destination_of, verify_signature
from clickback.delivery.dispatcher import Dispatcher
from clickback.delivery.sender import Sender
from tests.conftest import Client, Node, World
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


@contextmanager
def patient(node: Node) -> Iterator[Dispatcher]:
    """`node`'s dispatcher giving each attempt a minute rather than the tests' second, for tests
    whose receiver holds its replies: however slow the machine, no attempt times out (a timeout
    would be retried, and free a slot of the destination's for one more delivery)."""
    runtime = node.runtime
    dispatcher = runtime.dispatcher
    assert dispatcher is not None
    policy, sender = dispatcher.policy, dispatcher._sender
    dispatcher.policy = replace(policy, timeout=60)
    dispatcher._sender = Sender(runtime.settings.outbound_allowlist, 60, policy.concurrency)
    try:
        yield dispatcher
    finally:
        held, dispatcher.policy, dispatcher._sender = dispatcher._sender, policy, sender
        # The attempts still sending through it end (the receiver lets them go) before it closes.
        eventually(lambda: None if dispatcher._in_flight else True)
        node.call(held.close)


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
    receiver.script = [Answer(301, headers={"location": receiver.url("/elsewhere?token=s3cr3t")})]
    add_template(client, world, receiver.url("/pb"))

    convert(client, world)

    failed = eventually(delivery(client, "failed"))
    assert [g.target for g in receiver.got] == ["/pb"]
    (attempt,) = failed["attempt_log"]
    assert attempt["http_status"] == 301
    # The log says why, and where to point the template instead (its secrets masked).
    where = receiver.url("/elsewhere?token=***")
    why = f"HTTP 301 redirect to {where}: redirects are not followed; fix the URL"
    assert attempt["error"] == why and failed["last_error"] == why


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
    dispatcher = client.node.runtime.dispatcher
    assert dispatcher is not None
    policy = dispatcher.policy
    # The whole schedule in about 0.4 s instead of 4 s: the test is about where it ends.
    dispatcher.policy = replace(policy, retry_base=0.0001)
    try:
        convert(client, world)
        dead = eventually(delivery(client, "dead"))
    finally:
        dispatcher.policy = policy
    assert dead["attempts"] == 15 and len(dead["attempt_log"]) == 15
    assert all(a["http_status"] is None and a["error"] for a in dead["attempt_log"])

    port = int(urlsplit(url).port or 0)
    with receiving(port) as back:
        assert client.api("POST", "/outbound/replay", json={"state": "dead"}) == {"replayed": 1}
        (got,) = back.wait_for(1)
        assert got.headers["x-clickback-delivery"] == dead["delivery_id"]
        eventually(delivery(client, "delivered"))


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


CPA_100 = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}


def test_commission_is_the_affiliates_and_a_cpa_reversal_fires_its_template(
    client: Client, world: World, receiver: Receiver
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    ftd_url = "/ftd?payout={payout}&adv={advertiser_payout}&st={status}"
    add_template(client, world, receiver.url(ftd_url), events=["first_deposit"])
    cpa_url = "/cpa?subid={subid}&payout={payout}&cur={currency}&st={status}"
    add_template(client, world, receiver.url(cpa_url), events=["qualified_cpa"], status_map={"rejected": "2"})
    click_id = client.click(world.alice_casino, sub1="trk-9")
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="p1", token=world.token)
    ftd = client.postback(
        click_id=click_id, event="first_deposit", player_id="p1", txn_id="d1", payout="500", token=world.token
    )
    assert ftd.json()["result"] == "accepted"

    got = receiver.deliveries(2)
    by_path = {urlsplit(g.target).path: query_of(g.target) for g in got}
    # The advertiser's 500 is the deposit; the affiliate earns the CPA, announced by qualified_cpa.
    assert by_path["/ftd"] == {"payout": "0.00", "adv": "500.00", "st": "approved"}
    assert by_path["/cpa"] == {"subid": "trk-9", "payout": "100.00", "cur": "EUR", "st": "approved"}

    # The deposit charged back: the CPA no longer holds, and the affiliate's tracker is told.
    client.postback(
        click_id=click_id,
        event="first_deposit",
        player_id="p1",
        txn_id="d1",
        status="rejected",
        token=world.token,
    )
    got = receiver.deliveries(4)
    later = sorted((urlsplit(g.target).path, query_of(g.target)["st"]) for g in got[2:])
    assert later == [("/cpa", "2"), ("/ftd", "rejected")]


def test_an_ngr_report_after_a_change_of_currency_announces_its_months_currency(
    client: Client, world: World, receiver: Receiver
) -> None:
    """The RevShare month was booked in EUR: a report after the deal moved to USD is priced and
    paid in EUR, and its commission is announced so (docs/commissions.md)."""
    deal = f"/offers/{world.casino['id']}/deal"
    client.api("PUT", deal, json={"kind": "revshare", "revshare": {"percent": "25"}})
    add_template(client, world, receiver.url("/ngr?payout={payout}&cur={currency}"), events=["net_revenue"])
    click_id = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="p1", token=world.token)
    report = {"click_id": click_id, "event": "net_revenue", "player_id": "p1", "token": world.token}
    assert client.postback(**report, txn_id="n1", payout="100").json()["result"] == "accepted"
    client.api("PUT", deal, json={"currency": "USD"})
    assert client.postback(**report, txn_id="n2", payout="200").json()["result"] == "accepted"

    got = sorted((query_of(g.target)["payout"], query_of(g.target)["cur"]) for g in receiver.deliveries(2))
    assert got == [("25.00", "EUR"), ("50.00", "EUR")]


def test_a_manual_rejection_keeps_its_reason_and_fires_the_template(
    client: Client, world: World, receiver: Receiver
) -> None:
    add_template(client, world, receiver.url("/pb?st={status}&c={conversion_id}"), statuses=["rejected"])
    conversion_id = convert(client, world, event="sale", payout="40")

    changed = client.api(
        "POST",
        f"/conversions/{conversion_id}/status",
        json={"status": "rejected", "reason": "fraud: same IP x50"},
    )

    assert changed["status"] == "rejected"
    assert changed["history"][-1] | {"at": None} == {
        "at": None,
        "from_status": "approved",
        "to_status": "rejected",
        "postback_id": None,
        "reason": "fraud: same IP x50",
    }
    (got,) = receiver.wait_for(1)  # the approval had no template; the rejection has
    assert query_of(got.target) == {"st": "rejected", "c": str(conversion_id)}
    # The report counts it as rejected now, as after a postback saying so.
    assert client.report()["totals"]["declined"] == 1
    again = client.http.post(
        f"/api/conversions/{conversion_id}/status",
        json={"status": "rejected", "reason": "x"},
        headers=client.auth,
    )
    assert again.status_code == 409
    cancelled = client.api(
        "POST", f"/conversions/{conversion_id}/status", json={"status": "cancelled", "reason": "x"}
    )
    assert cancelled["status"] == "cancelled"
    final = client.http.post(
        f"/api/conversions/{conversion_id}/status",
        json={"status": "approved", "reason": "x"},
        headers=client.auth,
    )
    assert final.status_code == 409 and "cancelled" in final.json()["detail"]
    missing = client.http.post(
        "/api/conversions/999999/status", json={"status": "approved", "reason": "x"}, headers=client.auth
    )
    assert missing.status_code == 404


def test_templates_are_listed_changed_paused_and_deleted(
    client: Client, world: World, receiver: Receiver
) -> None:
    first = add_template(client, world, receiver.url("/a?x={subid}"), name="reg")
    second = add_template(
        client, world, receiver.url("/b?x={subid}"), offer_id=world.casino["id"], events=["first_deposit"]
    )
    add_template(client, world, receiver.url("/c"), affiliate_id=world.bob["id"])

    page = client.api("GET", "/outbound/templates", params={"affiliate_id": world.alice["id"], "limit": 1})
    assert [t["id"] for t in page["items"]] == [first["id"]]
    rest = client.api(
        "GET",
        "/outbound/templates",
        params={"affiliate_id": world.alice["id"], "cursor": page["next_cursor"]},
    )
    assert [t["id"] for t in rest["items"]] == [second["id"]] and rest["next_cursor"] is None

    changed = client.api(
        "PATCH",
        f"/outbound/templates/{second['id']}",
        json={"status_map": {"approved": "1"}, "offer_id": None},
    )
    assert changed["status_map"] == {"approved": "1"} and changed["offer_id"] is None
    assert changed["url"] == second["url"] and changed["events"] == ["first_deposit"]
    bad = client.http.patch(
        f"/api/outbound/templates/{second['id']}",
        json={"url": receiver.url("/b?x={bogus}")},
        headers=client.auth,
    )
    assert bad.status_code == 422 and "{subid}" in bad.text  # the known macros listed

    paused = client.api("PUT", f"/outbound/templates/{first['id']}/status", json={"status": "paused"})
    assert paused["status"] == "paused"
    convert(client, world, event="first_deposit", payout="10")
    (got,) = receiver.wait_for(1)  # only the active template fired
    assert urlsplit(got.target).path == "/b"

    assert (
        client.http.delete(f"/api/outbound/templates/{first['id']}", headers=client.auth).status_code == 204
    )
    assert client.http.get(f"/api/outbound/templates/{first['id']}", headers=client.auth).status_code == 404


OLD_SECRET, NEW_SECRET = "secret-of-the-deleted-template", "secret-of-the-template-made-after"


@pytest.mark.parametrize(("old", "new"), [(None, NEW_SECRET), (OLD_SECRET, None), (OLD_SECRET, NEW_SECRET)])
def test_a_deleted_templates_queued_delivery_is_sent_as_it_was_made(
    client: Client, world: World, receiver: Receiver, old: str | None, new: str | None
) -> None:
    # Paused by hand, the destination keeps the delivery queued while its template is deleted
    # and another made: on SQLite the new one used to take the deleted one's id, and its secret
    # (or none) signed the queued delivery.
    destination = f"127.0.0.1:{receiver.port}"
    client.api("POST", f"/outbound/destinations/{destination}/pause", json={"reason": "hold"})
    deleted = add_template(client, world, receiver.url("/old?x={subid}"), secret=old)
    convert(client, world)
    eventually(lambda: client.api("GET", "/outbound/destinations", params={"paused": "true"})[0]["waiting"])
    gone = client.http.delete(f"/api/outbound/templates/{deleted['id']}", headers=client.auth)
    assert gone.status_code == 204
    made = add_template(client, world, receiver.url("/new?x={subid}"), secret=new)
    assert made["id"] != deleted["id"]
    history = client.items("/audit", entity_kind="outbound_template", entity_id=str(made["id"]))
    assert [h["action"] for h in history] == ["create"]

    client.api("POST", f"/outbound/destinations/{destination}/resume")

    (got,) = receiver.wait_for(1)
    assert urlsplit(got.target).path == "/old"
    header = got.headers.get("x-clickback-signature")
    if old is None:
        assert header is None
    else:
        assert header is not None and verify_signature(old, header, got.target.encode())
    assert eventually(delivery(client, "delivered"))["template_id"] == deleted["id"]


def test_a_rolled_back_postback_sends_nothing(client: Client, world: World, receiver: Receiver) -> None:
    add_template(client, world, receiver.url())
    click_id = client.click(world.alice_casino)
    client.flush()
    # Refused (unknown event): logged, nothing recorded, nothing queued.
    refused = client.postback(click_id=click_id, event="jackpot", token=world.token)
    assert refused.status_code == 422
    accepted = client.postback(click_id=click_id, event="registration", token=world.token)
    assert accepted.status_code == 200
    eventually(delivery(client, "delivered"))
    assert len(client.items("/outbound/deliveries")) == 1 and len(receiver.got) == 1


def test_two_dispatchers_send_each_delivery_once(
    client: Client, world: World, receiver: Receiver, second_node: Any
) -> None:
    # Both servers' dispatchers claim from the same database (on SQLite, the same file). The
    # receiver holds its replies until more are in flight than one dispatcher ever sends to a
    # destination at once: then both are sending. The destination is paused while the postbacks
    # come in, so that the whole backlog is there when it is resumed (not taken by the first
    # dispatcher alone while postbacks trickle in on a loaded machine); the second is woken once
    # the first is sending, so that their claims do not meet (on PostgreSQL a claim skips rows
    # the other has locked, and would look again only at its next poll).
    gate = threading.Event()
    most = client.node.runtime.dispatcher.policy.per_destination  # type: ignore[union-attr]

    def answer(got: Any) -> Answer:
        if len(receiver.got) > most:
            gate.set()
        return Answer(200, hold=gate, hold_seconds=0.8)

    receiver.answer = answer
    with patient(client.node), patient(second_node):
        add_template(client, world, receiver.url("/pb?c={conversion_id}"))
        second_node.call(second_node.runtime.catalog.reload)
        destination = destination_of(receiver.url())
        client.api("POST", f"/outbound/destinations/{destination}/pause", json={"reason": "backlog first"})
        clicks = [client.click(world.alice_casino) for _ in range(40)]
        client.flush()
        for n, click_id in enumerate(clicks):
            client.postback(click_id=click_id, event="sale", txn_id=f"t{n}", token=world.token)
        assert client.api("POST", f"/outbound/destinations/{destination}/resume")["due"] == 40
        receiver.wait_for(most)

        async def wake() -> None:
            second_node.runtime.dispatcher.wake()

        second_node.call(wake)
        got = receiver.wait_for(40)
        eventually(lambda: len(client.items("/outbound/deliveries", state="delivered")) == 40)
        assert gate.is_set()
        assert len(receiver.got) == 40
        assert len({g.headers["x-clickback-delivery"] for g in got}) == 40
        rows = [
            client.api("GET", f"/outbound/deliveries/{r['id']}") for r in client.items("/outbound/deliveries")
        ]
        assert all(len(r["attempt_log"]) == 1 for r in rows), [
            r["attempt_log"] for r in rows if len(r["attempt_log"]) > 1
        ]
        assert len({r["attempt_log"][0]["worker"] for r in rows}) == 2


def test_the_ssrf_guard_refuses_private_destinations_when_a_template_is_saved(
    clean: Any, database_url: str, tmp_path: Any
) -> None:
    from tests.conftest import make_world, private_node

    for node in private_node(clean, database_url, tmp_path, outbound_allow="10.9.0.0/16"):
        c = Client(node)
        world = make_world(c)
        for host in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "localhost"):
            body = {"affiliate_id": world.alice["id"], "url": f"http://{host}:8080/pb?subid={{subid}}"}
            refused = c.http.post("/api/outbound/templates", json=body, headers=c.auth)
            assert refused.status_code == 422, host
            assert "public addresses only" in refused.text, refused.text
        allowed = {"affiliate_id": world.alice["id"], "url": "http://10.9.1.1:8080/pb"}
        assert c.http.post("/api/outbound/templates", json=allowed, headers=c.auth).status_code == 201
        c.http.close()


def test_a_template_for_a_link_made_through_another_server_is_accepted_at_once(
    client: Client, world: World, database_url: str, tmp_path: Any
) -> None:
    """Two servers behind a load balancer: the link is made through one, the template through the
    other straight after, before that one's catalog refresh would have seen the link."""
    from tests.conftest import serve, settings_for

    for other in serve(settings_for(database_url, tmp_path, catalog_refresh_seconds=60)):
        new = [
            client.api("POST", "/links", json={"affiliate_id": world.bob["id"], "offer_id": offer["id"]})
            for offer in (world.sportsbook, world.rival_offer)
        ]
        elsewhere = Client(other)
        try:
            body = {
                "affiliate_id": world.bob["id"],
                "offer_id": new[0]["offer_id"],
                "url": "http://127.0.0.1:9/pb",
            }
            made = elsewhere.http.post("/api/outbound/templates", json=body, headers=elsewhere.auth)
            assert made.status_code == 201, made.text
            change = {"offer_id": new[1]["offer_id"]}
            path = f"/api/outbound/templates/{made.json()['id']}"
            changed = elsewhere.http.patch(path, json=change, headers=elsewhere.auth)
            assert changed.status_code == 200, changed.text
        finally:
            elsewhere.http.close()


def test_a_slow_destination_does_not_delay_another(client: Client, world: World, receiver: Receiver) -> None:
    gate = threading.Event()
    receiver.answer = lambda got: Answer(200, hold=gate, hold_seconds=30)  # held until the end
    with patient(client.node) as dispatcher, receiving() as fast:
        most = dispatcher.policy.per_destination
        add_template(client, world, receiver.url("/slow"))
        add_template(client, world, fast.url("/fast"), affiliate_id=world.bob["id"])
        try:
            slow_clicks = [client.click(world.alice_casino) for _ in range(3 * most)]
            fast_clicks = [client.click(world.bob_casino) for _ in range(5)]
            client.flush()
            for n, click_id in enumerate(slow_clicks):
                client.postback(click_id=click_id, event="sale", txn_id=f"s{n}", token=world.token)
            receiver.wait_for(most)  # the slow destination's share is in flight, held
            for n, click_id in enumerate(fast_clicks):
                client.postback(click_id=click_id, event="sale", txn_id=f"f{n}", token=world.token)

            fast.wait_for(5)
            assert len(receiver.got) == most
        finally:
            gate.set()


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/pb",
        "http://b\u00fccher.invalid/pb",
        "http://exa mple.com/pb",
        "javascript:alert(1)//x",
        "http://" + "a" * 63 + "." + "b" * 63 + ".invalid/pb",
        "http://x\u0000y.example/pb",
        "https://t.example:0/pb",
    ],
)
def test_a_malformed_destination_is_a_422_not_a_500(client: Client, world: World, url: str) -> None:
    body = {"affiliate_id": world.alice["id"], "url": url}
    refused = client.http.post("/api/outbound/templates", json=body, headers=client.auth)
    assert refused.status_code == 422, refused.text


def test_another_trackers_placeholder_is_a_422_naming_it(client: Client, world: World) -> None:
    url = "http://127.0.0.1:9/ok?x={{subid}}&y=[clickid]&z=${payout}&w=%7Bclick_id%7D&v={click-id}"
    body = {"affiliate_id": world.alice["id"], "url": url}
    refused = client.http.post("/api/outbound/templates", json=body, headers=client.auth)
    assert refused.status_code == 422, refused.text
    assert "'{{subid}}' in the URL" in refused.text
    assert client.items("/outbound/templates") == []


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:9/ok?c={subid}&p=$payout", "'$payout' in the URL"),
        ("http://127.0.0.1:9/ok?c=$clickid$&p={payout}", "'$clickid$' in the URL"),
    ],
)
def test_a_dollar_placeholder_is_a_422_naming_it(client: Client, world: World, url: str, named: str) -> None:
    body = {"affiliate_id": world.alice["id"], "url": url}
    refused = client.http.post("/api/outbound/templates", json=body, headers=client.auth)
    assert refused.status_code == 422, refused.text
    assert named in refused.text and "%24" in refused.text
    assert client.items("/outbound/templates") == []


def test_a_dollar_sign_that_is_data_is_saved_as_written(
    client: Client, world: World, receiver: Receiver
) -> None:
    saved = add_template(client, world, receiver.url("/pb?price=$5&cur=US$&k=ab$cd&note=%24payout&s={sub1}"))
    assert "?price=$5&cur=US$&k=ab$cd&note=%24payout&s={sub1}" in saved["url"]


def test_a_manual_rejection_reverses_the_cpa_as_a_postback_would(
    client: Client, world: World, receiver: Receiver
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    add_template(
        client,
        world,
        receiver.url("/pb?e={event}&p={payout}"),
        events=["qualified_cpa"],
        statuses=["rejected"],
    )
    click_id = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="p2", token=world.token)
    ftd = client.postback(
        click_id=click_id, event="first_deposit", player_id="p2", txn_id="d2", payout="50", token=world.token
    ).json()
    assert [e["amount"] for e in client.items("/commissions")] == ["100.00"]

    client.api(
        "POST",
        f"/conversions/{ftd['conversion_id']}/status",
        json={"status": "rejected", "reason": "chargeback"},
    )

    assert sorted(e["amount"] for e in client.items("/commissions")) == ["-100.00", "100.00"]
    (got,) = receiver.wait_for(1)
    assert query_of(got.target) == {"e": "qualified_cpa", "p": "100.00"}


def test_a_chargeback_that_reverses_a_cpa_on_the_first_deposit_alone_fires_the_template(
    client: Client, world: World, receiver: Receiver
) -> None:
    deal = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20", "deposits_min": None, "hold_days": 3}}
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=deal)
    add_template(
        client, world, receiver.url("/pb?e={event}&st={status}&p={payout}"), events=["qualified_cpa"]
    )
    click_id = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=click_id, event="registration", player_id="H1", token=world.token)
    client.postback(event="deposit", player_id="H1", payout="30", txn_id="H1D", token=world.token)

    client.postback(event="chargeback", player_id="H1", payout="30", txn_id="H1CB", token=world.token)

    got = receiver.deliveries(2)
    assert [query_of(g.target) for g in got] == [
        {"e": "qualified_cpa", "st": "approved", "p": "100.00"},
        {"e": "qualified_cpa", "st": "rejected", "p": "100.00"},
    ]


def test_a_conversion_attributed_late_fires_once_its_click_lands(
    client: Client, world: World, receiver: Receiver, second_node: Any
) -> None:
    # The click is still in the other node's buffer when the postback arrives: the conversion has
    # no affiliate yet, so no template can fire; it fires when the click lands.
    add_template(client, world, receiver.url("/pb?subid={subid}&c={conversion_id}"))
    # Either node may attribute it: both know the template (others learn within a second).
    second_node.call(second_node.runtime.catalog.reload)
    other = Client(second_node)
    with second_node.writer_held():
        cid = other.click(world.alice_casino, sub1="late-1")
        accepted = client.postback(click_id=cid, event="registration", token=world.token).json()
        assert client.items("/outbound/deliveries") == []
    other.flush()
    client.flush()  # this node's writer attributes conversions whose click landed

    (got,) = receiver.wait_for(1)
    assert query_of(got.target) == {"subid": "late-1", "c": str(accepted["conversion_id"])}
    other.http.close()
