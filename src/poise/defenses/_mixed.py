"""Mixing an accurate and a robust ranker (after MixedNUTS, Bai et al., TMLR 2024).

``mixed`` (kind "mixing") asks the engine twice over: self-consistency over ``k`` context
orders (the accurate full-context ranker) and the pairwise isolate-then-aggregate ranker
(the robust one). Per product it mixes

    S(p) = (1 - α) · a(p) + α · f(m(p)),

where a(p) ∈ [0, 1] is the accurate ranker's expected score (the mean over the readable
answers of the paper's score divided by n), m(p) = P(p) / (n - 1) - 1 ∈ [-1, 1] is the robust
ranker's margin (P its pairwise score, at most 2(n - 1)), and
f(m) = clip(s · sign(m) · |m|^p + c, 0, 1) the nonlinear transform (scale s, power p,
offset c). Products are ordered by S, ties by catalog index; those with S = 0 are not
recommended. With the defaults (s = c = 0.5, p = 1), α = 0 gives the self-consistency
(Borda) ranking and α = 1 the pairwise one.

:func:`mixed_certify` extends the pairwise certificate to the mix, and :func:`fit_mixing`
chooses (α, s, p, c) on a grid from recorded runs (no model call): the largest mean
certified share subject to clean top-1 agreement with the accurate ranker ≥ a target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, product
from typing import Any, ClassVar

from ..catalog import Category, Document
from ..engine import Recommender
from ._aggregate import SelfConsistency, aggregate_ranking, check_finite, order_by_scores, summary_text
from ._pairwise import Pairwise, ahead, totals
from .base import Context, DefendedResult, Defense, DefenseError, Param, combined_response, register_defense

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Transform:
    """f(m) = clip(scale · sign(m) · |m|^power + offset, 0, 1)."""

    scale: float = 0.5
    power: float = 1.0
    offset: float = 0.5

    def __call__(self, margin: float) -> float:
        raw = self.scale * math.copysign(abs(margin) ** self.power, margin) + self.offset
        return min(1.0, max(0.0, raw))


@dataclass(frozen=True)
class MixInput:
    """What the mix needs from one answer: the accurate expected scores and the pairwise points."""

    accurate: tuple[float, ...]
    points: tuple[tuple[int, ...], ...]
    reference_top1: int | None = None  # the clean reference; the accurate ranker's top-1 when None

    @property
    def n(self) -> int:
        return len(self.accurate)

    @classmethod
    def from_report(cls, report: Mapping[str, Any], reference_top1: int | None = None) -> MixInput:
        """From a stored ``mixed`` report (``meta["defense"]`` of a recorded answer)."""
        return cls(accurate=tuple(report["accurate_scores"]),
                   points=tuple(tuple(row) for row in report["pairwise"]["points"]),
                   reference_top1=reference_top1)

    def reference(self) -> int | None:
        if self.reference_top1 is not None:
            return self.reference_top1
        order = order_by_scores(self.accurate)
        return order[0] if order else None


def margins(scores: Sequence[int], n: int) -> list[float]:
    """The robust ranker's margins m = P / (n - 1) - 1 ∈ [-1, 1]."""
    return [s / (n - 1) - 1 for s in scores]


def mixed_scores(inp: MixInput, alpha: float, f: Transform) -> list[float]:
    m = margins(totals(inp.points), inp.n)
    return [(1 - alpha) * a + alpha * f(x) for a, x in zip(inp.accurate, m, strict=True)]


def mixed_certify(inp: MixInput, alpha: float, f: Transform, k_prime: int,
                  accurate_adversarial: bool = True) -> list[tuple[int, int]]:
    """The pairs (p, q), p mixed above q, that keep their order for every set M of at most k′
    manipulated products other than p and q: their pairwise comparisons take any outcome
    (p's points against M fall to 0, q's rise to 2, which f, being non-decreasing, makes
    the worst case), and, when ``accurate_adversarial``, the full-context answers say
    anything too (a(p) = 0, a(q) = 1). Exact for the pairwise part; ties count as broken
    (conservative: a worst case within 1e-9 of a tie is not certified)."""
    n, points = inp.n, inp.points
    scores, base = totals(points), mixed_scores(inp, alpha, f)
    certified = []
    for a, b in combinations(range(n), 2):
        p, q = (a, b) if ahead(base, a, b) else (b, a)
        others = [m for m in range(n) if m not in (p, q)]
        accurate = -1.0 if accurate_adversarial else inp.accurate[p] - inp.accurate[q]
        worst = math.inf
        for chosen in combinations(others, min(k_prime, len(others))):
            low = scores[p] - sum(points[p][m] for m in chosen)
            high = scores[q] + sum(2 - points[q][m] for m in chosen)
            robust = f(low / (n - 1) - 1) - f(high / (n - 1) - 1)
            worst = min(worst, (1 - alpha) * accurate + alpha * robust)
        if worst > TOLERANCE:
            certified.append((p, q))
    return certified


# -- fitting ----------------------------------------------------------------------------------------
ALPHAS = tuple(i / 10 for i in range(11))
SCALES = (0.5, 1.0, 2.0, 4.0)
POWERS = (0.5, 1.0, 2.0)
OFFSETS = (0.5,)


@dataclass(frozen=True)
class MixingFit:
    """The chosen parameters, what they achieve on the calibration runs, and the trade-off curve
    (per α: the best robustness among transforms that meet the target, else the best agreement)."""

    alpha: float
    scale: float
    power: float
    offset: float
    clean_agreement: float
    robustness: float
    curve: list[dict[str, Any]] = field(default_factory=list)

    def params(self) -> dict[str, float]:
        return {"alpha": self.alpha, "scale": self.scale, "power": self.power, "offset": self.offset}


def evaluate_mix(runs: Sequence[MixInput], alpha: float, f: Transform, k_prime: int,
                 accurate_adversarial: bool = True) -> tuple[float, float]:
    """(clean top-1 agreement with each run's reference, mean certified share) over the runs."""
    agree = robust = 0.0
    for inp in runs:
        order = order_by_scores(mixed_scores(inp, alpha, f))
        agree += (order[0] if order else None) == inp.reference()
        pairs = inp.n * (inp.n - 1) // 2
        robust += len(mixed_certify(inp, alpha, f, k_prime, accurate_adversarial)) / pairs
    return agree / len(runs), robust / len(runs)


def fit_mixing(calibration_runs: Iterable[MixInput | Mapping[str, Any]], target_clean_agreement: float, *,
               k_prime: int = 1, accurate_adversarial: bool = True, alphas: Sequence[float] = ALPHAS,
               scales: Sequence[float] = SCALES, powers: Sequence[float] = POWERS,
               offsets: Sequence[float] = OFFSETS) -> MixingFit:
    """Choose (α, s, p, c) on the grid: the largest mean certified share for k′ manipulated
    pages (:func:`mixed_certify`) among settings whose clean top-1 agreement with the
    reference is at least ``target_clean_agreement``; ties go to higher agreement, then to
    smaller α. Uses recorded scores only (no model call). α = 0 always agrees with the
    accurate ranker, so with the default reference some setting is always feasible; when
    none is, the setting with the best agreement is returned."""
    runs = [r if isinstance(r, MixInput) else MixInput.from_report(r) for r in calibration_runs]
    if not runs:
        raise DefenseError("fit_mixing needs at least one calibration run")
    if not 0 <= target_clean_agreement <= 1:
        raise DefenseError(f"target clean agreement {target_clean_agreement!r} is not in [0, 1]")
    rows = []
    for alpha, s, p, c in product(alphas, scales, powers, offsets):
        agree, robust = evaluate_mix(runs, alpha, Transform(s, p, c), k_prime, accurate_adversarial)
        rows.append({"alpha": alpha, "scale": s, "power": p, "offset": c, "clean_agreement": agree,
                     "robustness": robust, "feasible": agree >= target_clean_agreement - TOLERANCE})

    def key(row: dict[str, Any]) -> tuple[bool, float, float, float]:
        return (row["feasible"], row["robustness"] if row["feasible"] else 0.0, row["clean_agreement"], -row["alpha"])

    best = max(rows, key=key)
    curve = [max((r for r in rows if r["alpha"] == alpha), key=key) for alpha in alphas]
    return MixingFit(best["alpha"], best["scale"], best["power"], best["offset"], best["clean_agreement"],
                     best["robustness"], curve)


# -- the defense ------------------------------------------------------------------------------------
@register_defense
class Mixed(Defense):
    name = "mixed"
    kind = "mixing"
    summary = ("mixes self-consistency's expected scores with the pairwise ranker's margins through a "
               "nonlinear transform (after MixedNUTS)")
    params: ClassVar[dict[str, Param]] = {
        "alpha": Param(float, 0.5, "weight of the robust (pairwise) ranker", low=0.0, high=1.0),
        "scale": Param(float, 0.5, "scale s of the transform of the pairwise margins", low=0.0, high=100.0),
        "power": Param(float, 1.0, "power p of the transform", low=0.05, high=20.0),
        "offset": Param(float, 0.5, "offset c of the transform", low=-1.0, high=2.0),
        "k": Param(int, 5, "context orders of the accurate (self-consistency) ranker", low=1, high=64),
        "method": Param(str, "borda", "aggregation of the pairwise ranker", choices=("borda", "copeland")),
        "k_prime": Param(int, 1, "manipulated pages the certificate allows for", low=0, high=64),
    }

    def __init__(self, inner: Recommender, context: Context | None = None, **values: Any) -> None:
        super().__init__(inner, context, **values)
        check_finite(self)
        v = self.values
        self.accurate = SelfConsistency(inner, self.context, k=v["k"], method="borda")
        self.robust = Pairwise(inner, self.context, method=v["method"], k_prime=v["k_prime"])
        self.transform = Transform(v["scale"], v["power"], v["offset"])

    def recommend(self, category: Category, *, query: str | None = None, seed: int = 0,
                  order: Sequence[int] | None = None,
                  documents: Sequence[Document] | None = None) -> DefendedResult:
        query = query or category.default_query
        n = len(category.products)
        acc = self.accurate.recommend(category, query=query, seed=seed, order=order, documents=documents)
        rob = self.robust.recommend(category, query=query, seed=seed, order=order, documents=documents)
        readable = len(acc.report["orders"]) - acc.report["unreadable"]
        accurate = tuple(s / (n * readable) if readable else 0.0 for s in acc.report["scores"])
        inp = MixInput(accurate=accurate, points=tuple(tuple(row) for row in rob.report["points"]))
        alpha = self.values["alpha"]
        scores = mixed_scores(inp, alpha, self.transform)
        # both sub-defenses aggregate, so each result carries its ranking
        assert acc.ranking is not None and rob.ranking is not None
        failed = None if acc.ranking.parseable or rob.ranking.parseable else "every sub-answer was unreadable"
        listed = set(acc.ranking.order) if alpha < 1 else set()
        listed |= set(rob.ranking.order) if alpha > 0 else set()
        order = tuple(i for i in order_by_scores(scores, listed_only=False) if i in listed)
        ranking = aggregate_ranking(order, n, f"{self.name}({self.context.reader.name})", failed)
        k_prime = self.values["k_prime"]
        pairs = mixed_certify(inp, alpha, self.transform, k_prime)
        calls = (*acc.calls, *rob.calls)
        report = {
            "aggregation": self.name, **{k: self.values[k] for k in ("alpha", "scale", "power", "offset")},
            "accurate_scores": list(accurate), "robust_margins": [round(m, 6) for m in margins(totals(inp.points), n)],
            "mixed_scores": [round(s, 6) for s in scores],
            "certificate": {"k_prime": k_prime, "certified_pairs": [list(pq) for pq in pairs],
                            "certified_share": len(pairs) / (n * (n - 1) // 2)},
            "self_consistency": acc.report, "pairwise": rob.report,
            "model_calls": acc.report["model_calls"] + rob.report["model_calls"],
        }
        heading = f"Mix of self-consistency and pairwise rankings (alpha={alpha:g}):"
        return DefendedResult(
            category=category.name, query=query, products=category.products,
            context_order=acc.context_order, messages=acc.messages, config=acc.config,
            response=combined_response(calls, summary_text(heading, category.products, ranking.order)),
            template=acc.template, seed=seed, ranking=ranking, calls=calls, report=report,
        )
