"""Where a click came from: country from iptocc, and region, city and ASN from an optional .mmdb file.

The country needs no configuration: iptocc ships the Regional Internet Registries' allocations inside
its wheel. An operator who wants more points `mmdb_path` at a MaxMind DB file they downloaded
themselves (GeoLite2-City / GeoLite2-ASN, or DB-IP's dbip-city-lite / dbip-asn-lite); clickback never
ships one, since GeoLite2's licence forbids redistribution.

Fields read from the .mmdb (the two vendors share this shape, see `_from_record`):
- region: the English name of the first (largest) subdivision, e.g. "England", "California". Not
  its ISO code, because DB-IP Lite records carry no `subdivisions[].iso_code`.
- city: the English name of the city.
- asn: `autonomous_system_number` (ASN databases), or `traits.autonomous_system_number`
  (GeoIP2 Enterprise-style records).
- country: `country.iso_code` when the record has one, since a city database locates the user
  while iptocc only knows which country the block was registered in; iptocc otherwise.

Replace the .mmdb atomically (write a new file, then rename over the old one): the reader memory-maps
the file, and overwriting it in place changes the bytes under a running process.
"""

import functools
import ipaddress
import os
import socket
from dataclasses import dataclass
from os import PathLike

import maxminddb
from iptocc import country_code
from maxminddb.types import Record

# Clicks from one user, NAT or carrier gateway arrive in bursts; 16,384 entries take about 4 MB.
# A miss costs a few microseconds (the address checked by inet_pton; iptocc's lookup is 0.4 us),
# so a bigger cache would save little and hold more for the garbage collector to walk.
GEO_CACHE_SIZE = 16_384


def _special_heads() -> tuple[frozenset[int], frozenset[int]]:
    """The first octets (IPv4) and first 16 bits (IPv6) of every block holding an address that the
    ipaddress module does not call global: the networks its `is_global` checks (private, and
    IPv4's shared address space). An address outside them is global, and `is_global` costs 15-50
    us (a walk over those networks) where nearly every click of a campaign brings a new address.
    Read from the module's own tables; without them every address takes the slow path."""
    v4 = getattr(ipaddress, "_IPv4Constants", None)
    v6 = getattr(ipaddress, "_IPv6Constants", None)
    networks4 = [*getattr(v4, "_private_networks", ()), getattr(v4, "_public_network", None)]
    networks6 = list(getattr(v6, "_private_networks", ()))
    if None in networks4 or len(networks4) < 5 or len(networks6) < 5:
        return frozenset(range(256)), frozenset(range(65536))
    heads4 = {h for n in networks4 for h in range(n[0].packed[0], n[-1].packed[0] + 1)}
    heads6 = {h for n in networks6 for h in range(_head6(n[0].packed), _head6(n[-1].packed) + 1)}
    return frozenset(heads4), frozenset(heads6)


def _head6(packed: bytes) -> int:
    return int.from_bytes(packed[:2], "big")


_SPECIAL4, _SPECIAL6 = _special_heads()


def packed_address(text: str) -> tuple[socket.AddressFamily, bytes] | None:
    """An IPv4 or IPv6 address in text as its family and bytes, or None for anything else, by the
    C functions (a few hundred nanoseconds; the ipaddress module takes 10-30 us for an IPv6
    address, and a campaign brings a new one nearly every click). `socket.inet_ntop(*found)`
    writes it canonically."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return family, socket.inet_pton(family, text)
    except OSError:
        return None


def quick_global(ip: str) -> int:
    """4 or 6 for an address written in its canonical form (as the proxy hop parser and the
    socket give it) outside every special block: global, so no `is_global` to ask; 0 otherwise
    (the slow path decides)."""
    found = packed_address(ip)
    if found is None or socket.inet_ntop(*found) != ip:
        return 0
    family, packed = found
    if family == socket.AF_INET:
        return 0 if packed[0] in _SPECIAL4 else 4
    return 0 if _head6(packed) in _SPECIAL6 else 6


@dataclass(frozen=True, slots=True)
class Geo:
    country: str = ""  # ISO 3166-1 alpha-2, "" when unknown
    region: str = ""
    city: str = ""
    asn: int | None = None


NO_GEO = Geo()


def mmdb_problem(path: str | PathLike[str]) -> str | None:
    """What is wrong with `path` as CLICKBACK_GEOIP_MMDB (missing, unreadable, not a MaxMind DB) and
    what to do, found by opening it once; None when it opens."""
    wanted = (
        "point it at a MaxMind DB (.mmdb) file such as GeoLite2-City.mmdb or dbip-city-lite.mmdb,"
        " or unset it (the country needs none)"
    )
    if os.path.isdir(path):
        return f"is a directory: {wanted}"
    try:
        maxminddb.open_database(path, maxminddb.MODE_AUTO).close()
    except FileNotFoundError:
        return f"no such file: {wanted}"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc}): {wanted}"
    except (maxminddb.InvalidDatabaseError, ValueError):
        return f"not a MaxMind DB file: {wanted}"
    return None


class GeoLookup:
    def __init__(self, mmdb_path: str | PathLike[str] | None = None) -> None:
        """Open the .mmdb once; None (or "") means country only.

        Raises ValueError naming the path when the file is missing or is not a MaxMind DB, so a bad
        setting stops the process at start rather than showing up as empty reports.
        """
        self._reader: maxminddb.Reader | None = None
        self._ipv6 = False
        if mmdb_path:
            try:
                # MODE_AUTO: the C extension over mmap when installed (it ships in the wheels).
                self._reader = maxminddb.open_database(mmdb_path, maxminddb.MODE_AUTO)
            except (OSError, maxminddb.InvalidDatabaseError) as exc:
                raise ValueError(
                    f"GeoIP database {str(mmdb_path)!r} cannot be opened ({exc}); expected a MaxMind DB "
                    "(.mmdb) file such as GeoLite2-City.mmdb or dbip-city-lite.mmdb"
                ) from exc
            # An IPv4-only database raises on an IPv6 lookup instead of answering None.
            self._ipv6 = self._reader.metadata().ip_version == 6
        # Cached per instance (not at module level) so two lookups with different files never share
        # answers.
        self._cached = functools.lru_cache(maxsize=GEO_CACHE_SIZE)(self._resolve)

    def cache_info(self) -> "functools._CacheInfo":
        return self._cached.cache_info()

    def lookup(self, ip: str) -> Geo:
        """Never raises for a bad address: private, loopback, reserved, invalid or empty give NO_GEO."""
        return self._cached(ip)

    def _resolve(self, ip: str) -> Geo:
        version = quick_global(ip)
        if not version:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                return NO_GEO
            # A dual-stack proxy may report an IPv4 client as ::ffff:a.b.c.d; neither iptocc nor an
            # mmdb-writer-built database resolves that form.
            if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            if not addr.is_global:
                return NO_GEO
            ip, version = str(addr), addr.version
        registered = country_code(ip) or ""
        if self._reader is None or (version == 6 and not self._ipv6):
            return Geo(country=registered) if registered else NO_GEO
        return _from_record(self._reader.get(ip), registered)


def _from_record(record: Record | None, registered: str) -> Geo:
    # Records are untyped nested dicts whose keys vary by vendor and product; every step checks the
    # type so an unexpected shape yields "" rather than an exception on the click path.
    fields = _dict(record)
    subdivisions = fields.get("subdivisions")
    first_subdivision = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else None
    asn = fields.get("autonomous_system_number", _dict(fields.get("traits")).get("autonomous_system_number"))
    return Geo(
        country=_str(_dict(fields.get("country")).get("iso_code")) or registered,
        region=_english_name(first_subdivision),
        city=_english_name(fields.get("city")),
        asn=asn if isinstance(asn, int) and not isinstance(asn, bool) else None,
    )


def _dict(value: Record | None) -> dict[str, Record]:
    return value if isinstance(value, dict) else {}


def _str(value: Record | None) -> str:
    return value if isinstance(value, str) else ""


def _english_name(entity: Record | None) -> str:
    return _str(_dict(_dict(entity).get("names")).get("en"))
