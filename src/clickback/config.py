"""Every setting, read once from the environment (prefix CLICKBACK_), validated at start.

A bad value stops the process with pydantic's sentence naming the variable. Secrets left unset
are generated once into the data directory, so a newcomer's first `serve` just works; production
sets them explicitly (the same values on every node).
"""

import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clickback.core.privacy import IpMode, Privacy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLICKBACK_", frozen=True)

    # Where the embedded SQLite database and generated secrets live.
    data_dir: Path = Path("var")
    # SQLAlchemy URL; default: SQLite file in data_dir. PostgreSQL: postgresql+asyncpg://user@host/db
    database_url: str = ""
    # Keys the click ID MAC (hex, ≥ 32 bytes). Changing it makes every earlier click ID "forged".
    secret_key: str = Field(default="", repr=False)
    # Bearer key for the JSON API.
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
    # `serve` applies migrations before its workers start (turn off where a deploy step migrates).
    migrate_on_start: bool = True
    # Reverse proxies in front of clickback that append to X-Forwarded-For. The client's address is
    # the entry this many places from the right (entries further left can be forged by anyone).
    # 0: the TCP peer's address.
    proxy_hops: int = Field(default=0, ge=0, le=5)
    # The address users and advertisers reach this server at: shown in tracking and postback URLs.
    public_url: str = "http://127.0.0.1:8000"

    @cached_property
    def url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'clickback.db'}"

    @cached_property
    def click_id_key(self) -> bytes:
        key = bytes.fromhex(self.secret_key or self._generated("secret.key", 32))
        if len(key) < 32:
            raise ValueError("CLICKBACK_SECRET_KEY must be at least 64 hex characters (32 bytes)")
        return key

    @cached_property
    def api_token(self) -> str:
        return self.api_key or self._generated("api.key", 24)

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
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def in_flight_window(self) -> timedelta:
        return timedelta(minutes=self.in_flight_click_minutes)

    def _generated(self, name: str, nbytes: int) -> str:
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(nbytes))
            path.chmod(0o600)
        return path.read_text().strip()
