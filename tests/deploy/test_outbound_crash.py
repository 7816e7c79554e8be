"""kill -9 between a postback's commit and its outbound postback's reply: the delivery is sent
once the server is back (the outbox row survived; the dead process's claim ran out)."""

import contextlib
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import API_KEY, BACKENDS, BROWSER_UA
from tests.deploy.test_two_nodes import ServeNode, database, wait_until
from tests.processes import clickback_env
from tests.receiver import Answer, receiving


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_delivery_in_flight_when_the_server_is_killed_is_sent_after_restart(
    backend: str, tmp_path: Path
) -> None:
    settings = {
        "outbound_allow": "127.0.0.1/32",
        "outbound_timeout_seconds": "1",  # its claim lasts 2 x 1 s + 5 s
        "outbound_retry_base_seconds": "0.001",
    }
    with database(backend, tmp_path) as url, receiving() as receiver, contextlib.ExitStack() as stack:
        gate = threading.Event()
        receiver.script = [Answer(200, hold=gate, hold_seconds=5)]
        node = ServeNode("a", clickback_env(tmp_path, url, **settings), tmp_path)
        node.start()
        try:
            wait_until("node ready", node.ready)
            api = stack.enter_context(
                httpx.Client(base_url=node.base, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10)
            )
            advertiser = api.post("/api/advertisers", json={"name": "Northstar"}).json()
            offer = api.post(
                "/api/offers",
                json={
                    "advertiser_id": advertiser["id"],
                    "name": "Casino",
                    "url_template": "https://casino.example.com/?cid={click_id}",
                    "currency": "EUR",
                },
            ).json()
            affiliate = api.post("/api/affiliates", json={"name": "Alice"}).json()
            link = api.post(
                "/api/links", json={"affiliate_id": affiliate["id"], "offer_id": offer["id"]}
            ).json()
            template = {"affiliate_id": affiliate["id"], "url": receiver.url("/pb?subid={subid}")}
            assert api.post("/api/outbound/templates", json=template).status_code == 201
            click = httpx.get(f"{node.base}/c/{link['code']}?sub1=trk-1", headers={"user-agent": BROWSER_UA})
            click_id = parse_qs(urlsplit(click.headers["location"]).query)["cid"][0]
            reply = httpx.get(
                f"{node.base}/postback",
                params={"click_id": click_id, "event": "sale", "token": advertiser["token"]},
            )
            assert reply.status_code == 200, reply.text

            (first,) = receiver.wait_for(1)  # sent, and held: no reply yet
            node.kill()
            gate.set()
            node.start()
            second = receiver.wait_for(2)[1]
        finally:
            node.stop()
    assert second.headers["x-clickback-delivery"] == first.headers["x-clickback-delivery"]
    assert second.target == first.target == "/pb?subid=trk-1"
