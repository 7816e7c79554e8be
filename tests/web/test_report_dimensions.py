"""Every report dimension through GET /api/reports (docs/reports.md, "Dimensions"): grouped by
it, each value's clicks; filtered on one value, that value's clicks alone. In zones answered by
each store (the values and days rollups, hours, the raw tables), and the time dimensions in
zones off UTC, on both sides of a week's and a month's edge."""

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from clickback.core.accounts import Role
from clickback.core.reporting import DIMENSIONS, TIME_DIMENSIONS
from tests.conftest import Client, World, make_world
from tests.web.personas import add_user
from tests.web.test_catalog_pages import Browser
from tests.web.test_reports import link_of, write_click

# User-Agents and what enrich/device.py makes of them: (device type, OS, browser).
AGENTS = {
    "linux": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        ("desktop", "Linux", "Chrome"),
    ),
    "iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1",
        ("mobile", "iOS", "Mobile Safari"),
    ),
    "ipad": (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
        ("tablet", "iOS", "Mobile Safari"),
    ),
    "windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ("desktop", "Windows", "Firefox"),
    ),
}
# Addresses iptocc places in these countries.
ADDRESSES = {"DE": "85.214.132.117", "GB": "81.2.69.142", "US": "8.8.8.8"}
# Campaigns set on the world's links: two links share "spring", two have none.
CAMPAIGNS = {"alice_casino": "spring", "alice_sportsbook": "spring", "bob_casino": "autumn", "rival_link": ""}


@dataclass(frozen=True)
class Visit:
    link: str  # the World attribute of its tracking link
    country: str
    agent: str
    subs: tuple[str, str, str, str, str]
    source: str
    lp: str


VISITS = (
    Visit("alice_casino", "DE", "linux", ("a", "x", "p", "m", "k"), "fb", "lp1"),
    Visit("alice_casino", "GB", "iphone", ("a", "y", "p", "n", "k"), "fb", "lp2"),
    Visit("alice_casino", "DE", "windows", ("", "x", "p", "m", "k"), "fb", "lp1"),
    Visit("alice_sportsbook", "US", "ipad", ("b", "y", "q", "n", "j"), "gg", "lp1"),
    Visit("bob_casino", "DE", "windows", ("b", "x", "q", "m", "j"), "gg", "lp2"),
    Visit("bob_casino", "US", "linux", ("c", "x", "p", "n", "k"), "", "lp1"),
    Visit("rival_link", "GB", "iphone", ("a", "y", "r", "m", ""), "tw", ""),
)
# Which stores answer the dimensions in each zone (UTC and Europe/Berlin are kept in the tests'
# CLICKBACK_REPORT_ZONES; New York is whole hours off UTC; Kolkata is not).
SOURCES = {"UTC": {"values", "days"}, "America/New_York": {"hours", "raw"}, "Asia/Kolkata": {"raw"}}


def expected_values(client: Client, world: World, visit: Visit) -> dict[str, Any]:
    """A visit's value of every dimension but time, as a report keys it."""
    link = link_of(client, getattr(world, visit.link))
    offer = next(
        o for o in (world.casino, world.sportsbook, world.rival_offer) if o["id"] == link["offer_id"]
    )
    device_type, os, browser = AGENTS[visit.agent][1]
    return {
        "advertiser": offer["advertiser_id"],
        "offer": offer["id"],
        "affiliate": link["affiliate_id"],
        "link": link["id"],
        "campaign": CAMPAIGNS[visit.link],
        "country": visit.country,
        "device_type": device_type,
        "os": os,
        "browser": browser,
        "source": visit.source,
        "landing_page": visit.lp,
        **{f"sub{i}": sub for i, sub in enumerate(visit.subs, 1)},
    }


@pytest.mark.parametrize("zone", list(SOURCES))
def test_every_dimension_groups_and_filters(proxied: Client, zone: str) -> None:
    client = proxied
    world = make_world(client)
    for name, campaign in CAMPAIGNS.items():
        link = link_of(client, getattr(world, name))
        client.api("PATCH", f"/links/{link['id']}", json={"campaign": campaign})
    for visit in VISITS:
        params = {f"sub{i}": sub for i, sub in enumerate(visit.subs, 1) if sub}
        params |= {k: v for k, v in (("source", visit.source), ("lp", visit.lp)) if v}
        headers = {"user-agent": AGENTS[visit.agent][0], "x-forwarded-for": ADDRESSES[visit.country]}
        response = client.http.get(f"/c/{getattr(world, visit.link)}", params=params, headers=headers)
        assert response.status_code == 302, response.text
    client.flush()
    facts = [expected_values(client, world, v) for v in VISITS]
    today = datetime.now(UTC).date()
    # Today's clicks, in whichever local day they fall in the zone.
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}

    dimensions = [d for d in DIMENSIONS if d not in TIME_DIMENSIONS]
    assert "campaign" in dimensions
    sources = set()
    for name in dimensions:
        expected = Counter(f[name] for f in facts)
        grouped = client.report(**period, zone=zone, group_by=name)
        sources.add(grouped["source"])
        assert {r["key"][name]: r["clicks"] for r in grouped["rows"]} == expected, (name, grouped["source"])
        assert grouped["total_rows"] == len(expected) and grouped["totals"]["clicks"] == len(VISITS)
        # One value (the most clicked, the first in order among equals), grouped and not.
        value, n = sorted(expected.items(), key=lambda item: (-item[1], str(item[0])))[0]
        alone = client.report(**period, zone=zone, group_by=name, **{name: str(value)})
        assert [(r["key"][name], r["clicks"]) for r in alone["rows"]] == [(value, n)], name
        assert client.report(**period, zone=zone, group_by="", **{name: str(value)})["totals"]["clicks"] == n
    assert sources == SOURCES[zone]
    # Two links named "spring" are one row; a link's campaign is its name now: renamed, its
    # clicks so far go with it.
    link = link_of(client, world.alice_sportsbook)
    client.api("PATCH", f"/links/{link['id']}", json={"campaign": "autumn"})
    renamed = client.report(**period, zone=zone, group_by="campaign", sort="campaign")
    assert [(r["key"]["campaign"], r["clicks"]) for r in renamed["rows"]] == [
        ("", 1),
        ("autumn", 3),
        ("spring", 3),
    ]
    # A campaign and a link filtered on together: the campaign's links among those named.
    both = client.report(**period, zone=zone, group_by="", campaign="spring", link=str(link["id"]))
    assert both["totals"]["clicks"] == 0
    # Paged and sorted by clicks, as any dimension.
    page = client.report(
        **period, zone=zone, group_by="campaign", sort="-clicks,campaign", limit="1", offset="1"
    )
    assert ([r["key"]["campaign"] for r in page["rows"]], page["total_rows"]) == (["spring"], 3)


# Instants on both sides of a week's edge (Monday 2026-11-23 and 11-30) and a month's (12-01) in
# the zones below; two clicks at some, so counts tell the rows apart.
MOMENTS = (
    datetime(2026, 11, 23, 0, 30, tzinfo=UTC),  # Sunday evening in New York
    datetime(2026, 11, 29, 22, 30, tzinfo=UTC),  # Monday morning in Kolkata
    datetime(2026, 11, 29, 22, 30, tzinfo=UTC),
    datetime(2026, 11, 30, 23, 30, tzinfo=UTC),  # December in Berlin and Kolkata
    datetime(2026, 12, 1, 3, 0, tzinfo=UTC),  # still November in New York
    datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
)


def local_keys(at: datetime, zone: ZoneInfo) -> dict[str, str]:
    """A moment's hour, day, week (its Monday) and month in the zone, worked out with zoneinfo."""
    local = at.astimezone(zone)
    day = local.date()
    return {
        "hour": local.replace(minute=0, second=0, microsecond=0).isoformat(timespec="minutes"),
        "day": day.isoformat(),
        "week": (day - timedelta(days=day.weekday())).isoformat(),
        "month": day.strftime("%Y-%m"),
    }


@pytest.mark.parametrize(
    ("zone", "source"), [("Europe/Berlin", "values"), ("America/New_York", "hours"), ("Asia/Kolkata", "raw")]
)
def test_hours_days_weeks_and_months_are_the_zones(
    client: Client, world: World, zone: str, source: str
) -> None:
    link = link_of(client, world.alice_casino)
    for n, at in enumerate(MOMENTS):
        write_click(client, link, at + timedelta(seconds=n), sub1=str(n))
    period = {"from": "2026-11-20", "to": "2026-12-03", "zone": zone}
    keys = [local_keys(at, ZoneInfo(zone)) for at in MOMENTS]
    for grain in TIME_DIMENSIONS:
        found = client.report(**period, group_by=grain)
        # Local hours come from the hourly rollup wherever they can (a zone whole hours off UTC).
        assert found["source"] == ("hours" if grain == "hour" and source != "raw" else source), grain
        assert {r["key"][grain]: r["clicks"] for r in found["rows"]} == Counter(k[grain] for k in keys), grain
    # The edges fall where the zone puts them, not where UTC does.
    weeks = Counter(k["week"] for k in keys)
    months = Counter(k["month"] for k in keys)
    assert (weeks, months) == {
        "Europe/Berlin": ({"2026-11-23": 3, "2026-11-30": 3}, {"2026-11": 3, "2026-12": 3}),
        "America/New_York": ({"2026-11-16": 1, "2026-11-23": 2, "2026-11-30": 3}, {"2026-11": 6}),
        "Asia/Kolkata": ({"2026-11-23": 1, "2026-11-30": 5}, {"2026-11": 3, "2026-12": 3}),
    }[zone]


# Australia/Lord_Howe moves its clocks by half an hour: forward on 2026-10-04 at 02:00 (+10:30 to
# +11:00, 15:30 UTC the day before), back on 2027-04-04 at 02:00 (+11:00 to +10:30, 15:00 UTC).
LORD_HOWE_MOMENTS = (
    datetime(2026, 10, 3, 15, 15, tzinfo=UTC),  # 01:45+10:30
    datetime(2026, 10, 3, 15, 45, tzinfo=UTC),  # 02:45+11:00: the clocks went forward
    datetime(2026, 10, 3, 16, 5, tzinfo=UTC),  # 03:05+11:00
    datetime(2026, 10, 25, 21, 40, tzinfo=UTC),  # 08:40+11:00
    datetime(2027, 4, 3, 14, 45, tzinfo=UTC),  # 01:45+11:00
    datetime(2027, 4, 3, 15, 15, tzinfo=UTC),  # 01:45+10:30: the same hour again, clocks back
)


def clock_hour(at: datetime, zone: ZoneInfo) -> str:
    """The hour the zone's clock shows at a moment, with the offset it is at then: the half hour
    repeated when clocks go back is an hour of its own (01:00+10:30 after 01:00+11:00), and the
    first hour after they went forward has the new offset (02:00+11:00)."""
    local = at.astimezone(zone)
    offset = timezone(local.utcoffset() or timedelta(0))
    return datetime(local.year, local.month, local.day, local.hour, tzinfo=offset).isoformat(
        timespec="minutes"
    )


@pytest.mark.parametrize(
    ("first", "last", "source"),
    [
        ("2026-10-01", "2027-04-30", "raw"),
        ("2026-10-01", "2026-10-31", "raw"),
        ("2026-10-20", "2026-10-26", "hours"),
    ],
)
def test_hours_of_a_zone_whose_clocks_move_by_half_an_hour_are_its_clocks_hours(
    client: Client, world: World, first: str, last: str, source: str
) -> None:
    """Hours, days, weeks and months of Lord_Howe are its own from the raw tables as from the
    hourly rollup (a period all at +11:00): hours on the local clock's whole hours, half past the
    UTC hour at +10:30 and on it at +11:00. The raw tables bucketed every hour by the period's
    first offset (08:30+11:00) until 2026-12-06."""
    zone = ZoneInfo("Australia/Lord_Howe")
    link = link_of(client, world.alice_casino)
    for n, at in enumerate(LORD_HOWE_MOMENTS):
        write_click(client, link, at, sub1=str(n))
    period = {"from": first, "to": last, "zone": zone.key}
    inside = [at for at in LORD_HOWE_MOMENTS if first <= at.astimezone(zone).date().isoformat() <= last]
    keys = [local_keys(at, zone) | {"hour": clock_hour(at, zone)} for at in inside]
    for grain in TIME_DIMENSIONS:
        found = client.report(**period, group_by=grain)
        assert found["source"] == source, grain
        assert {r["key"][grain]: r["clicks"] for r in found["rows"]} == Counter(k[grain] for k in keys), grain
    hours = [r["key"]["hour"] for r in client.report(**period, group_by="hour")["rows"]]
    assert hours == sorted(set(hours), key=datetime.fromisoformat)  # in time order, each once
    if last == "2027-04-30":
        assert hours == [
            "2026-10-04T01:00+10:30",
            "2026-10-04T02:00+11:00",
            "2026-10-04T03:00+11:00",
            "2026-10-26T08:00+11:00",
            "2027-04-04T01:00+11:00",
            "2027-04-04T01:00+10:30",
        ]


def test_the_report_builder_groups_by_campaign(client: Client, world: World) -> None:
    """The builder offers every dimension, campaign among them, and its CSV has the same rows."""
    for code in (world.alice_casino, world.alice_casino, world.bob_casino):
        client.click(code)
    client.flush()
    add_user(client, "boss", Role.MANAGER)
    boss = Browser(client, "boss")
    page = boss.get("/reports?by=campaign&sort=-clicks")
    assert page.status_code == 200
    offered = re.findall(
        r'<option value="([a-z_0-9]+)"', page.text.split('name="by"')[1].split("</select>")[0]
    )
    assert offered == list(DIMENSIONS)
    body = page.text.split("<tbody>")[1].split("</tbody>")[0]
    rows = [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]
    assert [row[:2] for row in rows] == [["spring", "2"], ["(none)", "1"]]  # by campaign, then clicks
    lines = list(csv.reader(io.StringIO(boss.get("/reports.csv?by=campaign&sort=-clicks").text)))
    clicks = lines[0].index("clicks")
    # Every row in the order of the dimension (no campaign first), then the totals.
    assert [(r[1], r[clicks]) for r in lines[1:]] == [("", "1"), ("spring", "2"), ("", "3")]
    assert lines[-1][0] == "total"
