"""Hostile input and browsers: a 4xx with a reason, never a 5xx; nothing built from the request's
Host; replies a browser cannot take for something else."""

import re
from base64 import b64encode
from hashlib import sha256

from tests.conftest import API_KEY, Client, World
from tests.web.test_server import Reply, exchange

STRICT = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def port_of(client: Client) -> int:
    return int(client.node.base_url.rsplit(":", 1)[1])


def raw_get(client: Client, target: str, *headers: str) -> Reply:
    head = [f"GET {target} HTTP/1.1", "Host: evil.example", *headers, "Connection: close", "", ""]
    (reply,) = exchange(port_of(client), "\r\n".join(head).encode(), 1)
    return reply


def test_unencodable_numbers_characters_and_far_dates_get_a_4xx_with_a_reason(
    client: Client, world: World
) -> None:
    json_type = {"content-type": "application/json"}
    postback = client.http.post("/postback", content=b'{"\\ud800":"x"}', headers=json_type)
    assert (postback.status_code, postback.json()["reason"]) == (400, "invalid_characters")
    assert postback.json()["detail"].startswith("\\ud800")
    click_id = client.click(world.alice_casino)
    for event_time in ["9999-12-31T23:59:59-23:00", "0001-01-01T00:00:00+01:00"]:
        sent = client.postback(
            click_id=click_id, event="registration", token=world.token, event_time=event_time
        )
        assert (sent.status_code, sent.json()["reason"]) == (422, "invalid_event_time")

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
    assert client.api("GET", "/reports/refused-clicks", params=calendar_ends) == []
    # A report's days are reckoned in epoch seconds of every zone: the calendar's ends are refused.
    for ends, field in ((calendar_ends, "from"), ({"from": "0001-01-01", "to": "0001-01-01"}, "from")):
        refused = client.http.get("/api/reports", params=ends, headers=client.auth)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["query", field]
    for query, status in [
        ("since=9999-12-31T23:59:59-23:00", 422),
        ("until=0001-01-01T00:00:00%2B01:00", 422),
        ("since=0001-01-01&until=9999-12-31T23:59:59.999999", 200),
    ]:
        assert client.http.get(f"/api/postbacks?{query}", headers=client.auth).status_code == status


def test_a_nul_in_a_filter_or_a_path_is_a_422_not_a_database_error(client: Client, world: World) -> None:
    """PostgreSQL's text refuses NUL: the schema fuzz found a 500 on the deliveries' destination."""
    for path in (
        "/api/outbound/deliveries?destination=a%00b",
        "/api/postbacks?reason=a%00b",
        "/api/audit?actor=a%00b",
    ):
        assert client.http.get(path, headers=client.auth).status_code == 422, path
    for verb in ("pause", "resume"):
        refused = client.http.post(f"/api/outbound/destinations/a%00b/{verb}", json={}, headers=client.auth)
        assert refused.status_code == 422, verb
    template = {
        "affiliate_id": world.alice["id"],
        "url": "http://127.0.0.1:9/pb",
        "method": "POST",
        "body": "a\u0000",
    }
    assert client.http.post("/api/outbound/templates", json=template, headers=client.auth).status_code == 422
    # Line breaks and tabs are a JSON body's own.
    template |= {"body_format": "json", "body": '{\n\t"click": "{click_id}"\n}'}
    made = client.http.post("/api/outbound/templates", json=template, headers=client.auth)
    assert made.status_code == 201, made.text


def test_unknown_paths_are_404_never_a_redirect_naming_the_host(client: Client) -> None:
    for target in ["/postback/?x=1", "/healthz/", "/api/advertisers/?limit=1", "/api", "/api/docs/"]:
        reply = raw_get(client, target, f"Authorization: Bearer {API_KEY}")

        assert (reply.status, reply.headers.get("location")) == (404, None), target


def test_replies_are_not_sniffed_and_pages_run_only_what_they_name(client: Client, world: World) -> None:
    refusal_page = client.http.get("/c/nosuchlink")
    replies = [
        refusal_page,
        raw_get(client, "/c/nosuchlink"),  # the ASGI endpoint, not the parser's answer
        client.postback(click_id="x", token=world.token),
        client.http.get("/healthz"),
        client.http.get("/api/advertisers", headers=client.auth),
        client.http.get("/api/advertisers"),  # refused without its key
        client.http.get("/api/openapi.json"),
    ]
    assert refusal_page.headers["content-type"].startswith("text/html")
    for reply in replies:
        assert reply.headers["x-content-type-options"] == "nosniff"
    assert refusal_page.headers["content-security-policy"] == STRICT
    assert replies[1].headers["content-security-policy"] == STRICT

    docs = client.http.get("/api/docs")
    policy = dict(d.strip().split(" ", 1) for d in docs.headers["content-security-policy"].split(";"))
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    loaded = re.findall(r'<script src="([^"]+)"', docs.text)
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert inline and loaded and all(url.startswith("/api/") for url in loaded)  # from this server
    assert set(policy["script-src"].split()) == {
        "'self'",
        *(f"'sha256-{b64encode(sha256(s.encode()).digest()).decode()}'" for s in inline),
    }
    assert (policy["default-src"], policy["connect-src"], policy["frame-ancestors"]) == (
        "'none'",
        "'self'",
        "'none'",
    )
    assert "unsafe" not in docs.headers["content-security-policy"]
