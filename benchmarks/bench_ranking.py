"""Ranking extraction: exact-order accuracy on the labelled sets and time per response.

    python benchmarks/bench_ranking.py

Prints accuracy per labelled set and per style, and the extraction time per response
(median and 95th percentile over many repeats, matcher warm), plus the one-off cost of
building a category's name matcher.

First-sight accuracy of a set is the extractor as it was before the set was written: run
this script against that commit's source, e.g.

    git worktree add /tmp/before 0ce6578
    PYTHONPATH=/tmp/before/src python benchmarks/bench_ranking.py --sets ranking_cases_heldout.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from poise.catalog import sample_catalog
from poise.ranking import parse_ranking
from poise.ranking._names import NameMatcher

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SETS = ["ranking_cases.jsonl", "ranking_cases_heldout.jsonl", "ranking_cases_real.jsonl",
        "ranking_cases_blind2.jsonl"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=SETS, metavar="FILE",
                    help="labelled sets in tests/data (default: all of them)")
    args = ap.parse_args(argv)
    catalog = sample_catalog()
    all_cases = []
    print("exact-order accuracy")
    for name in args.sets:
        path = DATA / name
        if not path.exists():
            continue
        cases = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        right = 0
        by_style: dict[str, list[bool]] = defaultdict(list)
        for case in cases:
            products = catalog.category(case["category"]).products
            ranking = parse_ranking(case["response"], products)
            got = [[products[i].brand, products[i].model] for i in ranking.order] if ranking.parseable else None
            ok = got == case["expected"]
            right += ok
            by_style[case["style"]].append(ok)
            all_cases.append((case, products))
        print(f"  {name:32s} {right:3d}/{len(cases):3d} = {right / len(cases):6.1%}")
        worst = sorted(by_style.items(), key=lambda kv: sum(kv[1]) / len(kv[1]))[:3]
        for style, oks in worst:
            if not all(oks):
                print(f"      weakest style {style}: {sum(oks)}/{len(oks)}")
    total = sum(
        ([[p[i].brand, p[i].model] for i in r.order] if (r := parse_ranking(c["response"], p)).parseable else None)
        == c["expected"] for c, p in all_cases
    )
    print(f"  {'all':32s} {total:3d}/{len(all_cases):3d} = {total / len(all_cases):6.1%}")

    typical = [(c, p) for c, p in all_cases if c["expected"] and 300 <= len(c["response"]) <= 2500]
    repeats = 200
    times = []
    for case, products in typical:
        parse_ranking(case["response"], products)  # warm the matcher for this category
        start = time.perf_counter()
        for _ in range(repeats):
            parse_ranking(case["response"], products)
        times.append((time.perf_counter() - start) / repeats * 1e3)
    times.sort()
    chars = statistics.median(len(c["response"]) for c, _ in typical)
    print(f"\nextraction time per response ({len(typical)} typical responses, median {chars:.0f} chars, "
          f"{repeats} repeats each, matcher warm)")
    print(f"  median {statistics.median(times):.3f} ms   p95 {times[int(0.95 * (len(times) - 1))]:.3f} ms"
          f"   max {times[-1]:.3f} ms")

    names = tuple((p.brand, p.model) for p in catalog.category("blender").products)
    start = time.perf_counter()
    for _ in range(50):
        NameMatcher(names)
    print(f"  building one category's name matcher (once per category): "
          f"{(time.perf_counter() - start) / 50 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
