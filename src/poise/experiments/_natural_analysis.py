"""What drives the rankings of a natural run: F-tests, effect sizes, position bias.

Read back from the store, every parseable trial gives one record per product:
(product, document, context position, score). Per category the analysis reports the
paper's one-way F of each factor, a joint main-effects ANOVA (Type II) with partial eta
squared, bootstrap intervals over trials, the position-bias curve and the product x
position mean-score table. Pooled over categories, products and documents are levels
within their category and the one-way tests are taken within categories.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ranking import status_of_reason
from ..stats import FTest, Interval, bootstrap, one_way, type2
from ..store import Store

FACTORS = ("product", "document", "position")
POOLED = "pooled"


@dataclass(frozen=True)
class NaturalRecords:
    """Columns of per-product records of parseable trials (one row per product per trial)."""

    category: np.ndarray
    trial: np.ndarray
    product: np.ndarray
    document: np.ndarray
    position: np.ndarray
    score: np.ndarray
    names: dict[str, list[str]]  # category -> product names, catalog order
    unparseable: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    ambiguous: Counter[str] = field(default_factory=Counter)  # counted apart from unparseable
    reasons: dict[str, Counter[str]] = field(default_factory=dict)  # category -> why answers went unread

    def __len__(self) -> int:
        return len(self.score)

    def subset(self, rows: np.ndarray) -> NaturalRecords:
        return NaturalRecords(self.category[rows], self.trial[rows], self.product[rows],
                              self.document[rows], self.position[rows], self.score[rows], self.names,
                              self.unparseable, self.failed, self.ambiguous, self.reasons)

    def for_category(self, name: str) -> NaturalRecords:
        return self.subset(np.nonzero(self.category == name)[0])


def natural_records(store: Store, run_id: str) -> NaturalRecords:
    """The records of a natural run, read from the store."""
    rows = store.scores(run_id)
    cols: dict[str, list[Any]] = {k: [] for k in ("category", "trial", "product", "document", "position", "score")}
    names: dict[str, dict[int, str]] = {}
    for row in rows:
        meta = json.loads(row["meta_json"] or "{}")
        if meta.get("experiment") != "natural":
            continue
        i = row["product_index"]
        cols["category"].append(row["category"])
        cols["trial"].append(row["task_key"])
        cols["product"].append(i)
        cols["document"].append(meta["assignment"][i])
        cols["position"].append(row["position"])
        cols["score"].append(row["score"])
        names.setdefault(row["category"], {})[i] = f"{row['brand']} {row['model']}"
    unparseable: Counter[str] = Counter()
    ambiguous: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    failed: Counter[str] = Counter()
    calls = store.calls(run_id)
    done = {c["task_key"] for c in calls if c["error"] is None}
    for c in calls:
        if c["error"] is None and c["parseable"] == 0:
            reason = (c["unparseable_reason"] or "unparseable").split(" (")[0]  # the kind, not the details
            (ambiguous if status_of_reason(reason) == "ambiguous" else unparseable)[c["category"]] += 1
            reasons.setdefault(c["category"], Counter())[reason] += 1
        elif c["error"] is not None and c["task_key"] not in done:
            failed[c["category"]] += 1
    return NaturalRecords(
        category=np.asarray(cols["category"], dtype=object), trial=np.asarray(cols["trial"], dtype=object),
        product=np.asarray(cols["product"], dtype=int), document=np.asarray(cols["document"], dtype=int),
        position=np.asarray(cols["position"], dtype=int), score=np.asarray(cols["score"], dtype=float),
        names={c: [by[i] for i in sorted(by)] for c, by in names.items()},
        unparseable=unparseable, failed=failed, ambiguous=ambiguous, reasons=reasons,
    )


@dataclass(frozen=True)
class Analysis:
    """The analysis of one category (or of all, pooled)."""

    category: str
    trials: int
    unparseable: int
    failed: int
    products: list[str]
    one_way: dict[str, FTest]
    one_way_ci: dict[str, Interval]  # of eta squared (partial, within categories, when pooled)
    joint: dict[str, FTest]
    joint_eta_ci: dict[str, Interval]
    position_curve: list[float]  # mean score at context position 1..n
    position_curve_ci: list[Interval]
    heatmap: list[list[float]] | None  # mean score, product (rows) x position (columns)
    ambiguous: int = 0  # answers the reader could read more than one way, left out like unparseable ones
    unread_reasons: dict[str, int] = field(default_factory=dict)  # why answers were left out, with counts

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if not math.isfinite(x) else round(x, 6)

        def pval(x: float) -> float | None:  # three significant digits, however small
            return None if not math.isfinite(x) else float(f"{x:.3g}")

        def test(t: FTest) -> dict[str, Any]:
            return {"f": num(t.f), "df": [t.df_effect, t.df_resid], "p": pval(t.p),
                    "eta_sq" if t is self.one_way.get(t.factor) else "partial_eta_sq": num(t.partial_eta_sq)}

        def ci(i: Interval) -> list[float | None]:
            return [num(i.low), num(i.high)]

        return {
            "trials": self.trials, "unparseable": self.unparseable, "ambiguous": self.ambiguous,
            "unread_reasons": self.unread_reasons, "failed": self.failed,
            **{f"f_{k}": num(self.one_way[k].f) for k in FACTORS},
            "one_way": {k: {**test(self.one_way[k]), "eta_sq_ci95": ci(self.one_way_ci[k])} for k in FACTORS},
            "joint_anova": {k: {**test(self.joint[k]), "partial_eta_sq_ci95": ci(self.joint_eta_ci[k])}
                            for k in FACTORS},
            "position_curve": [{"position": p, "mean_score": num(m), "ci95": ci(c)} for p, (m, c)
                               in enumerate(zip(self.position_curve, self.position_curve_ci, strict=True), start=1)],
            "products": self.products,
            "heatmap": None if self.heatmap is None else [[num(v) for v in row] for row in self.heatmap],
        }


def _levels(r: NaturalRecords, pooled: bool) -> dict[str, np.ndarray]:
    if not pooled:
        return {"product": r.product, "document": r.document, "position": r.position}
    cat = r.category.astype(str)
    return {"product": np.char.add(np.char.add(cat, "|"), r.product.astype(str)),
            "document": np.char.add(np.char.add(cat, "|"), r.document.astype(str)),
            "position": r.position}


def _tests(r: NaturalRecords, pooled: bool) -> tuple[dict[str, FTest], dict[str, FTest]]:
    levels = _levels(r, pooled)
    block = r.category if pooled else None
    ones = {k: one_way(r.score, levels[k], name=k, block=block) for k in FACTORS}
    return ones, type2(r.score, levels, block=block)


def _curve(r: NaturalRecords, n: int) -> np.ndarray:
    sums = np.bincount(r.position - 1, weights=r.score, minlength=n)[:n]
    counts = np.bincount(r.position - 1, minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def analyse(r: NaturalRecords, category: str, *, n_boot: int = 1000, seed: int = 0) -> Analysis:
    """The analysis of one category's records, or of all records when ``category`` is 'pooled'."""
    pooled = category == POOLED
    if not pooled:
        r = r.for_category(category)
    n = int(r.position.max()) if len(r) else 0
    if not len(r):  # every answer of the category was unreadable or failed: counts, no statistics
        ones = joint = {k: FTest(k, math.nan, 0, 0, math.nan, math.nan, math.nan) for k in FACTORS}
    else:
        ones, joint = _tests(r, pooled)

    def stat(rows: np.ndarray) -> np.ndarray:
        # effect sizes and the curve; F is a test statistic and gets its exact p-value instead
        sub = r.subset(rows)
        levels, block = _levels(sub, pooled), sub.category if pooled else None
        values = [one_way(sub.score, levels[k], block=block).partial_eta_sq for k in FACTORS]
        if not pooled:  # the pooled joint model is too large to refit a thousand times
            j = type2(sub.score, levels)
            values += [j[k].partial_eta_sq for k in FACTORS]
        else:
            values += [math.nan] * 3
        return np.array(values + list(_curve(sub, n)))

    if len(r) and n_boot > 0:
        intervals = bootstrap(stat, r.trial, strata=r.category if pooled else None, n_boot=n_boot, seed=seed)
    else:
        intervals = [Interval(math.nan, math.nan)] * (6 + n)
    heatmap = None
    if not pooled and len(r):
        table = np.full((n, n), np.nan)
        for i in range(n):
            for p in range(n):
                hit = (r.product == i) & (r.position == p + 1)
                if hit.any():
                    table[i, p] = float(r.score[hit].mean())
        heatmap = table.tolist()
    trials = len(set(r.trial.tolist()))
    return Analysis(
        category=category, trials=trials,
        unparseable=sum(r.unparseable.values()) if pooled else r.unparseable[category],
        failed=sum(r.failed.values()) if pooled else r.failed[category],
        products=[] if pooled else r.names.get(category, []),
        one_way=ones, one_way_ci=dict(zip(FACTORS, intervals[:3], strict=True)),
        joint=joint, joint_eta_ci=dict(zip(FACTORS, intervals[3:6], strict=True)),
        position_curve=[float(x) for x in _curve(r, n)], position_curve_ci=intervals[6:],
        heatmap=heatmap,
        ambiguous=sum(r.ambiguous.values()) if pooled else r.ambiguous[category],
        unread_reasons=dict(sum(r.reasons.values(), Counter()) if pooled else r.reasons.get(category, Counter())),
    )


def analyse_natural(r: NaturalRecords, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Analysis]:
    """Every category of a natural run, then 'pooled' when there is more than one."""
    # a category whose answers were all unreadable still shows, with its counts
    cats = sorted(set(r.category.tolist()) | set(r.unparseable) | set(r.ambiguous) | set(r.failed))
    out = {c: analyse(r, c, n_boot=n_boot, seed=seed) for c in cats}
    if len(cats) > 1:
        out[POOLED] = analyse(r, POOLED, n_boot=n_boot, seed=seed)
    return out
