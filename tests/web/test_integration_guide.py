"""The integration guide of an offer, as JSON and as a Markdown page, through the server."""

from tests.conftest import Client, World


def test_the_guide_carries_the_advertisers_url_events_and_presets(client: Client, world: World) -> None:
    guide = client.api("GET", f"/offers/{world.casino['id']}/integration")
    assert guide["postback_url"] == world.northstar["postback_url"]  # the advertiser page's own
    assert f"token={world.token}" in guide["postback_url"]
    # The casino offer of the test world prices registration and first_deposit, and has vip_level.
    assert guide["events"] == ["registration", "first_deposit", "vip_level"]
    assert [e["event"] for e in guide["examples"]] == guide["events"]
    assert {p["platform"] for p in guide["presets"]} >= {"Everflow", "Cellxpert", "Affise"}
    assert guide["statuses"]["hold"] == "pending"
    assert any(r["code"] == "unreplaced_macro" for r in guide["reasons"])


def test_the_guide_as_a_page(client: Client, world: World) -> None:
    response = client.http.get(f"/api/offers/{world.casino['id']}/integration.md", headers=client.auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    assert response.text.startswith("# Postback integration: Northstar Casino (Northstar Gaming)")
    assert f"token={world.token}" in response.text


def test_an_unknown_offer_has_no_guide(client: Client, world: World) -> None:
    response = client.http.get("/api/offers/999999/integration", headers=client.auth)
    assert response.status_code == 404
