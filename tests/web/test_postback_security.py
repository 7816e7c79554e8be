"""Postback security per advertiser, through the running server on each database: the token
masked in the postback log, token rotation with an overlap, an IP allowlist, HMAC signatures
with a time window and replays refused (across processes too)."""

import time
from datetime import timedelta
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select

from clickback.core.intake import sign
from clickback.service.clock import utcnow
from clickback.store.recording import forget_signatures
from clickback.store.tables import postback_signatures
from tests.conftest import Client, Node, World


def northstar(
    client: Client, world: World, path: str, method: str = "GET", **body: object
) -> dict[str, object]:
    return dict(
        client.api(method, f"/advertisers/{world.northstar['id']}{path}", **({"json": body} if body else {}))
    )


def outcome(response: httpx.Response) -> tuple[int, str, str | None]:
    body = response.json()
    return response.status_code, body["result"], body.get("reason")


def signed_get(
    http: httpx.Client, secret: str, params: dict[str, str], at: float | None = None
) -> httpx.Response:
    query = urlencode(params)
    stamp = str(int(time.time() if at is None else at))
    signature = "sha256=" + sign(secret, stamp, query.encode(), b"")
    headers = {"X-Clickback-Timestamp": stamp, "X-Clickback-Signature": signature}
    return http.get(f"/postback?{query}", headers=headers)


def test_the_postback_log_keeps_the_token_masked(client: Client, world: World, click_id: str) -> None:
    client.postback(click_id=click_id, event="registration", token=world.token)
    client.http.post("/postback", json={"click_id": click_id, "event": "deposit", "secret": world.token})

    logged = client.items("/postbacks")
    assert len(logged) == 2
    for entry in logged:
        assert world.token not in entry["query"] + entry["body"]
    assert f"token=***{world.token[-4:]}" in next(e["query"] for e in logged if e["query"])
    assert f'"secret":"***{world.token[-4:]}"' in next(e["body"] for e in logged if e["body"])


def test_a_rotated_token_overlaps_then_is_refused_with_its_reason(
    client: Client, world: World, click_id: str
) -> None:
    old = world.token
    rotated = northstar(client, world, "/token", "POST", overlap_hours=1)
    new = str(rotated["token"])
    assert new != old and rotated["previous_token_valid_until"] is not None
    assert f"token={new}" in str(rotated["postback_url"])

    assert outcome(client.postback(click_id=click_id, event="registration", token=old))[1] == "accepted"
    assert (
        outcome(client.postback(click_id=click_id, event="deposit", txn_id="d1", token=new))[1] == "accepted"
    )

    revoked = northstar(client, world, "/previous-token", "DELETE")
    assert revoked["previous_token_valid_until"] is None
    assert outcome(client.postback(click_id=click_id, event="deposit", txn_id="d2", token=old)) == (
        403,
        "rejected",
        "bad_token",
    )


def test_a_rotation_without_overlap_refuses_the_old_token_at_once(
    client: Client, world: World, click_id: str
) -> None:
    old = world.token
    northstar(client, world, "/token", "POST", overlap_hours=0)
    refused = client.postback(click_id=click_id, event="registration", token=old)
    assert outcome(refused) == (403, "rejected", "token_replaced")
    assert client.items("/postbacks", reason="token_replaced")[0]["advertiser_id"] == world.northstar["id"]


def test_an_allowlist_refuses_other_addresses(client: Client, world: World, click_id: str) -> None:
    northstar(client, world, "/security", "PUT", allowed_ips=["198.51.100.0/24"])
    refused = client.postback(click_id=click_id, event="registration", token=world.token)
    assert outcome(refused) == (403, "rejected", "ip_not_allowed")
    assert client.items("/postbacks")[0]["reason"] == "ip_not_allowed"

    security = northstar(client, world, "/security", "PUT", allowed_ips=["198.51.100.0/24", "127.0.0.1"])
    assert security["allowed_ips"] == ["198.51.100.0/24", "127.0.0.1"]
    assert (
        outcome(client.postback(click_id=click_id, event="registration", token=world.token))[1] == "accepted"
    )
    assert northstar(client, world, "")["allowed_ips"] == ["198.51.100.0/24", "127.0.0.1"]


def test_a_bad_allowlist_entry_is_refused_naming_it(client: Client, world: World) -> None:
    path = f"/api/advertisers/{world.northstar['id']}/security"
    response = client.http.put(path, headers=client.auth, json={"allowed_ips": ["10.0.0.0/8", "intranet"]})
    assert response.status_code == 422
    assert "'intranet' is not an IP address or network" in response.text


def test_signed_postbacks_are_checked_and_accepted_once(
    client: Client, world: World, click_id: str, second_node: Node
) -> None:
    security = northstar(client, world, "/security", "PUT", signing=True)
    secret = str(security["signing_secret"])
    assert len(secret) == 64 and "HMAC-SHA256" in str(security["signature_format"])
    params = {"click_id": click_id, "event": "registration", "token": world.token}

    assert outcome(client.postback(**params)) == (401, "rejected", "missing_signature")
    assert outcome(signed_get(client.http, "not the secret", params)) == (403, "rejected", "bad_signature")
    assert outcome(signed_get(client.http, secret, params, at=time.time() - 400)) == (
        401,
        "rejected",
        "signature_expired",
    )

    stamp = str(int(time.time()))
    headers = {
        "X-Clickback-Timestamp": stamp,
        "X-Clickback-Signature": "sha256=" + sign(secret, stamp, urlencode(params).encode(), b""),
    }
    first = client.http.get(f"/postback?{urlencode(params)}", headers=headers)
    assert outcome(first)[:2] == (200, "accepted")
    # The same request again, here and on another process of the same database.
    assert outcome(client.http.get(f"/postback?{urlencode(params)}", headers=headers)) == (
        409,
        "rejected",
        "replayed_signature",
    )
    second_node.call(second_node.runtime.catalog.reload)  # as its next refresh would
    with httpx.Client(base_url=second_node.base_url) as other:
        again = other.get(f"/postback?{urlencode(params)}", headers=headers)
    assert outcome(again) == (409, "rejected", "replayed_signature")
    assert len(client.items("/conversions")) == 1

    # Signing turned off: the same advertiser's plain postbacks are accepted again.
    assert northstar(client, world, "/security", "PUT", signing=False)["signing_secret"] is None
    plain = client.postback(click_id=click_id, event="deposit", txn_id="d1", token=world.token)
    assert outcome(plain)[1] == "accepted"


def test_a_new_signing_secret_replaces_the_old_one(client: Client, world: World, click_id: str) -> None:
    first = str(northstar(client, world, "/security", "PUT", signing=True)["signing_secret"])
    kept = str(northstar(client, world, "/security", "PUT", signing=True)["signing_secret"])
    second = str(
        northstar(client, world, "/security", "PUT", signing=True, new_signing_secret=True)["signing_secret"]
    )
    assert kept == first != second
    params = {"click_id": click_id, "event": "registration", "token": world.token}
    assert outcome(signed_get(client.http, first, params))[2] == "bad_signature"
    assert outcome(signed_get(client.http, second, params))[1] == "accepted"


def test_signatures_older_than_their_window_are_forgotten(
    client: Client, world: World, click_id: str
) -> None:
    secret = str(northstar(client, world, "/security", "PUT", signing=True)["signing_secret"])
    params = {"click_id": click_id, "event": "registration", "token": world.token}
    assert outcome(signed_get(client.http, secret, params))[1] == "accepted"
    db = client.node.runtime.db

    async def kept() -> int:
        async with db.read() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(postback_signatures))).scalar_one()
            )

    client.node.call(lambda: forget_signatures(db, utcnow() - timedelta(minutes=10)))
    assert client.node.call(kept) == 1
    client.node.call(lambda: forget_signatures(db, utcnow() + timedelta(seconds=1)))
    assert client.node.call(kept) == 0
