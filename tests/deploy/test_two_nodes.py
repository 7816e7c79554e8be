"""Two `clickback serve` nodes on one database behind nginx (docs/scaling.md), one of them killed
with SIGKILL in the middle of the traffic: what an operator running two nodes relies on.

The traffic is an advertiser's and its users': clicks through nginx, each followed by a postback
through nginx, some postbacks sent again straight to the other node. A postback that got no
answer (its node died under it) is sent again, as a sender's retry policy would.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from clickback.store.db import connect
from clickback.store.tables import clicks, conversions
from tests.conftest import API_KEY, BACKENDS, BROWSER_UA, TLS, scratch_database
from tests.deploy.test_host import nginx
from tests.processes import CLICKBACK, clickback_env, free_port

REFRESH_SECONDS = 0.3  # CLICKBACK_CATALOG_REFRESH_SECONDS of both nodes: the documented delay
SENDERS = 4
# Postbacks answered before node a is killed, and after: counted, not timed, so a loaded machine
# slows the test down rather than leaving one side of the kill without traffic.
ANSWERS_EACH_SIDE = 40
WAIT_SECONDS = 30


class ServeNode:
    """One `clickback serve` process on its own port and data directory (its spool lives there)."""

    def __init__(self, name: str, env: dict[str, str], tmp_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = tmp_path / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(CLICKBACK), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        assert self.process and self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.base}/readyz", timeout=1, verify=TLS).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.process
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(WAIT_SECONDS)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: the node writes what it holds before it exits."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                assert self.process.wait(WAIT_SECONDS) in (0, -signal.SIGTERM), self.log.read_text()
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)


def wait_until(what: str, condition: Any, seconds: float = WAIT_SECONDS) -> float:
    """Seconds until `condition()` held; polling, since a process tells nothing of its progress."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < seconds, f"not within {seconds} s: {what}"
        threading.Event().wait(0.02)
    return time.monotonic() - began


@contextlib.contextmanager
def nginx_balancing(ports: list[int], tmp_path: Path) -> Iterator[int]:
    """nginx spreading requests over `ports` as docs/scaling.md configures it: its port."""
    port = free_port()
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in ports)
    http = f"""    log_format upstream '$upstream_addr $uri';
    access_log {tmp_path / "access.log"} upstream;
    upstream clickback {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://clickback;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout;
        }}
    }}"""
    with nginx(tmp_path, http, port):
        yield port


@dataclass
class Traffic:
    """What the senders saw: every click ID redirected to, and each postback's answer by txn_id."""

    redirected: set[str] = field(default_factory=set)
    answers: dict[str, str] = field(default_factory=dict)  # txn_id -> result, or "" (no answer)
    postbacks: dict[str, dict[str, str]] = field(default_factory=dict)  # txn_id -> its parameters
    repeats: list[tuple[str, str]] = field(default_factory=list)  # (first answer, repeat's answer)
    lock: threading.Lock = field(default_factory=threading.Lock)


def result_of(http: httpx.Client, url: str, params: dict[str, str]) -> str:
    """The postback's result, or "" when no answer that says it was recorded came back."""
    try:
        reply = http.get(url, params=params)
    except httpx.TransportError:
        return ""
    return str(reply.json().get("result", "")) if reply.status_code == 200 else ""


def send(
    index: int, lb: str, nodes: list[ServeNode], code: str, token: str, stop: threading.Event, t: Traffic
) -> None:
    headers = {"user-agent": BROWSER_UA}
    with httpx.Client(timeout=10, headers=headers) as http:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                location = http.get(f"{lb}/c/{code}").headers.get("location", "")
            except httpx.TransportError:
                continue
            click_id = parse_qs(urlsplit(location).query).get("cid", [""])[0]
            if not click_id:
                continue
            txn = f"s{index}-{n}"
            params = {"click_id": click_id, "event": "registration", "txn_id": txn, "token": token}
            first = result_of(http, f"{lb}/postback", params)
            with t.lock:
                t.redirected.add(click_id)
                t.postbacks[txn] = params
                t.answers[txn] = first
            if n % 5 == 0 and first:
                # The advertiser's retry reaches the other node: refused there as a duplicate.
                alive = [node for node in nodes if node.alive()]
                repeat = result_of(http, f"{alive[n % len(alive)].base}/postback", params)
                if repeat:  # not when that node was killed under it
                    with t.lock:
                        t.repeats.append((first, repeat))


def spooled(node: ServeNode) -> int:
    """Spool files the node's /readyz counts: clicks not in the database yet."""
    return int(httpx.get(f"{node.base}/readyz", timeout=5).json()["spool"]["files"])


async def counted(url: str) -> tuple[set[str], dict[str, int], int]:
    """What the shared database holds: click IDs, conversions per txn_id, unattributed conversions."""
    db = connect(url)
    try:
        async with db.read() as conn:
            stored = {row.click_id for row in await conn.execute(select(clicks.c.click_id))}
            per_txn = {
                row.txn_id: row.n
                for row in await conn.execute(
                    select(conversions.c.txn_id, func.count().label("n")).group_by(conversions.c.txn_id)
                )
            }
            waiting = await conn.scalar(
                select(func.count()).select_from(conversions).where(conversions.c.affiliate_id.is_(None))
            )
        return stored, per_txn, int(waiting or 0)
    finally:
        await db.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_nodes_behind_nginx_keep_every_acknowledged_click_and_postback_when_one_is_killed(
    backend: str, tmp_path: Path
) -> None:
    with scratch_database(backend, tmp_path) as url, contextlib.ExitStack() as stack:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        settings = {"catalog_refresh_seconds": str(REFRESH_SECONDS), "durable_clicks": "true"}
        a = ServeNode("a", clickback_env(tmp_path / "a", url, **settings), tmp_path)
        b = ServeNode("b", clickback_env(tmp_path / "b", url, **settings), tmp_path)
        nodes = [a, b]
        for node in nodes:
            stack.callback(node.stop)
        a.start()
        wait_until("node a ready", a.ready)  # a migrates; b then finds the schema up to date
        b.start()
        wait_until("node b ready", b.ready)
        lb = f"http://127.0.0.1:{stack.enter_context(nginx_balancing([a.port, b.port], tmp_path))}"

        api = stack.enter_context(httpx.Client(headers={"authorization": f"Bearer {API_KEY}"}, timeout=10))
        advertiser = api.post(f"{lb}/api/advertisers", json={"name": "Northstar"}).json()
        offer = api.post(
            f"{lb}/api/offers",
            json={
                "advertiser_id": advertiser["id"],
                "name": "Casino",
                "url_template": "https://casino.example/?cid={click_id}",
                "currency": "EUR",
            },
        ).json()
        affiliate = api.post(f"{lb}/api/affiliates", json={"name": "Alice"}).json()
        # A catalog change made on one node, seen by the other within the documented delay.
        made = api.post(
            f"{a.base}/api/links", json={"affiliate_id": affiliate["id"], "offer_id": offer["id"]}
        )
        assert made.status_code == 201, made.text
        code = made.json()["code"]
        browser = stack.enter_context(httpx.Client(headers={"user-agent": BROWSER_UA}, timeout=10))
        seen_after = wait_until(
            "b redirects a's new link", lambda: browser.get(f"{b.base}/c/{code}").status_code == 302
        )

        traffic = Traffic()
        stop = threading.Event()
        stack.callback(stop.set)
        senders = [
            threading.Thread(target=send, args=(i, lb, nodes, code, advertiser["token"], stop, traffic))
            for i in range(SENDERS)
        ]
        for sender in senders:
            sender.start()

        def answered(at_least: int) -> Any:
            def enough() -> bool:
                with traffic.lock:
                    return len(traffic.answers) >= at_least

            return enough

        wait_until("postbacks answered before the kill", answered(ANSWERS_EACH_SIDE))
        with traffic.lock:
            before_kill = len(traffic.answers)
        a.kill()
        wait_until("postbacks answered after the kill", answered(before_kill + ANSWERS_EACH_SIDE))
        stop.set()
        for sender in senders:
            sender.join(WAIT_SECONDS)
        # Node a back on its own data directory: what it had acknowledged and held only in its
        # spool reaches the database now.
        a.start()
        wait_until("node a ready again", a.ready)
        # Postbacks whose node died before answering (or that were answered 503 meanwhile): the
        # sender tries again through nginx until one answer says recorded, as its retry policy
        # would.
        for txn in [txn for txn, result in traffic.answers.items() if not result]:

            def answered_now(txn: str = txn) -> bool:
                traffic.answers[txn] = result_of(browser, f"{lb}/postback", traffic.postbacks[txn])
                return bool(traffic.answers[txn])

            wait_until(f"postback {txn} answered", answered_now)

        def all_attributed() -> bool:
            return asyncio.run(counted(url))[2] == 0

        wait_until("every conversion attributed to its click", all_attributed)
        # Clicks a spooled whose redirect never reached a sender (killed under it) have no
        # postback to wait for: they are in the database once a's spool is drained.
        wait_until("node a's spool drained", lambda: spooled(a) == 0)
        today = datetime.now(UTC).date().isoformat()
        reports = [
            api.get(f"{node.base}/api/reports", params={"from": today, "to": today}).json()["totals"]
            for node in nodes
        ]
        a.stop()
        b.stop()
        stored, per_txn, waiting = asyncio.run(counted(url))

    served = (tmp_path / "access.log").read_text()
    answered = {txn for txn, result in traffic.answers.items() if result in ("accepted", "duplicate")}
    assert seen_after < REFRESH_SECONDS + 3, seen_after  # the refresh interval, and a busy machine's slack
    assert before_kill > 0 and len(traffic.answers) > before_kill  # traffic on both sides of the kill
    for node in nodes:  # nginx spread the postbacks over both nodes
        assert f"127.0.0.1:{node.port} /postback" in served
    assert answered == set(traffic.answers), {t: r for t, r in traffic.answers.items() if t not in answered}
    assert traffic.redirected <= stored  # no redirected click lost, the killed node's included
    assert per_txn == dict.fromkeys(traffic.answers, 1)  # each postback recorded once, none lost
    assert traffic.repeats and all(repeat == "duplicate" for _, repeat in traffic.repeats)
    assert waiting == 0
    # Either node's report is the whole: the clicks and conversions both nodes took.
    assert reports[0] == reports[1]
    assert reports[0]["clicks"] == len(stored)
    assert (reports[0]["conversions"], reports[0]["registrations"]) == (len(traffic.answers),) * 2
