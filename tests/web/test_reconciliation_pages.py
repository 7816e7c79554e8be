"""The reconciliation pages over HTTP (the browser's part is in test_dashboard.py): a manager's
alone; an upload through the API's own use case, previewed with its mapping when the advertiser
has none saved, then imported; the classes and their counts, every value escaped; the operator's
figure accepted once by the item's button; malformed, oversized and forged uploads refused."""

import html
import random
import re
from datetime import UTC, datetime

import httpx
import pytest

from clickback.core.accounts import Role
from clickback.web import reconcilepages
from tests.conftest import Client, World
from tests.web.personas import Browser, add_user, sign_in
from tests.web.test_reconciliation import CPA_100, myaffiliates_csv, player

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def boss(client: Client, world: World) -> Browser:
    add_user(client, "boss", Role.MANAGER)
    return sign_in(client, "boss")


def upload(page: Browser, data: bytes, name: str, csrf: bool = True, **fields: str) -> httpx.Response:
    form = fields | ({"csrf": page.csrf} if csrf else {})
    return page.client.http.post(
        "/reconciliations", files={"file": (name, data)}, data=form, headers={"cookie": page.cookie}
    )


def listed(page: Browser) -> list[str]:
    return re.findall(r'<tr data-id="(\d+)">', page.get("/reconciliations").text)


def hidden(reply: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', reply.text)
    assert found, f"no {name} in the page"
    return html.unescape(found.group(1))


def selected(reply: httpx.Response) -> dict[str, str]:
    """The preview's mapping: each field's select and the header chosen in it."""
    out = {}
    for field, options in re.findall(r'<select name="map_(\w+)">(.*?)</select>', reply.text):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        out[field] = html.unescape(chosen.group(1)) if chosen else ""
    return out


def class_counts(reply: httpx.Response) -> dict[str, int]:
    found = re.findall(
        r'<a href="/reconciliations/\d+\?kind=\w+" data-kind="(\w+)"[^>]*>\w+ \((\d+)\)', reply.text
    )
    return {kind: int(n) for kind, n in found}


def test_the_pages_are_a_managers_and_forms_need_the_token(
    client: Client, world: World, boss: Browser
) -> None:
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    add_user(client, "northstar", Role.ADVERTISER, advertiser_id=world.northstar["id"])
    assert boss.get("/reconciliations").status_code == 200
    assert 'href="/reconciliations"' in boss.get("/").text  # in the manager's navigation
    data = b"Player ID,NGR,Currency\r\nP-1,10.00,EUR\r\n"
    for login in ("alice", "northstar"):
        other = sign_in(client, login)
        assert other.get("/reconciliations").status_code == 403
        assert 'href="/reconciliations"' not in other.get("/").text
        refused = upload(other, data, "r.csv", advertiser_id=str(world.northstar["id"]), action="import")
        assert refused.status_code == 403
        assert other.get("/reconciliations/1").status_code == 403
        assert other.get("/reconciliations/1.csv").status_code == 403
        assert other.post("/reconciliations/1", {"item": "1"}).status_code == 403
    # Without the session's token (another site's form) nothing is imported.
    forged = upload(
        boss, data, "r.csv", csrf=False, advertiser_id=str(world.northstar["id"]), action="import"
    )
    assert forged.status_code == 403 and "The form expired" in forged.text
    assert listed(boss) == []
    assert boss.get("/reconciliations/999").status_code == 404
    assert boss.get("/reconciliations/x1").status_code == 404
    assert boss.get("/reconciliations/999.csv").status_code == 404


def test_malformed_and_oversized_uploads_are_refused_not_failures(
    client: Client, world: World, boss: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    cookie = {"cookie": boss.cookie}
    for content_type, body in (
        ("multipart/form-data", b"--x\r\nnothing"),  # no boundary
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nno end"),
        ("multipart/form-data; boundary=x", b"\xff\xfe garbage \x00"),
        ("multipart/form-data; boundary=x", b"--x\r\n" + b"A" * 70_000),  # a header line without end
    ):
        reply = client.http.post(
            "/reconciliations", content=body, headers=cookie | {"content-type": content_type}
        )
        assert reply.status_code in (400, 403), (content_type, body[:30], reply.status_code)
        assert reply.status_code != 500
    # With the token but broken: 400 with the page's sentence.
    token = f'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{boss.csrf}\r\n--x\r\n'.encode()
    broken = client.http.post(
        "/reconciliations",
        content=token + b'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nabc',
        headers=cookie | {"content-type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400 and "upload" in broken.text
    # A good upload cut anywhere, or with bytes changed: refused, never a failure.
    good = httpx.Request(
        "POST",
        "http://x/",
        files={"file": ("a.csv", b"Player ID,NGR\r\nP-1,1.00\r\n")},
        data={"csrf": boss.csrf, "advertiser_id": str(world.northstar["id"]), "action": "preview"},
    )
    body, content_type = good.read(), good.headers["content-type"]
    rnd = random.Random(15)
    for n in range(40):
        mutated = bytearray(body[: rnd.randrange(len(body))] if n % 2 else body)
        for _ in range(n % 4):
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        reply = client.http.post(
            "/reconciliations", content=bytes(mutated), headers=cookie | {"content-type": content_type}
        )
        assert reply.status_code in (200, 400, 403), (n, reply.status_code)
    # A field beyond our longest is no form of ours.
    longer = upload(boss, b"Player ID\r\nP\r\n", "a.csv", period="2026-11" * 1000, advertiser_id="1")
    assert longer.status_code == 400
    # A report far larger than any form of a page (24 KB) is read: the upload has the API's cap.
    lines = b"".join(b"P-%d,%d.00,EUR\r\n" % (n, n) for n in range(20_000))
    assert len(lines) > 300_000
    adv = str(world.northstar["id"])
    seen = upload(boss, b"Player ID,NGR,Currency\r\n" + lines, "big.csv", advertiser_id=adv, action="preview")
    assert seen.status_code == 200 and "Preview of big.csv" in seen.text
    # Over the API's cap for reports (made small here: sending 64 MB would only slow the test).
    monkeypatch.setattr(reconcilepages, "MAX_UPLOAD_BYTES", 2048)
    big = upload(
        boss, b"Player ID\r\n" + b"P\r\n" * 2000, "big.csv", advertiser_id=str(world.northstar["id"])
    )
    assert big.status_code == 413 and "The file is over" in big.text
    assert listed(boss) == []


def test_a_file_is_previewed_imported_with_its_mapping_and_shown_by_class_escaped(
    client: Client, world: World, boss: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    today = datetime.now(UTC).date()
    day, month = today.strftime("%d.%m.%Y"), today.strftime("%Y-%m")
    matched = player(client, world, "P-match", world.alice_casino, "50")
    player(client, world, "P-extra", world.alice_casino, "40")
    data = myaffiliates_csv(
        [
            ["P-match", matched, day, day, "50,00", "", "100,00", "", "EUR"],
            [HOSTILE, "x", day, day, "60,00", "", "100,00", "", "EUR"],
            ["P-bad", "x", day, day, "lots", "", "", "", "EUR"],
        ]
    )
    adv = str(world.northstar["id"])
    # A file that is no report: 400, the service's reason beside the form, what was typed kept.
    bad = upload(boss, b"PK\x03\x04junk", "x.xlsx", advertiser_id=adv, period=month, action="import")
    assert bad.status_code == 400 and "not an XLSX file" in bad.text
    assert f'value="{month}"' in bad.text and f'<option value="{adv}" selected>' in bad.text
    wrong = upload(boss, data, "m.csv", advertiser_id="999", action="import")
    assert wrong.status_code == 400 and "advertiser: choose" in wrong.text

    # Northstar has no saved mapping: an import shows the preview first, importing nothing.
    first = upload(boss, data, "myaffiliates.csv", advertiser_id=adv, period=month, action="import")
    assert first.status_code == 200 and "no saved mapping yet" in first.text
    assert listed(boss) == []
    mapping = selected(first)
    assert (mapping["player_id"], mapping["tracking_code"], mapping["ngr"]) == (
        "PLAYER_ID",
        "TOKEN",
        "NET_REVENUE",
    )
    assert html.escape(HOSTILE, quote=False) in first.text and HOSTILE not in first.text
    assert "deposits: &#39;lots&#39; is not an amount" in first.text
    previewed = hidden(first, "previewed")

    # Another file than the one previewed: previewed in its turn, not imported.
    form = {f"map_{f}": h for f, h in mapping.items()} | {
        "mapped": "1",
        "previewed": previewed,
        "advertiser_id": adv,
        "period": month,
        "date_order": "dmy",
        "action": "import",
    }
    other = upload(boss, data + b"\r\n", "other.csv", **form)
    assert other.status_code == 200 and "not the file previewed" in other.text
    # A mapping naming no player column: refused as the API refuses it.
    refused = upload(boss, data, "myaffiliates.csv", **form | {"map_player_id": ""})
    assert refused.status_code == 400 and "player_id" in html.unescape(refused.text)
    assert listed(boss) == []

    done = upload(boss, data, "myaffiliates.csv", **form | {"map_cpa": "CPA", "default_currency": "eur"})
    assert done.status_code == 303, done.text
    rid = int(done.headers["location"].rsplit("/", 1)[1])
    assert listed(boss) == [str(rid)]
    saved = client.api("GET", f"/advertisers/{adv}/reconciliation-mapping")
    assert saved["columns"]["player_id"] == "PLAYER_ID" and saved["currency"] == "EUR"
    row = re.search(rf'<tr data-id="{rid}">.*?</tr>', boss.get("/reconciliations").text)
    assert row and "myaffiliates.csv" in row.group(0) and '<td class="num">1</td>' in row.group(0)
    assert 'data-kind="missing_at_operator">missing_at_operator 1<' in row.group(0)

    page = boss.get(f"/reconciliations/{rid}")
    assert page.status_code == 200
    assert class_counts(page) == {
        "matched": 1,
        "missing_in_clickback": 1,
        "missing_at_operator": 1,
        "attributed_elsewhere": 0,
        "amount_differs": 0,
        "cpa_disagrees": 0,
    }
    assert html.escape(HOSTILE) in page.text and HOSTILE not in page.text
    assert "3 read, 2 imported, 0 skipped (imported before), 1 bad" in page.text
    assert "deposits: &#39;lots&#39; is not an amount" in page.text
    # The same file again is that reconciliation, said so.
    again = upload(boss, data, "again.csv", advertiser_id=adv, period=month, action="import")
    assert again.status_code == 303 and again.headers["location"] == f"/reconciliations/{rid}?duplicate=1"
    assert "reconciled before" in boss.get(f"/reconciliations/{rid}", duplicate="1").text

    only = boss.get(f"/reconciliations/{rid}", kind="missing_at_operator").text
    assert re.findall(
        r'<article class="item" id="item-\d+" data-kind="(\w+)" data-player="([^"]*)"', only
    ) == [("missing_at_operator", "P-extra")]
    # Its evidence: the conversions clickback recorded, each linked.
    ftd = [
        c["id"] for c in client.items("/conversions", player_id="P-extra") if c["event"] == "first_deposit"
    ]
    assert f'<a href="/conversions/{ftd[0]}">' in only
    assert boss.get(f"/reconciliations/{rid}", kind="teleport").text.count("kind: not a class") == 1
    csv_text = boss.get(f"/reconciliations/{rid}.csv")
    assert csv_text.headers["content-type"].startswith("text/csv") and "P-extra" in csv_text.text
    # Items a page at a time (one here), the class kept; a cursor not ours starts again.
    monkeypatch.setattr(reconcilepages, "PAGE_ROWS", 1)
    first_page = boss.get(f"/reconciliations/{rid}")
    after = re.search(r'<a href="(/reconciliations/\d+\?cursor=[^"]+)" rel="next">', first_page.text)
    assert after and len(item_ids(first_page)) == 1
    second_page = boss.client.http.get(html.unescape(after.group(1)), headers={"cookie": boss.cookie})
    assert len(item_ids(second_page)) == 1 and item_ids(second_page) != item_ids(first_page)
    lost = boss.get(f"/reconciliations/{rid}", cursor="bm90LWEtY3Vyc29y")
    assert lost.status_code == 200 and "cursor: not a page of this list" in lost.text
    assert item_ids(lost) == item_ids(first_page)
    monkeypatch.undo()
    as_json = boss.get(f"/reconciliations/{rid}.json").json()
    assert {it["player_id"]: it["kind"] for it in as_json["items"]}["P-extra"] == "missing_at_operator"
    assert as_json["reconciliation"]["id"] == rid and as_json["bad_lines"][0]["line"] == 4


def item_ids(page: httpx.Response) -> dict[str, int]:
    found = re.findall(
        r'<article class="item" id="item-(\d+)" data-kind="\w+" data-player="([^"]*)"', page.text
    )
    return {html.unescape(p): int(i) for i, p in found}


def test_accepting_an_items_operator_figure_books_it_once(
    client: Client, world: World, boss: Browser
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    cid = client.click(world.alice_casino)
    # A player of clickback's the operator does not list.
    theirs = client.click(world.alice_casino)
    client.flush()
    reply = client.postback(click_id=theirs, event="reg", player_id="P-x", token=world.token)
    assert reply.json()["result"] == "accepted"
    today = datetime.now(UTC).date()
    text = "User ID,afp,Registration Date,FTD Date,FTD Amount,Deposits,CPA,Currency\r\n"
    text += f"C-1,{cid},{today},{today},50.00,50.00,100.00,EUR\r\n"
    # The advertiser's mapping is saved: the import goes straight through.
    columns = {"player_id": "User ID", "tracking_code": "afp", "registration_date": "Registration Date",
               "ftd_date": "FTD Date", "ftd_amount": "FTD Amount", "deposits": "Deposits", "cpa": "CPA",
               "currency": "Currency"}  # fmt: skip
    client.api(
        "PUT", f"/advertisers/{world.northstar['id']}/reconciliation-mapping", json={"columns": columns}
    )
    # A file the saved mapping does not fit: its preview, with what its own header proposes.
    other = upload(boss, b"Player ID,NGR\r\nP-9,1.00\r\n", "o.csv", advertiser_id=str(world.northstar["id"]))
    assert other.status_code == 400 and "the file has no column &#39;User ID&#39;" in other.text
    assert "Correct the mapping" in other.text and selected(other)["player_id"] == "Player ID"
    done = upload(
        boss, text.encode(), "cellxpert.csv", advertiser_id=str(world.northstar["id"]), action="import"
    )
    assert done.status_code == 303, done.text
    here = done.headers["location"]
    page = boss.get(here)
    item = item_ids(page)["C-1"]
    assert 'data-kind="missing_in_clickback"' in page.text and "Accept the operator's figure" in page.text

    # Another reconciliation's page is not this item's.
    assert boss.post("/reconciliations/999", {"item": str(item)}).status_code == 404
    for wrong in ("0", "99999999999", "x", "\u0661"):  # none, past the column's range, not digits
        assert boss.post(here, {"item": wrong}).status_code == 404, wrong
    assert boss.post(here, {"item": str(item)}, csrf=False).status_code == 403
    accepted = boss.post(here, {"item": str(item), "kind": "missing_in_clickback"})
    assert accepted.status_code == 303
    assert accepted.headers["location"] == f"{here}?kind=missing_in_clickback#item-{item}"
    conversions = {c["event"]: c for c in client.items("/conversions", player_id="C-1")}
    assert {c["channel"] for c in conversions.values()} == {"recon"}
    shown = boss.get(here).text
    block = re.search(rf'<article class="item" id="item-{item}".*?</article>', shown, re.DOTALL)
    assert block is not None
    assert "Accepted by boss at " in block.group(0)
    for event in ("registration", "first_deposit"):
        assert f'<a href="/conversions/{conversions[event]["id"]}">' in block.group(0)
    assert "Accept the operator" not in block.group(0)

    again = boss.post(here, {"item": str(item)})
    assert again.status_code == 409
    assert f"item {item} was accepted by boss already" in again.text
    assert len(client.items("/conversions", player_id="C-1")) == len(conversions)
    entries = [e for e in client.items("/audit", entity_kind="reconciliation") if e["action"] == "accept"]
    assert [(e["actor"], e["after"]["player_id"]) for e in entries] == [("boss", "C-1")]

    # What the operator does not count: rejected by hand, the change shown on the item.
    extra = item_ids(page)["P-x"]
    assert boss.post(here, {"item": str(extra)}).status_code == 303
    [registration] = client.items("/conversions", player_id="P-x")
    assert registration["status"] == "rejected"
    block = re.search(
        rf'<article class="item" id="item-{extra}".*?</article>', boss.get(here).text, re.DOTALL
    )
    assert block is not None
    assert "registration rejected by hand" in block.group(0) and "<td>changed</td>" in block.group(0)
    assert f'<a href="/conversions/{registration["id"]}">' in block.group(0)


def test_the_advertisers_page_links_to_its_reconciliations(
    client: Client, world: World, boss: Browser
) -> None:
    adv = world.northstar["id"]
    assert f'href="/reconciliations?advertiser_id={adv}"' in boss.get(f"/catalog/advertisers/{adv}").text
    filtered = boss.get("/reconciliations", advertiser_id=str(adv))
    assert filtered.status_code == 200 and "advertiser = Northstar" in filtered.text
    assert "advertiser_id: not" in boss.get("/reconciliations", advertiser_id="x").text


def test_a_daily_report_booked_from_the_page_says_what_the_intake_made_of_it(
    client: Client, world: World, boss: Browser
) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    today = datetime.now(UTC).date()
    text = "Player ID,Stag,Sign Up At,First Deposit At,First Deposit Sum,Deposits Sum,Currency,"
    text += f"Transaction ID\r\nD-1,{cid},{today},{today},50.00,80.00,EUR,T-1\r\n"
    adv = str(world.northstar["id"])
    first = upload(boss, text.encode(), "daily.csv", advertiser_id=adv, book="1", action="import")
    assert first.status_code == 200 and 'name="book" value="1" checked' in first.text  # kept
    form = {f"map_{f}": h for f, h in selected(first).items()}
    form |= {"mapped": "1", "previewed": hidden(first, "previewed"), "advertiser_id": adv, "book": "1"}
    done = upload(boss, text.encode(), "daily.csv", **form | {"action": "import"})
    assert done.status_code == 303 and done.headers["location"].endswith("?booked=accepted%3D3")
    rid = done.headers["location"].split("?")[0].rsplit("/", 1)[1]
    shown = boss.get(f"/reconciliations/{rid}", booked="accepted=3").text
    assert "sent through the postback intake: accepted 3." in shown
    assert sorted(c["channel"] for c in client.items("/conversions", player_id="D-1")) == ["recon"] * 3


def test_only_items_the_service_can_accept_have_the_button(
    client: Client, world: World, boss: Browser
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    today = datetime.now(UTC).date()
    day, month = today.strftime("%d.%m.%Y"), today.strftime("%Y-%m")
    matched = player(client, world, "P-match", world.alice_casino, "50")
    player(client, world, "P-elsewhere", world.alice_casino, None)
    cpa = player(client, world, "P-cpa", world.alice_casino, "25")
    data = myaffiliates_csv(
        [
            ["P-match", matched, day, day, "50,00", "", "100,00", "", "EUR"],
            ["P-cpa", cpa, day, day, "25,00", "", "0,00", "", "EUR"],
            ["P-elsewhere", world.bob_casino, day, "", "", "", "", "", "EUR"],
            ["P-lost", "x", day, day, "60,00", "", "100,00", "", "EUR"],
        ]
    )
    reply = client.http.post(
        "/api/reconciliations",
        files={"file": ("m.csv", data)},
        data={"advertiser_id": str(world.northstar["id"]), "period": month},
        headers=client.auth,
    )
    assert reply.status_code == 200, reply.text
    here = f"/reconciliations/{reply.json()['reconciliation']['id']}"
    page = boss.get(here).text
    buttons = {
        player_id: "Accept the operator" in block
        for player_id, block in re.findall(
            r'<article class="item" id="item-\d+" data-kind="\w+" data-player="([^"]*)"(.*?)</article>',
            page,
            re.DOTALL,
        )
    }
    assert buttons == {"P-match": False, "P-elsewhere": False, "P-lost": True, "P-cpa": True}
    # A CPA disagreement's evidence: each of the deal's rules, whether it held, when, with what.
    checks = re.search(r'<table class="evidence" data-evidence="rule_checks">.*?</table>', page, re.DOTALL)
    assert checks is not None
    assert re.findall(r"<tr><td[^>]*>([^<]*)</td><td[^>]*>(\w+)</td>", checks.group(0)) == [
        ("registration", "True"),
        ("first deposit ≥ 20.00 EUR", "True"),
    ]
    assert f"held on {today}, 25.00 EUR" in checks.group(0)
    # Posted by hand all the same, the item's refusal is said beside it.
    elsewhere = item_ids(boss.get(here))["P-elsewhere"]
    refused = boss.post(here, {"item": str(elsewhere)})
    assert refused.status_code == 409 and "not moved by reconciliation" in refused.text


def test_the_page_shows_every_amount_as_the_api_does_at_its_currencys_decimals(
    client: Client, world: World, boss: Browser
) -> None:
    """The summary, an item's difference, its figures on both sides, its causes (amount and
    text) and the list's totals, in euros and in yen: as the API shows them (money_text), not
    as stored (four decimals)."""
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    today = datetime.now(UTC).date()
    month = today.strftime("%Y-%m")
    client.api(
        "POST", "/fx-rates", json={"base": "EUR", "quote": "JPY", "day": today.isoformat(), "rate": "160"}
    )
    euros = player(client, world, "P-eur", world.alice_casino, "100", chargeback="30")
    yen = player(client, world, "P-jpy", world.alice_casino, None)
    for event, amount in (("ftd", "16000"), ("chargeback", "3000")):
        reply = client.postback(
            event=event,
            player_id="P-jpy",
            payout=amount,
            currency="JPY",
            txn_id=f"{event}-jpy",
            token=world.token,
        )
        assert reply.json()["result"] == "accepted", reply.text
    text = "Player ID,BTAG,Deposits,CPA,Currency\r\n"
    text += f"P-eur,{euros},70,112.5,EUR\r\nP-jpy,{yen},13000,16500,JPY\r\n"
    reply = client.http.post(
        "/api/reconciliations",
        files={"file": ("two.csv", text.encode())},
        data={"advertiser_id": str(world.northstar["id"]), "period": month},
        headers=client.auth,
    )
    assert reply.status_code == 200, reply.text
    rid = reply.json()["reconciliation"]["id"]
    api = client.api("GET", f"/reconciliations/{rid}")
    by_player = {it["player_id"]: it for it in api["items"]["items"]}

    page = boss.get(f"/reconciliations/{rid}")
    assert page.status_code == 200
    items = dict(re.findall(r'data-player="([^"]*)">(.*?)</article>', page.text, re.DOTALL))
    expected = {
        "P-eur": (
            "12.50 EUR",
            "-30.00",
            "deposits: the operator nets 30.00 of chargebacks out",
            "70.00",
            "100.00",
        ),
        "P-jpy": (
            "500 JPY",
            "-3000",
            "deposits: the operator nets 3000 of chargebacks out",
            "13000",
            "16000",
        ),
    }
    for name, (difference, amount, detail, theirs, ours) in expected.items():
        shown, it = items[name], by_player[name]
        assert it["kind"] == "amount_differs"
        assert f"<strong data-difference>{difference}</strong>" in shown
        assert f"{it['difference']} {it['currency']}" == difference
        assert [(c["cause"], c["amount"], c["detail"]) for c in it["causes"]] == [
            ("chargeback", amount, detail)
        ]
        assert f"<strong>chargeback</strong> {amount}: {html.escape(detail)}</li>" in shown
        deposits = re.search(r'<tr data-field="deposits">(.*?)</tr>', shown)
        assert deposits and re.findall(r'<td class="num sub">([^<]*)</td>', deposits.group(1)) == [
            theirs,
            ours,
        ]
    summary = re.search(r'<table class="summary">(.*?)</table>', page.text, re.DOTALL)
    assert summary
    rows = re.findall(
        r"<tr><td>[^<]*</td><td>[^<]*</td><td>(\w+)</td>" + r'<td class="num">([^<]*)</td>' * 3,
        summary.group(1),
    )
    assert sorted(rows) == [("EUR", "112.50", "100.00", "12.50"), ("JPY", "16500", "16000", "500")]
    assert sorted(rows) == sorted(
        (s["currency"], s["operator_total"], s["clickback_total"], s["difference"])
        for s in api["reconciliation"]["summary"]
    )
    for shown in [summary.group(1), *(it.split("<details")[0] for it in items.values())]:
        assert not re.search(r"[0-9]\.[0-9]*0000|E[+-][0-9]", shown), shown  # as stored
    listed_row = re.search(rf'<tr data-id="{rid}">.*?</tr>', boss.get("/reconciliations").text)
    assert listed_row and "112.50 / 100.00 EUR<br>16500 / 16000 JPY" in listed_row.group(0)
