"""Report figures computed the slow, obvious way: from the raw tables (clicks, conversions,
commissions, offers), bucketed in Python with zoneinfo. What GET /api/reports answers is compared
with this, so it must not share code with the report engine (no clickback.core.metrics here).

The definitions are those of the report API's contract (docs/reports.md): see `figures_of`.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from clickback.store.db import Database
from clickback.store.tables import clicks, commissions, conversions, links, offers

PAYABLE = frozenset({"pending", "approved"})
DECLINED = frozenset({"rejected", "cancelled"})
# Player money: what players did with their own money; its amount is never advertiser revenue.
PLAYER_MONEY = frozenset(
    {"first_deposit", "deposit", "withdrawal", "bonus", "wager", "net_revenue", "chargeback"}
)
# Nor is the amount of the qualified_cpa conversion clickback books with a CPA (the affiliate's
# commission): these earn revenue only where the offer lists a price for the event.
PRICED_ONLY = PLAYER_MONEY | {"qualified_cpa"}
COUNTS = (
    "clicks",
    "unique_clicks",
    "bot_clicks",
    "conversions",
    "approved",
    "pending",
    "declined",
    "registrations",
    "ftds",
    "deposits",
    "qualified_cpas",
)
MONEY = (
    "ftd_amount",
    "deposit_amount",
    "ngr",
    "revenue",
    "cpa_commission",
    "revshare_commission",
    "commission",
    "profit",
    "click_cost",
    "bot_cost",
    "conversion_cost",
    "cost",
    "traffic_profit",
    "revenue_profit",
)
# Figures only in the currencies revenue is known in (derive).
KNOWN_ONLY = frozenset({"profit", "revenue_profit"})
# Ratios of two counts, and money per count (per currency).
RATIOS = {
    "cr_registration": ("registrations", "clicks"),
    "cr_ftd": ("ftds", "clicks"),
    "ftd_per_registration": ("ftds", "registrations"),
}
MONEY_PER = {
    "epc": ("commission", "clicks"),
    "player_value": ("commission", "ftds"),
    "cpc": ("click_cost", "clicks"),
    "cost_per_registration": ("cost", "registrations"),
    "cost_per_ftd": ("cost", "ftds"),
}

Key = tuple[tuple[str, Any], ...]


@dataclass
class Figures:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    money: dict[str, dict[str, Decimal]] = field(default_factory=lambda: {m: {} for m in MONEY})

    def add(self, name: str, currency: str, amount: Decimal) -> None:
        self.money[name][currency] = self.money[name].get(currency, Decimal(0)) + amount

    def merged(self, other: "Figures") -> "Figures":
        out = Figures()
        for f in (self, other):
            for name, n in f.counts.items():
                out.counts[name] += n
            for name, amounts in f.money.items():
                for currency, amount in amounts.items():
                    out.add(name, currency, amount)
        return out


@dataclass(frozen=True)
class Facts:
    """The raw rows a report is made of, as the database holds them."""

    clicks: dict[str, dict[str, Any]]
    conversions: dict[int, dict[str, Any]]
    entries: list[dict[str, Any]]
    offers: dict[int, dict[str, Any]]
    # Each link's cost model as stored (JSON decoded), None for none.
    costs: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    # Each link's campaign as the links table names it now (what reports group by).
    campaigns: dict[int, str] = field(default_factory=dict)


async def load(db: Database) -> Facts:
    async with db.read() as conn:
        click_rows = (await conn.execute(select(clicks))).mappings().all()
        conversion_rows = (await conn.execute(select(conversions))).mappings().all()
        entry_rows = (await conn.execute(select(commissions))).mappings().all()
        offer_rows = (await conn.execute(select(offers))).mappings().all()
        link_rows = (await conn.execute(select(links.c.id, links.c.cost, links.c.campaign))).all()
    return Facts(
        {r["click_id"]: dict(r) for r in click_rows},
        {r["id"]: dict(r) for r in conversion_rows},
        [dict(r) for r in entry_rows],
        {r["id"]: dict(r) for r in offer_rows},
        {r.id: json.loads(r.cost) if r.cost else None for r in link_rows},
        {r.id: r.campaign for r in link_rows},
    )


def dimensions(click: Mapping[str, Any], facts: Facts) -> dict[str, Any]:
    """A click's report dimensions (a conversion's are its click's)."""
    return {
        "affiliate": click["affiliate_id"],
        "offer": click["offer_id"],
        "advertiser": facts.offers[click["offer_id"]]["advertiser_id"],
        "link": click["link_id"],
        "campaign": facts.campaigns[click["link_id"]],
        **{f"sub{i}": click[f"sub{i}"] for i in range(1, 6)},
        **{
            name: click[name]
            for name in ("source", "landing_page", "country", "device_type", "os", "browser")
        },
    }


def local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def local_hour(at: datetime, zone: ZoneInfo) -> datetime:
    """The start of the local hour `at` falls in, as a UTC instant: the two 02:00 hours of a
    night the clocks go back are two different instants."""
    local = at.astimezone(zone)  # sets `fold` on the repeated hour
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


@dataclass(frozen=True)
class Query:
    zone: ZoneInfo
    basis: str  # "conversion" or "click"
    start: date
    end: date  # inclusive
    # A row's key from the fact's dimensions and its instant; () for totals only.
    key: Callable[[Mapping[str, Any], datetime], Key] = lambda dims, at: ()
    keep: Callable[[Mapping[str, Any]], bool] = lambda dims: True
    bots: str = "exclude"


def by(*names: str) -> Callable[[Mapping[str, Any], datetime], Key]:
    """A key function for group_by=names (hour keys are UTC instants, day keys ISO dates)."""

    def key(dims: Mapping[str, Any], at: datetime) -> Key:
        parts: list[tuple[str, Any]] = []
        for name in names:
            if name == "day":
                parts.append(("day", dims["_zone_day"]))
            elif name == "hour":
                parts.append(("hour", dims["_zone_hour"]))
            else:
                parts.append((name, dims[name]))
        return tuple(parts)

    return key


def report(facts: Facts, q: Query) -> tuple[dict[Key, Figures], Figures]:
    """Rows by key and totals for the query, from the raw rows alone."""
    rows: dict[Key, Figures] = {}

    def bucket(dims: dict[str, Any], at: datetime) -> Figures | None:
        if not (q.start <= local_day(at, q.zone) <= q.end) or not q.keep(dims):
            return None
        dims = {**dims, "_zone_day": local_day(at, q.zone).isoformat(), "_zone_hour": local_hour(at, q.zone)}
        return rows.setdefault(q.key(dims, at), Figures())

    for c in facts.clicks.values():
        if c["test"]:
            continue
        f = bucket(dimensions(c, facts), c["clicked_at"])
        if f is None:
            continue
        bot = c["bot"] != ""
        f.counts["clicks"] += 1 if (q.bots == "include" or not bot) else 0
        f.counts["unique_clicks"] += 1 if (c["is_unique"] and not bot) else 0
        f.counts["bot_clicks"] += 1 if bot else 0
        if c["cost"]:
            f.add("click_cost", c["cost_currency"], Decimal(c["cost"]))
            if bot:
                f.add("bot_cost", c["cost_currency"], Decimal(c["cost"]))

    def when(conversion: Mapping[str, Any]) -> datetime:
        at: datetime = conversion["event_at"] if q.basis == "conversion" else conversion["clicked_at"]
        return at

    for v in facts.conversions.values():
        if v["test"]:
            continue
        click = facts.clicks[v["click_id"]]  # the world leaves no conversion without its click
        f = bucket(dimensions(click, facts), when(v))
        if f is None:
            continue
        for name, currency, amount in conversion_figures(v, facts):
            if currency is None:
                f.counts[name] += int(amount)
            else:
                f.add(name, currency, amount)

    for e in facts.entries:
        v = facts.conversions[e["conversion_id"]]
        if v["test"]:
            continue
        # A CPA reversal, by conversion date, when it was booked (ADR 7: the month it happens).
        reversal = e["kind"] == "cpa" and e["reverses_id"] is not None and q.basis == "conversion"
        f = bucket(dimensions(facts.clicks[v["click_id"]], facts), e["created_at"] if reversal else when(v))
        if f is None:
            continue
        amount = Decimal(e["amount"])
        model = facts.costs.get(v["link_id"])
        if model is not None and model["kind"] == "revshare":
            # The partner's share, cut toward zero to a ten-thousandth.
            units = amount * 10_000 * Decimal(model["percent"]) / 100
            f.add("conversion_cost", e["currency"], Decimal(int(units)) / 10_000)
        if e["kind"] == "cpa":
            f.add("cpa_commission", e["currency"], amount)
        else:
            f.add("revshare_commission", e["currency"], amount)

    totals = Figures()
    for f in rows.values():
        totals = totals.merged(f)
    for f in (*rows.values(), totals):
        derive(f)
    return rows, totals


def conversion_figures(v: Mapping[str, Any], facts: Facts) -> Iterable[tuple[str, str | None, Decimal]]:
    """(metric, currency or None for a count, value) of one conversion."""
    status, event = v["status"], v["event"]
    yield ("approved", None, Decimal(status == "approved"))
    yield ("pending", None, Decimal(status == "pending"))
    yield ("declined", None, Decimal(status in DECLINED))
    if status not in PAYABLE:
        return
    payout = Decimal(v["payout"]) if v["payout"] is not None else Decimal(0)
    currency = v["currency"]
    yield ("conversions", None, Decimal(1))
    if event == "registration":
        yield ("registrations", None, Decimal(1))
    if event == "first_deposit":
        yield ("ftds", None, Decimal(1))
        yield ("ftd_amount", currency, payout)
    if event in ("first_deposit", "deposit"):
        yield ("deposits", None, Decimal(1))
        yield ("deposit_amount", currency, payout)
    if event == "net_revenue":
        yield ("ngr", currency, payout)
    if event == "qualified_cpa":
        # Every standing qualification, paid or past a cap (ADR 17); the ledger says what was paid.
        yield ("qualified_cpas", None, Decimal(1))
    if event not in PRICED_ONLY:
        yield ("revenue", currency, payout)
    else:
        offer = facts.offers[v["offer_id"]]
        listed = json.loads(offer["payouts"]).get(event)
        if listed is not None:
            yield ("revenue", offer["currency"], Decimal(str(listed)))
    # A CPA cost model pays for each payable conversion of its event.
    model = facts.costs.get(v["link_id"])
    if model is not None and model["kind"] == "cpa" and model["event"] == event:
        yield ("conversion_cost", model["currency"], Decimal(model["amount"]))


def derive(f: Figures) -> None:
    m = f.money
    for currency in {*m["cpa_commission"], *m["revshare_commission"]}:
        f.add("commission", currency, m["cpa_commission"].get(currency, Decimal(0)))
        f.add("commission", currency, m["revshare_commission"].get(currency, Decimal(0)))
    for currency in {*m["click_cost"], *m["conversion_cost"]}:
        f.add("cost", currency, m["click_cost"].get(currency, Decimal(0)))
        f.add("cost", currency, m["conversion_cost"].get(currency, Decimal(0)))
    # Profits only in the currencies revenue is known in: those it was earned in; when nothing
    # payable converted (no revenue, and that is known), those the other side is not 0 in.
    for name, against in (("profit", "commission"), ("revenue_profit", "cost")):
        known = {c for c, a in m["revenue"].items() if a}
        if f.counts["conversions"] == 0:
            known |= {c for c, a in m[against].items() if a}
        for currency in known:
            f.add(name, currency, m["revenue"].get(currency, Decimal(0)) - m[against].get(currency, 0))
    for currency in {*m["commission"], *m["cost"]}:
        earned, spent = m["commission"].get(currency, Decimal(0)), m["cost"].get(currency, Decimal(0))
        f.add("traffic_profit", currency, earned - spent)


def roi(f: Figures, earned: str = "commission") -> dict[str, Decimal]:
    """(earned - cost) / cost in each currency something was spent in; for revenue, only where
    it is known (where revenue_profit has a figure)."""
    m = f.money
    return {
        c: (m[earned].get(c, Decimal(0)) - spent) / spent
        for c, spent in m["cost"].items()
        if spent and (earned != "revenue" or c in m["revenue_profit"])
    }


# --- comparing with the API's reply -----------------------------------------------------------


def money_of(value: Any) -> dict[str, Decimal]:
    """{currency: amount} with zero amounts left out (a missing currency is 0)."""
    return {c: Decimal(str(a)) for c, a in (value or {}).items() if Decimal(str(a))}


def differences(where: str, api: Mapping[str, Any], ref: Figures) -> list[str]:
    """Every metric of an API row (or totals) that differs from the reference, one line each."""
    out = []
    for name in COUNTS:
        if api.get(name) != ref.counts[name]:
            out.append(f"{where}: {name}: api {api.get(name)!r} != reference {ref.counts[name]}")
    for name in MONEY:
        if name in KNOWN_ONLY:
            # Every currency, zeros included: a profit of 0 is a figure, a missing one is none.
            got = {c: Decimal(str(a)) for c, a in (api.get(name) or {}).items()}
            want = ref.money[name]
        else:
            got, want = money_of(api.get(name)), money_of(ref.money[name])
        if got != want:
            out.append(f"{where}: {name}: api {_show(got)} != reference {_show(want)}")
    for name, (num, den) in RATIOS.items():
        n, d = ref.counts[num], ref.counts[den]
        out += _ratio(where, name, api.get(name), n / d if d else None)
    decided = ref.counts["approved"] + ref.counts["declined"]
    out += _ratio(
        where,
        "approval_rate",
        api.get("approval_rate"),
        ref.counts["approved"] / decided if decided else None,
    )
    for name, earned in (("roi", "commission"), ("revenue_roi", "revenue")):
        got_roi = {c: Decimal(str(a)) for c, a in (api.get(name) or {}).items()}
        want_roi = roi(ref, earned)
        if set(got_roi) != set(want_roi) or any(
            abs(got_roi[c] - want_roi[c]) > Decimal("0.0001") for c in want_roi
        ):
            out.append(f"{where}: {name}: api {_show(got_roi)} != reference {_show(want_roi)}")
    for name, (money, den) in MONEY_PER.items():
        d = ref.counts[den]
        want_per = {c: a / d for c, a in ref.money[money].items() if a} if d else None
        got_per = api.get(name)
        if want_per is None or got_per is None:
            if (want_per is None) != (got_per is None) and not (want_per == {} or got_per == {}):
                out.append(f"{where}: {name}: api {got_per!r} != reference {want_per!r}")
            continue
        got_per = money_of(got_per)
        # Per-unit money is rounded by the API (to 1/10,000): a difference beyond that is an error.
        if set(got_per) != set(want_per) or any(
            abs(got_per[c] - want_per[c]) > Decimal("0.0001") for c in want_per
        ):
            shown = {c: a.quantize(Decimal("0.0001")) for c, a in want_per.items()}
            out.append(f"{where}: {name}: api {_show(got_per)} != reference {_show(shown)}")
    return out


def _ratio(where: str, name: str, got: Any, want: float | None) -> list[str]:
    if want is None or got is None:
        return [] if want is got else [f"{where}: {name}: api {got!r} != reference {want!r}"]
    return [] if abs(float(got) - want) <= 1e-6 else [f"{where}: {name}: api {got!r} != reference {want!r}"]


def _show(amounts: Mapping[str, Decimal]) -> str:
    return "{" + ", ".join(f"{c}: {a.normalize():f}" for c, a in sorted(amounts.items())) + "}"
