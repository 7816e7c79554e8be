"""The `clickback` command, run in-process against a fresh SQLite data directory (and `dev.py serve`)."""

import asyncio
import csv
import io
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from clickback.cli import app
from clickback.config import Settings
from clickback.core.model import EMPTY_CATALOG
from clickback.core.reporting import ReportQuery
from clickback.service.clock import utcnow
from clickback.store import admin, reports
from clickback.store.db import connect
from tests.receiver import Answer, Got, receiving
from tests.test_startup import CLICKBACK, ROOT, answers, environment, free_port, serving, wait_for

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo database for the tests that read it (seeding it takes seconds)."""
    path = tmp_path_factory.mktemp("demo")
    first = runner.invoke(app, ["demo"], env=_env(path))
    assert first.exit_code == 0, first.output
    return path, first.output


def _env(path: Path) -> dict[str, str]:
    return {"CLICKBACK_DATA_DIR": str(path), "CLICKBACK_DATABASE_URL": ""}


def test_demo_seeds_traffic_through_the_real_paths_once(demo_dir: tuple[Path, str]) -> None:
    tmp_path, output = demo_dir
    env = _env(tmp_path)

    again = runner.invoke(app, ["demo"], env=env)

    assert output.count("tracking link http://127.0.0.1:8000/c/") == 4
    assert "nothing added" in again.output
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0

    async def totals() -> reports.Figures:
        db = connect(Settings(data_dir=tmp_path).url)
        try:
            today = utcnow().date()
            query = ReportQuery(today - timedelta(days=30), today)
            return (await reports.report(db, query, EMPTY_CATALOG)).totals
        finally:
            await db.close()

    total = asyncio.run(totals())
    assert total.counts["clicks"] == 7 * 60
    assert total.counts["registrations"] > 0
    assert total.money["deposit_amount"]["EUR"] > 0


def test_migrate_is_safe_to_repeat(tmp_path: Path) -> None:
    env = {"CLICKBACK_DATA_DIR": str(tmp_path), "CLICKBACK_DATABASE_URL": ""}

    results = [runner.invoke(app, ["migrate"], env=env) for _ in range(2)]

    assert [r.exit_code for r in results] == [0, 0]
    assert "schema up to date" in results[1].output


def test_statement_fx_and_settle_commands_on_demo_data(demo_dir: tuple[Path, str]) -> None:
    env = _env(demo_dir[0])
    months = sorted({(utcnow() - timedelta(days=d)).strftime("%Y-%m") for d in range(1, 8)})

    csv_rows = [
        row
        for month in months
        for row in runner.invoke(app, ["statement", "1", month, "--csv"], env=env).output.splitlines()[1:]
    ]
    table = runner.invoke(app, ["statement", "1", months[-1]], env=env)
    rate = runner.invoke(app, ["fx", "set", "eur", "USD", "1.0842", "--day", "2026-11-01"], env=env)
    bad_rate = runner.invoke(app, ["fx", "set", "EUR", "USD", "-1"], env=env)
    listed = runner.invoke(app, ["fx", "list"], env=env)
    settled = runner.invoke(app, ["settle"], env=env)

    # The demo's players qualify for CPAs on both offers (the casino deal is hybrid).
    offers = {row.split(",")[1] for row in csv_rows}
    assert offers == {"Northstar Casino", "Northstar Sportsbook"}
    assert sum(int(row.split(",")[5]) for row in csv_rows) > 0  # qualified_cpas
    assert table.exit_code == 0 and "total EUR" in table.output
    assert rate.exit_code == 0 and "EUR→USD 1.0842 from 2026-11-01" in rate.output
    assert bad_rate.exit_code == 2
    assert "2026-11-01  EUR→USD  1.0842" in listed.output
    assert settled.exit_code == 0 and "commission entries approved" in settled.output
    assert runner.invoke(app, ["statement", "1", "2026-13"], env=env).exit_code == 2


def test_statement_figures_are_never_cut_however_narrow_the_terminal(demo_dir: tuple[Path, str]) -> None:
    """rich fits a table wider than the terminal by cutting its cells ("50…" for 500.00, "o…" for
    offer_id): a statement too wide is printed a block of lines per offer instead. Piped, the
    width is COLUMNS (80 without it)."""
    env = _env(demo_dir[0])
    month = (utcnow() - timedelta(days=1)).strftime("%Y-%m")
    given = runner.invoke(app, ["statement", "1", month, "--csv"], env=env).output
    header, *rows = list(csv.reader(io.StringIO(given)))
    assert rows

    for columns in ("40", "100", "300"):
        shown = subprocess.run(
            [CLICKBACK, "statement", "1", month],
            env=environment(demo_dir[0], COLUMNS=columns),
            capture_output=True,
            text=True,
            check=True,
        ).stdout

        assert "…" not in shown, (columns, shown)
        assert all(name in shown for name in header), (columns, shown)
        for row in rows:  # every figure whole, in its line's order
            assert re.search(r"\D+".join(re.escape(cell) for cell in row[4:]), shown, re.S), (
                columns,
                row,
                shown,
            )


async def _set_mapping(path: Path, columns: dict[str, str]) -> None:
    from clickback.core.audit import SYSTEM
    from clickback.service.reconciliations import save_mapping
    from clickback.store.catalog import load_catalog

    db = connect(Settings(data_dir=path).url)
    try:
        given = {"columns": columns, "currency": "EUR"}
        await save_mapping(db, await load_catalog(db), 1, given, SYSTEM, utcnow())
    finally:
        await db.close()


def test_reconcile_compares_a_report_with_a_progress_bar_once(
    demo_dir: tuple[Path, str], tmp_path: Path
) -> None:
    env = _env(demo_dir[0])
    month = utcnow().strftime("%Y-%m")
    report = tmp_path / "operator.csv"
    report.write_bytes(b"\xef\xbb\xbfPlayer ID;BTAG;Deposits;CPA Commission;Currency\r\n"
                       b"nobody-1;x;10,00;100,00;EUR\r\nnobody-2;x;lots;0;EUR\r\n")  # fmt: skip

    first = runner.invoke(app, ["reconcile", "1", str(report), "--period", month], env=env)
    # The mapping used is the advertiser's from now on: the daily file below names a sign-up date.
    mapping = {"player_id": "Player ID", "tracking_code": "BTAG", "registration_date": "Sign Up Date"}
    asyncio.run(_set_mapping(demo_dir[0], mapping))
    again = runner.invoke(app, ["reconcile", "1", str(report), "--period", month], env=env)

    assert first.exit_code == 0, first.output
    assert "2 lines, 1 imported, 0 imported before, 1 bad" in first.output
    assert "line 3: deposits: 'lots' is not an amount" in first.output
    assert "compare" in first.output and "100" in first.output  # the bar, the summary's table
    assert again.exit_code == 0 and "this file was reconciled before" in again.output
    assert runner.invoke(app, ["reconcile", "1", str(report), "--period", "2026-13"], env=env).exit_code == 2
    assert runner.invoke(app, ["reconcile", "99", str(report)], env=env).exit_code == 2
    # A daily report booked: its line names no click of clickback's, so the intake refuses it.
    daily = tmp_path / "daily.csv"
    daily.write_text(
        "Player ID,BTAG,Deposits,CPA Commission,Currency,Sign Up Date\n"
        f"nobody-3,x,0,0,EUR,{utcnow():%Y-%m-%d}\n"
    )
    booked = runner.invoke(app, ["reconcile", "1", str(daily), "--book"], env=env)
    assert booked.exit_code == 0, booked.output
    assert "booked through the intake: 1 rejected: malformed_click_id" in booked.output


def test_reconcile_preview_shows_the_reading_the_mapping_and_the_first_lines_and_imports_nothing(
    demo_dir: tuple[Path, str], tmp_path: Path
) -> None:
    env = _env(demo_dir[0])
    report = tmp_path / "netrefer.csv"
    report.write_bytes(b"\xef\xbb\xbfPlayer ID;BTAG;Deposits;CPA Commission;Currency\r\n"
                       b"p-1;x;1.234,50;100,00;EUR\r\np-2;x;lots;0;EUR\r\n")  # fmt: skip

    # The advertiser's saved mapping (another test may have saved one that fits no file here).
    mapping = {"player_id": "Player ID", "tracking_code": "BTAG", "deposits": "Deposits"}
    asyncio.run(_set_mapping(demo_dir[0], mapping | {"cpa": "CPA Commission", "currency": "Currency"}))

    month = utcnow().strftime("%Y-%m")
    shown = runner.invoke(app, ["reconcile", "1", str(report), "--preview", "--period", month], env=env)

    assert shown.exit_code == 0, shown.output
    assert "encoding utf-8-sig, delimiter ';', decimal mark ','" in shown.output
    assert "saved mapping: player_id = Player ID, tracking_code = BTAG" in shown.output
    assert "1234.50" in shown.output  # the decimal comma read
    assert "not an amount" in shown.output  # line 3's problem, shown beside it
    # Nothing was imported: the real import afterwards reads both lines as new.
    imported = runner.invoke(app, ["reconcile", "1", str(report), "--period", month], env=env)
    assert imported.exit_code == 0 and "2 lines, 1 imported, 0 imported before, 1 bad" in imported.output
    # A file no mapping fits is said so, with exit status 1.
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    unmapped = runner.invoke(app, ["reconcile", "1", str(other), "--preview"], env=env)
    assert unmapped.exit_code == 1 and "an import would be refused" in unmapped.output


def test_test_postback_fires_each_event_of_the_offer_and_prints_the_trace(demo_dir: tuple[Path, str]) -> None:
    env = _env(demo_dir[0])

    fired = runner.invoke(app, ["test-postback", "1"], env=env)

    assert fired.exit_code == 0, fired.output
    assert fired.output.count(": accepted") == fired.output.count("\npostback ") > 5
    assert "event=first_deposit  → event = first_deposit" in fired.output
    assert "CPA 100.00 EUR: qualifies" in fired.output and "nothing is booked" in fired.output

    refused = runner.invoke(app, ["test-postback", "1", "--event", "jackpot"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "unknown_event" in refused.output and "hint: " in refused.output

    quiet = runner.invoke(app, ["test-postback", "1", "--listen", "--timeout", "0.2"], env=env)
    assert quiet.exit_code == 1, quiet.output
    assert "/postback?click_id=" in quiet.output and "no postback arrived" in quiet.output

    missing = runner.invoke(app, ["test-postback", "999"], env=env)
    assert missing.exit_code == 1 and "offers 999 does not exist" in missing.output


def test_dev_serve_names_the_port_it_was_given(demo_dir: tuple[Path, str]) -> None:
    """`python3 dev.py serve --port N`: what it prints and the links it gives name port N."""
    tmp_path = demo_dir[0]
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
        assert f"API docs: http://127.0.0.1:{port}/api/docs" in said
        assert ":8000" not in said
        assert len(links) == 4 and all(
            link["url"].startswith(f"http://127.0.0.1:{port}/c/") for link in links
        )


def test_check_links_prints_each_offer_and_fails_when_one_is_broken(tmp_path: Path) -> None:
    env = _env(tmp_path) | {
        "CLICKBACK_OUTBOUND_ALLOW": "127.0.0.1/32",
        "CLICKBACK_LINK_CHECK_TIMEOUT_SECONDS": "2",
    }
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0

    def site(got: Got) -> Answer:
        ok = got.target.startswith("/ok")
        return Answer(200 if ok else 404, b"<h1>Welcome</h1>", {"content-type": "text/html"})

    with receiving() as server:
        server.answer = site

        async def make() -> list[int]:
            db = connect(Settings(data_dir=tmp_path).url)
            try:
                advertiser = await admin.create_advertiser(db, "Northstar Gaming", utcnow())
                made = []
                for path in ("/ok", "/gone"):
                    row = await admin.create_offer(
                        db,
                        advertiser_id=advertiser["id"],
                        name=path,
                        url_template=server.url(f"{path}?cid={{click_id}}"),
                        currency="EUR",
                        payouts={},
                        custom_events=[],
                        now=utcnow(),
                    )
                    made.append(int(row["id"]))
                return made
            finally:
                await db.close()

        ok, gone = asyncio.run(make())

        every = runner.invoke(app, ["check-links"], env=env)
        one = runner.invoke(app, ["check-links", "--offer", str(ok)], env=env)
        unknown = runner.invoke(app, ["check-links", "--offer", "999"], env=env)

    assert every.exit_code == 1, every.output
    lines = every.output.splitlines()
    assert any(line.startswith(f"offer {ok}  ok ") and " 200 " in line for line in lines), every.output
    assert any(line.startswith(f"offer {gone}  broken ") and "HTTP 404" in line for line in lines)
    assert "2 offers checked, 1 broken" in every.output
    assert one.exit_code == 0, one.output
    assert "1 offer checked, 0 broken" in one.output
    assert unknown.exit_code == 2 and "offer 999 does not exist" in unknown.output
    assert {g.target.split("?")[0] for g in server.got} == {"/ok", "/gone"}


def test_demo_creates_a_manager_and_prints_its_password_once(demo_dir: tuple[Path, str]) -> None:
    tmp_path, output = demo_dir
    line = next(line for line in output.splitlines() if line.startswith("manager: sign in"))
    password = line.split("password ")[1].split()[0]

    async def signed_in() -> object:
        from datetime import timedelta

        from clickback.service.accounts import Accounts

        db = connect(Settings(data_dir=tmp_path).url)
        try:
            return await Accounts(db, utcnow, timedelta(hours=1)).sign_in("admin", password, "127.0.0.1")
        finally:
            await db.close()

    assert "login as admin" in line
    assert type(asyncio.run(signed_in())).__name__ == "SignedIn"


def test_user_add_and_key(tmp_path: Path) -> None:
    env = _env(tmp_path)
    manager = runner.invoke(app, ["user", "add", "--login", "Boss", "--role", "manager"], env=env)
    assert manager.exit_code == 0, manager.output
    assert "user boss: manager" in manager.output
    assert "password: " in manager.output

    given = runner.invoke(
        app,
        ["user", "add", "--login", "alice", "--role", "affiliate", "--affiliate", "1", "--password-stdin"],
        env=env,
        input="a long enough password\n",
    )
    assert given.exit_code != 0
    # (main() prints a StartupError's sentence; invoked here, it is the exception)
    assert "affiliates 1 does not exist" in str(given.exception)

    wrong = runner.invoke(app, ["user", "add", "--login", "x", "--role", "boss"], env=env)
    assert wrong.exit_code != 0 and "manager, affiliate or advertiser" in wrong.output
    taken = runner.invoke(app, ["user", "add", "--login", "boss", "--role", "manager"], env=env)
    assert taken.exit_code != 0 and "taken" in str(taken.exception)

    key = runner.invoke(app, ["user", "key", "boss"], env=env)
    assert key.exit_code == 0, key.output
    assert key.output.strip().startswith("cbk_") and len(key.output.strip()) == 60
    nobody = runner.invoke(app, ["user", "key", "ghost"], env=env)
    assert nobody.exit_code != 0 and "no user has the login ghost" in str(nobody.exception)


def test_user_keys_revoked_passwords_replaced_users_deactivated(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert runner.invoke(app, ["user", "add", "--login", "boss", "--role", "manager"], env=env).exit_code == 0
    key = runner.invoke(app, ["user", "key", "boss"], env=env).output.strip()

    async def who(login: str, password: str) -> tuple[object, object]:
        from clickback.service.accounts import Accounts

        db = connect(Settings(data_dir=tmp_path).url)
        try:
            accounts = Accounts(db, utcnow, timedelta(hours=1))
            return await accounts.by_key(key), await accounts.sign_in(login, password, "192.0.2.1")
        finally:
            await db.close()

    listed = runner.invoke(app, ["user", "list"], env=env)
    assert listed.exit_code == 0 and "boss" in listed.output and "manager" in listed.output
    changed = runner.invoke(app, ["user", "password", "boss"], env=env)
    password = changed.output.split("password: ")[1].split()[0]
    found, signed = asyncio.run(who("boss", password))
    assert found is not None and type(signed).__name__ == "SignedIn"

    # The last active manager stays (core.accounts.deactivation_problem); with another, boss may go.
    last = runner.invoke(app, ["user", "deactivate", "boss"], env=env)
    assert last.exit_code != 0 and "the last active manager" in str(last.exception)
    assert runner.invoke(app, ["user", "add", "--login", "ann", "--role", "manager"], env=env).exit_code == 0
    assert runner.invoke(app, ["user", "deactivate", "boss"], env=env).exit_code == 0
    found, signed = asyncio.run(who("boss", password))
    assert found is None and type(signed).__name__ == "Refused"
    assert runner.invoke(app, ["user", "activate", "boss"], env=env).exit_code == 0
    revoked = runner.invoke(app, ["user", "revoke-keys", "boss"], env=env)
    assert revoked.output.strip() == "1 key revoked"
    found, signed = asyncio.run(who("boss", password))
    assert found is None and type(signed).__name__ == "SignedIn"
    given = runner.invoke(app, ["user", "password", "boss", "--password-stdin"], env=env, input="short\n")
    assert "12 to 256 characters" in str(given.exception)

    # Every change is in the audit log, under the command line and the system user who ran it.
    async def changes() -> list[tuple[str, str]]:
        from clickback.store import audit

        db = connect(Settings(data_dir=tmp_path).url)
        try:
            page = await audit.page(db, audit.AuditFilter(entity_kind="user"), None, 100)
            return [(r["actor"], r["action"]) for r in reversed(page.rows)]
        finally:
            await db.close()

    lines = asyncio.run(changes())
    assert all(actor.startswith("command line (") for actor, _ in lines), lines
    actions = ["create", "add_key", "password", "create", "deactivate", "activate", "revoke_keys"]
    assert [action for _, action in lines] == actions


def test_a_users_report_zone_is_set_and_a_wrong_one_refused(tmp_path: Path) -> None:
    env = _env(tmp_path)
    added = ["user", "add", "--login", "berlin", "--role", "manager", "--zone", "Europe/Berlin"]
    assert runner.invoke(app, added, env=env).exit_code == 0
    listed = runner.invoke(app, ["user", "list"], env=env)
    assert "Europe/Berlin" in listed.output
    wrong = runner.invoke(app, ["user", "zone", "berlin", "Mars/Olympus"], env=env)
    assert wrong.exit_code != 0 and "'Mars/Olympus' is no IANA time zone" in str(wrong.exception)
    moved = runner.invoke(app, ["user", "zone", "berlin", "Asia/Tokyo"], env=env)
    assert moved.exit_code == 0 and "reports in Asia/Tokyo" in moved.output
    assert "Asia/Tokyo" in runner.invoke(app, ["user", "list"], env=env).output
    refused = runner.invoke(
        app, ["user", "add", "--login", "x", "--role", "manager", "--zone", "Nowhere"], env=env
    )
    assert refused.exit_code != 0 and "is no IANA time zone" in str(refused.exception)


def test_a_command_about_something_that_is_not_there_says_so(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0

    # Neither an empty statement nor "0 deliveries waiting": as if all were well.
    statement = runner.invoke(app, ["statement", "999", "2026-12"], env=env)
    assert statement.exit_code == 2 and "affiliate 999 does not exist" in statement.output
    replay = runner.invoke(app, ["outbound", "replay", "99999"], env=env)
    assert replay.exit_code == 2 and "delivery 99999 does not exist" in replay.output


def test_a_wrong_setting_or_url_is_told_as_what_it_is(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0

    async def affiliate() -> None:
        db = connect(Settings(data_dir=tmp_path).url)
        try:
            await admin.create_affiliate(db, "Alice", utcnow())
        finally:
            await db.close()

    asyncio.run(affiliate())
    ftp = runner.invoke(app, ["outbound", "templates", "add", "1", "ftp://x"], env=env)
    assert ftp.exit_code == 2 and "must start with http:// or https://" in ftp.output
    for nan in ("nan", "inf"):
        wrong = env | {"CLICKBACK_OUTBOUND_POLL_SECONDS": nan}
        polled = runner.invoke(app, ["outbound", "status"], env=wrong)
        assert polled.exit_code != 0
        assert f"CLICKBACK_OUTBOUND_POLL_SECONDS='{nan}': Input should be a finite number" in str(
            polled.exception
        ), polled.output
