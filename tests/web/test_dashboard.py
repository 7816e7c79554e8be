"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (one browser for
the module, a fresh context, so fresh cookies, for each person). A known data set is seeded through
the API and the tracking endpoints; the pages must show exactly its figures.

With CLICKBACK_SCREENSHOTS=1, screenshots of the main pages are written to docs/screenshots/ (the
README links them)."""

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect

from clickback.core.accounts import Role
from tests.conftest import Client, World, make_world
from tests.receiver import Answer, receiving
from tests.web.personas import PASSWORD, Keys, add_user, make_keys
from tests.web.test_outbound import add_template, convert, eventually

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
HOSTILE = "<script>alert(1)</script>"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


# What went wrong in the browser during a test, beside what the test asserts.
WRONG: list[str] = []


# The README's screenshots are retaken on request (CLICKBACK_SCREENSHOTS=1), not on every run:
# a test run should not leave the tree changed. One database's run takes them; the pages are
# the same on the other.
SHOOTING: list[bool] = [False]
ASKED = os.environ.get("CLICKBACK_SCREENSHOTS") == "1"


@pytest.fixture(autouse=True)
def clean_pages(database_url: str) -> Iterator[None]:
    WRONG.clear()
    SHOOTING[0] = ASKED and database_url.startswith("sqlite")
    yield
    assert not WRONG, "\n".join(WRONG)


@dataclass
class Seeded:
    world: World
    keys: Keys
    alice_conversion: int
    bob_conversion: int


@pytest.fixture
def seeded(client: Client) -> Seeded:
    """Today: Alice's casino link 4 clicks (3 of sub1 `spring`, 1 of a sub1 holding a script), Bob's
    2; two registrations and an FTD of Alice's, a registration of Bob's."""
    world = make_world(client)
    keys = make_keys(client, world)
    alice = [client.click(world.alice_casino, sub1="spring") for _ in range(3)]
    alice.append(client.click(world.alice_casino, sub1=HOSTILE))
    bob = [client.click(world.bob_casino) for _ in range(2)]
    client.flush()

    def postback(cid: str, event: str, txn: str) -> int:
        reply = client.postback(click_id=cid, event=event, txn_id=txn, token=world.token)
        assert reply.status_code == 200, reply.text
        return int(reply.json()["conversion_id"])

    first = postback(alice[0], "registration", "r1")
    postback(alice[1], "registration", "r2")
    postback(alice[0], "first_deposit", "d1")
    other = postback(bob[0], "registration", "r3")
    return Seeded(world, keys, first, other)


def signed_in(chromium: Browser, client: Client, login: str, viewport: dict[str, int] = DESKTOP) -> Page:
    page = chromium.new_context(viewport=viewport, base_url=client.node.base_url).new_page()
    # No page of ours opens a dialog (one that does ran a script it was given), breaks its own
    # content-security policy or asks for a file that is not there: `clean_pages` checks.
    page.on("dialog", lambda dialog: (WRONG.append(f"a dialog: {dialog.message}"), dialog.dismiss()))
    page.on("console", lambda m: complaint(page, m))
    page.goto("/login")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {login}")).to_be_visible()
    return page


def complaint(page: Page, message: ConsoleMessage) -> None:
    # A page answered 403 or 404 on purpose is reported too: only what it loads counts.
    document = message.text.startswith("Failed to load resource") and message.location.get("url") == page.url
    if message.type == "error" and not document:
        WRONG.append(f"the browser said: {message.text} ({message.location.get('url')})")


def shot(page: Page, name: str) -> None:
    if not SHOOTING[0]:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def kpi(page: Page, name: str) -> str:
    return page.locator(f'[data-kpi="{name}"] .value').first.inner_text()


def chart_values(page: Page, metric: str) -> list[str]:
    return page.locator(f'[data-chart="{metric}"] desc.value').all_text_contents()


def go(page: Page, target: Locator) -> None:
    """Follow a link or submit a form and wait for the page it loads.

    A click only waits for the navigation to start: read at once, the table may be the old
    page's or, mid-load, none.
    """
    with page.expect_navigation():
        target.click()


def sticking_out(page: Page) -> list[str]:
    """The elements wider than the screen, outside the tables' own scrolling boxes."""
    found: list[str] = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))"
        ".map(e => `${e.tagName}#${e.id}`)"
    )
    return found


def table(page: Page) -> list[list[str]]:
    rows = page.locator("table.report tbody tr")
    return [[c.strip() for c in row.locator("td").all_inner_texts()] for row in rows.all()]


def test_each_role_signs_in_to_its_own_pages_and_signs_out(
    chromium: Browser, client: Client, seeded: Seeded
) -> None:
    expected_nav = {
        "boss": [
            "Overview",
            "Reports",
            "Conversions",
            "Players",
            "Postback log",
            "Diagnosis",
            "Tester",
            "Links",
            "Statements",
            "Outbound",
            "Deliveries",
            "Advertisers",
            "Offers",
            "Affiliates",
            "Manage links",
            "Reconciliations",
            "Users",
        ],
        "alice": [
            "Overview",
            "Reports",
            "Conversions",
            "Players",
            "Links",
            "Statements",
            "Outbound",
            "Deliveries",
        ],
        "northstar": ["Overview", "Conversions", "Postback log", "Diagnosis", "Tester"],
    }
    for login, nav in expected_nav.items():
        page = signed_in(chromium, client, login)
        assert page.locator("header nav a").all_inner_texts() == nav
        if login == "northstar":
            # An advertiser's overview: their offers and each one's integration guide.
            expect(page.get_by_role("cell", name="Northstar Casino (#1)")).to_be_visible()
            expect(page.get_by_role("cell", name="Southgate Poker", exact=False)).to_have_count(0)
            page.get_by_role("link", name="Guide").first.click()
            expect(page.locator("pre.guide")).to_contain_text(f"token={seeded.world.token}")
            page.goto("/postbacks")
            expect(page.locator("tbody tr")).to_have_count(4)
            shot(page, "postback-log")
            page.get_by_role("link", name="Diagnosis").click()
            assert [kpi(page, k) for k in ("postbacks", "accepted", "rejected")] == ["4", "4", "0"]
            shot(page, "diagnosis")
            page.get_by_role("link", name="Tester").click()
            page.get_by_role("button", name="Make a test click").click()
            page.get_by_label("Event").select_option("registration")
            page.get_by_role("button", name="Fire the postback").click()
            expect(page.locator("[data-result]")).to_have_attribute("data-result", "accepted")
            shot(page, "tester")
            page.goto("/reports")
            expect(page.get_by_role("alert")).to_have_text("This page is not open to you.")
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(f"{client.node.base_url}/login")
        page.goto("/")
        expect(page).to_have_url(f"{client.node.base_url}/login")
        if login == "boss":
            shot(page, "login")
        page.context.close()


def test_the_overview_shows_the_seeded_figures_and_a_hostile_sub_id_as_text(
    chromium: Browser, client: Client, seeded: Seeded
) -> None:
    page = signed_in(chromium, client, "boss")

    assert [kpi(page, k) for k in ("clicks", "registrations", "ftds")] == ["6", "3", "1"]
    # The offer's payouts: 1.50 a registration, 50 an FTD.
    assert kpi(page, "revenue") == "54.50 EUR"
    # A chart a day for the last 7 days: nothing before today.
    assert chart_values(page, "clicks") == ["0"] * 6 + ["6"]
    assert chart_values(page, "registrations") == ["0"] * 6 + ["3"]
    assert page.locator("figure.chart svg").count() == 5
    top_sub1 = page.locator('[data-top="sub1"] tbody tr td:first-child').all_inner_texts()
    assert top_sub1 == ["spring", "(none)", HOSTILE]
    assert page.locator('[data-top="sub1"] script').count() == 0
    shot(page, "overview")

    # An affiliate's overview is of their own traffic, without the network's revenue.
    alice = signed_in(chromium, client, "alice", PHONE)
    assert [kpi(alice, k) for k in ("clicks", "registrations", "ftds")] == ["4", "2", "1"]
    assert alice.locator('[data-kpi="revenue"]').count() == 0
    assert chart_values(alice, "clicks")[-1] == "4"
    # Usable on a phone: nothing wider than the screen but the tables' own scrolling boxes.
    assert alice.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(alice, "overview-phone")


def test_the_report_builder_groups_drills_down_sorts_and_downloads_what_it_shows(
    chromium: Browser, client: Client, seeded: Seeded
) -> None:
    page = signed_in(chromium, client, "boss")
    go(page, page.get_by_role("link", name="Reports"))
    assert [r[1] for r in table(page)] == ["6"]  # by day: today, 6 clicks

    page.locator('select[name="by"]').first.select_option("offer")
    go(page, page.get_by_role("button", name="Show"))
    assert [r[:2] for r in table(page)] == [["Northstar Casino (#1)", "6"]]
    assert "by=offer" in page.url  # the state is in the URL: it can be bookmarked

    # Drill-down: the offer becomes a filter, the rows its affiliates.
    go(page, page.get_by_role("link", name="Northstar Casino (#1)"))
    expect(page.locator(".chip")).to_contain_text("offer = Northstar Casino (#1)")
    assert sorted(r[:2] for r in table(page)) == [["Alice Media (#1)", "4"], ["Bob Traffic (#2)", "2"]]
    go(page, page.get_by_role("link", name="clicks", exact=True))
    assert [r[0] for r in table(page)] == ["Alice Media (#1)", "Bob Traffic (#2)"]
    go(page, page.get_by_role("link", name="clicks ▼", exact=True))
    assert [r[0] for r in table(page)] == ["Bob Traffic (#2)", "Alice Media (#1)"]
    totals = page.locator("table.report tfoot td").all_inner_texts()
    shot(page, "reports")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    lines = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    head, body, total = lines[0], lines[1:-1], lines[-1]
    clicks, registrations = head.index("clicks"), head.index("registrations")
    by_affiliate = {row[1]: (row[clicks], row[registrations]) for row in body}
    shown = {r[0]: (r[1], r[3]) for r in table(page)}
    assert by_affiliate == {"1": shown["Alice Media (#1)"], "2": shown["Bob Traffic (#2)"]}
    assert (total[0], total[clicks], total[registrations]) == ("total", totals[0], totals[2])

    # Down to Alice's sub IDs: the script among them is a value, shown as text.
    go(page, page.get_by_role("link", name="Alice Media (#1)"))
    page.locator('select[name="by"]').first.select_option("sub1")
    go(page, page.get_by_role("button", name="Show"))
    assert sorted(r[0] for r in table(page)) == [HOSTILE, "spring"]


def test_a_wrong_value_in_the_url_is_named_not_a_failure(
    chromium: Browser, client: Client, seeded: Seeded
) -> None:
    page = signed_in(chromium, client, "boss")
    response = page.goto("/reports?from=2026-13-45&zone=Mars/Base&by=planet&sort=-nothing&page=x")
    assert response is not None and response.status == 200
    alerts = page.get_by_role("alert").all_inner_texts()
    assert [a.split(":")[0] for a in alerts] == ["from", "zone", "by", "sort", "page"]
    assert [r[1] for r in table(page)] == ["6"]

    # The first days a report may cover: no period before them to compare with.
    first = page.goto("/?from=1970-01-02&to=1970-01-05&zone=Nowhere/Land")
    assert first is not None and first.status == 200
    assert [a.split(":")[0] for a in page.get_by_role("alert").all_inner_texts()] == ["zone"]
    assert (
        kpi(page, "clicks") == "0" and page.locator(".kpi .change").first.inner_text() == "no figures before"
    )

    listed = page.goto("/conversions?from=yesterday&status=lost&planet=mars")
    assert listed is not None and listed.status == 200
    named = [a.split(":")[0] for a in page.get_by_role("alert").all_inner_texts()]
    assert sorted(named) == ["from", "planet", "status"]
    expect(page.locator("tbody tr")).to_have_count(4)  # every conversion: the filters were dropped


def test_a_long_report_pages(chromium: Browser, client: Client, seeded: Seeded) -> None:
    page = signed_in(chromium, client, "boss")
    page.goto("/reports?by=sub1&sort=-clicks&rows=1")
    assert [r[0] for r in table(page)] == ["spring"]
    expect(page.get_by_text("Page 1 of 3")).to_be_visible()
    go(page, page.get_by_role("link", name="Next"))
    assert [r[0] for r in table(page)] == ["(none)"]
    go(page, page.get_by_role("link", name="Next"))
    assert [r[0] for r in table(page)] == [HOSTILE]
    expect(page.get_by_role("link", name="Next")).to_have_count(0)
    # The totals are the whole report's, whatever the page.
    assert page.locator("table.report tfoot td").first.inner_text() == "6"


def test_an_affiliate_sees_their_own_records_and_not_another_affiliates_by_editing_the_url(
    chromium: Browser, client: Client, seeded: Seeded
) -> None:
    page = signed_in(chromium, client, "alice")
    page.get_by_role("link", name="Conversions").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    shot(page, "conversions")
    page.get_by_role("link", name=str(seeded.alice_conversion), exact=True).click()
    expect(page.get_by_role("heading", name=f"Conversion {seeded.alice_conversion}")).to_be_visible()
    expect(page.get_by_role("heading", name="Postbacks")).to_have_count(0)  # the advertiser's
    shot(page, "conversion")

    response = page.goto(f"/conversions/{seeded.bob_conversion}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("alert")).to_have_text(f"conversion {seeded.bob_conversion} does not exist.")
    # Asking the report builder for Bob's traffic gives her own.
    page.goto(f"/reports?by=offer&affiliate={seeded.world.bob['id']}")
    assert [r[:2] for r in table(page)] == [["Northstar Casino (#1)", "4"]]
    assert "revenue" not in page.locator("table.report thead").inner_text()
    # Another advertiser's offer named in the URL: its id, not its name.
    rival = seeded.world.rival_offer["id"]
    page.goto(f"/reports?offer={rival}")
    expect(page.locator(".chip")).to_contain_text(f"offer = #{rival}")
    assert "Southgate" not in page.content()

    page.goto("/links")
    expect(page.locator("code[id^=link-]")).to_have_count(2)  # her casino and sportsbook links
    page.get_by_label("sub1").fill("{zoneid}")
    page.get_by_role("button", name="Build").click()
    built = f"http://127.0.0.1/c/{seeded.world.alice_casino}?sub1={{zoneid}}"
    expect(page.locator("#built")).to_have_text(built)
    shot(page, "links")
    # The copy button (our one script) puts it on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.locator('button.copy[data-copy="built"]')
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == built

    page.get_by_role("link", name="Statements").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    head = next(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert page.locator("table.statement thead th").all_inner_texts() == head
    shot(page, "statement")

    # Her outbound postbacks: one added by the form, for her tracker.
    page.get_by_role("link", name="Outbound", exact=True).click()
    page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/pb?cid={clickid}&s={status}")
    page.get_by_label("Events", exact=True).fill("registration, first_deposit")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("first_deposit, registration")
    expect(page.locator("tbody tr code")).to_have_text("http://127.0.0.1:9/pb?cid={clickid}&s={status}")
    shot(page, "outbound")


def test_a_manager_edits_an_offers_url_in_the_browser_and_the_next_click_goes_there(
    chromium: Browser, client: Client, seeded: Seeded
) -> None:
    world = seeded.world
    page = signed_in(chromium, client, "boss")
    go(page, page.get_by_role("link", name="Offers", exact=True))
    go(page, page.get_by_role("link", name="Northstar Casino", exact=True))
    form = page.locator('form[data-form="edit"]')
    url = form.get_by_label("URL template")
    expect(url).to_have_value(world.casino["url_template"])

    # A URL the API refuses: the form comes back with it, the problem beside the field.
    url.fill("ftp://casino.example.com/?c={click_id}")
    go(page, form.get_by_role("button", name="Save"))
    expect(page.locator("#edit-url_template-problem")).to_contain_text("http:// or https://")
    expect(form.get_by_label("URL template")).to_have_value("ftp://casino.example.com/?c={click_id}")
    assert "casino.example.com/go" in client.http.get(f"/c/{world.alice_casino}").headers["location"]

    new = "https://new.example.org/land?id={click_id}&s={sub1}"
    form.get_by_label("URL template").fill(new)
    go(page, form.get_by_role("button", name="Save"))
    expect(page.locator("#edit-url_template-problem")).to_have_count(0)
    expect(page.locator('table.history tr[data-action="edit"]').first).to_contain_text(new)
    # The next click of a link of the offer, through the tracking endpoint, goes to the new URL:
    # the change reloaded the catalog the click path reads.
    location = client.http.get(f"/c/{world.alice_casino}", params={"sub1": "a"}).headers["location"]
    assert location.startswith("https://new.example.org/land?id=") and location.endswith("&s=a")
    shot(page, "offer-edit")
    # Usable on a phone: nothing wider than the screen but the tables' own scrolling boxes.
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), sticking_out(page)


def test_an_affiliate_edits_an_outbound_postback_and_replays_a_delivery_that_failed(
    chromium: Browser, client: Client
) -> None:
    world = make_world(client)
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    with receiving() as receiver:
        receiver.script = [Answer(400, b"unknown subid")]  # permanent: the delivery fails
        template = add_template(client, world, receiver.url("/pb?subid={subid}"))["id"]
        convert(client, world)
        receiver.wait_for(1)
        delivery = eventually(lambda: client.items("/outbound/deliveries", state="failed"))[0]["id"]

        page = signed_in(chromium, client, "alice")
        page.goto("/outbound")
        go(page, page.get_by_role("link", name=f"#{template}"))
        page.get_by_label("Name").fill("Keitaro")
        page.get_by_label("approved").check()
        go(page, page.get_by_role("button", name="Save"))
        expect(page.get_by_label("Name")).to_have_value("Keitaro")
        expect(page.locator("table.history tbody tr").first).to_contain_text("edit")
        shot(page, "outbound-template")

        page.goto("/deliveries")
        go(page, page.locator(f'a[href="/deliveries/{delivery}"]'))
        expect(page.locator("table.attempts tbody tr")).to_have_count(1)
        expect(page.locator("table.attempts tbody tr")).to_contain_text("unknown subid")
        go(page, page.get_by_role("button", name="Send again"))
        receiver.wait_for(2)  # the replay reached the tracker, which answers 200 now
        eventually(lambda: client.items("/outbound/deliveries", state="delivered"))
        page.reload()
        expect(page.locator("[data-state]")).to_have_text("delivered")
        rows = page.locator("table.attempts tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(1).locator("td").nth(1)).to_have_text("200")
        expect(page.locator("table.history tbody tr").first).to_contain_text("replay")
        shot(page, "delivery")
        page.context.close()


def test_a_manager_uploads_an_operators_report_checks_its_mapping_and_accepts_an_item(
    chromium: Browser, client: Client, seeded: Seeded
) -> None:
    world = seeded.world
    # Alice's click reached the operator; its registration and first deposit never came back.
    lost = client.click(world.alice_casino)
    client.flush()
    today = datetime.now(UTC).date()
    report = "User ID,afp,Registration Date,FTD Date,FTD Amount,Deposits,Currency\r\n"
    report += f"C-1,{lost},{today},{today},50.00,50.00,EUR\r\n"
    file = {"name": "cellxpert.csv", "mimeType": "text/csv", "buffer": report.encode()}

    page = signed_in(chromium, client, "boss")
    go(page, page.get_by_role("link", name="Reconciliations"))
    form = page.locator('form[data-form="upload"]')
    form.get_by_label("Advertiser").select_option(label="Northstar Gaming (#1)")
    form.get_by_label("File", exact=False).set_input_files(file)
    go(page, form.get_by_role("button", name="Import"))
    # Northstar has no saved mapping: the preview comes first, with the header's proposal.
    expect(page.locator("[data-note]")).to_contain_text("no saved mapping yet")
    expect(page.locator('table.preview-rows tr[data-line="2"]')).to_contain_text("C-1")
    expect(form.get_by_label("player_id")).to_have_value("User ID")
    expect(form.get_by_label("tracking_code")).to_have_value("afp")
    expect(form.get_by_label("Advertiser")).to_have_value(str(world.northstar["id"]))
    shot(page, "reconciliation-preview")
    form.get_by_label("File", exact=False).set_input_files(file)
    go(page, form.get_by_role("button", name="Import with this mapping"))

    expect(page.get_by_role("heading", name="cellxpert.csv")).to_be_visible()
    go(page, page.get_by_role("link", name="missing_in_clickback (1)"))
    item = page.locator('article.item[data-player="C-1"]')
    expect(item.locator('tr[data-field="deposits"] td').first).to_have_text("50.00")
    go(page, item.get_by_role("button", name="Accept the operator's figure"))
    expect(item.locator("[data-accepted]")).to_contain_text("Accepted by boss at")
    booked = item.locator("table.booked tbody tr")
    expect(booked).to_have_count(2)
    expect(booked.nth(1)).to_contain_text("first_deposit")
    shot(page, "reconciliation")
    ftd = booked.nth(1).get_by_role("link").inner_text()
    go(page, booked.nth(1).get_by_role("link"))
    expect(page.get_by_role("heading", name=f"Conversion {ftd}")).to_be_visible()
    facts = page.locator("dl.facts").inner_text()
    assert "first_deposit" in facts and "C-1" in facts and lost in facts
    page.context.close()
