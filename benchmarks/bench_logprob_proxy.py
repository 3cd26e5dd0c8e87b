"""How well the logprob method's proxy tracks the true score, on fresh context orders.

    python benchmarks/bench_logprob_proxy.py --category blender --product "Blendtec Designer 650 S" --orders 2
    python benchmarks/bench_logprob_proxy.py --products 4 --page-words 60 --orders 3   # a small prompt: quick

For each candidate injection (no injection, the six strategy templates, and templates with a
random suffix of the kind the search writes) and each fresh context order (never a search
order), the recommender is asked twice: once for the proxy (a short greedy answer with its
top log-probabilities: the promoted product's share at the first product position) and
once in full (the answer read as every attack reads it: the promoted product's score, n
for first). It prints each candidate's mean proxy, first-place rate and mean score, and the
Pearson and Spearman correlations over candidates and over single answers.

Every call goes into a results store (default ./poise-runs/bench-logprob), so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np

from poise.attacks import FAMILIES, Evaluator, Target, ask_proxy, find_product
from poise.attacks._logprob import vocabulary
from poise.catalog import Category, Document, Product, sample_catalog
from poise.engine import DEFAULT_GENERATE_CONFIG, SearchEngine
from poise.models import RequestCache, get_model
from poise.store import Store


def _spearman(x: list[float], y: list[float]) -> float:
    rx = np.argsort(np.argsort(x)).astype(float)
    ry = np.argsort(np.argsort(y)).astype(float)
    return _pearson(list(rx), list(ry))


def _pearson(x: list[float], y: list[float]) -> float:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def candidates(target: Target, words: list[str], suffixed: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = [("none", "")] + [(name, write(target, 0)) for name, write in FAMILIES.items()]
    for i in range(suffixed):
        name = list(FAMILIES)[i % len(FAMILIES)]
        suffix = " ".join(rng.choice(words) for _ in range(10))
        out.append((f"{name}+suffix", f"{FAMILIES[name](target, 0)}\n{suffix}"))
    return out


def shrink(cat: Category, products: int | None, words: int | None) -> Category:
    """The category's first ``products`` products, each page cut to its first ``words`` words."""
    kept = cat.products[:products] if products else cat.products
    if words:
        kept = tuple(Product(brand=p.brand, model=p.model, document=Document(
            text=" ".join(p.document.text.split()[:words]), source_url=p.document.source_url)) for p in kept)
    return Category(name=cat.name, query=cat.query, products=tuple(kept))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--model", default="local")
    ap.add_argument("--category", default="blender")
    ap.add_argument("--product", default=None, help="the product promoted (default: the category's last)")
    ap.add_argument("--orders", type=int, default=2, help="fresh context orders per candidate")
    ap.add_argument("--suffixed", type=int, default=3, help="templates with a random suffix added")
    ap.add_argument("--products", type=int, default=None, help="keep only the category's first K products")
    ap.add_argument("--page-words", type=int, default=None, help="cut every page to its first W words")
    ap.add_argument("--max-tokens", type=int, default=DEFAULT_GENERATE_CONFIG.max_tokens, help="of a full answer")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", default="poise-runs/bench-logprob")
    args = ap.parse_args(argv)
    cat = shrink(sample_catalog().category(args.category), args.products, args.page_words)
    index = find_product(cat, args.product) if args.product else len(cat.products) - 1
    p = cat.products[index]
    target = Target(p.name, cat.name, cat.default_query, tuple(q.name for q in cat.products if q is not p))
    with Store(args.store) as store:
        llm = get_model(args.model, cache=RequestCache(store.cache_path))
        engine = SearchEngine(llm, config=DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": args.max_tokens}))
        run_id = store.start_run("bench-logprob", {**vars(args), "product": p.name})
        ev = Evaluator(engine, cat, store=store, run_id=run_id, seed=args.seed)
        ev.target = index
        orders = ev.fresh_orders("final", args.orders)
        rows = []
        started = time.perf_counter()
        for i, (name, text) in enumerate(candidates(target, vocabulary(target, cat, index), args.suffixed,
                                                    args.seed)):
            proxies, scores = [], []
            for k, order in enumerate(orders):
                proxies.append(ask_proxy(ev, f"proxy/cand={i}/order={k}", order, text).proxy(index))
                ranking, _ = ev.ask(f"true/cand={i}/order={k}", order, text or None, "final_after")
                scores.append(ev.score(ranking) or 0)
            rows.append((name, proxies, scores))
            print(f"{name:22s} proxy {np.mean(proxies):.3f}  first {np.mean([s == ev.n for s in scores]):.2f}"
                  f"  score {np.mean(scores):.2f}  ({time.perf_counter() - started:.0f} s)", flush=True)
        store.finish_run(run_id)
    mean_proxy = [float(np.mean(r[1])) for r in rows]
    first = [float(np.mean([s == ev.n for s in r[2]])) for r in rows]
    score = [float(np.mean(r[2])) for r in rows]
    single_p = [x for r in rows for x in r[1]]
    single_f = [float(s == ev.n) for r in rows for s in r[2]]
    print(f"\n{len(rows)} candidates x {len(orders)} fresh orders on {cat.name} ({p.name}):")
    print(f"  over candidates: proxy vs first-place rate  Pearson {_pearson(mean_proxy, first):.2f}  "
          f"Spearman {_spearman(mean_proxy, first):.2f}")
    print(f"                   proxy vs mean score        Pearson {_pearson(mean_proxy, score):.2f}  "
          f"Spearman {_spearman(mean_proxy, score):.2f}")
    agree = np.mean([(a > 0.5) == bool(b) for a, b in zip(single_p, single_f, strict=True)])
    print(f"  over answers:    proxy vs first (point-biserial) {_pearson(single_p, single_f):.2f}; "
          f"proxy > 0.5 agrees with first place in {agree:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
