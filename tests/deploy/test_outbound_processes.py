"""Outbound postbacks across processes: kill -9 between a postback's commit and its outbound
postback's reply, then a restart; `clickback worker` sending for servers that do not; the
`clickback outbound` commands beside a running server."""

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from clickback.cli import app
from tests.conftest import API_KEY, BACKENDS, BROWSER_UA, scratch_database
from tests.deploy.test_two_nodes import ServeNode, wait_until
from tests.processes import CLICKBACK, casino_and_link, clickback_env, clickback_serve
from tests.receiver import Answer, receiving


def cli(env: dict[str, str], *args: str) -> Result:
    """`clickback ARGS` with `env` as its environment, run in this process (typer's CliRunner):
    the `outbound` commands change the database the server reads, and a process of their own
    would only add its Python start-up (1.3 s of CPU each, 13 of them)."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CLICKBACK_")}
    return CliRunner().invoke(app, list(args), env=unset | env)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_delivery_in_flight_when_the_server_is_killed_is_sent_after_restart(
    backend: str, tmp_path: Path
) -> None:
    settings = {
        "outbound_allow": "127.0.0.1/32",
        "outbound_timeout_seconds": "1",  # its claim lasts 3 x 1 s + 5 s
        "outbound_retry_base_seconds": "0.001",
    }
    with scratch_database(backend, tmp_path) as url, receiving() as receiver, contextlib.ExitStack() as stack:
        gate = threading.Event()
        receiver.script = [Answer(200, hold=gate, hold_seconds=5)]
        node = ServeNode("a", clickback_env(tmp_path, url, **settings), tmp_path)
        node.start()
        try:
            wait_until("node ready", node.ready)
            api = stack.enter_context(
                httpx.Client(base_url=node.base, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10)
            )
            advertiser = sale_setup(api, receiver.url("/pb?subid={subid}"))
            click_id = click(node.base, advertiser["link"])
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


def sale_setup(api: httpx.Client, url: str) -> dict[str, Any]:
    """An advertiser, its offer, an affiliate with a link and an outbound template to `url`: the
    advertiser, with "link" the link's code."""
    advertiser, _, affiliate, link = casino_and_link(api)
    assert (
        api.post("/api/outbound/templates", json={"affiliate_id": affiliate["id"], "url": url}).status_code
        == 201
    )
    return dict(advertiser) | {"link": link["code"]}


def click(base: str, code: str) -> str:
    response = httpx.get(f"{base}/c/{code}?sub1=trk-1", headers={"user-agent": BROWSER_UA})
    return parse_qs(urlsplit(response.headers["location"]).query)["cid"][0]


def test_clickback_worker_sends_for_a_server_that_does_not(tmp_path: Path) -> None:
    env = clickback_env(tmp_path, "", outbound_allow="127.0.0.1/32", outbound_dispatch="false")
    with receiving() as receiver, clickback_serve(env, tmp_path / "serve.log") as base:
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10) as api:
            advertiser = sale_setup(api, receiver.url("/pb?subid={subid}"))
            params = {
                "click_id": click(base, advertiser["link"]),
                "event": "sale",
                "token": advertiser["token"],
            }
            assert httpx.get(f"{base}/postback", params=params).status_code == 200
            (waiting,) = api.get("/api/outbound/deliveries").json()["items"]
            assert waiting["state"] == "waiting" and waiting["attempts"] == 0

            with (tmp_path / "worker.log").open("wb") as out:
                worker = subprocess.Popen(
                    [CLICKBACK, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            try:
                (got,) = receiver.wait_for(1)
                assert got.target == "/pb?subid=trk-1"
            finally:
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()

        status = cli(env, "outbound", "status")
        assert status.exit_code == 0 and "delivered 1" in status.stdout, status.stdout + status.stderr
        replay = cli(env, "outbound", "replay", str(waiting["id"]))
        assert "1 deliveries waiting" in replay.stdout, replay.stdout + replay.stderr
        assert "waiting 1" in cli(env, "outbound", "status").stdout


def test_templates_are_managed_from_the_command_line_as_through_the_api(tmp_path: Path) -> None:
    env = clickback_env(tmp_path, "", outbound_allow="127.0.0.1/32")
    with clickback_serve(env, tmp_path / "serve.log") as base:
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {API_KEY}"}, timeout=10) as api:
            affiliate = api.post("/api/affiliates", json={"name": "Alice"}).json()["id"]
            body = '{"click": "{subid}", "paid": "{payout}"}'
            added = cli(
                env, "outbound", "templates", "add", str(affiliate), "http://127.0.0.1:9/pb",
                "--method", "post", "--body-format", "json", "--body", body,
                "--event", "registration", "--event", "ftd", "--map", "approved=sale",
            )  # fmt: skip
            (template,) = api.get("/api/outbound/templates").json()["items"]
            private = cli(env, "outbound", "templates", "add", str(affiliate), "http://10.1.2.3/pb?s={subid}")
            unknown = cli(
                env, "outbound", "templates", "add", str(affiliate), "https://t.example/pb?x={nope}"
            )
            nobody = cli(env, "outbound", "templates", "add", "999", "http://127.0.0.1:9/pb")
            changed = cli(
                env, "outbound", "templates", "change", str(template["id"]), "--url", "http://127.0.0.1:9/x"
            )
            paused = cli(env, "outbound", "templates", "pause", str(template["id"]))
            while_paused = api.get(f"/api/outbound/templates/{template['id']}").json()
            cli(env, "outbound", "templates", "resume", str(template["id"]))
            listed = cli(env, "outbound", "templates", "list", "--affiliate", str(affiliate))
            after = api.get(f"/api/outbound/templates/{template['id']}").json()
            deleted = cli(env, "outbound", "templates", "delete", str(template["id"]))
            gone = api.get(f"/api/outbound/templates/{template['id']}")
        resumed = cli(env, "outbound", "resume", "127.0.0.1:9")

    assert added.exit_code == 0 and f"template {template['id']}" in added.stdout, added.stderr
    assert (template["method"], template["body_format"], template["body"]) == ("POST", "json", body)
    assert template["events"] == ["first_deposit", "registration"]
    assert template["status_map"] == {"approved": "sale"}
    assert private.exit_code != 0 and "private address" in private.stderr
    assert unknown.exit_code != 0 and "{nope}" in unknown.stderr and "{subid}" in unknown.stderr
    assert nobody.exit_code != 0 and "999 does not exist" in nobody.stderr
    assert changed.exit_code == 0 and paused.exit_code == 0
    assert while_paused["status"] == "paused"
    assert (after["status"], after["url"], after["body"]) == ("active", "http://127.0.0.1:9/x", body)
    assert str(template["id"]) in listed.stdout and "http://127.0.0.1:9/x" in listed.stdout
    assert deleted.exit_code == 0 and gone.status_code == 404
    # A destination that never failed: said in a line, not a traceback (an exception other than
    # the exit would have been one).
    assert resumed.exit_code != 0 and "no failures on record" in resumed.stderr
    assert isinstance(resumed.exception, SystemExit)
