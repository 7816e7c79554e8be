"""The manager's catalog pages over HTTP (the browser's part is in test_dashboard.py): each form
creates or edits through the API's own checks, a refused value comes back in the form with its
problem beside the field, nothing runs without the session's CSRF token or for another role, and
every change is in the audit log under the manager's login."""

import html
import re
from typing import Any

import httpx
import pytest

from clickback.core.accounts import Role
from clickback.core.audit import SYSTEM
from clickback.service.accounts import SignedIn
from clickback.service.clock import utcnow
from clickback.store import admin
from tests.conftest import Client, World
from tests.web.personas import PASSWORD, add_user


@pytest.fixture
def boss(client: Client, world: World) -> "Browser":
    add_user(client, "boss", Role.MANAGER)
    return Browser(client, "boss")


class Browser:
    """A signed-in person's requests: their session cookie, and the CSRF token their pages carry."""

    def __init__(self, client: Client, login: str) -> None:
        runtime = client.node.runtime
        signed = client.node.call(lambda: runtime.accounts.sign_in(login, PASSWORD, "127.0.0.1"))
        assert isinstance(signed, SignedIn)
        self.client = client
        self.headers = {"cookie": f"cb_session={signed.token}"}
        self.csrf = ""

    def get(self, path: str) -> httpx.Response:
        page = self.client.http.get(path, headers=self.headers)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        self.csrf = found.group(1) if found else self.csrf
        return page

    def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        if csrf and not self.csrf:
            self.get(path)
        body = {"csrf": self.csrf, **data} if csrf else data
        return self.client.http.post(path, data=body, headers=self.headers)


def audit(client: Client, kind: str, item_id: int) -> list[dict[str, Any]]:
    return client.items("/audit", entity_kind=kind, entity_id=item_id)


def problem(page: httpx.Response, form: str, field: str) -> str:
    found = re.search(rf'id="{form}-{field}-problem" role="alert">([^<]*)<', page.text)
    assert found, f"no problem shown beside {form}.{field}: {page.text[-3000:]}"
    return html.unescape(found.group(1))


def typed(page: httpx.Response, form: str, field: str) -> str:
    """What the page's form holds in the field (an input's value, a textarea's text)."""
    inp = re.search(rf'id="{form}-{field}"[^>]*value="([^"]*)"', page.text)
    area = re.search(rf'id="{form}-{field}"[^>]*>([^<]*)</textarea>', page.text)
    found = inp or area
    assert found, f"no field {form}.{field}"
    return html.unescape(found.group(1))


def test_a_manager_creates_an_offer_then_edits_its_url_and_payouts_audited(
    client: Client, world: World, boss: Browser
) -> None:
    created = boss.post(
        "/catalog/offers",
        {
            "advertiser_id": str(world.northstar["id"]),
            "name": "Northstar Slots",
            "url_template": "https://slots.example.com/?c={click_id}",
            "currency": "usd",
            "payouts": "registration = 2\nfirst_deposit: 40.5",
            "custom_events": "vip_level, bonus_claim",
            "vertical": "casino",
        },
    )
    assert created.status_code == 303, created.text
    offer_id = int(created.headers["location"].rsplit("/", 1)[1])
    offer = client.api("GET", f"/offers/{offer_id}")
    assert (offer["name"], offer["currency"], offer["payouts"], offer["custom_events"]) == (
        "Northstar Slots",
        "USD",
        {"registration": "2.00", "first_deposit": "40.50"},
        ["bonus_claim", "vip_level"],
    )
    # The vertical's preset deal came with it, as through the API.
    assert client.items(f"/offers/{offer_id}/deals")[0]["kind"] == "hybrid"

    page = boss.get(f"/catalog/offers/{offer_id}")
    assert typed(page, "edit", "payouts") == "registration = 2\nfirst_deposit = 40.5"
    edited = boss.post(
        f"/catalog/offers/{offer_id}",
        {
            "form": "edit",
            "name": "Northstar Slots",
            "url_template": "https://new.example.org/land?id={click_id}",
            "currency": "USD",
            "payouts": "registration = 2\nfirst_deposit = 45",
            "custom_events": "vip_level, bonus_claim",
        },
    )
    assert edited.status_code == 303 and edited.headers["location"] == f"/catalog/offers/{offer_id}"
    assert (
        client.api("GET", f"/offers/{offer_id}")["url_template"]
        == "https://new.example.org/land?id={click_id}"
    )
    [entry] = [e for e in audit(client, "offer", offer_id) if e["action"] == "edit"]
    assert entry["actor"] == "boss"
    assert entry["before"] == {
        "url_template": "https://slots.example.com/?c={click_id}",
        "payouts": {"registration": "2", "first_deposit": "40.5"},
    }
    assert entry["after"]["url_template"] == "https://new.example.org/land?id={click_id}"
    # The offer's page shows the change: who, the field, before and after.
    shown = boss.get(f"/catalog/offers/{offer_id}").text
    history = shown.split('id="history"')[1]
    assert 'data-action="edit"' in history and "boss" in history
    assert "https://slots.example.com/?c={click_id}" in html.unescape(history)
    assert 'data-warning="click_id"' not in shown

    # A URL without the click ID is the API's to accept (a pixel offer does without): a warning.
    bare = {
        "form": "edit",
        "name": "Northstar Slots",
        "url_template": "https://new.example.org/land",
        "currency": "USD",
        "payouts": "registration = 2",
    }
    assert boss.post(f"/catalog/offers/{offer_id}", bare).status_code == 303
    assert 'data-warning="click_id"' in boss.get(f"/catalog/offers/{offer_id}").text


# A refused value of the offer's edit form, the field its problem is shown beside, and words of it.
REFUSED_OFFERS = [
    ("url_template", "ftp://casino.example.com/?c={click_id}", "url_template", "http:// or https://"),
    ("url_template", "https://casino.example.com/?c={clickid2}", "url_template", "unknown macro"),
    ("url_template", "https://{sub1}.example.com/?c={click_id}", "url_template", "host"),
    ("payouts", "registration = -1", "payouts", "non-negative"),
    ("payouts", "registration = lots", "payouts", "decimal"),
    ("payouts", "just words", "payouts", "event = amount"),
    ("payouts", "no_such_event = 1", "payouts", "neither standard nor custom"),
    ("currency", "EURO", "currency", "at most 3 characters"),
    ("currency", "XYZ", "currency", "ISO 4217"),
    ("name", "", "name", "at least 1"),
    ("custom_events", "vip_level, 9lives", "custom_events", "letters, digits and underscores"),
]


def test_a_refused_offer_edit_keeps_what_was_typed_and_names_the_problem_beside_its_field(
    client: Client, world: World, boss: Browser
) -> None:
    offer_id = world.casino["id"]
    base = {
        "form": "edit",
        "name": "Northstar Casino",
        "url_template": world.casino["url_template"],
        "currency": "EUR",
        "payouts": "registration = 1.50\nfirst_deposit = 50",
        "custom_events": "vip_level",
    }
    boss.get(f"/catalog/offers/{offer_id}")
    for name, value, field, words in REFUSED_OFFERS:
        page = boss.post(f"/catalog/offers/{offer_id}", base | {name: value})
        assert page.status_code == 400, (name, value, page.status_code)
        assert words in problem(page, "edit", field), (name, value, problem(page, "edit", field))
        assert typed(page, "edit", name) == value
        assert 'aria-invalid="true"' in page.text
    assert client.api("GET", f"/offers/{offer_id}")["url_template"] == world.casino["url_template"]
    assert [e["action"] for e in audit(client, "offer", offer_id)] == ["create"]
    # The create form the same way, the advertiser kept as chosen.
    page = boss.post(
        "/catalog/offers",
        {
            "advertiser_id": str(world.southgate["id"]),
            "name": "x",
            "url_template": "javascript:alert(1)//x",
            "currency": "EUR",
        },
    )
    assert page.status_code == 400 and "http:// or https://" in problem(page, "create", "url_template")
    assert f'<option value="{world.southgate["id"]}" selected>' in page.text
    assert typed(page, "create", "url_template") == "javascript:alert(1)//x"


def test_the_deal_and_caps_are_edited_on_the_offers_page_and_shown_in_its_history(
    client: Client, world: World, boss: Browser
) -> None:
    offer_id = world.casino["id"]
    path = f"/catalog/offers/{offer_id}"
    deal = {"form": "deal", "affiliate_id": "0", "kind": "cpa", "currency": "EUR", "amount": "40"}
    done = boss.post(path, deal | {"ftd_min": "20", "hold_days": "7", "require_registration": "1"})
    assert done.status_code == 303, done.text
    [stored] = client.items(f"/offers/{offer_id}/deals")
    assert (
        stored["kind"],
        stored["cpa"]["amount"],
        stored["cpa"]["ftd_min"],
        stored["cpa"]["hold_days"],
    ) == (
        "cpa",
        "40.00",
        "20.00",
        7,
    )
    # Hybrid needs RevShare terms: refused by the API's own rule, beside the percent.
    page = boss.post(path, deal | {"kind": "hybrid"})
    assert page.status_code == 400 and "revshare" in problem(page, "deal", "percent")
    page = boss.post(path, deal | {"amount": "-5"})
    assert page.status_code == 400 and "greater than or equal to 0" in problem(page, "deal", "amount")
    assert typed(page, "deal", "amount") == "-5"
    page = boss.post(path, deal | {"amount": "10.005"})
    assert page.status_code == 400 and "EUR" in problem(page, "deal", "amount")
    # Alice's own RevShare deal.
    alice = {"affiliate_id": str(world.alice["id"]), "kind": "revshare", "amount": "", "percent": "35"}
    assert boss.post(path, deal | alice).status_code == 303
    own = client.items(f"/offers/{offer_id}/deals")[1]
    assert (own["affiliate_id"], own["kind"], own["revshare"]["percent"], own["cpa"]) == (
        world.alice["id"],
        "revshare",
        "35",
        None,
    )

    cap = {"form": "cap-new", "affiliate_id": "0", "daily": "5", "total": "100", "zone": "Europe/Berlin"}
    assert boss.post(path, cap).status_code == 303
    page = boss.post(path, cap | {"zone": "Mars/Base"})
    assert page.status_code == 400 and "Mars/Base" in problem(page, "cap-new", "zone")
    page = boss.post(path, cap | {"daily": "-1"})
    assert page.status_code == 400 and "greater than or equal to 0" in problem(page, "cap-new", "daily")
    row = {"form": "cap-0", "affiliate_id": "0", "daily": "5", "total": "100", "zone": "Europe/Berlin"}
    assert boss.post(path, row | {"daily": "8"}).status_code == 303
    [c] = client.items(f"/offers/{offer_id}/caps")
    assert (c["daily"], c["total"], c["zone"]) == (8, 100, "Europe/Berlin")
    assert boss.post(path, row | {"action": "remove"}).status_code == 303
    [c] = client.items(f"/offers/{offer_id}/caps")
    assert (c["daily"], c["total"]) == (None, None)

    kinds = {(e["entity_kind"], e["actor"]) for e in client.items("/audit", actor="boss")}
    assert kinds == {("deal", "boss"), ("cap", "boss")}
    history = boss.get(path).text.split('id="history"')[1]
    assert "deal #" in history and "cap #" in history


def test_advertisers_affiliates_and_links_are_created_edited_and_archived_audited(
    client: Client, world: World, boss: Browser
) -> None:
    made = boss.post("/catalog/advertisers", {"name": "Eastwind"})
    advertiser = int(made.headers["location"].rsplit("/", 1)[1])
    assert (
        boss.post(f"/catalog/advertisers/{advertiser}", {"form": "edit", "name": "Eastwind Ltd"}).status_code
        == 303
    )
    assert (
        boss.post(f"/catalog/advertisers/{advertiser}", {"form": "status", "status": "paused"}).status_code
        == 303
    )
    # An advertiser is paused, never archived (the API's rule).
    page = boss.post(f"/catalog/advertisers/{advertiser}", {"form": "status", "status": "archived"})
    assert page.status_code == 400 and "active" in problem(page, "status", "status")
    assert client.api("GET", f"/advertisers/{advertiser}")["name"] == "Eastwind Ltd"
    assert [e["action"] for e in audit(client, "advertiser", advertiser)] == ["status", "edit", "create"]

    made = boss.post("/catalog/affiliates", {"name": "Carol Ads"})
    affiliate = int(made.headers["location"].rsplit("/", 1)[1])
    page = boss.post(f"/catalog/affiliates/{affiliate}", {"form": "edit", "name": "x" * 201})
    assert page.status_code == 400 and "at most 200" in problem(page, "edit", "name")
    assert boss.post(f"/catalog/affiliates/{affiliate}", {"form": "edit", "name": "Carol"}).status_code == 303

    link = {"affiliate_id": str(affiliate), "offer_id": str(world.casino["id"]), "campaign": "spring"}
    made = boss.post("/catalog/links", link)
    assert made.status_code == 303, made.text
    link_id = int(made.headers["location"].rsplit("/", 1)[1])
    code = client.api("GET", f"/links/{link_id}")["code"]
    assert client.http.get(f"/c/{code}").status_code == 302
    assert boss.post(f"/catalog/links/{link_id}", {"form": "edit", "campaign": "autumn"}).status_code == 303
    assert boss.post(f"/catalog/links/{link_id}", {"form": "status", "status": "archived"}).status_code == 303
    refused = client.http.get(f"/c/{code}")  # the catalog reloaded with the change
    assert (refused.status_code, refused.headers["x-clickback-reason"]) == (410, "link_archived")
    assert [(e["action"], e["after"]) for e in audit(client, "link", link_id)][:2] == [
        ("status", {"status": "archived"}),
        ("edit", {"campaign": "autumn"}),
    ]
    page = boss.get(f"/catalog/links/{link_id}")
    assert "autumn" in page.text and "data-status>archived<" in page.text

    # A link for an archived affiliate, or one that does not exist: named beside its field.
    assert (
        boss.post(f"/catalog/affiliates/{affiliate}", {"form": "status", "status": "archived"}).status_code
        == 303
    )
    page = boss.post("/catalog/links", link)
    assert page.status_code == 400 and "archived" in page.text
    page = boss.post("/catalog/links", link | {"affiliate_id": "999999"})
    assert page.status_code == 400 and "does not exist" in problem(page, "create", "affiliate_id")
    page = boss.post("/catalog/links", link | {"offer_id": "nope"})
    assert page.status_code == 400 and "integer" in problem(page, "create", "offer_id")


def test_the_lists_and_a_rows_history_page(client: Client, world: World, boss: Browser) -> None:
    node = client.node
    for n in range(51):
        node.call(lambda n=n: admin.create_affiliate(node.runtime.db, f"Affiliate {n}", utcnow()))
    first = boss.get("/catalog/affiliates")
    assert first.text.count('href="/catalog/affiliates/') == 50
    older = re.search(r'href="(/catalog/affiliates\?cursor=[^"]+)" rel="next"', first.text)
    assert older
    second = boss.get(html.unescape(older.group(1)))
    assert second.text.count('href="/catalog/affiliates/') == 3  # Alice, Bob and 51: 53
    links = boss.get(f"/catalog/links?affiliate_id={world.alice['id']}&status=lost")
    assert links.status_code == 200 and "status:" in links.text
    assert links.text.count('href="/catalog/links/') == 2

    affiliate = world.bob["id"]
    for n in range(25):
        node.call(
            lambda n=n: admin.edit(node.runtime.db, "affiliates", affiliate, {"name": f"Bob {n}"}, SYSTEM)
        )
    page = boss.get(f"/catalog/affiliates/{affiliate}")
    assert page.text.count('data-action="edit"') == 20
    older = re.search(r'href="([^"]+)#history" rel="next">Older changes', page.text)
    assert older
    rest = boss.get(html.unescape(older.group(1)))
    assert rest.text.count('data-action="edit"') == 5 and 'data-action="create"' in rest.text
    # A cursor that is none of the log's: the newest changes again, not a failure.
    assert boss.get(f"/catalog/affiliates/{affiliate}?history=bogus").text.count('data-action="edit"') == 20


def test_a_form_without_the_token_of_another_role_or_malformed_changes_nothing_and_is_no_500(
    client: Client, world: World, boss: Browser
) -> None:
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    alice = Browser(client, "alice")
    offer = world.casino["id"]
    posts = {
        "/catalog/advertisers": {"name": "Nope"},
        "/catalog/affiliates": {"name": "Nope"},
        "/catalog/offers": {
            "advertiser_id": "1",
            "name": "Nope",
            "url_template": "https://x.example/?c={click_id}",
            "currency": "EUR",
        },
        "/catalog/links": {"affiliate_id": str(world.alice["id"]), "offer_id": str(offer)},
        f"/catalog/offers/{offer}": {"form": "edit", "name": "Nope"},
        f"/catalog/advertisers/{world.northstar['id']}": {"form": "edit", "name": "Nope"},
        f"/catalog/affiliates/{world.alice['id']}": {"form": "status", "status": "archived"},
    }
    before = client.items("/audit")
    alice.get("/outbound")  # a page of hers: her session's token
    assert alice.csrf and alice.csrf != boss.csrf
    for path, data in posts.items():
        assert boss.post(path, data, csrf=False).status_code == 403, path
        assert boss.post(path, data | {"csrf": "forged"}, csrf=False).status_code == 403, path
        # Alice's own session token: the pages are not hers.
        assert alice.post(path, data).status_code == 403, path
        assert alice.get(path).status_code == 403, path
    assert client.items("/audit") == before

    path = f"/catalog/offers/{world.casino['id']}"
    boss.get(path)
    odd: list[Any] = [
        {
            "form": "edit",
            "name": "a\x00b",
            "url_template": "https://x.example/\x00",
            "currency": "E\x00R",
        },
        {
            "form": "deal",
            "kind": "bitcoin",
            "amount": "1e309",
            "hold_days": "9" * 40,
            "affiliate_id": "9" * 30,
        },
        {"form": "deal", "kind": "hybrid", "amount": "NaN", "percent": "inf"},
        {"form": "cap-x", "affiliate_id": "-3", "daily": "1.5", "zone": "../../etc/passwd"},
        {"form": "status", "status": "deleted"},
        {"form": "edit", "payouts": "=\n=1\nregistration=" + "9" * 60},
    ]
    for data in odd:
        reply = boss.post(path, {k: str(v) for k, v in data.items()})
        assert reply.status_code == 400, (data, reply.status_code, reply.text[-500:])
    headers = boss.headers | {"content-type": "application/x-www-form-urlencoded"}
    for body in (b"csrf=" + boss.csrf.encode() + b"&name=\xff\xfe", b"x" * 20000, b"&".join([b"a=1"] * 100)):
        reply = client.http.post(path, content=body, headers=headers)
        assert reply.status_code == 400, (body[:40], reply.status_code)
    assert [e["action"] for e in audit(client, "offer", world.casino["id"])] == ["create"]
    # An id that is no row: 404, as a row that does not exist, posted to or not.
    for wrong in (
        "/catalog/offers/abc",
        "/catalog/offers/" + "9" * 20,
        "/catalog/links/0",
        "/catalog/affiliates/-1",
        "/catalog/advertisers/\u0661",
    ):
        assert boss.get(wrong).status_code == 404, wrong
        assert boss.post(wrong, {"form": "edit", "name": "x"}).status_code == 404, wrong


def test_a_links_cost_model_is_set_by_its_form_as_the_api_sets_it(
    client: Client, world: World, boss: Browser
) -> None:
    link = client.items("/links", affiliate_id=world.alice["id"], offer_id=world.casino["id"])[0]["id"]
    path = f"/catalog/links/{link}"
    cpc = {"form": "cost", "model": "cpc", "currency": "EUR", "amount": "0.05", "bots": "1"}
    assert boss.post(path, cpc).status_code == 303
    cost = client.api("GET", f"/links/{link}")["cost"]
    assert (cost["model"], cost["currency"], cost["amount"], cost["bots"]) == ("cpc", "EUR", "0.05", True)
    # Rates by country (the API's) are kept while the model stays CPC.
    client.api(
        "PUT", f"/links/{link}/cost", json={"model": "cpc", "currency": "EUR", "countries": {"DE": "0.1"}}
    )
    assert boss.post(path, cpc | {"amount": "0.07"}).status_code == 303
    assert client.api("GET", f"/links/{link}")["cost"]["countries"] == {"DE": "0.1"}

    for refused, field, words in (
        ({"model": "revshare", "percent": "30"}, "currency", "each commission's currency"),
        ({"model": "cpa", "amount": "20"}, "event", "names the event"),
        ({"model": "revshare", "currency": "", "percent": "300"}, "percent", "less than or equal to 100"),
        ({"model": "cpm", "currency": "EUR", "amount": ""}, "amount", "a rate is needed"),
        ({"model": "barter"}, "model", "Input should be"),
    ):
        page = boss.post(path, cpc | refused)
        assert page.status_code == 400, refused
        assert words in problem(page, "cost", field), (refused, problem(page, "cost", field))
        assert typed(page, "cost", "amount") == (cpc | refused)["amount"]
    assert boss.post(path, {"form": "cost", "model": "none"}).status_code == 303
    assert client.api("GET", f"/links/{link}")["cost"] is None
    actions = [e["action"] for e in audit(client, "link", link) if e["actor"] == "boss"]
    assert actions == ["cost", "cost", "cost"]


@pytest.mark.parametrize(
    "path",
    ["/conversions", "/players", "/postbacks", "/deliveries", "/catalog/offers", "/catalog/links"],
)
def test_a_cursor_that_is_not_the_lists_is_a_clear_400_not_a_500(boss: Browser, path: str) -> None:
    page = boss.get(f"{path}?cursor=x")
    assert page.status_code == 400 and "not one of this list" in page.text
    assert boss.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/conversions/2147483648", "/conversions/0", "/conversions/%C2%B2"])
def test_an_id_no_row_can_have_is_not_found(boss: Browser, path: str) -> None:
    # Past the database's INTEGER, PostgreSQL failed the query: a 500 until 2026-12-06.
    assert boss.get(path).status_code == 404
