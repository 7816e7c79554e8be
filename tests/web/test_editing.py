"""Editing what exists: offers, advertisers, affiliates and links changed through PATCH (checked
as on create), archived instead of deleted, every change in the audit log."""

from typing import Any

from tests.conftest import Client, Node, World


def audit(client: Client, kind: str, item_id: int) -> list[dict[str, Any]]:
    return client.items("/audit", entity_kind=kind, entity_id=item_id)


def test_a_new_url_template_sends_the_next_click_there_on_every_process(
    client: Client, world: World, second_node: Node
) -> None:
    offer = world.casino["id"]
    other = Client(second_node)
    second_node.call(second_node.runtime.catalog.refresh)
    assert "casino.example.com" in other.http.get(f"/c/{world.alice_casino}").headers["location"]

    new = "https://new.example.org/land?id={click_id}&s={sub1}"
    changed = client.api("PATCH", f"/offers/{offer}", json={"url_template": new})

    assert changed["url_template"] == new
    here = client.http.get(f"/c/{world.alice_casino}", params={"sub1": "a"}).headers["location"]
    assert here.startswith("https://new.example.org/land?id=") and here.endswith("&s=a")
    # Another process sees the change at its next refresh (a bumped catalog version).
    assert second_node.call(second_node.runtime.catalog.refresh)
    assert (
        other.http.get(f"/c/{world.alice_casino}").headers["location"].startswith("https://new.example.org/")
    )
    other.http.close()
    [entry] = [e for e in audit(client, "offer", offer) if e["action"] == "edit"]
    assert entry["before"] == {"url_template": world.casino["url_template"]}
    assert entry["after"] == {"url_template": new}


# Each refused edit, and the field its 422 names.
REFUSED_EDITS: list[tuple[dict[str, Any], str]] = [
    ({"url_template": "https://{sub1}.example.com/?c={click_id}"}, "url_template"),
    ({"url_template": "https://ok.example.com/?c={nonsense}"}, "url_template"),
    ({"url_template": "javascript:alert(1)//x"}, "url_template"),
    ({"payouts": {"no_such_event": "1"}}, "payouts"),
    ({"payouts": {"registration": "-1"}}, "payouts"),
    ({"currency": "EURO"}, "currency"),
    ({"name": None}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"status": "archived"}, "status"),
]


def test_an_offer_edit_is_checked_as_on_create(client: Client, world: World) -> None:
    offer = world.casino["id"]
    for body, field in REFUSED_EDITS:
        response = client.http.patch(f"/api/offers/{offer}", json=body, headers=client.auth)

        assert response.status_code == 422, (body, response.text)
        assert field in str(response.json()["detail"]), body
    assert client.api("GET", f"/offers/{offer}")["url_template"] == world.casino["url_template"]
    assert [e["action"] for e in audit(client, "offer", offer)] == ["create"]


def test_payouts_currency_and_custom_events_are_edited_together_and_audited(
    client: Client, world: World
) -> None:
    offer = world.casino["id"]
    body = {
        "currency": "USD",
        "custom_events": ["vip_level", "bonus_claim"],
        "payouts": {"bonus_claim": "2.5"},
    }
    changed = client.api("PATCH", f"/offers/{offer}", json=body)

    assert (changed["currency"], changed["payouts"], changed["custom_events"]) == (
        "USD",
        {"bonus_claim": "2.50"},
        ["bonus_claim", "vip_level"],
    )
    # A payout for an event the offer would no longer have is refused.
    response = client.http.patch(f"/api/offers/{offer}", json={"custom_events": []}, headers=client.auth)
    assert response.status_code == 422 and "payouts" in response.text
    [entry] = [e for e in audit(client, "offer", offer) if e["action"] == "edit"]
    assert entry["before"]["currency"] == "EUR" and entry["after"]["payouts"] == {"bonus_claim": "2.5"}


def test_names_and_a_links_campaign_are_edited_and_audited(client: Client, world: World) -> None:
    link = client.items("/links", affiliate_id=world.alice["id"], offer_id=world.casino["id"])[0]
    client.api("PATCH", f"/affiliates/{world.alice['id']}", json={"name": "Alice Media Ltd"})
    client.api("PATCH", f"/advertisers/{world.northstar['id']}", json={"name": "Northstar"})
    client.api("PATCH", f"/links/{link['id']}", json={"campaign": "autumn"})

    assert client.api("GET", f"/affiliates/{world.alice['id']}")["name"] == "Alice Media Ltd"
    assert client.api("GET", f"/links/{link['id']}")["campaign"] == "autumn"
    assert audit(client, "link", link["id"])[0]["before"] == {"campaign": "spring"}
    assert audit(client, "affiliate", world.alice["id"])[0]["after"] == {"name": "Alice Media Ltd"}
    assert audit(client, "advertiser", world.northstar["id"])[0]["after"] == {"name": "Northstar"}


def test_archived_rows_take_no_clicks_keep_their_history_and_come_back(
    client: Client, world: World, click_id: str
) -> None:
    reply = client.postback(click_id=click_id, event="registration", token=world.token)
    conversion = reply.json()["conversion_id"]
    link = client.items("/links", affiliate_id=world.alice["id"], offer_id=world.casino["id"])[0]["id"]

    client.api("PUT", f"/links/{link}/status", json={"status": "archived"})
    refused = client.http.get(f"/c/{world.alice_casino}")
    assert (refused.status_code, refused.headers["x-clickback-reason"]) == (410, "link_archived")
    client.api("PUT", f"/offers/{world.casino['id']}/status", json={"status": "archived"})
    refused = client.http.get(f"/c/{world.bob_casino}")
    assert (refused.status_code, refused.headers["x-clickback-reason"]) == (410, "offer_archived")

    assert client.api("GET", f"/conversions/{conversion}")["status"] == "approved"
    assert [o["id"] for o in client.items("/offers", status="archived")] == [world.casino["id"]]
    assert client.items("/affiliates", status="archived") == []
    again = client.http.post(
        "/api/links",
        json={"affiliate_id": world.bob["id"], "offer_id": world.casino["id"]},
        headers=client.auth,
    )
    assert again.status_code == 409 and "archived" in again.text

    client.api("PUT", f"/offers/{world.casino['id']}/status", json={"status": "active"})
    client.api("PUT", f"/links/{link}/status", json={"status": "active"})
    assert client.http.get(f"/c/{world.alice_casino}").status_code == 302
    actions = [(e["before"], e["after"]) for e in audit(client, "link", link) if e["action"] == "status"]
    assert actions == [
        ({"status": "archived"}, {"status": "active"}),
        ({"status": "active"}, {"status": "archived"}),
    ]
