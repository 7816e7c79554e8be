"""Starting clickback as a person would, with the `clickback` command in a process of its own: what
it says when a setting, the database or the port is wrong, where its data goes, and how `serve`
starts while PostgreSQL is unreachable."""

import json
import os
import selectors
import socket
import socketserver
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from tests.conftest import API_KEY, BROWSER_UA, PG_URL, SECRET, admin_sql
from tests.receiver import in_a_thread

CLICKBACK = Path(sys.executable).parent / "clickback"
ROOT = Path(__file__).parent.parent
WAIT_SECONDS = 60


def environment(data_dir: Path, **variables: str) -> dict[str, str]:
    """The test process's environment without its CLICKBACK_ variables, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKBACK_")}
    return env | {"CLICKBACK_DATA_DIR": str(data_dir)} | variables


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_url(**parts: str) -> str:
    return make_url(PG_URL).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


def test_each_wrong_setting_is_told_in_a_line_or_two(tmp_path: Path) -> None:
    closed = free_port()
    listening = socket.create_server(("127.0.0.1", 0))
    busy = listening.getsockname()[1]
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    not_mmdb = tmp_path / "GeoLite2-City.mmdb"
    not_mmdb.write_text("<html>403 Forbidden</html>")  # what a failed download leaves
    # (arguments, variables, exit status, what the message must say)
    cases: list[tuple[list[str], dict[str, str], int, list[str]]] = [
        (["migrate"], {"CLICKBACK_DATABSE_URL": "x"}, 2, ["did you mean CLICKBACK_DATABASE_URL?"]),
        (
            ["migrate"],  # every bad value is told, each in its line (or two)
            {
                "CLICKBACK_DATABASE_URL": "notaurl",
                "CLICKBACK_SECRET_KEY": "5e" * 16,
                "CLICKBACK_PUBLIC_URL": "notaurl",
                "CLICKBACK_CLICK_FLUSH_SECONDS": "soon",
                "CLICKBACK_LINK_CHECK_MINUTES": "hourly",
                "CLICKBACK_REPORT_ZONES": "UTC,Mars/Olympus",
                # The bootstrap manager's key: every right, so never a guessable one.
                "CLICKBACK_API_KEY": "letmein123",
            },
            2,
            [
                "CLICKBACK_API_KEY is 10 characters: it must be at least 24",
                "openssl rand -hex 24",
                "CLICKBACK_REPORT_ZONES='UTC,Mars/Olympus': 'Mars/Olympus' is no IANA time zone",
                "CLICKBACK_DATABASE_URL='notaurl': not a database URL: use postgresql+asyncpg://",
                "CLICKBACK_SECRET_KEY is 32 hex characters: it must be at least 64",
                "token_hex(32)",
                "CLICKBACK_PUBLIC_URL='notaurl': not an http(s) URL",
                "CLICKBACK_CLICK_FLUSH_SECONDS='soon': Input should be a valid number",
                "CLICKBACK_LINK_CHECK_MINUTES='hourly': Input should be a valid integer",
            ],
        ),
        (
            ["migrate"],
            {
                "CLICKBACK_DATABASE_URL": "postgresql://app:pw@db.example/clickback",
                "CLICKBACK_SECRET_KEY": "z" * 64,
            },
            2,
            ["write postgresql+asyncpg://app:***@db.example/clickback", "CLICKBACK_SECRET_KEY is not hex"],
        ),
        (
            ["migrate"],
            {"CLICKBACK_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/x"},
            1,
            [f"is PostgreSQL running on 127.0.0.1:{closed}?"],
        ),
        (["migrate"], {"CLICKBACK_DATA_DIR": str(a_file)}, 1, ["cannot open the SQLite database"]),
        (["demo"], {"CLICKBACK_DATA_DIR": str(a_file)}, 2, [f"CLICKBACK_DATA_DIR={a_file}: cannot write"]),
        (["serve", "--port", str(busy)], {}, 1, [f"port {busy} is in use", "--port"]),
        # The .mmdb is opened with the settings: a line before `serve` says it runs, not a
        # worker's traceback.
        (
            ["serve", "--port", str(closed)],
            {"CLICKBACK_GEOIP_MMDB": str(tmp_path / "nowhere.mmdb")},
            2,
            [f"CLICKBACK_GEOIP_MMDB='{tmp_path / 'nowhere.mmdb'}': no such file", "GeoLite2-City.mmdb"],
        ),
        (
            ["serve", "--port", str(closed)],
            {"CLICKBACK_GEOIP_MMDB": str(not_mmdb)},
            2,
            [f"CLICKBACK_GEOIP_MMDB='{not_mmdb}': not a MaxMind DB file", "or unset it"],
        ),
    ]
    if PG_URL:
        missing_database = pg_url(database="clickback_h4_missing")
        missing_role = pg_url(username="clickback_h4_nobody", password="pw")
        cases += [
            (
                ["migrate"],
                {"CLICKBACK_DATABASE_URL": missing_database},
                1,
                ["clickback_h4_missing", "createdb"],
            ),
            (["migrate"], {"CLICKBACK_DATABASE_URL": missing_role}, 1, ['role "clickback_h4_nobody"']),
        ]
    debug = (["--debug", "migrate"], {"CLICKBACK_SECRET_KEY": "zz"}, 2, ["CLICKBACK_SECRET_KEY is not hex"])

    # All at once: each is a process of its own starting Python.
    runs = [
        subprocess.Popen(
            [CLICKBACK, *args],
            env=environment(tmp_path / "data", **variables),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, variables, _, _ in [*cases, debug]
    ]
    outputs = [run.communicate(timeout=WAIT_SECONDS) for run in runs]
    listening.close()

    for (args, variables, status, said), run, (out, err) in zip(cases, runs[:-1], outputs[:-1], strict=True):
        assert "clickback on" not in out, (args, out)  # nothing said to be running
        lines = err.strip().splitlines()
        # A line or two for each problem: here one per variable set (or one).
        assert (run.returncode, len(lines) <= 2 * max(1, len(variables))) == (status, True), (args, err)
        assert err.startswith("clickback: ") and "Traceback" not in err, err
        assert all(words in err for words in said), (said, err)
        assert "5e" * 16 not in err and "z" * 64 not in err and ":pw@" not in err  # no secret shown
        assert "letmein123" not in err
    debug_err = outputs[-1][1]
    assert runs[-1].returncode == 2
    assert "Traceback" in debug_err and "CLICKBACK_SECRET_KEY is not hex" in debug_err


def test_an_empty_or_short_api_key_file_stops_the_server(tmp_path: Path) -> None:
    """The API key read from api.key is held to CLICKBACK_API_KEY's length: an empty file was the
    key "", which every request sending no key matched (the bootstrap manager, every right)."""
    contents = {"empty": "", "newline": "\n", "short": "letmein123\n"}
    for name, text in contents.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "api.key").write_text(text)
    runs = {
        name: subprocess.Popen(
            [CLICKBACK, "serve", "--port", str(free_port())],
            env=environment(tmp_path / name),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in contents
    }
    try:
        outputs = {name: run.communicate(timeout=WAIT_SECONDS)[1] for name, run in runs.items()}
    finally:
        for run in runs.values():
            if run.poll() is None:  # it served: stopped, not left behind
                run.kill()
                run.wait()
    for name, err in outputs.items():
        key_file = tmp_path / name / "api.key"
        length = len(contents[name].strip())
        assert runs[name].returncode == 2, (name, err)
        assert err.strip().splitlines() == [
            f"clickback: {key_file} (the generated CLICKBACK_API_KEY) is {length} characters: it must be"
            " at least 24; delete it (a new one is generated) or write one made with openssl rand -hex 24"
        ], (name, err)
        assert key_file.read_text() == contents[name]  # left as found: it is the operator's to fix
        assert "letmein123" not in err


def test_data_directory_is_the_users_not_the_working_one(tmp_path: Path) -> None:
    env = environment(tmp_path) | {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    del env["CLICKBACK_DATA_DIR"]
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    # A database holding clicks whose secret.key is not beside it (copied without it).
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    with sqlite3.connect(orphan / "clickback.db") as db:
        db.execute("CREATE TABLE clicks (click_id TEXT)")
        db.execute("INSERT INTO clicks VALUES ('0KH6Ju')")

    def clickback(cwd: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLICKBACK, *args],
            env=env | variables,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
        )

    first = clickback(tmp_path / "one", "migrate")
    second = clickback(tmp_path / "two", "migrate")
    refused = clickback(tmp_path, "demo", CLICKBACK_DATA_DIR=str(orphan))

    default = tmp_path / "xdg" / "clickback"
    assert [first.returncode, second.returncode] == [0, 0], first.stderr + second.stderr
    assert f"data directory: {default}  (the default)" in first.stdout
    assert f"data directory: {default}  (the default)" in second.stdout
    # Readable by its owner only, as secret.key and api.key: it holds advertisers' postback
    # tokens and signing secrets (SQLite alone would make it 0644 under umask 022).
    assert (default / "clickback.db").stat().st_mode & 0o777 == 0o600
    assert list((tmp_path / "one").iterdir()) == list((tmp_path / "two").iterdir()) == []
    assert refused.returncode == 2, refused.stderr
    assert "the database already holds clicks" in refused.stderr
    assert not (orphan / "secret.key").exists()


@contextmanager
def serving(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A server process, its output going to a file; stopped with SIGTERM at the end."""
    log = cwd / f"serve-{uuid.uuid4().hex[:6]}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc, log
    finally:
        proc.terminate()
        proc.wait(WAIT_SECONDS)


def wait_for(check: Callable[[], bool], proc: subprocess.Popen[str], log: Path) -> None:
    """Poll `check` until it holds (the server's start is another process's work)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def answers(http: httpx.Client, path: str, status: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return http.get(path).status_code == status
        except httpx.TransportError:
            return False

    return check


@contextmanager
def relay(port: int, target: tuple[str, int]) -> Iterator[None]:
    """PostgreSQL appearing on `port` of 127.0.0.1, where nothing listened: a TCP relay to `target`."""

    class Relay(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(target) as upstream, selectors.DefaultSelector() as ready:
                ready.register(self.request, selectors.EVENT_READ, upstream)
                ready.register(upstream, selectors.EVENT_READ, self.request)
                while True:
                    for key, _ in ready.select():
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Relay)
    server.daemon_threads = True
    with in_a_thread(server):
        yield


def test_serve_starts_while_postgresql_is_unreachable_and_catches_up(tmp_path: Path) -> None:
    """Liveness while the database is away, readiness saying why, links on serve's own port; with
    a PostgreSQL to appear (the relay), migrations and clicks once it does."""
    db_port, port = free_port(), free_port()
    database = f"clickback_h4_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{db_port}/{database}"
    env = environment(
        tmp_path, CLICKBACK_DATABASE_URL=url, CLICKBACK_API_KEY=API_KEY, CLICKBACK_SECRET_KEY=SECRET
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers={"user-agent": BROWSER_UA})
    with http, serving([str(CLICKBACK), "serve", "--port", str(port)], env, tmp_path) as (proc, log):
        wait_for(answers(http, "/healthz", 200), proc, log)
        ready = http.get("/readyz")
        click = http.get("/c/AnyCode")
        postback = http.get("/postback", params={"click_id": "x", "event": "registration", "token": "t"})

        said = log.read_text()
        assert f"is PostgreSQL running on 127.0.0.1:{db_port}?" in said
        assert "starting anyway" in said
        assert f"clickback on http://127.0.0.1:{port}" in said  # its own port, not 8000
        assert ready.status_code == 503
        state = ready.json()
        assert (state["ready"], state["database"]["ok"], state["catalog"]["ok"]) == (False, False, False)
        assert f"127.0.0.1:{db_port}" in state["database"]["error"]
        assert state["spool"]["ok"] and state["click_writer"]["limit"] > 0
        assert (click.status_code, click.headers["x-clickback-reason"]) == (503, "not_ready")
        assert (postback.status_code, postback.json()["reason"]) == (503, "storage_unavailable")
        if PG_URL:
            _catches_up(http, proc, log, database, db_port)


def _catches_up(
    http: httpx.Client, proc: subprocess.Popen[str], log: Path, database: str, db_port: int
) -> None:
    pg = make_url(PG_URL)
    admin_sql(PG_URL, f'CREATE DATABASE "{database}"')
    try:
        with relay(db_port, (pg.host or "127.0.0.1", pg.port or 5432)):
            wait_for(answers(http, "/readyz", 200), proc, log)
            auth = {"Authorization": f"Bearer {API_KEY}"}

            def made(path: str, **body: Any) -> Any:
                response = http.post(f"/api{path}", json=body, headers=auth)
                assert response.status_code == 201, response.text
                return response.json()

            advertiser = made("/advertisers", name="Northstar Gaming")
            offer = made(
                "/offers",
                advertiser_id=advertiser["id"],
                name="Casino",
                url_template="https://casino.example.com/?cid={click_id}",
                currency="EUR",
            )
            link = made("/links", affiliate_id=made("/affiliates", name="Alice")["id"], offer_id=offer["id"])
            click = http.get(f"/c/{link['code']}")

            assert link["url"] == f"{str(http.base_url).rstrip('/')}/c/{link['code']}"
            assert click.status_code == 302
            assert "database reachable" in log.read_text()
            proc.terminate()
            proc.wait(WAIT_SECONDS)
    finally:
        admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def test_two_workers_report_the_whole_servers_metrics_and_log_lines_without_secrets(tmp_path: Path) -> None:
    port = free_port()
    env = environment(
        tmp_path,
        CLICKBACK_API_KEY=API_KEY,
        CLICKBACK_SECRET_KEY=SECRET,
        CLICKBACK_CATALOG_REFRESH_SECONDS="0.2",
    )
    auth = {"authorization": f"Bearer {API_KEY}", "user-agent": BROWSER_UA}
    args = [str(CLICKBACK), "serve", "--port", str(port), "--workers", "2"]
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as http,
        serving(args, env, tmp_path) as (
            proc,
            log,
        ),
    ):
        wait_for(answers(http, "/healthz", 200), proc, log)
        advertiser = http.post("/api/advertisers", json={"name": "A"}).json()
        offer = http.post(
            "/api/offers",
            json={
                "advertiser_id": advertiser["id"],
                "name": "O",
                "url_template": "https://o.example/?c={click_id}",
                "currency": "EUR",
            },
        ).json()
        affiliate = http.post("/api/affiliates", json={"name": "F"}).json()
        code = http.post(
            "/api/links", json={"affiliate_id": affiliate["id"], "offer_id": offer["id"]}
        ).json()["code"]

        def both_know_the_link() -> bool:  # fresh connections reach either worker
            for _ in range(8):
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as one:
                    if one.head(f"/c/{code}").status_code != 302:
                        return False
            return True

        wait_for(both_know_the_link, proc, log)
        token = advertiser["token"]
        for n in range(10):
            # A new connection each time: either worker may take it.
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as one:
                click = one.get(f"/c/{code}").headers["location"].split("c=")[1]
                reply = one.get(
                    "/postback", params={"click_id": click, "event": "sale", "txn_id": str(n), "token": token}
                )
                assert reply.json()["result"] == "accepted", reply.text

        def accepted() -> set[tuple[tuple[str, float], ...]]:
            """The accepted postbacks by worker, as each scrape reports them."""
            seen = set()
            for _ in range(6):
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as one:
                    families = text_string_to_metric_families(one.get("/metrics").text)
                    seen.add(
                        tuple(
                            sorted(
                                (s.labels["worker"], s.value)
                                for family in families
                                if family.name == "clickback_postbacks"
                                for s in family.samples
                                if s.name.endswith("_total") and s.labels["result"] == "accepted"
                            )
                        )
                    )
            return seen

        (by_worker,) = accepted()  # whichever worker answers, every worker's figure
        assert sum(value for _, value in by_worker) == 10
        # Each worker froze its start-up heap, and times the full collections left (issue 17).
        figures = {
            (s.name, s.labels["worker"]): s.value
            for family in text_string_to_metric_families(http.get("/metrics").text)
            for s in family.samples
            if family.name in ("clickback_gc_frozen_objects", "clickback_gc_seconds")
        }
        frozen = {w: v for (name, w), v in figures.items() if name == "clickback_gc_frozen_objects"}
        answered = {w for w, _ in by_worker}
        assert set(frozen) >= answered and min(frozen.values()) > 10_000, frozen
        assert {w for (name, w) in figures if name == "clickback_gc_seconds_count"} >= answered
        # The live database and its write-ahead log: the owner's only, like the secrets beside them.
        modes = {f.name: f.stat().st_mode & 0o777 for f in tmp_path.glob("clickback.db*")}
        assert modes.keys() >= {"clickback.db", "clickback.db-wal", "clickback.db-shm"}, modes
        assert set(modes.values()) == {0o600}, modes
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    postbacks = [line for line in lines if line.get("logger") == "clickback.service.postbacks"]
    assert len(postbacks) == 10 and {line["result"] for line in postbacks} == {"accepted"}
    assert {line["pid"] for line in lines} >= {line["pid"] for line in postbacks}
    assert {worker for worker, _ in by_worker} == {str(line["pid"]) for line in postbacks}
    assert any(line.get("path") == "/api/links" and line.get("status") == 201 for line in lines)
    assert token not in log.read_text() and API_KEY not in log.read_text()


# A worker's start slowed by this much, before it can answer Uvicorn's supervisor: longer than
# Uvicorn's own 5 s for an answer, as on a loaded machine (7 to 10 s measured on 2 cores).
SLOW_START_SECONDS = 7


def test_a_worker_slow_to_start_is_not_killed_as_hung(tmp_path: Path) -> None:
    """Each worker waits SLOW_START_SECONDS before it imports anything (a sitecustomize that only
    the spawned workers run): both start, serve, and are never killed and replaced."""
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(
        f"import sys, time\nif '--multiprocessing-fork' in sys.argv:\n    time.sleep({SLOW_START_SECONDS})\n"
    )
    path = os.pathsep.join(p for p in (str(slow), os.environ.get("PYTHONPATH", "")) if p)
    env = environment(tmp_path, CLICKBACK_API_KEY=API_KEY, CLICKBACK_SECRET_KEY=SECRET, PYTHONPATH=path)
    port = free_port()
    args = [str(CLICKBACK), "serve", "--port", str(port), "--workers", "2"]
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as http,
        serving(args, env, tmp_path) as (proc, log),
    ):
        wait_for(lambda: log.read_text().count("Application startup complete") == 2, proc, log)
        assert answers(http, "/healthz", 200)(), log.read_text()
        # Uvicorn's supervisor checks each worker every 0.5 s: a round after both started.
        started = time.monotonic()
        wait_for(lambda: time.monotonic() - started > 1, proc, log)
        text = log.read_text()
    assert "died" not in text, text
    assert text.count('"message": "Started server process') == 2, text
