import ipaddress
import random
from pathlib import Path

import pytest

from clickback.enrich.geo import NO_GEO, Geo, GeoLookup, quick_global

NOT_LOCATABLE = [
    "",
    "garbage",
    "999.1.1.1",
    "8.8.8",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "127.0.0.1",
    "0.0.0.0",  # noqa: S104 - looked up, not bound
    "169.254.1.1",
    "224.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fd00::1",
    "2001:db8::1",  # documentation range
    "::ffff:192.168.1.1",
]


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.142", "GB"),
        ("1.0.16.1", "JP"),
        ("89.160.20.112", "SE"),
        ("2001:4860:4860::8888", "US"),
        ("::ffff:81.2.69.142", "GB"),  # IPv4-mapped, as a dual-stack proxy reports it
    ],
)
def test_country_comes_from_iptocc_without_a_database(ip: str, country: str) -> None:
    assert GeoLookup(None).lookup(ip) == Geo(country=country)


@pytest.mark.parametrize("ip", NOT_LOCATABLE)
def test_private_loopback_and_invalid_addresses_give_empty_geo(ip: str) -> None:
    assert GeoLookup(None).lookup(ip) == NO_GEO == Geo("", "", "", None)


@pytest.mark.parametrize("ip", NOT_LOCATABLE)
def test_private_addresses_are_not_looked_up_in_the_database_either(ip: str, geolite2_city: Path) -> None:
    assert GeoLookup(geolite2_city).lookup(ip) == NO_GEO


def test_geolite2_city_gives_region_and_city(geolite2_city: Path) -> None:
    geo = GeoLookup(str(geolite2_city))
    assert geo.lookup("81.2.69.142") == Geo("GB", "England", "London", None)
    assert geo.lookup("81.2.69.1") == Geo("GB", "England", "London", None)
    assert geo.lookup("::ffff:81.2.69.142") == Geo("GB", "England", "London", None)
    assert geo.lookup("2001:4860:4860::8888") == Geo("US", "California", "Mountain View", None)


def test_dbip_city_lite_gives_region_and_city(dbip_city_lite: Path) -> None:
    assert GeoLookup(dbip_city_lite).lookup("81.2.69.142") == Geo("GB", "England", "London", None)


def test_asn_database_gives_asn_and_iptocc_country(asn_ipv4_only: Path) -> None:
    assert GeoLookup(asn_ipv4_only).lookup("81.2.69.142") == Geo("GB", "", "", 20712)


def test_ipv6_address_against_an_ipv4_only_database_gives_country_only(asn_ipv4_only: Path) -> None:
    assert GeoLookup(asn_ipv4_only).lookup("2001:4860:4860::8888") == Geo(country="US")


def test_the_databases_country_wins_over_iptocc(geolite2_city: Path) -> None:
    assert GeoLookup(None).lookup("216.160.83.57").country == "US"
    assert GeoLookup(geolite2_city).lookup("216.160.83.57") == Geo("CA", "Ontario", "Toronto", None)


def test_iptocc_fills_the_country_a_record_lacks(geolite2_city: Path) -> None:
    assert GeoLookup(geolite2_city).lookup("89.160.20.112") == Geo("SE", "", "", None)


def test_address_outside_every_network_gives_iptocc_country(geolite2_city: Path) -> None:
    assert GeoLookup(geolite2_city).lookup("8.8.8.8") == Geo(country="US")


def test_unexpected_record_shapes_are_ignored(geolite2_city: Path) -> None:
    assert GeoLookup(geolite2_city).lookup("175.16.199.1") == Geo("CN", "", "", None)


@pytest.mark.parametrize("content", [b"", b"not a MaxMind database\n" * 20])
def test_corrupt_database_is_refused_at_start_naming_the_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "GeoLite2-City.mmdb"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"GeoLite2-City\.mmdb"):
        GeoLookup(path)


def test_missing_database_is_refused_at_start_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nowhere\.mmdb"):
        GeoLookup(tmp_path / "nowhere.mmdb")


def test_truncated_database_is_refused_at_start(tmp_path: Path, geolite2_city: Path) -> None:
    data = geolite2_city.read_bytes()
    path = tmp_path / "half.mmdb"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"half\.mmdb"):
        GeoLookup(path)


def test_empty_path_means_country_only() -> None:
    assert GeoLookup("").lookup("81.2.69.142") == Geo(country="GB")


def test_lookups_are_cached(geolite2_city: Path) -> None:
    geo = GeoLookup(geolite2_city)
    # The same instance back proves no second database read.
    assert geo.lookup("81.2.69.142") is geo.lookup("81.2.69.142")


def test_each_lookup_keeps_its_own_cache(geolite2_city: Path) -> None:
    assert GeoLookup(geolite2_city).lookup("81.2.69.142").city == "London"
    assert GeoLookup(None).lookup("81.2.69.142").city == ""


def _around(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    first, last = int(network[0]), int(network[-1])
    top = 2**network.max_prefixlen - 1
    cls = ipaddress.IPv4Address if network.version == 4 else ipaddress.IPv6Address
    return [str(cls(n)) for n in (first - 1, first, (first + last) // 2, last, last + 1) if 0 <= n <= top]


def test_the_quick_global_check_never_disagrees_with_the_ipaddress_module() -> None:
    """Every special network's edges and middle, and random addresses of the whole space: what the
    quick check calls global is global, and it calls most global addresses so."""
    rng = random.Random(5)
    special = [
        *ipaddress._IPv4Constants._private_networks,  # type: ignore[attr-defined]
        ipaddress._IPv4Constants._public_network,  # type: ignore[attr-defined]
        *ipaddress._IPv6Constants._private_networks,  # type: ignore[attr-defined]
    ]
    addresses = [a for n in special for a in _around(n)]
    addresses += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(20_000)]
    addresses += [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(5_000)]
    # IPv6 as clicks bring it: global unicast, and the blocks beside the special ones.
    for head in (0x2000, 0x2001, 0x2002, 0x2A00, 0x2C0F, 0xFC00, 0xFE80, 0x0100, 0x0000):
        addresses += [str(ipaddress.IPv6Address((head << 112) | rng.getrandbits(112))) for _ in range(500)]
    quick = {a: quick_global(a) for a in addresses}
    wrong = [
        a for a, v in quick.items() if v and not (ipaddress.ip_address(a).is_global and v == ip_version(a))
    ]
    assert wrong == []
    # Outside the blocks that hold special networks every address is quick: most of IPv4, and all
    # of IPv6's global unicast but 2001::/16 (a click's own address nearly always).
    v4 = [a for a in addresses if "." in a and ipaddress.ip_address(a).is_global]
    assert sum(1 for a in v4 if quick[a]) > 0.85 * len(v4)
    assert all(quick[a] for a in addresses if a.startswith(("2a00:", "2c0f:")))
    # Written otherwise than canonically (upper case, zeros): the slow path answers.
    assert quick_global("2A00::1") == quick_global("2a00:0:0:0:0:0:0:1") == 0
    assert quick_global("2a00::1") == 6 and quick_global("81.2.69.142") == 4
    assert len(addresses) > 29_000


def ip_version(address: str) -> int:
    return ipaddress.ip_address(address).version
