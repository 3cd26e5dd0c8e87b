"""The F-tests agree with statsmodels' OLS + anova_lm; the bootstrap covers what it should."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm

from poise.stats import bootstrap, one_way, type2


def natural_design(n_trials: int, n: int = 8, seed: int = 0, categories: int = 1) -> pd.DataFrame:
    """Records like a natural run's: each trial a random assignment and context order."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(categories):
        name_effect = rng.normal(0, 1.5, n)
        doc_effect = rng.normal(0, 1.0, n)
        for t in range(n_trials):
            docs = rng.permutation(n)
            order = rng.permutation(n)
            for i in range(n):
                pos = int(np.nonzero(order == i)[0][0]) + 1
                y = 4 + c + name_effect[i] + doc_effect[docs[i]] - 0.3 * pos + rng.normal(0, 1)
                rows.append({"category": f"c{c}", "trial": f"c{c}/{t}", "product": f"c{c}|{i}",
                             "document": f"c{c}|{docs[i]}", "position": pos, "score": round(y, 3)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("factor", ["product", "document", "position"])
def test_one_way_f_matches_statsmodels(seed, factor):
    df = natural_design(25, seed=seed)
    ours = one_way(df.score, df[factor], name=factor)
    table = anova_lm(smf.ols(f"score ~ C({factor})", data=df).fit())
    row = table.loc[f"C({factor})"]
    assert ours.f == pytest.approx(row["F"], rel=1e-9, abs=1e-9)
    assert ours.p == pytest.approx(row["PR(>F)"], rel=1e-9, abs=1e-12)
    assert (ours.df_effect, ours.df_resid) == (int(row["df"]), int(table.loc["Residual", "df"]))


@pytest.mark.parametrize("seed", [0, 3])
def test_type2_matches_statsmodels(seed):
    df = natural_design(30, seed=seed)
    ours = type2(df.score, {k: df[k] for k in ("product", "document", "position")})
    table = anova_lm(smf.ols("score ~ C(product) + C(document) + C(position)", data=df).fit(), typ=2)
    resid = table.loc["Residual", "sum_sq"]
    for k in ("product", "document", "position"):
        row = table.loc[f"C({k})"]
        assert ours[k].f == pytest.approx(row["F"], rel=1e-9)
        assert ours[k].p == pytest.approx(row["PR(>F)"], rel=1e-9, abs=1e-15)
        assert ours[k].ss_effect == pytest.approx(row["sum_sq"], rel=1e-9)
        assert ours[k].partial_eta_sq == pytest.approx(row["sum_sq"] / (row["sum_sq"] + resid), rel=1e-9)


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")  # nested by design
@pytest.mark.parametrize("factor", ["product", "position"])
def test_one_way_within_blocks_matches_nested_model_comparison(factor):
    # pooled over categories: products are nested in categories, positions cross them
    df = natural_design(15, seed=4, categories=3)
    ours = one_way(df.score, df[factor], name=factor, block=df.category)
    reduced = smf.ols("score ~ C(category)", data=df).fit()
    full = smf.ols(f"score ~ C(category) + C({factor})", data=df).fit()
    table = anova_lm(reduced, full)
    assert ours.f == pytest.approx(table.loc[1, "F"], rel=1e-9)
    assert ours.p == pytest.approx(table.loc[1, "Pr(>F)"], rel=1e-9, abs=1e-15)
    assert ours.df_effect == int(table.loc[1, "df_diff"])


def test_degenerate_records_give_nan_or_inf_not_errors():
    # every score equal: no variance anywhere
    flat = one_way([3.0] * 8, [0, 0, 1, 1, 2, 2, 3, 3])
    assert math.isnan(flat.f) and math.isnan(flat.p)
    # the groups explain everything
    exact = one_way([1.0, 1.0, 5.0, 5.0], ["a", "a", "b", "b"])
    assert exact.f == math.inf and exact.p == 0.0
    # a single level has nothing to test
    single = one_way([1.0, 2.0, 3.0], ["a", "a", "a"])
    assert single.df_effect == 0 and math.isnan(single.f)


def test_bootstrap_interval_covers_the_mean_and_resamples_clusters():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(40), 5)
    values = rng.normal(10, 2, 40)[clusters]  # each cluster one value, repeated
    (ci,) = bootstrap(lambda rows: values[rows].mean(), clusters, n_boot=500, seed=1)
    assert ci.low < values.mean() < ci.high
    # resampling whole clusters: the width is that of 40 draws, not of 200
    se40 = values[::5].std(ddof=1) / math.sqrt(40)
    assert (ci.high - ci.low) == pytest.approx(2 * 1.96 * se40, rel=0.25)
    # reproducible from the seed
    again = bootstrap(lambda rows: values[rows].mean(), clusters, n_boot=500, seed=1)
    assert again[0] == ci


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")  # nested by design
def test_pooled_type2_matches_statsmodels_with_categories_nested():
    # products and documents are levels within their category; position crosses categories
    df = natural_design(12, seed=5, categories=3)
    factors = {k: df[k] for k in ("product", "document", "position")}
    ours = type2(df.score, factors, block=df.category)
    full = smf.ols("score ~ C(category) + C(product) + C(document) + C(position)", data=df).fit()
    for k, reduced_formula in {
        "product": "score ~ C(category) + C(document) + C(position)",
        "document": "score ~ C(category) + C(product) + C(position)",
        "position": "score ~ C(category) + C(product) + C(document)",
    }.items():
        table = anova_lm(smf.ols(reduced_formula, data=df).fit(), full)
        assert ours[k].f == pytest.approx(table.loc[1, "F"], rel=1e-9), k
        assert ours[k].df_effect == int(table.loc[1, "df_diff"]), k
        assert ours[k].df_resid == int(full.df_resid), k
