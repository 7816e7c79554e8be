"""Prometheus metrics (the official client), for `GET /metrics`.

With several workers, `clickback serve` points PROMETHEUS_MULTIPROC_DIR at an empty directory of
the data dir before they start: each worker writes its figures there and whichever answers a
scrape reports the whole server's (counters and histograms summed over workers, gauges summed
over live workers). Without it (a single process, the tests) the figures are the process's own.

Every figure is labelled by `worker` (the worker process's ID): a scrape shows each worker's own
(sum them for the server's: `sum without (worker) (...)`), and one worker falling behind shows.

Clicks are counted by the click writer once per batch, not once per click: a labelled increment
costs a few microseconds, a tenth of a click.
"""

import functools
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKER = "worker"

CLICKS = Counter(
    "clickback_clicks",
    "Clicks stored (outcome taken) and refused at the redirect (outcome refused, by reason).",
    [WORKER, "outcome", "reason"],
)
CLICK_BACKLOG = Gauge(
    "clickback_click_backlog",
    "Redirected clicks not yet written to the database.",
    [WORKER],
    multiprocess_mode="livesum",
)
CLICK_BATCH_SECONDS = Histogram(
    "clickback_click_batch_seconds",
    "Time to write one batch of clicks.",
    [WORKER],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SPOOL_FILES = Gauge(
    "clickback_spool_files",
    "Spool files of clicks waiting for the database.",
    [WORKER],
    multiprocess_mode="livesum",
)
POSTBACKS = Counter(
    "clickback_postbacks", "Postbacks answered, by result and reason.", [WORKER, "result", "reason"]
)
POSTBACK_SECONDS = Histogram(
    "clickback_postback_seconds",
    "Time from a postback's arrival to its answer (its group committed).",
    [WORKER],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
OUTBOUND_DELIVERIES = Counter(
    "clickback_outbound_deliveries",
    "Outbound postback attempts, by what became of the delivery: delivered, retry (tried again "
    "later), failed (a 4xx: for good), dead (every retry failed).",
    [WORKER, "outcome"],
)
ENRICH_CACHE = Gauge(
    "clickback_enrich_cache",
    "Click enrichment cache lookups since the worker started, by cache (traits: the whole click's; "
    "geo: an IP; device, bot: a User-Agent) and outcome (hit, miss: a parse or a lookup). Set at "
    "each batch of clicks written.",
    [WORKER, "cache", "outcome"],
    multiprocess_mode="livesum",
)
LEDGER_ENTRIES = Counter("clickback_ledger_entries", "Commission entries booked, by kind.", [WORKER, "kind"])


@functools.cache
def worker() -> str:
    """This process's `worker` label (its process ID; a forked child reads its own)."""
    return str(os.getpid())


os.register_at_fork(after_in_child=worker.cache_clear)

# Caches whose hits and misses ENRICH_CACHE shows: name -> a functools cache's cache_info.
_caches: dict[str, Callable[[], Any]] = {}


def watch_cache(name: str, info: Callable[[], Any]) -> None:
    _caches[name] = info


def show_caches() -> None:
    """ENRICH_CACHE from the watched caches' own counts: read once per batch, nothing per click."""
    for name, info in _caches.items():
        counts = info()
        ENRICH_CACHE.labels(worker(), name, "hit").set(counts.hits)
        ENRICH_CACHE.labels(worker(), name, "miss").set(counts.misses)


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, and its content type."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
