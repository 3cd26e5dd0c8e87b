"""What the white-box ``gcg`` method costs and what its injection does on the llama.cpp engine.

    python benchmarks/bench_gcg.py --category blender --steps 8 --orders 1 --final-orders 4

Runs ``poise attack --method gcg`` through the library on a real category (the promoted
product: the category's last unless named), then prints: the seconds per optimisation step
(on the bundled model's weights in PyTorch, CPU), the setup (weights loaded, prefix caches,
forced openings), the loss after each step, and the evaluator's figures for the promoted
product on the llama.cpp engine on fresh context orders: its mean score and first-place rate
without the injection, with the fixed text alone (the control: what the optimised tokens
add) and with the injection found. The loss is measured on the float32 weights; the scores on
the Q4_1 model llama.cpp runs: the difference is how well the injection transfers across
runtimes.

Every query and step goes into a results store (default ./poise-runs/bench-gcg), so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import sys
import time

from poise.attacks import final_scores, get_method, run_attack
from poise.catalog import sample_catalog
from poise.engine import default_template
from poise.experiments import attach_cache, attack_setup, model_opener
from poise.store import Store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--model", default="local")
    ap.add_argument("--category", default="blender")
    ap.add_argument("--product", default=None, help="the product promoted (default: the category's last)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--orders", type=int, default=1, help="orders the loss is averaged over")
    ap.add_argument("--suffix", type=int, default=12, help="optimised tokens")
    ap.add_argument("--candidates", type=int, default=8, help="swaps scored per step")
    ap.add_argument("--topk", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    ap.add_argument("--final-orders", type=int, default=4, help="fresh orders for the before/after figures")
    ap.add_argument("--responses", type=int, default=2, help="answers when the injection is measured in the search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", default="poise-runs/bench-gcg")
    args = ap.parse_args(argv)
    cat = sample_catalog().category(args.category)
    product = args.product or cat.products[-1].name
    params = {"steps": args.steps, "orders": args.orders, "suffix": args.suffix, "candidates": args.candidates,
              "topk": args.topk, "threads": args.threads, "every": args.steps}
    setup = attack_setup(cat, model=args.model, open_model=model_opener(None), template=default_template(),
                         method="gcg", params=params, product=product, budget=args.responses,
                         responses=args.responses, final_orders=args.final_orders, confirm=0, seed=args.seed)
    started = time.perf_counter()
    with Store(args.store) as db:
        attach_cache(db, *setup.models)
        with db.open_run(setup.command, setup.config, close=setup.closing) as run:
            result = run_attack(setup.engine, cat, get_method("gcg", **params), store=db, run_id=run.id,
                                product=product, seed=args.seed, budget=setup.budget,
                                responses_per_candidate=args.responses, final_orders=args.final_orders, confirm=0,
                                reader=setup.reader)
            head = (result.method_report or {}).get("head", "")
            control = final_scores(result.evaluator, args.final_orders, head, sides=("after",),
                                   key=lambda side, k: f"control/head/order={k}", phase="control")["after"]
    wall = time.perf_counter() - started
    report = result.method_report or {}
    steps, setup_info = report.get("steps", []), report.get("setup", {})
    print(f"gcg on {cat.name} ({len(cat.products)} products), promoting {product!r}, run {run.id}"
          f"{' (resumed)' if run.resumed else ''}")
    print(f"  surrogate {setup_info.get('surrogate')}: {setup_info.get('parameters', 0):,} float32 parameters, "
          f"loaded in {setup_info.get('load_seconds', float('nan')):.1f} s; setup (prefix caches, forced openings) "
          f"{setup_info.get('setup_seconds', float('nan')):.1f} s")
    print(f"  prompt tokens per order {setup_info.get('prompt_tokens')}, of which cached before the suffix "
          f"{setup_info.get('cached_tokens')}")
    for opening in setup_info.get("openings", []):
        print(f"  forced opening: {opening!r}")
    if steps:
        per = [s["seconds"] for s in steps]
        print(f"  {len(steps)} steps ({args.candidates} swaps, top-{args.topk}, {args.suffix} tokens, {args.orders} "
              f"order(s), {args.threads} thread(s)): {sum(per) / len(per):.1f} s a step "
              f"(min {min(per):.1f}, max {max(per):.1f}); stopped by {report.get('stopped_by')}")
        print(f"  loss: {steps[0]['loss_before']:.4f} (start) -> "
              + " -> ".join(f"{s['loss']:.4f}" for s in steps))
    print(f"  injection: {result.injection!r}")
    print(f"  on llama.cpp, {args.final_orders} fresh orders (mean score of {len(cat.products)}, first-place rate):")
    for label, summary in (("without injection", result.before), ("fixed text alone", control),
                           ("injection found", result.after)):
        print(f"    {label:18} {summary.mean_score:5.2f}  {summary.first_rate:4.0%}  "
              f"(unread {summary.unparseable})")
    print(f"  recommender queries {result.evaluator.search_queries + result.evaluator.other_queries}; "
          f"wall {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
