"""Fixtures the web tests share: a user's browser as HTTP sees it, the casino offer's pixel, and
Debian's headless Chromium."""

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import BROWSER_UA, Client, World


@pytest.fixture
def pixel(client: Client, world: World) -> str:
    """The casino offer's pixel URL (its pixel switched on), without its query."""
    offer = client.api("PUT", f"/offers/{world.casino['id']}/pixel", json={"enabled": True})
    return str(offer["pixel_url"]).partition("?")[0].removeprefix("http://127.0.0.1")


@pytest.fixture
def browser(client: Client) -> Iterator[httpx.Client]:
    """A user's browser: its own cookie jar."""
    with httpx.Client(base_url=client.node.base_url, headers={"user-agent": BROWSER_UA}) as http:
        yield http


@pytest.fixture(scope="module")
def chromium(database_url: str) -> Iterator[Browser]:
    # After the database is made: Playwright's sync API runs an event loop in this thread, where
    # making a database (asyncio.run) would then fail. A browser for each database's tests.
    with sync_playwright() as p:
        # Debian's chromium (`playwright install` cannot run here); --no-sandbox: root in a container.
        launched = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        yield launched
        launched.close()
