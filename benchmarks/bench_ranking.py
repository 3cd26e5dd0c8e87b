"""Ranking reader: accuracy on labelled sets, how often it abstains, and time per answer.

    python benchmarks/bench_ranking.py                      # every set in tests/data
    python benchmarks/bench_ranking.py --sets train_5_engines.jsonl
    python benchmarks/bench_ranking.py --files /tmp/new_set.jsonl --misses
    python benchmarks/bench_ranking.py --sets train_12_mixed.jsonl --reader heuristic+llamacpp:MODEL.gguf

A labelled case is one JSON object per line: ``category``, ``response``, ``expected`` (the
recommended products best first as [brand, model], or null when the answer recommends none
of them) and ``style`` or ``family``; a case may carry its own ``products`` list
([brand, model] pairs in context order), otherwise the bundled sample catalog's category is
used.

For each set it prints:
  correct    exact order, or "no ranking" (unparseable) where the label is null
  committed  answers the reader did not call ambiguous; precision = correct / committed
  ambiguous  answers the reader declined to read because its signals conflict
and the time per answer (median, p95 and worst over typical answers, matcher warm).

First-sight accuracy of a set is the reader as it was before the set was written: run
this script against that commit's source, e.g.

    git worktree add /tmp/before 100a559
    PYTHONPATH=/tmp/before/src python benchmarks/bench_ranking.py --files NEW.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from poise.catalog import sample_catalog
from poise.models import get_model
from poise.ranking import HEURISTIC, RankingReader, get_reader, parse_ranking
from poise.ranking._names import NameMatcher

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def default_sets() -> list[Path]:
    return sorted((DATA / "reader").glob("*.jsonl"))


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def products_of(case: dict[str, Any], catalog: Any) -> list[tuple[str, str]]:
    if case.get("products"):
        return [(str(b), str(m)) for b, m in case["products"]]
    return [(p.brand, p.model) for p in catalog.category(case["category"]).products]


def status_of(ranking: Any) -> str:
    """"ranked", "unparseable" or "ambiguous" (older readers know only the first two)."""
    status = getattr(ranking, "status", None)
    if status is not None:
        return str(status)
    return "ranked" if ranking.parseable else "unparseable"


def judge(case: dict[str, Any], products: list[tuple[str, str]],
          reader: RankingReader = HEURISTIC) -> tuple[str, bool, Any]:
    # a labelled case's own product list is in context order (page [1] first): the reader may map "source [3]"
    ranking = reader.read(case["response"], products, context=range(len(products)) if case.get("products") else None)
    status = status_of(ranking)
    got = [list(products[i]) for i in ranking.order] if status == "ranked" else None
    expected = case["expected"]
    correct = (status == "ranked" and got == expected) or (status == "unparseable" and expected is None)
    return status, correct, got if status == "ranked" else f"<{status}: {ranking.reason}>"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", metavar="FILE", help="labelled sets, relative to tests/data/reader")
    ap.add_argument("--files", nargs="+", type=Path, metavar="PATH", help="labelled sets anywhere")
    ap.add_argument("--misses", action="store_true", help="print every miss")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--reader", default="heuristic",
                    help="reader spec (heuristic, MODEL or heuristic+MODEL); timing is for the heuristic reader")
    ap.add_argument("--base-url", default=None, help="for openai:MODEL reader specs")
    args = ap.parse_args(argv)
    reader = get_reader(args.reader, lambda spec: get_model(spec, base_url=args.base_url))
    paths = [DATA / "reader" / s for s in args.sets or []] + list(args.files or [])
    if not paths:
        paths = default_sets()
    catalog = sample_catalog()
    everything: list[tuple[dict[str, Any], list[tuple[str, str]]]] = []
    totals = defaultdict(int)
    print(f"{'set':40s} {'correct':>15s} {'precision':>17s} {'ambiguous':>13s}")
    for path in paths:
        cases = load(path)
        counts = defaultdict(int)
        by_family: dict[str, list[bool]] = defaultdict(list)
        for case in cases:
            products = products_of(case, catalog)
            status, correct, got = judge(case, products, reader)
            counts["n"] += 1
            counts["correct"] += correct
            counts["ambiguous"] += status == "ambiguous"
            counts["committed_correct"] += correct and status != "ambiguous"
            by_family[case.get("family") or case.get("style", "?")].append(correct)
            everything.append((case, products))
            if args.misses and not correct:
                print(f"  MISS {case['id']}: expected {case['expected']}\n       got      {got}")
        for k, v in counts.items():
            totals[k] += v
        print(line(path.name, counts))
        weak = sorted(by_family.items(), key=lambda kv: sum(kv[1]) / len(kv[1]))[:4]
        for family, oks in weak:
            if not all(oks):
                print(f"      weak family {family}: {sum(oks)}/{len(oks)}")
    if len(paths) > 1:
        print(line("all", totals))
    reader.close()
    if not args.no_timing and args.reader == "heuristic":
        timing(everything)


def line(name: str, c: dict[str, int]) -> str:
    n = c["n"] or 1
    committed = c["n"] - c["ambiguous"]
    precision = c["committed_correct"] / committed if committed else 1.0
    return (f"{name:40s} {c['correct']:4d}/{c['n']:4d} {c['correct'] / n:6.1%}"
            f" {c['committed_correct']:4d}/{committed:4d} {precision:6.1%}"
            f" {c['ambiguous']:4d} {c['ambiguous'] / n:6.1%}")


def timing(cases: list[tuple[dict[str, Any], list[tuple[str, str]]]]) -> None:
    typical = [(c, p) for c, p in cases if c["expected"] and 300 <= len(c["response"]) <= 2500]
    repeats = 50
    times = []
    for case, products in typical:
        parse_ranking(case["response"], products)  # warm the matcher for this product list
        start = time.perf_counter()
        for _ in range(repeats):
            parse_ranking(case["response"], products)
        times.append((time.perf_counter() - start) / repeats * 1e3)
    worst = 0.0
    for case, products in cases:
        start = time.perf_counter()
        parse_ranking(case["response"], products)
        worst = max(worst, (time.perf_counter() - start) * 1e3)
    times.sort()
    chars = statistics.median(len(c["response"]) for c, _ in typical)
    print(f"\ntime per answer ({len(typical)} typical answers, median {chars:.0f} chars, {repeats} repeats, "
          f"matcher warm)")
    print(f"  median {statistics.median(times):.3f} ms   p95 {times[int(0.95 * (len(times) - 1))]:.3f} ms"
          f"   worst typical {times[-1]:.3f} ms   worst of all {len(cases)} (one pass) {worst:.3f} ms")
    names = tuple(cases[0][1])
    start = time.perf_counter()
    for _ in range(50):
        NameMatcher(names)
    print(f"  building one product list's name matcher (once per list): "
          f"{(time.perf_counter() - start) / 50 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
