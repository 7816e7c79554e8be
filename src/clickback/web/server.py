"""clickback's HTTP server: Uvicorn's httptools protocol, with tracking-link clicks answered from
the parser's callback instead of an ASGI task, and their replies sent once the event loop has read
every connection that was ready (ADR 8).

It also closes connections that keep it waiting (silent, slow heads, slow bodies) and caps the
request head. Everything else (parsing, pipelining, flow control, graceful shutdown, workers,
lifespan, every other route) stays Uvicorn's.
"""

import asyncio
import contextlib
import ctypes
import logging
import math
import os
import re
import resource
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import unquote

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from clickback.config import Settings
from clickback.web.tracking import AnswerClick, ClickReply

log = logging.getLogger(__name__)

# Request line plus headers. Uvicorn's httptools protocol sets no limit of its own; 64 KiB is
# eight times nginx's default and far beyond any browser's.
MAX_HEAD_BYTES = 64 * 1024
_CLOSE = b"connection: close\r\ncontent-length: 0\r\n\r\n"
_FAILED = STATUS_LINE[500] + _CLOSE


def _refusal(status: int, sentence: bytes) -> bytes:
    """A last response saying in its body why the request was not read."""
    return b"".join(
        (
            STATUS_LINE[status],
            b"connection: close\r\ncontent-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n\r\n" % len(sentence),
            sentence,
        )
    )


# A URL over the limit is a 414 (RFC 9110 15.5.15), not a 431, which names the header fields.
_URL_TOO_LONG = _refusal(414, b"The URL is longer than %d bytes.\n" % MAX_HEAD_BYTES)
_HEAD_TOO_LARGE = _refusal(431, b"The request's URL and headers are larger than %d bytes.\n" % MAX_HEAD_BYTES)


# Bytes a request target may not hold raw (RFC 9112 3.2), which llhttp refuses there: a run of
# them. Control bytes and DEL, then anything above 0x7F; CR and LF end the line, so are not
# among them.
_RAW = re.compile(rb"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\xff]+")
# Each byte, but those of _RAW made 0x80: one isascii() then says whether a read holds any.
_RAW_MARKED = bytes(0x80 if _RAW.fullmatch(bytes((b,))) else b for b in range(256))
_HTTP_1 = (b" HTTP/1.1", b" HTTP/1.0")


def _percent_encoded(raw: bytes) -> bytes:
    return b"%" + raw.hex("%").upper().encode("ascii")


# Where a line of a request's head has got to: nowhere yet, in what may be a method, in the
# request target (past the method's space, short of the version's), or anywhere else (the
# version, a header). A header line never reaches the target: a field name holds no space, so a
# header's colon comes before its first space.
_START, _METHOD, _TARGET, _ELSEWHERE = range(4)


def _line_after(where: int, more: bytes) -> int:
    """Where a head's line has got to after `more` (no line end in it), from `where`."""
    if where in (_START, _METHOD):
        start = _target_start(where, more, len(more))
        if start == _NO_SPACE_YET:
            return _METHOD if more else where
        if start < 0:
            return _ELSEWHERE
        where, more = _TARGET, more[start:]
    if where == _TARGET and b" " not in more:
        return _TARGET
    return _ELSEWHERE


# _target_start's answers when the target does not begin in what it was given.
_NO_SPACE_YET, _NOT_A_REQUEST_LINE = -1, -2


def _target_start(where: int, data: bytes, end: int) -> int:
    """Where the target begins in data[:end], a request line's bytes continuing it from `where`
    (_START, _METHOD or _TARGET); else _NO_SPACE_YET (still in what may be the method) or
    _NOT_A_REQUEST_LINE (a header's line: a colon before the first space, or a folded header's
    leading space)."""
    if where == _TARGET:
        return 0
    space = data.find(b" ", 0, end)
    if b":" in data[: end if space < 0 else space] or (space == 0 and where == _START):
        return _NOT_A_REQUEST_LINE
    return _NO_SPACE_YET if space < 0 else space + 1


def _target_spaces_escaped(data: bytes, where: int, line_end: int) -> bytes:
    """`data`, a request line's bytes from `where` to its end at data[line_end] (its LF) and
    what follows, with the spaces inside the line's target percent-encoded when the line ends
    with an HTTP/1 version (whose space is the target's end)."""
    target = _target_start(where, data, line_end)
    end = line_end - 1 if data[line_end - 1 : line_end] == b"\r" else line_end
    version = end - len(_HTTP_1[0])
    if target < 0 or version < target or not data.endswith(_HTTP_1, 0, end):
        return data
    return b"".join((data[:target], data[target:version].replace(b" ", b"%20"), data[version:]))


# What a connection is waiting for from its client: a request (its first, or the next), the rest
# of a head, the rest of a body.
_IDLE, _HEAD, _BODY = 0, 1, 2


class ConnectionLimits(NamedTuple):
    """How long a connection may keep the server waiting, in seconds (beside Uvicorn's keep-alive
    timeout). Unset, as in Uvicorn, a connection may wait for ever: `clickback serve` sets them
    from the settings (server_options)."""

    first_request: float = math.inf  # from the connection's opening to its first request's start
    head: float = math.inf  # from a request's first byte to the end of its head
    body: float = math.inf  # from the end of a request's head to the end of its body


NO_LIMITS = ConnectionLimits()


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools turns it into a parser error, and Uvicorn's
    handler of those calls send_400_response, which answers 414 or 431 instead."""


class ClickProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol, with `GET|HEAD /c/...` answered as soon as its headers are
    parsed, when the app offers `answer_click` and the answer can be given now: keep-alive
    HTTP/1.1, no earlier response still pending on the connection (pipelining keeps its order),
    a client reading its replies, no upgrade, and a click that need not wait (for the disk in durable
    mode, or for a click writer behind the traffic: ADR 22).
    Anything else takes the ASGI path, where the same endpoint answers it."""

    def __init__(self, *args: Any, limits: ConnectionLimits = NO_LIMITS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answer_click: AnswerClick | None = getattr(self.app, "answer_click", None)
        self._answered = False
        self._head_bytes = 0
        self._head_reads = 0
        self._head_began_in_this_read = False
        self._head_too_large = b""  # the response refusing a head over MAX_HEAD_BYTES, once found
        self._line = _START  # where the last read left a head's line (data_received)
        self._held_line: list[bytes] = []  # an unfinished request line's end (_spaces_escaped)
        self._held_bytes = 0
        self._unsent: list[bytes] = []
        # The wait for the client (see "Waiting for the client" below): what for, since when,
        # for how long at most; and the one timer that checks it.
        self._head_limit, self._body_limit = limits.head, limits.body
        self._reading = _IDLE
        self._since = 0.0
        self._limit = limits.first_request
        self._now = 0.0  # the time of the read being parsed
        self._timer: asyncio.TimerHandle | None = None
        self._recheck = min(*limits, self.timeout_keep_alive)
        self._stalled = False  # the timer found reading paused: the wait starts again after

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # Uvicorn's
        super().connection_made(transport)
        self._since = now = self.loop.time()
        self._set_timer(now, now + self._limit)

    def on_message_begin(self) -> None:
        # Uvicorn's on_message_begin also builds the ASGI scope, which a click answered here never
        # needs: that waits for _to_asgi.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._answered = False
        self._head_bytes = 0
        self._head_reads = 0
        self._head_began_in_this_read = True
        self._reading, self._since, self._limit = _HEAD, self._now, self._head_limit

    def data_received(self, data: bytes) -> None:
        self._now = self.loop.time()
        if self._held_line or (self._reading == _HEAD and self._line in (_METHOD, _TARGET)):
            # Rare: a read continuing a request line that an earlier one began.
            to_feed = self._spaces_escaped(data, self._line)
        elif self._reading == _IDLE:  # the read begins a request: its first line is a request line
            line_end = data.find(b"\n")
            # Found and counted at C speed: an ordinary request line has two spaces.
            odd = data.count(b" ") > 1 if line_end < 0 else data.count(b" ", 0, line_end) > 2
            to_feed = self._spaces_escaped(data, _START) if odd else data
        else:
            to_feed = data
        if to_feed is None:  # held back
            return
        data = to_feed
        if data.translate(_RAW_MARKED).isascii():  # nearly every read: at C speed, nothing to do
            super().data_received(data)
        else:
            self._feed_escaping_targets(data)
        if self._reading == _HEAD and not self.transport.is_closing():
            # Where the next read begins, should it bring bytes to escape.
            self._line = self._line_at(data, len(data))
            # httptools hands a header over only once its line has ended, so a head that never
            # ends is also counted here, by the reads it spans whole: those after the one it began
            # in (which may hold other requests too) that end with it still unfinished. Counted
            # once parsed: before, a read that also ends the head cannot be told from one that
            # does not (and may hold hundreds of pipelined requests after it).
            if self._head_began_in_this_read:
                self._head_began_in_this_read = False
            else:
                self._head_reads += len(data)
                if self._head_reads > MAX_HEAD_BYTES:
                    self._close_with(_HEAD_TOO_LARGE)

    # Raw bytes in a URL: some advertisers' servers send a postback's values without
    # percent-encoding them (`&player=Jürgen` as UTF-8, `&note=first deposit`, a stray control
    # byte), some clicks come so too. llhttp refuses them, and Uvicorn answered a bare 400: a
    # postback lost without a reason its sender could read, none in the postback log. So bytes
    # above 0x7F, control bytes and DEL inside a request target are percent-encoded before the
    # parser sees them, as a browser would have sent them, and so are the spaces inside the
    # target of a request line with more than two that ends with ` HTTP/1.0` or ` HTTP/1.1` (the
    # target lies between the first space and the last). A value is then read as an escaped one
    # is: a postback's invalid UTF-8 or control character is refused as `invalid_characters`, a
    # click's read with U+FFFD or removed (a click is never refused for its parameters). A
    # header's or a body's bytes reach the parser as they came, and CR and LF, which end a line.
    # An ordinary read pays for a translate() and an isascii(), and, when it begins a request,
    # a find() of its first line's end and a count() of that line's spaces.

    def _spaces_escaped(self, data: bytes, where: int) -> bytes | None:
        """What to feed the parser of `data`, which begins a request line or continues it from
        `where`, after what earlier reads held back: with the spaces inside the line's target
        escaped once the line has ended; None when all of it is held back. Until the line ends,
        whether a space after the target's first byte is the version's or one inside the target
        cannot be told, and the parser would refuse the line at the next byte that does not
        begin `HTTP/`: the line is held back from that space to its end (an ordinary line only
        when a read ends in its version)."""
        line_end = data.find(b"\n")
        if self._held_line:
            self._held_line.append(data)
            self._held_bytes += len(data)
            if line_end >= 0:
                data = b"".join(self._held_line)
                self._held_line.clear()
                return _target_spaces_escaped(data, _TARGET, data.find(b"\n"))
            # Not yet the parser's to measure: the URL's limit is kept here meanwhile.
            if self._held_bytes > MAX_HEAD_BYTES:
                self._close_with(_URL_TOO_LONG)
            return None
        if line_end >= 0:
            return _target_spaces_escaped(data, where, line_end)
        target = _target_start(where, data, len(data))
        space = data.find(b" ", target) if target >= 0 else -1
        if space < 0:
            return data
        self._held_line.append(data[space:])
        self._held_bytes = len(data) - space
        return data[:space] or None

    def _feed_escaping_targets(self, data: bytes) -> None:
        """Feed `data` to the parser, its runs of _RAW bytes inside a request target
        percent-encoded. The parser is fed up to each run first: its state then says whether
        the run is in a head (_reading), and the line it is in whether in the target."""
        fed = 0
        for run in _RAW.finditer(data):
            start, end = run.span()
            if start > fed:
                super().data_received(data[fed:start])
                if self.transport.is_closing():
                    return
            raw = run.group()
            in_target = self._reading == _HEAD and self._line_at(data, start) == _TARGET
            super().data_received(_percent_encoded(raw) if in_target else raw)
            if self.transport.is_closing():
                return
            fed = end
        if fed < len(data):
            super().data_received(data[fed:])

    def _line_at(self, data: bytes, at: int) -> int:
        """Where the line of data[at], in a head being read, has got to."""
        line = data.rfind(b"\n", 0, at) + 1
        # From where an earlier read left it, or from its start in this read (after the bytes
        # of earlier requests in this read, if any: a body need not end with a line end).
        where = self._line if line == 0 and not self._head_began_in_this_read else _START
        return _line_after(where, data[line:at])

    def _close_with(self, response: bytes) -> None:
        """A last response (after any reply still unsent), then the connection closes."""
        self._send_unsent()
        if response:
            self.transport.write(response)
        self.transport.close()

    def _to_asgi(self) -> None:
        url, headers, expect_100_continue = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect_100_continue
        self.headers.extend(headers)  # the list the new scope holds
        super().on_headers_complete()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = _URL_TOO_LONG
            raise HeadTooLarge
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Uvicorn's on_header, with the size check (4 bytes for ": " and the line end): called
        # for every header of every request, so not through super().
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = _HEAD_TOO_LARGE
            raise HeadTooLarge
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._reading, self._since, self._limit = _BODY, self._now, self._body_limit
        try:
            response = self._answer() if self.url.startswith(b"/c/") else None
        except Exception:
            # Raised inside a parser callback, it would reach Uvicorn as a parse error: a 400
            # and no trace of why. Logged here and answered as the ASGI path would: a 500.
            log.exception("click not answered")
            self._answered = True
            self._close_with(_FAILED)
            return
        if response is None:
            self._send_unsent()  # an earlier click's reply goes out before anything else
            self._to_asgi()
            return
        self._answered = True
        # Sent once the loop has read every connection that is ready, not now: a burst's replies
        # then leave back to back, and the clients' threads are woken once for several replies
        # instead of once each. Measured: a third more clicks per second at full load.
        if not self._unsent:
            self.loop.call_soon(self._send_unsent)
        self._unsent.append(response)
        self.on_response_complete()

    def _send_unsent(self) -> None:
        if self._unsent:
            if not self.transport.is_closing():
                self.transport.write(b"".join(self._unsent))
            self._unsent.clear()

    def shutdown(self) -> None:
        self._send_unsent()
        super().shutdown()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._close_with(self._head_too_large)
        elif self._answered:
            # A malformed body of a click already answered: that request has its one reply.
            self._close_with(b"")
        else:
            self._send_unsent()
            super().send_400_response(msg)

    # Waiting for the client. A connection is closed when it keeps the server waiting too long:
    # for its first request (limits.first_request), for the rest of a head once it has begun
    # (limits.head), for the rest of a body once its head has ended (limits.body), or for the next
    # request after a response (Uvicorn's keep-alive timeout). Reads do not reset these: a client
    # sending a byte now and then (slowloris) gets no more time than a silent one. Time the
    # server spends answering, or with reading paused (flow control), is not held against it.
    #
    # Uvicorn cancels its keep-alive timer on every read and arms a new one after every response:
    # two timer operations per click (4% of a click's instructions). Here a connection keeps one
    # timer, and a wait begins with three stores (_reading, _since, _limit): the timer is never
    # set further ahead than the shortest limit, so a wait that begins after it was set cannot
    # end before it fires. When it fires, it closes the connection if the wait in progress has
    # passed its limit, and is set again otherwise.

    def _set_timer(self, now: float, deadline: float) -> None:
        self._timer = self.loop.call_at(min(deadline, now + self._recheck), self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # behind a response, or a body the app has not read yet
            self._stalled = True
            self._set_timer(now, math.inf)
            return
        if self._stalled:  # reading resumed since the last check: the wait starts again
            self._stalled = False
            self._since = now
        if self._reading == _IDLE and self.cycle is not None and not self.cycle.response_complete:
            self._set_timer(now, math.inf)  # a response is being made: the server's turn
            return
        deadline = self._since + self._limit
        if deadline > now:
            self._set_timer(now, deadline)
        else:
            self._close_with(b"")

    def _unset_keepalive_if_required(self) -> None:
        pass  # Uvicorn's, called on every read: reads do not reset the wait here (see above)

    def on_response_complete(self) -> None:
        # Uvicorn's, but for the keep-alive timer (see above).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        if self._reading == _IDLE:  # the request was read whole: idle from now
            self._since = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _answer(self) -> bytes | None:
        """The whole HTTP response to this click, or None when the ASGI path must serve it."""
        answer, parser, cycle = self._answer_click, self.parser, self.cycle
        if answer is None or not (cycle is None or cycle.response_complete):
            return None
        # A client that sends clicks without reading the replies: the ASGI path waits for the
        # transport to drain and stops reading pipelined requests, so memory stays bounded.
        if self.flow.write_paused:
            return None
        if parser.get_http_version() != "1.1" or not parser.should_keep_alive() or parser.should_upgrade():
            return None
        method = parser.get_method()
        if method not in (b"GET", b"HEAD"):
            return None
        url = httptools.parse_url(self.url)
        path = url.path.decode("ascii")
        if "%" in path:
            path = unquote(path)
        peer = self.client[0] if self.client else ""
        reply = answer(method.decode(), path, url.query or b"", self.headers, peer)
        return None if reply is None else self._response(reply, head=method == b"HEAD")

    def _response(self, reply: ClickReply, *, head: bool) -> bytes:
        parts = [STATUS_LINE[reply.status]]
        for name, value in (*self.server_state.default_headers, *reply.headers):
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        if not head:
            parts.append(reply.body)
        return b"".join(parts)

    def on_body(self, body: bytes) -> None:
        if not self._answered:  # an answered click's body (there should be none) is dropped
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._answered:
            self._answered = False
        else:
            super().on_message_complete()
        # Idle until the next request, unless a response is still being made (_timer_fired).
        self._reading, self._since, self._limit = _IDLE, self._now, self.timeout_keep_alive


# How long Uvicorn's supervisor waits for a worker's answer before it kills the worker (SIGKILL)
# and starts another; also how long a worker may take to start. Uvicorn's 5 s counted a worker's
# imports and start-up: on a loaded 2-core machine a worker took 7 to 10 s to start, was killed
# as hung before it answered, and its replacement, as slow, could be killed in turn. A worker
# killed so loses the clicks it holds in memory; one truly hung is rare (its answer comes from a
# thread of its own), and the supervisor still replaces it.
WORKER_HEALTHCHECK_SECONDS = 60


def server_options(settings: Settings) -> dict[str, Any]:
    """Uvicorn's options for `clickback serve`, which the test suite's server shares."""
    limits = ConnectionLimits(
        first_request=settings.first_request_seconds,
        head=settings.request_head_seconds,
        body=settings.request_body_seconds,
    )
    return {
        # A partial of the class, not a subclass made here: the workers are spawned processes,
        # which receive Uvicorn's configuration pickled.
        "http": partial(ClickProtocol, limits=limits),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "lifespan": "on",
        # X-Forwarded-For is clickback's to interpret (CLICKBACK_PROXY_HOPS), not Uvicorn's.
        "proxy_headers": False,
        "server_header": False,
        "access_log": False,
        # No WebSocket routes; and ClickProtocol's timer takes the connection to stay HTTP.
        "ws": "none",
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
    }


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit, where the system allows,
    and log the limit in force (the workers inherit it). Each connection holds a file: at a
    common default of 1,024, a thousand idle connections made ordinary clicks fail."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit where files are not
            log.warning("open files: could not raise the limit from %d to %d: %s", soft, hard, exc)
    shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    log.info("open files: at most %s per process (one per connection)", shown)
    return soft


# glibc's mallopt parameter for the most malloc arenas.
M_ARENA_MAX = -8


def fewer_malloc_arenas(most: int = 2) -> None:
    """glibc gives every thread that allocates an arena of its own (up to eight a core): a
    worker's threads (SQLite's connections, its writer, the executor) kept 3 to 5 MB more
    resident for them (issue 13: no worker above 150 MB while answering a report). Spawned
    workers read the environment at their start; this process is told by mallopt."""
    os.environ.setdefault("MALLOC_ARENA_MAX", str(most))
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator decides
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, most)


def serve(
    app: str, settings: Settings, *, host: str, port: int, workers: int, log_config: dict[str, Any]
) -> None:
    """Run `app` (an import string naming an app factory) in `workers` processes."""
    raise_open_file_limit()
    fewer_malloc_arenas()
    uvicorn.run(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="auto",
        log_config=log_config,
        **server_options(settings),
    )
