"""The `clickback` command: serve, migrate, demo, backup, restore and the ledger's commands."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clickback.config import Settings
from clickback.core.money import money_text, parse_period
from clickback.core.reasons import Reason
from clickback.core.statements import COLUMNS, StatementLine, line_cells, statement_csv, totals
from clickback.service.runtime import Runtime, utcnow
from clickback.store import backup as backups
from clickback.store import fx, ledger, statements
from clickback.store.catalog import load_catalog
from clickback.store.db import Database, connect
from clickback.store.migrate import head_revision, upgrade
from clickback.web.schemas import FxRateIn

app = typer.Typer(help="clickback: self-hosted S2S affiliate tracking.", no_args_is_help=True)
console = Console(soft_wrap=True)  # keys and URLs must stay on one line to be copied


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # pydantic names each CLICKBACK_ variable at fault and why; no traceback needed.
        console.print(f"[red]configuration error[/red] (environment variables CLICKBACK_*):\n{exc}")
        raise typer.Exit(2) from None


async def _migrate(settings: Settings) -> None:
    db = connect(settings.url)
    try:
        await upgrade(db)
    finally:
        await db.close()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to repeat)."""
    settings = load_settings()
    asyncio.run(_migrate(settings))
    console.print(f"schema up to date: {settings.url.split('@')[-1]}")


@app.command()
def demo() -> None:
    """Add demo data (an advertiser, two offers, two affiliates, links, a week of traffic)."""
    from clickback.demo import seed

    settings = load_settings()

    async def run() -> list[str]:
        await _migrate(settings)
        runtime = Runtime(settings)
        await runtime.start()
        try:
            return await seed(runtime)
        finally:
            await runtime.stop()

    for line in asyncio.run(run()):
        console.print(line)
    console.print(f"API docs: {settings.public_url}/api/docs  (API key: {settings.api_token})")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run the server (Uvicorn, clicks answered from its parser) with the click writer in every worker."""
    from clickback.web.server import serve as run_server

    settings = load_settings()
    if settings.migrate_on_start:
        asyncio.run(_migrate(settings))
    settings.click_id_key  # noqa: B018 - generate secrets once, before the workers read them
    settings.api_token  # noqa: B018
    logging.basicConfig(level=logging.INFO)
    console.print(f"clickback on http://{host}:{port}  (API docs: /api/docs)")
    run_server("clickback.web.app:create_app", host=host, port=port, workers=workers)


T = TypeVar("T")
fx_app = typer.Typer(
    help="Exchange rates used to convert amounts into a deal's currency.", no_args_is_help=True
)
app.add_typer(fx_app, name="fx")


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    await _migrate(settings)
    db = connect(settings.url)
    try:
        return await work(db)
    finally:
        await db.close()


@fx_app.command("set")
def fx_set(
    base: Annotated[str, typer.Argument(help="ISO 4217 code, e.g. EUR")],
    quote: Annotated[str, typer.Argument(help="ISO 4217 code, e.g. USD")],
    rate: Annotated[str, typer.Argument(help="1 unit of base in quote, e.g. 1.0842")],
    day: Annotated[str, typer.Option(help="YYYY-MM-DD the rate applies from (default today, UTC)")] = "",
) -> None:
    """Record a dated exchange rate."""
    try:
        row = FxRateIn(base=base, quote=quote, rate=rate, day=day or utcnow().date())  # type: ignore[arg-type]
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    asyncio.run(
        _with_db(
            load_settings(), lambda db: fx.put_rate(db, row.base, row.quote, row.day, row.rate, utcnow())
        )
    )
    console.print(f"{row.base}→{row.quote} {row.rate} from {row.day}")


@fx_app.command("list")
def fx_list() -> None:
    """Print the recorded exchange rates, newest first per pair."""
    for r in asyncio.run(_with_db(load_settings(), _every_rate)):
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
        deals = (await load_catalog(db)).deals_of(affiliate_id)
        return await statements.statement(db, affiliate_id, period, deals)

    lines = asyncio.run(_with_db(load_settings(), read))
    if csv:
        print(statement_csv(lines), end="")
        return
    table = Table(*COLUMNS, title=f"affiliate {affiliate_id}, {period}")
    for line in lines:
        table.add_row(*line_cells(line))
    console.print(table)
    for currency, total in totals(lines).items():
        console.print(f"total {currency} {money_text(total, currency)}")


@app.command()
def settle() -> None:
    """Approve commissions whose hold has passed (the server also does this every minute)."""
    approved = asyncio.run(_with_db(load_settings(), lambda db: ledger.settle(db, utcnow())))
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
        f"it holds no secrets: keep the click-ID key ({key}) with it, or click IDs issued before a "
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
