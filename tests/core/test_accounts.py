from datetime import UTC, datetime, timedelta

import pytest

from clickback.core.accounts import (
    LOGIN_FAILURES_ALLOWED,
    LOGIN_WINDOW,
    Access,
    Principal,
    Role,
    deactivation_problem,
    digest,
    key_prefix,
    login_problem,
    login_wait,
    new_key,
    normal_login,
    password_problem,
    tenant_problem,
)

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
ALICE = Principal(Role.AFFILIATE, "alice", user_id=2, affiliate_id=1)
NORTHSTAR = Principal(Role.ADVERTISER, "northstar", user_id=3, advertiser_id=1)
MANAGER = Principal(Role.MANAGER, "boss", user_id=1)


@pytest.mark.parametrize(
    ("role", "affiliate", "advertiser", "ok"),
    [
        (Role.MANAGER, None, None, True),
        (Role.MANAGER, 1, None, False),
        (Role.MANAGER, None, 1, False),
        (Role.AFFILIATE, 1, None, True),
        (Role.AFFILIATE, None, None, False),
        (Role.AFFILIATE, 1, 1, False),
        (Role.ADVERTISER, None, 1, True),
        (Role.ADVERTISER, None, None, False),
        (Role.ADVERTISER, 1, 1, False),
    ],
)
def test_a_tenant_user_names_exactly_one_tenant_and_a_manager_none(
    role: Role, affiliate: int | None, advertiser: int | None, ok: bool
) -> None:
    assert (tenant_problem(role, affiliate, advertiser) is None) is ok


def test_each_role_owns_only_its_own_rows() -> None:
    assert MANAGER.owns(affiliate_id=9) and MANAGER.owns(advertiser_id=9) and MANAGER.owns()
    assert ALICE.owns(affiliate_id=1)
    assert not ALICE.owns(affiliate_id=2)
    assert not ALICE.owns(advertiser_id=1)  # an advertiser id equal to hers is no row of hers
    assert not ALICE.owns(affiliate_id=None)
    assert NORTHSTAR.owns(advertiser_id=1)
    assert not NORTHSTAR.owns(advertiser_id=2)
    assert not NORTHSTAR.owns(affiliate_id=1)


@pytest.mark.parametrize(
    ("access", "roles"),
    [
        (Access.MANAGER, {Role.MANAGER}),
        (Access.AFFILIATE, {Role.MANAGER, Role.AFFILIATE}),
        (Access.ADVERTISER, {Role.MANAGER, Role.ADVERTISER}),
        (Access.TENANTS, set(Role)),
    ],
)
def test_who_may_call_each_kind_of_route(access: Access, roles: set[Role]) -> None:
    assert {p.role for p in (MANAGER, ALICE, NORTHSTAR) if p.may(access)} == roles


def test_a_key_is_found_by_its_prefix_and_only_a_key_of_ours_has_one() -> None:
    key, prefix = new_key()
    assert key_prefix(key) == prefix
    assert key_prefix(key[:-1]) is None
    assert key_prefix(key + "x") is None
    assert key_prefix("cbk_" + "x" * 200) is None
    assert key_prefix("test-api-key") is None
    assert new_key()[0] != key
    assert digest(key) != digest(key[:-1] + ("A" if key[-1] != "A" else "B"))


@pytest.mark.parametrize(
    ("given", "ok"),
    [
        ("admin", True),
        ("ann@example.com", True),
        ("a.b-c_d", True),
        ("", False),
        ("-x", False),
        ("a b", False),
        ("ü", False),
        ("x" * 65, False),
    ],
)
def test_logins(given: str, ok: bool) -> None:
    assert (login_problem(given) is None) is ok


def test_a_login_is_compared_lower_cased_and_trimmed() -> None:
    assert normal_login("  Ann@Example.COM ") == "ann@example.com"


def test_passwords_have_a_floor_and_a_ceiling() -> None:
    assert password_problem("x" * 11) is not None
    assert password_problem("x" * 12) is None
    assert password_problem("x" * 257) is not None


def test_logins_wait_after_five_failures_until_the_oldest_counted_leaves_the_window() -> None:
    minute = timedelta(minutes=1)
    four = [NOW - n * minute for n in range(4)]
    assert login_wait(four, NOW) is None
    five = [*four, NOW - 10 * minute]
    assert LOGIN_FAILURES_ALLOWED == 5
    assert login_wait(five, NOW) == LOGIN_WINDOW - 10 * minute
    # Failures older than the window do not count.
    assert login_wait([*four, NOW - LOGIN_WINDOW], NOW) is None
    # With six, the wait is until only four are left in the window.
    six = [*five, NOW - 12 * minute]
    assert login_wait(six, NOW) == LOGIN_WINDOW - 10 * minute


@pytest.mark.parametrize(
    ("role", "others", "refused"),
    [
        (Role.MANAGER, 0, True),
        (Role.MANAGER, 1, False),
        (Role.AFFILIATE, 0, False),
        (Role.ADVERTISER, 0, False),
    ],
)
def test_only_the_last_active_manager_cannot_be_deactivated(role: Role, others: int, refused: bool) -> None:
    assert (deactivation_problem(role, others) is not None) is refused
