from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickback.core.clickids import ClickIdCodec
from clickback.core.limits import MAX_URL_LEN
from clickback.core.macros import (
    OFFER_MACROS,
    TemplateError,
    compile_template,
    find_unreplaced_macro,
    find_unsent_macro,
)

OFFER_URL = "https://casino.example.com/go?cid={click_id}&s1={sub1}&src={source}#lp={lp}"

TEMPLATES = [
    OFFER_URL,
    "http://casino.example.com/{sub1}/{sub2}?c={clickid}",
    "https://casino.example.com:8443/land?a={affiliate_id}&o={offer_id}&l={link}&c={campaign}",
    "https://CASINO.Example.com?{sub3}={sub4}&x={sub5}",
]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("a&b", "a%26b"),
        ("a=b", "a%3Db"),
        ("a/b", "a%2Fb"),
        ("a#b", "a%23b"),
        ("a?b", "a%3Fb"),
        ("a b", "a%20b"),
        ("a+b", "a%2Bb"),
        ("a%b", "a%25b"),
        ("a\r\nSet-Cookie: x", "a%0D%0ASet-Cookie%3A%20x"),
        ("é€", "%C3%A9%E2%82%AC"),
        ("@evil.example", "%40evil.example"),
        ("{sub1}", "%7Bsub1%7D"),
        ("safe-._~AZ09", "safe-._~AZ09"),
    ],
)
def test_every_value_is_url_encoded(value: str, encoded: str) -> None:
    rendered = compile_template(OFFER_URL).render({"click_id": "C", "sub1": value})
    assert rendered == f"https://casino.example.com/go?cid=C&s1={encoded}&src=#lp="


def test_click_id_and_clickid_are_the_same_macro() -> None:
    template = compile_template("https://casino.example.com/?a={click_id}&b={clickid}")
    assert template.render({"click_id": "X1"}) == "https://casino.example.com/?a=X1&b=X1"


def test_a_macro_without_a_value_renders_empty() -> None:
    template = compile_template("https://casino.example.com/?s2={sub2}&k=v")
    assert template.render({}) == "https://casino.example.com/?s2=&k=v"


def test_template_without_macros_renders_unchanged() -> None:
    text = "https://casino.example.com/landing?ref=42"
    assert compile_template(text).render({"click_id": "X"}) == text


def test_every_offer_macro_is_accepted() -> None:
    text = "https://casino.example.com/?" + "&".join(f"{m}={{{m}}}" for m in OFFER_MACROS)
    values = {field: field.upper() for field in OFFER_MACROS.values()}
    rendered = compile_template(text).render(values)
    query = parse_qs(urlsplit(rendered).query)
    assert {name: query[name] for name in OFFER_MACROS} == {
        name: [OFFER_MACROS[name].upper()] for name in OFFER_MACROS
    }


@settings(max_examples=150)
@given(
    text=st.sampled_from(TEMPLATES),
    values=st.dictionaries(st.sampled_from(sorted(set(OFFER_MACROS.values()))), st.text()),
)
def test_no_value_can_change_the_host_or_add_a_line(text: str, values: dict[str, str]) -> None:
    template = compile_template(text)
    rendered = template.render(values)
    assert urlsplit(rendered).hostname == template.host == "casino.example.com"
    assert "\r" not in rendered
    assert "\n" not in rendered


@settings(max_examples=200)
@given(click_id=st.text(), sub1=st.text())
def test_rendered_values_decode_back_to_what_was_given(click_id: str, sub1: str) -> None:
    rendered = compile_template(OFFER_URL).render({"click_id": click_id, "sub1": sub1})
    query = parse_qs(urlsplit(rendered).query, keep_blank_values=True, strict_parsing=True)
    assert query["cid"] == [click_id]
    assert query["s1"] == [sub1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://casino.example.com/?x={sub6}", "unknown macro {sub6}"),
        ("https://casino.example.com/?x={CLICK_ID}", "unknown macro {CLICK_ID}"),
        ("https://casino.example.com/?x={transaction_id}", "unknown macro"),
        # Brace placeholders that are not exactly {name}: they would reach the offer literally.
        ("https://casino.example.com/?x={click-id}", "unknown macro"),
        ("https://casino.example.com/?x={{click_id}}", "unknown macro"),
        ("https://{sub1}.example.com/", "host part"),
        ("https://casino.{sub1}/", "host part"),
        ("https://casino.example.com:{sub1}/", "host part"),
        ("https://casino.example.com{sub1}/", "host part"),
        ("https://user@casino.example.com/", "host part"),
        ("https://casino.example.com@evil.example/", "host part"),
        ("https://{sub1}@casino.example.com/", "host part"),
        ("https://evil.example\\@casino.example.com/", "host part"),
        ("https://casino.example.com/a\\b", "host part"),
        ("ftp://casino.example.com/", "http:// or https://"),
        ("javascript:alert(1)//casino.example.com", "http:// or https://"),
        ("data:text/html,<script>", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("{lp}", "http:// or https://"),
        ("https:///go?cid={click_id}", "http:// or https://"),
        ("https://", "http:// or https://"),
        ("https:casino.example.com/", "http:// or https://"),
        ("/go?cid={click_id}", "http:// or https://"),
        ("casino.example.com/go?cid={click_id}", "http:// or https://"),
        ("", "http:// or https://"),
        ("https://casino.example.com/a b", "spaces or control characters"),
        (" https://casino.example.com/", "spaces or control characters"),
        ("https://casino.example.com/\ta", "spaces or control characters"),
        ("https://casino.example.com/\r\nSet-Cookie: x=1", "spaces or control characters"),
        ("https://casino.example.com/\n", "spaces or control characters"),
        ("https://casino.example.com/\x00", "spaces or control characters"),
        ("https://casino.example.com/\x1b[31m", "spaces or control characters"),
        ("https://casino.example.com/\x7f", "spaces or control characters"),
        ("https://casino.example.com/?" + "a" * MAX_URL_LEN, f"longer than {MAX_URL_LEN}"),
    ],
)
def test_unusable_template_is_refused(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        compile_template(text)


def test_template_of_exactly_the_maximum_length_is_accepted() -> None:
    head = "https://casino.example.com/?cid={click_id}&pad="
    text = head + "a" * (MAX_URL_LEN - len(head))
    assert len(text) == MAX_URL_LEN
    assert compile_template(text).host == "casino.example.com"


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("https://casino.example.com/", "casino.example.com"),
        ("HTTPS://Casino.Example.COM/go", "casino.example.com"),
        ("http://casino.example.com:8080/{sub1}", "casino.example.com"),
        ("https://casino.example.com?cid={click_id}", "casino.example.com"),
        ("https://casino.example.com#{click_id}", "casino.example.com"),
        ("https://casino.example.com/a//b/{sub1}", "casino.example.com"),
        ("https://127.0.0.1/{sub1}", "127.0.0.1"),
    ],
)
def test_template_host_is_the_literal_host(text: str, host: str) -> None:
    assert compile_template(text).host == host


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("{click_id}", "{click_id}"),
        ("{subacc4}", "{subacc4}"),
        ("{Sub5}", "{Sub5}"),
        ("{{x}}", "{{x}}"),
        ("{{ external_id }}", "{{ external_id }}"),
        ("[clickid]", "[clickid]"),
        ("[[subid]]", "[[subid]]"),
        ("#s1#", "#s1#"),
        ("#reqid#", "#reqid#"),
        ("%CLICKID%", "%CLICKID%"),
        ("${sub}", "${sub}"),
        ("{status:lead=0 sale=1}", "{status:lead=0 sale=1}"),
        ("{status:lead=0 sale=1 rejected=2}", "{status:lead=0 sale=1 rejected=2}"),
        ("abc{click_id}def", "{click_id}"),
        ("12.50{payout}", "{payout}"),
        ("$clickid", "$clickid"),
        # Encoded once more than the sender's server decoded (%257B arrives as %7B), or twice.
        ("%7Bclick_id%7D", "{click_id} (URL-encoded)"),
        ("%257Bclick_id%257D", "{click_id} (URL-encoded)"),
        ("%24clickid", "$clickid (URL-encoded)"),
    ],
)
def test_unreplaced_placeholder_is_found(value: str, found: str) -> None:
    assert find_unsent_macro(value) == found
    # In a template's text, a bare $name and a percent-encoded one are left to its own check
    # (core/outbound: %24 is how a dollar sign is written as data).
    as_written = find_unreplaced_macro(value)
    bare = found.startswith("$") and "{" not in found
    assert as_written == (None if bare or "URL-encoded" in found else found)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "10%",
        "10% off 20%",
        "12.50",
        "a#b",
        "#1#",
        "user@example.com",
        "-daSwHfmu-CE09WcnVQHS0Lz53sf417t",
        "[]",
        "{}",
        "{1}",
        "$100",
        "US$5",
        "$",
        "50%25",
        "https://casino.example.com/?a=b&c=d#top",
    ],
)
def test_plain_value_is_not_a_placeholder(value: str) -> None:
    assert find_unsent_macro(value) is None
    assert find_unreplaced_macro(value) is None


def test_minted_click_ids_are_never_taken_for_placeholders() -> None:
    codec = ClickIdCodec(b"k" * 32)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    assert [cid for cid in (codec.mint(now) for _ in range(2000)) if find_unsent_macro(cid)] == []


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("https://a.example/?c={click_id}", True),
        ("https://a.example/?c={clickid}", True),
        ("https://a.example/?s={sub1}", False),
        ("https://a.example/click_id", False),
    ],
)
def test_whether_a_template_passes_the_click_id(text: str, passes: bool) -> None:
    assert compile_template(text).passes_click_id is passes
