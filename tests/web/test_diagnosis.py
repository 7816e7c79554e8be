"""GET /api/diagnosis through the running server, on each database: outcomes, top reasons with
examples, and every detector with a case that finds and one that does not."""

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from clickback.service.clock import utcnow
from clickback.store.tables import conversions, link_checks, postbacks
from tests.conftest import Client, World


def diagnosis(client: Client, world: World, **params: Any) -> dict[str, Any]:
    return dict(client.api("GET", "/diagnosis", params={"advertiser_id": world.northstar["id"], **params}))


def codes(found: dict[str, Any]) -> dict[str, list[str]]:
    by_code: dict[str, list[str]] = {}
    for f in found["findings"]:
        by_code.setdefault(f["code"], []).append(f["subject"])
    return by_code


def age(client: Client, days: int, **values: Any) -> None:
    """Move the stored conversions back in time, as if they had come `days` ago."""

    async def run() -> None:
        async with client.node.runtime.db.write() as conn:
            moment = utcnow() - timedelta(days=days)
            await conn.execute(update(conversions).values({name: moment for name in values}))

    client.node.call(run)


def test_a_broken_integration_is_diagnosed_with_examples_and_hints(client: Client, world: World) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    token = world.token
    client.postback(click_id=cid, event="registration", token=token)
    client.postback(click_id=cid, event="registration", token=token)  # duplicate
    client.postback(click_id=cid, event="first_deposit", payot="50", token=token)  # misspelt
    for n in range(12):  # an Everflow habit: the click ID sent as transaction_id
        client.postback(transaction_id=cid, event="first_deposit", token=token, n=str(n))
    client.postback(click_id=cid, event="registration", token=world.southgate["token"])  # another's

    found = diagnosis(client, world)

    assert (found["postbacks"], found["accepted"], found["duplicate"], found["rejected"]) == (15, 2, 1, 12)
    assert found["by_reason"] == {"missing_click_id": 12, "duplicate": 1}
    (top,) = found["top_reasons"]
    assert (top["code"], top["count"], len(top["examples"])) == ("missing_click_id", 12, 3)
    assert f"token=***{token[-4:]}" in top["examples"][0]["query"] and token not in str(found)
    found_codes = codes(found)
    assert found_codes["misspelt_parameter"] == ["payot"]
    assert found_codes["click_id_in_network_field"] == ["missing_click_id"]
    assert found_codes["refusal_spike"] == [f"advertiser {world.northstar['id']} (Northstar Gaming)"]
    # Southgate's own diagnosis sees its refused postback and none of Northstar's.
    rival = client.api("GET", "/diagnosis", params={"advertiser_id": world.southgate["id"]})
    assert (rival["postbacks"], rival["by_reason"]) == (1, {"foreign_click": 1})
    # One offer: the postbacks whose click was on it.
    casino = diagnosis(client, world, offer_id=world.casino["id"])
    assert casino["postbacks"] == 3


def test_a_refusal_before_the_token_check_is_the_advertisers_when_the_token_is_valid(
    client: Client, world: World
) -> None:
    from clickback.core.accounts import Role
    from tests.web.personas import Keys, add_user

    cid = client.click(world.alice_casino)
    client.flush()
    token = world.token
    client.http.get(f"/postback?click_id={{clickid}}&event=registration&token={token}")  # curl -g
    client.http.get(f"/postback?click_id={cid}&cid={cid[::-1]}&event=registration&secret={token}")
    client.http.get(f"/postback?click_id={cid}&event=registration&sub1=a%0Ab&token={token}")
    client.http.get("/postback?click_id={clickid}&event=registration&token=not-a-token")

    logged = client.items("/postbacks")
    assert [(p["reason"], p["advertiser_id"]) for p in logged] == [
        ("unreplaced_macro", None),
        ("invalid_characters", world.northstar["id"]),
        ("conflicting_aliases", world.northstar["id"]),
        ("unreplaced_macro", world.northstar["id"]),
    ]
    assert len(client.items("/postbacks", advertiser_id=world.northstar["id"])) == 3
    assert diagnosis(client, world)["by_reason"] == {
        "conflicting_aliases": 1,
        "invalid_characters": 1,
        "unreplaced_macro": 1,
    }
    # The advertiser's own key sees them too.
    key = add_user(client, "northstar-dev", Role.ADVERTISER, advertiser_id=world.northstar["id"])
    own = client.http.get("/api/postbacks", headers=Keys.header(key)).json()["items"]
    assert [p["reason"] for p in own] == ["invalid_characters", "conflicting_aliases", "unreplaced_macro"]


def test_a_suggested_rename_keeps_the_postback_accepted(client: Client, world: World) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    token = world.token
    sent = {"click_id": cid, "event": "lead", "sub_id": "fb-ads", "event_name": "purchase", "token": token}

    warnings = client.postback(**sent).json()["warnings"]

    assert warnings == ["misspelt_parameter: 'sub_id' was ignored, did you mean 'sub1'?"]
    assert codes(diagnosis(client, world))["misspelt_parameter"] == ["event_name", "sub_id"]
    # Followed, the advice is a postback clickback takes, with the sub ID kept.
    renamed = {name: value for name, value in sent.items() if name != "sub_id"}
    renamed |= {"sub1": sent["sub_id"], "txn_id": "again"}
    followed = client.postback(**renamed).json()
    assert (followed["result"], followed["ignored_parameters"], followed.get("warnings")) == (
        "accepted",
        ["event_name"],
        None,
    )


def test_a_healthy_integration_has_no_findings(client: Client, world: World) -> None:
    for n in range(12):
        cid = client.click(world.alice_casino)
        client.flush()
        client.postback(click_id=cid, event="registration", txn_id=f"r{n}", token=world.token)
    found = diagnosis(client, world)
    assert (found["postbacks"], found["accepted"], found["acceptance_rate"]) == (12, 12, 1.0)
    assert found["findings"] == [] and found["top_reasons"] == []


def test_conversions_left_pending_are_found_after_the_days_asked(client: Client, world: World) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=cid, event="first_deposit", status="pending", payout="50", token=world.token)
    assert "stale_pending" not in codes(diagnosis(client, world, pending_days=7))
    age(client, 10, event_at=True)
    found = codes(diagnosis(client, world, pending_days=7))
    assert found["stale_pending"] == [f"offer {world.casino['id']} (Northstar Casino)"]
    assert "stale_pending" not in codes(diagnosis(client, world, pending_days=30))


def test_an_offer_gone_silent_is_found(client: Client, world: World) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    client.postback(click_id=cid, event="registration", token=world.token)
    for _ in range(50):
        client.click(world.alice_casino)
    client.flush()
    # Converting now: not silent.
    assert "silent_offer" not in codes(diagnosis(client, world, silent_hours=24))
    # Its postback and conversion came three days ago; its clicks keep coming.
    age(client, 3, created_at=True)

    async def postbacks_days_ago() -> None:
        async with client.node.runtime.db.write() as conn:
            await conn.execute(update(postbacks).values(received_at=utcnow() - timedelta(days=3)))

    client.node.call(postbacks_days_ago)
    found = codes(diagnosis(client, world, silent_hours=24))
    assert found["silent_offer"] == [f"offer {world.casino['id']} (Northstar Casino)"]


def test_a_period_out_of_order_is_refused(client: Client, world: World) -> None:
    params = {"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
    response = client.http.get("/api/diagnosis", params=params, headers=client.auth)
    assert response.status_code == 422 and "since must be before until" in response.text


def test_an_until_too_early_for_the_default_week_before_it_is_refused(client: Client, world: World) -> None:
    # The 7 days before it would be before the calendar's first day: a 500 until 2026-12-06.
    params = {"until": "0001-01-05T00:00:00Z"}
    response = client.http.get("/api/diagnosis", params=params, headers=client.auth)
    assert response.status_code == 422 and "until must leave room" in response.text


def test_an_offer_whose_latest_link_check_failed_is_found(client: Client, world: World) -> None:
    async def checked(offer_id: int, verdict: str, code: str) -> None:
        async with client.node.runtime.db.write() as conn:
            await conn.execute(
                link_checks.insert().values(
                    offer_id=offer_id,
                    checked_at=utcnow(),
                    url="https://casino.example.com/go",
                    final_url="https://casino.example.com/expired",
                    status=200,
                    verdict=verdict,
                    code=code,
                    hint="The page says the offer is gone: ask the advertiser for its new URL.",
                    elapsed_ms=120,
                    redirects="[]",
                    error="",
                )
            )

    client.node.call(lambda: checked(world.casino["id"], "soft_404", "soft_404"))
    client.node.call(lambda: checked(world.sportsbook["id"], "broken", "http_error"))
    client.node.call(lambda: checked(world.sportsbook["id"], "ok", "ok"))  # fixed since

    (found,) = [f for f in diagnosis(client, world)["findings"] if f["code"] == "broken_link"]
    assert found["subject"] == f"offer {world.casino['id']} (Northstar Casino)"
    assert "soft 404" in found["message"] and found["hint"].startswith("The page says")
