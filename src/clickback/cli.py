"""The `clickback` command: serve, migrate, demo, backup, restore, and the ledger's and exchange
rates' commands.

Run through `main`: a problem a person can fix (a setting, the database, the port) is printed in
a line or two, without a traceback unless `--debug`.
"""

import asyncio
import contextlib
import errno
import os
import shutil
import socket
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from clickback.config import Settings
from clickback.core import integration
from clickback.core.audit import Actor, command_line
from clickback.core.limits import MAX_PARAM_VALUE_LEN
from clickback.core.money import money_text, parse_period
from clickback.core.outbound import mask_url
from clickback.core.reasons import Reason
from clickback.core.statements import COLUMNS, StatementLine, line_cells, statement_csv, totals
from clickback.errors import StartupError
from clickback.logs import log_config
from clickback.metrics import MULTIPROC_ENV
from clickback.service.clock import utcnow
from clickback.store import admin, fx, ledger, statements
from clickback.store import backup as backups
from clickback.store import outbound as outbound_store
from clickback.store.catalog import decoded, load_catalog
from clickback.store.db import Database, connect, database_problem, url_shown
from clickback.store.migrate import head_revision, upgrade
from clickback.store.rollups import forget_zone

if TYPE_CHECKING:
    from clickback.service.accounts import Accounts
    from clickback.service.reconciliations import Problem
    from clickback.service.tester import Trace

app = typer.Typer(
    help="clickback: self-hosted S2S affiliate tracking.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # main() explains the errors a person can fix; --debug shows the rest
)
console = Console(soft_wrap=True)  # keys and URLs must stay on one line to be copied
T = TypeVar("T")
_options = {"debug": False}


@app.callback()
def options(
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error too.")] = False,
) -> None:
    _options["debug"] = debug


def main() -> None:
    """The `clickback` command."""
    try:
        app()
    except StartupError as exc:
        if _options["debug"]:
            traceback.print_exc()
        print(f"clickback: {exc}", file=sys.stderr)
        sys.exit(exc.status)


def load_settings() -> Settings:
    return Settings.from_environment()


def run(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """`work` on a new event loop; a failure to use the database becomes a StartupError saying
    what to do."""
    try:
        return asyncio.run(work)
    except Exception as exc:
        problem = database_problem(exc, settings.url)
        if problem is None:
            raise
        raise problem from exc


def where(settings: Settings) -> str:
    """Where this command's data is, for the first lines it prints."""
    given = "data_dir" in settings.model_fields_set
    line = f"data directory: {settings.data_dir}  ({'CLICKBACK_DATA_DIR' if given else 'the default'})"
    if settings.database_url:
        line += f"\ndatabase: {url_shown(settings.url)}  (CLICKBACK_DATABASE_URL)"
    return line


async def _migrate(settings: Settings) -> None:
    db = connect(settings.url, settings.report_zone_list)
    try:
        await upgrade(db)
    finally:
        await db.close()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to repeat)."""
    settings = load_settings()
    console.print(where(settings))
    run(settings, _migrate(settings))
    console.print(f"schema up to date: {url_shown(settings.url)}")


@app.command("forget-report-zone")
def forget_report_zone(zone: str) -> None:
    """Drop the report days kept for ZONE, to keep it no more (name the zones left in
    CLICKBACK_REPORT_ZONES); reports in it then come from hours or the raw tables."""
    settings = load_settings()

    async def forget() -> bool:
        db = connect(settings.url, settings.report_zone_list)
        try:
            async with db.write() as conn:
                return await conn.run_sync(lambda sync: forget_zone(sync, zone))
        finally:
            await db.close()

    found = run(settings, forget())
    console.print(
        f"report days of {zone} dropped" if found else f"the database kept no report days of {zone}"
    )


@app.command()
def demo() -> None:
    """Add demo data (an advertiser, two offers, two affiliates, links, a week of traffic)."""
    from clickback.demo import seed

    settings = load_settings()
    console.print(where(settings))
    settings.click_id_key  # noqa: B018 - refused here, before the database exists, if it would orphan clicks

    from clickback.service.runtime import Runtime  # the whole runtime: only for what runs it

    async def seeded() -> list[str]:
        await _migrate(settings)
        runtime = Runtime(settings)
        await runtime.start()
        try:
            return await seed(runtime)
        finally:
            await runtime.stop()

    for line in run(settings, seeded()):
        console.print(line)
    console.print(f"API docs: {settings.public_url}/api/docs  (API key: {settings.api_token})")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the server (Uvicorn, clicks answered from its parser) with the click writer in every worker."""
    import logging.config

    from clickback.web.server import serve as run_server

    settings = load_settings()
    check_port(host, port)
    if not settings.public_url_set:
        # Links and postback URLs name the port this server listens on; the workers read it
        # from the environment like every other setting.
        os.environ["CLICKBACK_PUBLIC_URL"] = public_url_for(host, port)
        settings = load_settings()
    console.print(where(settings))
    settings.click_id_key  # noqa: B018 - generate secrets once, before the workers read them
    settings.api_token  # noqa: B018
    if settings.migrate_on_start:
        try:
            run(settings, _migrate(settings))
        except StartupError as exc:
            if not exc.transient:
                raise
            # The click path needs no database round trip: serve now; each worker migrates and
            # loads the catalog once the database answers (and /readyz says so meanwhile).
            console.print(f"{exc}\n  starting anyway: migrations and the catalog wait for the database")
    if workers > 1:
        # Each worker writes its figures here, and whichever answers /metrics reports them all
        # (clickback/metrics.py). Emptied first: figures of an earlier run would be counted again.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    console.print(f"clickback on {settings.public_url}  (API docs: {settings.public_url}/api/docs)")
    config = log_config()
    logging.config.dictConfig(config)
    run_server(
        "clickback.web.app:served_app", settings, host=host, port=port, workers=workers, log_config=config
    )


@app.command()
def worker() -> None:
    """Send outbound postbacks only (no HTTP server): run as many as you like beside `serve`
    processes started with CLICKBACK_OUTBOUND_DISPATCH=false. Stops on SIGTERM or Ctrl-C once
    the attempts in flight are recorded."""
    import logging.config
    import signal

    from clickback.service.runtime import dispatcher_for

    settings = load_settings()
    console.print(where(settings))
    logging.config.dictConfig(log_config())

    async def dispatch() -> None:
        await _migrate(settings)
        db = connect(settings.url, settings.report_zone_list)
        dispatcher = dispatcher_for(settings, db)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(dispatcher.run())
        try:
            await stop.wait()
        finally:
            await dispatcher.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await db.close()

    console.print("sending outbound postbacks (Ctrl-C stops)")
    run(settings, dispatch())


outbound_app = typer.Typer(help="Outbound postbacks: deliveries, dead letters, paused destinations.")
app.add_typer(outbound_app, name="outbound")


@outbound_app.command("replay")
def outbound_replay(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Delivery ids (GET /api/outbound/deliveries).")
    ] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Every dead letter.")] = False,
) -> None:
    """Send deliveries again from their first attempt, with their delivery ID."""
    if not ids and not dead:
        raise typer.BadParameter("name delivery ids, or give --dead for every dead letter")

    async def replay(db: Database) -> int:
        # A mistyped id would otherwise read as "0 deliveries waiting": as if it were in flight.
        for delivery in ids or ():
            await outbound_store.get_delivery(db, delivery)
        return await outbound_store.replay(
            db, ids or None, outbound_store.DEAD if dead else None, utcnow(), by=_actor()
        )

    try:
        count = with_db(load_settings(), replay)
    except admin.NotFound as exc:
        raise typer.BadParameter(f"{exc} (GET /api/outbound/deliveries lists them)") from None
    console.print(f"{count} deliveries waiting to be sent again")


@outbound_app.command("status")
def outbound_status() -> None:
    """Deliveries by state, and destinations with failures (paused ones say since when and why)."""

    async def read(db: Database) -> tuple[dict[str, int], list[dict[str, Any]]]:
        return await outbound_store.counts(db), await outbound_store.destinations(db, paused_only=False)

    counts, destinations = with_db(load_settings(), read)
    console.print("  ".join(f"{state} {n}" for state, n in counts.items()))
    table = Table("destination", "failures in a row", "paused since", "waiting", "held", "reason")
    for d in destinations:
        paused = d["paused_at"].isoformat(timespec="seconds") if d["paused_at"] else ""
        counted = (str(d["waiting"]), str(d["held"]))
        table.add_row(escape(d["destination"]), str(d["failures"]), paused, *counted, escape(d["reason"]))
    console.print(table)


@outbound_app.command("resume")
def outbound_resume(
    destination: Annotated[str, typer.Argument(help="host[:port], as status shows it.")],
) -> None:
    """Resume a paused destination: its waiting deliveries are sent at once."""
    try:
        count = with_db(
            load_settings(), lambda db: outbound_store.resume(db, destination, utcnow(), _actor())
        )
    except admin.NotFound as exc:
        raise typer.BadParameter(f"{exc} (clickback outbound status lists them)") from None
    console.print(f"{escape(destination)} resumed: {count} deliveries waiting are due now")


templates_app = typer.Typer(help="Outbound postback templates: as the API's /api/outbound/templates.")
outbound_app.add_typer(templates_app, name="templates")


def _template_fields(
    url: str | None,
    offer: int | None,
    name: str | None,
    method: str | None,
    body_format: str | None,
    body: str | None,
    event: list[str] | None,
    status: list[str] | None,
    map_status: list[str] | None,
    click_id_sub: str | None,
    secret: str | None,
) -> dict[str, Any]:
    """The options given, as the API's fields (those not given left out)."""
    fields: dict[str, Any] = {
        "url": url,
        "offer_id": offer,
        "name": name,
        "method": method.upper() if method else None,
        "body_format": body_format,
        "body": body,
        "events": event,
        "statuses": status,
        "click_id_sub": click_id_sub,
        "secret": secret,
    }
    if map_status is not None:
        pairs = [item.partition("=") for item in map_status]
        if any(not sep for _, sep, _ in pairs):
            raise typer.BadParameter("--map takes status=word, e.g. --map approved=sale")
        fields["status_map"] = {k.strip(): v.strip() for k, _, v in pairs}
    return {k: v for k, v in fields.items() if v is not None}


def _save_template(template_id: int | None, fields: dict[str, Any]) -> dict[str, Any]:
    """Checked as the API checks it (service/outbound.py), then created or changed."""
    from clickback.service import outbound as outbound_service
    from clickback.web.schemas import OutboundTemplateChange, OutboundTemplateIn

    try:
        if template_id is None:
            given = OutboundTemplateIn(**fields).model_dump()
        else:
            given = OutboundTemplateChange(**fields).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())) from None
    settings = load_settings()

    async def save(db: Database) -> dict[str, Any]:
        catalog, allow = await load_catalog(db), settings.outbound_allowlist
        try:
            if template_id is None:
                return await outbound_service.create_template(db, catalog, allow, given, utcnow(), _actor())
            return await outbound_service.change_template(
                db, catalog, allow, template_id, given, utcnow(), _actor()
            )
        except outbound_service.TemplateRefused as refused:
            raise typer.BadParameter(f"{refused.field}: {refused.message}") from None

    try:
        return with_db(settings, save)
    except admin.NotFound as exc:
        raise typer.BadParameter(str(exc)) from None


_URL = "The URL, with macros (docs/outbound.md)."
# The options of `add` and `change`, the API's fields (docs/outbound.md).
_Offer = Annotated[int | None, typer.Option(help="Only this offer's conversions.")]
_Name = Annotated[str | None, typer.Option()]
_Method = Annotated[str | None, typer.Option(help="GET (the default) or POST.")]
_BodyFormat = Annotated[str | None, typer.Option(help="POST: form (the default) or json.")]
_Body = Annotated[str | None, typer.Option(help="POST: the body, with macros.")]
_Events = Annotated[list[str] | None, typer.Option("--event", help="Only this event (repeat for more).")]
_Statuses = Annotated[list[str] | None, typer.Option("--status", help="Only this status (repeat for more).")]
_Map = Annotated[
    list[str] | None, typer.Option("--map", help="{status}'s word: approved=sale (repeat for more).")
]
_ClickIdSub = Annotated[str | None, typer.Option(help="The sub ID holding the tracker's click ID.")]
_Secret = Annotated[str | None, typer.Option(help="Sign each request with this key.")]


@templates_app.command("add")
def template_add(
    affiliate: Annotated[int, typer.Argument(help="The affiliate's id.")],
    url: Annotated[str, typer.Argument(help=_URL)],
    offer: _Offer = None,
    name: _Name = None,
    method: _Method = None,
    body_format: _BodyFormat = None,
    body: _Body = None,
    event: _Events = None,
    status: _Statuses = None,
    map_status: _Map = None,
    click_id_sub: _ClickIdSub = None,
    secret: _Secret = None,
) -> None:
    """Give an affiliate an outbound postback."""
    fields = _template_fields(
        url, offer, name, method, body_format, body, event, status, map_status, click_id_sub, secret
    )
    row = _save_template(None, fields | {"affiliate_id": affiliate})
    console.print(f"template {row['id']} for affiliate {affiliate}: {escape(mask_url(row['url']))}")


@templates_app.command("change")
def template_change(
    template_id: Annotated[int, typer.Argument(help="The template's id.")],
    url: Annotated[str | None, typer.Option(help=_URL)] = None,
    offer: _Offer = None,
    name: _Name = None,
    method: _Method = None,
    body_format: _BodyFormat = None,
    body: _Body = None,
    event: _Events = None,
    status: _Statuses = None,
    map_status: _Map = None,
    click_id_sub: _ClickIdSub = None,
    secret: _Secret = None,
) -> None:
    """Change the fields given; the others stay."""
    fields = _template_fields(
        url, offer, name, method, body_format, body, event, status, map_status, click_id_sub, secret
    )
    if not fields:
        raise typer.BadParameter("give at least one field to change (see --help)")
    row = _save_template(template_id, fields)
    console.print(f"template {row['id']} changed: {escape(mask_url(row['url']))}")


@templates_app.command("list")
def template_list(
    affiliate: Annotated[int | None, typer.Option(help="Only this affiliate's.")] = None,
) -> None:
    """Every template (oldest first), or one affiliate's."""

    async def every(db: Database) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        filters = {} if affiliate is None else {"affiliate_id": affiliate}
        while True:
            page = await outbound_store.list_templates(db, filters, cursor, 500)
            rows += page.rows
            if (cursor := page.next_cursor) is None:
                return rows

    # Lines, not a table: a table is cut to the terminal's width, and a URL must stay whole.
    console.print("id\taffiliate\toffer\tstatus\tmethod\tevents\tstatuses\turl")
    for t in map(decoded, with_db(load_settings(), every)):
        cells = [str(t["id"]), str(t["affiliate_id"]), str(t["offer_id"] or "every")]
        cells += [t["status"], t["method"]]
        cells += [", ".join(t[k]) or "every" for k in ("events", "statuses")]
        console.print(escape("\t".join([*cells, mask_url(t["url"])])))


def _set_template(template_id: int, values: dict[str, Any]) -> None:
    async def change(db: Database) -> dict[str, Any]:
        return await outbound_store.change_template(db, template_id, values, utcnow())

    try:
        with_db(load_settings(), change)
    except admin.NotFound as exc:
        raise typer.BadParameter(str(exc)) from None


@templates_app.command("pause")
def template_pause(template_id: Annotated[int, typer.Argument(help="The template's id.")]) -> None:
    """Nothing more is queued for it (deliveries already queued are still sent)."""
    _set_template(template_id, {"status": "paused"})
    console.print(f"template {template_id} paused")


@templates_app.command("resume")
def template_resume(template_id: Annotated[int, typer.Argument(help="The template's id.")]) -> None:
    """Active again: conversions from now on are sent."""
    _set_template(template_id, {"status": "active"})
    console.print(f"template {template_id} active")


@templates_app.command("delete")
def template_delete(template_id: Annotated[int, typer.Argument(help="The template's id.")]) -> None:
    """Delete it; deliveries already queued for it are still sent."""
    try:
        with_db(load_settings(), lambda db: outbound_store.delete_template(db, template_id))
    except admin.NotFound as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(f"template {template_id} deleted")


def public_url_for(host: str, port: int) -> str:
    """This server's own address, when CLICKBACK_PUBLIC_URL does not say otherwise."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - every interface: this machine answers on loopback
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_port(host: str, port: int) -> None:
    """Refuse at once, before any migration, a port another process listens on."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As Uvicorn binds: a port left in TIME_WAIT by a server just stopped is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except socket.gaierror as exc:
        raise StartupError(f"--host {host}: not an address of this machine ({exc.strerror})") from exc
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} is in use on {host} (another clickback, or another server)",
                f"stop it, or set --port: clickback serve --port {port + 1 if port < 65535 else 8080}",
                status=1,
            ) from exc
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}", status=1) from exc


fx_app = typer.Typer(
    help="Exchange rates used to convert amounts into a deal's currency.", no_args_is_help=True
)
app.add_typer(fx_app, name="fx")


def _actor() -> Actor:
    """Who the audit log says made a change from the command line: the system user running it."""
    import getpass

    try:
        return command_line(getpass.getuser())
    except (KeyError, OSError):  # no name for this uid (a container's)
        return command_line("")


def with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def migrated() -> T:
        await _migrate(settings)
        db = connect(settings.url, settings.report_zone_list)
        try:
            return await work(db)
        finally:
            await db.close()

    return run(settings, migrated())


user_app = typer.Typer(help="Users who sign in (manager, affiliate, advertiser) and their API keys.")
app.add_typer(user_app, name="user")


def _accounts(db: Database) -> "Accounts":
    from datetime import timedelta

    from clickback.service.accounts import Accounts

    return Accounts(db, utcnow, timedelta(hours=load_settings().session_hours))


@user_app.command("add")
def user_add(
    login: Annotated[str, typer.Option("--login", help="What they sign in with (e.g. an e-mail address).")],
    role: Annotated[str, typer.Option("--role", help="manager, affiliate or advertiser.")],
    affiliate: Annotated[
        int | None, typer.Option("--affiliate", help="The affiliate's id (role affiliate).")
    ] = None,
    advertiser: Annotated[
        int | None, typer.Option("--advertiser", help="The advertiser's id (role advertiser).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    zone: Annotated[
        str, typer.Option("--zone", help="IANA zone of their reports when a report names none.")
    ] = "UTC",
) -> None:
    """Add a user who signs in at /login. Without --password-stdin a password is generated and
    printed once."""
    from clickback.core.accounts import Role
    from clickback.service.accounts import AccountError

    try:
        chosen = Role(role)
    except ValueError:
        raise typer.BadParameter("manager, affiliate or advertiser", param_hint="--role") from None
    # The first line only: a newline typed or piped after it is no part of the password.
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None

    async def add(db: Database) -> tuple[dict[str, Any], str | None]:
        return await _accounts(db).add_user(
            login,
            chosen,
            affiliate_id=affiliate,
            advertiser_id=advertiser,
            password=password,
            zone=zone,
            by=_actor(),
        )

    try:
        user, generated = with_db(load_settings(), add)
    except (AccountError, admin.NotFound) as exc:
        raise StartupError(str(exc)) from None
    tenant = (
        f" of affiliate {affiliate}" if affiliate else f" of advertiser {advertiser}" if advertiser else ""
    )
    console.print(f"user {escape(user['login'])}: {user['role']}{tenant}")
    if generated:
        console.print(f"password: {generated}  (shown once: keep it now)")


def _on_user(work: Callable[["Accounts"], Awaitable[T]]) -> T:
    """`work` on the accounts of the configured database; a login that is nobody's, said plainly."""
    from clickback.service.accounts import AccountError

    try:
        return with_db(load_settings(), lambda db: work(_accounts(db)))
    except AccountError as exc:
        raise StartupError(str(exc)) from None


Login = Annotated[str, typer.Argument(help="The user's login.")]


@user_app.command("key")
def user_key(login: Login) -> None:
    """A new API key for the user, with the user's access. Printed once: only its hash is kept."""
    console.print(_on_user(lambda accounts: accounts.new_key(login, _actor())), highlight=False)


@user_app.command("revoke-keys")
def user_revoke_keys(login: Login) -> None:
    """Every API key of the user stops working now (a key that leaked: revoke, then `user key`)."""
    count = _on_user(lambda accounts: accounts.revoke_keys(login, _actor()))
    console.print(f"{count} key{'s' * (count != 1)} revoked")


@user_app.command("zone")
def user_zone(
    login: Login, zone: Annotated[str, typer.Argument(help="An IANA zone, e.g. Europe/Berlin.")]
) -> None:
    """The zone of the user's reports (days, weeks, hours) when a report names none."""
    _on_user(lambda accounts: accounts.set_zone(login, zone, _actor()))
    console.print(f"{escape(login)}: reports in {escape(zone)}")


@user_app.command("deactivate")
def user_deactivate(login: Login) -> None:
    """The user can no longer sign in; their sessions end and their keys stop working."""
    _on_user(lambda accounts: accounts.set_active(login, False, _actor()))
    console.print(f"{escape(login)} deactivated")


@user_app.command("activate")
def user_activate(login: Login) -> None:
    """Undo `deactivate` (keys not revoked work again)."""
    _on_user(lambda accounts: accounts.set_active(login, True, _actor()))
    console.print(f"{escape(login)} active")


@user_app.command("password")
def user_password(
    login: Login,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """A new password for the user (generated and printed once unless --password-stdin); the
    user's browser sessions end."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    generated = _on_user(lambda accounts: accounts.new_password(login, password, by=_actor()))
    console.print(f"password: {generated}  (shown once: keep it now)" if generated else "password changed")


@user_app.command("list")
def user_list() -> None:
    """Every user: login, role, tenant, whether active, report zone, API keys not revoked."""
    table = Table("login", "role", "tenant", "active", "zone", "keys", "created")
    for u in _on_user(lambda accounts: accounts.users()):
        tenant = f"affiliate {u['affiliate_id']}" if u["affiliate_id"] else ""
        tenant = tenant or (f"advertiser {u['advertiser_id']}" if u["advertiser_id"] else "")
        active = "yes" if u["active"] else "no"
        table.add_row(
            escape(u["login"]),
            u["role"],
            tenant,
            active,
            escape(u["zone"]),
            str(u["keys"]),
            f"{u['created_at']:%Y-%m-%d}",
        )
    console.print(table)


@fx_app.command("set")
def fx_set(
    base: Annotated[str, typer.Argument(help="ISO 4217 code, e.g. EUR")],
    quote: Annotated[str, typer.Argument(help="ISO 4217 code, e.g. USD")],
    rate: Annotated[str, typer.Argument(help="1 unit of base in quote, e.g. 1.0842")],
    day: Annotated[str, typer.Option(help="YYYY-MM-DD the rate applies from (default today, UTC)")] = "",
) -> None:
    """Record a dated exchange rate."""
    from clickback.web.schemas import FxRateIn

    try:
        row = FxRateIn(base=base, quote=quote, rate=rate, day=day or utcnow().date())  # type: ignore[arg-type]
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    with_db(
        load_settings(),
        lambda db: fx.put_rate(db, row.base, row.quote, row.day, row.rate, utcnow(), _actor()),
    )
    console.print(f"{row.base}→{row.quote} {row.rate} from {row.day}")


@fx_app.command("list")
def fx_list() -> None:
    """Print the recorded exchange rates, newest first per pair."""
    for r in with_db(load_settings(), _every_rate):
        console.print(f"{r['day']}  {r['base']}→{r['quote']}  {r['rate']}")


async def _every_rate(db: Database) -> list[dict[str, Any]]:

    page = await fx.list_rates(db)
    rows = page.rows
    while page.next_cursor is not None:
        page = await fx.list_rates(db, cursor=page.next_cursor)
        rows += page.rows
    return rows


@app.command()
def statement(
    affiliate_id: Annotated[int, typer.Argument(min=1)],
    period: Annotated[str, typer.Argument(help="YYYY-MM")],
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """An affiliate's monthly statement: players, FTDs, CPAs, NGR, RevShare, carryover, total."""
    if parse_period(period) is None:
        raise typer.BadParameter("use YYYY-MM", param_hint="PERIOD")

    async def read(db: Database) -> list[StatementLine]:
        await admin.get(db, "affiliates", affiliate_id)  # else an empty statement, as if owed nothing
        deals = (await load_catalog(db)).deals_of(affiliate_id)
        return await statements.statement(db, affiliate_id, period, deals)

    try:
        lines = with_db(load_settings(), read)
    except admin.NotFound:
        unknown = f"affiliate {affiliate_id} does not exist"
        raise typer.BadParameter(unknown, param_hint="AFFILIATE_ID") from None
    if csv:
        print(statement_csv(lines), end="")
        return
    rows = [[escape(cell) for cell in line_cells(line)] for line in lines]
    print_table(COLUMNS, rows, title=f"affiliate {affiliate_id}, {period}")
    for currency, total in totals(lines).items():
        console.print(f"total {currency} {money_text(total, currency)}")


@app.command()
def reconcile(
    advertiser_id: Annotated[
        int, typer.Argument(min=1, help="The advertiser (operator) the report is from.")
    ],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or XLSX.")],
    period: Annotated[
        str | None, typer.Option("--period", help="The month the file covers: YYYY-MM.")
    ] = None,
    book: Annotated[
        bool,
        typer.Option(
            "--book",
            help="First send each new line's events through the postback intake (an operator that "
            "sends no postbacks: its daily report).",
        ),
    ] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Import nothing: show how the file is read, the column mapping an import would use "
            "(the saved one, else the one the header proposes) and the first lines through it.",
        ),
    ] = False,
) -> None:
    """Compare an operator's report with what clickback recorded, player by player and month
    (docs/reconciliation.md). The advertiser's saved column mapping is used, else the one the
    header proposes; a file imported before is that reconciliation."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from clickback.core.audit import SYSTEM
    from clickback.service.reconciliations import Problem
    from clickback.service.reconciliations import reconcile as run_reconciliation

    if period is not None and parse_period(period) is None:
        raise typer.BadParameter("use YYYY-MM", param_hint="--period")
    data = file.read_bytes()
    if preview:
        _preview_report(advertiser_id, data, file.name, period)
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=console
    ) as bar:
        tasks = {stage: bar.add_task(stage, total=1) for stage in ("read", "compare", "save")}

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        async def work(db: Database) -> Any:
            catalog = await load_catalog(db)
            return await run_reconciliation(
                db, catalog, advertiser_id, data, file.name, period, None, SYSTEM, utcnow(), progress
            )

        async def booking() -> Any:
            # The postback intake is the runtime's (its group commit, the outbox's dispatcher).
            from clickback.service.runtime import Runtime

            runtime = Runtime(settings)
            await runtime.start()
            try:
                return await run_reconciliation(
                    runtime.db,
                    runtime.catalog.current,
                    advertiser_id,
                    data,
                    file.name,
                    period,
                    None,
                    SYSTEM,
                    utcnow(),
                    progress,
                    book=runtime.postbacks,
                )
            finally:
                await runtime.stop()

        settings = load_settings()
        try:
            done = run(settings, booking()) if book else with_db(settings, work)
        except Problem as exc:
            raise _refused(exc) from None
    rec = done.reconciliation
    if done.duplicate:
        say(
            f"this file was reconciled before: reconciliation {rec['id']}, {rec['created_at']:%Y-%m-%d %H:%M}"
        )
    say(
        f"reconciliation {rec['id']}: {rec['lines']} lines, {rec['imported']} imported, {rec['skipped']} "
        f"imported before, {rec['bad']} bad; {rec['items']} players' months compared"
    )
    for b in done.bad:
        say(f"  line {b['line']}: {b['reason']}")
    for result, count in sorted(done.booked.items()):
        say(f"  booked through the intake: {count} {result}")
    rows = []
    for row in rec["summary"]:
        explained = ", ".join(f"{k} {v}" for k, v in row["explained"].items())
        affiliate = str(row["affiliate_id"]) if row["affiliate_id"] is not None else "-"
        rows.append(
            [
                affiliate,
                row["month"],
                row["currency"] or "",
                row["operator_total"],
                row["clickback_total"],
                row["difference"],
                escape(explained),
            ]
        )
    print_table(
        ("affiliate", "month", "currency", "operator", "clickback", "difference", "explained by"), rows
    )


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """Rows as a table when the terminal (or COLUMNS; 80 when piped) is wide enough for every cell
    whole; else each row as a block of `column  value` lines. A table wider than the console has
    its cells cut by rich ("50…" for 500.00, headers "o…"): never wanted for money."""
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*row)
    # The table's own width, measured as if the console had no edge.
    natural = Measurement.get(console, console.options.update_width(10**6), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    if title:
        console.print(title)
    pad = max(map(len, columns))
    for row in rows:
        console.print()
        # Plain lines (the console soft-wraps): however narrow the terminal, nothing is cut.
        for column, cell in zip(columns, row, strict=True):
            console.print(f"[bold]{column:<{pad}}[/bold]  {cell}")


def _refused(exc: "Problem") -> typer.BadParameter:
    """A reconciliation refused: the file's fault (422) or the advertiser's (not found)."""
    return typer.BadParameter(str(exc), param_hint="FILE" if exc.status == 422 else "ADVERTISER_ID")


def _preview_report(advertiser_id: int, data: bytes, name: str, period: str | None) -> None:
    """`reconcile --preview`: the file as read and the mapping an import would use, nothing saved."""
    from clickback.core.reconcile import BadRow
    from clickback.service.reconciliations import Problem
    from clickback.service.reconciliations import preview as preview_report

    async def read(db: Database) -> Any:
        return await preview_report(db, await load_catalog(db), advertiser_id, data, name, None, period)

    try:
        shown = with_db(load_settings(), read)
    except Problem as exc:
        raise _refused(exc) from None
    reading = shown.reading
    say(
        f"{shown.kind}: encoding {reading['encoding']}, delimiter {reading['delimiter']!r}, "
        f"decimal mark {reading['decimal']!r}; {len(shown.header)} columns"
    )
    if shown.saved is not None:
        saved = shown.saved["columns"].items()
        say("the advertiser's saved mapping: " + ", ".join(f"{k} = {v}" for k, v in saved))
    say(
        "the mapping the header proposes: "
        + ", ".join(f"{f.value} = {h}" for f, h in shown.proposed.columns.items())
    )
    if shown.problem:
        say(f"an import would be refused: {shown.problem}")
        raise typer.Exit(1)
    say(f"the first {len(shown.rows)} lines through it:")
    for row in shown.rows:
        if isinstance(row, BadRow):
            say(f"  line {row.line}: {row.reason}")
            continue
        fields = {
            "tracking code": row.tracking_code,
            "month": row.month,
            "day": row.day,
            "registered": row.registered_on,
            "first deposit": f"{row.ftd_on or ''} {'' if row.ftd_amount is None else row.ftd_amount}".strip(),
            "deposits": row.deposits,
            "NGR": row.ngr,
            "CPA": row.cpa,
            "RevShare": row.revshare,
            "commission": row.commission,
            "currency": row.currency,
            "transaction": row.transaction_id,
        }
        shown_fields = ", ".join(f"{k} {v}" for k, v in fields.items() if v not in (None, ""))
        say(f"  line {row.line}: player {row.player_id}, {shown_fields}")


@app.command("check-links")
def check_links(
    offer: Annotated[
        int | None,
        typer.Option("--offer", min=1, help="Only this offer (checked even while it is paused)."),
    ] = None,
) -> None:
    """Check the active offers' URLs now, as `serve` does every CLICKBACK_LINK_CHECK_MINUTES, and
    record each check. Exit status 1 when any offer is broken."""
    from clickback.core.clickids import ClickIdCodec
    from clickback.service.linkchecks import active_offers
    from clickback.service.runtime import link_checks_for

    settings = load_settings()

    async def check(db: Database) -> list[Any]:
        catalog = await load_catalog(db)
        if offer is None:
            chosen = active_offers(catalog)
        elif offer in catalog.offers:
            chosen = [catalog.offers[offer]]
        else:
            raise admin.NotFound(f"offer {offer} does not exist")
        return await link_checks_for(settings, db, ClickIdCodec(settings.click_id_key)).check(chosen)

    try:
        checked = with_db(settings, check)
    except admin.NotFound as exc:
        raise typer.BadParameter(str(exc), param_hint="--offer") from None
    for c in checked:
        row = c.row()
        status = row["status"] if row["status"] is not None else "-"
        say(
            f"offer {c.offer_id}  {row['verdict']:<8}  {status}  {row['elapsed_ms']} ms"
            f"  {row['final_url']}  {row['hint']}"
        )
    broken = sum(c.outcome.broken for c in checked)
    say(f"{len(checked)} offer{'s' * (len(checked) != 1)} checked, {broken} broken")
    if broken:
        raise typer.Exit(1)


@app.command("test-postback")
def postback_test(
    offer_id: Annotated[int, typer.Argument(min=1)],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="An event to fire (repeat it); default: every event of the offer."),
    ] = None,
    affiliate: Annotated[
        int | None,
        typer.Option("--affiliate", min=1, help="Whose link to click; default: the offer's first."),
    ] = None,
    payout: Annotated[str | None, typer.Option("--payout", help="The amount each postback names.")] = None,
    listen: Annotated[
        bool, typer.Option("--listen", help="Fire nothing: wait for the advertiser's own postback.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds --listen waits.")] = 600,
) -> None:
    """Test an offer's postbacks: a test click through the real click path, then a test postback
    per event through the real intake (or, with --listen, the advertiser's first real one), and
    what became of each. Test traffic counts in no report, statement or commission. Exits 1 if a
    postback was refused (or none came)."""
    if payout is not None and len(payout) > MAX_PARAM_VALUE_LEN:
        raise typer.BadParameter(f"at most {MAX_PARAM_VALUE_LEN} characters", param_hint="--payout")
    settings = load_settings()
    console.print(where(settings))

    from clickback.service.runtime import Runtime
    from clickback.service.tester import Problem, TestPostback

    async def tested() -> bool:
        runtime = Runtime(settings)
        await runtime.start()
        try:
            made = await runtime.tester.click(offer_id, affiliate)
            console.print(
                f"test click {made.click_id} on link {made.link_code} (affiliate {made.affiliate_id})"
            )
            console.print(f"offer URL: {escape(made.offer_url)}")
            if listen:
                console.print("give the advertiser this postback URL (their platform fills in the event):")
                console.print(escape(made.postback_url))
                console.print(f"waiting up to {timeout:g} s for their first postback for this click...")
                trace = await runtime.tester.wait(made.click_id, timeout)
                if trace is None:
                    console.print("no postback arrived for the test click")
                    return False
                _print_trace(trace)
                return not any(p.result == "rejected" for p in trace.postbacks)
            ok = True
            for name in event or integration.offer_events(runtime.catalog.current.offers[offer_id]):
                fired = await runtime.tester.fire(made.click_id, TestPostback(name, payout=payout))
                console.print(f"\n[bold]{escape(name)}[/bold]  {escape(fired.url)}")
                _print_outcome(fired.outcome.body())
                ok = ok and not fired.refused
            console.print()
            _print_trace(await runtime.tester.trace(made.click_id))
            return ok
        except Problem as exc:
            console.print(f"clickback: {escape(str(exc))}")
            return False
        finally:
            await runtime.stop()

    if not run(settings, tested()):
        raise typer.Exit(1)


def _print_outcome(body: dict[str, Any]) -> None:
    line = body["result"]
    if "conversion_id" in body:
        line += f": conversion {body['conversion_id']} ({body.get('event', '')}, {body.get('status', '')})"
    if "reason" in body:
        line += f": {body['reason']}: {body['message']}"
        if body.get("detail"):
            line += f" ({body['detail']})"
    console.print("  " + escape(line))
    if "hint" in body:
        console.print("  hint: " + escape(body["hint"]))
    if body.get("ignored_parameters"):
        console.print("  ignored: " + escape(", ".join(body["ignored_parameters"])))


def _print_trace(trace: "Trace") -> None:
    """The trace, readably: each postback parameter by parameter, each conversion with the
    outbound postbacks it would fire, and what the deal would book."""
    for p in trace.postbacks:
        console.print(f"postback {p.id} at {p.received_at:%H:%M:%S} ({p.channel}): {p.result}", end="")
        console.print(f" {p.reason}: {escape(p.message)}" if p.reason else "")
        if p.hint:
            console.print(f"  hint: {escape(p.hint)}")
        for x in p.parameters:
            meaning = f"{x.field} = {x.understood}" if x.field else x.understood
            console.print(f"  {escape(x.name)}={escape(x.value)}  → {escape(meaning)}")
    for c in trace.conversions:
        row = c.row
        amount = ""
        if row["deal_amount"] is not None:
            amount = f", {money_text(row['deal_amount'], row['deal_currency'])} {row['deal_currency']}"
        console.print(f"conversion {row['id']}: {row['event']} {row['status']}{amount}")
        for o in c.outbound:
            console.print(f"  would fire outbound {o.template_id}: {o.method} {escape(o.url)}")
    for o in trace.cpa_outbound:
        console.print(f"qualified_cpa would fire outbound {o.template_id}: {o.method} {escape(o.url)}")
    m = trace.commission
    if not m.deal:
        console.print("commission: no deal for this offer and affiliate")
        return
    if m.cpa_amount is not None:
        verdict = "qualifies" if m.cpa_qualified else "does not qualify"
        cpa = money_text(m.cpa_amount, m.currency)
        console.print(f"CPA {cpa} {m.currency}: {verdict} ({escape(m.cpa_explanation)})")
    if m.revshare_percent is not None:
        ngr = money_text(m.revshare_ngr, m.currency)
        earned = money_text(m.revshare_earnings or Decimal(0), m.currency)
        console.print(
            f"RevShare {m.revshare_percent}% of NGR {ngr} {m.currency} ({m.revshare_ftds} FTD): "
            f"{earned} {m.currency}"
        )
    console.print("(a preview: nothing is booked or sent for a test click)")


@app.command()
def settle() -> None:
    """Approve commissions whose hold has passed (the server also does this every minute)."""

    approved = with_db(load_settings(), lambda db: ledger.settle(db, utcnow()))
    console.print(f"{approved} commission entries approved")


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="The file to write (an existing file is never overwritten).")],
) -> None:
    """Copy the database to PATH while the server runs: SQLite's online backup, or pg_dump."""
    settings = load_settings()
    try:
        contents = backups.backup(settings.url, path)
    except backups.Refused as exc:
        console.print(f"[red]no backup made[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    say(f"backup of {_database_name(settings)} written to {path}: {_described(contents)}")
    key = "CLICKBACK_SECRET_KEY" if settings.secret_key else str(settings.data_dir / "secret.key")
    say(
        "it holds secrets: advertisers' postback tokens and signing secrets, affiliates' outbound "
        "postback URLs (their trackers' credentials) and signing secrets, users' password hashes, "
        "visitors' IP addresses: keep it as secret as the server (the file is readable by its owner only)"
    )
    say(
        f"keep the click-ID key ({key}) too, though not beside it, or click IDs issued before a "
        "restore will read as forged"
    )


@app.command()
def restore(path: Annotated[Path, typer.Argument(help="A file written by `clickback backup`.")]) -> None:
    """Replace the database by the backup at PATH (SQLite: with every server stopped; PostgreSQL:
    into an empty database only)."""
    settings = load_settings()
    try:
        done = backups.restore(settings.url, path, utcnow())
    except backups.Refused as exc:
        console.print(f"[red]nothing restored[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    say(f"restored {_database_name(settings)} from {path}: {_described(done.contents)}")
    if done.kept:
        say(f"the database it replaced is kept as {done.kept}: delete it once you are satisfied")
    if done.contents.revision != head_revision():
        say(f"its schema is older than this clickback's ({head_revision()}): serve migrates it at start")


def say(line: str) -> None:
    """A line holding paths or names from outside: printed as it is, not read as Rich markup."""
    console.print(line, markup=False, highlight=False)


def _database_name(settings: Settings) -> str:
    path = backups.sqlite_file(settings.url)
    return f"SQLite database {path}" if path else f"PostgreSQL database {settings.url.split('@')[-1]}"


def _described(contents: backups.Contents) -> str:
    return (
        f"{contents.clicks:,} clicks, {contents.conversions:,} conversions, "
        f"schema revision {contents.revision}"
    )


def reasons_markdown() -> str:
    lines = [
        "# Reason codes",
        "",
        "Every refused click or postback carries one of these codes: in the postback reply's",
        "`reason` field, in the click refusal page and its `X-Clickback-Reason` header, and in the",
        "postback log. Generated by `clickback reasons` from `src/clickback/core/reasons.py`.",
        "",
        "| code | HTTP | what happened | what to do |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{r.code}` | {r.http_status} | {r.sentence} | {r.hint} |" for r in Reason]
    return "\n".join(lines) + "\n"


@app.command()
def reasons() -> None:
    """Print the reason-code catalogue as Markdown (docs/reasons.md is this output)."""
    print(reasons_markdown(), end="")
