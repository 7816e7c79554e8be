"""GET /metrics: Prometheus figures behind the API key."""

import os
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from clickback.metrics import show_caches
from tests.conftest import API_KEY, Client, World
from tests.receiver import Answer, receiving
from tests.web.test_outbound import add_template, convert, eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(client: Client) -> Samples:
    """The figures of this process's worker, by name and labels (the worker's left out)."""
    response = client.http.get("/metrics", headers={"authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200, response.text
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if family.name.startswith("clickback_"):
                assert s.labels.pop("worker") == str(os.getpid())
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def growth(before: Samples, after: Samples) -> Callable[..., float]:
    """How much a figure, by name and labels, grew from `before` to `after`."""

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    return grew


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

    grew = growth(before, samples(client))

    assert grew("clickback_postbacks_total", result="accepted", reason="") == 1
    assert grew("clickback_postbacks_total", result="duplicate", reason="duplicate") == 1
    assert grew("clickback_postbacks_total", result="rejected", reason="bad_token") == 1
    assert grew("clickback_postback_seconds_count") == 3


def test_metrics_count_clicks_stored_and_refused_by_reason_and_the_writers_batches(
    client: Client, world: World
) -> None:
    before = samples(client)
    for _ in range(3):
        client.click(world.alice_casino)
    assert client.http.get("/c/no-such-link").status_code == 404
    client.flush()
    grew = growth(before, samples(client))

    assert grew("clickback_clicks_total", outcome="taken", reason="") == 3
    assert grew("clickback_clicks_total", outcome="refused", reason="unknown_link") == 1
    assert grew("clickback_click_batch_seconds_count") >= 1
    now = samples(client)
    assert ("clickback_click_backlog", ()) in now
    assert ("clickback_spool_files", ()) in now


def test_the_enrichment_caches_hits_and_misses_are_shown_after_a_batch(client: Client, world: World) -> None:
    client.node.runtime.enricher.watch()  # this node's, not another test server's of the process
    show_caches()
    before = samples(client)
    # User-Agents no earlier test sent: the User-Agent caches live as long as the process.
    first, second = (
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.{n}{os.urandom(4).hex()}" for n in (1, 2)
    )
    for ua in (first, first, second):
        reply = client.http.get(f"/c/{world.alice_casino}", headers={"user-agent": ua})
        assert reply.status_code == 302
    client.flush()
    grew = growth(before, samples(client))

    # The repeat is one whole click's traits found again; each new User-Agent is one parse.
    assert grew("clickback_enrich_cache", cache="traits", outcome="hit") == 1
    assert grew("clickback_enrich_cache", cache="traits", outcome="miss") == 2
    assert grew("clickback_enrich_cache", cache="device", outcome="miss") == 2
    assert grew("clickback_enrich_cache", cache="device", outcome="hit") == 0


def test_outbound_attempts_are_counted_by_outcome(client: Client, world: World) -> None:
    before = samples(client)

    def grew() -> tuple[float, float] | None:
        grown = growth(before, samples(client))
        retried, delivered = (
            grown("clickback_outbound_deliveries_total", outcome=o) for o in ("retry", "delivered")
        )
        return (retried, delivered) if delivered else None

    with receiving() as receiver:
        receiver.script = [Answer(503)]
        add_template(client, world, receiver.url())
        convert(client, world)
        assert eventually(grew) == (1, 1)
