"""Tiny .mmdb files in the shapes of the databases operators download, built with mmdb-writer.

Real files cannot be used: GeoLite2's licence forbids shipping it, and DB-IP's is 100+ MB. The records
copy the vendors' documented layouts; the networks are the ones MaxMind's own test databases use.
"""

from pathlib import Path
from typing import Any

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet  # type: ignore[import-untyped]  # ships no py.typed

GB = {
    "geoname_id": 2635167,
    "is_in_european_union": False,
    "iso_code": "GB",
    "names": {"en": "United Kingdom"},
}
EUROPE = {"code": "EU", "geoname_id": 6255148, "names": {"de": "Europa", "en": "Europe"}}

# MaxMind GeoLite2-City: subdivisions carry an ISO code, every place a geoname_id.
GEOLITE2_LONDON = {
    "city": {"geoname_id": 2643743, "names": {"de": "London", "en": "London", "ru": "Лондон"}},
    "continent": EUROPE,
    "country": GB,
    "location": {
        "accuracy_radius": 10,
        "latitude": 51.5142,
        "longitude": -0.0931,
        "time_zone": "Europe/London",
    },
    "postal": {"code": "EC2V"},
    "registered_country": GB,
    "subdivisions": [
        {"geoname_id": 6269131, "iso_code": "ENG", "names": {"en": "England", "fr": "Angleterre"}}
    ],
}
# A block GeoLite2 places in another country than its registration (iptocc says US).
GEOLITE2_RELOCATED = {
    "city": {"geoname_id": 6167865, "names": {"en": "Toronto"}},
    "country": {"geoname_id": 6251999, "iso_code": "CA", "names": {"en": "Canada"}},
    "subdivisions": [{"geoname_id": 6093943, "iso_code": "ON", "names": {"en": "Ontario"}}],
}
# Anycast and satellite blocks: a location without a country.
GEOLITE2_NO_COUNTRY = {
    "continent": EUROPE,
    "location": {"accuracy_radius": 1000, "latitude": 47.0, "longitude": 8.0},
}
GEOLITE2_GOOGLE_V6 = {
    "city": {"geoname_id": 5375480, "names": {"en": "Mountain View"}},
    "country": {"geoname_id": 6252001, "iso_code": "US", "names": {"en": "United States"}},
    "subdivisions": [{"geoname_id": 5332921, "iso_code": "CA", "names": {"en": "California"}}],
}

# DB-IP Lite (dbip-city-lite): names only, no subdivision ISO code and no city geoname_id.
DBIP_LONDON = {
    "city": {"names": {"en": "London"}},
    "continent": EUROPE,
    "country": GB,
    "location": {"latitude": 51.5085, "longitude": -0.12574},
    "subdivisions": [{"names": {"en": "England"}}],
}
# Keys the vendors use with other types (IPinfo Lite's "country" is a string) must not break a lookup.
ODD_SHAPES = {
    "country": "China",
    "subdivisions": [],
    "city": {"names": "Changchun"},
    "autonomous_system_number": True,
}

# GeoLite2-ASN and dbip-asn-lite share this layout.
ASN_ANDREWS_ARNOLD = {
    "autonomous_system_number": 20712,
    "autonomous_system_organization": "Andrews & Arnold Ltd",
}


def write_mmdb(
    path: Path, database_type: str, networks: dict[str, dict[str, Any]], ip_version: int = 6
) -> Path:
    # The vendors ship IPv6 databases with IPv4 mapped in at ::/96, which ipv4_compatible reproduces.
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description="clickback test fixture",
    )
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="session")
def geolite2_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mmdb(
        tmp_path_factory.mktemp("mmdb") / "GeoLite2-City.mmdb",
        "GeoLite2-City",
        {
            "81.2.69.0/24": GEOLITE2_LONDON,
            "216.160.83.56/29": GEOLITE2_RELOCATED,
            "89.160.20.0/24": GEOLITE2_NO_COUNTRY,
            "175.16.199.0/24": ODD_SHAPES,
            "2001:4860::/32": GEOLITE2_GOOGLE_V6,
        },
    )


@pytest.fixture(scope="session")
def dbip_city_lite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mmdb(
        tmp_path_factory.mktemp("mmdb") / "dbip-city-lite.mmdb",
        "DBIP-City-Lite",
        {"81.2.69.0/24": DBIP_LONDON},
    )


@pytest.fixture(scope="session")
def asn_ipv4_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mmdb(
        tmp_path_factory.mktemp("mmdb") / "GeoLite2-ASN.mmdb",
        "GeoLite2-ASN",
        {"81.2.69.0/24": ASN_ANDREWS_ARNOLD},
        ip_version=4,
    )
