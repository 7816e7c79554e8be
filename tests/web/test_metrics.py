"""GET /metrics: Prometheus figures behind the API key."""

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_KEY, Client, World


def samples(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.http.get("/metrics", headers={"authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_count_postbacks_by_result_and_reason_behind_the_api_key(
    client: Client, world: World
) -> None:
    assert client.http.get("/metrics").status_code == 401
    assert client.http.get("/metrics", headers={"x-api-key": "wrong"}).status_code == 401
    before = samples(client)
    click_id = client.click(world.alice_casino)
    client.flush()

    client.postback(click_id=click_id, event="registration", token=world.token)
    client.postback(click_id=click_id, event="registration", token=world.token)
    client.postback(click_id=click_id, event="registration", token="nope")

    after = samples(client)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("clickback_postbacks_total", result="accepted", reason="") == 1
    assert grew("clickback_postbacks_total", result="duplicate", reason="duplicate") == 1
    assert grew("clickback_postbacks_total", result="rejected", reason="bad_token") == 1
    assert grew("clickback_postback_seconds_count") == 3
