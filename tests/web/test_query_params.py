from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickback.core.clicks import ClickRequest
from clickback.web.tracking import click_request, forwarded_for_header, forwarded_ip, query_params

# Query strings as they arrive: latin-1 bytes, with the characters that matter to parsing often.
QUERY_BYTES = st.lists(
    st.sampled_from([b"&", b"=", b"%", b"+", b"%41", b"%zz", b"%C3%A9", b"\xe9", b"sub1", b"x", b";", b" "])
).map(b"".join)


@given(QUERY_BYTES)
def test_reads_the_query_exactly_as_parse_qsl_does(raw: bytes) -> None:
    text = raw.decode("latin-1")
    assert query_params(raw) == dict(parse_qsl(text, keep_blank_values=True, errors="replace"))


def test_a_plain_tracking_query() -> None:
    assert query_params(b"sub1=fb&sub2=&source&=x&sub1=last") == {
        "sub1": "last",
        "sub2": "",
        "source": "",
        "": "x",
    }


def test_click_request_takes_each_part_of_the_http_request() -> None:
    headers = [
        (b"user-agent", b"Agent/1.0"),
        (b"referer", b"https://ref.example/"),
        (b"x-forwarded-for", b"203.0.113.9, 10.0.0.2"),
    ]

    direct = click_request("HEAD", "/c/abc", b"sub1=x", headers, "10.0.0.1", proxy_hops=0)
    proxied = click_request("GET", "/c/abc", b"", headers, "10.0.0.1", proxy_hops=2)

    expected = ClickRequest("abc", {"sub1": "x"}, "10.0.0.1", "Agent/1.0", "https://ref.example/", "HEAD")
    assert direct == expected
    assert (proxied.ip, proxied.method, proxied.params) == ("203.0.113.9", "GET", {})


BEHIND_TWO = [
    (b"user-agent", b"Agent/1.0"),
    # The first proxy appends to the line it got; the second adds a line of its own (HAProxy's
    # `option forwardfor`): one list, 6.6.6.6 written by the client itself.
    (b"x-forwarded-for", b"6.6.6.6, 203.0.113.9"),
    (b"x-forwarded-for", b"10.0.0.2"),
]


@pytest.mark.parametrize(("hops", "client"), [(1, "10.0.0.2"), (2, "203.0.113.9"), (3, "6.6.6.6")])
def test_x_forwarded_for_lines_are_one_list(hops: int, client: str) -> None:
    assert click_request("GET", "/c/abc", b"", BEHIND_TWO, "10.0.0.1", hops).ip == client


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "hops", "client"),
    [
        # A dual-stack socket (`clickback serve --host ::`) gives IPv4 peers in IPv6 form.
        ("::ffff:203.0.113.9", "", 0, "203.0.113.9"),
        ("10.0.0.1", "::ffff:203.0.113.9", 1, "203.0.113.9"),
        ("10.0.0.1", "::FFFF:cb00:7109", 1, "203.0.113.9"),
        ("::ffff:10.0.0.1", "junk", 1, "10.0.0.1"),
        # IPv6 clients stay as they are.
        ("2001:db8::1", "", 0, "2001:db8::1"),
        ("10.0.0.1", "2001:DB8:0::7", 1, "2001:db8::7"),
        ("::1", "", 0, "::1"),
    ],
)
def test_an_ipv4_client_is_recorded_in_ipv4_form(
    peer: str, forwarded_for: str, hops: int, client: str
) -> None:
    headers = [(b"x-forwarded-for", forwarded_for.encode())]

    assert click_request("GET", "/c/abc", b"", headers, peer, hops).ip == client
    assert forwarded_ip(peer, forwarded_for, hops) == client


@pytest.mark.parametrize(
    ("entry", "client"),
    [
        ("203.0.113.9:5678", "203.0.113.9"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        (" 203.0.113.9 ", "203.0.113.9"),
        # Still garbage: the proxy's own address, which we can vouch for.
        ("203.0.113.9:5678:1", "10.0.0.1"),
        ("[203.0.113.9", "10.0.0.1"),
        ("unknown", "10.0.0.1"),
        ("", "10.0.0.1"),
    ],
)
def test_a_forwarded_entry_may_carry_a_port(entry: str, client: str) -> None:
    assert forwarded_ip("10.0.0.1", f"6.6.6.6, {entry}", 1) == client


def test_forwarded_for_header_joins_every_line_in_order() -> None:
    assert forwarded_for_header(BEHIND_TWO) == "6.6.6.6, 203.0.113.9,10.0.0.2"
    assert forwarded_for_header([(b"user-agent", b"x")]) == ""
