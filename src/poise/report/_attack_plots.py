"""Figures of attack and transfer runs: the paper's headline bar chart (average rank of the
promoted product before and after the injection, per category), what the attack reached
against the recommender queries it spent, and source against target for transfer runs.
Rendered off-screen (Agg); each function returns a matplotlib figure, or None when the
runs hold nothing to draw."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .._text import figure_label

BEFORE, AFTER = "#8C8C8C", "#C44E52"
SOURCE, TARGET = ("#B0C4DE", "#4C72B0"), ("#F2B8A2", "#DD8452")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _num_or(x: Any, default: float) -> float:
    value = _num(x)
    return default if value is None else value


def attack_rank_figure(attacks: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Average rank of the promoted product before and after, per category (lower is better)."""
    by_cat: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for a in attacks:
        before, after = _num(a.get("rank_before")), _num(a.get("rank_after"))
        if before is not None and after is not None:
            by_cat[str(a["category"])].append((before, after))
    if not by_cat:
        return None
    cats = sorted(by_cat)
    before_means = [float(np.mean([b for b, _ in by_cat[c]])) for c in cats]
    after_means = [float(np.mean([a for _, a in by_cat[c]])) for c in cats]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(cats) + 2.5), 4.2))
    x = np.arange(len(cats))
    ax.bar(x - 0.2, before_means, 0.4, label="before", color=BEFORE)
    ax.bar(x + 0.2, after_means, 0.4, label="after the injection", color=AFTER)
    ax.set_xticks(x, [figure_label(f"{c} (n={len(by_cat[c])})" if len(by_cat[c]) > 1 else c) for c in cats],
                  rotation=30 if len(cats) > 3 else 0, ha="right" if len(cats) > 3 else "center")
    ax.set_ylabel("average rank of the promoted product\n(1 = recommended first; lower is better)")
    ax.set_ylim(0, 1.25 * max([*before_means, *after_means, 1.0]))
    ax.set_title("Ranking manipulation: rank before and after, per category")
    ax.legend(frameon=False, loc="upper right", ncol=2)
    fig.tight_layout()
    return fig


def _search_point(c: Mapping[str, Any]) -> tuple[int, float | None]:
    """(queries spent, mean score) as the search saw a candidate: confirmation re-asks a few
    of them afterwards, and files written before it have no search_* keys."""
    def pick(key: str, fallback: str) -> Any:
        return c.get(key) if c.get(key) is not None else c.get(fallback)
    return int(pick("search_queries_so_far", "queries_so_far") or 0), _num(pick("search_mean_score", "mean_score"))


def attack_queries_figure(attacks: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Left: the best mean score found so far against the recommender queries spent, per
    attack (dashed: the score before). Right: the share of attacks that had succeeded."""
    traces: list[tuple[Mapping[str, Any], list[int], list[float]]] = []
    for a in attacks:
        points = sorted(p for p in map(_search_point, a.get("candidates") or []) if p[1] is not None)
        if points:
            queries, scores = zip(*points, strict=True)
            traces.append((a, list(queries), [float(s) for s in np.maximum.accumulate(scores)]))
    if not traces:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, (a, q, best) in enumerate(traces):
        color = plt.cm.tab10(k % 10)
        label = figure_label(f"{a['category']}: {a.get('product_name', '')}")
        left.step(q, best, where="post", color=color, lw=1.6, label=label)
        before = _num(a.get("score_before"))
        if before is not None:
            left.axhline(before, color=color, lw=0.8, ls="--", alpha=0.7)
    left.set_xlabel("recommender queries spent")
    left.set_ylabel("best mean score so far (n = first)")
    left.set_title("Attack progress")
    if len(traces) <= 12:
        left.legend(fontsize=7, frameon=False)
    horizon = max(max(q) for _, q, _ in traces)
    firsts = [a.get("queries_to_first_success") for a in attacks]
    budget = np.arange(0, max(horizon, 1) + 1)
    share = [sum(1 for f in firsts if isinstance(f, int) and f <= b) / len(attacks) for b in budget]
    right.step(budget, share, where="post", color=AFTER, lw=2)
    right.set_ylim(-0.02, 1.02)
    right.set_xlabel("recommender queries spent")
    right.set_ylabel("share of attacks that succeeded")
    right.set_title(f"Success against queries ({len(attacks)} attack{'s' if len(attacks) > 1 else ''})")
    fig.tight_layout()
    return fig


def transfer_figure(transfer: Mapping[str, Any]) -> Figure | None:
    """Per injection: the promoted product's mean score on the source and the target model,
    before and after (target with its 95% interval)."""
    items = transfer.get("items") or []
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(max(6.5, 1.4 * len(items) + 2.5), 4.4))
    x = np.arange(len(items))
    width = 0.2
    bars = (("source before", "source_before", None, SOURCE[0]), ("source after", "source_after", None, SOURCE[1]),
            ("target before", "target_before", "target_before_ci", TARGET[0]),
            ("target after", "target_after", "target_after_ci", TARGET[1]))
    for k, (label, key, ci_key, color) in enumerate(bars):
        values = [_num(i.get(key)) or 0.0 for i in items]
        err = None
        if ci_key:
            cis = [i.get(ci_key) or [None, None] for i in items]
            lows = [max(0.0, v - _num_or(c[0], v)) for v, c in zip(values, cis, strict=True)]
            highs = [max(0.0, _num_or(c[1], v) - v) for v, c in zip(values, cis, strict=True)]
            err = [lows, highs]
        ax.bar(x + (k - 1.5) * width, values, width, yerr=err, capsize=3, label=label, color=color)
    ax.set_xticks(x, [figure_label(f"{i['category']}: {i['product']}", 34) for i in items],
                  rotation=30 if len(items) > 2 else 0, ha="right" if len(items) > 2 else "center")
    ax.set_ylabel("mean score of the promoted product")
    ax.set_ylim(0, 1.3 * max([ax.get_ylim()[1], 1.0]))
    ax.set_title(figure_label(f"Transfer to {transfer.get('model', 'the target')}", 80))
    ax.legend(frameon=False, fontsize=8, ncol=4, loc="upper center")
    fig.tight_layout()
    return fig
