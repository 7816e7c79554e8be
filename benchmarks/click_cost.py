#!/usr/bin/env python3
"""What a link's cost model costs the click path: `core.clicks.take_click` on a link with a CPC
model by GEO (and on one whose source passes its cost) against the same link with none, in one
process, rounds interleaved so that the machine's drift hits both alike.

take_click is the click path's own work (link lookup, cleaning, click ID, enrichment's cached
traits, the click and its redirect URL); the HTTP server's parsing and the writer's batch come on
top and are the same for both links, so the ratio here is the upper bound of what cost adds to a
click (benchmarks/click_vs_nginx.py --cost cpc measures the whole path over HTTP, more noisily;
benchmarks/batch_writer.py --cost the writer's side).

Usage: .venv/bin/python benchmarks/click_cost.py [--clicks 50000] [--rounds 15]
"""

import argparse
import secrets
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal

from clickback.core.clickids import ClickIdCodec
from clickback.core.clicks import ClickRequest, ClickTaken, take_click
from clickback.core.cost import NO_COST, CostKind, CostModel
from clickback.core.macros import compile_template
from clickback.core.model import Advertiser, Affiliate, Catalog, Link, Offer, Traits
from clickback.core.privacy import IpMode, Privacy

TRAITS = Traits("DE", "Hesse", "Frankfurt", 3320, "mobile", "Android", "Chrome Mobile", "")
MODELS = {
    "none": NO_COST,
    "cpc": CostModel(CostKind.CPC, "EUR", Decimal("0.05"), {"DE": Decimal("0.08"), "GB": Decimal("0.07")}),
    "source": CostModel(CostKind.SOURCE, "USD"),
}


def catalog() -> Catalog:
    offer = Offer(
        1, 1, "Casino", compile_template("https://offer.example.com/?cid={click_id}&s1={sub1}"), "EUR"
    )
    links = [
        Link(n, f"link{name}", 1, 1, "bench", cost=model) for n, (name, model) in enumerate(MODELS.items(), 1)
    ]
    return Catalog.build(1, [Advertiser(1, "Adv", "t" * 32)], [offer], [Affiliate(1, "Aff")], links)


def per_click_us(name: str, n: int, cat: Catalog, codec: ClickIdCodec, privacy: Privacy) -> float:
    params = {"sub1": "zone-17", "source": "push"} | ({"cost": "0.0125"} if name == "source" else {})
    request = ClickRequest(f"link{name}", params, "203.0.113.9", "Mozilla/5.0 (Linux; Android 14)", "")
    now = datetime.now(UTC)
    started = time.perf_counter()
    for _ in range(n):
        taken = take_click(request, cat, codec, now, privacy, lambda ip, ua, method: TRAITS)
    elapsed = time.perf_counter() - started
    assert isinstance(taken, ClickTaken) and (taken.click.cost > 0) == (name != "none")
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=50_000, help="clicks a round and link")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    cat, codec = catalog(), ClickIdCodec(secrets.token_bytes(32))
    privacy = Privacy(IpMode.TRUNCATED, secrets.token_bytes(32))
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    for _ in range(args.rounds):
        for name in MODELS:
            times[name].append(per_click_us(name, args.clicks, cat, codec, privacy))
    print(f"take_click, {args.rounds} rounds of {args.clicks:,} clicks a link, interleaved")
    print(f"{'link':<10}{'median us/click':>17}{'min':>8}{'max':>8}{'median ratio to none':>23}")
    for name, each in times.items():
        ratios = [t / base for t, base in zip(each, times["none"], strict=True)]
        print(
            f"{name:<10}{statistics.median(each):>17.2f}{min(each):>8.2f}{max(each):>8.2f}"
            f"{statistics.median(ratios):>23.3f}"
        )


if __name__ == "__main__":
    main()
