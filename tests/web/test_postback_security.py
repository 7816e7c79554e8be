"""Postback security per advertiser, through the running server on each database: the token
masked in the postback log, token rotation with an overlap, an IP allowlist, HMAC signatures
with a time window and replays refused (across processes too)."""

import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import httpx
from alembic import command
from sqlalchemy import func, select

from clickback.core.intake import sign
from clickback.service.clock import utcnow
from clickback.store.migrate import alembic_config, upgrade
from clickback.store.recording import forget_signatures
from clickback.store.tables import postback_signatures
from tests.conftest import Client, Node, World

FORM = "application/x-www-form-urlencoded"


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


def test_the_token_and_signing_secret_reach_no_log_or_reply_whatever_their_shape(
    client: Client, world: World, click_id: str
) -> None:
    """Issue (audit): the token was kept in clear when a JSON body came without its content type
    (in the refusal's detail, and lowercased among the ignored names, of the reply and the log)
    or under a misspelt name (in the log's query). Whatever the shape, neither the token nor the
    signing secret is sent back or kept; only their last four characters may be."""
    token = world.token
    base = {"click_id": click_id, "event": "registration"}
    plain = {"content-type": "text/plain"}
    # The cut of a refusal's excerpt (64 characters) falls 20 characters into the token.
    cut_inside = '{"n":"' + "x" * 26 + '","foo":"' + token + '","event":"registration"}'
    replies = [
        # A JSON body without its content type: read as a form, the body is one long name...
        client.http.post("/postback", content=json.dumps({"token": token, **base}), headers=plain),
        client.http.post("/postback", content=cut_inside, headers=plain),
        # ...or a short one, lowercased among the ignored names (curl -d's form type too).
        client.http.post("/postback", content=json.dumps({"token": token}), headers=plain),
        client.http.post("/postback", content=json.dumps({"tokn": token}), headers={"content-type": FORM}),
        # Misspelt names, and the token under a name that is no credential's.
        client.postback(tokn=token, **base),
        client.postback(api_key=token, **base),
        client.postback(**{"X-Api-Key": token}, **base),
        client.postback(note=token, token=token, **base, txn_id="t-note"),
        client.http.post("/postback", json={"Password": token, **base}),
    ]
    secret = str(northstar(client, world, "/security", "PUT", signing=True)["signing_secret"])
    # Unsigned, so refused: the secret sent where it never belongs, under any name.
    replies.append(client.postback(token=token, sig=secret, note=secret, **base))
    replies.append(client.http.post("/postback", content=f'{{"x":"{secret}"}}', headers=plain))

    assert replies[7].json()["result"] in ("accepted", "duplicate")  # the token was right there
    logged = client.items("/postbacks")
    assert len(logged) == len(replies)
    for shown in [r.text for r in replies] + [json.dumps(e) for e in logged]:
        # Not even a part of either: a cut excerpt must not begin one.
        for part in (token[:12], token[12:24], secret[:12], secret[20:32]):
            assert part.lower() not in shown.lower(), shown
    queries = " ".join(e["query"] for e in logged)
    assert f"tokn=***{token[-4:]}" in queries and f"api_key=***{token[-4:]}" in queries
    assert f"note=***{token[-4:]}" in queries and f"sig=***{secret[-4:]}" in queries
    # The refusals still say what came (while a JSON body without its type is read as a form).
    too_long, short = replies[0].json(), replies[2].json()
    if too_long.get("reason") == "parameter_too_long":
        assert too_long["detail"].startswith('{"token": "***'), too_long
    if "ignored_parameters" in short:
        assert short["ignored_parameters"] == [f'{{"token": "***{token[-4:].lower()}"}}'], short


def test_migration_0027_leaves_the_rows_logged_today_as_they_are(
    client: Client, world: World, click_id: str
) -> None:
    """0027 masks the log's old rows as new ones are masked: a row written today, its secrets
    masked already (their tails shown), reads the same after it."""
    token = world.token
    base = {"click_id": click_id, "event": "registration"}
    plain = {"content-type": "text/plain"}
    secret = str(northstar(client, world, "/security", "PUT", signing=True)["signing_secret"])
    client.http.post("/postback", content='{"n":"' + "x" * 26 + '","foo":"' + token + '"}', headers=plain)
    client.http.post("/postback", content=json.dumps({"token": token}), headers=plain)
    client.postback(tokn=token, api_key="short", **base)
    client.postback(token=token, sig=secret, note=secret, **base)
    client.postback(click_id=click_id, event="deposit", payout="12.5", sub1="{x}")
    before = client.items("/postbacks")
    db = client.node.runtime.db

    async def again() -> None:
        async with db.write() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0026"))
        await upgrade(db)

    client.node.call(again)
    assert client.items("/postbacks") == before
    assert f"tokn=***{token[-4:]}" in before[-3]["query"]
