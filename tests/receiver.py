"""An affiliate's tracker for the outbound tests: a real HTTP server on a loopback port, in a
thread, answering as each test scripts it and keeping every request it got."""

import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How often a test's server loop looks whether it is to stop: shutdown() waits for that look, and
# socketserver's default of 0.5 s was 25 s of the suite's time spent in teardowns.
STOP_POLL_SECONDS = 0.02


@contextmanager
def in_a_thread(server: socketserver.BaseServer) -> Iterator[None]:
    """`server` answering in a thread until the block ends; then stopped and closed."""
    threading.Thread(target=server.serve_forever, args=(STOP_POLL_SECONDS,), daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Got:
    method: str
    target: str  # the request line's path and query, as sent
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    # Hold the reply until this event is set (a receiver that hangs).
    hold: threading.Event | None = None
    hold_seconds: float = 30


class _Server(ThreadingHTTPServer):
    # The listen backlog: at the default 5, connections a dispatcher opens together wait for
    # SYN retries (a second each) and time out in tests whose attempts get one second.
    request_queue_size = 128


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.got: list[Got] = []
        self._changed = threading.Condition()
        # Answers in order; once used up, `default`.
        self.script: list[Answer] = []
        self.default = Answer()
        self.answer: Callable[[Got], Answer] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                got = Got(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                answer = outer._record(got)
                if answer.hold is not None:
                    answer.hold.wait(answer.hold_seconds)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except ConnectionError:
                    self.close_connection = True  # the sender gave up waiting (a timeout, a kill)

            do_GET = do_POST = _handle

        self.server = _Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def _record(self, got: Got) -> Answer:
        with self._changed:
            self.got.append(got)
            self._changed.notify_all()
            if self.answer is not None:
                return self.answer(got)
            return self.script.pop(0) if self.script else self.default

    def url(self, path: str = "/pb") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 30) -> list[Got]:
        """Once at least `count` requests arrived: all of them."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.got) >= count, timeout), (
                f"{len(self.got)} of {count} requests arrived"
            )
            return list(self.got)

    def deliveries(self, count: int, timeout: float = 30) -> list[Got]:
        """Once at least `count` distinct deliveries arrived: the first request of each, in order.

        Delivery is at least once: an attempt that outlives the sender's timeout (1 s in tests, and
        a loaded machine can take that long to answer) is sent again under the same delivery ID,
        which is what a tracker deduplicates on. Tests of what was announced count deliveries."""

        def firsts() -> list[Got]:
            seen: dict[str, Got] = {}
            for got in self.got:
                seen.setdefault(got.headers.get("x-clickback-delivery", str(id(got))), got)
            return list(seen.values())

        with self._changed:
            assert self._changed.wait_for(lambda: len(firsts()) >= count, timeout), (
                f"{len(firsts())} of {count} deliveries arrived"
            )
            return firsts()


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    """A receiver on a free port (or on `port`, e.g. the one a receiver that went away had)."""
    receiver = Receiver(port)
    with in_a_thread(receiver.server):
        yield receiver
