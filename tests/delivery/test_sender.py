"""The sender against a real local receiver: the SSRF guard at send time, what is sent."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from clickback.core.addresses import NOTHING_ALLOWED, parse_allowlist
from clickback.delivery.sender import Request, Sender, destination_problem
from tests.dns import PUBLIC, Dns
from tests.receiver import Answer, Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def saved_then_sent(url: str, dns: Dns) -> tuple[str | None, Any]:
    """The template's check when it is saved, then one attempt, with `dns` answering."""

    async def run() -> tuple[str | None, Any]:
        dns.install()
        saved = await destination_problem(url, NOTHING_ALLOWED)
        sender = Sender(NOTHING_ALLOWED, 1, 1)
        try:
            return saved, await sender.send(Request("d-1", "GET", url, "", "", None), datetime.now(UTC))
        finally:
            await sender.close()

    return asyncio.run(run())


def send(sender: Sender, url: str, **fields: str) -> object:
    async def run() -> object:
        try:
            request = Request(
                "d-1", fields.get("method", "GET"), url, fields.get("body", ""), "", fields.get("secret")
            )
            return await sender.send(request, datetime.now(UTC))
        finally:
            await sender.close()

    return asyncio.run(run())


def test_a_private_destination_is_refused_at_send_time_too(receiver: Receiver) -> None:
    # Saved while allowed (or its name resolved elsewhere then): refused when it comes to sending.
    reply = send(Sender(NOTHING_ALLOWED, 1, 1), receiver.url())
    assert reply.refused and reply.status is None and "loopback" in reply.error  # type: ignore[attr-defined]
    assert receiver.got == []


def test_the_request_goes_to_the_checked_address_with_the_names_host_header(receiver: Receiver) -> None:
    receiver.default = Answer(200, b"x" * 2000)
    reply = send(Sender(parse_allowlist(["localhost"]), 1, 1), f"http://localhost:{receiver.port}/pb?a=1")
    assert reply.status == 200 and len(reply.reply) == 512  # type: ignore[attr-defined]
    (got,) = receiver.got
    assert got.headers["host"] == f"localhost:{receiver.port}" and got.target == "/pb?a=1"
    assert got.headers["x-clickback-delivery"] == "d-1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/pb",
        "http://10.1.2.3/pb",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/pb",
        "http://localhost/pb",  # a name resolving to loopback
    ],
)
def test_the_guard_refuses_private_destinations_unless_allowlisted(url: str) -> None:
    assert asyncio.run(destination_problem(url, NOTHING_ALLOWED)) is not None
    allow = parse_allowlist(["127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "::1/128", "localhost"])
    assert asyncio.run(destination_problem(url, allow)) is None


@pytest.mark.parametrize(
    "later",
    ["127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0", "169.254.169.254", "64:ff9b::a9fe:a9fe", "::1"],  # noqa: S104
)
def test_a_name_public_when_saved_and_private_when_sent_is_refused(receiver: Receiver, later: str) -> None:
    # DNS rebinding: the name passed the check when the template was saved; the attempt checks
    # the addresses it connects to, whatever the name resolves to now.
    dns = Dns(PUBLIC, later)
    saved, reply = saved_then_sent(f"http://tracker.rebind.test:{receiver.port}/pb", dns)
    assert saved is None and len(dns.asked) >= 2
    assert reply.refused and reply.status is None and f"({later})" in reply.error
    assert receiver.got == []


def test_a_host_aiohttp_takes_for_an_address_is_checked_as_one(receiver: Receiver) -> None:
    # An IPvFuture host: the URL parsers take it, aiohttp takes anything with a colon for an
    # address and connected to it without the guarded resolver, the system resolving the name
    # at connection time (here: to the receiver on 127.0.0.1).
    dns = Dns(PUBLIC, "::ffff:127.0.0.1")
    saved, reply = saved_then_sent(f"http://[v1.x:tracker.rebind.test]:{receiver.port}/pb", dns)
    assert saved is None and receiver.got == []
    assert reply.refused and reply.status is None and "neither a host name nor an IP address" in reply.error
    assert receiver.got == []


def test_proxies_in_the_environment_are_not_used(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would connect to the destination itself, past the address the guard checked.
    with receiving() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        reply = send(Sender(parse_allowlist(["127.0.0.1/32"]), 1, 1), receiver.url("/pb"))
        assert reply.status == 200  # type: ignore[attr-defined]
        assert proxy.got == [] and [g.target for g in receiver.got] == ["/pb"]


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    # Its target was never checked: the attempt fails and says where it was sent.
    with receiving() as inside:
        receiver.default = Answer(302, b"", {"location": inside.url("/admin")})
        reply = send(Sender(parse_allowlist(["127.0.0.1/32"]), 1, 1), receiver.url("/pb"))
        assert reply.status == 302 and "redirects are not followed" in reply.error  # type: ignore[attr-defined]
        assert inside.got == []
