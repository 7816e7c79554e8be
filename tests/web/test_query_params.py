from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from clickback.core.clicks import ClickRequest
from clickback.web.tracking import click_request, query_params

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
