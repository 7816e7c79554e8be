"""The examples for a server of one's own: the systemd unit and its settings, and nginx with TLS in
front of clickback (deploy/nginx.conf run as it is, but for its ports and certificate)."""

import getpass
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
from sqlalchemy import select

from clickback.config import Settings
from clickback.core.limits import MAX_BODY_BYTES
from clickback.store.tables import clicks
from tests.conftest import BROWSER_UA, Client, Node, fresh_schema, make_world, serve, settings_for
from tests.processes import CLICKBACK, free_port

ROOT = Path(__file__).parent.parent.parent
DEPLOY = ROOT / "deploy"
INSTALL = "Debian: apt-get install -y nginx-light openssl systemd (.ci/run installs what is missing)"


def tool(name: str) -> str:
    # Debian puts nginx in /usr/sbin, which is not on every user's PATH.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert found, f"{name} is needed by this test. {INSTALL}"
    return found


def env_file() -> dict[str, str]:
    lines = (DEPLOY / "clickback.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_systemd_unit_verifies_and_runs_clickback_where_nginx_expects_it(tmp_path: Path) -> None:
    unit = (DEPLOY / "clickback.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+) (.*)$", unit, re.MULTILINE)
    assert exec_start
    # systemd-analyze checks that the program exists: the one of this environment stands in for
    # /opt/clickback/bin/clickback, where deploy/install.py puts it.
    installed = tmp_path / "clickback.service"
    installed.write_text(unit.replace(exec_start[1], str(CLICKBACK)))
    verify = subprocess.run([tool("systemd-analyze"), "verify", installed], capture_output=True, text=True)
    settings = env_file()
    args = exec_start[2].split()
    upstream = re.search(
        r"upstream clickback \{\s*server ([\d.]+):(\d+);", (DEPLOY / "nginx.conf").read_text()
    )
    assert upstream

    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stderr
    assert exec_start[1] == "/opt/clickback/bin/clickback" and args[0] == "serve"
    assert (args[args.index("--host") + 1], args[args.index("--port") + 1]) == upstream.groups()
    assert "EnvironmentFile=/etc/clickback/env" in unit and "KillSignal=SIGTERM" in unit
    assert f"StateDirectory={Path(settings['CLICKBACK_DATA_DIR']).name}" in unit
    # The settings file names settings only, and they pass the server's validation.
    names = {name.removeprefix("CLICKBACK_").lower() for name in settings}
    assert names <= Settings.model_fields.keys()
    given = {"secret_key": "5e" * 32, "api_key": "k" * 24}
    assert Settings(**{name: settings[f"CLICKBACK_{name.upper()}"] for name in names} | given).proxy_hops == 1


def adapted_site(app_port: int, http_port: int, https_port: int, cert: Path, key: Path, logs: Path) -> str:
    """deploy/nginx.conf on the test's ports, certificate and log file; every line replaced must
    be found (a changed example fails here, not silently)."""
    site = (DEPLOY / "nginx.conf").read_text()
    changes = [
        (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{app_port};"),
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        (r"listen \[::\]:\d+[^;]*;", ""),  # IPv6 may be missing on a test machine
        (r"ssl_certificate \S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key \S+;", f"ssl_certificate_key {key};"),
        (r"access_log /var/log/nginx/\S+", f"access_log {logs / 'access.log'}"),
    ]
    for pattern, replacement in changes:
        site, found = re.subn(pattern, replacement, site)
        assert found, f"deploy/nginx.conf has no {pattern}"
    return site


@contextmanager
def nginx_in_front_of(app_port: int, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """nginx running deploy/nginx.conf, with a throwaway self-signed certificate: (http, https) ports."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=track.example.com", "-keyout", key, "-out", cert],
        capture_output=True, check=True,
    )  # fmt: skip
    http_port, https_port = free_port(), free_port()
    (tmp_path / "site.conf").write_text(adapted_site(app_port, http_port, https_port, cert, key, tmp_path))
    with nginx(tmp_path, f"    include {tmp_path / 'site.conf'};", https_port):
        yield http_port, https_port


@contextmanager
def nginx(tmp_path: Path, http: str, port: int) -> Iterator[None]:
    """nginx in the foreground, its files in tmp_path and `http` in its http block, from when it
    listens on `port` to the end."""
    temp = "\n".join(f"    {kind}_temp_path {tmp_path / kind};" for kind in ("client_body", "proxy"))
    (tmp_path / "nginx.conf").write_text(
        f"""daemon off;
# As root, nginx runs its workers as nobody, who could not write into this test's directory.
user {getpass.getuser()};
worker_processes 1;
pid {tmp_path / "nginx.pid"};
error_log {tmp_path / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
{temp}
{http}
}}
"""
    )
    command = [tool("nginx"), "-e", tmp_path / "error.log", "-p", tmp_path, "-c", tmp_path / "nginx.conf"]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not listening(port):
            assert process.poll() is None, (tmp_path / "error.log").read_text()
            # Nothing tells when nginx listens: look again.
            threading.Event().wait(0.02)
        yield
    finally:
        process.terminate()
        process.wait(10)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def recorded_ips(node: Node) -> list[str]:
    async with node.runtime.db.read() as conn:
        return [row.ip for row in await conn.execute(select(clicks.c.ip))]


def test_nginx_example_proxies_clicks_and_postbacks_with_the_client_address(tmp_path: Path) -> None:
    hops = int(env_file()["CLICKBACK_PROXY_HOPS"])
    url = fresh_schema(f"sqlite+aiosqlite:///{tmp_path / 'clickback.db'}")
    for node in serve(settings_for(url, tmp_path, proxy_hops=hops)):
        with nginx_in_front_of(int(node.base_url.rsplit(":", 1)[1]), tmp_path) as (http_port, https_port):
            # The client on another loopback address than nginx's own, with a forged entry of its
            # own in X-Forwarded-For: only the address nginx saw may be recorded.
            transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=False)
            c = Client(node)
            c.http = httpx.Client(
                base_url=f"https://127.0.0.1:{https_port}",
                transport=transport,
                headers={"user-agent": BROWSER_UA, "x-forwarded-for": "203.0.113.7"},
                timeout=30,
            )
            world = make_world(c)  # the API through nginx too
            click_id = c.click(world.alice_casino, sub1="via-nginx")
            body = {"click_id": click_id, "event": "registration", "token": world.token}
            # Near clickback's own limit on a postback's body, which nginx's must not be under.
            padded = {f"extra{n}": "y" * 400 for n in range(MAX_BODY_BYTES // 420)}
            accepted = c.http.post("/postback", data=body | padded)
            too_large = c.http.post("/postback", content=b"x" * 70_000)
            plain = httpx.get(
                f"http://127.0.0.1:{http_port}/postback?click_id=1",
                headers={"host": "track.example.com"},
            )
            logged = c.api("GET", "/postbacks")["items"]
            c.http.close()

            c.flush()
            recorded = node.call(partial(recorded_ips, node))

    assert accepted.status_code == 200 and accepted.json()["result"] == "accepted", accepted.text
    assert too_large.status_code == 413 and "nginx" in too_large.text  # refused before clickback
    assert plain.status_code == 308
    assert plain.headers["location"] == "https://track.example.com/postback?click_id=1"
    assert recorded == ["127.0.0.2"]
    assert [entry["ip"] for entry in logged] == ["127.0.0.2"]
