"""Throughput of the local model on an attack search: where each query's time goes and what
each optimization buys, in one run, on the same backend and the same queries.

    python benchmarks/bench_throughput.py                          # blender, 8 search queries
    python benchmarks/bench_throughput.py --budget 12 --configs paper store early
    python benchmarks/bench_throughput.py --concurrency 4          # also: 2 processes vs 1 model

Every configuration runs the same raced strategy search (no attacker model) from nothing: a new
store, a new model, no request cache. The configurations that share the round's context orders
ask the same queries, so their decisions (every candidate's scores, the best candidate, why
the search stopped) must be identical: the benchmark checks it and exits 1 if not. Early stop
is also checked on every full answer of the run: wherever the loop rule would have stopped,
every product's score read from the prefix must equal the full answer's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poise.attacks import Budget, BudgetExhausted, Evaluator, get_method
from poise.attacks._evaluate import StopSearch
from poise.attacks._strategies import Target
from poise.catalog import Category, sample_catalog
from poise.engine import DEFAULT_GENERATE_CONFIG, SearchEngine
from poise.models import EARLY_STOP, ChatMessage, GenerateConfig, LlamaCppModel, default_model_path
from poise.ranking import HeuristicReader, Ranking, answer_loops
from poise.store import Store


@dataclass(frozen=True)
class Config:
    reuse: bool  # the live context's prefix (llama-cpp-python's own reuse)
    store: bool  # the multi-prefix store
    shared: bool  # the round's candidates on the same orders
    early: bool  # stop decoding once the answer loops
    what: str


CONFIGS = {
    "paper": Config(False, False, True, False, "sequential, every prompt in full, full decode (the paper's loop)"),
    "live": Config(True, False, True, False, "+ the previous prompt's prefix (llama-cpp-python alone)"),
    "store": Config(True, True, True, False, "+ every held prompt's prefix (PrefixStore)"),
    "early": Config(True, True, True, True, "+ early stop once the answer loops"),
    "fresh": Config(True, True, False, False, "a fresh order per query, as the evaluator's default"),
}


class TimedReader(HeuristicReader):
    """The heuristic reader, timed."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def read(self, response: str, products: Sequence[Any]) -> Ranking:
        start = time.perf_counter()
        try:
            return super().read(response, products)
        finally:
            self.seconds += time.perf_counter() - start


@dataclass
class Outcome:
    name: str
    wall_s: float = 0.0
    queries: int = 0
    prompt_tokens: int = 0  # as the API counts them (a reused prefix included)
    completion_tokens: int = 0
    prompt_s: float = 0.0
    prompt_evaluated: int = 0  # what llama.cpp actually evaluated
    decode_s: float = 0.0
    decoded: int = 0
    parse_s: float = 0.0
    store_s: float = 0.0
    early_stops: int = 0
    decisions: Any = None
    answers: list[str] = field(default_factory=list)
    finish: list[str | None] = field(default_factory=list)
    messages: list[list[ChatMessage]] = field(default_factory=list)
    pairs: list[tuple[list[int], list[int]]] = field(default_factory=list)
    restores: int = 0


def run_config(name: str, cfg: Config, category: Category, target: int, args: argparse.Namespace) -> Outcome:
    out = Outcome(name)
    model = LlamaCppModel("local", default_model_path(), reuse_prefix=cfg.reuse,
                          prefix_cache_bytes=(1 << 30) if cfg.store else 0, n_batch=args.n_batch)
    config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": args.max_tokens})
    reader = TimedReader()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "runs") as store:
        _time_store(store, out)
        run_id = store.start_run("bench-throughput", {"config": name})
        ev = Evaluator(SearchEngine(model, config=config), category, store=store, run_id=run_id,
                       seed=args.seed, budget=Budget(recommender_queries=args.budget), reader=reader,
                       shared_orders=cfg.shared, early_stop=cfg.early)
        ev.target = target
        start = time.perf_counter()
        stopped = _search(ev, category, target, args.seed)
        out.wall_s = time.perf_counter() - start
    t = model.timings
    out.prompt_s, out.prompt_evaluated = t.prompt_ms / 1000, t.prompt_tokens
    out.decode_s, out.decoded = t.decode_ms / 1000, t.decode_tokens
    out.parse_s, out.queries = reader.seconds, ev.search_queries + ev.other_queries
    out.restores = model.prefix_store.stats.restores if model.prefix_store else 0
    out.decisions = (stopped, _best_id(ev), [(c.id, c.injection, c.scores, c.unparseable) for c in ev.candidates])
    out.pairs = _round_pairs(ev)
    model.close()
    return out


def _search(ev: Evaluator, category: Category, target: int, seed: int) -> str:
    p = category.products[target]
    others = tuple(q.name for i, q in enumerate(category.products) if i != target)
    method = get_method("strategies")
    try:
        method.search(ev, Target(p.name, category.name, ev.query, others), random.Random(f"attack/{seed}/strategies"))
        stopped = "method finished"
    except StopSearch:
        stopped = "stop score reached"
    except BudgetExhausted as exc:
        stopped = f"budget: {exc}"
    ev.confirm(2, 3 * ev.responses_per_candidate)
    return stopped


def _best_id(ev: Evaluator) -> int | None:
    best = ev.best()
    return best.id if best is not None else None


def _time_store(store: Store, out: Outcome) -> None:
    """Time every record the store writes and keep what was asked and answered."""
    record = store.record_call

    def timed(run_id: str, call: Any) -> int:
        start = time.perf_counter()
        try:
            return record(run_id, call)
        finally:
            out.store_s += time.perf_counter() - start
            out.answers.append(call.response_text or "")
            out.finish.append(call.finish_reason)
            out.messages.append([ChatMessage.model_validate(m) for m in call.messages])
            out.prompt_tokens += call.prompt_tokens or 0
            out.completion_tokens += call.completion_tokens or 0
            out.early_stops += call.finish_reason == EARLY_STOP

    store.record_call = timed  # type: ignore[method-assign]


def _round_pairs(ev: Evaluator) -> list[tuple[list[int], list[int]]]:
    """Score lists of candidates asked on the same orders (same depth, full answers)."""
    full = [c for c in ev.candidates if len(c.scores) >= ev.responses_per_candidate and not c.unparseable]
    return [(a.scores[:2], b.scores[:2]) for i, a in enumerate(full) for b in full[i + 1:] if a.depth == b.depth]


def paired_gain(pairs: list[tuple[list[int], list[int]]]) -> str:
    """How much a comparison on the same orders saves: the variance of a difference of two
    answers on one order against that of two answers on different orders."""
    same = [(a[k] - b[k]) ** 2 for a, b in pairs for k in range(2)]
    cross = [(a[k] - b[1 - k]) ** 2 for a, b in pairs for k in range(2)]
    if not same or not sum(same):
        return f"{len(pairs)} pairs of candidates: {'no difference on the same order' if same else 'none'}"
    ratio = statistics.mean(cross) / statistics.mean(same)
    return (f"{len(pairs)} pairs of candidates of one round: mean squared difference {statistics.mean(same):.2f} "
            f"on the same order, {statistics.mean(cross):.2f} across orders: unpaired comparisons need "
            f"about {ratio:.1f}x the queries")


def early_stop_check(category: Category, outcomes: Sequence[Outcome]) -> str:
    """Where the loop rule fires on a full answer, the prefix's scores must equal the answer's."""
    products = category.products
    reader = HeuristicReader()
    fired = wrong = total = 0
    for out in outcomes:
        for text, finish in zip(out.answers, out.finish, strict=True):
            if finish == EARLY_STOP:
                continue
            total += 1
            prefix = _first_loop(text)
            if prefix is None:
                continue
            fired += 1
            wrong += _scores(reader.read(prefix, products)) != _scores(reader.read(text, products))
    return f"{total} full answers of this run: the loop rule fires on {fired}; decisions changed: {wrong}"


def _first_loop(text: str) -> str | None:
    i = text.find("\n")
    while i != -1 and i + 1 < len(text):
        if answer_loops(text[: i + 1]):
            return text[: i + 1]
        i = text.find("\n", i + 1)
    return None


def _scores(r: Ranking) -> tuple[int, ...] | None:
    return r.scores if r.parseable else None


def concurrency(messages: list[list[ChatMessage]], max_tokens: int) -> list[str]:
    """One model with every core against one process per core, on the same prompts."""
    config = DEFAULT_GENERATE_CONFIG.model_copy(update={"max_tokens": max_tokens, "seed": 0})
    cores = max(1, multiprocessing.cpu_count())
    start = time.perf_counter()
    _answer_all(messages, config, cores)
    one = time.perf_counter() - start
    chunks = [messages[k::cores] for k in range(cores)]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        pool.starmap(_answer_all, [(c, config, 1) for c in chunks])
    many = time.perf_counter() - start
    n = len(messages)
    return [f"concurrency on {n} prompts ({max_tokens} tokens at most, no prefix reuse):",
            f"  one model, {cores} threads:        {n / one:.3f} queries/s",
            f"  {cores} processes, 1 thread each:  {n / many:.3f} queries/s  ({one / many:.2f}x)"]


def _answer_all(messages: list[list[ChatMessage]], config: GenerateConfig, threads: int) -> None:
    model = LlamaCppModel("local", default_model_path(), n_threads=threads, reuse_prefix=False,
                          prefix_cache_bytes=0)
    for m in messages:
        model.generate(m, config)
    model.close()


def report(outcomes: list[Outcome]) -> list[str]:
    base = outcomes[0]
    lines = [f"{'config':<7} {'queries':>7} {'wall s':>7} {'q/s':>7} {'vs ' + base.name:>8} {'tok/s':>6} "
             f"{'prompt s/q':>10} {'decode s/q':>10} {'parse ms/q':>10} {'store ms/q':>10} "
             f"{'eval tok':>8} {'early':>5}"]
    for o in outcomes:
        q = max(o.queries, 1)
        qps = o.queries / o.wall_s if o.wall_s else 0.0
        ratio = qps / (base.queries / base.wall_s) if base.wall_s and base.queries else 0.0
        lines.append(f"{o.name:<7} {o.queries:>7} {o.wall_s:>7.1f} {qps:>7.4f} {ratio:>7.2f}x "
                     f"{(o.prompt_tokens + o.completion_tokens) / o.wall_s:>6.0f} {o.prompt_s / q:>10.2f} "
                     f"{o.decode_s / q:>10.2f} {o.parse_s / q * 1000:>10.2f} {o.store_s / q * 1000:>10.2f} "
                     f"{o.prompt_evaluated:>8} {o.early_stops:>5}")
    lines.append("raw llama.cpp speeds in this run (tokens per second of its own prompt and decode time):")
    for o in outcomes:
        lines.append(f"  {o.name:<7} prompt {o.prompt_evaluated / o.prompt_s if o.prompt_s else 0:6.0f} tok/s "
                     f"({o.prompt_evaluated} evaluated of {o.prompt_tokens} sent), "
                     f"decode {o.decoded / o.decode_s if o.decode_s else 0:5.1f} tok/s, {o.restores} restores")
    return lines


def same_decisions(outcomes: list[Outcome]) -> list[str]:
    shared = [o for o in outcomes if CONFIGS[o.name].shared]
    bad = [o.name for o in shared[1:] if o.decisions != shared[0].decisions]
    if bad:
        return [f"DECISIONS DIFFER from {shared[0].name}: {', '.join(bad)}"]
    return [f"same decisions (every candidate's scores, the best, why it stopped) in: "
            f"{', '.join(o.name for o in shared)}"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--category", default="blender")
    ap.add_argument("--target", type=int, default=4, help="the promoted product's catalog index")
    ap.add_argument("--budget", type=int, default=8, help="search queries per configuration")
    ap.add_argument("--max-tokens", type=int, default=DEFAULT_GENERATE_CONFIG.max_tokens)
    ap.add_argument("--configs", nargs="*", default=["paper", "live", "store", "early"], choices=list(CONFIGS))
    ap.add_argument("--concurrency", type=int, default=0, help="prompts for the 2-process measurement (0: off)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-batch", type=int, default=512,
                    help="llama.cpp's prompt batch (a reused prefix is a whole number of batches)")
    args = ap.parse_args(argv)
    category = sample_catalog().category(args.category)
    if not 0 <= args.target < len(category.products):
        print(f"bench_throughput: --target must be 0..{len(category.products) - 1}", file=sys.stderr)
        return 2
    outcomes: list[Outcome] = []
    for name in args.configs:
        print(f"{name}: {CONFIGS[name].what} ...", flush=True)
        outcomes.append(run_config(name, CONFIGS[name], category, args.target, args))
    lines = report(outcomes) + same_decisions(outcomes)
    lines.append("paired comparisons: " + paired_gain(outcomes[-1].pairs))
    lines.append("early stop, checked: " + early_stop_check(category, outcomes))
    if args.concurrency:
        lines += concurrency(outcomes[0].messages[: args.concurrency], min(args.max_tokens, 128))
    print("\n".join(lines))
    return 1 if any(line.startswith("DECISIONS DIFFER") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
