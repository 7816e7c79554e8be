"""The `clickback` command: serve, migrate, demo."""

import asyncio
import logging
from typing import Annotated

import typer
from rich.console import Console

from clickback.config import Settings
from clickback.service.runtime import Runtime
from clickback.store.db import connect
from clickback.store.migrate import upgrade

app = typer.Typer(help="clickback: self-hosted S2S affiliate tracking.", no_args_is_help=True)
console = Console()


async def _migrate(settings: Settings) -> None:
    db = connect(settings.url)
    try:
        await upgrade(db)
    finally:
        await db.close()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (safe to repeat)."""
    settings = Settings()
    asyncio.run(_migrate(settings))
    console.print(f"schema up to date: {settings.url.split('@')[-1]}")


@app.command()
def demo() -> None:
    """Add demo data (an advertiser, two offers, two affiliates, links, a week of traffic)."""
    from clickback.demo import seed

    settings = Settings()

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
    """Run the server (Granian) with the click writer in every worker."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = Settings()
    if settings.migrate_on_start:
        asyncio.run(_migrate(settings))
    settings.click_id_key  # noqa: B018 - generate secrets once, before the workers read them
    settings.api_token  # noqa: B018
    logging.basicConfig(level=logging.INFO)
    console.print(f"clickback on http://{host}:{port}  (API docs: /api/docs)")
    Granian(
        "clickback.web.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=host,
        port=port,
        workers=workers,
        respawn_failed_workers=True,
    ).serve()
