"""Competition: K products of one category attacked at once, each by its own search.

1. **Competitors**: the K products named, or the K lowest-ranked without injection (the
   same selection orders as a single attack's).
2. **Searches**: each competitor's search runs as an ordinary attack (same method, same
   budget each, its queries under ``product=I/``) with only its own injection in place: the
   attackers do not see each other. Each search is the one ``poise attack --product`` runs,
   so "alone" is what a single attack would have found.
3. **Joint evaluation**, on the same fresh orders the searches never saw: every answer with
   (a) no injection, (b) one competitor's best injection alone, (c) all K at once. Per
   competitor: its mean score and rank and the share of answers naming it first under each;
   the rank it gains alone and together; who is named first most often together.

Every query is recorded and read back when the run is resumed with the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..catalog import Category, Document
from ..engine import Recommender
from ..ranking import RankingReader
from ..store import Store, StoredCompete
from ._evaluate import Budget, Evaluator, injection_sha
from ._run import ScoreSummary, find_product, lowest, search_injection, selection_scores
from ._stealth import Stealth
from .base import AttackParameterError, check_attack_counts, get_method

CONDITIONS = ("baseline", "alone", "together")


def check_compete(category: Category, k: Any, products: list[str] | None = None) -> list[int] | None:
    """``k`` and the products named for it checked before any query: the named products' indices
    (None: the K lowest-ranked are chosen). One clear error for each mistake."""
    n = len(category.products)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise AttackParameterError(f"--compete must be a whole number of at least 2, not {k!r}",
                                   "give the number of products to attack at once (2 or more)")
    if k > n:
        raise AttackParameterError(f"--compete {k}: {category.name!r} has only {n} products",
                                   f"give --compete 2 to {n}")
    if not products:
        return None
    if len(products) != k:
        raise AttackParameterError(f"--compete {k} with {len(products)} --product",
                                   f"name {k} products with --product, or none to attack the {k} lowest-ranked")
    indices = [find_product(category, name) for name in products]
    for i in set(indices):
        if indices.count(i) > 1:
            raise AttackParameterError(f"--product names {category.products[i].name!r} twice",
                                       "name each competing product once")
    return indices


@dataclass
class Competitor:
    """One competing product's search: its best injection and page, what stopped it."""

    index: int
    injection: str
    page: Document  # its page with its best injection (the catalog's when it found none)
    stopped_by: str
    evaluator: Evaluator
    stealth: dict[str, Any] | None = None
    method_report: dict[str, Any] | None = None


@dataclass
class CompeteResult:
    run_id: str
    category: Category
    method: str
    competitors: list[Competitor]
    scores: dict[str, dict[int, ScoreSummary]]  # condition -> product index -> its scores
    firsts: dict[int | None, int]  # together answers by the product named first (None: unreadable,
    # -1: read but naming none)
    selection: list[float]
    joint: Evaluator  # selection and the joint evaluation

    @property
    def final_orders(self) -> int:
        return sum(self.firsts.values())

    @property
    def winner(self) -> int | None:
        """The competitor named first most often together (ties: the earlier; None: none ever was)."""
        counts = [(self.firsts.get(c.index, 0), -c.index) for c in self.competitors]
        best = max(counts)
        return -best[1] if best[0] else None

    def to_stored(self, seed: int = 0) -> StoredCompete:
        """What ``compete.json`` holds (see ``poise.store.StoredCompete``)."""
        evs = [self.joint, *(c.evaluator for c in self.competitors)]
        total = max(self.final_orders, 1)
        mine = {c.index for c in self.competitors}
        winner = self.winner
        return StoredCompete.model_validate({
            "run_id": self.run_id, "category": self.category.name, "method": self.method,
            "model": self.joint.engine.model.spec, "query": self.joint.query, "k": len(self.competitors),
            "n_products": self.joint.n, "final_orders": self.final_orders, "selection_scores": self.selection,
            "products": [self._product(c, seed) for c in self.competitors],
            "winner": None if winner is None else self.category.products[winner].name,
            "first_other": round(sum(v for i, v in self.firsts.items() if i is not None and i not in mine) / total, 4),
            "unread_together": round(self.firsts.get(None, 0) / total, 4),
            "recommender_queries": sum(e.search_queries + e.other_queries for e in evs),
            "search_queries": sum(e.search_queries for e in evs),
            "attacker_queries": sum(e.attacker_queries for e in evs), "tokens": sum(e.tokens for e in evs),
        })

    def _product(self, c: Competitor, seed: int) -> dict[str, Any]:
        p = self.category.products[c.index]
        sides = {cond: _side(self.scores[cond][c.index], seed + k) for k, cond in enumerate(CONDITIONS)}
        base = sides["baseline"]["rank"]
        return {
            "index": c.index, "brand": p.brand, "model": p.model, "injection": c.injection,
            "injection_sha": injection_sha(c.injection), "search_queries": c.evaluator.search_queries,
            "attacker_queries": c.evaluator.attacker_queries, "stopped_by": c.stopped_by, **sides,
            "gain_alone": _gain(base, sides["alone"]["rank"]), "gain_together": _gain(base, sides["together"]["rank"]),
            "stealth": c.stealth, "method_report": c.method_report,
            "candidates": [cand.to_json() for cand in c.evaluator.candidates],
        }


def _num(x: float) -> float | None:
    return None if x != x else round(float(x), 4)


def _side(s: ScoreSummary, seed: int) -> dict[str, Any]:
    return {"score": _num(s.mean_score), "score_ci": [_num(x) for x in s.ci(seed)], "rank": _num(s.mean_rank),
            "first_rate": round(s.first_rate, 4), "unparseable": s.unparseable - s.ambiguous,
            "ambiguous": s.ambiguous}


def _gain(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(before - after, 4)


def run_compete(
    engine: Recommender,
    category: Category,
    method: str,
    *,
    k: int,
    store: Store,
    run_id: str,
    products: list[str] | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    budget: Budget | None = None,
    responses_per_candidate: int = 2,
    selection_orders: int = 4,
    final_orders: int = 10,
    confirm: int = 3,
    on_query: Callable[[], None] | None = None,
    reader: RankingReader | None = None,
    stealth: Stealth | None = None,
) -> CompeteResult:
    """K products attacked at once (see the module's doc); resumable: a query the run already
    made is read back, not asked. ``method`` and ``params`` make each competitor's search
    (``params`` may hold the attacker model); ``budget`` is each search's."""
    named = check_compete(category, k, products)
    check_attack_counts(responses=responses_per_candidate, final_orders=final_orders,
                        selection_orders=selection_orders, confirm=confirm)
    get_method(method, **(params or {}))  # a bad parameter fails here, before any query

    def evaluator(prefix: str) -> Evaluator:
        return Evaluator(engine, category, store=store, run_id=run_id, seed=seed, budget=budget, reader=reader,
                         responses_per_candidate=responses_per_candidate, on_query=on_query, task_prefix=prefix)

    joint = evaluator("")
    selection = selection_scores(joint, selection_orders) if named is None else []
    chosen = lowest(selection)[:k] if named is None else named
    competitors = [_search(evaluator(f"product={i}/"), i, method, params or {}, seed, confirm, stealth)
                   for i in chosen]
    scores, firsts = joint_scores(joint, competitors, final_orders)
    return CompeteResult(run_id=run_id, category=category, method=method, competitors=competitors, scores=scores,
                         firsts=firsts, selection=selection, joint=joint)


def _search(ev: Evaluator, index: int, method: str, params: dict[str, Any], seed: int, confirm: int,
            stealth: Stealth | None) -> Competitor:
    """One competitor's search, alone (no other injection in place), as ``poise attack`` runs it."""
    ev.stealth = stealth
    found = get_method(method, **params)
    injection, stopped_by = search_injection(ev, found, index, seed, confirm)
    clean = ev.category.products[index].document
    page = ev.documents(injection)[index] if injection else clean
    measured = None
    if stealth is not None and injection:
        measured = stealth.measure(injection, clean.text, page.text, ev.engine).to_json()
    return Competitor(index=index, injection=injection, page=page, stopped_by=stopped_by, evaluator=ev,
                      stealth=measured, method_report=getattr(found, "report", None))


def joint_scores(ev: Evaluator, competitors: list[Competitor], orders: int,
                 ) -> tuple[dict[str, dict[int, ScoreSummary]], dict[int | None, int]]:
    """Each competitor's scores on ``orders`` fresh orders with no injection, its own alone and
    all together (one answer each; an injection-free page is never asked twice), and how often
    each product is named first together (None: the answer could not be read)."""
    ev.target = None
    injected = [c for c in competitors if c.injection]
    read: dict[str, dict[int, list[int]]] = {cond: {c.index: [] for c in competitors} for cond in CONDITIONS}
    unread: dict[str, dict[int, list[str]]] = {cond: {c.index: [] for c in competitors} for cond in CONDITIONS}
    firsts: dict[int | None, int] = {}
    for k, order in enumerate(ev.fresh_orders("final", orders)):
        none = _ask(ev, f"final/none/order={k}", order, [], "final_none")
        alone = {c.index: _ask(ev, f"final/alone/product={c.index}/order={k}", order, [c], "final_alone")
                 if c.injection else none for c in competitors}
        together = _ask(ev, f"final/together/order={k}", order, injected, "final_together") if injected else none
        ranking = together[0]
        first = None if ranking is None else ranking[0] if ranking else -1  # -1: read, nobody listed
        firsts[first] = firsts.get(first, 0) + 1
        for c in competitors:
            for cond, (ranking, task) in (("baseline", none), ("alone", alone[c.index]), ("together", together)):
                score = ev.score(ranking, c.index)
                if score is None:
                    unread[cond][c.index].append(task)
                else:
                    read[cond][c.index].append(score)
    summaries = {cond: {i: ScoreSummary(read[cond][i], len(unread[cond][i]), ev.n,
                                        sum(t in ev.ambiguous_tasks for t in unread[cond][i]))
                        for i in read[cond]} for cond in CONDITIONS}
    return summaries, firsts


def _ask(ev: Evaluator, task: str, order: tuple[int, ...], injected: list[Competitor], phase: str,
         ) -> tuple[list[int] | None, str]:
    """One answer of the joint evaluation with the ``injected`` competitors' pages in place of
    the catalog's: (its ranking, its task)."""
    ev.pages = {c.index: c.page for c in injected}
    try:
        ranking, _ = ev.ask(task, order, None, phase,
                            {"experiment": "compete", "injections": {str(c.index): c.injection for c in injected}})
    finally:
        ev.pages = {}
    return ranking, task


def save_compete(result: CompeteResult, store: Store, seed: int = 0) -> StoredCompete:
    """Write the run's ``compete.json``; returns what was written."""
    stored = result.to_stored(seed)
    store.save_result(result.run_id, stored)
    return stored
