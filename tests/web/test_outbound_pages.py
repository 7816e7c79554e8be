"""An affiliate's outbound postbacks on the pages, at the HTTP level: a template edited (checked as
the API checks it), paused, resumed and deleted; a delivery with its attempts, replayed; the
failed ones replayed from the log; a manager's destinations. Deliveries go to a real local
receiver through the server's own dispatcher. Another affiliate's rows are a 404, here and
through the API's replay routes."""

from collections.abc import Iterator
from typing import Any

import pytest
from markupsafe import escape

from clickback.core.accounts import Role
from tests.conftest import Client, World
from tests.receiver import Answer, Receiver, receiving
from tests.web.personas import Browser, Keys, add_user, sign_in
from tests.web.test_outbound import add_template, convert, eventually


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def audit(client: Client, kind: str, entity_id: int) -> list[tuple[str, str, Any, Any]]:
    rows = client.items("/audit", entity_kind=kind, entity_id=entity_id)
    return [(e["actor"], e["action"], e["before"], e["after"]) for e in rows]


def alice(client: Client, world: World) -> tuple[Browser, str]:
    key = add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    return sign_in(client, "alice"), key


EDIT = {
    "action": "save",
    "name": "my tracker",
    "url": "http://127.0.0.1:9/pb?cid={clickid}&s={status}",
    "offer": "",
    "events": "registration, first_deposit",
    "status_approved": "1",
    "status_map": "approved=sale",
    "method": "GET",
    "click_id_sub": "sub2",
}


def test_an_affiliate_edits_pauses_resumes_and_deletes_their_template_on_its_page(
    client: Client, world: World
) -> None:
    page, _ = alice(client, world)
    template = add_template(client, world, "http://127.0.0.1:9/old?cid={clickid}")["id"]
    bobs = client.api(
        "POST", "/outbound/templates", json={"affiliate_id": world.bob["id"], "url": "http://127.0.0.1:9/b"}
    )
    here = f"/outbound/{template}"
    assert f'href="{here}"' in page.get("/outbound").text

    saved = page.post(here, EDIT)
    assert saved.status_code == 303 and saved.headers["location"] == here
    stored = client.api("GET", f"/outbound/templates/{template}")
    assert stored["url"] == EDIT["url"] and stored["name"] == "my tracker"
    assert (stored["events"], stored["statuses"]) == (["first_deposit", "registration"], ["approved"])
    assert (stored["status_map"], stored["click_id_sub"]) == ({"approved": "sale"}, "sub2")

    # Refused as the API refuses it, said in the form, with what was typed kept.
    for field, value, says in (
        ("url", "http://127.0.0.1:9/pb?x={nope}&y=<i>", "unknown macro"),
        ("events", "registration, teleport", "teleport: not an event"),
        ("url", "http://10.1.2.3/pb", "10.1.2.3"),
        ("status_map", "approved=", "status_map.approved"),
    ):
        refused = page.post(here, EDIT | {field: value})
        assert refused.status_code == 400 and says in refused.text, (field, refused.text)
        assert f'value="{escape(value)}"' in refused.text, field
    assert client.api("GET", f"/outbound/templates/{template}")["url"] == EDIT["url"]
    # Without the session's CSRF token nothing changes.
    assert page.post(here, EDIT | {"name": "forged"}, csrf=False).status_code == 403
    assert page.post(here, {"action": "delete"}, csrf=False).status_code == 403
    # Bob's template is no template of hers, to read or to change.
    assert page.get(f"/outbound/{bobs['id']}").status_code == 404
    assert page.post(f"/outbound/{bobs['id']}", EDIT).status_code == 404
    assert page.post(f"/outbound/{bobs['id']}", {"action": "delete"}).status_code == 404
    assert client.api("GET", f"/outbound/templates/{bobs['id']}")["url"] == "http://127.0.0.1:9/b"

    assert page.post(here, {"action": "pause"}).status_code == 303
    assert client.api("GET", f"/outbound/templates/{template}")["status"] == "paused"
    assert "<dd data-status>paused</dd>" in page.get(here).text
    assert page.post(here, {"action": "resume"}).status_code == 303
    assert client.api("GET", f"/outbound/templates/{template}")["status"] == "active"
    history = page.get(here).text
    gone = page.post(here, {"action": "delete"})
    assert gone.status_code == 303 and gone.headers["location"] == "/outbound"
    assert page.get(here).status_code == 404

    lines = audit(client, "outbound_template", template)
    assert [(actor, action) for actor, action, _, _ in lines] == [
        ("alice", "delete"),
        ("alice", "status"),
        ("alice", "status"),
        ("alice", "edit"),
        ("bootstrap key", "create"),
    ]
    assert lines[3][2]["click_id_sub"] == "sub1" and lines[3][3]["click_id_sub"] == "sub2"
    assert "<td>edit</td>" in history and "<td>alice</td>" in history


def test_a_delivery_page_shows_each_attempt_and_an_affiliate_replays_only_their_own(
    client: Client, world: World, receiver: Receiver
) -> None:
    page, key = alice(client, world)
    receiver.script = [Answer(400, b"unknown <subid>")]  # permanent: the delivery fails
    add_template(client, world, receiver.url("/pb?subid={subid}&token=s3cret"))
    client.api(
        "POST", "/outbound/templates", json={"affiliate_id": world.bob["id"], "url": receiver.url("/bob")}
    )
    convert(client, world)
    bob_click = client.click(world.bob_casino)
    client.flush()
    assert client.postback(click_id=bob_click, event="registration", token=world.token).status_code == 200
    receiver.wait_for(2)

    def state_of(delivery_id: int, state: str) -> dict[str, Any] | None:
        found = client.api("GET", f"/outbound/deliveries/{delivery_id}")
        return found if found["state"] == state and found["attempt_log"] else None

    mine = client.items("/outbound/deliveries", affiliate_id=world.alice["id"])[0]["id"]
    bobs = client.items("/outbound/deliveries", affiliate_id=world.bob["id"])[0]["id"]
    eventually(lambda: state_of(mine, "failed"))
    here = f"/deliveries/{mine}"
    assert f'href="{here}"' in page.get("/deliveries").text
    shown = page.get(here).text
    assert "<td>400</td>" in shown and "unknown &lt;subid&gt;" in shown
    assert "token=***" in shown and "s3cret" not in shown  # secrets masked, as in the API

    # Bob's delivery: a 404 on the page and through the API, and not sent again by either.
    assert page.get(f"/deliveries/{bobs}").status_code == 404
    assert page.post(f"/deliveries/{bobs}", {}).status_code == 404
    # An id no row has, in digits int() reads or fails on: a 404 as well, never a 500.
    assert [page.get(f"/deliveries/{n}").status_code for n in ("\u00b2", "\u0661", "0")] == [404] * 3
    api = client.http.post(f"/api/outbound/deliveries/{bobs}/replay", headers=Keys.header(key))
    assert api.status_code == 404
    many = client.http.post("/api/outbound/replay", json={"ids": [bobs]}, headers=Keys.header(key))
    assert many.json() == {"replayed": 0}
    assert page.post(here, {}, csrf=False).status_code == 403

    replayed = page.post(here, {})
    assert replayed.status_code == 303 and replayed.headers["location"] == here
    receiver.wait_for(3)
    done = eventually(lambda: state_of(mine, "delivered"))
    assert [a["http_status"] for a in done["attempt_log"]] == [400, 200]
    again = page.get(here).text
    assert "<dd data-state>delivered</dd>" in again and "<td>200</td>" in again
    assert len(receiver.got) == 3  # Bob's was sent once, never again
    before = {"state": "failed", "attempts": 1}
    assert audit(client, "delivery", mine) == [
        ("alice", "replay", before, {"state": "waiting", "attempts": 0})
    ]
    assert audit(client, "delivery", bobs) == []
    assert "<td>replay</td>" in again


def test_failed_deliveries_are_sent_again_from_the_log(
    client: Client, world: World, receiver: Receiver
) -> None:
    page, _ = alice(client, world)
    receiver.script = [Answer(400)]
    add_template(client, world, receiver.url())
    convert(client, world)
    eventually(lambda: client.items("/outbound/deliveries", state="failed"))

    assert page.post("/deliveries", {"state": "failed"}, csrf=False).status_code == 403
    wrong = page.post("/deliveries", {"state": "waiting"})
    assert wrong.status_code == 400 and "state: &#39;waiting&#39; is neither of dead, failed" in wrong.text
    sent = page.post("/deliveries", {"state": "failed"})
    assert sent.status_code == 200 and "1 failed deliveries are sent again." in sent.text
    receiver.wait_for(2)
    eventually(lambda: client.items("/outbound/deliveries", state="delivered"))


def test_a_manager_pauses_and_resumes_a_destination_on_its_page(client: Client, world: World) -> None:
    add_user(client, "boss", Role.MANAGER)
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    boss = sign_in(client, "boss")
    assert sign_in(client, "alice").get("/destinations").status_code == 403
    assert "No destination has failed." in boss.get("/destinations").text

    paused = boss.post("/destinations", {"action": "pause", "destination": "127.0.0.1:9"})
    assert paused.status_code == 303
    [row] = client.api("GET", "/outbound/destinations", params={"paused": True})
    assert row["destination"] == "127.0.0.1:9" and row["reason"] == "paused by hand"
    assert boss.post("/destinations", {"action": "resume", "destination": "127.0.0.1:9"}).status_code == 303
    assert client.api("GET", "/outbound/destinations", params={"paused": True}) == []
    unknown = boss.post("/destinations", {"action": "resume", "destination": "<nowhere>"})
    assert (
        unknown.status_code == 404
        and "destination &lt;nowhere&gt; has no failures on record." in unknown.text
    )
    assert boss.post("/destinations", {"action": "pause", "destination": "x"}, csrf=False).status_code == 403
    resumed, paused_line = client.items("/audit", entity_kind="destination")
    assert (paused_line["actor"], paused_line["action"], paused_line["before"]) == ("boss", "pause", None)
    assert paused_line["after"]["destination"] == "127.0.0.1:9" and paused_line["after"]["paused_at"]
    assert (resumed["action"], resumed["after"]) == (
        "resume",
        {"destination": "127.0.0.1:9", "paused_at": None},
    )
