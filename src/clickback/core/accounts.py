"""Who may act: roles, the tenant a user belongs to, what each role sees, the API key format and
the login rate limit. Pure rules; the rows are store/accounts.py's, the hashing service/accounts.py's."""

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from clickback.core.reporting import ReportError, parse_zone


class Role(StrEnum):
    MANAGER = "manager"  # everything
    AFFILIATE = "affiliate"  # their own links, reports, statements, outbound postbacks
    ADVERTISER = "advertiser"  # their own offers' guide, tester, postback log, conversions


class Access(StrEnum):
    """Who may call a route (web/access.py gives every route one). Tenants reach only their own
    rows: the route scopes its query to the principal (core.accounts.Principal.owns)."""

    MANAGER = "manager"
    AFFILIATE = "affiliate"  # managers, and affiliates scoped to their own
    ADVERTISER = "advertiser"  # managers, and advertisers scoped to their own
    TENANTS = "tenants"  # managers, affiliates and advertisers, each scoped


ALLOWED: dict[Access, frozenset[Role]] = {
    Access.MANAGER: frozenset({Role.MANAGER}),
    Access.AFFILIATE: frozenset({Role.MANAGER, Role.AFFILIATE}),
    Access.ADVERTISER: frozenset({Role.MANAGER, Role.ADVERTISER}),
    Access.TENANTS: frozenset(Role),
}

# A login: lower-case letters, digits and . _ @ - (an e-mail address fits), compared lower-cased.
MAX_LOGIN_LEN = 64
LOGIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
# Long enough to resist guessing at 5 tries a quarter of an hour and offline against argon2id;
# capped so that a megabyte "password" cannot make a worker hash for seconds.
MIN_PASSWORD_LEN = 12
MAX_PASSWORD_LEN = 256
# An API key: "cbk_" + a public prefix (the lookup: indexed, unique) + "_" + 256 random bits.
# Only a SHA-256 of the whole key is stored: a key is random, so a slow hash would add nothing.
KEY_TAG = "cbk_"
KEY_PREFIX_LEN = 12
MAX_KEY_LEN = 128
_KEY = re.compile(r"cbk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
# A session cookie's token, likewise stored only as its SHA-256.
MAX_TOKEN_LEN = 128
# Report metrics that are the network's business, not an affiliate's: what the advertiser pays and
# what the network keeps. Shown empty in an affiliate's report, and no sort key of theirs.
NETWORK_METRICS = frozenset({"revenue", "profit", "revenue_profit", "revenue_roi"})
# Fields of a conversion that tell what its affiliate earns on it: left out for advertisers.
EARNINGS_FIELDS = ("deal_amount", "deal_currency", "fx_rate")
# Fields of a conversion that tell what the advertiser pays for it: left out for affiliates.
REVENUE_FIELDS = ("payout", "currency")
# Conversions clickback books itself when a player qualifies for a CPA deal: their payout is the
# affiliate's commission, so an advertiser sees it without its amount too.
COMMISSION_EVENTS = frozenset({"qualified_cpa"})
# Failed logins allowed per login and per address within the window, before 429.
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. user_id None: the bootstrap key (CLICKBACK_API_KEY)."""

    role: Role
    login: str
    user_id: int | None = None
    affiliate_id: int | None = None
    advertiser_id: int | None = None
    # The IANA zone of the user's reports when a request names none.
    zone: str = "UTC"

    @property
    def is_manager(self) -> bool:
        return self.role is Role.MANAGER

    def may(self, access: Access) -> bool:
        return self.role in ALLOWED[access]

    def owns(self, *, affiliate_id: int | None = None, advertiser_id: int | None = None) -> bool:
        """Whether a row of this affiliate or advertiser is the principal's to see (a manager's:
        every row). A row naming neither is no tenant's."""
        if self.role is Role.MANAGER:
            return True
        if self.role is Role.AFFILIATE:
            return affiliate_id is not None and affiliate_id == self.affiliate_id
        return advertiser_id is not None and advertiser_id == self.advertiser_id


BOOTSTRAP = Principal(Role.MANAGER, "CLICKBACK_API_KEY")


def zone_problem(zone: str) -> str | None:
    """A user's report zone: an IANA zone, as a report's `zone` is."""
    if len(zone) > MAX_ZONE_LEN:
        return f"a zone is at most {MAX_ZONE_LEN} characters"
    try:
        parse_zone(zone)
    except ReportError as exc:
        return str(exc)
    return None


# As a report's `zone` parameter, and users.zone.
MAX_ZONE_LEN = 64


def login_problem(login: str) -> str | None:
    if not LOGIN_PATTERN.fullmatch(login):
        return "a login is 1-64 lower-case letters, digits and . _ @ -, starting with a letter or digit"
    return None


def normal_login(given: str) -> str:
    """The login as stored: what a person typed, trimmed and lower-cased (cropped: never stored)."""
    return given.strip().lower()[: MAX_LOGIN_LEN + 1]


def tenant_problem(role: Role, affiliate_id: int | None, advertiser_id: int | None) -> str | None:
    """Exactly one tenant for an affiliate or advertiser user, none for a manager."""
    if role is Role.MANAGER and (affiliate_id is not None or advertiser_id is not None):
        return "a manager belongs to no affiliate or advertiser"
    if role is Role.AFFILIATE and (affiliate_id is None or advertiser_id is not None):
        return "an affiliate user names its affiliate (--affiliate N), and no advertiser"
    if role is Role.ADVERTISER and (advertiser_id is None or affiliate_id is not None):
        return "an advertiser user names its advertiser (--advertiser N), and no affiliate"
    return None


def deactivation_problem(role: Role, other_active_managers: int) -> str | None:
    """Whether a user may be deactivated: never the last active manager, who alone can manage
    users from the pages and the API (the command line and CLICKBACK_API_KEY remain, but a
    network locked out of its dashboard is a support call, not a setting)."""
    if role is Role.MANAGER and other_active_managers == 0:
        return "the last active manager cannot be deactivated: make or activate another manager first"
    return None


def password_problem(password: str) -> str | None:
    if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
        return f"a password has {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
    return None


def new_password() -> str:
    """A password to print once: 144 random bits, 24 characters."""
    return secrets.token_urlsafe(18)


def new_key() -> tuple[str, str]:
    """A new API key and its public prefix."""
    prefix = secrets.token_hex(KEY_PREFIX_LEN // 2)
    return f"{KEY_TAG}{prefix}_{secrets.token_urlsafe(32)}", prefix


def key_prefix(key: str) -> str | None:
    """The prefix to look a key up by, or None if `key` cannot be one of ours."""
    found = _KEY.fullmatch(key) if len(key) <= MAX_KEY_LEN else None
    return found.group(1) if found else None


def digest(secret: str) -> str:
    """What is stored of an API key or a session token: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def login_wait(failures: Sequence[datetime], now: datetime) -> timedelta | None:
    """How long until another login may be tried, given the failures of one login (or one
    address); None: now. The oldest failure that still counts must leave the window first."""
    recent = sorted(f for f in failures if f > now - LOGIN_WINDOW)
    if len(recent) < LOGIN_FAILURES_ALLOWED:
        return None
    return recent[-LOGIN_FAILURES_ALLOWED] + LOGIN_WINDOW - now
