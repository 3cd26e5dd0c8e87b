"""Which defense to deploy, on the bundled model: clean utility, robustness, cost, detection.

    python benchmarks/bench_defend.py                                   # 3 categories, every defense
    python benchmarks/bench_defend.py --categories blender --defenses spotlight sandwich --orders 4 --budget 6
    python benchmarks/bench_defend.py --defenses "self-consistency:k=1|3|5" "mixed:alpha=0|0.5|1,k=3"
    python benchmarks/bench_defend.py --clean-only --defenses "self-consistency:k=1|3|5|8" --consensus-orders 12

For each category it runs ``poise.experiments.run_defend``: the plain engine and each
defense (composed onto it) on the same fresh clean orders, the strategy search against each
engine itself, the plain engine's injection replayed, and prints the table ``poise defend``
prints, then the pooled rows (success rate over categories, mean rank gain, the cuts against
the plain engine, top-1 agreement, tokens against plain) and the wall time. With
``--clean-only`` it runs ``poise.experiments.run_defend_clean`` instead (what ``poise defend
--clean-only`` runs): clean utility and cost alone, a line per configuration, no attack.

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
from poise.experiments import (
    AttackSettings,
    CleanConfig,
    Consensus,
    check_defend_inputs,
    defend_clean_json,
    defend_json,
    inputs_hash,
    pooled,
    pooled_clean,
    run_defend,
    run_defend_clean,
)
from poise.models import RequestCache, get_model
from poise.store import Store, StoredDefend, StoredDefendClean

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
                    help="clean utility and cost only (no attack): top-1 agreement, tau, position F, tokens "
                         "(poise defend --clean-only); the attack's flags are ignored")
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
                data = clean_only(engine, categories, args.defenses, store, run.id, args.orders, args.seed, context,
                                  args.consensus_orders)
            write_json(args.json_out, data)
            return 0
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
    write_json(args.json_out, data)
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


def write_json(path: str | None, data: dict[str, Any]) -> None:
    """The full result to ``path`` (--json), when given."""
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1)


def clean_only(engine: SearchEngine, categories: list[Any], specs: list[str], store: Store, run_id: str,
               orders: int, seed: int, context: Context, consensus_orders: int = 0) -> dict[str, Any]:
    """Clean utility and cost of each configuration on the same fresh orders, no attack
    (``poise.experiments.run_defend_clean``, one line per configuration as it is done): what
    choosing k (or any parameter) by clean agreement and cost needs, at a fraction of the calls.
    The result is saved in the store (``defend-clean.json``) and returned as JSON."""
    results = []
    print(f"{'category':<14} {'configuration':<44} {'tau':>5} {'top1':>5} {'F':>5} {'tok×':>5} {'s':>6}")
    for category in categories:
        clock = Clock()
        results.append(run_defend_clean(
            engine, category, specs, store=store, run_id=run_id, orders=orders, seed=seed, context=context,
            consensus_orders=consensus_orders,
            on_consensus=lambda c, name=category.name, clock=clock: say_consensus(name, c, clock),
            on_config=lambda row, name=category.name, clock=clock: say_row(name, row, clock)))
    for row in pooled_clean(results):
        top1 = "-" if row.top1 is None else f"{row.top1:.0%}"
        print(f"pooled top-1 agreement {row.label}: {top1} over {row.categories} categories")
    stored = StoredDefendClean.model_validate({"run_id": run_id, **defend_clean_json(results)})
    store.save_result(run_id, stored)
    print(f"run {run_id} in {store.dir}")
    return stored.model_dump(mode="json")


class Clock:
    """Seconds since it was made or last lapped."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def lap(self) -> float:
        before, self.start = self.start, time.perf_counter()
        return self.start - before


def say_consensus(category: str, consensus: Consensus, clock: Clock) -> None:
    """The consensus's first three products with their Borda points, and how settled its top-1
    is; the seconds its own orders took (0 when it is the plain engine's clean answers, timed
    in the plain engine's row)."""
    top = ", ".join(f"{p.product} {p.points:.0f}" for p in consensus.products[:3])
    settled = "-" if consensus.stability is None else f"{consensus.stability:.0%}"
    seconds = clock.lap() if consensus.own_orders else 0.0
    print(f"{category:<14} consensus of {consensus.answers} answers ({seconds:.0f} s): {top}; top-1 in {settled} of "
          f"bootstrap resamples", flush=True)


def say_row(category: str, row: CleanConfig, clock: Clock) -> None:
    """One configuration's clean figures, its tokens against the plain engine's and its seconds."""
    print(f"{category:<14} {row.label[:44]:<44} {row.tau or 0:>5.2f} {row.top1 or 0:>5.0%} "
          f"{row.position_f or 0:>5.1f} {row.tokens_x or 0:>5.1f} {clock.lap():>6.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
