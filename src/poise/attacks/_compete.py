"""Competition: K products of one category attacked at once, each by its own search.

1. **Competitors**: the K products named, or the K lowest-ranked without injection (the
   same selection orders as a single attack's).
2. **Searches**: each competitor's search runs as an ordinary attack (same method, same
   budget each, its queries under ``product=I/``) with only its own injection in place: the
   attackers do not see each other. Each search is the one ``poise attack --product`` runs,
   so "alone" is what a single attack would have found.
3. **Best-response rounds** (``rounds`` R, default 1: none): in each round 2..R every
   competitor searches again, with the same budget, the other competitors' injections of the
   round before in place on their own pages (all respond to the same state, so the order of
   the competitors does not matter); its queries are under ``round=R/product=I/``. A round's
   injection replaces the competitor's when its search found one (else the previous stays).
4. **Joint evaluation**, on the same fresh orders the searches never saw: every answer with
   (a) no injection, (b) one competitor's final injection alone, (c) all K at once, and with
   rounds, (d) all K round-1 injections at once (asked only where they differ from the final
   ones). Per competitor: its mean score and rank and the share of answers naming it first
   under each; the rank it gains alone and together (after round 1 and after the last round);
   who is named first most often together; per round, its search's best score.

Every query is recorded and read back when the run is resumed with the same inputs. A run
with one round records and asks exactly what it did before rounds existed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
#: The joint evaluation's condition with every round-1 injection in place (runs with rounds).
ROUND_ONE = "together_round1"
MAX_ROUNDS = 10


def check_rounds(rounds: Any) -> int:
    """The number of best-response rounds, checked before any query (one clear error)."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise AttackParameterError(f"--rounds must be a whole number from 1 to {MAX_ROUNDS}, not {rounds!r}",
                                   "give 1 (each search alone) or more (each searches again against the others' "
                                   "injections)")
    return rounds


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
class Round:
    """One competitor's search in one round (round 1: alone; later: the others' injections in place)."""

    number: int
    index: int  # the competitor's product
    injection: str  # what this round's search found ("": nothing, the previous injection stays)
    stopped_by: str
    evaluator: Evaluator
    method_report: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        ev, best = self.evaluator, self.evaluator.best()
        data: dict[str, Any] = {
            "round": self.number, "injection": self.injection, "injection_sha": injection_sha(self.injection),
            "best_search_score": round(best.mean_score, 4) if best is not None and best.asked else None,
            "search_queries": ev.search_queries, "attacker_queries": ev.attacker_queries,
            "stopped_by": self.stopped_by}
        if self.number > 1:  # round 1's are the product's own (as in a run without rounds)
            data |= {"method_report": self.method_report, "candidates": [c.to_json() for c in ev.candidates]}
        return data


@dataclass
class Competitor:
    """One competing product: its (last) injection and page, and its round-1 search (what
    stopped it, its evaluator and report); ``rounds``: every round's search, round 1's first."""

    index: int
    injection: str
    page: Document  # its page with its injection (the catalog's when it found none)
    stopped_by: str
    evaluator: Evaluator
    stealth: dict[str, Any] | None = None
    method_report: dict[str, Any] | None = None
    rounds: list[Round] = field(default_factory=list)


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
    rounds: int = 1

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
        evs = [self.joint, *(e for c in self.competitors for e in _searches(c))]
        total = max(self.final_orders, 1)
        mine = {c.index for c in self.competitors}
        winner = self.winner
        return StoredCompete.model_validate({
            **({"rounds": self.rounds} if self.rounds > 1 else {}),
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
        sides = {cond: _side(self.scores[cond][c.index], seed + k)
                 for k, cond in enumerate((*CONDITIONS, ROUND_ONE)) if cond in self.scores}
        base = sides["baseline"]["rank"]
        searches = _searches(c)
        extra: dict[str, Any] = {}
        if self.rounds > 1:
            extra = {"gain_together_round1": _gain(base, sides[ROUND_ONE]["rank"]),
                     "rounds": [r.to_json() for r in c.rounds]}
        return {
            "index": c.index, "brand": p.brand, "model": p.model, "injection": c.injection,
            "injection_sha": injection_sha(c.injection), "search_queries": sum(e.search_queries for e in searches),
            "attacker_queries": sum(e.attacker_queries for e in searches), "stopped_by": c.stopped_by, **sides,
            "gain_alone": _gain(base, sides["alone"]["rank"]), "gain_together": _gain(base, sides["together"]["rank"]),
            "stealth": c.stealth, "method_report": c.method_report,
            "candidates": [cand.to_json() for cand in c.evaluator.candidates], **extra,
        }


def _searches(c: Competitor) -> list[Evaluator]:
    """A competitor's searches' evaluators, every round's."""
    return [r.evaluator for r in c.rounds] or [c.evaluator]


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
    rounds: int = 1,
) -> CompeteResult:
    """K products attacked at once (see the module's doc); resumable: a query the run already
    made is read back, not asked. ``method`` and ``params`` make each competitor's search
    (``params`` may hold the attacker model); ``budget`` is each search's, in every round."""
    named = check_compete(category, k, products)
    check_rounds(rounds)
    check_attack_counts(responses=responses_per_candidate, final_orders=final_orders,
                        selection_orders=selection_orders, confirm=confirm)
    get_method(method, **(params or {}))  # a bad parameter fails here, before any query

    def evaluator(prefix: str) -> Evaluator:
        return Evaluator(engine, category, store=store, run_id=run_id, seed=seed, budget=budget, reader=reader,
                         responses_per_candidate=responses_per_candidate, on_query=on_query, task_prefix=prefix)

    def search(number: int, c: int, others: list[Competitor]) -> Round:
        ev = evaluator(f"product={c}/" if number == 1 else f"round={number}/product={c}/")
        ev.pages = {o.index: o.page for o in others if o.index != c and o.injection}
        return _search(ev, number, c, method, params or {}, seed, confirm, stealth)

    joint = evaluator("")
    selection = selection_scores(joint, selection_orders) if named is None else []
    chosen = lowest(selection)[:k] if named is None else named
    first = [_competitor(search(1, i, []), None) for i in chosen]
    competitors = first
    for number in range(2, rounds + 1):  # every competitor answers the same state: the round before
        competitors = [_competitor(search(number, c.index, competitors), c) for c in competitors]
    competitors = [_measured(c, stealth) for c in competitors]
    scores, firsts = joint_scores(joint, competitors, final_orders, round_one=first if rounds > 1 else None)
    return CompeteResult(run_id=run_id, category=category, method=method, competitors=competitors, scores=scores,
                         firsts=firsts, selection=selection, joint=joint, rounds=rounds)


def _search(ev: Evaluator, number: int, index: int, method: str, params: dict[str, Any], seed: int, confirm: int,
            stealth: Stealth | None) -> Round:
    """One competitor's search in one round, as ``poise attack`` runs it (with the others' pages
    the evaluator holds in place)."""
    ev.stealth = stealth
    found = get_method(method, **params)
    injection, stopped_by = search_injection(ev, found, index, seed, confirm)
    return Round(number, index, injection, stopped_by, ev, getattr(found, "report", None))


def _competitor(done: Round, before: Competitor | None) -> Competitor:
    """The competitor after a round: its round-1 search's fields, this round's injection when it found one."""
    ev, i = done.evaluator, done.index
    if before is None:
        page = ev.documents(done.injection)[i] if done.injection else ev.category.products[i].document
        return Competitor(index=i, injection=done.injection, page=page, stopped_by=done.stopped_by, evaluator=ev,
                          method_report=done.method_report, rounds=[done])
    if not done.injection:
        return replace(before, rounds=[*before.rounds, done])
    return replace(before, injection=done.injection, page=ev.documents(done.injection)[i],
                   rounds=[*before.rounds, done])


def _measured(c: Competitor, stealth: Stealth | None) -> Competitor:
    """The competitor with its injection's stealth figures (when a stealth scorer is given)."""
    if stealth is None or not c.injection:
        return c
    clean = c.evaluator.category.products[c.index].document
    return replace(c, stealth=stealth.measure(c.injection, clean.text, c.page.text, c.evaluator.engine).to_json())


def joint_scores(ev: Evaluator, competitors: list[Competitor], orders: int, *,
                 round_one: list[Competitor] | None = None,
                 ) -> tuple[dict[str, dict[int, ScoreSummary]], dict[int | None, int]]:
    """Each competitor's scores on ``orders`` fresh orders with no injection, its own alone and
    all together (one answer each; an injection-free page is never asked twice), and how often
    each product is named first together (None: the answer could not be read). With
    ``round_one`` (the competitors after round 1), also all of those together
    (:data:`ROUND_ONE`), asked only where their injections differ from the final ones."""
    ev.target = None
    injected = [c for c in competitors if c.injection]
    early = None if round_one is None else [c for c in round_one if c.injection]
    same = early is not None and [(c.index, c.injection) for c in early] == [(c.index, c.injection) for c in injected]
    conditions = CONDITIONS if early is None else (*CONDITIONS, ROUND_ONE)
    read: dict[str, dict[int, list[int]]] = {cond: {c.index: [] for c in competitors} for cond in conditions}
    unread: dict[str, dict[int, list[str]]] = {cond: {c.index: [] for c in competitors} for cond in conditions}
    firsts: dict[int | None, int] = {}
    for k, order in enumerate(ev.fresh_orders("final", orders)):
        none = _ask(ev, f"final/none/order={k}", order, [], "final_none")
        alone = {c.index: _ask(ev, f"final/alone/product={c.index}/order={k}", order, [c], "final_alone")
                 if c.injection else none for c in competitors}
        together = _ask(ev, f"final/together/order={k}", order, injected, "final_together") if injected else none
        answers = [("baseline", none), ("together", together)]
        if early is not None:
            answers.append((ROUND_ONE, together if same else none if not early else
                            _ask(ev, f"final/together_round1/order={k}", order, early, "final_together_round1")))
        ranking = together[0]
        first = None if ranking is None else ranking[0] if ranking else -1  # -1: read, nobody listed
        firsts[first] = firsts.get(first, 0) + 1
        for c in competitors:
            for cond, (ranking, task) in (*answers, ("alone", alone[c.index])):
                score = ev.score(ranking, c.index)
                if score is None:
                    unread[cond][c.index].append(task)
                else:
                    read[cond][c.index].append(score)
    summaries = {cond: {i: ScoreSummary(read[cond][i], len(unread[cond][i]), ev.n,
                                        sum(t in ev.ambiguous_tasks for t in unread[cond][i]))
                        for i in read[cond]} for cond in conditions}
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
