"""Which defense to deploy, on the bundled model: clean utility, robustness, cost, detection.

    python benchmarks/bench_defend.py                                   # 3 categories, every defense
    python benchmarks/bench_defend.py --categories blender --defenses spotlight sandwich --orders 4 --budget 6
    python benchmarks/bench_defend.py --defenses "self-consistency:k=1|3|5" "mixed:alpha=0|0.5|1,k=3"

For each category it runs ``poise.experiments.run_defend``: the plain engine and each
defense (composed onto it) on the same fresh clean orders, the strategy search against each
engine itself, the plain engine's injection replayed, and prints the table ``poise defend``
prints, then the pooled rows (success rate over categories, mean rank gain, the cuts against
the plain engine, top-1 agreement, tokens against plain) and the wall time.

The defaults fit a 2-core CPU as far as they can: 6 clean orders, a search budget of 12, 6
final orders, no confirmation, aggregation defenses at k=3. Pairwise comparison asks
n(n-1) = 56 two-page questions per answer (8 products), the mixing defense that and k more,
so they dominate the time. Runs go into a results store (default
./poise-runs/bench-defend): an interrupted benchmark resumes, and answers repeated across
configurations (the same prompt) come from the request cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console

from poise.catalog import sample_catalog
from poise.cli._defend import defend_table
from poise.defenses import Context
from poise.engine import DEFAULT_GENERATE_CONFIG, SearchEngine
from poise.experiments import AttackSettings, check_defend_inputs, defend_json, inputs_hash, pooled, run_defend
from poise.models import RequestCache, get_model
from poise.store import Store, StoredDefend

DEFAULT_DEFENSES = ["spotlight", "sandwich", "hierarchy", "perplexity", "known-answer", "detector:model=engine",
                    "self-consistency:k=3", "pairwise", "mixed:k=3"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="local")
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--categories", nargs="*", default=["blender", "laptop", "robot vacuum"])
    ap.add_argument("--defenses", nargs="*", default=DEFAULT_DEFENSES)
    ap.add_argument("--method", default="strategies")
    ap.add_argument("--budget", type=int, default=12, help="search queries per attack")
    ap.add_argument("--orders", type=int, default=6, help="clean context orders")
    ap.add_argument("--final-orders", type=int, default=6)
    ap.add_argument("--selection-orders", type=int, default=2)
    ap.add_argument("--confirm", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=DEFAULT_GENERATE_CONFIG.max_tokens)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", default="poise-runs/bench-defend")
    ap.add_argument("--json", dest="json_out", default=None, help="also write the full result to this file")
    ap.add_argument("--consensus-orders", type=int, default=0, metavar="M",
                    help="the plain engine's consensus from M further orders of its own (0: its --orders answers)")
    ap.add_argument("--clean-only", action="store_true",
                    help="clean utility and cost only (no attack): top-1 agreement, tau, position F, tokens")
    args = ap.parse_args(argv)
    catalog = sample_catalog()
    categories = [catalog.category(name) for name in args.categories]
    settings = AttackSettings(method=args.method, budget=args.budget, final_orders=args.final_orders,
                              selection_orders=args.selection_orders, confirm=args.confirm)
    console = Console(width=80)
    with Store(args.store) as store:
        cache = RequestCache(store.cache_path)
        llm = get_model(args.model, base_url=args.base_url, cache=cache)
        opened: dict[str, object] = {args.model: llm}  # one model per spec, however many defenses ask for it
        context = Context(open_model=lambda spec: opened.setdefault(
            spec, opened.get(spec) or get_model(spec, base_url=args.base_url, cache=cache)))
        config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": args.max_tokens})
        engine = SearchEngine(llm, config=config)
        labels = [c.label for c in check_defend_inputs(engine, args.defenses, args.orders, settings, context,
                                                       args.consensus_orders)]
        run_cfg = {"bench": "defend", "categories": args.categories, "defenses": labels, "model": args.model,
                   "method": args.method, "budget": args.budget, "orders": args.orders,
                   "final_orders": args.final_orders, "selection_orders": args.selection_orders,
                   "confirm": args.confirm, "seed": args.seed, "generate": config.model_dump(mode="json"),
                   # the server and what shapes the prompts: a resume against another server (or after the
                   # bundled pages changed) is a new run, as the commands' are, never mixed into the old one
                   "base_url": llm.identity().get("base_url"),
                   "inputs": inputs_hash(categories, engine.template, llm.identity(), config),
                   **({"consensus_orders": args.consensus_orders} if args.consensus_orders else {})}
        if args.clean_only:
            with store.open_run("defend-clean", run_cfg) as run:
                return clean_only(engine, categories, args.defenses, store, run.id, args.orders, args.seed, context,
                                  args.consensus_orders)
        with store.open_run("defend", run_cfg) as run:
            results = []
            for category in categories:
                start = time.perf_counter()
                asked = {"n": 0}
                result = run_defend(engine, category, args.defenses, store=store, run_id=run.id, attack=settings,
                                    orders=args.orders, seed=args.seed, context=context,
                                    consensus_orders=args.consensus_orders,
                                    on_query=lambda asked=asked: asked.__setitem__("n", asked["n"] + 1))
                results.append(result)
                console.print(defend_table(result.model_dump(mode="json")))
                console.print(f"{category.name}: {asked['n']} engine answers in {time.perf_counter() - start:.0f} s")
            stored = StoredDefend.model_validate({"run_id": run.id, **defend_json(results)})
            store.save_result(run.id, stored)
            data = stored.model_dump(mode="json")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)
    print(f"\npooled over {len(results)} categories (success: share of categories; cuts against plain)")
    rows = pooled(results)
    width = max(len("configuration"), *(len(row["label"]) for row in rows))  # whole names: no two look alike
    print(f"{'configuration':<{width}} {'succ':>5} {'first':>6} {'gain':>6} {'cut1st':>7} {'cutgain':>8} "
          f"{'top1':>5} {'tok×':>6}")
    for row in rows:
        def f(key: str, fmt: str, row: dict[str, Any] = row) -> str:
            return "-" if row[key] is None else format(row[key], fmt)
        print(f"{row['label']:<{width}} {f('success_rate', '.0%'):>5} {f('first_rate', '.0%'):>6} "
              f"{f('rank_gain', '+.2f'):>6} {f('first_rate_cut', '.0%'):>7} {f('rank_gain_cut', '.0%'):>8} "
              f"{f('top1', '.0%'):>5} {f('tokens_x', '.1f'):>6}")
    print(f"run {run.id} in {args.store}")
    return 0


def clean_only(engine: SearchEngine, categories: list[Any], specs: list[str], store: Store, run_id: str,
               orders: int, seed: int, context: Context, consensus_orders: int = 0) -> int:
    """Clean utility and cost of each configuration on the same fresh orders, no attack: what
    choosing k (or any parameter) by clean agreement and cost needs, at a fraction of the calls."""
    from poise.attacks._evaluate import _orders
    from poise.experiments._defend import configurations, consensus_orders_of, own_consensus
    from poise.experiments._defend_figures import _cost, clean_answers, clean_figures, consensus_of

    pooled_top1: dict[str, list[float]] = {}
    print(f"{'category':<14} {'configuration':<44} {'tau':>5} {'top1':>5} {'F':>5} {'tok×':>5} {'s':>6}")
    for category in categories:
        n = len(category.products)
        clean_orders = _orders(n, f"defend/{seed}/clean", orders)
        consensus, plain = None, None
        if own_orders := consensus_orders_of(category, orders, consensus_orders, seed):
            start = time.perf_counter()
            consensus, stability = own_consensus(engine, category, own_orders, store=store, run_id=run_id,
                                                 reader=None, on_query=lambda: None)
            say_consensus(category, consensus, stability, len(own_orders), time.perf_counter() - start)
        for config, defended in configurations(engine, specs, context):
            start = time.perf_counter()
            answers = clean_answers(defended, category, clean_orders, store=store, run_id=run_id,
                                    prefix=f"{category.name}/{config.label}/", reader=None, on_query=lambda: None)
            if consensus is None:
                consensus, stability = consensus_of(answers, n)
                say_consensus(category, consensus, stability, len(answers), 0.0)
            cost = _cost(answers, plain)
            plain = plain or cost
            fig = clean_figures(answers, consensus)
            pooled_top1.setdefault(config.label, []).append(fig.top1 or 0.0)
            print(f"{category.name:<14} {config.label[:44]:<44} {fig.tau or 0:>5.2f} {fig.top1 or 0:>5.0%} "
                  f"{fig.position_f or 0:>5.1f} {cost.tokens_x or 0:>5.1f} {time.perf_counter() - start:>6.0f}",
                  flush=True)
    for label, values in pooled_top1.items():
        print(f"pooled top-1 agreement {label}: {sum(values) / len(values):.0%} over {len(values)} categories")
    print(f"run {run_id} in {store.dir}")
    return 0


def say_consensus(category: Any, points: Any, stability: float | None, answers: int, seconds: float) -> None:
    """The consensus's first three products with their Borda points, and how settled its top-1 is."""
    best = sorted(range(len(points)), key=lambda i: (-points[i], i))[:3]
    top = ", ".join(f"{category.products[i].name} {points[i]:.0f}" for i in best)
    settled = "-" if stability is None else f"{stability:.0%}"
    print(f"{category.name:<14} consensus of {answers} answers ({seconds:.0f} s): {top}; top-1 in {settled} of "
          f"bootstrap resamples", flush=True)


if __name__ == "__main__":
    sys.exit(main())
