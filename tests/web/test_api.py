"""The JSON API: the key, creating and listing entities, refusing bad ones, the OpenAPI document."""

import json
import re
from collections.abc import Iterator

import pytest

from clickback.core.limits import MAX_API_BODY_BYTES
from clickback.core.reasons import Reason
from tests.conftest import API_KEY, Client, World
from tests.web.test_server import Reply, exchange


def test_every_api_call_needs_the_key(client: Client) -> None:
    no_key = client.http.get("/api/advertisers")
    wrong = client.http.get("/api/advertisers", headers={"Authorization": "Bearer nope"})
    header = client.http.get("/api/advertisers", headers={"X-API-Key": API_KEY})

    assert (no_key.status_code, wrong.status_code, header.status_code) == (401, 401, 200)
    assert client.http.post("/api/affiliates", json={"name": "x"}).status_code == 401


def test_api_bodies_are_refused_before_they_are_read_without_the_key_or_over_the_cap(
    client: Client,
) -> None:
    port = int(client.node.base_url.rsplit(":", 1)[1])

    def announce(length: int, *headers: str) -> Reply:
        """Only the head of a POST announcing a body of `length` bytes: a server that read the
        body before answering would never answer."""
        head = ["POST /api/affiliates HTTP/1.1", "Host: t", f"Content-Length: {length}", *headers, "", ""]
        (reply,) = exchange(port, "\r\n".join(head).encode(), 1)
        return reply

    unauthenticated = announce(20_000_000)
    too_large = announce(MAX_API_BODY_BYTES + 1, f"X-API-Key: {API_KEY}")

    def streamed() -> Iterator[bytes]:  # chunked: no length to refuse by
        for _ in range(MAX_API_BODY_BYTES // 65536 + 1):
            yield b" " * 65536

    streaming = client.http.post("/api/affiliates", content=streamed(), headers=client.auth)
    assert (unauthenticated.status, unauthenticated.headers["www-authenticate"]) == (401, "Bearer")
    assert json.loads(unauthenticated.body) == {"detail": "missing or wrong API key"}
    assert (too_large.status, streaming.status_code) == (413, 413)
    assert "over 1048576 bytes" in streaming.text
    assert (
        client.http.post("/api/affiliates", json={"name": "x" * 100}, headers=client.auth).status_code == 201
    )


def test_entities_are_created_and_listed(client: Client, world: World) -> None:
    advertisers = client.items("/advertisers")
    offers = client.items("/offers")
    links = client.items("/links")

    assert [a["name"] for a in advertisers] == ["Northstar Gaming", "Southgate Bets"]
    assert advertisers[0]["postback_url"].endswith(f"&token={world.token}")
    assert "{click_id}" in advertisers[0]["postback_url"]
    casino = offers[0]
    assert casino["payouts"] == {"registration": "1.50", "first_deposit": "50.00"}
    assert casino["custom_events"] == ["vip_level"]
    assert casino["status"] == "active"
    assert {link["code"] for link in links} >= {world.alice_casino, world.bob_casino}
    assert links[0]["url"] == f"http://127.0.0.1/c/{links[0]['code']}"
    assert client.api("GET", f"/affiliates/{world.alice['id']}")["name"] == "Alice Media"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url_template": "https://{sub1}.example.com/"}, "host part"),
        ({"url_template": "https://example.com/?x={nope}"}, "unknown macro {nope}"),
        ({"url_template": "javascript:alert(1)//x"}, "http"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "ABC"}, "ISO 4217"),
        ({"payouts": {"jackpot": "5"}}, "neither standard nor custom"),
        ({"payouts": {"registration": "-5"}}, "non-negative"),
        ({"custom_events": ["bad name!"]}, "custom_events"),
        ({"advertiser_id": 999}, "does not exist"),
    ],
)
def test_bad_offers_are_refused_with_a_sentence(
    client: Client, world: World, change: dict[str, object], message: str
) -> None:
    body = {
        "advertiser_id": world.northstar["id"],
        "name": "x",
        "url_template": "https://ok.example.com/?c={click_id}",
        "currency": "EUR",
    } | change

    response = client.http.post("/api/offers", json=body, headers=client.auth)

    assert response.status_code in (404, 422)
    assert message in response.text


def test_oversized_and_unknown_fields_are_refused(client: Client) -> None:
    too_long = client.http.post("/api/affiliates", json={"name": "x" * 201}, headers=client.auth)
    extra = client.http.post("/api/affiliates", json={"name": "x", "admin": True}, headers=client.auth)

    assert (too_long.status_code, extra.status_code) == (422, 422)


def test_unknown_entity_is_404(client: Client) -> None:
    assert client.http.get("/api/links/12345", headers=client.auth).status_code == 404
    assert client.http.get("/api/conversions/12345", headers=client.auth).status_code == 404
    response = client.http.post("/api/links", json={"affiliate_id": 777, "offer_id": 1}, headers=client.auth)
    assert response.status_code == 404


def test_report_parameters_are_validated(client: Client) -> None:
    def status(**params: str) -> int:
        return client.http.get("/api/reports", params=params, headers=client.auth).status_code

    assert status(**{"from": "2026-01-02", "to": "2026-01-01"}) == 422
    assert status(**{"from": "2020-01-01", "to": "2026-01-01"}) == 422
    assert status(**{"from": "2026-01-01", "to": "2026-01-02", "group_by": "password"}) == 422
    assert status(**{"from": "2026-01-01", "to": "2026-01-02", "group_by": "day,day"}) == 422
    assert status(**{"from": "not-a-date", "to": "2026-01-02"}) == 422


def test_postback_log_rejects_an_unknown_reason_filter(client: Client) -> None:
    response = client.http.get("/api/postbacks", params={"reason": "x"}, headers=client.auth)

    assert response.status_code == 422


def test_liveness_and_readiness_are_reported(client: Client) -> None:
    live = client.http.get("/healthz")
    ready = client.http.get("/readyz")

    assert (live.status_code, live.text) == (200, "ok")
    assert ready.status_code == 200
    state = ready.json()
    assert state["ready"] is True
    assert {
        part: state[part]["ok"] for part in ("database", "catalog", "click_writer", "spool")
    } == dict.fromkeys(("database", "catalog", "click_writer", "spool"), True)
    assert state["click_writer"]["pending"] == 0 and state["spool"]["files"] == 0


def test_reason_catalogue_is_served(client: Client) -> None:
    reasons = client.api("GET", "/reasons")

    assert [r["code"] for r in reasons] == [r.code for r in Reason]


def test_openapi_document_and_docs_page_are_served_without_a_cdn(client: Client) -> None:
    spec = client.http.get("/api/openapi.json").json()
    docs = client.http.get("/api/docs")
    # Every file the page loads (scripts, stylesheets, icons, the OpenAPI document itself).
    referenced = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", docs.text)
    assets = [client.http.get(url) for url in referenced]

    assert {"/advertisers", "/offers", "/affiliates", "/links", "/postbacks", "/reports"} <= set(
        spec["paths"]
    )
    assert docs.status_code == 200
    assert "SwaggerUIBundle" in docs.text
    assert {url.rsplit("/", 1)[-1] for url in referenced} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "openapi.json",
    }
    assert all(url.startswith("/api/") for url in referenced), referenced  # from this server only
    assert [(a.status_code, len(a.content) > 100) for a in assets] == [(200, True)] * len(assets)
    assert "SwaggerUIBundle" in assets[referenced.index("/api/docs-assets/swagger-ui-bundle.js")].text
    # The key is checked before FastAPI runs (web/guard.py), yet every operation still names it.
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    assert {
        str(operation.get("security")) for path in spec["paths"].values() for operation in path.values()
    } == {"[{'HTTPBearer': []}, {'APIKeyHeader': []}]"}


@pytest.mark.parametrize("name", ["a\x00b", "tab\there", "line\nbreak", "\x7f"])
def test_names_with_control_characters_are_refused(client: Client, name: str) -> None:
    response = client.http.post("/api/affiliates", json={"name": name}, headers=client.auth)

    assert response.status_code == 422


def test_ungrouped_report_of_an_empty_range_is_all_zero(client: Client, world: World) -> None:
    client.click(world.alice_casino)
    client.flush()

    report = client.api(
        "GET",
        "/reports",
        params={"from": "2000-01-01", "to": "2000-01-01", "group_by": "", "bots": "include"},
    )

    assert report["rows"] == []
    assert (report["totals"]["clicks"], report["totals"]["conversions"]) == (0, 0)
