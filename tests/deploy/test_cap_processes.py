"""Two `clickback serve` processes on one database, recording conversions at a cap at once: the
counter's check-and-increment holds across processes (ADR 17), so no more than the cap is paid."""

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, BACKENDS, TLS, scratch_database
from tests.deploy.test_outbound_processes import click
from tests.deploy.test_two_nodes import ServeNode, wait_until
from tests.processes import casino_and_link, clickback_env

CAP = 3
PLAYERS = 12


@pytest.mark.parametrize("backend", BACKENDS)
def test_conversions_at_the_cap_on_two_processes_never_pay_past_it(backend: str, tmp_path: Path) -> None:
    with scratch_database(backend, tmp_path) as url, contextlib.ExitStack() as stack:
        nodes = [
            ServeNode(n, clickback_env(tmp_path / n, url, catalog_refresh_seconds="0.2"), tmp_path)
            for n in ("a", "b")
        ]
        nodes[0].start()
        stack.callback(nodes[0].stop)
        wait_until("node a ready", nodes[0].ready)  # a migrates; b then finds the schema up to date
        nodes[1].start()
        stack.callback(nodes[1].stop)
        wait_until("node b ready", nodes[1].ready)
        api = stack.enter_context(
            httpx.Client(base_url=nodes[0].base, headers={"authorization": f"Bearer {API_KEY}"}, timeout=30)
        )
        token, code, offer = setup(api)
        click_ids = [click(nodes[0].base, code) for _ in range(PLAYERS)]
        # Node b knows the advertiser once its catalog refresh has brought the link (and all).
        wait_until(
            "node b has the link",
            lambda: httpx.get(f"{nodes[1].base}/c/{code}", verify=TLS).status_code == 302,
        )

        def ftd(n: int) -> int:
            # Alternate processes: half the first deposits reach each.
            node = nodes[n % 2]
            params = {"click_id": click_ids[n], "event": "ftd", "player_id": f"P{n}", "payout": "50"}
            return httpx.get(
                f"{node.base}/postback", params=params | {"token": token}, timeout=30
            ).status_code

        with ThreadPoolExecutor(PLAYERS) as pool:
            assert set(pool.map(ftd, range(PLAYERS))) == {200}

        def qualified() -> list[dict[str, Any]]:
            reply = api.get("/api/conversions", params={"event": "qualified_cpa"})
            return list(reply.json()["items"])

        # A first deposit whose click is still in a node's buffer qualifies once the click lands.
        wait_until("every player qualified", lambda: len(qualified()) == PLAYERS)
        entries = api.get("/api/commissions", params={"kind": "cpa"}).json()["items"]
        over = [c for c in qualified() if c["over_cap"]]
        caps = api.get(f"/api/offers/{offer}/caps").json()["items"]

    assert len(entries) == CAP and sum(float(e["amount"]) for e in entries) == CAP * 10
    assert len(over) == PLAYERS - CAP
    assert caps[0]["counted"] == CAP


def setup(api: httpx.Client) -> tuple[str, str, int]:
    """An advertiser's offer paying a CPA of 10 on a first deposit, capped at CAP, and an
    affiliate's link to it: the advertiser's token, the link's code, the offer's id."""
    advertiser, offer, _, link = casino_and_link(api)
    deal = {"kind": "cpa", "cpa": {"amount": "10", "require_registration": False, "ftd_min": "20"}}
    assert api.put(f"/api/offers/{offer['id']}/deal", json=deal).status_code == 200
    assert api.put(f"/api/offers/{offer['id']}/cap", json={"total": CAP}).status_code == 200
    return advertiser["token"], link["code"], offer["id"]
