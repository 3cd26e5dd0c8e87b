"""Isolate-then-aggregate for rankings, with a certificate.

``pairwise`` (kind "aggregation") asks the wrapped engine about every pair of products with
only those two pages in the context, in both orders (2·C(n,2) calls). A comparison is won
by the product the answer ranks above the other (or lists when the other is not listed);
an unreadable answer, or one that lists neither, has no winner. ``wins[a][b]`` counts the
comparisons (0-2) of a pair that a won; the per-opponent points are

* Borda-of-wins: ``points[a][b] = wins[a][b]``;
* Copeland (in half points): 2 when a won more of the pair's comparisons than b, 1 when
  as many, 0 when fewer;

and a product's score is its points summed over its opponents. Products are ordered by
score, ties by catalog index (lower first); a product no comparison answer lists is not
recommended (left out of the ranking, as an unlisted product is in a plain answer).

The certificate (proof in docs/defenses.md): a manipulated page is in the context only of
its own comparisons, so with a set M of manipulated products, an unmanipulated product's
score moves only through its points against M. For unmanipulated p ahead of q, with margin
D = P(p) - P(q) and δ_m = points[p][m] - points[q][m], the worst case over every M of at
most k′ products other than p and q and every outcome of their comparisons is
D - R, where R is the sum of the k′ largest values of 2 + δ_m. The pair keeps its order
whatever the manipulated pages say iff D - R > 0, or D - R = 0 and p has the lower index.
Since 2 + δ_m ≤ 4, a margin above 4k′ is always enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any, ClassVar, NamedTuple

from ..catalog import Category, Document
from ..engine import EngineResult, context_order
from ..ranking import Ranking
from ._aggregate import aggregate_ranking, model_calls, order_by_scores, read_sub, summary_text
from .base import DefendedResult, Defense, Param, combined_response, register_defense

Matrix = Sequence[Sequence[int]]


class Outcome(NamedTuple):
    """One comparison: products a < b, the one shown first, the winner (or None), whether the
    answer was read, and the products it lists (catalog indices)."""

    a: int
    b: int
    first: int
    won: int | None
    readable: bool
    listed: tuple[int, ...] = ()


# -- scores -----------------------------------------------------------------------------------------
def winner(ranking: Ranking) -> int | None:
    """The winner (0 or 1, sub-category indices) of one comparison, or None."""
    if not ranking.parseable or not ranking.order:
        return None
    return ranking.order[0]


def wins_matrix(n: int, outcomes: Sequence[tuple[int, int, int | None]]) -> list[list[int]]:
    """``wins[a][b]``: comparisons of a with b that a won, from (a, b, winner) triples."""
    wins = [[0] * n for _ in range(n)]
    for a, b, won in outcomes:
        if won is not None:
            wins[won][b if won == a else a] += 1
    return wins


def points_matrix(wins: Matrix, method: str) -> list[list[int]]:
    """Per-opponent points (0-2): the wins themselves (Borda) or Copeland half points."""
    n = len(wins)
    if method == "borda":
        return [list(row) for row in wins]
    return [[0 if a == b else 2 if wins[a][b] > wins[b][a] else 1 if wins[a][b] == wins[b][a] else 0
             for b in range(n)] for a in range(n)]


def totals(points: Matrix) -> list[int]:
    return [sum(row) for row in points]


def ahead(scores: Sequence[float], p: int, q: int) -> bool:
    """Whether p ranks above q: a higher score, or the same score and a lower index."""
    return scores[p] > scores[q] or (scores[p] == scores[q] and p < q)


# -- the certificate --------------------------------------------------------------------------------
def worst_shift(points: Matrix, p: int, q: int, k_prime: int) -> int:
    """R: how far k′ manipulated products can cut p's lead over q (the k′ largest 2 + δ_m)."""
    shifts = sorted((2 + points[p][m] - points[q][m] for m in range(len(points)) if m not in (p, q)),
                    reverse=True)
    return sum(shifts[:k_prime])


def certify(points: Matrix, k_prime: int) -> list[tuple[int, int]]:
    """The pairs (p, q), p ranked above q, whose order no k′ manipulated products other than p
    and q can change, whatever the outcomes of the comparisons they take part in."""
    scores = totals(points)
    certified = []
    for a, b in combinations(range(len(points)), 2):
        p, q = (a, b) if ahead(scores, a, b) else (b, a)
        slack = scores[p] - scores[q] - worst_shift(points, p, q, k_prime)
        if slack > 0 or (slack == 0 and p < q):
            certified.append((p, q))
    return certified


def certificate(points: Matrix, k_prime: int) -> dict[str, Any]:
    """Per answer: the certified pairs and their share; the top-1 is certified when its order
    against every other product is (no unmanipulated product can overtake it)."""
    n = len(points)
    pairs = certify(points, k_prime)
    top = order_by_scores(totals(points), listed_only=False)[0]
    against_top = sum(1 for p, _ in pairs if p == top)
    return {"k_prime": k_prime, "certified_pairs": [list(pq) for pq in pairs],
            "certified_share": len(pairs) / (n * (n - 1) // 2),
            "top1": top, "top1_certified": against_top == n - 1, "uniform_margin": 4 * k_prime}


# -- what detection defenses underneath flagged -----------------------------------------------------
def pair_detection(calls: Sequence[EngineResult], pairs: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """What detection defenses under pairwise flagged, in catalog indices (call k saw only the
    pages of ``pairs[k]``, as sub-category indices 0 and 1): the union of the flagged pages and,
    per detection defense, the union of its flags, its report on each page (the first one made)
    and its cost summed over the calls; nothing when no detection defense is underneath."""
    reports = [getattr(call, "report", {}) or {} for call in calls]
    if not any("flagged" in r for r in reports):
        return {}
    flagged: set[int] = set()
    merged: list[dict[str, Any]] = []
    for report, pair in zip(reports, pairs, strict=True):
        flagged.update(pair[i] for i in report.get("flagged", []))
        for j, detector in enumerate(report.get("detection", [])):
            if j == len(merged):
                merged.append({**detector, "flagged": set(), "pages": {}, "cost": {}})
            _merge_detector(merged[j], detector, pair)
    return {"flagged": sorted(flagged),
            "detection": [{**d, "flagged": sorted(d["flagged"]), "pages": [d["pages"][i] for i in sorted(d["pages"])]}
                          for d in merged]}


def _merge_detector(into: dict[str, Any], detector: dict[str, Any], pair: tuple[int, int]) -> None:
    """One call's report of one detection defense added to ``into``, its indices mapped to the catalog's."""
    into["flagged"].update(pair[i] for i in detector.get("flagged", []))
    for page in detector.get("pages", []):
        into["pages"].setdefault(pair[page["index"]], {**page, "index": pair[page["index"]]})
    for key, value in (detector.get("cost") or {}).items():
        into["cost"][key] = into["cost"].get(key, 0) + value


# -- the defense ------------------------------------------------------------------------------------
def sub_category(category: Category, a: int, b: int) -> Category:
    """The category restricted to products a and b (same name and query)."""
    return Category(name=category.name, query=category.query,
                    products=(category.products[a], category.products[b]))


@register_defense
class Pairwise(Defense):
    name = "pairwise"
    kind = "aggregation"
    summary = ("asks about every pair of products with only their two pages, both orders, and aggregates "
               "(Borda of wins or Copeland) with a certificate against k′ manipulated pages")
    params: ClassVar[dict[str, Param]] = {
        "method": Param(str, "borda", "how the comparisons are aggregated", choices=("borda", "copeland")),
        "k_prime": Param(int, 1, "manipulated pages the certificate allows for", low=0, high=64),
    }

    def compare(self, category: Category, query: str, seed: int,
                documents: Sequence[Document] | None) -> tuple[list[EngineResult], list[Outcome]]:
        """Every pair in both orders: the calls, and per call (a, b, shown first, winner, readable)
        in catalog indices."""
        calls: list[EngineResult] = []
        outcomes: list[Outcome] = []
        for a, b in combinations(range(len(category.products)), 2):
            sub = sub_category(category, a, b)
            docs = [documents[a], documents[b]] if documents is not None else None
            for shown in ([0, 1], [1, 0]):
                call = self.inner.recommend(sub, query=query, seed=seed, order=shown, documents=docs)
                read = read_sub(call, sub.products, self.context.reader)
                won = winner(read)
                calls.append(call)
                listed = tuple((a, b)[i] for i in read.order) if read.parseable else ()
                outcomes.append(Outcome(a, b, (a, b)[shown[0]], None if won is None else (a, b)[won],
                                        read.parseable, listed))
        return calls, outcomes

    def recommend(self, category: Category, *, query: str | None = None, seed: int = 0,
                  order: Sequence[int] | None = None,
                  documents: Sequence[Document] | None = None) -> DefendedResult:
        query = query or category.default_query
        n = len(category.products)
        calls, outcomes = self.compare(category, query, seed, documents)
        ranking, report = self.aggregate(n, outcomes)
        report["model_calls"] = model_calls(calls)
        report.update(pair_detection(calls, [(o.a, o.b) for o in outcomes]))
        heading = (f"Aggregate of {len(calls)} pairwise comparisons "
                   f"({'Borda count of wins' if self.values['method'] == 'borda' else 'Copeland'}):")
        return DefendedResult(
            category=category.name, query=query, products=category.products,
            context_order=tuple(order) if order is not None else tuple(context_order(n, seed)),
            messages=calls[0].messages, config=calls[0].config,
            response=combined_response(calls, summary_text(heading, category.products, ranking.order)),
            template=calls[0].template, seed=seed, ranking=ranking, calls=tuple(calls), report=report,
        )

    def aggregate(self, n: int, outcomes: Sequence[Outcome]) -> tuple[Ranking, dict[str, Any]]:
        method = self.values["method"]
        wins = wins_matrix(n, [(o.a, o.b, o.won) for o in outcomes])
        points = points_matrix(wins, method)
        scores = totals(points)
        unreadable = sum(1 for o in outcomes if not o.readable)
        failed = f"all {len(outcomes)} comparisons were unreadable" if unreadable == len(outcomes) else None
        listed = {i for o in outcomes for i in o.listed}
        order = tuple(i for i in order_by_scores(scores, listed_only=False) if i in listed)
        ranking = aggregate_ranking(order, n, f"{self.name}:{method}({self.context.reader.name})", failed)
        report = {
            "aggregation": self.name, "method": method,
            "comparisons": [[o.a, o.b, o.first, o.won] for o in outcomes], "unreadable": unreadable,
            "undecided": sum(1 for o in outcomes if o.won is None),
            "wins": wins, "points": points, "scores": scores, "listed": sorted(listed),
            "certificate": certificate(points, self.values["k_prime"]),
        }
        return ranking, report
