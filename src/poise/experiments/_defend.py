"""Which defense to deploy: the plain engine against each defended engine on one category.

For each configuration (the plain engine, then each defense spec composed onto it) it
measures

- **clean utility**: the plain engine's consensus ranking (Borda count of its readable answers
  over ``orders`` fresh context orders, or, with ``consensus_orders`` M, over M further orders
  of its own, so that the plain engine is not measured against its own answers and the
  consensus can rest on more answers than any configuration pays for; its top-1's bootstrap
  stability is reported); each configuration's answers on the ``orders`` orders; Kendall tau
  of each readable answer's score vector against the consensus scores (mean over readable
  answers) and top-1 agreement (share of *all* answers whose first product is the consensus's
  first: an unreadable answer disagrees); the one-way F of context position on the scores of
  the configuration's readable answers (position bias);
- **robustness**: the adaptive attack (``poise.attacks.run_attack`` against the defended
  engine itself) and the plain engine's best injection replayed on the defended engine, on
  the same promoted product (the plain engine's lowest-ranked, unless one is named) and the
  same fresh final orders: success, share of final answers with the product first, mean
  rank gain;
- **cost**: model calls and tokens per clean answer, and their ratio to the plain engine's;
- **detection** (defenses whose report flags pages): the share of injected answers whose
  attacked page was flagged (every injection the searches scored, the transfer's included)
  and the share of clean pages flagged;
- **certificates** (defenses whose report carries one): the mean certified share of pairs
  and the share of answers whose top-1 is certified.

Every query is recorded under task keys ``CATEGORY/LABEL/...`` (the label is the defense
chain with every parameter spelt out), so an interrupted run asked again with the same inputs
reads back what it already asked and asks only the rest.

Specs: ``NAME[:k=v,...]``; ``a+b`` composes (``a`` wraps the engine, ``b`` wraps ``a``); one
parameter of a spec may list values, ``self-consistency:k=1|3|5``, which expands into one
configuration per value and a trade-off curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..catalog import Category
from ..defenses import split_chain
from ..engine import Recommender
from ..ranking import RankingReader
from ..store import Store
from ._defend_figures import (
    SCHEMA_VERSION,
    ConfigResult,
    Cost,
    DefendResult,
    Robustness,
    _cost,
    _curves,
    _injected_answers,
    _num,
    certificate_figures,
    clean_answers,
    clean_figures,
    consensus_of,
    detection_figures,
)

PLAIN = "plain"


# -- configurations ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Configuration:
    """One engine to measure: ``chain`` composed onto the plain engine (empty: the plain engine)."""

    label: str  # the chain with every parameter spelt out; "plain" for the engine alone
    chain: tuple[str, ...]
    source: str  # the spec it was expanded from
    curve_param: str | None = None  # the listed parameter it takes one value of
    curve_value: str | None = None


def expand_spec(spec: str) -> list[tuple[tuple[str, ...], str | None, str | None]]:
    """A spec's chains: one per value of its listed parameter (``k=1|3|5``)."""
    from ..defenses import DefenseError, parse_spec

    chain = split_chain(spec)
    listed = [(i, key, raw.split("|")) for i, piece in enumerate(chain)
              for key, raw in parse_spec(piece)[1].items() if "|" in raw]
    if len(listed) > 1:
        raise DefenseError(f"defense spec {spec!r} lists values for {len(listed)} parameters",
                           "list values (a|b|c) for one parameter per spec: a trade-off curve has one axis")
    if not listed:
        return [(tuple(chain), None, None)]
    index, key, values = listed[0]
    if any(not v.strip() for v in values):
        raise DefenseError(f"defense spec {spec!r}: {key} lists an empty value", "write values as a|b|c")
    out: list[tuple[tuple[str, ...], str | None, str | None]] = []
    for value in values:
        name, raw = parse_spec(chain[index])
        raw[key] = value.strip()
        piece = name + ":" + ",".join(f"{k}={v}" for k, v in raw.items())
        out.append(((*chain[:index], piece, *chain[index + 1:]), key, value.strip()))
    return out


def configurations(engine: Recommender, specs: Sequence[str], context: Any = None
                   ) -> list[tuple[Configuration, Recommender]]:
    """The plain engine and every configuration the specs expand into, each built (its
    parameters checked: a bad spec fails here, before any call); duplicates once."""
    from ..defenses import defend

    out: list[tuple[Configuration, Recommender]] = [(Configuration(PLAIN, (), PLAIN), engine)]
    seen = {PLAIN}
    for spec in specs:
        for chain, param, value in expand_spec(spec):
            defended = defend(engine, list(chain), context)
            label = "+".join(defended.identity().get("defenses", []))
            if label in seen:
                continue
            seen.add(label)
            out.append((Configuration(label, chain, spec, param, value), defended))
    return out


@dataclass(frozen=True)
class AttackSettings:
    """The attack each configuration faces (``poise attack``'s settings)."""

    method: str = "strategies"
    params: dict[str, Any] = field(default_factory=dict)
    budget: int = 46
    token_budget: int | None = None
    responses: int = 2
    selection_orders: int = 4
    final_orders: int = 10
    confirm: int = 3


# -- the run -------------------------------------------------------------------------------------------
def _check_counts(orders: int, attack: AttackSettings, consensus_orders: int = 0) -> None:
    from ..attacks.base import check_attack_counts, check_count

    check_clean_counts(orders, consensus_orders)
    check_count("--budget", attack.budget, 1)
    check_attack_counts(responses=attack.responses, final_orders=attack.final_orders,
                        selection_orders=attack.selection_orders, confirm=attack.confirm)


def check_clean_counts(orders: int, consensus_orders: int = 0) -> None:
    """``orders`` (at least 2) and ``consensus_orders`` (0, or at least 2) checked: what the
    clean utility needs, with or without an attack."""
    from ..attacks.base import AttackParameterError, check_count

    check_count("--orders", orders, 2)
    check_count("--consensus-orders", consensus_orders, 0)
    if consensus_orders == 1:  # one answer: its bootstrap resamples that answer, "100% stable" whatever it says
        raise AttackParameterError("--consensus-orders must be 0 (off) or at least 2, not 1",
                                   "a consensus of one answer always looks settled: give it 2 or more orders, "
                                   "or 0 to build it from the --orders answers")


def run_defend(
    engine: Recommender,
    category: Category,
    defense_specs: Sequence[str],
    *,
    store: Store,
    run_id: str,
    reader: RankingReader | None = None,
    attack: AttackSettings | None = None,
    orders: int = 10,
    seed: int = 0,
    product: str | None = None,
    context: Any = None,
    on_query: Callable[[], None] | None = None,
    consensus_orders: int = 0,
) -> DefendResult:
    """The plain ``engine`` and each defense spec composed onto it, measured on ``category``
    (see the module's docstring). Every spec, parameter and count is checked before any call;
    resumable: a query the run already made is read back, not asked again."""
    from ..attacks import Budget, final_scores, find_product, get_method, run_attack
    from ..attacks._evaluate import Evaluator, _orders

    attack = attack or AttackSettings()
    _check_counts(orders, attack, consensus_orders)
    get_method(attack.method, **attack.params)  # its parameters, checked before any call
    if product is not None:
        find_product(category, product)
    configs = configurations(engine, defense_specs, context)
    tick = on_query or (lambda: None)
    budget = Budget(recommender_queries=attack.budget, tokens=attack.token_budget)
    n = len(category.products)
    clean_orders = _orders(n, f"defend/{seed}/clean", orders)
    own_orders = consensus_orders_of(category, orders, consensus_orders, seed)

    def prefix(config: Configuration) -> str:
        return f"{category.name}/{config.label}/"

    results: list[ConfigResult] = []
    plain_cost: Cost | None = None
    consensus = np.zeros(n)
    stability: float | None = None
    if own_orders:
        consensus, stability = own_consensus(engine, category, own_orders, store=store, run_id=run_id,
                                             reader=reader, on_query=tick)
    target = -1
    plain_injection = ""
    for config, defended in configs:
        p = prefix(config)
        answers = clean_answers(defended, category, clean_orders, store=store, run_id=run_id, prefix=p,
                                reader=reader, on_query=tick)
        if config.label == PLAIN and not own_orders:
            consensus, stability = consensus_of(answers, n)
        found = run_attack(defended, category, get_method(attack.method, **attack.params), store=store,
                           run_id=run_id, product=product if target < 0 else category.products[target].name,
                           seed=seed, budget=budget, responses_per_candidate=attack.responses,
                           selection_orders=attack.selection_orders, final_orders=attack.final_orders,
                           confirm=attack.confirm, on_query=tick, reader=reader, task_prefix=p + "attack/")
        if target < 0:
            target, plain_injection = found.product_index, found.injection
        robust = Robustness(
            success=found.success, first_rate=round(found.after.first_rate, 4),
            rank_before=_num(found.before.mean_rank), rank_after=_num(found.after.mean_rank),
            rank_gain=_num(found.before.mean_rank - found.after.mean_rank),
            queries=found.evaluator.search_queries + found.evaluator.other_queries, injection=found.injection)
        if config.label == PLAIN:
            robust.transfer_first_rate, robust.transfer_rank_after, robust.transfer_gain = (
                robust.first_rate, robust.rank_after, robust.rank_gain)
        elif plain_injection:
            ev = Evaluator(defended, category, store=store, run_id=run_id, seed=seed, reader=reader,
                           on_query=tick, task_prefix=p + "transfer/")
            ev.target, ev.replaces_page = target, found.evaluator.replaces_page  # a rewrite replaces the page
            replay = final_scores(ev, attack.final_orders, plain_injection, sides=("after",))["after"]
            robust.transfer_first_rate = round(replay.first_rate, 4)
            robust.transfer_rank_after = _num(replay.mean_rank)
            robust.transfer_gain = _num(found.before.mean_rank - replay.mean_rank)
        cost = _cost(answers, plain_cost)
        plain_cost = plain_cost or cost
        injected = _injected_answers(store, run_id, [p + "attack/", p + "transfer/"])
        results.append(ConfigResult(
            label=config.label, chain=list(config.chain), source=config.source, kinds=_kinds(defended),
            curve_param=config.curve_param, curve_value=config.curve_value,
            clean=clean_figures(answers, consensus), attack=robust, cost=cost,
            detection=detection_figures(answers, injected, target, category),
            certificate=certificate_figures(answers)))
    order = sorted(range(n), key=lambda i: (-consensus[i], i))
    return DefendResult(
        run_id=run_id, category=category.name, model=engine.model.spec, method=attack.method, budget=attack.budget,
        # a small category has fewer orders than asked for (3 products: 6): the figures say how many were asked
        orders=len(clean_orders), final_orders=min(attack.final_orders, math.factorial(n)), seed=seed,
        product=category.products[target].name,
        product_index=target,
        consensus=[{"product": category.products[i].name, "points": float(consensus[i])} for i in order],
        consensus_orders=len(own_orders), consensus_stability=stability, configs=results, curves=_curves(results))


def own_consensus(engine: Recommender, category: Category, orders: Sequence[tuple[int, ...]], *, store: Store,
                  run_id: str, reader: RankingReader | None, on_query: Callable[[], None]
                  ) -> tuple[np.ndarray, float | None]:
    """The plain ``engine``'s consensus over ``orders`` of its own (see
    :func:`consensus_orders_of`), asked under the task keys ``CATEGORY/consensus/...``: its Borda
    points and how settled its top-1 is."""
    own = clean_answers(engine, category, orders, store=store, run_id=run_id, prefix=f"{category.name}/consensus/",
                        reader=reader, on_query=on_query)
    return consensus_of(own, len(category.products))


def consensus_orders_of(category: Category, orders: int, consensus_orders: int, seed: int) -> list[tuple[int, ...]]:
    """The consensus's own context orders: the ``consensus_orders`` that follow the ``orders``
    clean orders in the same stream (none of them a clean order); refused, before any call,
    when the category has too few orders for both."""
    from ..attacks._evaluate import _orders
    from ..defenses import DefenseError

    if not consensus_orders:
        return []
    n = len(category.products)
    out = _orders(n, f"defend/{seed}/clean", orders + consensus_orders)[orders:]
    if len(out) < consensus_orders:
        raise DefenseError(f"{category.name} has {math.factorial(n)} context orders, too few for {orders} clean "
                           f"and {consensus_orders} consensus orders", "lower --orders or --consensus-orders")
    return out


def _kinds(engine: Recommender) -> list[str]:
    from ..defenses import Defense

    kinds = []
    while isinstance(engine, Defense):  # a defense wraps the engine it defends (``inner``)
        kinds.append(engine.kind)
        engine = engine.inner
    return kinds[::-1]


def pooled(results: Sequence[DefendResult]) -> list[dict[str, Any]]:
    """Per configuration over categories: attack success rate (share of categories), mean
    rank gain, mean first-place share, mean tau and top-1 agreement, mean tokens ratio, and
    the cuts in success rate and rank gain against the plain engine."""
    by_label: dict[str, list[ConfigResult]] = {}
    for result in results:
        for c in result.configs:
            by_label.setdefault(c.label, []).append(c)

    def mean(values: list[Any]) -> float | None:
        values = [v for v in values if v is not None]
        return _num(np.mean(values)) if values else None

    rows: list[dict[str, Any]] = []
    for label, cs in by_label.items():
        rows.append({"label": label, "categories": len(cs),
                     "success_rate": mean([float(c.attack.success) for c in cs]),
                     "first_rate": mean([c.attack.first_rate for c in cs]),
                     "rank_gain": mean([c.attack.rank_gain for c in cs]),
                     "transfer_gain": mean([c.attack.transfer_gain for c in cs]),
                     "tau": mean([c.clean.tau for c in cs]), "top1": mean([c.clean.top1 for c in cs]),
                     "tokens_x": mean([c.cost.tokens_x for c in cs]), "calls_x": mean([c.cost.calls_x for c in cs])})
    base = rows[0] if rows and rows[0]["label"] == PLAIN else None
    for row in rows:
        for key, cut in (("first_rate", "first_rate_cut"), ("rank_gain", "rank_gain_cut")):
            b, v = (base or {}).get(key), row[key]
            row[cut] = _num(1 - v / b) if b and v is not None and b > 0 else None
    return rows


def defend_json(results: Sequence[DefendResult]) -> dict[str, Any]:
    """What ``defend.json`` holds: every category's result and the pooled rows."""
    return {"schema_version": SCHEMA_VERSION, "categories": [r.model_dump(mode="json") for r in results],
            "pooled": pooled(results)}


def check_defend_inputs(engine: Recommender, specs: Sequence[str], orders: int, attack: AttackSettings,
                        context: Any = None, consensus_orders: int = 0) -> list[Configuration]:
    """Every spec, parameter and count checked (what the CLI calls before it opens a store)."""
    from ..attacks import get_method

    _check_counts(orders, attack, consensus_orders)
    get_method(attack.method, **attack.params)
    return [c for c, _ in configurations(engine, specs, context)]


__all__ = ["PLAIN", "SCHEMA_VERSION", "AttackSettings", "Configuration", "DefendResult",
           "check_defend_inputs", "configurations", "consensus_orders_of", "defend_json", "expand_spec",
           "own_consensus", "pooled", "run_defend", "split_chain"]
