"""Exact F-tests for factorial records, by least squares on dummy-coded factors.

Everything here is computed from nested linear models, so one routine gives the paper's
one-way F, a one-way F within blocks (pooled over categories) and the Type II tests of a
joint main-effects model; ``tests/test_stats.py`` checks each against statsmodels' OLS +
anova_lm to 1e-9. The numpy route is what the bootstrap runs a thousand times, cheaply.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Factor = Sequence[object] | np.ndarray


@dataclass(frozen=True)
class FTest:
    """One F-test of a factor: statistic, degrees of freedom, p-value, effect size.

    ``partial_eta_sq`` is SS_effect / (SS_effect + SS_residual). When the residual sum of
    squares is zero F is infinite (or undefined when the effect is zero too: nan).
    """

    factor: str
    f: float
    df_effect: int
    df_resid: int
    p: float
    ss_effect: float
    ss_resid: float

    @property
    def partial_eta_sq(self) -> float:
        total = self.ss_effect + self.ss_resid
        return self.ss_effect / total if total > 0 else math.nan


def _codes(levels: Factor) -> np.ndarray:
    arr = np.asarray(levels)
    if arr.dtype.kind not in "iub":
        arr = arr.astype(str)
    _, codes = np.unique(arr, return_inverse=True)
    return codes.ravel()


def _dummies(levels: Factor) -> np.ndarray:
    """Treatment-coded columns of one factor (first level dropped)."""
    codes = _codes(levels)
    k = int(codes.max()) + 1 if len(codes) else 0
    out = np.zeros((len(codes), max(k - 1, 0)))
    rows = np.nonzero(codes > 0)[0]
    out[rows, codes[rows] - 1] = 1.0
    return out


def _design(n: int, factors: Sequence[np.ndarray]) -> np.ndarray:
    return np.column_stack([np.ones(n), *factors]) if factors else np.ones((n, 1))


def _fit(y: np.ndarray, x: np.ndarray) -> tuple[float, int]:
    """Residual sum of squares and rank of the least-squares fit of y on x (QR with column
    pivoting: rank-revealing, as nested factors make the design rank-deficient)."""
    from scipy import linalg  # loaded on first use: `poise --help` never pays for it

    beta, _, rank, _ = linalg.lstsq(x, y, lapack_driver="gelsy", check_finite=False)
    resid = y - x @ beta
    return float(resid @ resid), int(rank)


def _group_fit(y: np.ndarray, codes: np.ndarray) -> tuple[float, int]:
    """The same for a model of one factor's cell means: no solver needed."""
    k = int(codes.max()) + 1
    counts = np.bincount(codes, minlength=k)
    means = np.bincount(codes, weights=y, minlength=k) / np.maximum(counts, 1)
    resid = y - means[codes]
    return float(resid @ resid), int((counts > 0).sum())


def _f_test(name: str, y: np.ndarray, full: np.ndarray | tuple[float, int],
            reduced: np.ndarray | tuple[float, int]) -> FTest:
    rss_full, rank_full = full if isinstance(full, tuple) else _fit(y, full)
    rss_reduced, rank_reduced = reduced if isinstance(reduced, tuple) else _fit(y, reduced)
    df_effect = rank_full - rank_reduced
    df_resid = len(y) - rank_full
    ss_effect = max(rss_reduced - rss_full, 0.0)
    # round-off: a residual this small against the data's scale is zero
    scale = float(y @ y) or 1.0
    if rss_full <= 1e-12 * scale:
        rss_full = 0.0
    if ss_effect <= 1e-12 * scale:
        ss_effect = 0.0
    if df_effect <= 0 or df_resid <= 0:
        return FTest(name, math.nan, df_effect, df_resid, math.nan, ss_effect, rss_full)
    if rss_full == 0.0:
        f = math.inf if ss_effect > 0 else math.nan
        p = 0.0 if ss_effect > 0 else math.nan
        return FTest(name, f, df_effect, df_resid, p, ss_effect, rss_full)
    from scipy import special

    f = (ss_effect / df_effect) / (rss_full / df_resid)
    return FTest(name, f, df_effect, df_resid, float(special.fdtrc(df_effect, df_resid, f)), ss_effect, rss_full)


def one_way(y: Sequence[float] | np.ndarray, groups: Factor, *, name: str = "factor",
            block: Factor | None = None) -> FTest:
    """The one-way ANOVA F of ``groups``; with ``block``, the F of ``groups`` within blocks
    (model y ~ block + groups against y ~ block), as when pooling categories."""
    y = np.asarray(y, dtype=float)
    codes = _codes(groups)
    if block is None:
        return _f_test(name, y, _group_fit(y, codes), _group_fit(y, np.zeros(len(y), dtype=int)))
    block_codes = _codes(block)
    if _nested(codes, block_codes):  # groups nested in blocks: cell means again
        return _f_test(name, y, _group_fit(y, codes), _group_fit(y, block_codes))
    base = [_dummies(block)]
    return _f_test(name, y, _design(len(y), [*base, _dummies(groups)]), _design(len(y), base))


def _within(levels: Factor, block_codes: np.ndarray) -> np.ndarray:
    """Dummies of a factor nested in blocks: each block's first level dropped, so that the
    columns add nothing the block dummies already span (a full-rank design)."""
    codes = _codes(levels)
    first: dict[int, int] = {}
    for c, b in zip(codes.tolist(), block_codes.tolist(), strict=True):
        first.setdefault(b, c)
    keep = sorted(set(codes.tolist()) - set(first.values()))
    column = {c: j for j, c in enumerate(keep)}
    out = np.zeros((len(codes), len(keep)))
    rows = [r for r, c in enumerate(codes.tolist()) if c in column]
    out[rows, [column[codes[r]] for r in rows]] = 1.0
    return out


def _nested(codes: np.ndarray, block_codes: np.ndarray) -> bool:
    return len(set(zip(codes.tolist(), block_codes.tolist(), strict=True))) == len(set(codes.tolist()))


def type2(y: Sequence[float] | np.ndarray, factors: Mapping[str, Factor], *,
          block: Factor | None = None) -> dict[str, FTest]:
    """Type II tests of a main-effects model: each factor against the model of all the others.

    With ``block`` (categories, when pooling), every model holds the block effects; a
    factor nested in the blocks (a category's products) is coded within them, one
    crossing them (context position) as usual.
    """
    y = np.asarray(y, dtype=float)
    base: list[np.ndarray] = []
    cols: dict[str, np.ndarray] = {}
    if block is None:
        cols = {name: _dummies(levels) for name, levels in factors.items()}
    else:
        block_codes = _codes(block)
        base = [_dummies(block)]
        for name, levels in factors.items():
            nested = _nested(_codes(levels), block_codes)
            cols[name] = _within(levels, block_codes) if nested else _dummies(levels)
    full = _design(len(y), [*base, *cols.values()])
    return {
        name: _f_test(name, y, full, _design(len(y), [*base, *(c for other, c in cols.items() if other != name)]))
        for name in cols
    }
