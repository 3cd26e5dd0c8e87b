"""Percentile bootstrap over clusters (trials), optionally stratified (categories).

Records of one trial share a response, so their scores are not independent: the
bootstrap resamples whole trials, within each stratum, and recomputes the statistic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float = 0.95


def _cluster_rows(clusters: Sequence[object], strata: Sequence[object] | None) -> list[list[np.ndarray]]:
    """Row indices per cluster, grouped by stratum."""
    keys = [str(c) for c in clusters]
    strat = [str(s) for s in strata] if strata is not None else [""] * len(keys)
    by_stratum: dict[str, dict[str, list[int]]] = {}
    for row, (s, c) in enumerate(zip(strat, keys)):
        by_stratum.setdefault(s, {}).setdefault(c, []).append(row)
    return [[np.asarray(rows) for rows in groups.values()] for groups in by_stratum.values()]


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray | float],
    clusters: Sequence[object],
    *,
    strata: Sequence[object] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> list[Interval]:
    """Percentile intervals of ``statistic(rows)`` (a number or a vector) over ``n_boot``
    resamples of whole clusters within strata. Non-finite replicates are left out of the
    percentiles; an interval with none finite is (nan, nan)."""
    groups = _cluster_rows(clusters, strata)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        picked = []
        for stratum in groups:
            for j in rng.integers(0, len(stratum), size=len(stratum)):
                picked.append(stratum[j])
        reps.append(np.atleast_1d(np.asarray(statistic(np.concatenate(picked)), dtype=float)))
    draws = np.vstack(reps)
    alpha = (1 - level) / 2
    out = []
    for column in draws.T:
        finite = column[np.isfinite(column)]
        if len(finite) == 0:
            out.append(Interval(float("nan"), float("nan"), level))
        else:
            low, high = np.quantile(finite, [alpha, 1 - alpha])
            out.append(Interval(float(low), float(high), level))
    return out
