"""Outbound templates, macros, the retry schedule and the address rule: tables of cases, no I/O."""

import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from clickback.core.addresses import check_destination, parse_allowlist, refused_because
from clickback.core.lifecycle import Status
from clickback.core.outbound import (
    MACROS,
    BodyFormat,
    Method,
    OutboundError,
    destination_of,
    mask_url,
    notice,
    redirect_error,
    signature,
    template,
    verify_signature,
)
from clickback.core.retry import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    Verdict,
    after_failure,
    backoff,
    retry_after,
    schedule_floor,
    verdict,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
CONVERSION: dict[str, Any] = {
    "id": 41,
    "click_id": "C" * 32,
    **{f"sub{i}": f"s{i}" for i in range(1, 6)},
    "campaign": "spring",
    "link_id": 3,
    "offer_id": 2,
    "affiliate_id": 1,
    "event": "first_deposit",
    "txn_id": "T-1",
    "player_id": "p-9",
    "country": "DE",
    "event_at": NOW,
    "payout": Decimal("500"),
    "currency": "EUR",
}


def values(**changes: Any) -> dict[str, str]:
    base = {"source": "push", "lp": "", "commission": Decimal("100"), "currency": "EUR", "delivery_id": "d-1"}
    return notice(CONVERSION, "approved", **(base | changes))


def render(url: str, **fields: Any) -> tuple[str, str]:
    return template(id=1, affiliate_id=1, url=url, **fields).render(values())


def test_tracker_aliases_give_the_trackers_click_id_and_the_affiliates_commission() -> None:
    url, _ = render(
        "https://t.example/pb?a={subid}&b={clickid}&c={external_id}&d={transaction_id}&e={payout}&f={sum}"
    )
    assert url == "https://t.example/pb?a=s1&b=s1&c=s1&d=s1&e=100.00&f=100.00"
    url, _ = render("https://t.example/pb?cid={subid}&adv={advertiser_payout}", click_id_sub="sub2")
    assert url == "https://t.example/pb?cid=s2&adv=500.00"


def test_own_macros_and_status_mapping() -> None:
    url, _ = render(
        "https://t.example/pb?c={click_id}&st={status}&ev={event}&t={txn_id}&at={conversion_time}&id={delivery_id}",
        status_map={"approved": "sale"},
    )
    assert (
        url == f"https://t.example/pb?c={'C' * 32}&st=sale&ev=first_deposit&t=T-1"
        "&at=2026-12-02T12%3A00%3A00Z&id=d-1"
    )


@pytest.mark.parametrize(
    ("value", "in_url", "in_json"),
    [
        ("a b&c=d", "a%20b%26c%3Dd", "a b&c=d"),
        ('say "hi"\\', "say%20%22hi%22%5C", 'say \\"hi\\"\\\\'),
        ("é", "%C3%A9", "é"),
    ],
)
def test_values_are_escaped_for_their_place(value: str, in_url: str, in_json: str) -> None:
    t = template(
        id=1,
        affiliate_id=1,
        url="https://t.example/pb?x={sub1}",
        method=Method.POST,
        body_format=BodyFormat.JSON,
        body='{"x": "{sub1}"}',
    )
    url, body = t.render(values() | {"sub1": value})
    assert url == f"https://t.example/pb?x={in_url}"
    assert body == f'{{"x": "{in_json}"}}'
    assert json.loads(body)["x"] == value


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://t.example/pb"}, "http:// or https://"),
        ({"url": "https://t.example/pb?x={nope}"}, "unknown macro {nope}"),
        ({"url": "https://{sub1}.example/pb"}, "host part"),
        ({"url": "https://user@t.example/pb"}, "host part"),
        ({"url": "https://[v1.x:t.example]/pb"}, "in brackets, an IPv6 address"),
        ({"url": "https://t.example/p b"}, "spaces"),
        ({"url": "https://t.example:99999/pb"}, "port"),
        # Saved, its host was percent-encoded and never resolved: every postback a dead letter.
        ({"url": "https://b\u00fccher.example/pb"}, "as DNS knows it: xn--bcher-kva.example"),
        ({"url": "https://t.example/pb", "body": "a=1"}, "GET postback has no body"),
        (
            {
                "url": "https://t.example/pb",
                "method": Method.POST,
                "body_format": BodyFormat.JSON,
                "body": '{"a": {sub1}}',
            },
            "JSON object",
        ),
        ({"url": "https://t.example/pb", "click_id_sub": "sub9"}, "click_id_sub"),
        ({"url": "https://t.example/pb", "status_map": {"won": "sale"}}, "not a status"),
    ],
)
def test_bad_templates_are_refused_saying_what_to_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(OutboundError, match=message.replace("{", r"\{").replace("}", r"\}")):
        template(id=1, affiliate_id=1, **fields)


POST_FORM = {"url": "https://t.example/pb", "method": Method.POST, "body_format": BodyFormat.FORM}
POST_JSON = {"url": "https://t.example/pb", "method": Method.POST, "body_format": BodyFormat.JSON}


@pytest.mark.parametrize(
    ("fields", "stray"),
    [
        ({"url": "https://t.example/pb?x={{subid}}"}, "{{subid}}"),
        ({"url": "https://t.example/pb?y=[clickid]"}, "[clickid]"),
        ({"url": "https://t.example/pb?y=[[clickid]]"}, "[[clickid]]"),
        ({"url": "https://t.example/pb?z=${payout}"}, "${payout}"),
        ({"url": "https://t.example/pb?w=%7Bclick_id%7D"}, "{click_id}"),
        ({"url": "https://t.example/pb?w=%7B{subid}%7D"}, "%7B{subid}%7D"),
        ({"url": "https://t.example/pb?w={subid}}"}, "{subid}}"),
        ({"url": "https://t.example/pb?v={click-id}"}, "{click-id}"),
        ({"url": "https://t.example/pb?v=#clickid#"}, "#clickid#"),
        ({"url": "https://t.example/pb?v=%25clickid%25"}, "%clickid%"),
        ({"url": "https://t.example/pb?v={subid"}, "{subid"),
        ({"url": "https://t.example/pb/{{click_id}}/done"}, "{{click_id}}"),
        (POST_FORM | {"body": "x={{subid}}"}, "{{subid}}"),
        (POST_FORM | {"body": "x={subid}&y=[clickid]"}, "[clickid]"),
        (POST_FORM | {"body": "w=%7Bclick_id%7D"}, "{click_id}"),
        (POST_JSON | {"body": '{"x": "{{subid}}"}'}, "{{subid}}"),
        (POST_JSON | {"body": '{"x": "${payout}"}'}, "${payout}"),
        (POST_JSON | {"body": '{"x": "[clickid]", "y": "{subid}"}'}, "[clickid]"),
        (POST_JSON | {"body": '{"x": {"y": ["{click-id}"]}}'}, "{click-id}"),
        (POST_JSON | {"body": '{"{subid}}": 1}'}, "}"),
        # A bare dollar sign before a name: $payout, $x$ (trackers that write them so).
        ({"url": "https://t.example/pb?p=$payout"}, "$payout"),
        ({"url": "https://t.example/pb?c={subid}&p=$payout$"}, "$payout$"),
        ({"url": "https://t.example/pb?c=$click_id&s={subid}"}, "$click_id"),
        ({"url": "https://t.example/pb?c=id-$sub1"}, "$sub1"),
        ({"url": "https://t.example/pb/$clickid/done?s={subid}"}, "$clickid"),
        (POST_FORM | {"body": "x={subid}&amount=$payout"}, "$payout"),
        (POST_JSON | {"body": '{"x": "{subid}", "amount": "$payout"}'}, "$payout"),
        (POST_JSON | {"body": '{"x": {"y": ["$x$"]}}'}, "$x$"),
    ],
)
def test_another_trackers_placeholders_are_refused_by_name(fields: dict[str, Any], stray: str) -> None:
    # Nothing would replace them: the tracker would get the text, or a value with `$` or braces.
    with pytest.raises(OutboundError) as refused:
        template(id=1, affiliate_id=1, **fields)
    assert repr(stray) in str(refused.value)
    assert "would be sent as written" in str(refused.value)
    if stray.startswith("$") and "{" not in stray:
        # How to write a dollar sign as data where it is: %24 in a URL or form, \u0024 in JSON.
        written = "\\u0024 in a JSON string" if fields.get("body_format") is BodyFormat.JSON else "%24"
        assert f"a dollar sign meant as data is written {written}" in str(refused.value)


@pytest.mark.parametrize(
    "fields",
    [
        # Form and query syntax that only looks like a placeholder.
        {"url": "https://t.example/pb?filter[status]={status}&a[]={subid}&price=100%25"},
        {"url": "https://t.example/pb?cur=%E2%82%AC&s={subid}#top"},
        POST_FORM | {"body": "data[click]={subid}&amount={payout}"},
        POST_JSON
        | {"body": '{"amount": {payout}, "nested": {"click": "{subid}", "list": [{conversion_id}]}}'},
        # A dollar sign that starts no name, ends a word or follows one, is percent-encoded, or
        # is in a parameter's name: data, not a placeholder.
        {"url": "https://t.example/pb?price=$5&cur=US$&x=$&s={subid}"},
        {"url": "https://t.example/pb?token=ab$cd&s={subid}"},
        {"url": "https://t.example/pb?note=%24payout&s={subid}"},
        {"url": "https://t.example/pb?$format=json&$top=1&s={subid}"},
        POST_FORM | {"body": "price=$5&note=%24payout&s={subid}"},
        POST_JSON | {"body": '{"$set": {"click": "{subid}"}, "price": "$5", "cur": "US$", "k": "a$b"}'},
        # In a JSON body (not URL-decoded), a dollar sign meant as data is written \u0024.
        POST_JSON | {"body": '{"note": "\\u0024payout", "click": "{subid}"}'},
    ],
)
def test_look_alikes_of_placeholders_are_accepted(fields: dict[str, Any]) -> None:
    template(id=1, affiliate_id=1, **fields)


NOT_FOLLOWED = "redirects are not followed; fix the URL"


@pytest.mark.parametrize(
    ("status", "location", "error"),
    [
        (
            302,
            "https://new.example/pb?api_key=k&x=1",
            "HTTP 302 redirect to https://new.example/pb?api_key=***&x=1: " + NOT_FOLLOWED,
        ),
        (301, "/moved", "HTTP 301 redirect to /moved: " + NOT_FOLLOWED),
        (307, None, "HTTP 307 without a Location: " + NOT_FOLLOWED),
        (
            308,
            "https://n.example/" + "a" * 300,
            "HTTP 308 redirect to https://n.example/"
            + "a" * 181
            + "…: redirects are not followed; fix the URL",
        ),
        (200, "https://n.example/", ""),
        (404, None, ""),
    ],
)
def test_a_redirect_says_where_it_pointed_and_that_it_is_not_followed(
    status: int, location: str | None, error: str
) -> None:
    assert redirect_error(status, location) == error


def test_an_unknown_macro_lists_the_known_ones() -> None:
    with pytest.raises(OutboundError) as refused:
        template(id=1, affiliate_id=1, url="https://t.example/pb?x={subacc4}")
    assert all("{" + m + "}" in str(refused.value) for m in MACROS)


def test_which_changes_a_template_fires_on() -> None:
    t = template(
        id=1,
        affiliate_id=1,
        url="https://t.example/pb",
        offer_id=2,
        events=["first_deposit"],
        statuses=[Status.APPROVED, Status.REJECTED],
    )
    assert t.fires_on(1, 2, "first_deposit", Status.APPROVED)
    assert t.fires_on(1, 2, "first_deposit", Status.REJECTED)
    assert not t.fires_on(1, 2, "first_deposit", Status.PENDING)
    assert not t.fires_on(1, 3, "first_deposit", Status.APPROVED)
    assert not t.fires_on(2, 2, "first_deposit", Status.APPROVED)
    assert not t.fires_on(1, 2, "registration", Status.APPROVED)


def test_destination_and_masking() -> None:
    assert destination_of("https://T.Example:8443/pb?x=1") == "t.example:8443"
    assert destination_of("http://[::1]:81/pb") == "[::1]:81"
    assert (
        mask_url("https://u:p@t.example/pb?subid=1&token=abc&api_key=k&x=")
        == "https://***@t.example/pb?subid=1&token=***&api_key=***&x="
    )


def test_signature_round_trip() -> None:
    header = signature("k" * 16, 1_800_000_000, b"/pb?subid=1")
    assert header.startswith("t=1800000000,v1=")
    assert verify_signature("k" * 16, header, b"/pb?subid=1")
    assert not verify_signature("k" * 16, header, b"/pb?subid=2")
    assert not verify_signature("x" * 16, header, b"/pb?subid=1")
    assert not verify_signature("k" * 16, "garbage", b"/pb?subid=1")
    assert not verify_signature("k" * 16, "t=\u00b9,v1=00", b"/pb?subid=1")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (None, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (0, Verdict.RETRY),  # "HTTP/1.1 000": no status HTTP defines
        (99, Verdict.RETRY),
        (999, Verdict.RETRY),
        (301, Verdict.PERMANENT),
        (400, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (410, Verdict.PERMANENT),
    ],
)
def test_what_a_reply_means(status: int | None, expected: Verdict) -> None:
    assert verdict(status) is expected


def test_retries_last_more_than_a_day_at_the_default_base() -> None:
    assert schedule_floor(30) > timedelta(hours=24)
    rng = random.Random(7)
    waits = [backoff(n, 30, rng) for n in range(1, MAX_ATTEMPTS)]
    assert waits[0] < timedelta(seconds=37) and max(waits) <= timedelta(hours=6 * 1.2)
    assert after_failure(MAX_ATTEMPTS, NOW, 30, None).at is None  # a dead letter
    assert after_failure(1, NOW, 30, timedelta(minutes=10), rng).at == NOW + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("120", timedelta(seconds=120)),
        ("Wed, 02 Dec 2026 12:01:00 GMT", timedelta(minutes=1)),
        ("99999999", MAX_RETRY_AFTER),
        ("soon", None),
        ("\u00b2", None),  # isdigit(), but no number int() reads: the attempt went unrecorded
        ("Mon, 01 Jan 99999999999999 00:00:00 GMT", None),  # past datetime: the same
        ("Mon, 01 Jan 2027 00:00:00 +99999999999999999", None),
        ("", None),
        (None, None),
        ("Wed, 02 Dec 2026 11:00:00 GMT", timedelta()),
    ],
)
def test_retry_after(header: str | None, wait: timedelta | None) -> None:
    assert retry_after(header, NOW) == wait


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "not public"),
        ("0.0.0.0", "private"),  # noqa: S104 - an address refused, not bound,
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        # Addresses with an IPv4 one inside: what is inside decides.
        ("2002:7f00:1::", "6to4 loopback"),
        ("2002:a9fe:a9fe::1", "6to4 link-local (cloud metadata)"),
        ("2002:0a00:0005::", "6to4 private"),
        ("2002:0808:0808::1", None),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "private"),  # Teredo
        ("64:ff9b::7f00:1", "not public"),  # NAT64
        ("::127.0.0.1", "not public"),  # IPv4-compatible
        ("fec0::1", "site-local"),
    ],
)
def test_which_addresses_are_refused(address: str, why: str | None) -> None:
    assert refused_because(ipaddress.ip_address(address)) == why


def test_the_allowlist_names_hosts_and_networks() -> None:
    allow = parse_allowlist(["127.0.0.1/32", "Tracker.Internal", " ", "fd00::/8"])
    assert check_destination("127.0.0.1", ["127.0.0.1"], allow) is None
    assert check_destination("tracker.internal", ["10.0.0.5"], allow) is None
    assert check_destination("fd00::5", ["fd00::5"], allow) is None
    assert "private" in (check_destination("evil.example", ["10.0.0.5"], allow) or "")
    assert "loopback" in (check_destination("localhost", ["127.0.0.2"], allow) or "")
    with pytest.raises(ValueError, match="neither a host"):
        parse_allowlist(["not a host!"])
