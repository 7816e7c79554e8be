"""How much of a user's IP address is kept, decided once at ingest (GEO has already used the full one)."""

import hashlib
import hmac
from enum import StrEnum
from ipaddress import IPv4Address, ip_address, ip_network

from clickback.core.keyed import HmacSha256
from clickback.core.limits import MAX_IP_LEN


class IpMode(StrEnum):
    FULL = "full"
    # IPv4 /24, IPv6 /48: enough for fraud review by network, not enough to name a household.
    TRUNCATED = "truncated"
    # A keyed hash: the same visitor is recognisable, the address is not recoverable.
    HASHED = "hashed"


def stored_ip(ip: str, mode: IpMode, key: bytes) -> str:
    """At most MAX_IP_LEN characters, whatever `ip` holds."""
    if not ip:
        return ip
    if mode is IpMode.HASHED:
        return "h:" + hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:32]
    if "%" in ip or len(ip) > MAX_IP_LEN:
        # A zone ID ("fe80::1%eth0") names a network interface of the host that saw the address,
        # not part of the visitor's address, and has no length limit: kept, it made a click
        # longer than its column.
        ip = ip.partition("%")[0][:MAX_IP_LEN]
    if mode is IpMode.FULL:
        return ip
    try:
        address = ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if isinstance(address, IPv4Address) else 48
    return str(ip_network(f"{address}/{prefix}", strict=False).network_address)


def visitor_key(ip: str, user_agent: str, key: bytes) -> str:
    """Who clicked, for unique-click counting: keyed, so the raw IP is never stored for it."""
    return hmac.new(key, f"{ip}\n{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


class Privacy:
    """The operator's IP mode with the key its hashes use."""

    __slots__ = ("_hmac", "key", "mode")

    def __init__(self, mode: IpMode, key: bytes) -> None:
        self.mode = mode
        self.key = key
        self._hmac = HmacSha256(key)  # the key prepared once: visitor() runs on every click

    def ip(self, ip: str) -> str:
        return stored_ip(ip, self.mode, self.key)

    def visitor(self, ip: str, user_agent: str) -> str:
        # visitor_key's value, computed with the prepared key
        return self._hmac.digest(f"{ip}\n{user_agent}".encode()).hex()[:32]
