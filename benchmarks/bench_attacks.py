"""Query efficiency of the attack methods: same budget, same categories, same model.

    python benchmarks/bench_attacks.py --categories blender laptop "robot vacuum"   # every method
    python benchmarks/bench_attacks.py --categories blender --methods none single strategies
    python benchmarks/bench_attacks.py --methods gcg logprob --param gcg:steps=4 --param logprob:orders=1
    python benchmarks/bench_attacks.py --model openai:gpt-4o-mini --attacker openai:gpt-4o --methods tap strategies

By default every registered method runs (``poise.attacks.METHODS``: the baselines, the
strategy search, the tree of attacks and the rewrite method with the attacker model, the
log-probability, hard-label and white-box searches). For each method and category it runs
one attack under the same recommender-query budget (the product ranked lowest without
injection is promoted; final figures on fresh context orders the search never saw) and
prints, per method: success rate (promoted to first in at least half of the final
answers), the share of fresh final orders with the product first (the issue's goal: at
least 80% on every category at <= 46 queries), mean rank gain, recommender queries the
search spent until it first reached the stop score (median over the successes), wall time
and, with ``--stealth``, the injection's perplexity ratio and length under the local model.
The paper's configuration may spend 69 candidates x 2 = 138 recommender queries per category.

Runs go into a results store (default ./poise-runs/bench-attacks), so an interrupted
benchmark resumes, and every query repeated across methods (selection, the 'before'
answers) is served from the request cache.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from poise import PoiseError
from poise.attacks import METHODS, Budget, Stealth, get_method, run_attack, save_attack
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
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--param", action="append", default=[], metavar="METHOD:KEY=VALUE",
                    help="a method parameter, e.g. gcg:steps=4 (numbers only)")
    ap.add_argument("--stealth", action="store_true", help="measure each injection's stealth (perplexity ratio)")
    ap.add_argument("--budget", type=int, default=46, help="search queries per attack (138 / 3)")
    ap.add_argument("--final-orders", type=int, default=10)
    ap.add_argument("--confirm", type=int, default=3, help="best candidates re-asked before choosing (0: off)")
    ap.add_argument("--verify-stop", type=int, default=0,
                    help="re-ask a candidate at the stop score up to N more times before stopping (0: off)")
    ap.add_argument("--max-tokens", type=int, default=DEFAULT_GENERATE_CONFIG.max_tokens)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", default="poise-runs/bench-attacks")
    args = ap.parse_args(argv)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        print(f"bench_attacks: unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}", file=sys.stderr)
        return 2
    params: dict[str, dict[str, float]] = {m: {} for m in METHODS}
    for item in args.param:
        method, _, pair = item.partition(":")
        key, _, value = pair.partition("=")
        if method not in METHODS or not key or not value:
            print(f"bench_attacks: --param {item!r} is not METHOD:KEY=VALUE", file=sys.stderr)
            return 2
        params[method][key] = float(value) if "." in value else int(value)
    catalog = sample_catalog()
    names = args.categories or list(catalog.categories)
    try:
        for name in names:
            catalog.category(name)
        for method in args.methods:
            get_method(method, **params[method], **({"attacker": None} if METHODS[method].needs_attacker else {}))
    except PoiseError as exc:
        print(f"bench_attacks: {exc.one_line()}", file=sys.stderr)
        return 2
    rows: dict[str, list[dict]] = {m: [] for m in args.methods}
    with Store(args.store) as store:
        cache = RequestCache(store.cache_path)
        llm = get_model(args.model, base_url=args.base_url, cache=cache)
        attacker = llm if (args.attacker or args.model) == args.model else get_model(
            args.attacker, base_url=args.base_url, cache=cache)
        config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": args.max_tokens})
        engine = SearchEngine(llm, config=config)
        stealth = Stealth(get_model("local"), detectors=()) if args.stealth else None
        for name in names:
            category = catalog.category(name)
            for method in args.methods:
                given = {"attacker": attacker} if METHODS[method].needs_attacker else {}
                run_cfg = {"bench": "attacks", "category": name, "method": method, "model": args.model,
                           "attacker": args.attacker, "budget": args.budget, "final_orders": args.final_orders,
                           "confirm": args.confirm, "params": params[method], "stealth": args.stealth,
                           "seed": args.seed, "generate": config.model_dump(mode="json"),
                           **({"verify_stop": args.verify_stop} if args.verify_stop else {})}
                start = time.perf_counter()
                with store.open_run("attack", run_cfg) as run:
                    result = run_attack(engine, category, get_method(method, **given, **params[method]), store=store,
                                        run_id=run.id, seed=args.seed, budget=Budget(recommender_queries=args.budget),
                                        final_orders=args.final_orders, confirm=args.confirm, stealth=stealth,
                                        verify_stop=args.verify_stop)
                    data = save_attack(result, store, args.seed).model_dump(mode="json")
                run_id = run.id
                data["wall_s"] = time.perf_counter() - start
                rows[method].append(data)
                ratio = (data.get("stealth") or {}).get("perplexity_ratio")
                print(f"{name:26s} {method:11s} rank {data['rank_before']} -> {data['rank_after']}  "
                      f"first {data['first_rate_after']:.0%}  search queries {data['search_queries']:3d}  "
                      f"to success {data['queries_to_first_success']}  ({data['wall_s']:.0f} s)"
                      f"{'' if ratio is None else f'  ppl ratio {ratio:.2f}'}  run {run_id}", flush=True)
    print()
    print(f"model {args.model}, budget {args.budget} search queries, {args.final_orders} fresh final orders, "
          f"{len(names)} categories")
    print(f"{'method':11s} {'success':>8s} {'first (min)':>12s} {'rank gain':>10s} {'to success':>11s} "
          f"{'queries':>8s} {'wall s':>7s} {'ppl ratio':>10s} {'chars':>6s}")
    for method, results in rows.items():
        if results:
            print(summary_line(method, results))
    return 0


def summary_line(method: str, results: list[dict]) -> str:
    """One method's pooled figures: success rate, the lowest share of fresh orders with the
    product first over the categories, mean rank gain, median queries to the first success,
    mean search queries and wall time, mean stealth (when measured)."""
    def mean(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f}" if values else "-"

    success = sum(r["success"] for r in results) / len(results)
    gains = [r["rank_before"] - r["rank_after"] for r in results
             if r["rank_before"] is not None and r["rank_after"] is not None]
    firsts = [r["queries_to_first_success"] for r in results if r["queries_to_first_success"] is not None]
    stealth = [r["stealth"] for r in results if r.get("stealth")]
    return (f"{method:11s} {success:8.0%} {min(r['first_rate_after'] for r in results):12.0%} {mean(gains):>10s} "
            f"{(str(statistics.median(firsts)) if firsts else '-'):>11s} "
            f"{statistics.mean(r['search_queries'] for r in results):8.1f} "
            f"{statistics.mean(r['wall_s'] for r in results):7.0f} "
            f"{mean([s['perplexity_ratio'] for s in stealth]):>10s} {mean([s['chars'] for s in stealth]):>6s}")


if __name__ == "__main__":
    sys.exit(main())
