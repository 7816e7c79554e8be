"""The link fetcher against a real local web server: 200, 404, a redirect loop, a slow answer, a
page that never answers in time, soft-404 pages, the SSRF guard on every hop, politeness per host."""

import asyncio
import itertools
import threading
from collections.abc import Iterator

import pytest

from clickback.core.addresses import NOTHING_ALLOWED, Allowlist, parse_allowlist
from clickback.core.linkcheck import Code, Observed, Outcome, Policy, Verdict, judge
from clickback.delivery.linkcheck import BROWSER_UA, LinkFetcher
from tests.dns import PUBLIC, Dns
from tests.receiver import Answer, Got, Receiver, receiving

LOOPBACK = parse_allowlist(["127.0.0.1/32"])
LANDING = b"<html><title>Welcome</title><body><h1>200% bonus</h1></body></html>"
HTML = {"content-type": "text/html; charset=utf-8"}
# Never set: the /hang page holds its answer until the test ends (then `released` lets it go).
released = threading.Event()


def site(got: Got) -> Answer:
    path = got.target.split("?", 1)[0]
    if path == "/ok":
        return Answer(200, LANDING, HTML)
    if path == "/gone":
        return Answer(404, b"<h1>Not Found</h1>", HTML)
    if path == "/loop-a":
        return Answer(302, b"", {"location": "/loop-b"})
    if path == "/loop-b":
        return Answer(302, b"", {"location": "/loop-a?"[:-1]})
    if path == "/slow":
        return Answer(200, LANDING, HTML, hold=threading.Event(), hold_seconds=0.4)
    if path == "/hang":
        return Answer(200, LANDING, HTML, hold=released, hold_seconds=30)
    if path == "/expired":
        return Answer(200, b"<html><body><h2>Offer expired</h2></body></html>", HTML)
    if path == "/es":
        page = "<html><title>Error</title><h1>Página no encontrada</h1></html>".encode("latin-1")
        return Answer(200, page, {"content-type": "text/html; charset=iso-8859-1"})
    if path == "/idna":
        # A charset naming one of Python's codecs that is no text encoding.
        return Answer(
            200, b"<html><h1>Offer expired</h1></html>", {"content-type": "text/html; charset=idna"}
        )
    if path == "/metadata":
        return Answer(302, b"", {"location": "http://169.254.169.254/latest/meta-data/"})
    if path == "/bad-location":
        # Sent as the bytes FF FE (latin-1): not UTF-8.
        return Answer(302, b"", {"location": "ftp://x/\xff\xfe"})
    if path == "/hop":
        return Answer(301, b"", {"location": "/ok"})
    if path == "/cookie":
        # A cookie check: away to set a cookie, back, and only then the page.
        if "seen=1" in got.headers.get("cookie", ""):
            return Answer(200, LANDING, HTML)
        return Answer(302, b"", {"location": "/set-cookie"})
    if path == "/set-cookie":
        return Answer(302, b"", {"location": "/cookie", "set-cookie": "seen=1; Path=/"})
    return Answer(500, b"no such page")


@pytest.fixture
def server() -> Iterator[Receiver]:
    with receiving() as r:
        r.answer = site
        yield r
        released.set()
    released.clear()


def observe(
    urls: list[str], allow: Allowlist = LOOPBACK, dns: Dns | None = None, **policy: float
) -> list[tuple[Observed, Outcome]]:
    # Slowness and time-outs only where a test is about them: a loaded machine answers a local
    # request in 0.4 s now and then, which is no reason for a working page to be called slow.
    chosen = Policy(**({"timeout": 10.0, "host_gap": 0.0, "slow_ms": 5000} | policy))  # type: ignore[arg-type]

    async def run() -> list[Observed]:
        if dns is not None:
            dns.install()
        fetcher = LinkFetcher(allow, chosen)
        try:
            return list(await asyncio.gather(*(fetcher.observe(u) for u in urls)))
        finally:
            await fetcher.close()

    return [(s, judge(s, chosen.slow_ms)) for s in asyncio.run(run())]


def test_a_working_page_is_ok_and_was_asked_for_as_a_browser(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/ok?cid=abc")])
    assert outcome.code is Code.OK and seen.chain[-1].status == 200
    (got,) = server.got
    assert got.target == "/ok?cid=abc" and got.headers["user-agent"] == BROWSER_UA


def test_a_redirect_is_followed_and_kept_in_the_chain(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/hop")])
    assert outcome.code is Code.OK
    assert [(h.url, h.status) for h in seen.chain] == [(server.url("/hop"), 301), (server.url("/ok"), 200)]


def test_a_404_is_broken(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/gone")])
    assert (outcome.verdict, outcome.code) == (Verdict.BROKEN, Code.HTTP_ERROR)
    assert seen.chain[-1].status == 404


def test_a_redirect_loop_is_broken_and_stops(server: Receiver) -> None:
    [(_, outcome)] = observe([server.url("/loop-a")])
    assert outcome.code is Code.REDIRECT_LOOP
    assert len(server.got) == 4  # a, b, a, b: then a third visit of a is not made


def test_a_cookie_check_going_back_once_is_no_loop(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/cookie")])
    assert outcome.code is Code.OK and len(seen.chain) == 3


def test_a_slow_answer_within_the_timeout_is_slow(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/slow")], slow_ms=200, timeout=5.0)
    assert (outcome.verdict, outcome.code) == (Verdict.SLOW, Code.SLOW)
    assert seen.elapsed_ms >= 400


def test_an_answer_later_than_the_timeout_is_broken(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/hang")], timeout=0.3)
    assert (outcome.verdict, outcome.code) == (Verdict.BROKEN, Code.TIMEOUT)
    assert seen.chain == () and 300 <= seen.elapsed_ms < 2000


@pytest.mark.parametrize(
    ("path", "phrase"),
    [("/expired", "Offer expired"), ("/es", "Página no encontrada"), ("/idna", "Offer expired")],
)
def test_a_soft_404_page_is_found(server: Receiver, path: str, phrase: str) -> None:
    [(seen, outcome)] = observe([server.url(path)])
    assert (outcome.verdict, outcome.code) == (Verdict.SOFT_404, Code.SOFT_404)
    assert phrase.lower() in outcome.hint.lower() and seen.chain[-1].status == 200


def test_a_redirect_to_a_private_address_is_refused_without_a_request(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/metadata")])
    assert (outcome.verdict, outcome.code) == (Verdict.BROKEN, Code.REFUSED_ADDRESS)
    assert "169.254.169.254" in seen.error and len(seen.chain) == 1


@pytest.mark.parametrize("host", ["inside.rebind.test", "[v1.x:inside.rebind.test]"])
def test_a_redirect_to_a_name_rebound_when_connected_to_is_refused(server: Receiver, host: str) -> None:
    # The landing page sends the check to a name that is public when the hop is checked and the
    # operator's network when it is connected to (DNS rebinding); the IPvFuture form is one
    # aiohttp connected to without the guarded resolver.
    with receiving() as inside:
        server.answer = lambda got: Answer(302, b"", {"location": f"http://{host}:{inside.port}/admin"})
        [(seen, outcome)] = observe([server.url("/away")], dns=Dns(PUBLIC, "::ffff:127.0.0.1"))
        assert inside.got == []
        assert outcome.code is Code.REFUSED_ADDRESS and len(seen.chain) == 1


def test_a_loopback_offer_url_is_refused_unless_allowlisted(server: Receiver) -> None:
    [(seen, outcome)] = observe([server.url("/ok")], allow=NOTHING_ALLOWED)
    assert outcome.code is Code.REFUSED_ADDRESS and "loopback" in seen.error
    assert server.got == []


def test_a_host_that_does_not_resolve_is_a_connection_error_not_a_refused_address() -> None:
    # .invalid never resolves (RFC 2606): the answer comes from the resolver, not the network.
    [(seen, outcome)] = observe(["http://nonexistent.invalid/x?c=1"], allow=NOTHING_ALLOWED)
    assert (outcome.verdict, outcome.code) == (Verdict.BROKEN, Code.CONNECTION_ERROR)
    assert "nonexistent.invalid does not resolve" in seen.error
    assert "CLICKBACK_OUTBOUND_ALLOW" not in outcome.hint and "host name" in outcome.hint


def test_nothing_listening_is_a_connection_error(server: Receiver) -> None:
    with receiving() as gone:
        url = gone.url("/ok")
    [(_, outcome)] = observe([url])
    assert outcome.code is Code.CONNECTION_ERROR


def test_one_request_per_host_at_a_time_and_a_gap_between(server: Receiver) -> None:
    results = observe([server.url(f"/ok?n={i}") for i in range(3)], host_gap=0.4, concurrency=3)
    assert all(o.code is Code.OK for _, o in results)
    times = sorted(g.at for g in server.got)
    assert all(later - earlier >= 0.4 for earlier, later in itertools.pairwise(times))
    # The wait for the host's turn (0.8 s for the last) is not the offer's time.
    assert all(s.elapsed_ms < 700 for s, _ in results)


def test_a_location_that_is_not_utf8_is_kept_as_text_a_database_stores(server: Receiver) -> None:
    # aiohttp kept its bytes as lone surrogates, which the database refused: the round of checks
    # failed, and in `serve` the checks of every offer stopped until a restart.
    ((seen, outcome),) = observe([server.url("/bad-location")])
    location = seen.chain[-1].location
    assert location == "ftp://x/\ufffd\ufffd" and location.encode("utf-8")
    assert outcome.verdict is not Verdict.OK
