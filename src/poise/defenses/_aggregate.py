"""Permutation self-consistency: ask the engine under k context orders and aggregate.

``self-consistency`` (kind "aggregation") asks the wrapped engine under ``k`` context orders
and aggregates the rankings read from the answers by the Borda count (the paper's score:
the j-th of n listed scores n - j + 1, unlisted 0, summed) or by the Kemeny median. It
also removes position bias: the orders form a cyclic design (see :func:`balanced_orders`),
so with k = n every product sits at every position exactly once.

The helpers here (reading a sub-answer, ordering by scores, the summary text) are shared by
the pairwise and mixing defenses.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any, ClassVar

from ..catalog import Category, Document, Product
from ..engine import EngineResult, context_order
from ..ranking import Ranking, RankingReader, scores_from_order
from .base import DefendedResult, Defense, DefenseError, Param, combined_response, register_defense

#: The Kemeny median is found exactly (dynamic programming over subsets, O(2^n n^2)) up to
#: this many products; above it, by local search from the Borda order.
EXACT_KEMENY_MAX = 10


# -- shared helpers ---------------------------------------------------------------------------------
def check_finite(defense: Defense) -> None:
    """Reject NaN and infinite float parameters (they pass every range check)."""
    for key, value in defense.values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise DefenseError(f"defense {defense.name!r}: {key}={value!r} is not a finite number")


def read_sub(result: EngineResult, products: Sequence[Product], reader: RankingReader) -> Ranking:
    """The ranking of one sub-answer: an aggregating engine underneath gives its own."""
    ranking = getattr(result, "ranking", None)
    return ranking if ranking is not None else reader.read(result.response.text, products,
                                                           context=result.context_order)


def model_calls(results: Sequence[EngineResult]) -> int:
    """How many model calls the results took (a nested aggregating engine counts its own)."""
    total = 0
    for r in results:
        report = getattr(r, "report", {}) or {}
        total += int(report.get("model_calls", 0)) or len(getattr(r, "calls", ())) or 1
    return total


def inner_detection(results: Sequence[EngineResult]) -> dict[str, Any]:
    """What detection defenses under an aggregating one flagged (catalog indices, every call
    seeing the same pages): the union of flagged pages and the first call's per-page reports;
    nothing when no detection defense is underneath."""
    reports = [getattr(r, "report", {}) or {} for r in results]
    if not any("flagged" in r for r in reports):
        return {}
    return {"flagged": sorted({i for r in reports for i in r.get("flagged", [])}),
            "detection": next((r["detection"] for r in reports if r.get("detection")), [])}


def order_by_scores(scores: Sequence[float], listed_only: bool = True) -> tuple[int, ...]:
    """Product indices best first: higher score first, ties by catalog index (lower first);
    with ``listed_only`` the products scoring 0 or less are left out (not recommended)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return tuple(i for i in order if scores[i] > 0 or not listed_only)


def summary_text(heading: str, products: Sequence[Product], order: Sequence[int]) -> str:
    """A readable answer for an aggregate: a heading and a numbered list the reader reads back."""
    if not order:
        return f"{heading}\nNo product could be ranked."
    return "\n".join([heading, *(f"{j}. {products[i].name}" for j, i in enumerate(order, start=1))])


def aggregate_ranking(order: Sequence[int], n: int, reader: str, failed: str | None = None) -> Ranking:
    """The aggregate as a :class:`Ranking`; unparseable (``failed`` says why) when no sub-answer was read."""
    if failed is not None:
        return Ranking(order=(), n=n, reason=failed, reader=reader)
    return Ranking(order=tuple(order), n=n, reader=reader)


def sub_seed(seed: int, block: int, salt: str = "self-consistency") -> int:
    """A deterministic seed derived from ``seed`` (same orders on every rerun)."""
    return zlib.crc32(f"{salt}:{seed}:{block}".encode())


def balanced_orders(n: int, k: int, seed: int, first: Sequence[int] | None = None) -> list[list[int]]:
    """``k`` distinct context orders (all n! when fewer), derived only from ``seed``.

    Blocks of cyclic rotations: the first block rotates ``first`` (the plain engine's order
    for the seed unless given), later blocks rotate orders drawn from derived seeds. Within a
    block of m orders the rotations are spread evenly (shift ⌊j·n/m⌋), so with k = n every
    product appears at every position exactly once and a purely positional bias cancels.
    """
    limit = min(k, math.factorial(n))
    orders: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    block = 0
    while len(orders) < limit and block < 10_000:
        if block == 0:
            base = list(first) if first is not None else context_order(n, seed)
        else:
            base = context_order(n, sub_seed(seed, block))
        m = min(n, limit - len(orders))
        for j in range(m):
            shift = j * n // m
            rotated = tuple(base[shift:] + base[:shift])
            if rotated not in seen:
                seen.add(rotated)
                orders.append(list(rotated))
        block += 1
    return orders


# -- aggregation rules ------------------------------------------------------------------------------
def borda(rankings: Sequence[Ranking], n: int) -> list[int]:
    """Summed paper scores (n - j + 1 for the j-th listed, 0 unlisted) per product."""
    totals = [0] * n
    for ranking in rankings:
        for i, s in enumerate(scores_from_order(ranking.order, n)):
            totals[i] += s
    return totals


def preferences(rankings: Sequence[Ranking], n: int) -> list[list[int]]:
    """``W[a][b]``: how many rankings put a above b (a listed product is above an unlisted one;
    two unlisted products are not compared)."""
    w = [[0] * n for _ in range(n)]
    for ranking in rankings:
        position = {i: j for j, i in enumerate(ranking.order)}
        for a in range(n):
            for b in range(n):
                if a != b and a in position and position[a] < position.get(b, n):
                    w[a][b] += 1
    return w


def agreement(w: Sequence[Sequence[int]], order: Sequence[int]) -> int:
    """Kemeny's objective: the pairwise preferences a full order agrees with."""
    return sum(w[a][b] for x, a in enumerate(order) for b in order[x + 1:])


def kemeny_exact(w: Sequence[Sequence[int]]) -> list[int]:
    """A full order maximising :func:`agreement`, by dynamic programming over the set of
    products placed first: best[T] = max over x in T of best[T - x] + Σ_{y ∉ T} W[x][y]."""
    n = len(w)
    size = 1 << n
    best = [-1] * size
    last = [-1] * size
    best[0] = 0
    for placed in range(size):
        if best[placed] < 0:
            continue
        for x in range(n):
            if placed >> x & 1:
                continue
            grown = placed | 1 << x
            gain = best[placed] + sum(w[x][y] for y in range(n) if not grown >> y & 1)
            if gain > best[grown]:
                best[grown], last[grown] = gain, x
    order: list[int] = []
    placed = size - 1
    while placed:
        order.append(last[placed])
        placed ^= 1 << last[placed]
    return order[::-1]


def kemeny_local(w: Sequence[Sequence[int]], start: Sequence[int]) -> list[int]:
    """Local search from ``start``: move one product to another position while that raises the
    agreement (best move first); stops at a local optimum, never below ``start``."""
    order = list(start)
    score = agreement(w, order)
    while True:
        best_move, best_score = None, score
        for i in range(len(order)):
            rest = order[:i] + order[i + 1:]
            for j in range(len(order)):
                if j == i:
                    continue
                candidate = [*rest[:j], order[i], *rest[j:]]
                value = agreement(w, candidate)
                if value > best_score:
                    best_move, best_score = candidate, value
        if best_move is None:
            return order
        order, score = best_move, best_score


def kemeny(rankings: Sequence[Ranking], n: int) -> tuple[list[int], dict[str, Any]]:
    """The Kemeny median of partial rankings (exact up to :data:`EXACT_KEMENY_MAX` products)."""
    w = preferences(rankings, n)
    exact = n <= EXACT_KEMENY_MAX
    order = kemeny_exact(w) if exact else kemeny_local(w, order_by_scores(borda(rankings, n), listed_only=False))
    possible = sum(w[a][b] + w[b][a] for a in range(n) for b in range(a + 1, n))
    return order, {"exact": exact, "agreement": agreement(w, order), "comparisons": possible}


# -- the defense ------------------------------------------------------------------------------------
@register_defense
class SelfConsistency(Defense):
    name = "self-consistency"
    kind = "aggregation"
    summary = "asks under k context orders and aggregates the rankings (Borda count or Kemeny median)"
    params: ClassVar[dict[str, Param]] = {
        "k": Param(int, 5, "how many context orders to ask under", low=1, high=64),
        "method": Param(str, "borda", "how the rankings are aggregated", choices=("borda", "kemeny")),
    }

    def recommend(self, category: Category, *, query: str | None = None, seed: int = 0,
                  order: Sequence[int] | None = None,
                  documents: Sequence[Document] | None = None) -> DefendedResult:
        query = query or category.default_query
        n = len(category.products)
        orders = balanced_orders(n, self.values["k"], seed, order)
        calls = [self.inner.recommend(category, query=query, seed=seed, order=o, documents=documents)
                 for o in orders]
        subs = [read_sub(c, category.products, self.context.reader) for c in calls]
        readable = [r for r in subs if r.parseable]
        aggregate, details = self.aggregate(readable, n)
        method = self.values["method"]
        failed = None if readable else f"all {len(subs)} sub-answers were unreadable"
        ranking = aggregate_ranking(aggregate, n, f"{self.name}:{method}({self.context.reader.name})", failed)
        heading = (f"Aggregate of {len(readable)} of {len(calls)} answers under different context orders "
                   f"({'Borda count' if method == 'borda' else 'Kemeny median'}):")
        report = {
            "aggregation": self.name, "method": method, "orders": orders,
            "sub_rankings": [list(r.order) if r.parseable else None for r in subs],
            "unreadable": len(subs) - len(readable), "model_calls": model_calls(calls), **details,
            **inner_detection(calls),
        }
        return DefendedResult(
            category=category.name, query=query, products=category.products,
            context_order=tuple(orders[0]), messages=calls[0].messages, config=calls[0].config,
            response=combined_response(calls, summary_text(heading, category.products, ranking.order)),
            template=calls[0].template, seed=seed, ranking=ranking, calls=tuple(calls), report=report,
        )

    def aggregate(self, readable: Sequence[Ranking], n: int) -> tuple[tuple[int, ...], dict[str, Any]]:
        """The aggregate order (products listed by at least one answer) and the scores behind it."""
        scores = borda(readable, n)
        if self.values["method"] == "borda":
            return order_by_scores(scores), {"scores": scores}
        order, details = kemeny(readable, n)
        listed = {i for r in readable for i in r.order}
        return tuple(i for i in order if i in listed), {"scores": scores, "kemeny": details}
