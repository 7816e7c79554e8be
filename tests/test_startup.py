"""Starting clickback as a person would, with the `clickback` command in a process of its own: what
it says when a setting, the database or the port is wrong, where its data goes, and how `serve`
starts while PostgreSQL is unreachable."""

import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import make_url

from tests.conftest import PG_URL

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
            },
            2,
            [
                "CLICKBACK_DATABASE_URL='notaurl': not a database URL: use postgresql+asyncpg://",
                "CLICKBACK_SECRET_KEY is 32 hex characters: it must be at least 64",
                "token_hex(32)",
                "CLICKBACK_PUBLIC_URL='notaurl': not an http(s) URL",
                "CLICKBACK_CLICK_FLUSH_SECONDS='soon': Input should be a valid number",
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

    for (args, variables, status, said), run, (_, err) in zip(cases, runs[:-1], outputs[:-1], strict=True):
        lines = err.strip().splitlines()
        # A line or two for each problem: here one per variable set (or one).
        assert (run.returncode, len(lines) <= 2 * max(1, len(variables))) == (status, True), (args, err)
        assert err.startswith("clickback: ") and "Traceback" not in err, err
        assert all(words in err for words in said), (said, err)
        assert "5e" * 16 not in err and "z" * 64 not in err and ":pw@" not in err  # no secret shown
    debug_err = outputs[-1][1]
    assert runs[-1].returncode == 2
    assert "Traceback" in debug_err and "CLICKBACK_SECRET_KEY is not hex" in debug_err


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
    assert (default / "clickback.db").exists()
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


def test_dev_serve_names_the_port_it_was_given(tmp_path: Path) -> None:
    port = free_port()
    env = environment(tmp_path)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    with (
        http,
        serving([sys.executable, str(ROOT / "dev.py"), "serve", "--port", str(port)], env, tmp_path) as (
            proc,
            log,
        ),
    ):
        wait_for(answers(http, "/healthz", 200), proc, log)
        key = (tmp_path / "api.key").read_text().strip()
        links = http.get("/api/links", headers={"Authorization": f"Bearer {key}"}).json()["items"]

        said = log.read_text()
        assert f"tracking link http://127.0.0.1:{port}/c/" in said
        assert f"API docs: http://127.0.0.1:{port}/api/docs" in said
        assert ":8000" not in said
        assert len(links) == 4 and all(
            link["url"].startswith(f"http://127.0.0.1:{port}/c/") for link in links
        )
