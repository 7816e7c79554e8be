"""The audit log: every change made through the API, by whom, with the fields before and after."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickback.core.accounts import Role
from tests.conftest import Client, World
from tests.web.personas import Keys, add_user


def audit(client: Client, **params: Any) -> list[dict[str, Any]]:
    return client.items("/audit", **params)


def test_a_status_change_is_recorded_with_who_before_and_after(client: Client, world: World) -> None:
    offer = world.casino["id"]
    client.api("PUT", f"/offers/{offer}/status", json={"status": "paused"})

    [entry] = audit(client, entity_kind="offer", entity_id=offer, action="status")
    assert entry["actor"] == "bootstrap key"
    assert entry["user_id"] is None
    assert entry["before"] == {"status": "active"}
    assert entry["after"] == {"status": "paused"}


def test_a_users_change_names_them_and_the_same_value_again_is_no_change(
    client: Client, world: World
) -> None:
    key = add_user(client, "boss", Role.MANAGER)
    link = client.items("/links", affiliate_id=world.alice["id"])[0]["id"]
    for _ in range(2):
        response = client.http.put(
            f"/api/links/{link}/status", json={"status": "paused"}, headers=Keys.header(key)
        )
        assert response.status_code == 200, response.text

    entries = audit(client, entity_kind="link", entity_id=link, action="status")
    assert [(e["actor"], e["after"]) for e in entries] == [("boss", {"status": "paused"})]
    assert entries[0]["user_id"] is not None
    assert audit(client, actor="boss") == entries


def test_creations_are_recorded_and_secrets_are_hidden(client: Client, world: World) -> None:
    adv = world.northstar["id"]
    client.api("POST", f"/advertisers/{adv}/token", json={"overlap_hours": 1})

    [created] = audit(client, entity_kind="advertiser", entity_id=adv, action="create")
    assert created["before"] is None
    assert created["after"]["name"] == "Northstar Gaming"
    assert created["after"]["token"] == "(hidden)"
    [rotated] = audit(client, entity_kind="advertiser", entity_id=adv, action="rotate_token")
    assert rotated["after"]["token"] == "(hidden)"
    assert world.token not in str(audit(client))


def test_a_deal_change_keeps_the_terms_before_and_after(client: Client, world: World) -> None:
    offer = world.casino["id"]
    terms = {"kind": "cpa", "currency": "EUR", "cpa": {"amount": "40"}}
    client.api("PUT", f"/offers/{offer}/deal", json=terms)
    client.api("PUT", f"/offers/{offer}/deal", json={"cpa": {"amount": "45"}})

    latest = audit(client, entity_kind="deal")[0]
    assert latest["before"]["terms"]["cpa"]["amount"] == "40"
    assert latest["after"]["terms"]["cpa"]["amount"] == "45"


def test_the_log_pages_newest_first_and_refuses_a_bad_filter(client: Client, world: World) -> None:
    first = client.api("GET", "/audit", params={"limit": 2})
    second = client.api("GET", "/audit", params={"limit": 2, "cursor": first["next_cursor"]})
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4

    for params in ({"entity_kind": "planet"}, {"actor": "x" * 101}, {"from": "2026-02-30"}):
        response = client.http.get("/api/audit", params=params, headers=client.auth)
        assert response.status_code == 422, params


def test_an_advertisers_names_are_recorded_whole_before_and_after(client: Client, world: World) -> None:
    adv = world.northstar["id"]
    client.api("PUT", f"/advertisers/{adv}/names", json={"events": {"dep": "deposit"}, "statuses": {}})
    client.api("PUT", f"/advertisers/{adv}/names", json={"events": {}, "statuses": {"2": "approved"}})

    [latest, first] = audit(client, entity_kind="advertiser", entity_id=adv, action="names")
    assert (first["before"], first["after"]) == ({"events": {}}, {"events": {"dep": "deposit"}})
    assert latest["before"] == {"events": {"dep": "deposit"}, "statuses": {}}
    assert latest["after"] == {"events": {}, "statuses": {"2": "approved"}}


def test_a_name_that_looks_like_json_stays_text(client: Client, world: World) -> None:
    client.api("PATCH", f"/affiliates/{world.bob['id']}", json={"name": "[1]"})

    [entry] = audit(client, entity_kind="affiliate", entity_id=world.bob["id"], action="edit")
    assert entry["after"] == {"name": "[1]"}


def test_an_affiliates_own_template_changes_are_recorded_with_secrets_masked(
    client: Client, world: World
) -> None:
    alice = Keys.header(add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"]))
    body = {
        "affiliate_id": world.alice["id"],
        "url": "http://127.0.0.1:9/pb?key=s3cretvalue1234&c={click_id}",
    }
    created = client.http.post("/api/outbound/templates", json=body, headers=alice)
    assert created.status_code == 201, created.text
    template = created.json()["id"]
    client.http.put(f"/api/outbound/templates/{template}/status", json={"status": "paused"}, headers=alice)
    assert client.http.delete(f"/api/outbound/templates/{template}", headers=alice).status_code == 204

    entries = audit(client, entity_kind="outbound_template", entity_id=template)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("delete", "alice"),
        ("status", "alice"),
        ("create", "alice"),
    ]
    assert entries[1]["after"] == {"status": "paused"}
    assert entries[0]["after"] is None and entries[0]["before"]["status"] == "paused"
    assert "s3cretvalue1234" not in str(entries)


def test_an_exchange_rate_is_recorded_with_its_pair_and_the_rate_before_and_after(client: Client) -> None:
    boss = Keys.header(add_user(client, "boss", Role.MANAGER))
    for rate in ("1.08", "1.09", "1.09"):
        body = {"base": "EUR", "quote": "USD", "day": "2026-12-01", "rate": rate}
        assert client.http.post("/api/fx-rates", json=body, headers=boss).status_code == 201

    lines = [
        (e["actor"], e["action"], e["entity_id"], e["before"], e["after"])
        for e in audit(client, entity_kind="fx_rate")
    ]
    pair = {"base": "EUR", "quote": "USD", "day": "2026-12-01"}
    # The same rate again is no change.
    assert lines == [
        ("boss", "edit", 0, pair | {"rate": "1.08"}, pair | {"rate": "1.09"}),
        ("boss", "create", 0, None, pair | {"rate": "1.08"}),
    ]


def test_a_spend_import_is_recorded_with_what_its_clicks_cost_before_and_after(
    client: Client, world: World
) -> None:
    for _ in range(2):
        client.click(world.alice_casino, sub1="s")
    client.flush()
    today = datetime.now(UTC).date().isoformat()
    headers = {**client.auth, "content-type": "text/csv"}
    for cost in ("3.00", "5.00"):
        text = f"day,link,cost\n{today},{world.alice_casino},{cost}\n"
        reply = client.http.post(
            "/api/costs/import", content=text, params={"currency": "EUR"}, headers=headers
        )
        assert reply.status_code == 200, reply.text

    second, first = audit(client, entity_kind="spend_import")
    link = client.items("/links", affiliate_id=world.alice["id"])
    link_id = next(k["id"] for k in link if k["code"] == world.alice_casino)
    lines = client.items("/costs/imports")
    assert (second["entity_id"], first["entity_id"]) == (lines[0]["id"], lines[1]["id"])
    assert (first["actor"], first["action"], first["before"]) == (
        "bootstrap key",
        "import",
        {"clicks_cost": {}},
    )
    assert {c: Decimal(a) for c, a in first["after"].pop("clicks_cost").items()} == {"EUR": Decimal(3)}
    assert first["after"] == {
        "lines": 1,
        "clicks": 2,
        "unmatched": 0,
        "zone": "UTC",
        "days": [today],
        "links": [link_id],
    }
    assert Decimal(second["before"]["clicks_cost"]["EUR"]) == 3
    assert Decimal(second["after"]["clicks_cost"]["EUR"]) == 5
