import json
from datetime import UTC, datetime
from decimal import Decimal

from clickback.core.accounts import BOOTSTRAP, Principal, Role
from clickback.core.audit import (
    BOOTSTRAP_ACTOR,
    HIDDEN,
    MAX_STATE_LEN,
    Actor,
    Kind,
    actor_of,
    change,
    command_line,
)

BOSS = Actor("boss", 2)


def test_the_actor_is_the_users_login_or_the_bootstrap_key() -> None:
    assert actor_of(BOOTSTRAP) == Actor(BOOTSTRAP_ACTOR)
    assert actor_of(Principal(Role.MANAGER, "boss", user_id=2)) == BOSS


def test_only_the_fields_that_changed_are_kept() -> None:
    before = {"id": 7, "name": "Casino", "status": "active", "updated_at": datetime(2026, 1, 1, tzinfo=UTC)}
    after = before | {"status": "paused", "updated_at": datetime(2026, 1, 2, tzinfo=UTC)}

    done = change(BOSS, Kind.OFFER, 7, "status", before, after)

    assert done is not None
    assert (json.loads(done.before or ""), json.loads(done.after or "")) == (
        {"status": "active"},
        {"status": "paused"},
    )


def test_the_same_value_again_is_no_change() -> None:
    row = {"id": 7, "payouts": '{"registration": "1.50"}'}
    assert change(BOSS, Kind.OFFER, 7, "edit", row, dict(row)) is None


def test_a_creation_keeps_the_whole_row_with_secrets_hidden_and_json_columns_decoded() -> None:
    row = {"id": 1, "token": "s3cret", "signing_secret": None, "payouts": '{"ftd": "50"}', "name": "[VIP]"}

    done = change(BOSS, Kind.ADVERTISER, 1, "create", None, row)

    assert done is not None and done.before is None
    assert json.loads(done.after or "") == {
        "id": 1,
        "token": HIDDEN,
        "signing_secret": None,
        "payouts": {"ftd": "50"},
        "name": "[VIP]",
    }
    assert "s3cret" not in (done.after or "")


def test_values_are_shown_as_text_and_cropped_to_their_limits() -> None:
    before = {"amount": Decimal("1.50"), "url_template": "x"}
    after = {"amount": Decimal("2.00"), "url_template": "y" * 20_000}

    done = change(BOSS, Kind.OFFER, 1, "e" * 100, before, after, reason="r" * 1000)

    assert done is not None
    assert len(done.after or "") <= MAX_STATE_LEN and "cropped" in json.loads(done.after or "")
    assert json.loads(done.before or "")["amount"] == "1.50"
    assert len(done.action) == 32 and len(done.reason or "") == 500


def test_fields_kept_name_a_row_beside_what_changed_and_nothing_changed_is_still_no_change() -> None:
    pair = {"base": "EUR", "quote": "USD"}
    done = change(
        Actor("ann", 1),
        Kind.FX_RATE,
        0,
        "edit",
        pair | {"rate": "1"},
        pair | {"rate": "2"},
        keep=frozenset(pair),
    )
    assert done is not None and json.loads(done.after or "") == pair | {"rate": "2"}
    assert change(Actor("ann", 1), Kind.FX_RATE, 0, "edit", pair, pair, keep=frozenset(pair)) is None
    assert command_line("root") == Actor("command line (root)") and command_line("") == Actor("command line")
