"""The link checks in the API: an offer's history newest first, paged; every active offer's latest."""

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import API_KEY, Client
from tests.receiver import Answer, Got, Receiver, receiving
from tests.service.test_linkchecks import HOUR, Clock, checks_of, offers, round_of


def site(got: Got) -> Answer:
    # The first offer works until it is switched off; the second is always gone.
    if got.target.startswith("/ok") and not state["down"]:
        return Answer(200, b"<h1>Welcome</h1>", {"content-type": "text/html"})
    return Answer(404, b"<h1>Not found</h1>", {"content-type": "text/html"})


state = {"down": False}


@pytest.fixture
def server() -> Iterator[Receiver]:
    state["down"] = False
    with receiving() as r:
        r.answer = site
        yield r


def test_an_offers_history_newest_first_and_the_latest_of_each(client: Client, server: Receiver) -> None:
    good, gone, paused = offers(client, server, "/ok", "/gone", "/ok")
    clock = Clock()
    checks = checks_of(client.node, clock)
    round_of(client.node, checks)
    client.api("PUT", f"/offers/{paused}/status", json={"status": "paused"})
    state["down"] = True
    clock.now += HOUR
    round_of(client.node, checks)

    history = client.api("GET", f"/offers/{good}/link-checks", params={"limit": 1})
    (newest,) = history["items"]
    assert newest["verdict"] == "broken" and newest["code"] == "http_error" and newest["status"] == 404
    assert newest["redirects"] == [{"url": newest["url"], "status": 404, "location": ""}]
    assert "linkcheck" in newest["url"]
    older = client.api("GET", f"/offers/{good}/link-checks", params={"cursor": history["next_cursor"]})
    assert [c["verdict"] for c in older["items"]] == ["ok"] and older["next_cursor"] is None

    latest = client.items("/link-checks/latest")
    # The paused offer's checks are kept but it is no longer listed.
    assert [(c["offer_id"], c["verdict"]) for c in latest] == [(good, "broken"), (gone, "broken")]
    assert client.items("/link-checks/latest", verdict="ok") == []


def test_an_unknown_offer_has_no_history(client: Client) -> None:
    response = client.http.get("/api/offers/999/link-checks", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 404


def test_link_checks_need_the_api_key(client: Client) -> None:
    assert httpx.get(f"{client.node.base_url}/api/link-checks/latest").status_code == 401
