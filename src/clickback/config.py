"""Every setting, read once from the environment (prefix CLICKBACK_), validated at start.

A bad value, or a CLICKBACK_ variable that is no setting (a typo), stops the process with a line
naming the variable and what to do. Secrets left unset are generated once into the data
directory, so a newcomer's first `serve` just works; production sets them explicitly (the same
values on every node).
"""

import difflib
import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from clickback.core.addresses import Allowlist, parse_allowlist
from clickback.core.privacy import IpMode, Privacy
from clickback.enrich.geo import mmdb_problem
from clickback.errors import StartupError
from clickback.store.db import sqlite_holds_clicks, url_problem, url_shown

PREFIX = "CLICKBACK_"
# CLICKBACK_ variables that are not settings of the server.
OTHER_VARIABLES = {"CLICKBACK_TEST_POSTGRES_URL"}  # the test suite's PostgreSQL
MIN_SECRET_BYTES = 32
# The bootstrap key is a manager's, with every right: short enough to guess is not a key. A
# generated one is 48 hex characters (docs/deployment.md: openssl rand -hex 24).
MIN_API_KEY_LEN = 24
DEFAULT_PORT = 8000


def default_data_dir() -> Path:
    """The user's data directory (~/.local/share/clickback on Linux): never the working
    directory, where running the command from elsewhere would start a new database and secret."""
    return platformdirs.user_data_path("clickback")


class Settings(BaseSettings):
    # nan passes no bound check pydantic can word ("should be less than or equal to 60"): refused
    # first, as no number.
    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, allow_inf_nan=False)

    # Where the embedded SQLite database, generated secrets and the click spool live. A relative
    # path is taken from the working directory at start and shown in full.
    data_dir: Path = Field(default_factory=default_data_dir)
    # SQLAlchemy URL; default: SQLite file in data_dir. PostgreSQL: postgresql+asyncpg://user@host/db
    database_url: str = ""
    # Keys the click ID MAC (hex, ≥ 32 bytes). Changing it makes every earlier click ID "forged".
    secret_key: str = Field(default="", repr=False)
    # Bearer key for the JSON API (the bootstrap manager's), at least MIN_API_KEY_LEN characters.
    api_key: str = Field(default="", repr=False)
    # Clicks are written in batches: at this many, or after this many seconds, whichever is first.
    click_batch_size: int = Field(default=1000, ge=1, le=100_000)
    click_flush_seconds: float = Field(default=0.5, gt=0, le=1.0)
    # Clicks held in memory while the database is down or slower than the traffic, before the
    # backlog moves to the spool on disk: about 1 KB each (a worker starts at about 125 MB).
    click_buffer_max: int = Field(default=10_000, ge=1000)
    # How much of a user's IP is stored: full, truncated (IPv4 /24, IPv6 /48) or hashed (keyed).
    # GEO is looked up from the full address before it is reduced.
    ip_mode: IpMode = IpMode.FULL
    # A click is unique when its visitor (IP + user agent) has not clicked the link for this long.
    unique_window_hours: float = Field(default=24, gt=0, le=24 * 90)
    # Optional MaxMind GeoLite2-City / DB-IP Lite .mmdb for region, city and ASN (country needs none).
    geoip_mmdb: Path | None = None
    # Durable clicks: each click is appended to a local spool and fsynced (in groups) before its
    # redirect, so not even kill -9 or a power cut loses a redirected click. Off: a crash can lose
    # the clicks of the last flush interval (the clicks_pending figure of /api/runtime).
    durable_clicks: bool = False
    # How often each process checks whether links, offers or advertisers changed elsewhere.
    catalog_refresh_seconds: float = Field(default=1.0, gt=0, le=60)
    # A postback for a genuine click ID not found in the database is kept (and attributed when
    # the click lands) if the click is at most this old; older ones are refused as unknown_click.
    in_flight_click_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # A postback may say when its event happened (event_time): one stated as older than this many
    # days is refused (event_time_out_of_range), as is one in the future.
    max_event_age_days: int = Field(default=180, ge=1, le=3650)
    # How long the click-ID cookie that clicks of offers with the tracking pixel set is kept by
    # the browser (ADR 12): a conversion later than this needs the click ID in the pixel's query.
    pixel_cookie_days: int = Field(default=30, ge=1, le=400)
    # `serve` applies migrations before its workers start (turn off where a deploy step migrates).
    migrate_on_start: bool = True
    # Reverse proxies in front of clickback that append to X-Forwarded-For. The client's address is
    # the entry this many places from the right (entries further left can be forged by anyone).
    # 0: the TCP peer's address.
    proxy_hops: int = Field(default=0, ge=0, le=5)
    # Connections that keep the server waiting are closed (each holds an open file, and a process
    # may hold only so many): one silent for this long after it opens, a request head not whole
    # this long after its first byte, a body not whole this long after its head (a byte now and
    # then gains no time), or one idle this long after a response (keep-alive). Browsers send a
    # click's head in one packet; a postback or API body is small.
    first_request_seconds: float = Field(default=10, gt=0, le=300)
    request_head_seconds: float = Field(default=10, gt=0, le=300)
    request_body_seconds: float = Field(default=30, gt=0, le=3600)
    keep_alive_seconds: float = Field(default=5, gt=0, le=300)
    # The address users and advertisers reach this server at: shown in tracking and postback URLs.
    # Unset, `serve` uses its own address (http://127.0.0.1:<port>).
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    # Outbound postbacks (docs/outbound.md). Hosts and networks (CIDR) outbound postbacks may go
    # to although they are not public addresses, comma-separated: an on-premise receiver, e.g.
    # "10.0.0.0/8,tracker.internal". Everything private, loopback and link-local is refused
    # otherwise, when a template is saved and again at each attempt.
    outbound_allow: str = ""
    # Whether `serve` sends them itself (off where `clickback worker` processes do).
    outbound_dispatch: bool = True
    # Each attempt: connecting and waiting for the reply, at most this long.
    outbound_timeout_seconds: float = Field(default=10, gt=0, le=10)
    # The first retry's wait; each later one doubles it, up to 720 times it (15 attempts over
    # more than 24 hours at the default 30 s). Tests make it tiny.
    outbound_retry_base_seconds: float = Field(default=30, ge=0.001, le=3600)
    # Attempts in flight per dispatcher, and per destination (host:port) among them: a slow
    # destination holds only its own share (up to three times this many claimed rows of the
    # concurrency; 16 sends about 750 deliveries/s to one receiver: docs/benchmarks.md).
    outbound_concurrency: int = Field(default=256, ge=1, le=1000)
    outbound_per_destination: int = Field(default=16, ge=1, le=100)
    # A destination is paused (visibly: GET /api/outbound/destinations) after this many failed
    # attempts in a row (no reply, 5xx, 408); its deliveries wait until it is resumed.
    outbound_pause_after: int = Field(default=50, ge=1, le=100_000)
    # How often an idle dispatcher looks for work committed by other processes.
    outbound_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # The link checker (docs/link-checks.md): every active offer's URL is requested this often,
    # by one of the serve processes sharing the database; 0 turns the scheduled checks off
    # (`clickback check-links` still works). Its requests go through the outbound postbacks'
    # SSRF guard: CLICKBACK_OUTBOUND_ALLOW applies to them too.
    link_check_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # One check (its whole redirect chain) gets this long before it is "broken: timeout".
    link_check_timeout_seconds: float = Field(default=15, gt=0, le=60)
    # A page answering later than this is "slow" (it works, but users leave).
    link_check_slow_seconds: float = Field(default=5, gt=0, le=60)
    # IANA zones (comma-separated) whose local days the report rollups keep, so that daily,
    # weekly and monthly reports in them are answered from days (ADR 14). Reports in any other
    # zone are exact too, from hours or the raw tables, and slower. A zone added later counts
    # from its next local midnight on.
    report_zones: str = Field(default="UTC", max_length=1000)
    # How long a browser session lasts after signing in (docs/access.md); signing out ends it sooner.
    session_hours: float = Field(default=12, gt=0, le=24 * 30)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("database_url", "secret_key")
    @classmethod
    def _usable(cls, value: str, info: ValidationInfo) -> str:
        check = url_problem if info.field_name == "database_url" else secret_problem
        problem = check(value) if value else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("api_key")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < MIN_API_KEY_LEN:
            raise ValueError(
                f"is {len(value)} characters: it must be at least {MIN_API_KEY_LEN}\n"
                "  make one with: openssl rand -hex 24 (or leave it unset: one is generated)"
            )
        return value

    @field_validator("geoip_mmdb")
    @classmethod
    def _mmdb(cls, value: Path | None) -> Path | None:
        # Opened once here, so a wrong file is a line at start, before `serve` says it runs,
        # and not a worker's traceback.
        problem = mmdb_problem(value) if value else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("report_zones")
    @classmethod
    def _zones(cls, value: str) -> str:
        zones = [z.strip() for z in value.split(",") if z.strip()]
        if not zones or len(zones) > 8:
            raise ValueError("name one to eight IANA time zones, e.g. UTC,Europe/Berlin")
        for zone in zones:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"'{zone[:64]}' is no IANA time zone (e.g. Europe/Berlin)") from None
        return ",".join(zones)

    @property
    def report_zone_list(self) -> tuple[str, ...]:
        return tuple(self.report_zones.split(","))

    @field_validator("outbound_allow")
    @classmethod
    def _allowlist(cls, value: str) -> str:
        parse_allowlist(value.split(","))  # raises ValueError naming the bad entry
        return value

    @cached_property
    def outbound_allowlist(self) -> Allowlist:
        return parse_allowlist(self.outbound_allow.split(","))

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                "not an http(s) URL: give the address users and advertisers reach this server at,"
                " e.g. https://track.example.com (http or https, no query)"
            )
        return value.rstrip("/")

    @classmethod
    def from_environment(cls) -> "Settings":
        """The settings from the process's environment, or a StartupError saying in a line per
        variable what is wrong and what to do."""
        unknown = sorted(set(name for name in os.environ if name.startswith(PREFIX)) - known_variables())
        if unknown:
            raise StartupError("\n".join(_unknown_line(name) for name in unknown))
        try:
            return cls()
        except ValidationError as exc:
            raise StartupError("\n".join(_error_line(error) for error in exc.errors())) from exc

    @cached_property
    def url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'clickback.db'}"

    @cached_property
    def click_id_key(self) -> bytes:
        if self.secret_key:
            return bytes.fromhex(self.secret_key)
        path = self.data_dir / "secret.key"
        if not path.exists() and sqlite_holds_clicks(self.url):
            raise StartupError(
                f"CLICKBACK_SECRET_KEY is not set and {self.data_dir} has no secret.key, but the"
                " database already holds clicks: a new secret would make their click IDs read as forged",
                f"put the secret.key that went with the database into {self.data_dir}"
                " (or set CLICKBACK_SECRET_KEY, or CLICKBACK_DATA_DIR to the right directory)",
            )
        key = self._generated("secret.key", MIN_SECRET_BYTES)
        problem = secret_problem(key)
        if problem:
            raise StartupError(f"{path} (the generated CLICKBACK_SECRET_KEY) {problem}")
        return bytes.fromhex(key)

    @cached_property
    def api_token(self) -> str:
        if self.api_key:
            return self.api_key
        key = self._generated("api.key", 24)
        # The file is read as the variable would be, and checked as it is: an empty one (a
        # truncated copy, a secret mounted empty) was a key "" that every request without one
        # matched, as the bootstrap manager. Refused rather than replaced: whoever wrote it
        # meant some key, and a new one would silently differ from what their tooling sends.
        if len(key) < MIN_API_KEY_LEN:
            path = self.data_dir / "api.key"
            raise StartupError(
                f"{path} (the generated CLICKBACK_API_KEY) is {len(key)} characters: it must be at"
                f" least {MIN_API_KEY_LEN}; delete it (a new one is generated) or write one made with"
                " openssl rand -hex 24"
            )
        return key

    @cached_property
    def privacy(self) -> Privacy:
        # Its own key, derived: hashes of IPs must not be comparable with anything else we sign.
        key = hmac.new(self.click_id_key, b"clickback ip privacy", hashlib.sha256).digest()
        return Privacy(self.ip_mode, key)

    @property
    def unique_window_ms(self) -> int:
        return int(self.unique_window_hours * 3_600_000)

    @property
    def max_event_age(self) -> timedelta:
        return timedelta(days=self.max_event_age_days)

    @property
    def link_check_every(self) -> timedelta | None:
        return timedelta(minutes=self.link_check_minutes) if self.link_check_minutes else None

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def in_flight_window(self) -> timedelta:
        return timedelta(minutes=self.in_flight_click_minutes)

    @property
    def public_url_set(self) -> bool:
        """Whether CLICKBACK_PUBLIC_URL was given, rather than left to `serve` to derive."""
        return "public_url" in self.model_fields_set

    def _generated(self, name: str, nbytes: int) -> str:
        path = self.data_dir / name
        try:
            if not path.exists():
                self.data_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_hex(nbytes))
                path.chmod(0o600)
            return path.read_text().strip()
        except OSError as exc:
            raise StartupError(
                f"CLICKBACK_DATA_DIR={self.data_dir}: cannot write {name} there ({exc.strerror})",
                "make it a directory you can write to, or choose another",
            ) from exc


def secret_problem(text: str) -> str | None:
    """What is wrong with a click-ID key given as hex text, and how to make a good one."""
    wanted = f"at least {2 * MIN_SECRET_BYTES} hex characters ({MIN_SECRET_BYTES} bytes)"
    make = "make one with: python3 -c 'import secrets; print(secrets.token_hex(32))'"
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return f"is not hex (0-9, a-f): it must be {wanted}\n  {make}"
    if len(key) < MIN_SECRET_BYTES:
        return f"is {len(text)} hex characters: it must be {wanted}\n  {make}"
    return None


def known_variables() -> set[str]:
    return {PREFIX + name.upper() for name in Settings.model_fields} | OTHER_VARIABLES


def _unknown_line(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(known_variables()), n=1)
    hint = f"did you mean {close[0]}?" if close else "the settings are listed in README.md (Configuration)"
    return f"{name} is not a clickback setting: {hint}"


def _error_line(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = PREFIX + field.upper()
    message = error["msg"].removeprefix("Value error, ")
    if field in ("secret_key", "api_key"):  # never echo a secret
        return f"{name} {message}"
    given = error["input"]
    if field == "database_url":
        given = url_shown(str(given))  # nor a password in a URL
    return f"{name}={given!r}: {message}"
