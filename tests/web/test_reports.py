"""GET /api/reports: grouping, filters, sorting and paging, zones, date basis, CSV, comparison,
currency conversion, and clear errors (docs/reports.md)."""

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import Connection, select

from clickback.core.accounts import Role
from clickback.core.intake import RawPostback
from clickback.core.model import Click, Traits
from clickback.errors import StartupError
from clickback.store import clicks as click_store
from clickback.store.rollups import forget_zone, keep_zones
from clickback.store.tables import report_rollups, report_week_state
from clickback.store.weeks import sum_weeks
from clickback.web.reporting import FILTERABLE
from tests.conftest import Client, World
from tests.web.personas import Keys, add_user, sign_in
from tests.web.test_commissions import CPA_100, deal

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def write_click(
    client: Client, link: dict[str, Any], at: datetime, sub1: str = "", country: str = "DE"
) -> str:
    """A click at a chosen time, through the click writer's own store function."""
    runtime = client.node.runtime
    click = Click(
        runtime.tracker.codec.mint(at),
        at,
        link["id"],
        link["affiliate_id"],
        link["offer_id"],
        "",
        (sub1, "", "", "", ""),
        "",
        "",
        "203.0.113.9",
        UA,
        "",
        Traits(country, "", "", None, "desktop", "Linux", "Chrome", ""),
        f"v-{at.timestamp()}-{sub1}",
    )
    client.node.call(lambda: click_store.write_batch(runtime.db, [click], {}, 3_600_000))
    return click.click_id


def link_of(client: Client, code: str) -> dict[str, Any]:
    return next(link for link in client.items("/links") if link["code"] == code)


def get(client: Client, **params: Any) -> Any:
    return client.api("GET", "/reports", params=params)


def refused(client: Client, **params: Any) -> dict[str, Any]:
    response = client.http.get("/api/reports", params=params, headers=client.auth)
    assert response.status_code == 422, response.text
    return response.json()


def test_sorting_paging_and_filters(client: Client, world: World) -> None:
    for sub1, n in (("a", 3), ("b", 1), ("c", 2), ("=cmd|' /C calc'!A0", 1)):
        for _ in range(n):
            client.click(world.alice_casino, sub1=sub1)
    client.click(world.bob_casino, sub1="a")
    client.flush()

    first = client.report(group_by="sub1", sort="-clicks", limit="2")
    assert [(r["key"]["sub1"], r["clicks"]) for r in first["rows"]] == [("a", 4), ("c", 2)]
    assert (first["total_rows"], first["source"], first["totals"]["clicks"]) == (4, "values", 8)
    rest = client.report(group_by="sub1", sort="-clicks", limit="2", offset="2")
    assert [r["key"]["sub1"] for r in rest["rows"]] == ["=cmd|' /C calc'!A0", "b"]
    assert rest["total_rows"] == 4
    # Past the last row the page holds no count of its own: the rows are counted apart.
    beyond = client.report(group_by="sub1", sort="-clicks", limit="2", offset="9")
    assert (beyond["rows"], beyond["total_rows"]) == ([], 4)
    alice = client.report(group_by="sub1", affiliate=str(world.alice["id"]), sort="sub1")
    assert [(r["key"]["sub1"], r["clicks"]) for r in alice["rows"]][:3] == [
        ("=cmd|' /C calc'!A0", 1),
        ("a", 3),
        ("b", 1),
    ]
    assert alice["totals"]["clicks"] == 7
    # Filters repeat; an advertiser filter is on its offers.
    two = client.report(sub1=["a", "b"], group_by="")
    assert two["totals"]["clicks"] == 5
    rival = client.report(advertiser=str(world.southgate["id"]), group_by="")
    assert rival["totals"]["clicks"] == 0
    by_advertiser = client.report(group_by="advertiser")
    assert [(r["key"]["advertiser"], r["clicks"]) for r in by_advertiser["rows"]] == [
        (world.northstar["id"], 8)
    ]


def test_every_store_gives_the_same_answer(client: Client, world: World) -> None:
    """The raw tables and the rollups agree (two value dimensions at once come from the raw ones)."""
    for sub1 in ("x", "y", "y"):
        cid = client.click(world.alice_casino, sub1=sub1, sub2="s2")
    client.flush()
    client.postback(click_id=cid, event="registration", token=world.token)
    from_values = client.report(group_by="sub1")
    from_raw = client.report(group_by="sub1,sub2")
    assert (from_values["source"], from_raw["source"]) == ("values", "raw")
    assert [
        (r["key"]["sub1"], r["clicks"], r["registrations"], r["revenue"]) for r in from_values["rows"]
    ] == [(r["key"]["sub1"], r["clicks"], r["registrations"], r["revenue"]) for r in from_raw["rows"]]
    assert from_raw["totals"] == from_values["totals"]
    # A dimension both grouped by and filtered on, in the raw tables as in a rollup.
    filtered = client.report(group_by="sub1,sub2", sub1="y", sub2="s2")
    assert [(r["key"], r["clicks"]) for r in filtered["rows"]] == [({"sub1": "y", "sub2": "s2"}, 2)]
    assert client.report(group_by="sub1", sub1="y")["rows"][0]["clicks"] == 2
    assert client.report(group_by="day", zone="Asia/Kolkata")["source"] == "raw"
    assert client.report(group_by="day", zone="America/New_York")["source"] == "hours"
    assert client.report(group_by="day", zone="Europe/Berlin")["source"] == "values"  # the links' rows
    assert client.report(group_by="day,country", zone="Europe/Berlin")["source"] == "days"


def received(client: Client, world: World, at: datetime, **params: str) -> dict[str, Any]:
    """A postback as the endpoint hands it to the service, received `at` (in the past)."""
    query = urlencode({"token": world.token, **params}).encode()
    raw = RawPostback(received_at=at, ip="198.51.100.7", method="GET", query=query)
    runtime = client.node.runtime
    return dict(client.node.call(lambda: runtime.postbacks.receive(raw)).body())


def test_a_cpa_reversed_months_later_counts_in_the_month_it_happens(client: Client, world: World) -> None:
    """A CPA booked for a first deposit of 25 October, reversed on 6 December: the ledger books
    the reversal in December (ADR 7), and so does the report by conversion date, from the rollups
    and from the raw tables alike; by click date both are the click's (October)."""
    deal(client, world.casino, CPA_100)
    link = link_of(client, world.bob_casino)
    click_id = write_click(client, link, datetime(2026, 10, 25, 9, tzinfo=UTC))
    deposited = datetime(2026, 10, 25, 10, tzinfo=UTC)
    registration = {"click_id": click_id, "event": "registration", "player_id": "P5"}
    assert received(client, world, deposited, **registration)["result"] == "accepted"
    deposit = {"event": "deposit", "player_id": "P5", "txn_id": "P5-d1"}
    assert received(client, world, deposited, **deposit, payout="50")["result"] == "accepted"
    reversed_on = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert received(client, world, reversed_on, **deposit, status="rejected")["result"] == "updated"
    entries = client.items("/commissions", affiliate_id=world.bob["id"])
    assert sorted((e["period"], e["amount"]) for e in entries) == [
        ("2026-10", "100.00"),
        ("2026-12", "-100.00"),
    ]

    base = {"from": "2026-10-01", "to": "2026-12-31", "affiliate": str(world.bob["id"])}
    # By month: from a rollup; by month and two value dimensions: from the raw tables.
    for group_by, raw in (("month", False), ("month,country,sub1", True)):
        reply = get(client, **base, group_by=group_by)
        source = reply["source"]
        assert (source == "raw") == raw, source
        months = [(r["key"]["month"], r["cpa_commission"], r["qualified_cpas"]) for r in reply["rows"]]
        # The commission moves with the ledger; qualified_cpas counts the qualifications that
        # stand, on the day the player qualified (ADR 17): this one no longer does.
        assert months == [("2026-10", {"EUR": "100.00"}, 0), ("2026-12", {"EUR": "-100.00"}, 0)], source
        assert reply["totals"]["cpa_commission"] == {}  # +100 and -100
        cohort = get(client, **base, group_by=group_by, basis="click")
        assert [(r["key"]["month"], r["qualified_cpas"]) for r in cohort["rows"]] == [("2026-10", 0)], source


def test_days_follow_the_zone_and_the_basis_is_named(client: Client, world: World) -> None:
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # the 21st in Berlin
    cid = write_click(client, link_of(client, world.alice_casino), late)
    event = late + timedelta(days=2)
    client.postback(click_id=cid, event="registration", token=world.token, event_time=event.isoformat())
    period = {"from": "2026-11-19", "to": "2026-11-24", "group_by": "day"}

    def days(**params: str) -> list[tuple[str, int, int]]:
        found = client.report(**period, **params)
        return [(r["key"]["day"], r["clicks"], r["registrations"]) for r in found["rows"]]

    assert days() == [("2026-11-20", 1, 0), ("2026-11-22", 0, 1)]
    assert days(zone="Europe/Berlin") == [("2026-11-21", 1, 0), ("2026-11-23", 0, 1)]
    assert days(basis="click") == [("2026-11-20", 1, 1)]
    cohort = client.report(**period, basis="click")
    assert cohort["basis"] == "click" and "cohort" in cohort["basis_note"]
    csv_text = client.http.get(
        "/api/reports", params={**period, "zone": "Europe/Berlin", "format": "csv"}, headers=client.auth
    ).text
    assert csv_text.startswith("day in Europe/Berlin by conversion date,clicks,")
    lines = list(csv.reader(io.StringIO(csv_text)))
    assert [r[:3] for r in lines[1:]] == [
        ["2026-11-21", "1", "1"],
        ["2026-11-23", "0", "0"],
        ["total", "1", "1"],
    ]
    assert {len(r) for r in lines} == {len(lines[0])}


def test_csv_has_the_tables_rows_and_totals_and_is_safe_in_a_spreadsheet(
    client: Client, world: World
) -> None:
    client.click(world.alice_casino, sub1='=HYPERLINK("http://x")')
    client.click(world.alice_casino, sub1="+1")
    cid = client.click(world.bob_casino, sub1="plain")
    client.flush()
    client.postback(click_id=cid, event="ftd", payout="75.5", currency="USD", token=world.token)

    table = client.report(group_by="sub1", sort="sub1")
    response = client.http.get(
        "/api/reports",
        params={**table_params(), "group_by": "sub1", "sort": "sub1", "format": "csv"},
        headers=client.auth,
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    header, body, total = rows[0], rows[1:-1], rows[-1]
    assert all(len(r) == len(header) for r in rows)
    assert header[:3] == ["period in UTC by conversion date", "sub1", "clicks"]
    assert "ftd_amount USD" in header and "revenue EUR" in header
    assert [r[1] for r in body] == ["'+1", '\'=HYPERLINK("http://x")', "plain"]
    assert [int(r[header.index("clicks")]) for r in body] == [r["clicks"] for r in table["rows"]]
    assert body[2][header.index("ftd_amount USD")] == "75.50"
    assert total[0] == "total" and int(total[header.index("clicks")]) == table["totals"]["clicks"] == 3
    assert total[header.index("cr_ftd")] == f"{1 / 3:.6f}"


def test_profit_is_shown_only_where_revenue_is_known(client: Client, world: World) -> None:
    """The casino lists prices for registrations and first deposits (revenue known); the
    sportsbook lists none: its FTD earns the affiliate a CPA, its profit is no figure (not minus
    the commission), in JSON and in CSV."""
    for offer in (world.casino, world.sportsbook):
        deal(client, offer, CPA_100)
    for n, link in enumerate((world.alice_casino, world.alice_sportsbook)):
        cid = client.click(link)
        client.flush()
        # The registration with no payout (its price, if the offer lists one), the deposit with its own.
        for event, extra in (("reg", {}), ("ftd", {"payout": "30"})):
            reply = client.postback(
                click_id=cid,
                event=event,
                player_id=f"P-{n}",
                txn_id=f"{event}-{n}",
                token=world.token,
                **extra,
            )
            assert reply.json()["result"] == "accepted", reply.text
    query = {"group_by": "offer", "sort": "offer"}
    found = client.report(**query)
    rows = {r["key"]["offer"]: r for r in found["rows"]}
    casino, sportsbook = rows[world.casino["id"]], rows[world.sportsbook["id"]]
    assert (casino["revenue"], casino["commission"], casino["profit"]) == (
        {"EUR": "51.50"},
        {"EUR": "100.00"},
        {"EUR": "-48.50"},
    )
    assert (sportsbook["revenue"], sportsbook["commission"]) == ({}, {"EUR": "100.00"})
    assert [sportsbook[m] for m in ("profit", "revenue_profit", "revenue_roi")] == [None] * 3
    assert sportsbook["traffic_profit"] == {"EUR": "100.00"}  # the affiliate's view needs no revenue
    # The totals know EUR revenue: their profit is it less all of their commission.
    assert found["totals"]["profit"] == {"EUR": "-148.50"}
    # Sorted by profit, the one without a figure comes last either way.
    for sort in ("profit", "-profit"):
        order = [r["key"]["offer"] for r in client.report(group_by="offer", sort=sort)["rows"]]
        assert order == [world.casino["id"], world.sportsbook["id"]], sort
    lines = list(
        csv.reader(
            io.StringIO(
                client.http.get(
                    "/api/reports", params={**table_params(), **query, "format": "csv"}, headers=client.auth
                ).text
            )
        )
    )
    header = lines[0]
    profit = header.index("profit EUR")
    assert [(r[1], r[profit]) for r in lines[1:]] == [
        (str(world.casino["id"]), "-48.50"),
        (str(world.sportsbook["id"]), ""),
        ("", "-148.50"),
    ]
    # So does traffic that converted nothing and earned nobody anything: no figure, not 0.
    client.click(world.rival_link)
    client.flush()
    for sort in ("profit", "-profit"):
        by_offer = client.report(group_by="offer", sort=sort)["rows"]
        assert (by_offer[0]["key"]["offer"], by_offer[0]["profit"]) == (world.casino["id"], {"EUR": "-48.50"})
        assert [r["profit"] for r in by_offer[1:]] == [None, None], sort


def table_params() -> dict[str, str]:
    today = datetime.now(UTC).date().isoformat()
    return {"from": today, "to": today}


def test_the_previous_period_and_a_report_currency(client: Client, world: World) -> None:
    link = link_of(client, world.alice_casino)
    this_week = date(2026, 11, 16)
    for day, payout in ((this_week, "100"), (this_week - timedelta(days=7), "50")):
        at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        cid = write_click(client, link, at)
        client.postback(
            click_id=cid,
            event="sale",
            payout=payout,
            currency="USD",
            token=world.token,
            event_time=at.isoformat(),
        )
    for day, rate in (("2026-11-01", "0.5"), ("2026-11-14", "0.8")):
        client.api("POST", "/fx-rates", json={"base": "USD", "quote": "EUR", "day": day, "rate": rate})

    period = {"from": "2026-11-16", "to": "2026-11-22", "group_by": ""}
    found = client.report(**period, compare="previous", currency="EUR")
    assert (found["previous"]["from"], found["previous"]["to"]) == ("2026-11-09", "2026-11-15")
    assert found["totals"]["revenue"] == {"EUR": "80.00"}  # 100 USD at the 16th's rate
    assert found["previous"]["totals"]["revenue"] == {"EUR": "25.00"}  # 50 USD at the 9th's
    assert found["totals"]["clicks"] == found["previous"]["totals"]["clicks"] == 1
    both = client.report(**{**period, "from": "2026-11-09", "group_by": "week"}, currency="EUR")
    assert [(r["key"]["week"], r["revenue"]) for r in both["rows"]] == [
        ("2026-11-09", {"EUR": "25.00"}),
        ("2026-11-16", {"EUR": "80.00"}),
    ]
    native = client.report(**period)
    assert native["totals"]["revenue"] == {"USD": "100.00"}
    no_rate = refused(client, **{"from": "2026-10-01", "to": "2026-10-02"}, currency="EUR")
    assert "USD→EUR" in no_rate["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"zone": "Mars/Olympus"}, "zone"),
        ({"group_by": "day,nonsense"}, "group_by"),
        ({"group_by": "day,day"}, "group_by"),
        ({"sort": "-wealth"}, "sort"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
        ({"affiliate": "abc"}, "affiliate"),
        ({"offer": "\u00b2"}, "offer"),  # isdigit() but no int(): a 500 until 2026-12-06
        ({"affiliate": "2147483648"}, "affiliate"),  # past INTEGER: PostgreSQL's 500 until then
        ({"sub1": "x" * 2000}, "sub1"),
        ({"limit": "0"}, "limit"),
        ({"basis": "payday"}, "basis"),
    ],
)
def test_a_bad_request_is_refused_naming_the_parameter(
    client: Client, params: dict[str, str], field: str
) -> None:
    found = refused(client, **{**table_params(), **params})
    assert found["detail"][0]["loc"][-1] == field, found


@pytest.mark.parametrize(
    ("params", "field"),
    [
        # A NUL in a filter value: PostgreSQL refuses it in text, a 500 until 2026-12-06.
        ({"country": "\x00"}, "country"),
        ({"sub1": "a\x00b"}, "sub1"),
        ({"source": "\x00"}, "source"),
        ({"sub2": "\x00"}, "sub2"),
        ({"landing_page": "\x00"}, "landing_page"),
        ({"campaign": "\x00"}, "campaign"),
        # A misspelt parameter, or a time used as a filter, was left out silently: unfiltered
        # figures answered as if filtered, until 2026-12-06.
        ({"affilate": "2"}, "affilate"),
        ({"contry": "DE"}, "contry"),
        ({"sub6": "x"}, "sub6"),
        ({"foo": "bar"}, "foo"),
        ({"day": "2026-10-25"}, "day"),
        ({"hour": "2026"}, "hour"),
        ({"week": "x"}, "week"),
        ({"month": "2026-11"}, "month"),
    ],
)
def test_a_bad_filter_is_refused_by_every_report_endpoint(
    client: Client, world: World, params: dict[str, str], field: str
) -> None:
    for extra in ({}, {"group_by": field if field in FILTERABLE else "day"}, {"format": "csv"}):
        found = refused(client, **table_params(), **params, **extra)
        assert found["detail"][0]["loc"][-1] == field, found
    placements = {**table_params(), "currency": "EUR", **params}
    response = client.http.get("/api/reports/stop-or-scale", params=placements, headers=client.auth)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field, response.text
    # An affiliate's report (their own traffic) reads the same parameters the same way.
    alice = add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    response = client.http.get("/api/reports", params=table_params() | params, headers=Keys.header(alice))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field, response.text


def test_a_time_used_as_a_filter_is_refused_pointing_to_the_period(client: Client) -> None:
    found = refused(client, **table_params(), day="2026-10-25")
    assert "from" in found["detail"][0]["msg"] and "to" in found["detail"][0]["msg"], found


def test_every_parameter_of_the_reports_is_known_to_them(client: Client, world: World) -> None:
    """The documented parameters, old names included, are not taken for misspellings."""
    every = {
        **table_params(),
        "zone": "UTC",
        "basis": "click",
        "group_by": "offer",
        "sort": "-clicks",
        "limit": "10",
        "offset": "0",
        "compare": "previous",
        "bots": "include",
        "format": "json",
        "affiliate_id": str(world.alice["id"]),
        "offer_id": str(world.casino["id"]),
        "link_id": "1",
    }
    assert get(client, **every)["group_by"] == ["offer"]
    placements = {**table_params(), "currency": "EUR", "by": "sub1", "zone": "UTC", "min_spend": "0"}
    placements |= {"max_roi": "0", "target_roi": "0.3", "limit": "5", "earnings": "commission"}
    assert client.api("GET", "/reports/stop-or-scale", params=placements)["by"] == "sub1"


def test_the_report_builder_names_a_nul_in_a_filter_and_leaves_it_out(client: Client, world: World) -> None:
    add_user(client, "alice", Role.AFFILIATE, affiliate_id=world.alice["id"])
    alice = sign_in(client, "alice")
    for path in ("/reports", "/reports.csv"):
        for name in ("country", "sub1", "offer"):
            page = alice.get(path, **{name: "a\x00b", "from": "2026-10-01", "to": "2026-10-31"})
            assert page.status_code == 200, (path, name, page.text[:300])
            if path == "/reports":
                assert f"{name}: " in page.text, name


def test_a_zone_kept_from_later_answers_only_from_its_next_midnight(client: Client, world: World) -> None:
    client.click(world.alice_casino)
    client.flush()
    runtime = client.node.runtime
    now = int(datetime.now(UTC).timestamp())

    def kept_after(work: Callable[[Connection], object]) -> dict[str, int]:
        async def run() -> dict[str, int]:
            async with runtime.db.write() as conn:
                await conn.run_sync(work)
            async with runtime.db.read() as conn:
                rows = (await conn.execute(select(report_rollups.c.name, report_rollups.c.since))).all()
            return {r.name: int(r.since) for r in rows}

        return client.node.call(run)

    with_tokyo = ("UTC", "Europe/Berlin", "Asia/Tokyo")
    try:
        kept = kept_after(lambda sync: keep_zones(sync, with_tokyo, now))
        tokyo_midnight = kept["days:Asia/Tokyo"]
        assert tokyo_midnight > now and (tokyo_midnight + 9 * 3600) % 86400 == 0
        assert kept["days:Europe/Berlin"] == 0  # kept from the start
        # Tokyo's days start tomorrow: today's report in Tokyo comes from hours.
        assert client.report(zone="Asia/Tokyo")["source"] == "hours"
        # A process (or `clickback migrate`) that would not count Tokyo is refused, naming it.
        with pytest.raises(StartupError, match=r"(?s)Asia/Tokyo.*forget-report-zone"):
            kept_after(lambda sync: keep_zones(sync, ("UTC", "Europe/Berlin"), now))
    finally:
        kept = kept_after(lambda sync: forget_zone(sync, "Asia/Tokyo"))
    assert set(kept) == {"hours", "days:UTC", "days:Europe/Berlin"}


def test_a_week_over_is_summed_once_and_what_comes_later_counts_in_it_too(
    client: Client, world: World
) -> None:
    """A report by sub1 over whole weeks reads their sums (store.weeks): summed once the week is
    over in each kept zone, never the week still running; a late click and a late conversion
    of that week added to the sums as to the days."""
    runtime = client.node.runtime
    link = link_of(client, world.alice_casino)
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday() + 7)  # last week's, over in every zone
    noon = datetime.combine(monday + timedelta(days=2), datetime.min.time(), UTC) + timedelta(hours=12)
    write_click(client, link, noon, sub1="a")
    write_click(client, link, noon + timedelta(hours=1), sub1="b")
    write_click(client, link, datetime.now(UTC), sub1="a")  # this week's
    period = {"from": (monday - timedelta(days=1)).isoformat(), "to": today.isoformat(), "group_by": "sub1"}

    def sub1_clicks() -> dict[str, int]:
        return {r["key"]["sub1"]: r["clicks"] for r in client.report(**period)["rows"]}

    before = sub1_clicks()
    summed = client.node.call(lambda: sum_weeks(runtime.db, int(datetime.now(UTC).timestamp())))
    again = client.node.call(lambda: sum_weeks(runtime.db, int(datetime.now(UTC).timestamp())))

    async def kept() -> dict[tuple[str, int], bool]:
        async with runtime.db.read() as conn:
            rows = await conn.execute(select(report_week_state))
            return {(r.zone, r.week): r.kept for r in rows}

    states = client.node.call(kept)
    week = (monday - date(1970, 1, 1)).days // 7 + 1  # core.reporting.week_of its Monday
    assert summed == 2 and again == 0  # last week in UTC and in Berlin, once
    assert states[("UTC", week)] and states[("Europe/Berlin", week)]
    assert not states[("UTC", week + 1)]  # this week, still running
    assert before == sub1_clicks() == {"a": 2, "b": 1}
    # Late: a click of last week (a drained spool's) and its registration reported today.
    late = write_click(client, link, noon + timedelta(hours=2), sub1="b")
    client.postback(click_id=late, event="registration", token=world.token)
    after = client.report(**period, basis="click")
    assert {r["key"]["sub1"]: (r["clicks"], r["registrations"]) for r in after["rows"]} == {
        "a": (2, 0),
        "b": (2, 1),
    }
    assert after["totals"]["clicks"] == 4 and after["totals"]["registrations"] == 1


@pytest.mark.parametrize("sort", ["", "day", "-day"])
def test_pages_sorted_by_day_first_are_the_slices_of_the_whole(
    client: Client, world: World, sort: str
) -> None:
    """Sorted by day first, a page reads only the days it holds (the rows per day say which):
    every page, across the days' edges, is the slice of the whole report."""
    link = link_of(client, world.alice_casino)
    today = datetime.now(UTC).date()
    for back, subs in ((1, "abc"), (2, "de"), (3, "fghi")):
        noon = datetime.combine(today - timedelta(days=back), datetime.min.time(), UTC) + timedelta(hours=12)
        for n, sub1 in enumerate(subs):
            for _ in range(n + 1):
                write_click(client, link, noon + timedelta(minutes=n), sub1=sub1)
    period = {"from": (today - timedelta(days=4)).isoformat(), "to": today.isoformat()}
    for group_by in ("day,sub1", "day,country"):
        query = {**period, "group_by": group_by} | ({"sort": sort} if sort else {})
        whole = client.report(**query, limit="100")
        rows = [(r["key"], r["clicks"]) for r in whole["rows"]]
        for limit, offset in ((2, 0), (2, 2), (3, 1), (4, 5), (5, 8), (2, 9)):
            part = client.report(**query, limit=str(limit), offset=str(offset))
            assert part["total_rows"] == whole["total_rows"] == len(rows)
            assert [(r["key"], r["clicks"]) for r in part["rows"]] == rows[offset : offset + limit], (
                group_by,
                limit,
                offset,
            )
    assert whole["total_rows"] == 3  # by day and country: one country a day
