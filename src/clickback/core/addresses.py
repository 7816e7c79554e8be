"""Which network addresses an outbound postback may go to (the SSRF guard's rule; the lookup that
feeds it is the sender's).

An affiliate types the URL, and the server sends to it from inside the operator's network: a URL
naming a private, loopback, link-local (cloud metadata, 169.254.169.254) or otherwise non-public
address would let anyone with an API key probe that network. Only globally routable addresses are
allowed, unless the operator's allowlist (CLICKBACK_OUTBOUND_ALLOW) names the host or a network
holding the address: an on-premise receiver, the tests' local servers.
"""

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Allowlist:
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def allows_host(self, host: str) -> bool:
        return host.lower().strip("[]") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


NOTHING_ALLOWED = Allowlist()


def parse_allowlist(entries: Iterable[str]) -> Allowlist:
    """Entries are host names or addresses/networks (CIDR); ValueError names a bad one."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        if not all(
            part and all(c.isalnum() or c == "-" for c in part) for part in entry.rstrip(".").split(".")
        ):
            raise ValueError(f"{raw!r} is neither a host name nor an address or network (CIDR)")
        hosts.add(entry.rstrip("."))
    return Allowlist(frozenset(hosts), tuple(networks))


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses and networks (CIDR), blanks skipped; ValueError names a bad one."""
    networks = []
    for raw in entries:
        entry = raw.strip()
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                raise ValueError(f"{raw!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def refused_because(address: IPAddress) -> str | None:
    """Why an address is no place to send to, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        # 2002:7f00:1:: counts as global, but a 6to4 relay (the operator's own, if it runs one)
        # delivers it to 127.0.0.1: the IPv4 address inside decides. Teredo's and NAT64's forms
        # are already refused (private, reserved).
        inside = refused_because(address.sixtofour)
        return None if inside is None else f"6to4 {inside}"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_private:
        return "private"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        # fec0::/10, deprecated (RFC 3879) but still routed where a network kept it: Python's
        # ipaddress counts it as global.
        return "site-local"
    if address.is_multicast or address.is_unspecified or address.is_reserved or not address.is_global:
        return "not public"
    return None


def check_destination(host: str, addresses: Sequence[str], allow: Allowlist) -> str | None:
    """Why `host`, resolved to `addresses`, is refused; None when every address may be used."""
    if allow.allows_host(host):
        return None
    if not addresses:
        return f"{host} does not resolve to any address"
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        why = refused_because(address)
        if why is not None and not allow.allows_address(address):
            named = host if host.strip("[]") == text else f"{host} ({text})"
            return f"{named} is a {why} address: outbound postbacks go to public addresses only"
    return None


def is_address(host: str) -> bool:
    """Whether `host` is an IP address literal (not a name to resolve)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
