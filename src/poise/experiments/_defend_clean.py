"""Clean utility and cost of each defense configuration, no attack (``poise defend
--clean-only``): what choosing a defense, or a parameter such as self-consistency's k, by
clean agreement and cost needs, at a fraction of the full comparison's calls.

For each configuration (the plain engine, then each defense spec composed onto it, a listed
parameter ``k=1|3|5`` expanding into one configuration per value) it asks the engine on the
same fresh clean context orders as ``run_defend`` does and measures, as ``run_defend``'s clean
figures do, Kendall tau and top-1 agreement against the plain engine's consensus (its Borda
count over its own clean answers, or, with ``consensus_orders`` M, over M further orders of its
own, with the bootstrap stability of its top-1), the position-bias F, and the model calls and
tokens per answer against the plain engine's.

Every answer is recorded under the task keys ``run_defend`` uses (``CATEGORY/LABEL/clean/...``
and ``CATEGORY/consensus/...``), so an interrupted run asked again with the same inputs reads
back what it already asked and asks only the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from ..catalog import Category
from ..engine import Recommender
from ..ranking import RankingReader
from ..store import Store
from ._defend import Configuration, check_clean_counts, configurations, consensus_orders_of, own_consensus
from ._defend_figures import SCHEMA_VERSION, Clean, Cost, _cost, _num, clean_answers, clean_figures, consensus_of


# -- the result -----------------------------------------------------------------------------------
class ProductPoints(BaseModel):
    product: str
    points: float  # Borda points over the consensus's readable answers


class Consensus(BaseModel):
    """The plain engine's consensus on one category: every product, best first."""

    products: list[ProductPoints]
    answers: int  # the answers it rests on
    # 0: the plain engine's answers on the clean orders; else that many further orders of its own
    own_orders: int = 0
    # share of bootstrap resamples of its answers with the same first product (None: none readable)
    stability: float | None = None


class CleanConfig(Clean):
    """One configuration's clean figures and cost (see the module's docstring)."""

    label: str  # the chain with every parameter spelt out; "plain" for the engine alone
    chain: list[str]
    source: str  # the spec it was expanded from
    curve_param: str | None = None  # the listed parameter it takes one value of
    curve_value: str | None = None
    calls: float  # model calls per answer
    tokens: float  # tokens per answer
    calls_x: float | None  # relative to the plain engine
    tokens_x: float | None


class DefendCleanResult(BaseModel):
    """One category: the consensus and a row per configuration, the plain engine first."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    category: str
    model: str
    orders: int  # the clean orders asked (a small category has fewer than were asked for)
    seed: int
    consensus: Consensus
    configs: list[CleanConfig]


class PooledClean(BaseModel):
    """One configuration over categories: the mean of each figure (None: measured nowhere)."""

    label: str
    categories: int
    tau: float | None
    top1: float | None
    position_f: float | None
    calls_x: float | None
    tokens_x: float | None


# -- the run --------------------------------------------------------------------------------------
def run_defend_clean(
    engine: Recommender,
    category: Category,
    defense_specs: Sequence[str],
    *,
    store: Store,
    run_id: str,
    reader: RankingReader | None = None,
    orders: int = 10,
    seed: int = 0,
    context: Any = None,
    consensus_orders: int = 0,
    on_query: Callable[[], None] | None = None,
    on_consensus: Callable[[Consensus], None] | None = None,
    on_config: Callable[[CleanConfig], None] | None = None,
) -> DefendCleanResult:
    """The plain ``engine`` and each defense spec composed onto it, measured clean on
    ``category`` (see the module's docstring). Every spec and count is checked before any
    call; resumable. ``on_query`` is called per answer, ``on_consensus`` once the consensus is
    known and ``on_config`` as each configuration's figures are done (progress)."""
    from ..attacks._evaluate import _orders

    check_clean_counts(orders, consensus_orders)
    configs = configurations(engine, defense_specs, context)
    tick = on_query or (lambda: None)
    n = len(category.products)
    clean_orders = _orders(n, f"defend/{seed}/clean", orders)
    own_orders = consensus_orders_of(category, orders, consensus_orders, seed)
    points, consensus = np.zeros(n), None
    if own_orders:
        points, stability = own_consensus(engine, category, own_orders, store=store, run_id=run_id, reader=reader,
                                          on_query=tick)
        consensus = _consensus(category, points, stability, len(own_orders), len(own_orders), on_consensus)
    rows: list[CleanConfig] = []
    plain_cost: Cost | None = None
    for config, defended in configs:
        answers = clean_answers(defended, category, clean_orders, store=store, run_id=run_id,
                                prefix=f"{category.name}/{config.label}/", reader=reader, on_query=tick)
        if consensus is None:  # the first configuration is the plain engine: its answers are the consensus's
            points, stability = consensus_of(answers, n)
            consensus = _consensus(category, points, stability, len(answers), 0, on_consensus)
        cost = _cost(answers, plain_cost)
        plain_cost = plain_cost or cost
        rows.append(_row(config, clean_figures(answers, points), cost))
        if on_config is not None:
            on_config(rows[-1])
    assert consensus is not None  # configurations() always yields the plain engine
    return DefendCleanResult(run_id=run_id, category=category.name, model=engine.model.spec,
                             orders=len(clean_orders), seed=seed, consensus=consensus, configs=rows)


def _consensus(category: Category, points: np.ndarray, stability: float | None, answers: int, own_orders: int,
               on_consensus: Callable[[Consensus], None] | None) -> Consensus:
    """The consensus's products best first (ties: catalog order), told to ``on_consensus``."""
    best = sorted(range(len(points)), key=lambda i: (-points[i], i))
    consensus = Consensus(products=[ProductPoints(product=category.products[i].name, points=float(points[i]))
                                    for i in best], answers=answers, own_orders=own_orders, stability=stability)
    if on_consensus is not None:
        on_consensus(consensus)
    return consensus


def _row(config: Configuration, clean: Clean, cost: Cost) -> CleanConfig:
    return CleanConfig(**clean.model_dump(), label=config.label, chain=list(config.chain), source=config.source,
                       curve_param=config.curve_param, curve_value=config.curve_value, calls=cost.calls_per_answer,
                       tokens=cost.tokens_per_answer, calls_x=cost.calls_x, tokens_x=cost.tokens_x)


# -- over categories ------------------------------------------------------------------------------
def pooled_clean(results: Sequence[DefendCleanResult]) -> list[PooledClean]:
    """Per configuration, in the order first met (the plain engine first): the mean of its
    figures over the categories, each over those where it was measured."""
    by_label: dict[str, list[CleanConfig]] = {}
    for result in results:
        for c in result.configs:
            by_label.setdefault(c.label, []).append(c)

    def mean(values: list[float | None]) -> float | None:
        measured = [v for v in values if v is not None]
        return _num(np.mean(measured)) if measured else None

    return [PooledClean(label=label, categories=len(cs), tau=mean([c.tau for c in cs]),
                        top1=mean([c.top1 for c in cs]), position_f=mean([c.position_f for c in cs]),
                        calls_x=mean([c.calls_x for c in cs]), tokens_x=mean([c.tokens_x for c in cs]))
            for label, cs in by_label.items()]


def defend_clean_json(results: Sequence[DefendCleanResult]) -> dict[str, Any]:
    """What ``defend-clean.json`` holds: every category's result and the pooled rows."""
    return {"schema_version": SCHEMA_VERSION, "categories": [r.model_dump(mode="json") for r in results],
            "pooled": [row.model_dump(mode="json") for row in pooled_clean(results)]}


__all__ = ["CleanConfig", "Consensus", "DefendCleanResult", "PooledClean", "ProductPoints",
           "defend_clean_json", "pooled_clean", "run_defend_clean"]
