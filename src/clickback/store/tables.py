"""The schema. Alembic migrations (store/migrations) create exactly this on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from clickback.core import metrics
from clickback.core.lifecycle import PAYABLE

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MONEY_SCALE = Decimal(10_000)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the dialect keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Decimal amounts kept exactly as integers of 1/10,000 (SQLite has no exact decimal type)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else int(value * MONEY_SCALE)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value) / MONEY_SCALE


def _traits() -> list[Column[str]]:
    return [
        Column("country", String(2), nullable=False),
        Column("region", String(100), nullable=False),
        Column("city", String(100), nullable=False),
        Column("device_type", String(16), nullable=False),
        Column("os", String(50), nullable=False),
        Column("browser", String(50), nullable=False),
        Column("bot", String(32), nullable=False),
    ]


def _subs(prefix: str) -> list[Column[str]]:
    return [Column(f"{prefix}{i}", String(255), nullable=False, default="") for i in range(1, 6)]


catalog_version = Table(
    "catalog_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

advertisers = Table(
    "advertisers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Postback security (docs/postbacks.md): the token replaced by the last rotation, valid
    # until the time beside it; addresses postbacks may come from (comma-separated, empty: any);
    # the HMAC key postbacks must be signed with (NULL: no signature asked for).
    Column("previous_token", String(64), nullable=True),
    Column("previous_token_until", UtcDateTime, nullable=True),
    Column("allowed_ips", String(2000), nullable=False, server_default=""),
    Column("signing_secret", String(64), nullable=True),
)

# Signatures of signed postbacks seen in the last minutes: a request replayed within the
# signature's validity is refused (older ones are refused by their timestamp).
postback_signatures = Table(
    "postback_signatures",
    metadata,
    Column("advertiser_id", ForeignKey("advertisers.id"), primary_key=True),
    Column("signature", String(64), primary_key=True),
    Column("seen_at", UtcDateTime, nullable=False, index=True),
)

offers = Table(
    "offers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advertiser_id", ForeignKey("advertisers.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("url_template", String(2048), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    # {"event": "amount"} and ["event", ...] as JSON text: read whole into the catalog, never queried.
    Column("payouts", Text, nullable=False),
    Column("custom_events", Text, nullable=False),
    Column("vertical", String(16), nullable=False, server_default=""),
    Column("created_at", UtcDateTime, nullable=False),
    # Days from a click within which its conversions count (NULL: no limit); a known player's
    # later events are not limited by it.
    Column("attribution_days", Integer, nullable=True),
    # The tracking pixel (ADR 12): on or off, and the public code in its URL (/p/{pixel_code}),
    # minted the first time it is switched on and kept, so that a pixel already on a thank-you
    # page works again when the pixel is switched back on.
    Column("pixel", Boolean, nullable=False, server_default=text("false")),
    Column("pixel_code", String(32), nullable=True, unique=True),
)

affiliates = Table(
    "affiliates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(32), nullable=False, unique=True),
    Column("affiliate_id", ForeignKey("affiliates.id"), nullable=False, index=True),
    Column("offer_id", ForeignKey("offers.id"), nullable=False, index=True),
    Column("campaign", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Its cost model (core.cost.stored, JSON); NULL: its traffic costs nothing.
    Column("cost", Text, nullable=True),
)

# Raw clicks: written in batches, read by click ID (postbacks) and for exports, never for reports.
clicks = Table(
    "clicks",
    metadata,
    Column("click_id", String(32), primary_key=True),
    Column("clicked_at", UtcDateTime, nullable=False),
    Column("link_id", Integer, nullable=False),
    Column("affiliate_id", Integer, nullable=False),
    Column("offer_id", Integer, nullable=False),
    Column("campaign", String(200), nullable=False),
    *_subs("sub"),
    Column("source", String(255), nullable=False),
    Column("landing_page", String(1024), nullable=False),
    Column("ip", String(45), nullable=False),
    Column("user_agent", String(512), nullable=False),
    Column("referrer", String(1024), nullable=False),
    *_traits(),
    Column("asn", BigInteger, nullable=True),
    Column("visitor", String(32), nullable=False),
    Column("is_unique", Boolean, nullable=False),
    # A test click (the postback tester, ADR 13): never counted in the report rollups, and what its
    # conversions do is only previewed.
    Column("test", Boolean, nullable=False, server_default=text("false")),
    # What the click cost (core/cost.py), in cost_currency ('' and 0: nothing).
    Column("cost", Money, nullable=False, server_default=text("0")),
    Column("cost_currency", String(3), nullable=False, server_default=text("''")),
)


# Spend imported from traffic sources (core/costimport.py), a row a line: what was applied when,
# for the record (the clicks' own cost is what reports add up).
cost_imports = Table(
    "cost_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("imported_at", UtcDateTime, nullable=False),
    Column("zone", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("link_id", Integer, nullable=False, index=True),
    Column("subs", String(1400), nullable=False),  # JSON {"sub1": "…"}, {} for all the link's clicks
    Column("cost", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("clicks", Integer, nullable=False),  # how many it was spread over; 0: none matched
)


# Report rollups (ADR 14), maintained in the transaction of what they count. Three grains, each
# chosen per query (core.reporting.choose_source): UTC hours and local days of each kept zone, by
# affiliate, offer and country; and local days by affiliate, offer and one other dimension
# (link, device, OS, browser, source, landing page, sub IDs) a row. Keys
# are '' rather than NULL (NULLs never collide in a unique key, and the upserts would insert
# duplicates). `basis` 'c': at the click's time (every click, and conversions by click date); 'e':
# conversions at their event's time. `currency` '' for rows that carry no money.
def _measures() -> list[Column[Any]]:
    zero = text("0")
    return [
        *(Column(name, BigInteger, nullable=False, server_default=zero) for name in metrics.COUNTS),
        *(Column(name, Money, nullable=False, server_default=zero) for name in metrics.MONEY),
    ]


def _report_owners() -> list[Column[Any]]:
    # Who a row is credited to (the link's affiliate and offer): reports filter and group on them.
    return [Column("affiliate_id", Integer, primary_key=True), Column("offer_id", Integer, primary_key=True)]


def _basis_currency() -> list[Column[Any]]:
    return [Column("basis", String(1), primary_key=True), Column("currency", String(3), primary_key=True)]


# SQLite keeps these tables in their key's order (WITHOUT ROWID): a period's rows are read
# in one sweep, and grouped in that order, rather than looked up one by one through the key.
report_hours = Table(
    "report_hours",
    metadata,
    Column("hour", Integer, primary_key=True),
    *_report_owners(),
    Column("country", String(2), primary_key=True),
    *_basis_currency(),
    *_measures(),
    Index(None, "affiliate_id", "hour"),
    Index(None, "offer_id", "hour"),
    sqlite_with_rowid=False,
)

report_days = Table(
    "report_days",
    metadata,
    Column("zone", String(64), primary_key=True),
    # Local days since 1970-01-01 in the zone.
    Column("day", Integer, primary_key=True),
    *_report_owners(),
    Column("country", String(2), primary_key=True),
    *_basis_currency(),
    *_measures(),
    Index(None, "zone", "affiliate_id", "day"),
    sqlite_with_rowid=False,
)

# The groups of report_days without their basis and currency: one row per local day, affiliate,
# offer and country that report_days holds any row of (kind "a"), and one more where it holds a
# row of click time (kind "c", all a cohort report reads). Written beside report_days by the
# same writers, never changed: a report by day x affiliate x offer x country counts its rows
# here (20,000 rows a day counted where they were grouped: 0.35 s a month at 10 million clicks).
report_day_rows = Table(
    "report_day_rows",
    metadata,
    Column("zone", String(64), primary_key=True),
    Column("kind", String(1), primary_key=True),
    Column("day", Integer, primary_key=True),
    *_report_owners(),
    Column("country", String(2), primary_key=True),
    sqlite_with_rowid=False,
)

report_values = Table(
    "report_values",
    metadata,
    Column("zone", String(64), primary_key=True),
    Column("dimension", String(16), primary_key=True),
    Column("day", Integer, primary_key=True),
    # The link's id, as text, for the dimension `link`.
    Column("value", String(1024), primary_key=True),
    *_report_owners(),
    *_basis_currency(),
    *_measures(),
    Index(None, "zone", "dimension", "affiliate_id", "day"),
    sqlite_with_rowid=False,
)

# report_values summed by local week (Monday to Sunday), for the weeks a period covers whole: a
# quarter of the rows to read for a month by sub ID. A week is summed once it is over
# (store.weeks.sum_weeks) and its later changes, a late conversion's for one, are added to both
# (report_week_state says which weeks are kept). `week`: core.reporting.week_of the local day.
report_weeks = Table(
    "report_weeks",
    metadata,
    Column("zone", String(64), primary_key=True),
    Column("dimension", String(16), primary_key=True),
    Column("week", Integer, primary_key=True),
    Column("value", String(1024), primary_key=True),
    *_report_owners(),
    *_basis_currency(),
    *_measures(),
    Index(None, "zone", "dimension", "affiliate_id", "week"),
    sqlite_with_rowid=False,
)

# Each (zone, week) the values rollup holds rows of, and whether report_weeks keeps it. Writers
# upsert the rows of the weeks they add to, in their transaction: the row's lock orders them
# against the summing of that week (PostgreSQL), and `kept` tells them to add to report_weeks too.
report_week_state = Table(
    "report_week_state",
    metadata,
    Column("zone", String(64), primary_key=True),
    Column("week", Integer, primary_key=True),
    Column("kept", Boolean, nullable=False, server_default=text("false")),
)

# Every currency the rollups hold money in, per affiliate and offer: a report's money columns,
# one per currency of the rows it may read (an affiliate's, never the network's). A row per
# pair and currency the writers ever added to, so a report reads a few rows, never the rollups.
report_currencies = Table(
    "report_currencies",
    metadata,
    Column("affiliate_id", Integer, primary_key=True),
    Column("offer_id", Integer, primary_key=True),
    Column("currency", String(3), primary_key=True),
    sqlite_with_rowid=False,
)

# Each rollup ('hours', 'days:<zone>') and the UTC second from which it counts everything: a zone
# kept from a later day on answers only periods from then (earlier ones come from the raw tables).
report_rollups = Table(
    "report_rollups",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("since", BigInteger, nullable=False),
)

# Who clicked which link when, for unique clicks: a click is unique when its visitor (keyed hash of
# IP and user agent) last clicked the same link longer ago than the window. Times in epoch
# milliseconds, so the window test is integer arithmetic on both dialects. Old rows are pruned by the writer.
visitors = Table(
    "visitors",
    metadata,
    Column("link_id", Integer, primary_key=True),
    Column("visitor", String(32), primary_key=True),
    Column("last_seen", BigInteger, nullable=False),
    Column("unique_at", BigInteger, nullable=False),
    # The click that unique_at is the time of: two processes' clicks of one visitor in the same
    # millisecond (a double click, a prefetch) both found their own time there, and both counted
    # as unique. Null on rows from before 0030, whose unique click is stored already.
    Column("unique_click", String(32), nullable=True),
    Index(None, "last_seen"),
)

# Refused clicks (unknown or paused links), counted so a broken link shows up in the product
# rather than only in the user's browser. The code is what was asked for, cropped to 32.
click_refusals = Table(
    "click_refusals",
    metadata,
    Column("hour", Integer, primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("code", String(32), primary_key=True),
    Column("clicks", BigInteger, nullable=False),
)

# Clicks the database refused (a value it cannot store, or a spool line that is not a click),
# kept here with the refusal instead of holding up the rest of their batch. `click` is the click
# as the spool writes it (JSON, every value escaped to ASCII), or the unreadable line, escaped.
quarantined_clicks = Table(
    "quarantined_clicks",
    metadata,
    # The click ID, or "line:" and a digest of an unreadable line: one row however often the
    # same click is refused (a spool replayed again after a failure).
    Column("click_id", String(64), primary_key=True),
    Column("quarantined_at", UtcDateTime, nullable=False),
    Column("reason", String(512), nullable=False),
    Column("click", Text, nullable=False),
)

conversions = Table(
    "conversions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advertiser_id", Integer, nullable=False),
    Column("click_id", String(32), nullable=False, index=True),
    # The transaction ID, else "player:<player_id>", else "click:<click_id>".
    Column("dedupe_key", String(300), nullable=False),
    # The event, with first_deposit counted as deposit (core.events.dedupe_family).
    Column("dedupe_event", String(64), nullable=False),
    Column("txn_id", String(128), nullable=True),
    Column("event", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("payout", Money, nullable=True),
    Column("currency", String(3), nullable=True),
    # Past a cap when it came (ADR 17): recorded, not paid, and said so to the affiliate's tracker.
    Column("over_cap", Boolean, nullable=False, server_default=text("false")),
    # Attribution: NULL while the click is still in flight (core.intake.attribute); attributed_at
    # is set once that is settled, also when the click turns out to belong to another advertiser.
    Column("link_id", Integer, nullable=True),
    Column("affiliate_id", Integer, nullable=True),
    Column("offer_id", Integer, nullable=True),
    Column("campaign", String(200), nullable=False),
    *_subs("sub"),
    Column("country", String(2), nullable=False),
    Column("device_type", String(16), nullable=False),
    # The click's, for reports (migration 0012).
    Column("source", String(255), nullable=False, server_default=""),
    Column("landing_page", String(1024), nullable=False, server_default=""),
    Column("os", String(50), nullable=False, server_default=""),
    Column("browser", String(50), nullable=False, server_default=""),
    *_subs("adv_sub"),
    Column("player_id", String(255), nullable=False),
    # The amount in the deal's currency, that currency and the rate used (exact decimal text),
    # once attributed.
    Column("deal_amount", Money, nullable=True),
    Column("deal_currency", String(3), nullable=True),
    Column("fx_rate", String(40), nullable=True),
    # The month a net_revenue report covers (YYYY-MM); NULL for other events.
    Column("period", String(7), nullable=True),
    Column("clicked_at", UtcDateTime, nullable=False),
    # When the event happened (the postback's event time, else its arrival): commission rules,
    # exchange rates and reports go by it. created_at is when its first postback arrived.
    Column("event_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("attributed_at", UtcDateTime, nullable=True),
    # How its first postback arrived: 's2s' (GET|POST /postback) or 'pixel' (GET /p/...).
    Column("channel", String(8), nullable=False, server_default="s2s"),
    # The offer whose pixel reported it: only that offer's click counts, also when the click
    # lands after the conversion (service.postbacks._attribute_late).
    Column("pixel_offer_id", Integer, nullable=True),
    # A pixel conversion the advertiser's server has confirmed (an S2S postback of it) or that was
    # approved (a person, a reconciliation): until then it is anyone's claim and counts in no
    # commission (core.commission.month_share). Never unset; unused on other channels.
    Column("confirmed", Boolean, nullable=False, server_default=text("false")),
    # Its click is a test click (ADR 13): out of reports, statements, players and the ledger.
    Column("test", Boolean, nullable=False, server_default=text("false")),
    # Exactly-once comes from this key, not from check-then-insert. Test conversions have keys of
    # their own (migration 0025): a transaction ID tried out with the tester is free for the real
    # postback, and a real one never blocks, repeats or changes a test.
    UniqueConstraint("advertiser_id", "dedupe_key", "dedupe_event", "test"),
    # Led by player_id: led by advertiser_id it competed with the unique key above for the
    # dedupe lookups, and won on a table not yet analyzed (migration 0005).
    Index(None, "player_id", "advertiser_id"),
    Index(
        "ix_conversions_unattributed",
        "id",
        sqlite_where=text("attributed_at IS NULL"),
        postgresql_where=text("attributed_at IS NULL"),
    ),
    Index(None, "affiliate_id", "event_at"),
    # A RevShare month is recomputed from its NGR reports and (FTD tiers) its first deposits:
    # partial indexes keep both lookups to the month's own rows.
    Index(
        "ix_conversions_ngr",
        "affiliate_id",
        "offer_id",
        "period",
        sqlite_where=text("event = 'net_revenue'"),
        postgresql_where=text("event = 'net_revenue'"),
    ),
    Index(
        "ix_conversions_ftd",
        "affiliate_id",
        "offer_id",
        "event_at",
        sqlite_where=text("event = 'first_deposit'"),
        postgresql_where=text("event = 'first_deposit'"),
    ),
    # What looked wrong though the conversion was accepted ("; "-separated: a payout other than
    # the offer's, a parameter that looks misspelt), shown with it and counted by diagnosis.
    Column("warnings", String(512), nullable=False, server_default=""),
)

# For `status IN (...)`: the conversions that count as earned (core.lifecycle.PAYABLE).
PAYABLE_STATUSES = sorted(s.value for s in PAYABLE)

conversion_history = Table(
    "conversion_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversion_id", ForeignKey("conversions.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("postback_id", Integer, nullable=True),
    # Why a person changed it by hand (POST /api/conversions/{id}/status); NULL for postbacks.
    Column("reason", String(512), nullable=True),
)

# The postback log: every inbound postback, accepted or not, as it arrived. The product's debugger.
postbacks = Table(
    "postbacks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("ip", String(45), nullable=False),
    Column("method", String(8), nullable=False),
    Column("advertiser_id", Integer, nullable=True),
    Column("click_id", String(64), nullable=False),
    Column("result", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("detail", String(512), nullable=False),
    Column("conversion_id", Integer, nullable=True, index=True),
    Column("http_status", Integer, nullable=False),
    Column("query", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("ignored", String(1024), nullable=False),
    # 's2s' or 'pixel' (`method` is the request's HTTP method).
    Column("channel", String(8), nullable=False, server_default="s2s"),
    # It named a test click (ADR 13).
    Column("test", Boolean, nullable=False, server_default=text("false")),
    Index(None, "advertiser_id", "id"),
    # The tester's look-ups (ADR 13): partial, so postbacks of real clicks pay nothing for it.
    Index(
        "ix_postbacks_test",
        "click_id",
        sqlite_where=text("test"),
        postgresql_where=text("test"),
    ),
)


# An advertiser's own words for our events and statuses: kind 'event' or 'status'.
advertiser_names = Table(
    "advertiser_names",
    metadata,
    Column("advertiser_id", ForeignKey("advertisers.id"), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("maps_to", String(64), nullable=False),
)

# Commission terms of an offer (affiliate_id 0: every affiliate) or of one affiliate on it.
deals = Table(
    "deals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("offer_id", ForeignKey("offers.id"), nullable=False),
    Column("affiliate_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    # CPA rules and RevShare terms as JSON text: read whole into the catalog, never queried.
    Column("terms", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("offer_id", "affiliate_id"),
)

# Dated exchange rates: 1 unit of base is `rate` units of quote, from `day` on. Exact decimal text.
fx_rates = Table(
    "fx_rates",
    metadata,
    Column("base", String(3), primary_key=True),
    Column("quote", String(3), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("rate", String(40), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# A player is the advertiser's customer, attributed for life to the click of their first postback.
# Attribution columns are NULL while that click is still in flight (as for conversions).
players = Table(
    "players",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advertiser_id", Integer, nullable=False),
    Column("player_id", String(255), nullable=False),
    Column("click_id", String(32), nullable=False, index=True),
    Column("link_id", Integer, nullable=True),
    Column("affiliate_id", Integer, nullable=True),
    Column("offer_id", Integer, nullable=True),
    Column("country", String(2), nullable=False),
    Column("sub1", String(255), nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("registered_at", UtcDateTime, nullable=True),
    # Set once by a guarded UPDATE: concurrent deposits cannot both be the first.
    Column("ftd_conversion_id", Integer, nullable=True),
    Column("ftd_at", UtcDateTime, nullable=True),
    Column("qualified_at", UtcDateTime, nullable=True),
    # The CPA terms (store/catalog.terms_to_json) and currency the player first qualified under:
    # every later decision on their CPA is judged by them, whatever the deal is now. NULL: never
    # qualified (judged by the deal in force), or qualified before 0032 under a deal that holds
    # no CPA terms since.
    Column("cpa_terms", Text, nullable=True),
    Column("cpa_currency", String(3), nullable=True),
    UniqueConstraint("advertiser_id", "player_id"),
    Index(None, "affiliate_id", "first_seen_at"),
)

# The commission ledger: entries are appended, never edited but for their status. A reversal is a
# new entry with the opposite amount pointing at the entry it reverses.
commissions = Table(
    "commissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("affiliate_id", Integer, nullable=False),
    Column("offer_id", Integer, nullable=False),
    Column("player", Integer, nullable=True),
    # The conversion whose arrival or status change produced this entry.
    Column("conversion_id", Integer, nullable=True, index=True),
    Column("period", String(7), nullable=False),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    # The exchange rate that brought the causing conversion's amount into `currency`, and the
    # RevShare percent applied: exact decimal text.
    Column("fx_rate", String(40), nullable=True),
    Column("percent", String(16), nullable=True),
    Column("status", String(16), nullable=False),
    Column("hold_until", UtcDateTime, nullable=True),
    Column("reverses_id", Integer, nullable=True),
    Column("detail", String(512), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "affiliate_id", "period"),
    Index(None, "player"),
)

# RevShare as booked per affiliate, offer and month: the ledger's RevShare entries of a month always
# sum to `earnings`. The row is also the lock that serialises recomputing that month.
revshare_periods = Table(
    "revshare_periods",
    metadata,
    Column("affiliate_id", Integer, primary_key=True),
    Column("offer_id", Integer, primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("ngr", Money, nullable=False),
    Column("ftds", Integer, nullable=False),
    Column("carry_in", Money, nullable=False),
    Column("percent", String(16), nullable=False),
    Column("earnings", Money, nullable=False),
    Column("carry_out", Money, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The deal's terms (store/deals.terms_to_json) the month was last priced under: a month that
    # has ended keeps them when it is recomputed after a deal change. NULL: booked before 0023.
    Column("terms", Text, nullable=True),
)

# RevShare months whose kept inputs a migration corrected (0028: pixel claims that no longer
# count) but whose booked RevShare it did not: the settle job recomputes each through the path a
# postback takes, books the difference, and deletes the row in the same transaction.
revshare_due = Table(
    "revshare_due",
    metadata,
    Column("affiliate_id", Integer, primary_key=True),
    Column("offer_id", Integer, primary_key=True),
    Column("period", String(7), primary_key=True),
    # The entry's cause: a conversion the correction took out (reports count the entry under it).
    Column("conversion_id", Integer, nullable=False),
    # Why, in the entry's detail.
    Column("why", String(200), nullable=False),
)


# An affiliate's outbound postback: where and how to tell their tracker about a conversion.
outbound_templates = Table(
    "outbound_templates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("affiliate_id", ForeignKey("affiliates.id"), nullable=False, index=True),
    Column("offer_id", ForeignKey("offers.id"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("method", String(8), nullable=False),
    Column("body_format", String(8), nullable=True),
    Column("body", Text, nullable=False),
    # ["event", ...], ["status", ...] and {"our status": "their word"} as JSON text: read whole
    # into the catalog, never queried.
    Column("events", Text, nullable=False),
    Column("statuses", Text, nullable=False),
    Column("status_map", Text, nullable=False),
    Column("click_id_sub", String(8), nullable=False),
    # The HMAC-SHA256 key of the signature header; NULL: unsigned.
    Column("secret", String(128), nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Deleted: out of the catalog and the API, but its deliveries still queued (or replayed) are
    # signed with its secret, which only this row holds.
    Column("deleted_at", UtcDateTime, nullable=True),
    # Without AUTOINCREMENT SQLite hands a deleted highest id to the next row: deliveries, replays
    # and the audit log name templates by id.
    sqlite_autoincrement=True,
)

# The outbox: one row per message to send, written in the transaction that caused it.
outbound_deliveries = Table(
    "outbound_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    # Sent with every attempt (X-Clickback-Delivery, {delivery_id}): receivers deduplicate on it.
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column("template_id", Integer, nullable=False),
    Column("affiliate_id", Integer, nullable=False),
    Column("conversion_id", Integer, nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("method", String(8), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("content_type", String(64), nullable=False),
    # host[:port]: what is limited, counted and paused together.
    Column("destination", String(300), nullable=False),
    # waiting, held (behind an earlier delivery of its conversion to its destination, until that
    # one ends: store/outbound.py), delivered, failed (a 4xx: permanent), dead (every retry failed).
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", UtcDateTime, nullable=False),
    # A dispatcher's claim: until then no other dispatcher takes the row (one that died loses it).
    Column("leased_until", UtcDateTime, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(512), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    # The dispatchers' one query: rows due, oldest first, among the few still waiting.
    Index(
        "ix_outbound_deliveries_due",
        "next_at",
        sqlite_where=text("state = 'waiting'"),
        postgresql_where=text("state = 'waiting'"),
    ),
    Index(None, "destination", "state"),
    Index(None, "state", "id"),
    # The next of a queue once its head ended, and the sweep's scan: held rows only, few.
    Index(
        "ix_outbound_deliveries_held",
        "conversion_id",
        "destination",
        "id",
        sqlite_where=text("state = 'held'"),
        postgresql_where=text("state = 'held'"),
    ),
)

outbound_attempts = Table(
    "outbound_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery", ForeignKey("outbound_deliveries.id"), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False),
    # Secrets in the query masked (core.outbound.mask_url).
    Column("url", Text, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    # The first 512 bytes of the reply, as text.
    Column("reply", Text, nullable=False),
    Column("error", String(512), nullable=False),
    Column("worker", String(64), nullable=False),
)

# Destinations that failed in a row; paused ones get nothing until resumed.
outbound_destinations = Table(
    "outbound_destinations",
    metadata,
    Column("destination", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("paused_at", UtcDateTime, nullable=True),
    Column("reason", String(512), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The link checker's history: one row per check of an offer's URL (docs/link-checks.md). Offer URLs
# are the advertiser's, not secrets: stored as requested.
link_checks = Table(
    "link_checks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("offer_id", ForeignKey("offers.id"), nullable=False),
    Column("checked_at", UtcDateTime, nullable=False),
    Column("url", String(2048), nullable=False),
    Column("final_url", String(2048), nullable=False),
    # The last answer's HTTP status; NULL: none (timeout, no connection, refused address).
    Column("status", Integer, nullable=True),
    Column("verdict", String(16), nullable=False),
    Column("code", String(32), nullable=False),
    Column("hint", String(300), nullable=False),
    Column("elapsed_ms", Integer, nullable=False),
    # [{"url", "status", "location"}, ...] as JSON text: shown, never queried.
    Column("redirects", Text, nullable=False),
    Column("error", String(512), nullable=False),
    # History newest first and "the latest of each offer" (max id per offer) read this index.
    Index(None, "offer_id", "id"),
    # Pruning old rows.
    Index(None, "checked_at"),
)

# When each offer is next due for a scheduled check. Processes claim an offer with a conditional
# UPDATE of its row (store/linkchecks.claim_due): only one of them wins it per interval.
link_check_due = Table(
    "link_check_due",
    metadata,
    Column("offer_id", ForeignKey("offers.id"), primary_key=True),
    Column("due_at", UtcDateTime, nullable=False),
)

# Accounts (ADR 16, docs/access.md): people who sign in, each a manager or one affiliate's or
# advertiser's user. Only an argon2id hash of a password is kept.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("affiliate_id", ForeignKey("affiliates.id"), nullable=True),
    Column("advertiser_id", ForeignKey("advertisers.id"), nullable=True),
    Column("password_hash", String(200), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UtcDateTime, nullable=False),
    # The IANA zone of the user's reports when a request names none (migration 0017).
    Column("zone", String(64), nullable=False, server_default=text("'UTC'")),
    # When they last signed in to the dashboard (migration 0020): sessions are not kept once
    # they end, and a manager looks here for accounts nobody uses any more.
    Column("last_sign_in_at", UtcDateTime, nullable=True),
    # core.accounts.tenant_problem, held by the database too: no user of two tenants, or of none.
    CheckConstraint(
        "(role = 'manager' AND affiliate_id IS NULL AND advertiser_id IS NULL)"
        " OR (role = 'affiliate' AND affiliate_id IS NOT NULL AND advertiser_id IS NULL)"
        " OR (role = 'advertiser' AND advertiser_id IS NOT NULL AND affiliate_id IS NULL)",
        name="ck_users_tenant",
    ),
)

# A user's API keys: found by their public prefix, checked against the SHA-256 of the whole key
# (core.accounts: a random key needs no slow hash). Revoked ones are kept, for the record.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Written at most once a minute a key: a write on every API call would queue on SQLite's lock.
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
)

# Browser sessions, server-side so that logging out (or deactivating a user) ends them on every
# node at once. The cookie holds a token; only its SHA-256 is kept. The CSRF token of the
# session's forms is no secret from its own browser, so it is kept as it is.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# Failed logins of the last window (core.accounts.LOGIN_WINDOW), counted per login and per
# address: in the database, so that every worker and node counts the same failures.
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("login", String(64), nullable=False),
    Column("ip", String(45), nullable=False),
    Column("failed_at", UtcDateTime, nullable=False),
    Index(None, "login", "failed_at"),
    Index(None, "ip", "failed_at"),
    Index(None, "failed_at"),
)

# The audit log (docs/api.md, "Audit log"): every change made through the API, written in the
# transaction of the change itself (core/audit.py). Only appended to. `before` and `after` hold
# the fields that changed, as JSON text (secrets hidden); `actor` the user's login at the time
# (user_id NULL: the bootstrap key, or the server itself).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("entity_kind", String(32), nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("action", String(32), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("reason", String(500), nullable=True),
    # A row's history (kind and id, newest first), and who did what: the log's two filters.
    Index(None, "entity_kind", "entity_id", "id"),
    Index(None, "actor", "id"),
    Index(None, "at"),
)

# Conversion caps (ADR 17, docs/api.md "Caps"): per offer (affiliate_id 0: every affiliate
# together) or per affiliate on an offer, on an event, a day (in `zone`) and/or in total. Read in
# the recording transaction, never cached: a cap changed on one node holds on every other at once.
caps = Table(
    "caps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("offer_id", ForeignKey("offers.id"), nullable=False),
    Column("affiliate_id", Integer, nullable=False),
    Column("event", String(64), nullable=False),
    Column("daily", Integer, nullable=True),
    Column("total", Integer, nullable=True),
    Column("zone", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("offer_id", "affiliate_id", "event"),
)

# How many conversions each cap has counted: `period` a local day (YYYY-MM-DD) or "total". The
# conditional UPDATE ... WHERE count < limit on this row is the check-and-increment: atomic on
# PostgreSQL (the row lock; a waiting UPDATE re-reads the committed count) and on SQLite (one
# writer), so no two processes ever count past the cap.
cap_counters = Table(
    "cap_counters",
    metadata,
    Column("cap_id", ForeignKey("caps.id"), primary_key=True),
    Column("period", String(10), primary_key=True),
    Column("count", Integer, nullable=False),
)


# Reconciliations (ADR 20, docs/reconciliation.md): an operator's report compared with what
# clickback recorded. A file is imported once per advertiser (its SHA-256); its lines are kept
# (`reconciliation_rows`: each checked line's values, or a bad line's reason), so a
# reconciliation is reopened without the file; the comparison's items and summary as they were
# when it ran.
reconciliations = Table(
    "reconciliations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advertiser_id", ForeignKey("advertisers.id"), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("file_kind", String(8), nullable=False),
    # The month the file covers, as given (NULL: the lines' own months).
    Column("period", String(7), nullable=True),
    # The mapping used and how the file was written (decimal mark, encoding, delimiter): JSON.
    Column("mapping", Text, nullable=False),
    Column("reading", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("user_id", Integer, nullable=True),
    # Lines read, imported, skipped (the same row key imported before), refused (bad).
    Column("lines", Integer, nullable=False),
    Column("imported", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("bad", Integer, nullable=False),
    Column("items", Integer, nullable=False),
    # Per affiliate, month and currency (core.reconcile_compare.Summary.as_json), JSON.
    Column("summary", Text, nullable=False),
    UniqueConstraint("advertiser_id", "file_hash"),
    Index(None, "advertiser_id", "id"),
)

# The column mapping an advertiser's reports are read with (core.reconcile.ColumnMapping as JSON).
reconciliation_mappings = Table(
    "reconciliation_mappings",
    metadata,
    Column("advertiser_id", ForeignKey("advertisers.id"), primary_key=True),
    Column("mapping", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(100), nullable=False),
)

# A report's lines. `row_key` (core.reconcile.ReportRow.key) is unique per advertiser: the same
# line in a later file is skipped and counted, never imported twice; NULL for a bad line, which
# keeps its `reason` and its cells as read.
reconciliation_rows = Table(
    "reconciliation_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reconciliation_id", ForeignKey("reconciliations.id"), nullable=False),
    Column("advertiser_id", Integer, nullable=False),
    Column("line", Integer, nullable=False),
    Column("row_key", String(40), nullable=True),
    Column("data", Text, nullable=False),
    Column("reason", String(512), nullable=True),
    UniqueConstraint("advertiser_id", "row_key"),
    Index(None, "reconciliation_id", "line"),
)

# One player's month, compared (core.reconcile_compare.Item): its class, both sides' figures,
# the difference in commission (the operator's less clickback's, in `currency`), causes and
# evidence as JSON; once the operator's figure is accepted, the conversion that booked it, who
# and when.
reconciliation_items = Table(
    "reconciliation_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reconciliation_id", ForeignKey("reconciliations.id"), nullable=False),
    Column("player_id", String(255), nullable=False),
    Column("month", String(7), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("affiliate_id", Integer, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("difference", Money, nullable=False),
    Column("operator", Text, nullable=False),
    Column("clickback", Text, nullable=False),
    Column("causes", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("lines", String(512), nullable=False),
    Column("accepted_conversion_id", Integer, nullable=True),
    Column("accepted_at", UtcDateTime, nullable=True),
    Column("accepted_by", String(100), nullable=True),
    Index(None, "reconciliation_id", "id"),
    Index(None, "reconciliation_id", "kind", "id"),
)
