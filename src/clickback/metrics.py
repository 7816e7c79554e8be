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
import gc
import os
import time
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
CLICKS_HELD = Counter(
    "clickback_clicks_held",
    "Redirects held for the click writer to catch up (two batches waiting while it stores them).",
    [WORKER],
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
GC_SECONDS = Histogram(
    "clickback_gc_seconds",
    "Full (generation 2) garbage collections of a serve worker and how long each held the event loop.",
    [WORKER],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
)
GC_FROZEN = Gauge(
    "clickback_gc_frozen_objects",
    "Objects of a serve worker's start frozen out of the garbage collector's walks.",
    [WORKER],
    multiprocess_mode="livesum",
)
LEDGER_ENTRIES = Counter("clickback_ledger_entries", "Commission entries booked, by kind.", [WORKER, "kind"])


@functools.cache
def worker() -> str:
    """This process's `worker` label (its process ID; a forked child reads its own)."""
    return str(os.getpid())


os.register_at_fork(after_in_child=worker.cache_clear)


def time_full_collections() -> None:
    """GC_SECONDS from here on, and GC_FROZEN. The callback runs at every collection (a young one
    every few hundred allocations): it returns at once for those."""
    started = 0.0
    GC_FROZEN.labels(worker()).set(gc.get_freeze_count())
    GC_SECONDS.labels(worker())  # shown from the start, at 0

    def timed(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if info["generation"] != 2:
            return
        if phase == "start":
            started = time.perf_counter()
        else:
            GC_SECONDS.labels(worker()).observe(time.perf_counter() - started)

    gc.callbacks.append(timed)


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
