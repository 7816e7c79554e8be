"""Hostile input: a 4xx with a reason, never a 5xx."""

from tests.conftest import Client, World


def test_unencodable_numbers_characters_and_far_dates_get_a_4xx_with_a_reason(
    client: Client, world: World
) -> None:
    json_type = {"content-type": "application/json"}
    postback = client.http.post("/postback", content=b'{"\\ud800":"x"}', headers=json_type)
    assert (postback.status_code, postback.json()["reason"]) == (400, "invalid_characters")
    assert postback.json()["detail"].startswith("\\ud800")

    bodies = [
        ("/affiliates", b'{"name":"\\ud800"}', json_type, "\\ud800"),
        ("/affiliates", b'{"name":NaN}', json_type, "nan"),
        ("/fx-rates", b'{"base":"EUR","quote":"USD","day":"2026-01-01","rate":1e309}', json_type, "inf"),
        ("/offers", b'{"advertiser_id":-Infinity}', json_type, "-inf"),
        # Without a content type FastAPI echoes the body as it came: bytes, not text.
        ("/advertisers", b"\x80", {}, "\\x80"),
    ]
    for path, body, content_type, shown in bodies:
        refused = client.http.post("/api" + path, content=body, headers=client.auth | content_type)
        assert refused.status_code == 422, body
        assert shown in [e.get("input") for e in refused.json()["detail"]], refused.text

    calendar_ends = {"from": "9999-12-30", "to": "9999-12-31"}
    assert client.api("GET", "/reports", params=calendar_ends)["rows"] == []
    assert client.api("GET", "/reports/refused-clicks", params=calendar_ends) == []
    assert client.api("GET", "/reports", params={"from": "0001-01-01", "to": "0001-01-01"})["rows"] == []
    for query, status in [
        ("since=9999-12-31T23:59:59-23:00", 422),
        ("until=0001-01-01T00:00:00%2B01:00", 422),
        ("since=0001-01-01&until=9999-12-31T23:59:59.999999", 200),
    ]:
        assert client.http.get(f"/api/postbacks?{query}", headers=client.auth).status_code == status
