"""`clickback` as separate processes, for the tests about what an operator runs: the server as
`clickback serve` starts it, and the command-line tools beside it."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import API_KEY, REPORT_ZONES, SECRET, TLS

# The `clickback` command of the environment running the tests.
CLICKBACK = Path(sys.executable).with_name("clickback")
START_SECONDS = 30


def clickback_env(data_dir: Path, database_url: str = "", **settings: str) -> dict[str, str]:
    """The environment of a `clickback` process: the test's keys, no CLICKBACK_* of the test run
    (such as CLICKBACK_TEST_POSTGRES_URL, which is no setting), `settings` as CLICKBACK_ names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
    return env | {
        "CLICKBACK_DATA_DIR": str(data_dir),
        "CLICKBACK_DATABASE_URL": database_url,
        "CLICKBACK_API_KEY": API_KEY,
        "CLICKBACK_SECRET_KEY": SECRET,
        # As the suite's own servers: a database keeps the report zones of every process on it.
        "CLICKBACK_REPORT_ZONES": ",".join(REPORT_ZONES),
        **{f"CLICKBACK_{name.upper()}": value for name, value in settings.items()},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running(command: Sequence[str | Path], env: dict[str, str], log: Path, health_url: str) -> Iterator[None]:
    """`command` started in a session of its own, once `health_url` answers 200; stopped with
    SIGTERM (as systemd and Docker stop it) on leaving."""
    with log.open("wb") as out:  # a file, not a pipe that could fill up and stall the server
        process = subprocess.Popen(
            [str(c) for c in command], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _answers(health_url):
            assert process.poll() is None, f"the server exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no answer from {health_url}:\n{log.read_text()}"
            # Waiting for a process to start listening: nothing to be told by, so look again.
            time.sleep(0.05)
        yield
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            # Uvicorn raises the signal again once it has shut down gracefully.
            assert process.wait(30) in (0, -signal.SIGTERM), log.read_text()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # a worker that outlived its parent


@contextlib.contextmanager
def clickback_serve(env: dict[str, str], log: Path, *options: str) -> Iterator[str]:
    """`clickback serve` on a free loopback port: its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [CLICKBACK, "serve", "--host", "127.0.0.1", "--port", str(port), *options]
    with running(command, env, log, f"{base}/healthz"):
        yield base


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, verify=TLS).status_code == 200
    except httpx.TransportError:
        return False


def casino_and_link(api: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Through a running server's API (an httpx client with the key): an advertiser, its casino
    offer in EUR, an affiliate and their link to it."""
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
    link = api.post("/api/links", json={"affiliate_id": affiliate["id"], "offer_id": offer["id"]}).json()
    return advertiser, offer, affiliate, link
