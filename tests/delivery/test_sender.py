"""The sender against a real local receiver: the SSRF guard at send time, what is sent."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from clickback.core.addresses import NOTHING_ALLOWED, parse_allowlist
from clickback.delivery.sender import Request, Sender, destination_problem
from tests.receiver import Answer, Receiver, receiving


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


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
