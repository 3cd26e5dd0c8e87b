"""Query efficiency of the attack methods: same budget, same categories, same model.

    python benchmarks/bench_attacks.py                                  # every category, local model
    python benchmarks/bench_attacks.py --categories blender laptop --methods none single strategies
    python benchmarks/bench_attacks.py --model openai:gpt-4o-mini --attacker openai:gpt-4o --methods tap strategies

For each method and category it runs one attack (the product ranked lowest without
injection is promoted; final figures on fresh context orders the search never saw) and
prints, per method: success rate (promoted to first in at least half of the final
answers), mean rank gain of the promoted product, and recommender queries the search
spent until it first reached the stop score (median over the successes). The paper's
configuration may spend 69 candidates x 2 = 138 recommender queries per category.

Runs go into a results store (default ./poise-runs/bench-attacks), so an interrupted
benchmark resumes, and every query repeated across methods (selection, the 'before'
answers) is served from the request cache.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from poise.attacks import METHODS, Budget, get_method, run_attack, save_attack
from poise.catalog import sample_catalog
from poise.engine import DEFAULT_GENERATE_CONFIG, SearchEngine
from poise.models import RequestCache, get_model
from poise.store import Store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="local")
    ap.add_argument("--attacker", default=None, help="attacker spec for tap (default: --model)")
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--categories", nargs="*", default=None)
    ap.add_argument("--methods", nargs="*", default=["none", "single", "strategies"])
    ap.add_argument("--budget", type=int, default=46, help="search queries per attack (138 / 3)")
    ap.add_argument("--final-orders", type=int, default=10)
    ap.add_argument("--confirm", type=int, default=3, help="best candidates re-asked before choosing (0: off)")
    ap.add_argument("--max-tokens", type=int, default=DEFAULT_GENERATE_CONFIG.max_tokens)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", default="poise-runs/bench-attacks")
    args = ap.parse_args(argv)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        print(f"bench_attacks: unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}", file=sys.stderr)
        return 2
    catalog = sample_catalog()
    names = args.categories or list(catalog.categories)
    rows: dict[str, list[dict]] = {m: [] for m in args.methods}
    with Store(args.store) as store:
        cache = RequestCache(store.cache_path)
        llm = get_model(args.model, base_url=args.base_url, cache=cache)
        attacker = llm if (args.attacker or args.model) == args.model else get_model(
            args.attacker, base_url=args.base_url, cache=cache)
        config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": args.max_tokens})
        engine = SearchEngine(llm, config=config)
        for name in names:
            category = catalog.category(name)
            for method in args.methods:
                params = {"attacker": attacker} if METHODS[method].needs_attacker else {}
                run_cfg = {"bench": "attacks", "category": name, "method": method, "model": args.model,
                           "attacker": args.attacker, "budget": args.budget, "final_orders": args.final_orders,
                           "confirm": args.confirm,
                           "seed": args.seed, "generate": config.model_dump(mode="json")}
                start = time.perf_counter()
                with store.open_run("attack", run_cfg) as run:
                    result = run_attack(engine, category, get_method(method, **params), store=store, run_id=run.id,
                                        seed=args.seed, budget=Budget(recommender_queries=args.budget),
                                        final_orders=args.final_orders, confirm=args.confirm)
                    data = save_attack(result, store, args.seed).model_dump(mode="json")
                run_id = run.id
                data["wall_s"] = time.perf_counter() - start
                rows[method].append(data)
                print(f"{name:26s} {method:11s} rank {data['rank_before']} -> {data['rank_after']}  "
                      f"first {data['first_rate_after']:.0%}  search queries {data['search_queries']:3d}  "
                      f"to success {data['queries_to_first_success']}  ({data['wall_s']:.0f} s)  run {run_id}",
                      flush=True)
    print()
    print(f"model {args.model}, budget {args.budget} search queries, {args.final_orders} fresh final orders, "
          f"{len(names)} categories")
    print(f"{'method':11s} {'success':>8s} {'mean rank gain':>15s} {'queries to success (median)':>28s} "
          f"{'search queries (mean)':>22s}")
    for method, results in rows.items():
        if not results:
            continue
        success = sum(r["success"] for r in results) / len(results)
        gains = [r["rank_before"] - r["rank_after"] for r in results
                 if r["rank_before"] is not None and r["rank_after"] is not None]
        firsts = [r["queries_to_first_success"] for r in results if r["queries_to_first_success"] is not None]
        print(f"{method:11s} {success:8.0%} {statistics.mean(gains) if gains else float('nan'):15.2f} "
              f"{(statistics.median(firsts) if firsts else float('nan')):28} "
              f"{statistics.mean(r['search_queries'] for r in results):22.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
