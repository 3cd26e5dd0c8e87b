"""Bias-corrected percentile bootstrap over clusters (trials), optionally stratified (categories).

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


def _cluster_rows(clusters: Sequence[object] | np.ndarray,
                  strata: Sequence[object] | np.ndarray | None) -> list[list[np.ndarray]]:
    """Row indices per cluster, grouped by stratum."""
    keys = [str(c) for c in clusters]
    strat = [str(s) for s in strata] if strata is not None else [""] * len(keys)
    by_stratum: dict[str, dict[str, list[int]]] = {}
    for row, (s, c) in enumerate(zip(strat, keys, strict=True)):
        by_stratum.setdefault(s, {}).setdefault(c, []).append(row)
    return [[np.asarray(rows) for rows in groups.values()] for groups in by_stratum.values()]


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray | float],
    clusters: Sequence[object] | np.ndarray,
    *,
    strata: Sequence[object] | np.ndarray | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> list[Interval]:
    """Bias-corrected percentile intervals of ``statistic(rows)`` (a number or a vector)
    over ``n_boot`` resamples of whole clusters within strata.

    The bias correction matters for effect sizes such as eta squared, which resampling
    inflates: the interval is shifted by how far the replicates sit from the estimate.
    Non-finite replicates are left out; an interval with none finite is (nan, nan).
    """
    groups = _cluster_rows(clusters, strata)
    everything = np.concatenate([rows for stratum in groups for rows in stratum])
    estimate = np.atleast_1d(np.asarray(statistic(everything), dtype=float))
    rng = np.random.default_rng(seed if seed >= 0 else seed & 0xFFFF_FFFF_FFFF_FFFF)  # numpy takes no negative seed
    reps = []
    for _ in range(n_boot):
        picked = []
        for stratum in groups:
            for j in rng.integers(0, len(stratum), size=len(stratum)):
                picked.append(stratum[j])
        reps.append(np.atleast_1d(np.asarray(statistic(np.concatenate(picked)), dtype=float)))
    from scipy.stats import norm as _norm  # loaded on first use: `poise --help` never pays for it

    draws = np.vstack(reps)
    z = _norm.ppf([(1 - level) / 2, 1 - (1 - level) / 2])
    out = []
    for est, column in zip(estimate, draws.T, strict=True):
        finite = column[np.isfinite(column)]
        if len(finite) == 0 or not np.isfinite(est):
            out.append(Interval(float("nan"), float("nan"), level))
            continue
        below = (np.sum(finite < est) + 0.5 * np.sum(finite == est)) / len(finite)
        z0 = _norm.ppf(np.clip(below, 1 / (2 * len(finite)), 1 - 1 / (2 * len(finite))))
        low, high = np.quantile(finite, _norm.cdf(2 * z0 + z))
        out.append(Interval(float(low), float(high), level))
    return out
