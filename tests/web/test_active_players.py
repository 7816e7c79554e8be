"""GET /api/reports/active-players and /api/reports/active-players/cohorts: which events make a player
active per vertical, payable conversions only, months in a zone, cohorts followed month by month,
filters, CSV and clear errors (docs/reports.md, "Active players").

Dates are months before the current one (events may be at most CLICKBACK_MAX_EVENT_AGE_DAYS old)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from tests.conftest import Client, World
from tests.web.test_reports import link_of, write_click

_txn = count()


def this_month() -> int:
    now = datetime.now(UTC)
    return now.year * 12 + now.month - 1


def label(month: int) -> str:
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def moment(month: int, day: int = 10, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(month // 12, month % 12 + 1, day, hour, minute, tzinfo=UTC)


def last_day(month: int) -> int:
    return (moment(month + 1, 1) - timedelta(days=1)).day


def send(
    client: Client,
    token: str,
    click_id: str,
    event: str,
    at: datetime | None = None,
    player: str = "",
    **extra: str,
) -> dict[str, Any]:
    """A postback of its own transaction; `at` its event time (none: now)."""
    params = {"click_id": click_id, "event": event, "token": token, "txn_id": f"T-{next(_txn)}", **extra}
    if player:
        params["player_id"] = player
    if at is not None:
        params["event_time"] = at.isoformat()
    response = client.postback(**params)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    assert reply["result"] in ("accepted", "updated"), reply
    return reply


def active(client: Client, **params: Any) -> Any:
    return client.api("GET", "/reports/active-players", params=params)


def cohorts(client: Client, **params: Any) -> Any:
    return client.api("GET", "/reports/active-players/cohorts", params=params)


def by_month(report: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in report["rows"]:
        out[row["key"]["month"]] = out.get(row["key"]["month"], 0) + row["active_players"]
    return {month: n for month, n in out.items() if n}


# (the event as sent, its amount): one player each, each with an affiliate of its own.
TRIED = {
    "registration": ("registration", ""),
    "first_deposit": ("first_deposit", "20"),
    "wager": ("wager", "5"),
    "ngr_won": ("net_revenue", "30"),
    "ngr_lost": ("net_revenue", "-30"),
    "ngr_zero": ("net_revenue", "0"),
    "withdrawal": ("withdrawal", "10"),
    "bonus": ("bonus", "5"),
    "chargeback": ("chargeback", "20"),
}
ACTIVE_BY = {
    "casino": {"first_deposit", "wager", "ngr_won", "ngr_lost"},
    "poker": {"wager", "ngr_won", "ngr_lost"},
    "sportsbook": {"first_deposit", "wager"},
    "ewallet": {"first_deposit", "withdrawal"},
    None: {"first_deposit", "wager", "ngr_won", "ngr_lost"},
}


@pytest.mark.parametrize("vertical", list(ACTIVE_BY))
def test_the_offers_vertical_says_which_events_make_a_player_active(
    client: Client, world: World, vertical: str | None
) -> None:
    body = {
        "advertiser_id": world.northstar["id"],
        "name": f"Northstar {vertical}",
        "url_template": "https://play.example.com/?cid={click_id}",
        "currency": "EUR",
    } | ({"vertical": vertical} if vertical else {})
    offer = client.api("POST", "/offers", json=body)
    tried_by: dict[int, str] = {}
    for name, (event, amount) in TRIED.items():
        affiliate = client.api("POST", "/affiliates", json={"name": f"Affiliate {name}"})
        link = client.api("POST", "/links", json={"affiliate_id": affiliate["id"], "offer_id": offer["id"]})
        tried_by[affiliate["id"]] = name
        cid = write_click(client, link, datetime.now(UTC) - timedelta(minutes=5))
        send(client, world.token, cid, event, player=f"P-{name}", **({"payout": amount} if amount else {}))

    month = label(this_month())
    found = active(client, **{"from": month, "to": month})

    assert {tried_by[r["key"]["affiliate"]] for r in found["rows"] if r["active_players"]} == ACTIVE_BY[
        vertical
    ]
    assert found["totals"]["active_players"] == len(ACTIVE_BY[vertical])
    # Registrations and FTDs beside, on rows of their own when nobody there was active.
    milestones = {tried_by[r["key"]["affiliate"]]: (r["registrations"], r["ftds"]) for r in found["rows"]}
    assert milestones["registration"] == (1, 0) and milestones["first_deposit"] == (0, 1)
    assert (found["totals"]["registrations"], found["totals"]["ftds"]) == (1, 1)
    assert found["activity"][vertical or "default"] == sorted(
        {TRIED[n][0] for n in ACTIVE_BY[vertical]}
        | ({"deposit"} if "first_deposit" in ACTIVE_BY[vertical] else set())
    )


def test_only_payable_conversions_of_real_clicks_count(client: Client, world: World) -> None:
    link = link_of(client, world.alice_casino)  # an offer without a vertical: any deposit counts
    clicked = datetime.now(UTC) - timedelta(minutes=5)
    for player, status in (("approved", "approved"), ("pending", "pending"), ("rejected", "rejected")):
        send(
            client,
            world.token,
            write_click(client, link, clicked),
            "first_deposit",
            player=player,
            status=status,
        )
    # Cancelled after it was reported: the same transaction with its new status.
    cid = write_click(client, link, clicked)
    first = {"player": "cancelled", "txn_id": "DEP-C", "payout": "50"}
    send(client, world.token, cid, "first_deposit", **first)
    send(client, world.token, cid, "first_deposit", status="cancelled", **first)
    # An advertiser that sends no player ID: the click stands for its player.
    anonymous = write_click(client, link, clicked)
    send(client, world.token, anonymous, "first_deposit")
    send(client, world.token, anonymous, "deposit")
    # Two accounts opened from one click (a shared device): two players.
    shared = write_click(client, link, clicked)
    for sibling in ("sibling-1", "sibling-2"):
        send(client, world.token, shared, "first_deposit", player=sibling)
    # The postback tester's traffic counts nowhere (ADR 13).
    test_click = client.api("POST", "/tester/clicks", json={"offer_id": world.casino["id"]})["click_id"]
    fired = client.api(
        "POST",
        "/tester/postbacks",
        json={"click_id": test_click, "event": "first_deposit", "payout": "500", "player_id": "tester"},
    )
    assert fired["refused"] is False

    month = label(this_month())
    found = active(client, **{"from": month, "to": month})

    assert found["totals"] == {"active_players": 5, "registrations": 0, "ftds": 5}


def test_months_are_the_zones_and_ngr_counts_in_the_month_it_covers(client: Client, world: World) -> None:
    link = link_of(client, world.alice_casino)
    m = this_month()
    clicked = moment(m - 3, day=2)
    late = write_click(client, link, clicked)
    # 23:30 UTC on a month's last day: the next month in Berlin (always ahead of UTC).
    send(client, world.token, late, "first_deposit", moment(m - 2, last_day(m - 2), 23, 30), "late")
    send(client, world.token, late, "deposit", moment(m - 1, 15), "late")
    early = write_click(client, link, clicked)
    # 02:30 UTC on a month's first day: the month before in New York (always behind UTC).
    send(client, world.token, early, "wager", moment(m - 1, 1, 2, 30), "early", payout="5")
    ngr = write_click(client, link, clicked)
    # A report of the month before, sent in the month after: it covers the month it names.
    send(client, world.token, ngr, "ngr", moment(m - 2, 3), "ngr", payout="12", period=label(m - 3))
    period = {"from": label(m - 3), "to": label(m - 1)}

    utc = active(client, **period)
    berlin = active(client, **period, zone="Europe/Berlin")
    new_york = active(client, **period, zone="America/New_York")

    assert by_month(utc) == {label(m - 3): 1, label(m - 2): 1, label(m - 1): 2}
    assert by_month(berlin) == {label(m - 3): 1, label(m - 1): 2}
    assert by_month(new_york) == {label(m - 3): 1, label(m - 2): 2, label(m - 1): 1}
    # Over the period each player once, though "late" was active in two months.
    assert utc["totals"]["active_players"] == berlin["totals"]["active_players"] == 3
    assert berlin["zone"] == "Europe/Berlin" and berlin["from"] == label(m - 3)
    # The FTD beside, in the zone's month as /api/reports counts it.
    ftds = {r["key"]["month"]: r["ftds"] for r in berlin["rows"] if r["ftds"]}
    assert ftds == {label(m - 1): 1}
    report = client.report(
        **{"from": moment(m - 3, 1).date().isoformat(), "to": moment(m, 1).date().isoformat()},
        group_by="month",
        zone="Europe/Berlin",
    )
    assert {r["key"]["month"]: r["ftds"] for r in report["rows"] if r["ftds"]} == ftds


def test_cohorts_follow_a_months_registrations_for_three_months(client: Client, world: World) -> None:
    link = link_of(client, world.alice_casino)
    m = this_month()
    r = m - 3
    clicked = moment(r - 1, day=2)

    def player(name: str, registered: int, *active_in: int, status: str = "approved") -> None:
        cid = write_click(client, link, clicked)
        send(client, world.token, cid, "registration", moment(registered, 5), name, status=status)
        for n, month in enumerate(active_in):
            # The current month: now, which may be its first minutes.
            at = None if month == m else moment(month, 20 if month == registered else 8 + n)
            send(client, world.token, cid, "deposit", at, name, payout="10")

    player("A", r, r, r + 1, r + 3)  # +0, +1, +3
    player("B", r, r + 1, r + 2)  # +1, +2
    player("C", r + 1, r + 1, r + 2)  # +0, +1
    player("F", r + 2)  # never active
    player("D", r - 1, r)  # registered before the period: in no cohort of it
    player("E", r, r, status="rejected")  # a rejected registration makes no cohort member

    found = cohorts(client, **{"from": label(r), "to": label(r + 2)})
    rows = [(row["key"]["month"], row["registrations"], row["active"]) for row in found["rows"]]

    # r + 3 is the current month (so far); later ones have not begun: null, not zero.
    assert rows == [
        (label(r), 2, [1, 2, 1, 1]),
        (label(r + 1), 1, [1, 1, 0, None]),
        (label(r + 2), 1, [0, 0, None, None]),
    ]
    assert all(
        row["key"]["offer"] == world.casino["id"] and row["key"]["affiliate"] == world.alice["id"]
        for row in found["rows"]
    )
    # The last cohort of a period is followed past its end.
    alone = cohorts(client, **{"from": label(r), "to": label(r)})
    assert [(row["registrations"], row["active"]) for row in alone["rows"]] == [(2, [1, 2, 1, 1])]
    response = client.http.get(
        "/api/reports/active-players/cohorts",
        params={"from": label(r), "to": label(r + 2), "format": "csv"},
        headers=client.auth,
    )
    assert response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == [
        "registration month in UTC",
        "advertiser",
        "offer",
        "affiliate",
        "registrations",
        "active_month_0",
        "active_month_1",
        "active_month_2",
        "active_month_3",
    ]
    assert [line[:1] + line[4:] for line in lines[1:]] == [
        [label(r), "2", "1", "2", "1", "1"],
        [label(r + 1), "1", "1", "1", "0", ""],
        [label(r + 2), "1", "0", "0", "", ""],
    ]


def test_filters_keep_to_the_owners_asked_for(client: Client, world: World) -> None:
    clicked = datetime.now(UTC) - timedelta(minutes=5)
    southgate = world.southgate["token"]
    for code, token, player in (
        (world.alice_casino, world.token, "alice-1"),
        (world.alice_casino, world.token, "alice-2"),
        (world.bob_casino, world.token, "bob-1"),
        (world.alice_sportsbook, world.token, "alice-3"),
        (world.rival_link, southgate, "bob-rival"),
    ):
        cid = write_click(client, link_of(client, code), clicked)
        send(client, token, cid, "registration", player=player)
        send(client, token, cid, "first_deposit", player=player, payout="20")
    month = label(this_month())
    period = {"from": month, "to": month}

    def owners(found: Any) -> set[tuple[int, int, int]]:
        return {(r["key"]["offer"], r["key"]["affiliate"], r["active_players"]) for r in found["rows"]}

    casino, sportsbook, rival = world.casino["id"], world.sportsbook["id"], world.rival_offer["id"]
    alice, bob = world.alice["id"], world.bob["id"]
    assert owners(active(client, **period, affiliate=alice)) == {(casino, alice, 2), (sportsbook, alice, 1)}
    assert owners(active(client, **period, affiliate=[alice, bob], offer=casino)) == {
        (casino, alice, 2),
        (casino, bob, 1),
    }
    assert owners(active(client, **period, advertiser=world.southgate["id"])) == {(rival, bob, 1)}
    assert owners(active(client, **period, advertiser=world.southgate["id"], offer=casino)) == set()
    assert active(client, **period, affiliate=bob)["totals"] == {
        "active_players": 2,
        "registrations": 2,
        "ftds": 2,
    }
    bobs = cohorts(client, **period, affiliate=bob)
    assert {(r["key"]["offer"], r["registrations"], r["active"][0]) for r in bobs["rows"]} == {
        (casino, 1, 1),
        (rival, 1, 1),
    }


def test_the_csv_holds_the_rows_and_the_periods_totals(client: Client, world: World) -> None:
    clicked = datetime.now(UTC) - timedelta(minutes=5)
    for code, player in ((world.alice_casino, "a"), (world.bob_casino, "b"), (world.bob_casino, "c")):
        send(client, world.token, write_click(client, link_of(client, code), clicked), "wager", player=player)
    month = label(this_month())
    params = {"from": month, "to": month, "zone": "Europe/Berlin"}
    found = active(client, **params)

    response = client.http.get(
        "/api/reports/active-players", params={**params, "format": "csv"}, headers=client.auth
    )

    assert response.headers["content-type"].startswith("text/csv")
    assert "active-players-" in response.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == [
        "month in Europe/Berlin",
        "advertiser",
        "offer",
        "affiliate",
        "active_players",
        "registrations",
        "ftds",
    ]
    assert lines[1:-1] == [
        [
            r["key"]["month"],
            str(r["key"]["advertiser"]),
            str(r["key"]["offer"]),
            str(r["key"]["affiliate"]),
            str(r["active_players"]),
            str(r["registrations"]),
            str(r["ftds"]),
        ]
        for r in found["rows"]
    ]
    assert lines[-1] == ["total", "", "", "", "3", "0", "0"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13", "to": "2026-12"}, "from"),
        ({"from": "2026-11", "to": "2026-10"}, "to"),
        ({"from": "2024-01", "to": "2026-01"}, "to"),
        ({"from": "2026-11", "to": "2026-11", "zone": "Mars/Olympus"}, "zone"),
        ({"from": "2026-11", "to": "2026-11", "affiliate": "0"}, "affiliate"),
        ({"from": "2026-11", "to": "2026-11", "offer": [str(n) for n in range(1, 102)]}, "offer"),
        ({"from": "2026-11", "to": "2026-11", "format": "xlsx"}, "format"),
    ],
)
@pytest.mark.parametrize("path", ["/api/reports/active-players", "/api/reports/active-players/cohorts"])
def test_a_bad_parameter_is_a_422_naming_it(
    client: Client, path: str, params: dict[str, Any], field: str
) -> None:
    response = client.http.get(path, params=params, headers=client.auth)

    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["query", field]
