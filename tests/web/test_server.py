"""web/server.py over real sockets: which requests the parser answers itself, and that everything
else still reaches the ASGI app, in order, on the same connection."""

import asyncio
import logging
import resource
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from clickback.config import Settings
from clickback.web.server import MAX_HEAD_BYTES, ClickProtocol, raise_open_file_limit, server_options
from clickback.web.tracking import ClickReply
from tests.conftest import BROWSER_UA, served


@dataclass
class StubApp:
    """An ASGI app that also offers `answer_click`, and notes which of the two served what."""

    answered: list[tuple[str, str, bytes, bytes, str]] = field(default_factory=list)
    through_asgi: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # of /upload
    queries: list[bytes] = field(default_factory=list)  # of what came through ASGI

    def answer_click(
        self, method: str, path: str, query: bytes, headers: Iterable[tuple[bytes, bytes]], peer: str
    ) -> ClickReply | None:
        self.answered.append((method, path, query, dict(headers).get(b"user-agent", b""), peer))
        if path == "/c/boom":
            raise RuntimeError("a bug in the click path")
        if path == "/c/wait":  # as a durable-mode click: the ASGI endpoint must serve it
            return None
        location = b"https://offer.example.com/?at=" + path.encode()
        body = b"parser " + path.encode()
        return ClickReply(302, [(b"location", location), (b"content-length", str(len(body)).encode())], body)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.through_asgi.append((scope["method"], scope["path"]))
        self.queries.append(scope["query_string"])
        if scope["path"] == "/slow":  # a handler busy for longer than the keep-alive timeout
            await asyncio.sleep(KEEP_ALIVE_S * 1.5)
        if scope["path"] == "/upload":  # a handler reading the body before it answers
            chunks = []
            while (message := await receive())["type"] == "http.request":
                chunks.append(message["body"])
                if not message["more_body"]:
                    break
            if message["type"] == "http.disconnect":
                return
            self.bodies.append(b"".join(chunks))
        body = f"asgi {scope['method']} {scope['path']}".encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def stub() -> Iterator[tuple[StubApp, int]]:
    app = StubApp()
    with served(app) as (port, _):
        yield app, port


def exchange(port: int, data: bytes, replies: int, heads: Iterable[int] = ()) -> list[Reply]:
    """Send `data` on one connection and read `replies` responses (those numbered in `heads`
    answer a HEAD: no body whatever their content-length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        stream = conn.makefile("rb")
        return [read_reply(stream, n in set(heads)) for n in range(replies)]


def read_reply(stream: Any, head: bool) -> Reply:
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    return Reply(status, headers, stream.read(length))


UA = b"User-Agent: Mozilla/5.0 test\r\n"
KEEP_ALIVE_S = 0.5


def get(target: bytes, version: bytes = b"1.1", extra: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/" + version + b"\r\nHost: t\r\n" + UA + extra + b"\r\n"


def test_keep_alive_clicks_are_answered_by_the_parser_without_the_asgi_app(
    stub: tuple[StubApp, int],
) -> None:
    app, port = stub

    replies = exchange(port, get(b"/c/one?sub1=x") + get(b"/c/two") + get(b"/c/three"), 3)

    assert [r.status for r in replies] == [302, 302, 302]
    assert [r.headers["location"] for r in replies] == [
        "https://offer.example.com/?at=/c/one",
        "https://offer.example.com/?at=/c/two",
        "https://offer.example.com/?at=/c/three",
    ]
    assert [r.body for r in replies] == [b"parser /c/one", b"parser /c/two", b"parser /c/three"]
    assert "date" in replies[0].headers  # Uvicorn's default headers, as on every other answer
    assert app.answered[0] == ("GET", "/c/one", b"sub1=x", b"Mozilla/5.0 test", "127.0.0.1")
    assert len(app.answered) == 3
    assert app.through_asgi == []


def test_a_head_click_gets_headers_only_and_the_connection_stays_in_step(
    stub: tuple[StubApp, int],
) -> None:
    app, port = stub
    head = b"HEAD /c/one HTTP/1.1\r\nHost: t\r\n\r\n"

    first, second = exchange(port, head + get(b"/c/two"), 2, heads=[0])

    assert (first.status, first.headers["content-length"], first.body) == (
        302,
        "13",
        b"",
    )  # len(b"parser /c/one")
    assert (second.status, second.body) == (302, b"parser /c/two")
    assert [a[0] for a in app.answered] == ["HEAD", "GET"]


def test_an_escaped_path_reaches_the_click_decoded(stub: tuple[StubApp, int]) -> None:
    app, port = stub

    [reply] = exchange(port, get(b"/c/%41bc"), 1)

    assert reply.status == 302
    assert app.answered[0][1] == "/c/Abc"


@pytest.mark.parametrize(
    ("request_bytes", "path"),
    [
        (get(b"/c/old", version=b"1.0"), "/c/old"),  # no keep-alive by default
        (get(b"/c/closing", extra=b"Connection: close\r\n"), "/c/closing"),
        (b"POST /c/form HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", "/c/form"),
        (get(b"/c/wait"), "/c/wait"),  # the app cannot answer it now
        (get(b"/postback?click_id=x"), "/postback"),
    ],
)
def test_other_requests_are_served_by_the_asgi_app(
    stub: tuple[StubApp, int], request_bytes: bytes, path: str
) -> None:
    app, port = stub

    [reply] = exchange(port, request_bytes, 1)

    assert reply.status == 200
    assert reply.body == b"asgi " + request_bytes.split()[0] + b" " + path.encode()
    assert app.through_asgi == [(request_bytes.split()[0].decode(), path)]


def test_pipelined_requests_are_answered_in_the_order_they_came(stub: tuple[StubApp, int]) -> None:
    _, port = stub

    replies = exchange(port, get(b"/c/one") + get(b"/api/x") + get(b"/c/two") + get(b"/c/three"), 4)

    # Behind a response still being made, clicks wait their turn on the ASGI path.
    assert [(r.status, r.body) for r in replies] == [
        (302, b"parser /c/one"),
        (200, b"asgi GET /api/x"),
        (200, b"asgi GET /c/two"),
        (200, b"asgi GET /c/three"),
    ]


def test_an_oversized_request_head_is_refused_and_the_connection_closed(
    stub: tuple[StubApp, int],
) -> None:
    app, port = stub
    huge = b"X-Padding: " + b"a" * MAX_HEAD_BYTES + b"\r\n"

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(get(b"/c/one", extra=huge))
        stream = conn.makefile("rb")
        reply = read_reply(stream, head=False)
        assert stream.read() == b""  # closed by the server

    assert reply.status == 431
    assert reply.body == b"The request's URL and headers are larger than 65536 bytes.\n"
    assert app.answered == []
    assert app.through_asgi == []


def test_an_oversized_url_is_refused_as_too_long_a_uri_saying_so(stub: tuple[StubApp, int]) -> None:
    app, port = stub

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(get(b"/c/one?sub1=" + b"a" * MAX_HEAD_BYTES))
        stream = conn.makefile("rb")
        reply = read_reply(stream, head=False)
        assert stream.read() == b""  # closed by the server

    assert (reply.status, reply.headers["content-type"]) == (414, "text/plain; charset=utf-8")
    assert reply.body == b"The URL is longer than 65536 bytes.\n"
    assert app.answered == []
    assert app.through_asgi == []


@contextmanager
def loop_held(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """The server busy (its event loop held) inside the block, as under load."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait(10)

    loop.call_soon_threadsafe(hold)
    held.wait(10)
    try:
        yield
    finally:
        release.set()


def test_hundreds_of_pipelined_clicks_in_one_write_are_all_answered_in_order() -> None:
    """The head limit counts the head being parsed, not the read: a proxy that coalesces, or a
    busy server, reads far more than 64 KiB of complete heads at once, beginning inside one."""
    app = StubApp()
    ua = b"User-Agent: " + BROWSER_UA.encode() + b"\r\n"
    clicks = [get(b"/c/%d?sub1=campaign-%d&source=facebook" % (n, n), extra=ua) for n in range(400)]
    expected = [b"parser /c/%d" % n for n in range(len(clicks))]
    assert len(b"".join(clicks)) > MAX_HEAD_BYTES

    with served(app) as (port, loop), socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        stream = conn.makefile("rb")
        conn.sendall(b"".join(clicks))
        at_once = [read_reply(stream, head=False) for _ in clicks]
        # Again, but the first read ends inside click 1's head, and the rest (the server busy
        # meanwhile) waits in the socket for one read that begins inside it.
        conn.sendall(clicks[0] + clicks[1][:20])
        first = read_reply(stream, head=False)
        with loop_held(loop):
            conn.sendall(clicks[1][20:] + b"".join(clicks[2:]))
        after_a_pause = [first] + [read_reply(stream, head=False) for _ in clicks[1:]]

    for replies in (at_once, after_a_pause):
        assert [r.status for r in replies] == [302] * len(clicks)
        assert [r.body for r in replies] == expected


def test_a_head_just_under_the_limit_is_served(stub: tuple[StubApp, int]) -> None:
    app, port = stub
    # The counted bytes are the target plus each header's name and value.
    padding = b"a" * (MAX_HEAD_BYTES - len(b"/c/one") - len(b"hostt") - len(UA) - 64)

    [reply] = exchange(port, get(b"/c/one", extra=b"X-Padding: " + padding + b"\r\n"), 1)

    assert reply.status == 302
    assert len(app.answered) == 1


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        # Not ASCII (browsers percent-encode it; some servers do not): escaped before parsing.
        (b"/c/\xff\xfe", "/c/\ufffd\ufffd", b""),
        (b"/c/one?sub1=\xff", "/c/one", b"sub1=%FF"),
        (b"/c/J\xc3\xbc?sub1=J\xc3\xbcrgen&s=\xe2\x82\xac", "/c/J\xfc", b"sub1=J%C3%BCrgen&s=%E2%82%AC"),
        (b"/c/one?sub1=%zz%", "/c/one", b"sub1=%zz%"),
        (b"/c/%ff%00", "/c/\ufffd\x00", b""),
    ],
)
def test_raw_bytes_in_a_click_url_reach_the_click_escaped(
    stub: tuple[StubApp, int], target: bytes, path: str, query: bytes
) -> None:
    app, port = stub

    first, second = exchange(port, get(target) + get(b"/c/after"), 2)

    assert first.status == second.status == 302
    assert [(a[1], a[2]) for a in app.answered] == [(path, query), ("/c/after", b"")]
    assert app.through_asgi == []


class Transport(asyncio.Transport):
    """A socket's transport as ClickProtocol uses it, for tests that choose what each read holds."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


def read_in(reads: Iterable[bytes]) -> tuple[StubApp, Transport]:
    """A connection whose socket gives `reads`, one read each: what the app saw, what was sent."""

    async def run() -> tuple[StubApp, Transport]:
        app = StubApp()
        config = uvicorn.Config(app, log_level="warning", **server_options(Settings()))
        protocol = ClickProtocol(config=config, server_state=ServerState(), app_state={})
        transport = Transport()
        protocol.connection_made(transport)
        for data in reads:
            protocol.data_received(data)
        await asyncio.sleep(0)  # the parser's replies go out on the loop's next turn
        while protocol.tasks:
            await asyncio.gather(*protocol.tasks)
        protocol.connection_lost(None)
        return app, transport

    return asyncio.run(run())


RAW_CLICK = (
    b"GET /c/one?sub1=J\xc3\xbcrgen&sub2=caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n"
    b"User-Agent: J\xc3\xbcrgen's app\r\n\r\n"
)
RAW_CLICK_SEEN = ("GET", "/c/one", b"sub1=J%C3%BCrgen&sub2=caf%C3%A9", b"J\xc3\xbcrgen's app", "127.0.0.1")


def test_raw_bytes_in_a_url_are_escaped_wherever_the_reads_split_it_and_a_headers_are_not() -> None:
    # A long URL spans TCP segments: the bytes to escape may come reads after the request line
    # began, and a header's raw bytes reads after it ended.
    splits = [[RAW_CLICK], [RAW_CLICK[n : n + 1] for n in range(len(RAW_CLICK))]]
    splits += [[RAW_CLICK[:n], RAW_CLICK[n:]] for n in range(1, len(RAW_CLICK))]

    for reads in splits:
        app, transport = read_in(reads)

        assert app.answered == [RAW_CLICK_SEEN], reads
        assert b"".join(transport.written).startswith(b"HTTP/1.1 302 "), reads


def test_raw_bytes_in_a_body_reach_the_app_as_they_came() -> None:
    # A body that looks like a request line, raw bytes and all, then (pipelined behind it, so
    # served through ASGI) a click with raw bytes.
    body = b"GET /c/one?sub1=\xc3\xa9 HTTP/1.1\r\n\xff"
    upload = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    pipelined = upload + RAW_CLICK

    for reads in ([pipelined], [pipelined[n : n + 1] for n in range(len(pipelined))]):
        app, transport = read_in(reads)

        assert app.bodies == [body]
        assert app.through_asgi == [("POST", "/upload"), ("GET", "/c/one")]
        assert app.queries == [b"", RAW_CLICK_SEEN[2]]
        assert b"".join(transport.written).count(b"HTTP/1.1 200 ") == 2


SPACED_CLICK = (
    b"GET /c/one?sub1=summer sale&sub2=a\x01b HTTP/1.1\r\nHost: t\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux) HTTP/1.1\r\nX-Note: GET /c/two?a=b c HTTP/1.1\r\n\r\n"
)
SPACED_CLICK_SEEN = (
    "GET",
    "/c/one",
    b"sub1=summer%20sale&sub2=a%01b",
    b"Mozilla/5.0 (X11; Linux) HTTP/1.1",
    "127.0.0.1",
)


def test_raw_spaces_in_a_url_are_escaped_wherever_the_reads_split_it_and_a_headers_are_not() -> None:
    # Headers with spaces (one that looks like a spaced request line) reach the app as sent; an
    # ordinary request line behind it is read as before, however the reads split it.
    pipelined = SPACED_CLICK + get(b"/c/two?sub1=a%20b")
    splits = [[pipelined], [pipelined[n : n + 1] for n in range(len(pipelined))]]
    splits += [[pipelined[:n], pipelined[n:]] for n in range(1, len(pipelined))]

    for reads in splits:
        app, transport = read_in(reads)

        assert app.answered == [
            SPACED_CLICK_SEEN,
            ("GET", "/c/two", b"sub1=a%20b", b"Mozilla/5.0 test", "127.0.0.1"),
        ]
        assert b"".join(transport.written).count(b"HTTP/1.1 302 ") == 2, reads


def test_a_request_line_held_back_is_still_limited_to_the_url_limit() -> None:
    # Never ended, it is refused as an over-long URL is, not kept growing.
    line = b"GET /c/one?note=a b" + b"c" * MAX_HEAD_BYTES

    app, transport = read_in([line[:100], line[100:]])

    assert app.answered == [] and transport.closed
    assert b"".join(transport.written).startswith(b"HTTP/1.1 414 ")


def test_raw_spaces_in_a_body_reach_the_app_as_they_came() -> None:
    # A body read on its own, beginning with what looks like a spaced request line, then a
    # spaced click read on its own.
    body = b"GET /c/one?sub1=a b\x01 HTTP/1.1\r\n"
    head = b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)

    app, transport = read_in([head, body, SPACED_CLICK])

    assert b"".join(transport.written).count(b"HTTP/1.1 200 ") == 2
    assert app.bodies == [body]
    # The click waits behind the upload's response: served through ASGI.
    assert app.through_asgi == [("POST", "/upload"), ("GET", "/c/one")]
    assert app.queries == [b"", SPACED_CLICK_SEEN[2]]


def test_raw_spaces_in_a_url_on_a_real_socket(stub: tuple[StubApp, int]) -> None:
    app, port = stub

    first, second = exchange(port, SPACED_CLICK + get(b"/c/after"), 2)

    assert first.status == second.status == 302
    assert app.answered[0] == SPACED_CLICK_SEEN


def test_a_click_for_a_client_not_reading_its_replies_waits_on_the_asgi_path() -> None:
    """Flow control: once the transport's buffer is over its high-water mark, clicks go where
    Uvicorn waits for it to drain and stops reading pipelined requests."""

    async def run() -> tuple[StubApp, ClickProtocol]:
        app = StubApp()
        config = uvicorn.Config(app, log_level="warning", **server_options(Settings()))
        protocol = ClickProtocol(config=config, server_state=ServerState(), app_state={})
        protocol.connection_made(Transport())
        protocol.data_received(get(b"/c/read"))
        protocol.pause_writing()  # what the transport calls when its buffer is full
        protocol.data_received(get(b"/c/unread"))
        await asyncio.sleep(0)  # let the ASGI task run (and the reply of the first click go out)
        protocol.resume_writing()
        for task in list(protocol.tasks):
            await task
        protocol.connection_lost(None)
        return app, protocol

    app, _ = asyncio.run(run())

    assert [a[1] for a in app.answered] == ["/c/read"]
    assert app.through_asgi == [("GET", "/c/unread")]


@pytest.fixture
def quick_timeout() -> Iterator[tuple[StubApp, int]]:
    app = StubApp()
    with served(app, Settings(keep_alive_seconds=KEEP_ALIVE_S)) as (port, _):
        yield app, port


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    quick_timeout: tuple[StubApp, int],
) -> None:
    _, port = quick_timeout

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(get(b"/c/one"))
        stream = conn.makefile("rb")
        assert read_reply(stream, head=False).status == 302
        started = time.monotonic()
        assert stream.read() == b""  # the server closed it
        idle = time.monotonic() - started

    assert KEEP_ALIVE_S * 0.9 <= idle < KEEP_ALIVE_S + 5


def test_a_connection_clicking_now_and_then_stays_open_past_the_timeout(
    quick_timeout: tuple[StubApp, int],
) -> None:
    app, port = quick_timeout

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        stream = conn.makefile("rb")
        for n in range(6):  # 6 clicks 0.6 timeouts apart: 3 timeouts in all, never idle for one
            conn.sendall(get(b"/c/%d" % n))
            assert read_reply(stream, head=False).status == 302
            time.sleep(KEEP_ALIVE_S * 0.6)  # the visitor's pause between clicks

    assert len(app.answered) == 6


def test_a_request_taking_longer_than_the_timeout_is_answered(
    quick_timeout: tuple[StubApp, int],
) -> None:
    _, port = quick_timeout

    # A click first (the parser answers it and the timer starts), then a slow request on the
    # same connection, then another click once it is answered.
    [click, slow, after] = exchange(port, get(b"/c/one") + get(b"/slow") + get(b"/c/two"), 3)

    assert (click.status, slow.status, after.status) == (302, 200, 200)
    assert slow.body == b"asgi GET /slow"


def test_a_head_that_never_ends_is_refused_before_it_fills_memory(stub: tuple[StubApp, int]) -> None:
    app, port = stub
    # One header line with no end, sent in more reads than the server's 256 KiB per read: the
    # server must give up after MAX_HEAD_BYTES of them, not wait for the line to end.
    line = b"GET /c/one HTTP/1.1\r\nX-Big: " + b"a" * (1024 * 1024)

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(line)
            answer = conn.makefile("rb").read()
        except (BrokenPipeError, ConnectionResetError):
            answer = b""  # closed (and reset) while we were still sending: refused too

    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert app.answered == []
    assert exchange(port, get(b"/c/after"), 1)[0].status == 302  # the server is fine


def test_a_failure_inside_the_click_path_is_logged_and_answered_500(
    stub: tuple[StubApp, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, port = stub

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(get(b"/c/boom"))
        stream = conn.makefile("rb")
        reply = read_reply(stream, head=False)
        assert stream.read() == b""  # closed

    assert reply.status == 500
    assert any(r.exc_info and "a bug in the click path" in str(r.exc_info[1]) for r in caplog.records)


def test_a_malformed_body_after_a_click_was_answered_gets_no_second_reply(
    stub: tuple[StubApp, int],
) -> None:
    _, port = stub
    bad_chunk = b"GET /c/one HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(bad_chunk)
        everything = conn.makefile("rb").read()  # until the server closes

    assert everything.count(b"HTTP/1.1 ") == 1
    assert everything.startswith(b"HTTP/1.1 302 ")


def test_a_click_whose_body_comes_after_its_reply_still_times_out_when_idle(
    quick_timeout: tuple[StubApp, int],
) -> None:
    _, port = quick_timeout

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(get(b"/c/one", extra=b"Content-Length: 5\r\n"))
        stream = conn.makefile("rb")
        assert read_reply(stream, head=False).status == 302
        conn.sendall(b"abcde")  # the body, after the reply
        assert stream.read() == b""  # closed for idleness, well before the socket's 10 s


def test_connections_keeping_the_server_waiting_are_closed_at_their_limits_while_clicks_go_on() -> None:
    """Silent, idle after a response, slow head (slowloris), slow body: each is closed once its wait
    passes its limit, though all but the first send a byte every tenth of a second."""
    limits = {"silent": 0.3, "idle": 0.5, "slow head": 0.7, "slow body": 0.9}
    settings = Settings(
        first_request_seconds=limits["silent"],
        keep_alive_seconds=limits["idle"],
        request_head_seconds=limits["slow head"],
        request_body_seconds=limits["slow body"],
    )
    starts = {  # what each connection sends first, then (but the silent one) a byte at a time
        "silent": (b"", b""),
        "idle": (get(b"/c/first"), b"\r\n"),  # the parser skips empty lines between requests
        "slow head": (b"GET /c/slow HTTP/1.1\r\nHost: t\r\nX-Drip: ", b"a"),
        "slow body": (b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", b"a"),
    }
    app = StubApp()
    conns: dict[str, socket.socket] = {}
    waiting_since: dict[str, float] = {}  # before the server's wait began
    closed_after: dict[str, float] = {}
    clicked = []
    with served(app, settings) as (port, _), socket.create_connection(("127.0.0.1", port)) as clicker:
        for name, (first, _) in starts.items():
            waiting_since[name] = time.monotonic()
            conns[name] = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns[name].sendall(first)
        replies = clicker.makefile("rb")
        give_up = time.monotonic() + 5
        while conns and time.monotonic() < give_up:
            readable, _, _ = select.select(list(conns.values()), [], [], 0.1)
            for name, conn in list(conns.items()):
                try:
                    if conn in readable and not conn.recv(1024).startswith(b"HTTP/1.1 302 "):
                        raise ConnectionResetError  # closed (the idle one's reply aside)
                    conn.sendall(starts[name][1])
                except OSError:  # closed, or reset as we sent
                    closed_after[name] = time.monotonic() - waiting_since.pop(name)
                    conns.pop(name).close()
            clicker.sendall(get(b"/c/%d" % len(clicked)))
            clicked.append(read_reply(replies, head=False).status)
        for conn in conns.values():  # left open (a failure): closed, or shutdown waits for them
            conn.close()

    for name, limit in limits.items():
        assert limit * 0.95 <= closed_after.get(name, 99) < limit + 2, (name, closed_after)
    assert len(clicked) >= 5
    assert clicked == [302] * len(clicked)
    assert ("POST", "/upload") in app.through_asgi  # its body never came whole
    assert [a[1] for a in app.answered] == ["/c/first", *(f"/c/{n}" for n in range(len(clicked)))]


def test_the_open_file_limit_is_raised_to_the_hard_limit_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))  # a low default
    caplog.set_level(logging.INFO, logger="clickback.web.server")
    try:
        in_force = raise_open_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    assert in_force == hard
    assert f"open files: at most {hard} per process" in caplog.text
