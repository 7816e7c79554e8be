"""Hostile and malformed postbacks: always a 4xx with a reason, never a 5xx, never a conversion."""

from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickback.core.reasons import BY_CODE
from tests.conftest import Client, World

FIELDS = ["click_id", "cid", "event", "payout", "currency", "txn_id", "status", "sub1", "token", "zz"]


def assert_refused_cleanly(client: Client, response_status: int, body: dict[str, object]) -> None:
    assert 400 <= response_status < 500, body
    assert body["result"] == "rejected"
    assert body["reason"] in BY_CODE
    assert BY_CODE[str(body["reason"])].http_status == response_status


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw_query=st.binary(max_size=600))
def test_arbitrary_query_bytes_never_cause_a_5xx(client: Client, world: World, raw_query: bytes) -> None:
    query = quote(raw_query, safe="=&")
    response = client.http.get("/postback?" + query)

    assert_refused_cleanly(client, response.status_code, response.json())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(FIELDS),
            st.text(max_size=40)
            | st.sampled_from(
                ["NaN", "1e309", "-5", "1,5", "Infinity", "{click_id}", "[clickid]", "a\r\nb", "\x00"]
            ),
        ),
        max_size=10,
    )
)
def test_malformed_values_are_refused_with_a_reason(
    client: Client, world: World, params: list[tuple[str, str]]
) -> None:
    # With the real token but no genuine click ID, nothing here can be a valid postback.
    response = client.http.get("/postback", params=[*params, ("token", world.token)])

    assert_refused_cleanly(client, response.status_code, response.json())
    assert client.items("/conversions") == []


def test_each_malformed_input_has_its_reason(client: Client, world: World) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    good = {"click_id": cid, "event": "deposit", "token": world.token}
    cases: list[tuple[object, str]] = [
        ({**good, "payout": "NaN"}, "invalid_payout"),
        ({**good, "payout": "1e309"}, "invalid_payout"),
        ({**good, "payout": "-10"}, "invalid_payout"),
        ({**good, "payout": "10,50"}, "invalid_payout"),
        ({**good, "currency": "ZZZ"}, "unknown_currency"),
        ({**good, "sub1": "a\r\nb"}, "invalid_characters"),
        ({**good, "sub1": "x" * 300}, "parameter_too_long"),
        ({**good, "txn_id": "t" * 200}, "parameter_too_long"),
        ({**good, "player_id": "p" * 256}, "parameter_too_long"),
        ({**good, "x\x00y": "1"}, "invalid_characters"),
        ({**good, "n\x00" * 40: "1"}, "parameter_too_long"),
        ([*good.items(), ("event", "registration")], "repeated_parameter"),
        ({**good, "sub2": "{Sub5}"}, "unreplaced_macro"),
        ({**good, **{f"p{i}": "1" for i in range(70)}}, "too_many_parameters"),
    ]
    for params, reason in cases:
        response = client.http.get("/postback", params=params)  # type: ignore[arg-type]
        assert (response.status_code, response.json()["reason"]) == (
            BY_CODE[reason].http_status,
            reason,
        ), params
    assert client.http.get("/postback?click_id=%ff%fe&token=x").json()["reason"] == ("invalid_characters")
    assert client.items("/conversions") == []
    assert len(client.items("/postbacks", limit=500)) == len(cases) + 1


def test_a_placeholder_or_a_click_id_in_the_wrong_name_is_told_as_such(client: Client, world: World) -> None:
    cid = client.click(world.alice_casino)
    client.flush()
    # A shell-like macro, and one encoded twice: %257B reaches intake as %7B.
    for query in ("click_id=$clickid", "click_id=%257Bclick_id%257D"):
        sent = client.http.get(f"/postback?{query}&event=registration&token={world.token}").json()
        assert sent["reason"] == "unreplaced_macro", sent
    # A click ID under the transaction ID's name: the refusal says where it is.
    sent = client.http.get(f"/postback?transaction_id={cid}&event=registration&token={world.token}").json()
    assert (sent["reason"], sent["detail"]) == (
        "missing_click_id",
        "parameter 'transaction_id' holds a click ID: send it as click_id"
        " ('transaction_id' is read as txn_id)",
    )


def test_head_request_records_nothing(client: Client, world: World) -> None:
    response = client.http.head("/postback", params={"event": "x"})

    assert response.status_code == 405
    assert client.items("/postbacks") == []
